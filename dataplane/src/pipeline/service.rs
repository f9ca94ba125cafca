//! Native Services: a pod's packet to a Service frontend is sent to one of
//! its backends, and the backend's replies come back from the frontend.
//!
//! ```text
//! pod egress ─▶ frontend? ─▶ backend known for this flow and still listed?
//!                              ├─ yes: keep it
//!                              └─ no: Maglev choice ─┬─ backend
//!                                                    ├─ none at all: ICMP port unreachable
//!                                                    └─ none local (Local policy): drop
//!            ─▶ destination rewritten ─▶ conntrack, policy and route on the backend
//! reply of a translated flow ─▶ source rewritten back to the frontend
//! ```
//!
//! A pod that reaches itself through a Service (a hairpin) would see its own
//! address as the source and drop the packet, so that connection comes from
//! the hairpin address (`HAIRPIN_V4`, `HAIRPIN_V6`), as kube-proxy
//! masquerades it; the reply goes back to the pod's own address.
//!
//! A client outside the cluster reaches a NodePort or an externalIP through
//! the host port (the node steers those packets there, `Origin::External`).
//! Under the `Cluster` traffic policy the connection then comes from this
//! node's overlay address, as kube-proxy masquerades it, so the backend's
//! reply comes back here from any node; under `Local` only this node's
//! backends serve it, and it keeps the client's address. Its replies go back
//! out of the host port (the flow is tagged [`flow_tag::VIA_HOST`]).
//!
//! The translation happens where the client's packet enters the dataplane,
//! so the reverse happens on the client's node whichever node the backend
//! is on: its reply comes back there (through the overlay or not) as a
//! reply of the flow tracked with [`flow_tag::SERVICE`]. Policy sees the real
//! client and the real backend, as with kube-proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::encap::flow_hash;
use super::flow_tag;
use super::frame_edit::E;
use super::parse::{Ip, Transport, proto};
use super::trace::{Stage, Tracer};
use super::{Action, Pipeline};
use crate::frame::Frame;
use crate::offload::nat::{self, Side, Translation};
use crate::table::conntrack::{Direction, FlowKey, Hit};
use crate::table::service::{Origin, Selection, ServiceKey, maglev};
use crate::table::tables::{HAIRPIN_V4, HAIRPIN_V6};
use crate::wire::virtio_net::{self, VirtioNetHdr};

/// A pod's packet sent to a backend instead of the frontend it named.
#[derive(Debug, Clone, Copy)]
pub(super) struct Redirect {
    /// The flow as the client sent it, to the frontend.
    pub original: FlowKey,
    /// The flow as translated, to the backend.
    pub translated: FlowKey,
    /// Whether the backend was chosen for this packet (else kept from the
    /// flow's translation). A new choice is remembered once the packet is
    /// allowed; so is a kept one whose flow conntrack starts again (a TCP
    /// SYN on a reused tuple, whose old flow conntrack ends; a packet after
    /// its flow expired): between the old flow's end and the new one's
    /// start the sweeper may drop the kept pair, and the replies need it.
    /// Remembering it again puts it back before the packet leaves, with a
    /// fresh grace period.
    pub new: bool,
}

/// What a pod's packet to a frontend became.
pub(super) enum ToService {
    /// Not a native Service frontend (or not translatable): forward as is.
    No,
    /// Rewritten to this backend.
    Redirect(Redirect),
    /// No backend may serve it: the frontend refuses (kube-proxy's REJECT).
    Refuse,
    /// No backend may serve it from here (a Local traffic policy): dropped.
    Drop,
    /// It must be masqueraded and there is no source to masquerade it to.
    NoSource,
}

