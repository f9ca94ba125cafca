//! CNI errors: the spec's codes, tweed's own codes, and the error JSON
//! (`{"cniVersion","code","msg","details"}`) printed on stdout before the
//! plugin exits non-zero.
//!
//! Codes 1–99 are the spec's; 100 and up are tweed's, chosen where no spec
//! code fits, so a runtime's log shows which kind of failure it was.

use serde_json::{Value, json};

use super::version::CniVersion;

/// Error codes.
pub mod code {
    /// The configuration's `cniVersion` is not one tweed supports, or the
    /// command does not exist in it.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// The configuration has a field tweed does not support (e.g. `ipam`).
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// The container is unknown (CHECK of an attachment the daemon never made).
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// A `CNI_*` environment variable is missing or invalid (the message names it).
    pub const INVALID_ENV: u32 = 4;
    /// A system step failed, or the daemon refused for a reason that is not
    /// the input's fault (e.g. no free address).
    pub const IO: u32 = 5;
    /// Stdin is not JSON.
    pub const DECODE: u32 = 6;
    /// The network configuration is invalid (the message names the field).
    pub const INVALID_CONFIG: u32 = 7;
    /// The daemon is not running or cannot reach its dataplane or store now.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADD now (the daemon or its dataplane is down).
    pub const NOT_READY: u32 = 50;
    /// tweed: the attachment clashes with existing state, e.g. `CNI_IFNAME`
    /// already exists in the pod's netns.
    pub const CONFLICT: u32 = 100;
    /// tweed: CHECK found the attachment differs from the daemon's record or
    /// from `prevResult` (the message lists what differs).
    pub const CHECK_MISMATCH: u32 = 101;
}

/// A CNI error: its code, a message that says what to fix, and details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct CniError {
    /// The CNI error code ([`code`]).
    pub code: u32,
    /// One sentence: what failed and what to do about it.
    pub msg: String,
    /// More context (e.g. the daemon's own message), possibly empty.
    pub details: String,
}

impl CniError {
    /// An error with `code` and `msg` and no details.
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// The same error with `details`.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// The error JSON the spec prescribes, in `version`.
    pub fn to_json(&self, version: CniVersion) -> Value {
        let mut out = json!({
            "cniVersion": version.as_str(),
            "code": self.code,
            "msg": self.msg,
        });
        if !self.details.is_empty() {
            out["details"] = Value::String(self.details.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_the_spec_fields() {
        let e = CniError::new(code::INVALID_ENV, "CNI_NETNS is missing");
        assert_eq!(
            e.to_json(CniVersion::V0_4_0),
            json!({"cniVersion":"0.4.0","code":4,"msg":"CNI_NETNS is missing"})
        );
        let e = e.with_details("more");
        assert_eq!(e.to_json(CniVersion::LATEST)["details"], "more");
    }
}
