//! The one error type of policy parsing.
//!
//! Every message names the document, the object when its kind and name are
//! known, and the field, then says what to fix: these reach an operator
//! through `tweed policy apply` or the daemon's log.

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not YAML or JSON at all.
    #[error("document {document}: cannot read it as YAML or JSON: {reason}")]
    Syntax {
        /// The document's position in the input, counting from 1.
        document: usize,
        /// The parser's complaint, with its line and column.
        reason: String,
    },

    /// A document is YAML or JSON but not a valid policy.
    #[error("document {document}{}: {field}: {problem}", object.as_ref().map(|o| format!(" ({o})")).unwrap_or_default())]
    Invalid {
        /// The document's position in the input, counting from 1.
        document: usize,
        /// `KIND NAMESPACE/NAME` when they could be read.
        object: Option<String>,
        /// The path of the field at fault, such as `spec.ingress[0].ports[1].endPort`.
        field: String,
        /// What is wrong and what to do about it.
        problem: String,
    },
}

impl PolicyError {
    /// The path of the field at fault (`None` for a syntax error).
    pub fn field(&self) -> Option<&str> {
        match self {
            PolicyError::Syntax { .. } => None,
            PolicyError::Invalid { field, .. } => Some(field),
        }
    }
}

/// A field and its problem, before the document is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// The field's path.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl Invalid {
    pub(crate) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}