impl Pipeline<'_> {
    /// Sends a packet for a native Service frontend to its backend, rewriting
    /// `frame` and `ip` in place: a pod's (`Origin::Pod`), or one from
    /// outside the cluster that the node steered into the host port
    /// (`Origin::External`: a NodePort, an externalIP).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn service_request<T: Tracer>(
        &self,
        frame: &mut Frame,
        vnet: VirtioNetHdr,
        ip: &mut Ip,
        key: &FlowKey,
        origin: Origin,
        tracer: &mut T,
    ) -> ToService {
        let services = &self.tables.services;
        if services.is_empty()
            || ip.fragment.is_some()
            || !matches!(ip.protocol, proto::TCP | proto::UDP | proto::SCTP)
        {
            return ToService::No;
        }
        let frontend = ServiceKey {
            ip: key.dst,
            protocol: key.protocol,
            port: key.dst_port,
        };
        let translations = self.conntrack.translations();
        let known = translations.translated(key);
        let kept = known.filter(|t| services.lists(frontend, SocketAddr::new(t.dst, t.dst_port)));
        let (backend, source, name, new) = match kept {
            Some(translated) => (
                SocketAddr::new(translated.dst, translated.dst_port),
                SocketAddr::new(translated.src, translated.src_port),
                None,
                false,
            ),
            None => {
                let hash = maglev::mix(u64::from(flow_hash(ip)));
                let (backend, service, masquerade) =
                    match services.select(frontend, key.src, hash, origin) {
                        Selection::NotService => return ToService::No,
                        Selection::Backend {
                            to,
                            service,
                            masquerade,
                        } => (to, service, masquerade),
                        Selection::Reject { service } => {
                            tracer.stage(|| service_stage(&service, key, None));
                            return ToService::Refuse;
                        }
                        Selection::Drop { service } => {
                            tracer.stage(|| service_stage(&service, key, None));
                            return ToService::Drop;
                        }
                    };
                let source = if masquerade {
                    match self.masquerade_source(key, backend, hash) {
                        Some(source) => source,
                        None => {
                            tracer.stage(|| service_stage(&service, key, None));
                            return ToService::NoSource;
                        }
                    }
                } else {
                    client_source(key, backend)
                };
                (backend, source, Some(service), true)
            }
        };
        if let (Some(old), None, false) = (known, kept, T::DRY_RUN) {
            // Its backend left the Service: the connection starts over on
            // another (which resets a TCP connection it does not know).
            translations.forget(key, &old);
        }
        if rewrite(frame, vnet, ip, Side::Destination, backend).is_err() {
            return ToService::No;
        }
        if source != SocketAddr::new(key.src, key.src_port)
            && rewrite(frame, vnet, ip, Side::Source, source).is_err()
        {
            // Not reached: the first rewrite checked the same headers.
            return ToService::No;
        }
        tracer.stage(|| {
            let name = name.unwrap_or_else(|| Arc::from("(kept from the flow)"));
            service_stage(&name, key, Some(backend))
        });
        ToService::Redirect(Redirect {
            original: *key,
            translated: FlowKey {
                src: source.ip(),
                src_port: source.port(),
                dst: backend.ip(),
                dst_port: backend.port(),
                ..*key
            },
            new,
        })
    }

    /// The source a connection from outside the cluster is given under the
    /// `Cluster` traffic policy: this node's overlay address, so the reply
    /// comes back here from whichever node the backend is on.
    ///
    /// The port is one the node's own connections from that address (the
    /// kubelet's probes, say) do not take: the kernel picks theirs from its
    /// ephemeral range without seeing the dataplane's flows, so a
    /// masqueraded connection stays in [`MASQUERADE_PORTS`], below Linux's
    /// default ephemeral range. The client's port is kept if it lies there
    /// and no other connection to the same backend holds it (two clients
    /// outside may use one port, and the node may have bound one), else a
    /// few ports derived from the flow's hash are tried. `None` when the
    /// node has no address of the family, or every port tried is taken.
    fn masquerade_source(
        &self,
        key: &FlowKey,
        backend: SocketAddr,
        hash: u64,
    ) -> Option<SocketAddr> {
        let node = self.tables.node_addrs.of_family(key.src)?;
        let translations = self.conntrack.translations();
        let free = |port: u16| {
            let translated = FlowKey {
                src: node,
                src_port: port,
                dst: backend.ip(),
                dst_port: backend.port(),
                ..*key
            };
            match translations.original(&translated) {
                Some(holder) => holder == *key,
                None => self.conntrack.lookup(&translated, self.now_ms).is_none(),
            }
        };
        let (low, high) = (*MASQUERADE_PORTS.start(), *MASQUERADE_PORTS.end());
        let derived = (0..MASQUERADE_TRIES).map(|i| {
            let spread = maglev::mix(hash.wrapping_add(i)) % u64::from(high - low + 1);
            low + spread as u16
        });
        Some(key.src_port)
            .filter(|port| MASQUERADE_PORTS.contains(port))
            .into_iter()
            .chain(derived)
            .find(|&port| free(port))
            .map(|port| SocketAddr::new(node, port))
    }

    /// Rewrites a reply of a translated flow to come from the frontend its
    /// client called; `key` is the reply's flow (backend to client).
    pub(super) fn service_reply<T: Tracer>(
        &self,
        frame: &mut Frame,
        vnet: VirtioNetHdr,
        ip: &mut Ip,
        key: &FlowKey,
        hit: Hit,
        tracer: &mut T,
    ) {
        if hit.direction != Direction::Reply || hit.tag & flow_tag::SERVICE == 0 {
            return;
        }
        let original = self.conntrack.translations().original(&key.reversed());
        tracer.stage(|| Stage::ServiceReply {
            frontend: original.map(|o| SocketAddr::new(o.dst, o.dst_port)),
        });
        let Some(original) = original else { return };
        // A packet nat cannot rewrite goes on as it is, as an unknown
        // flow's would.
        let frontend = SocketAddr::new(original.dst, original.dst_port);
        if rewrite(frame, vnet, ip, Side::Source, frontend).is_err() {
            return;
        }
        let client = SocketAddr::new(original.src, original.src_port);
        if client != SocketAddr::new(key.dst, key.dst_port) {
            // A hairpin, or a masqueraded client (from outside, or the node
            // itself moved to another port): back to the client's own
            // address and port.
            let _ = rewrite(frame, vnet, ip, Side::Destination, client);
        }
    }

    /// Remembers a new translation, or one whose flow conntrack `restarted`,
    /// once its packet was allowed; false if the table had no room.
    pub(super) fn remember<T: Tracer>(
        &self,
        redirect: &Redirect,
        restarted: bool,
        action: &Action,
    ) -> bool {
        if T::DRY_RUN || !(redirect.new || restarted) || matches!(action, Action::Drop(_)) {
            return true;
        }
        self.conntrack
            .translations()
            .remember(&redirect.original, &redirect.translated, self.now_ms)
            .is_ok()
    }
}

