//! Talking to the tweed daemon over its control socket, and what its
//! failures mean in CNI terms.
//!
//! The mapping ([`client_error`], [`api_error`]) is pure:
//! - not running, timed out, connection dropped, `unavailable` → 11 (try
//!   again later: the runtime retries);
//! - `invalid` on a field the runtime set through the environment
//!   (`container_id`, `netns`, `ifname`, the pod's namespace and name) or a
//!   netns the dataplane cannot open → 4, on anything else → 7;
//! - `conflict` (e.g. `CNI_IFNAME` already exists in the netns) → 100;
//! - `not_found` → 3; `exhausted`, `io`, `forbidden`, a reply this plugin
//!   cannot read → 5.

use std::path::Path;

use tweed_api::{ApiError, ClientError, ErrorKind, Request, ResponseBody, client};

use crate::spec::{CniError, code};

/// Sends one request to the daemon at `socket`.
pub fn call(socket: &Path, request: Request) -> Result<ResponseBody, CniError> {
    client::call(socket, request).map_err(|e| client_error(&e, socket))
}

/// A failed call as a CNI error.
pub fn client_error(e: &ClientError, socket: &Path) -> CniError {
    match e {
        ClientError::NotRunning { .. } => CniError::new(code::TRY_AGAIN_LATER, e.to_string())
            .with_details(format!(
                "the plugin looks for the daemon at {} (the network configuration's `socket`)",
                socket.display()
            )),
        ClientError::TimedOut { .. } | ClientError::Io { .. } => {
            CniError::new(code::TRY_AGAIN_LATER, e.to_string())
        }
        ClientError::Connect { .. } => CniError::new(code::IO, e.to_string())
            .with_details("the plugin must run as root or as the daemon's user"),
        ClientError::Protocol { .. } => CniError::new(code::IO, e.to_string())
            .with_details("tweed-cni and the tweed daemon may be different versions"),
        ClientError::Api(api) => api_error(api),
    }
}

/// The daemon's refusal as a CNI error.
pub fn api_error(e: &ApiError) -> CniError {
    let details = format!("tweed daemon: {}", e.kind.name());
    let cni = match e.kind {
        ErrorKind::Unavailable => CniError::new(
            code::TRY_AGAIN_LATER,
            format!("the tweed daemon cannot serve this now: {}", e.message),
        ),
        ErrorKind::Invalid if from_env(&e.message) => CniError::new(code::INVALID_ENV, &e.message),
        ErrorKind::Invalid => CniError::new(code::INVALID_CONFIG, &e.message),
        ErrorKind::Conflict => CniError::new(
            code::CONFLICT,
            format!(
                "{}: pick another CNI_IFNAME or remove what is in the way",
                e.message
            ),
        ),
        ErrorKind::NotFound => CniError::new(code::UNKNOWN_CONTAINER, &e.message),
        ErrorKind::Exhausted => CniError::new(
            code::IO,
            format!(
                "{}: delete unused pods, or give the cluster a larger --cluster-cidr",
                e.message
            ),
        ),
        ErrorKind::Forbidden => CniError::new(
            code::IO,
            format!(
                "{}: run the plugin as root or as the daemon's user",
                e.message
            ),
        ),
        ErrorKind::BadJson | ErrorKind::UnsupportedVersion => CniError::new(
            code::IO,
            format!(
                "the tweed daemon did not understand the plugin ({}): \
                 tweed-cni and the daemon may be different versions",
                e.message
            ),
        ),
        ErrorKind::Io => CniError::new(code::IO, &e.message),
    };
    cni.with_details(details)
}

/// Whether an `invalid` message names a field the runtime passed in the
/// environment: `pod_add.netns: ...` (API.md's `op.field: what`, after an
/// optional `request.`), or the dataplane's "netns: cannot open netns".
fn from_env(message: &str) -> bool {
    const OPS: [&str; 3] = ["pod_add.", "pod_del.", "pod_get."];
    const FIELDS: [&str; 5] = ["container_id", "netns", "ifname", "namespace", "name"];
    let path = message.trim_start_matches("request.");
    let field = OPS
        .iter()
        .find_map(|op| path.strip_prefix(op))
        .and_then(|rest| rest.split(':').next());
    field.is_some_and(|f| FIELDS.contains(&f)) || message.contains("netns: cannot open netns")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn code_of(kind: ErrorKind, message: &str) -> u32 {
        api_error(&ApiError::new(kind, message)).code
    }

    #[test]
    fn daemon_refusals_map_to_cni_codes() {
        assert_eq!(code_of(ErrorKind::Unavailable, "the dataplane: gone"), 11);
        assert_eq!(code_of(ErrorKind::Invalid, "pod_add.ifname: too long"), 4);
        assert_eq!(code_of(ErrorKind::Invalid, "request.pod_add.netns: bad"), 4);
        assert_eq!(
            code_of(
                ErrorKind::Invalid,
                "create the pod's interface: netns: cannot open netns /run/netns/x"
            ),
            4
        );
        assert_eq!(
            code_of(ErrorKind::Invalid, "pod_add.mtu: 100 is outside"),
            7
        );
        assert_eq!(code_of(ErrorKind::Invalid, "gc.valid[2].ifname: bad"), 7);
        assert_eq!(code_of(ErrorKind::Conflict, "interface exists"), 100);
        assert_eq!(code_of(ErrorKind::NotFound, "no pod"), 3);
        assert_eq!(code_of(ErrorKind::Exhausted, "no address"), 5);
        assert_eq!(code_of(ErrorKind::Io, "x"), 5);
        assert_eq!(code_of(ErrorKind::UnsupportedVersion, "x"), 5);
        let e = api_error(&ApiError::exhausted("10.244.0.0/24 is full"));
        assert!(e.msg.starts_with("10.244.0.0/24 is full"), "{}", e.msg);
        assert_eq!(e.details, "tweed daemon: exhausted");
    }

    #[test]
    fn a_daemon_that_is_not_running_is_try_again_later() {
        let socket = PathBuf::from("/nonexistent/control.sock");
        let e = client_error(
            &ClientError::NotRunning {
                path: socket.clone(),
            },
            &socket,
        );
        assert_eq!(e.code, code::TRY_AGAIN_LATER);
        assert!(e.msg.contains("not running"), "{}", e.msg);
        assert!(e.details.contains("/nonexistent/control.sock"));
    }
}
