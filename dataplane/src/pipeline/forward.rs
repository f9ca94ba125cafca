//! Routing an IP packet: connection tracking, policy, the route, and the
//! rewrite for the chosen next hop.

use std::net::IpAddr;

use super::counters::DeniedBy;
use super::drop::DropReason;
use super::flow_tag;
use super::frame_edit::{E, Origin, put_reply, rewrite};
use super::parse::{self, Ip, Transport, proto};
use super::reply::{self, IcmpError};
use super::service::ToService;
use super::trace::{Stage, Tracer};
use super::{Action, Counters, FlowLog, Pipeline};
use crate::frame::Frame;
use crate::table::acl::{Classifier, Verdict};
use crate::table::conntrack::{Direction, FlowKey, Hit, InsertOutcome, TcpFlags};
use crate::table::endpoints::{Endpoint, Mac};
use crate::table::fragments::DatagramId;
use crate::table::nexthop::NextHop;
use crate::table::service;
use crate::table::tables::{HAIRPIN_V4, HAIRPIN_V6};
use crate::wire::virtio_net::VirtioNetHdr;

impl Pipeline<'_> {
    /// Forwards an IP packet in a normalized frame: virtio-net header, then
    /// the Ethernet frame, `ip` with offsets relative to the Ethernet header.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward<T: Tracer>(
        &self,
        from: Origin<'_>,
        frame: &mut Frame,
        vnet: VirtioNetHdr,
        src_mac: Mac,
        mut ip: Ip,
        counters: &mut Counters,
        tracer: &mut T,
    ) -> Action {
        if ip.ttl <= 1 {
            return self.answer_error(
                from,
                frame,
                src_mac,
                &ip,
                IcmpError::TimeExceeded,
                DropReason::TtlExceeded,
                counters,
            );
        }
        let (src_port, dst_port) = match self.fragment_ports::<T>(&ip) {
            Ok(ports) => ports,
            Err(action) => return action,
        };
        if matches!(from, Origin::Pod(_)) && self.is_for_tunnel_port(&ip, dst_port) {
            return Action::Drop(DropReason::TunnelPort);
        }
        let mut key = FlowKey {
            src: ip.src,
            dst: ip.dst,
            protocol: ip.protocol,
            src_port,
            dst_port,
        };
        let mut redirect = None;
        let client = match from {
            Origin::Pod(_) => Some(service::Origin::Pod),
            // The node steers only packets from outside the cluster to a
            // NodePort or an externalIP into the host port (the rest it
            // forwards there has a frontend of no native Service).
            Origin::Host => Some(service::Origin::External),
            Origin::Peer => None,
        };
        if let Some(client) = client {
            match self.service_request(frame, vnet, &mut ip, &key, client, tracer) {
                ToService::No => {}
                ToService::Redirect(to) => {
                    key = to.translated;
                    redirect = Some(to);
                }
                ToService::Refuse => {
                    return self.answer_error(
                        from,
                        frame,
                        src_mac,
                        &ip,
                        IcmpError::PortUnreachable,
                        DropReason::ServiceNoEndpoint,
                        counters,
                    );
                }
                ToService::Drop => return Action::Drop(DropReason::ServiceNoLocalEndpoint),
                ToService::NoSource => return Action::Drop(DropReason::ServiceNoSource),
            }
        }
        let flags = ip.tcp_flags().map(TcpFlags);
        let observed = if T::DRY_RUN {
            self.conntrack.lookup(&key, self.now_ms)
        } else {
            self.conntrack.observe(&key, flags, self.now_ms)
        };
        let action = self.forward_flow(
            from,
            frame,
            vnet,
            src_mac,
            &mut ip,
            key,
            observed,
            redirect.is_some(),
            counters,
            tracer,
        );
        match redirect {
            // A kept translation whose flow conntrack starts again (a TCP SYN
            // on a reused tuple, a packet after its flow expired) is
            // remembered again too: the sweeper may have dropped it meanwhile.
            Some(to) if !self.remember::<T>(&to, observed.is_none(), &action) => {
                Action::Drop(DropReason::ServiceTableFull)
            }
            _ => action,
        }
    }

    /// Forwards a packet of flow `key` (translated, if it was for a
    /// Service), which conntrack `observed` as a packet of that flow or not.
    #[allow(clippy::too_many_arguments)]
    fn forward_flow<T: Tracer>(
        &self,
        from: Origin<'_>,
        frame: &mut Frame,
        vnet: VirtioNetHdr,
        src_mac: Mac,
        ip: &mut Ip,
        key: FlowKey,
        observed: Option<Hit>,
        translated: bool,
        counters: &mut Counters,
        tracer: &mut T,
    ) -> Action {
        let flags = ip.tcp_flags().map(TcpFlags);
        let hit = observed.or_else(|| self.related(frame, ip));
        tracer.stage(|| Stage::Conntrack(hit));
        if let Some(hit) = hit {
            counters.conntrack_hits += 1;
            // A native Service's reply is translated back to the frontend.
            self.service_reply(frame, vnet, ip, &key, hit, tracer);
            if returns_to_host(hit) && !matches!(from, Origin::Host) {
                // The original came in from the host port: the node's kernel
                // translated it (kube-proxy's DNAT), and only it can
                // translate the reply back; or a client outside the cluster
                // sent it, reached through the node.
                return self.hand_to_host::<T>(frame, ip, Some(hit), &key, flags, counters);
            }
        } else if ip.dst == IpAddr::V4(HAIRPIN_V4) || ip.dst == IpAddr::V6(HAIRPIN_V6) {
            // The hairpin address stands in for a pod reaching itself through
            // its Service; it answers those flows' replies and nothing else.
            return Action::Drop(DropReason::ToGateway);
        } else if let Some(sender) = self.egress_checked(from, ip) {
            let allowed = self.policy(
                &sender.egress,
                sender,
                false,
                ip.dst,
                &key,
                counters,
                tracer,
            );
            if !allowed {
                return Action::Drop(DropReason::PolicyEgress);
            }
        }
        // A flow that came in from the host port has been through the node's
        // netfilter: its replies go back there.
        let mut tag = if matches!(from, Origin::Host) {
            flow_tag::VIA_HOST
        } else {
            0
        };
        if translated {
            tag |= flow_tag::SERVICE;
        }

        let hop = self.tables.route(ip.dst);
        tracer.stage(|| Stage::Route {
            prefix: self
                .tables
                .route_with_prefix(ip.dst)
                .map(|(prefix, _)| prefix),
            next_hop: hop,
        });
        match hop {
            None => self.answer_error(
                from,
                frame,
                src_mac,
                ip,
                IcmpError::NoRoute,
                DropReason::NoRoute,
                counters,
            ),
            Some(NextHop::Blackhole) => Action::Drop(DropReason::Blackhole),
            Some(NextHop::Local(port)) => {
                let Some(dst) = self.tables.endpoints.get(port) else {
                    return Action::Drop(DropReason::UnknownPort);
                };
                if hit.is_none() {
                    let allowed =
                        self.policy(&dst.ingress, dst, true, ip.src, &key, counters, tracer);
                    if !allowed {
                        return Action::Drop(DropReason::PolicyIngress);
                    }
                }
                self.track::<T>(hit, &key, flags, tag, counters);
                rewrite(frame, dst.mac, self.tables.node.gateway_mac, ip);
                Action::Deliver(port)
            }
            Some(NextHop::Remote(peer)) => {
                if let Origin::Peer = from {
                    return Action::Drop(DropReason::DecapNotLocal);
                }
                self.track::<T>(hit, &key, flags, tag, counters);
                self.encap(from, frame, vnet, src_mac, ip, peer, counters)
            }
            Some(NextHop::Host) => match from {
                Origin::Host => Action::Drop(DropReason::HostLoop),
                // No peer may use this node as a relay to the outside.
                Origin::Peer => Action::Drop(DropReason::DecapNotLocal),
                Origin::Pod(_) => self.hand_to_host::<T>(frame, ip, hit, &key, flags, counters),
            },
            // The node's own overlay address: pods and peers alike reach it.
            Some(NextHop::Node) => match from {
                Origin::Host => Action::Drop(DropReason::HostLoop),
                Origin::Pod(_) | Origin::Peer => {
                    self.hand_to_host::<T>(frame, ip, hit, &key, flags, counters)
                }
            },
        }
    }

    /// The ports a packet's flow is known by. A datagram's first fragment
    /// has them and they are remembered; a later fragment takes them from
    /// there, or is held (a dry run drops it) until the first has come.
    pub(super) fn fragment_ports<T: Tracer>(&self, ip: &Ip) -> Result<(u16, u16), Action> {
        let Some(fragment) = ip.fragment else {
            return Ok(ip.flow_ports());
        };
        let id = DatagramId {
            src: ip.src,
            dst: ip.dst,
            protocol: ip.protocol,
            id: fragment.id,
        };
        let fragments = self.conntrack.fragments();
        if fragment.is_first() {
            let ports = ip.flow_ports();
            if !T::DRY_RUN {
                fragments.remember(id, ports, self.now_ms);
            }
            return Ok(ports);
        }
        match fragments.ports(&id, self.now_ms) {
            Some(ports) => Ok(ports),
            None if T::DRY_RUN => Err(Action::Drop(DropReason::Fragment)),
            None => Err(Action::Hold),
        }
    }

    /// The local pod whose egress policy a new flow must pass, if any: the
    /// sending pod; or, for a packet the node forwarded back from the host
    /// port with a local pod's source, that pod (kube-proxy's DNAT of its
    /// packet to a Service: policy applies to the real backend). A pod's
    /// packet to a Service address (`service_cidrs`) is checked only then,
    /// after the translation, not against the Service address.
    fn egress_checked<'e>(&'e self, from: Origin<'e>, ip: &Ip) -> Option<&'e Endpoint> {
        match from {
            Origin::Pod(endpoint) => {
                let to_service = self
                    .tables
                    .node
                    .service_cidrs
                    .iter()
                    .any(|net| net.contains(&ip.dst));
                (!to_service).then_some(endpoint)
            }
            Origin::Host => match self.tables.route(ip.src) {
                Some(NextHop::Local(port)) => self.tables.endpoints.get(port),
                _ => None,
            },
            Origin::Peer => None,
        }
    }

    /// Whether a pod's packet is UDP to a node's tunnel port (VXLAN or UDP
    /// encapsulation). Masqueraded by the node, it would reach the peer from
    /// this node's underlay address and be decapsulated as if this dataplane
    /// had sent it, inner source and all; so pods never reach those ports on
    /// any node, as Calico blocks VXLAN from workloads.
    fn is_for_tunnel_port(&self, ip: &Ip, dst_port: u16) -> bool {
        let node = &self.tables.node;
        ip.protocol == proto::UDP
            && (dst_port == node.vxlan_port || dst_port == node.udp_port)
            && self.tables.is_node_underlay(ip.dst)
    }

    /// Hands an allowed packet to the node's kernel: tracks its flow and
    /// rewrites it for the host port (to the kernel's MAC, from the gateway's).
    fn hand_to_host<T: Tracer>(
        &self,
        frame: &mut Frame,
        ip: &Ip,
        hit: Option<Hit>,
        key: &FlowKey,
        flags: Option<TcpFlags>,
        counters: &mut Counters,
    ) -> Action {
        // Flows from pods and peers to the host: their replies come from
        // the host port anyway.
        self.track::<T>(hit, key, flags, 0, counters);
        rewrite(
            frame,
            self.tables.node.host_mac,
            self.tables.node.gateway_mac,
            ip,
        );
        Action::ToHost
    }

    /// Evaluates one endpoint's policy for a new flow (its ingress policy
    /// when `ingress`, with the packet's source as the remote; else its
    /// egress policy, with the destination); true when allowed.
    #[allow(clippy::too_many_arguments)]
    fn policy<T: Tracer>(
        &self,
        classifier: &Classifier,
        endpoint: &Endpoint,
        ingress: bool,
        remote: IpAddr,
        key: &FlowKey,
        counters: &mut Counters,
        tracer: &mut T,
    ) -> bool {
        let port = if matches!(key.protocol, proto::TCP | proto::UDP | proto::SCTP) {
            key.dst_port
        } else {
            0
        };
        let outcome = classifier.classify(remote, key.protocol, port);
        let allowed = outcome.verdict == Verdict::Allow;
        tracer.stage(|| {
            let (verdict, rule, logged) = (outcome.verdict, outcome.rule, outcome.logged.to_vec());
            if ingress {
                Stage::IngressPolicy {
                    verdict,
                    rule,
                    logged,
                }
            } else {
                Stage::EgressPolicy {
                    verdict,
                    rule,
                    logged,
                }
            }
        });
        if T::DRY_RUN {
            return allowed;
        }
        for rule in outcome.logged.iter() {
            counters.log(FlowLog {
                at_ms: self.now_ms,
                flow: *key,
                endpoint: endpoint.name.clone(),
                ingress,
                rule: *rule,
                rule_name: endpoint.rule_names.get(&(ingress, *rule)).cloned(),
                allowed,
            });
        }
        if !allowed {
            let name = outcome
                .rule
                .and_then(|rule| endpoint.rule_names.get(&(ingress, rule)).cloned());
            *counters
                .denied_by_rule
                .entry(DeniedBy {
                    port: endpoint.port,
                    ingress,
                    rule: outcome.rule,
                    name,
                })
                .or_default() += 1;
        }
        allowed
    }

    /// Records a new flow once every policy on its path allowed it.
    fn track<T: Tracer>(
        &self,
        hit: Option<Hit>,
        key: &FlowKey,
        flags: Option<TcpFlags>,
        tag: u32,
        counters: &mut Counters,
    ) {
        if hit.is_some() || T::DRY_RUN {
            return;
        }
        match self.conntrack.insert(key, flags, tag, self.now_ms) {
            InsertOutcome::Busy => counters.conntrack_busy += 1,
            InsertOutcome::AlreadyPresent => {}
            _ => counters.conntrack_created += 1,
        }
    }

    /// An ICMP error about a tracked flow is part of that flow (RFC 5927's
    /// "related" packets: path MTU discovery must work through policy).
    fn related(&self, frame: &Frame, ip: &Ip) -> Option<Hit> {
        let Transport::Icmp { kind, .. } = ip.transport else {
            return None;
        };
        if !parse::is_icmp_error(ip.is_v6(), kind) {
            return None;
        }
        let quoted = frame.data().get(E + ip.l4 + 8..E + ip.l3 + ip.len)?;
        let key = parse::parse_quoted(quoted)?;
        self.conntrack.lookup(&key, self.now_ms)
    }

    /// Answers a packet that cannot be forwarded with an ICMP error, when the
    /// sender can get one; counts `reason` either way.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn answer_error(
        &self,
        from: Origin<'_>,
        frame: &mut Frame,
        src_mac: Mac,
        ip: &Ip,
        error: IcmpError,
        reason: DropReason,
        counters: &mut Counters,
    ) -> Action {
        let is_error = matches!(ip.transport, Transport::Icmp { kind, .. } if parse::is_icmp_error(ip.is_v6(), kind));
        // Only a datagram's first fragment may be answered (RFC 792, RFC 4443 §2.4).
        let later_fragment = ip.fragment.is_some_and(|f| !f.is_first());
        if matches!(from, Origin::Peer)
            || is_error
            || later_fragment
            || ip.src.is_unspecified()
            || ip.src.is_multicast()
        {
            return Action::Drop(reason);
        }
        let Some(offending) = frame.data().get(E + ip.l3..E + ip.l3 + ip.len) else {
            return Action::Drop(reason);
        };
        let answer = reply::icmp_error(
            self.tables.node.gateway_mac,
            src_mac,
            error,
            offending,
            ip.src,
        );
        counters.note(reason);
        put_reply(frame, &answer, reason)
    }
}

/// Whether a packet of a tracked flow goes back to the host port: it is a
/// reply, and the flow's original came in from there.
fn returns_to_host(hit: Hit) -> bool {
    hit.direction == Direction::Reply && hit.tag & flow_tag::VIA_HOST != 0
}
