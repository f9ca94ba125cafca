//! What the pipeline remembers about a flow in its conntrack tag (bits of a
//! `u32` given when the flow is created, returned with every hit).

/// The flow's original packet came in from the host port: the node's
/// kernel forwarded it, perhaps after translating it (kube-proxy's DNAT to a
/// Service backend, NodePort), so its replies must go back through the host
/// port for the kernel to translate them back — also when the backend's
/// reply would otherwise go straight to a local pod or arrives from a peer.
pub const VIA_HOST: u32 = 1;

/// The flow's original packet was a pod's to a native Service frontend,
/// translated to a backend: its replies are translated back (see
/// `pipeline::service`).
pub const SERVICE: u32 = 2;