/// How many derived ports a masqueraded connection tries after its own.
const MASQUERADE_TRIES: u64 = 8;
/// The ports a masqueraded connection is given: above the well-known ones,
/// below Linux's default ephemeral range (32768–60999), where the node's own
/// connections take theirs.
pub(super) const MASQUERADE_PORTS: std::ops::RangeInclusive<u16> = 1024..=32767;

/// The source a pod's (or a `Local` outside client's) connection keeps: its
/// own, except a pod reaching itself, which must not see its own address as
/// the source: that connection comes from the hairpin address.
fn client_source(key: &FlowKey, backend: SocketAddr) -> SocketAddr {
    if backend.ip() != key.src {
        return SocketAddr::new(key.src, key.src_port);
    }
    let hairpin = match key.src {
        IpAddr::V4(_) => IpAddr::V4(HAIRPIN_V4),
        IpAddr::V6(_) => IpAddr::V6(HAIRPIN_V6),
    };
    SocketAddr::new(hairpin, key.src_port)
}

fn service_stage(service: &str, key: &FlowKey, backend: Option<SocketAddr>) -> Stage {
    Stage::Service {
        service: service.to_owned(),
        frontend: SocketAddr::new(key.dst, key.dst_port),
        backend,
    }
}

/// Translates one end of the IP packet in the frame and the parsed `ip`.
fn rewrite(
    frame: &mut Frame,
    vnet: VirtioNetHdr,
    ip: &mut Ip,
    side: Side,
    to: SocketAddr,
) -> Result<(), nat::NatError> {
    let partial = vnet.flags & virtio_net::F_NEEDS_CSUM != 0;
    let start = E + ip.l3;
    let Some(packet) = frame.data_mut().get_mut(start..start + ip.len) else {
        return Err(nat::NatError::Truncated {
            len: frame.len().saturating_sub(start),
            need: ip.len,
        });
    };
    let translation = Translation {
        side,
        ip: to.ip(),
        port: to.port(),
    };
    nat::translate(packet, translation, partial)?;
    if let Transport::Ports { src, dst, .. } = &mut ip.transport {
        match side {
            Side::Source => {
                ip.src = to.ip();
                *src = to.port();
            }
            Side::Destination => {
                ip.dst = to.ip();
                *dst = to.port();
            }
        }
    }
    Ok(())
}
