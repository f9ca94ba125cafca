//! Why a Service could not be read.

use std::net::AddrParseError;

/// A Service (or one of its EndpointSlices) tweed cannot balance, naming the
/// field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceSpecError {
    /// An address field holds no IP address.
    #[error("service {service}: {field} {value:?} is not an IP address")]
    Address {
        /// `NAMESPACE/NAME`.
        service: String,
        /// The field.
        field: &'static str,
        /// What it holds.
        value: String,
        /// Why it does not parse.
        #[source]
        source: AddrParseError,
    },
    /// A port field outside 1–65535.
    #[error("service {service}: {field} {value} is not a port (1-65535)")]
    Port {
        /// `NAMESPACE/NAME`.
        service: String,
        /// The field.
        field: &'static str,
        /// What it holds.
        value: i32,
    },
    /// A field holds a value Kubernetes does not define.
    #[error("service {service}: {field} {value:?} is none of the values Kubernetes defines")]
    Unknown {
        /// `NAMESPACE/NAME`.
        service: String,
        /// The field.
        field: &'static str,
        /// What it holds.
        value: String,
    },
}
