//! The six CNI commands, over the daemon's control socket.
//!
//! - ADD ([`add`]): `pod_add`; the daemon allocates the address, creates the
//!   tap in the pod's netns and rolls both back if anything fails, so a
//!   failed ADD leaves nothing.
//! - DEL: `pod_del` for `(CNI_CONTAINERID, CNI_IFNAME)`; succeeds when
//!   nothing is held (DEL twice, DEL after the netns is gone, DEL of a
//!   container never added); a daemon that cannot be reached is error 11,
//!   since succeeding then would leak the address.
//! - CHECK ([`check`]): compares the daemon's record, `prevResult` and the
//!   netns.
//! - STATUS: ready (exit 0, no output) only when the daemon answers and its
//!   dataplane is up; error 50 otherwise.
//! - GC: `gc` with `cni.dev/valid-attachments`.
//! - VERSION: the supported versions; never fails.

mod add;
mod check;
pub mod daemon;

use serde_json::{Value, json};
use tweed_api::pod::{GcArgs, PodDel, PodInfo, PodKey};
use tweed_api::proto::Empty;
use tweed_api::{Request, ResponseBody};

use crate::spec::{Attached, CniError, CniVersion, Command, Env, NetConf, code, config};

/// Runs the command `env` names on the configuration in `stdin`; returns
/// what to print on stdout (nothing for DEL, CHECK, STATUS and GC).
pub fn run(env: &Env, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    if env.command == Command::Version {
        return Ok(Some(version(stdin)));
    }
    let conf = config::parse(stdin)?;
    match env.command {
        Command::Add => add::add(env, &conf).map(Some),
        Command::Del => del(env, &conf).map(|()| None),
        Command::Check => check::check(env, &conf).map(|()| None),
        Command::Status => status(&conf).map(|()| None),
        Command::Gc => gc(&conf).map(|()| None),
        Command::Version => Ok(Some(version(stdin))),
    }
}

/// Undoes an ADD whose result could not be handed to the runtime.
pub fn undo_add(env: &Env, stdin: &[u8]) -> Result<(), CniError> {
    del(env, &config::parse(stdin)?)
}

/// VERSION: `{"cniVersion","supportedVersions"}`, in the configuration's
/// version when it names a supported one.
fn version(stdin: &[u8]) -> Value {
    let version = config::peek_version(stdin).unwrap_or(CniVersion::LATEST);
    json!({
        "cniVersion": version.as_str(),
        "supportedVersions": CniVersion::supported(),
    })
}

fn del(env: &Env, conf: &NetConf) -> Result<(), CniError> {
    let request = Request::PodDel(PodDel {
        container_id: env.container_id()?.to_owned(),
        ifname: Some(env.ifname()?.to_owned()),
    });
    match daemon::call(&conf.socket, request)? {
        ResponseBody::Released(_) => Ok(()),
        other => Err(unexpected("pod_del", &other)),
    }
}

fn status(conf: &NetConf) -> Result<(), CniError> {
    needs_1_1("STATUS", conf)?;
    let not_ready = |msg: String| CniError::new(code::NOT_READY, msg);
    let reply = daemon::call(&conf.socket, Request::Status(Empty {}))
        .map_err(|e| not_ready(e.msg).with_details(e.details))?;
    let ResponseBody::Status(status) = reply else {
        return Err(not_ready(unexpected("status", &reply).msg));
    };
    if status.dataplane.up {
        return Ok(());
    }
    Err(not_ready(format!(
        "the tweed daemon is up but its dataplane is not{}; it restarts the dataplane by itself, \
         see the daemon's log if this persists",
        status
            .dataplane
            .error
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    )))
}

fn gc(conf: &NetConf) -> Result<(), CniError> {
    needs_1_1("GC", conf)?;
    let valid = conf.valid_attachments.as_ref().ok_or_else(|| {
        CniError::new(
            code::INVALID_CONFIG,
            "cni.dev/valid-attachments is missing: GC releases every attachment not listed \
             there, so the runtime must pass the list (empty to release all)",
        )
    })?;
    let request = Request::Gc(GcArgs {
        valid: valid
            .iter()
            .map(|a| PodKey {
                container_id: a.container_id.clone(),
                ifname: a.ifname.clone(),
            })
            .collect(),
    });
    match daemon::call(&conf.socket, request)? {
        ResponseBody::Released(_) => Ok(()),
        other => Err(unexpected("gc", &other)),
    }
}

fn needs_1_1(command: &str, conf: &NetConf) -> Result<(), CniError> {
    if conf.version.allows_status_and_gc() {
        return Ok(());
    }
    Err(CniError::new(
        code::INCOMPATIBLE_VERSION,
        format!(
            "{command} exists from cniVersion 1.1.0; this configuration has {}",
            conf.version
        ),
    ))
}

/// The daemon's record as the spec layer sees it.
fn attached(info: &PodInfo) -> Attached {
    Attached {
        ifname: info.ifname.clone(),
        netns: info.netns.clone(),
        mac: info.mac.to_string(),
        mtu: info.mtu,
        ipv4: info.ipv4,
        ipv6: info.ipv6,
        gateway_v4: info.gateway_v4,
        gateway_v6: info.gateway_v6,
    }
}

/// The daemon answered `op` with the wrong kind of reply.
fn unexpected(op: &str, reply: &ResponseBody) -> CniError {
    CniError::new(
        code::IO,
        format!("the tweed daemon answered {op} with an unexpected reply"),
    )
    .with_details(reply.to_value().to_string())
}
