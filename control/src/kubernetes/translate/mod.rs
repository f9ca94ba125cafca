//! Kubernetes objects as the store entries tweed's cluster view and policy
//! enforcer already read (see [`crate::cluster::keys`]): one object gives
//! zero or more `(key, value)` entries. Pure: no client, no clock.

pub mod namespace;
pub mod node;
pub mod pod;
pub mod policy;
pub mod service;

/// One store entry an object gives.
pub type Entry = (String, Vec<u8>);

/// What a translation needs to know about where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// This node's name: its own pods' records come from the CNI, not from here.
    pub node: String,
}

/// An object kind tweed reads from the API server.
pub trait Translate {
    /// The entries the object gives, or why it gives none that it should.
    fn entries(&self, context: &Context) -> Result<Vec<Entry>, String>;
}

/// `value` as the JSON the store holds.
pub(crate) fn encode(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("a translated entry always serializes")
}
