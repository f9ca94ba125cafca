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
    /// Two Services claim one health check node port (the API server
    /// allocates them apart): the second is balanced, without one.
    #[error("service {service}: healthCheckNodePort {port} is already {other}'s")]
    HealthPortTaken {
        /// `NAMESPACE/NAME`.
        service: String,
        /// The port.
        port: u16,
        /// The Service that has it.
        other: String,
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

/// Why `tweed service apply`'s text could not be read; names the document
/// (counted from 1) and chains the parser's error.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not YAML.
    #[error("document {document} is not valid YAML")]
    Yaml {
        /// The document.
        document: usize,
        /// The parser's error.
        #[source]
        source: Box<serde_yaml_ng::Error>,
    },
    /// Not JSON (a text that starts with `{` or `[`).
    #[error("document {document} is not valid JSON")]
    Json {
        /// The document.
        document: usize,
        /// The parser's error.
        #[source]
        source: Box<serde_json::Error>,
    },
    /// A kind other than Service and EndpointSlice.
    #[error("document {document}: kind {kind:?} is neither Service nor EndpointSlice")]
    Kind {
        /// The document.
        document: usize,
        /// Its kind.
        kind: String,
    },
    /// A field does not read as the kind defines it.
    #[error("document {document}: not a valid {kind}")]
    Invalid {
        /// The document.
        document: usize,
        /// Its kind.
        kind: String,
        /// Which field and why.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// No `metadata.name`.
    #[error("document {document}: the {kind} has no metadata.name")]
    Unnamed {
        /// The document.
        document: usize,
        /// Its kind.
        kind: String,
    },
    /// A List without a sequence of `items`.
    #[error("document {document}: a List needs `items`, a sequence of Services and EndpointSlices")]
    ListWithoutItems {
        /// The document.
        document: usize,
    },
}
