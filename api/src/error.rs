//! The error reply both sockets send: a kind a program can branch on and a
//! message for a human. One type for `control.sock` and `dataplane.sock`, so
//! the control daemon passes a dataplane's refusal on unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::envelope::{EnvelopeError, Kind};

/// The kind of a failed request, as the `kind` field of an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line is not JSON (or not UTF-8).
    BadJson,
    /// The `version` field is not the socket's protocol version.
    UnsupportedVersion,
    /// A field is missing, unknown or wrong; the message names it.
    Invalid,
    /// The request clashes with existing state (a duplicate name or address).
    Conflict,
    /// The named pod, port, peer or route does not exist.
    NotFound,
    /// No free address is left in the node's subnet (control daemon only).
    Exhausted,
    /// The dataplane or the store cannot be reached; try again later
    /// (control daemon only).
    Unavailable,
    /// A system step failed; the message names the step and its causes.
    Io,
    /// The connecting process may not use the API.
    Forbidden,
}

impl ErrorKind {
    /// Every kind, in the order of the APIs' documentation.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::BadJson,
        ErrorKind::UnsupportedVersion,
        ErrorKind::Invalid,
        ErrorKind::Conflict,
        ErrorKind::NotFound,
        ErrorKind::Exhausted,
        ErrorKind::Unavailable,
        ErrorKind::Io,
        ErrorKind::Forbidden,
    ];

    /// The kind's wire name.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::BadJson => "bad_json",
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Conflict => "conflict",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Exhausted => "exhausted",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Io => "io",
            ErrorKind::Forbidden => "forbidden",
        }
    }
}

/// An error reply: what kind of failure and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(deny_unknown_fields)]
#[error("{message}")]
pub struct ApiError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// A sentence for a human: the field or step and what is wrong with it.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// An [`ErrorKind::Invalid`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    /// A [`ErrorKind::Conflict`] error.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// A [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// An [`ErrorKind::Exhausted`] error.
    pub fn exhausted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Exhausted, message)
    }

    /// An [`ErrorKind::Unavailable`] error: `what` (the dataplane, the store)
    /// cannot be reached, because of `err`.
    pub fn unavailable(what: &str, err: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Unavailable, format!("{what}: {err}"))
    }

    /// An [`ErrorKind::Io`] error for the system step `step` that failed with `err`.
    pub fn io(step: &str, err: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Io, format!("{step}: {err}"))
    }

    /// An [`ErrorKind::Io`] error: `step` failed with `err`, whose causes
    /// (down to the errno) are written out after it ([`error_chain`]), since
    /// the caller across the socket cannot walk them.
    pub fn io_chain(step: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        Self::new(ErrorKind::Io, format!("{step}: {}", error_chain(err)))
    }
}

impl EnvelopeError for ApiError {
    fn envelope_error(kind: Kind, message: String) -> Self {
        let kind = match kind {
            Kind::BadJson => ErrorKind::BadJson,
            Kind::UnsupportedVersion => ErrorKind::UnsupportedVersion,
            Kind::Invalid => ErrorKind::Invalid,
            Kind::Forbidden => ErrorKind::Forbidden,
            Kind::Io => ErrorKind::Io,
        };
        ApiError::new(kind, message)
    }
}

/// `e` with its causes, `: `-separated (a cause its error already repeats
/// at the end of its own text is not written twice).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open netns /run/netns/gone")]
    struct NetnsOpen(#[source] std::io::Error);

    #[test]
    fn an_io_error_carries_its_causes_down_to_the_errno() {
        let e = NetnsOpen(std::io::Error::from_raw_os_error(2));
        let api = ApiError::io_chain("create the pod's tap", &e);
        assert_eq!(api.kind, ErrorKind::Io);
        assert!(
            api.message
                .starts_with("create the pod's tap: cannot open netns /run/netns/gone: "),
            "{}",
            api.message
        );
        assert!(
            api.message.contains("No such file or directory"),
            "{}",
            api.message
        );
    }
}
