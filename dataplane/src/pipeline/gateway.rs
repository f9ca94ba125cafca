//! Frames from taps: parsing, anti-spoofing, and the gateway's own answers
//! (proxy ARP, neighbour discovery for fe80::1, ping to the gateway).

use std::net::{IpAddr, Ipv6Addr};

use super::drop::DropReason;
use super::frame_edit::{E, Origin, put_reply};
use super::parse::{self, Arp, Ip, L3, Parsed, Transport};
use super::reply;
use super::trace::{Stage, Tracer};
use super::{Action, Counters, Pipeline};
use crate::frame::Frame;
use crate::table::endpoints::Endpoint;
use crate::table::nexthop::PortId;
use crate::table::tables::{GATEWAY_V4, GATEWAY_V6, HAIRPIN_V6};

/// ICMPv6 neighbour solicitation.
const ND_NEIGHBOUR_SOLICIT: u8 = 135;
/// ICMP echo request (v4, v6).
const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REQUEST_V6: u8 = 128;

impl Pipeline<'_> {
    /// A frame from a pod's tap (`Some(port)`) or the host port (`None`).
    pub(super) fn tap_frame<T: Tracer>(
        &self,
        port: Option<PortId>,
        frame: &mut Frame,
        counters: &mut Counters,
        tracer: &mut T,
    ) -> Action {
        let vnet = match Self::vnet_header(frame) {
            Ok(vnet) => vnet,
            Err(reason) => return Action::Drop(reason),
        };
        let parsed = match parse::parse_ethernet(&frame.data()[E..]) {
            Ok(parsed) => parsed,
            Err(reason) => return Action::Drop(reason),
        };
        tracer.stage(|| Stage::Parsed(summary(&parsed)));
        let from = match port {
            Some(port) => {
                let Some(endpoint) = self.tables.endpoints.get(port) else {
                    return Action::Drop(DropReason::UnknownPort);
                };
                if let Err(reason) = spoof_check(endpoint, &parsed) {
                    tracer.stage(|| Stage::SpoofCheck { passed: false });
                    return Action::Drop(reason);
                }
                tracer.stage(|| Stage::SpoofCheck { passed: true });
                Origin::Pod(endpoint)
            }
            None => Origin::Host,
        };
        match parsed.l3 {
            L3::Arp(arp) => {
                tracer.stage(|| Stage::Gateway);
                self.answer_arp(from, frame, parsed.src_mac, arp)
            }
            L3::Ip(ip) => {
                if let Some(action) = self.for_gateway(from, frame, parsed.src_mac, &ip, tracer) {
                    return action;
                }
                self.forward(from, frame, vnet, parsed.src_mac, ip, counters, tracer)
            }
        }
    }

    /// Proxy ARP: every address a pod (or the host) asks for is the gateway's,
    /// because every pod packet is routed at L3.
    fn answer_arp(
        &self,
        from: Origin<'_>,
        frame: &mut Frame,
        src_mac: [u8; 6],
        arp: Arp,
    ) -> Action {
        if arp.operation != 1 || arp.sender_ip == arp.target_ip || arp.sender_ip.is_unspecified() {
            // Replies, announcements and address probes need no answer.
            return Action::Drop(DropReason::ArpIgnored);
        }
        if let Origin::Pod(endpoint) = from
            && endpoint.ipv4 == Some(arp.target_ip)
        {
            return Action::Drop(DropReason::ArpIgnored);
        }
        let answer = reply::arp_reply(
            self.tables.node.gateway_mac,
            arp.target_ip,
            src_mac,
            arp.sender_ip,
        );
        put_reply(frame, &answer, DropReason::ArpIgnored)
    }

    /// Packets for the gateway itself or for link-local multicast: answered
    /// here (`Some`), or `None` to forward.
    fn for_gateway<T: Tracer>(
        &self,
        from: Origin<'_>,
        frame: &mut Frame,
        src_mac: [u8; 6],
        ip: &Ip,
        tracer: &mut T,
    ) -> Option<Action> {
        let action = match ip.dst {
            IpAddr::V4(dst) if dst == GATEWAY_V4 => {
                self.answer_ping(frame, src_mac, ip, ECHO_REQUEST_V4)
            }
            IpAddr::V4(dst) if dst.is_broadcast() || dst.is_multicast() => {
                Action::Drop(DropReason::Broadcast)
            }
            IpAddr::V6(dst) if dst == GATEWAY_V6 => match ip.transport {
                Transport::Icmp {
                    kind: ND_NEIGHBOUR_SOLICIT,
                    ..
                } => self.answer_ns(from, frame, src_mac, ip),
                _ => self.answer_ping(frame, src_mac, ip, ECHO_REQUEST_V6),
            },
            IpAddr::V6(dst) if dst.is_multicast() => match ip.transport {
                Transport::Icmp {
                    kind: ND_NEIGHBOUR_SOLICIT,
                    ..
                } => self.answer_ns(from, frame, src_mac, ip),
                Transport::Icmp { .. } => Action::Drop(DropReason::NdIgnored),
                _ => Action::Drop(DropReason::Broadcast),
            },
            // A backend answering a pod that reached itself through its own
            // Service: the reply of a tracked flow, translated back on the
            // forwarding path, like its IPv4 twin (169.254.1.2).
            IpAddr::V6(dst) if dst == HAIRPIN_V6 => return None,
            IpAddr::V6(dst) if dst.is_unicast_link_local() => Action::Drop(DropReason::ToGateway),
            _ => return None,
        };
        tracer.stage(|| Stage::Gateway);
        Some(action)
    }

    /// Echo requests to the gateway get a reply; anything else to it is dropped.
    fn answer_ping(
        &self,
        frame: &mut Frame,
        src_mac: [u8; 6],
        ip: &Ip,
        echo_request: u8,
    ) -> Action {
        let Transport::Icmp { kind, rest, .. } = ip.transport else {
            return Action::Drop(DropReason::ToGateway);
        };
        if kind != echo_request {
            return Action::Drop(DropReason::ToGateway);
        }
        let data = frame
            .data()
            .get(E + ip.l4 + 8..E + ip.l3 + ip.len)
            .unwrap_or(&[]);
        let answer = reply::echo_reply(
            self.tables.node.gateway_mac,
            src_mac,
            ip.dst,
            ip.src,
            rest,
            data,
        );
        put_reply(frame, &answer, DropReason::ToGateway)
    }

    /// Neighbour solicitations for any address but the asker's own are
    /// answered with the gateway's MAC (the IPv6 twin of proxy ARP).
    fn answer_ns(&self, from: Origin<'_>, frame: &mut Frame, src_mac: [u8; 6], ip: &Ip) -> Action {
        let IpAddr::V6(asker) = ip.src else {
            return Action::Drop(DropReason::NdIgnored);
        };
        let Some(target) = frame
            .data()
            .get(E + ip.l4 + 8..E + ip.l4 + 24)
            .and_then(|t| <[u8; 16]>::try_from(t).ok())
            .map(Ipv6Addr::from)
        else {
            return Action::Drop(DropReason::MalformedL4);
        };
        let own = match from {
            Origin::Pod(endpoint) => endpoint.ipv6 == Some(target),
            Origin::Host | Origin::Peer => false,
        };
        // A solicitation from the unspecified address is duplicate address
        // detection (RFC 4862 §5.4.2): answering it would make the pod give
        // up the address it is probing, so it never gets an answer.
        if asker.is_unspecified() || own || target == asker || target.is_multicast() {
            return Action::Drop(DropReason::NdIgnored);
        }
        let answer =
            reply::neighbour_advertisement(self.tables.node.gateway_mac, target, src_mac, asker);
        put_reply(frame, &answer, DropReason::NdIgnored)
    }
}

/// A pod may send only from its own MAC and its own addresses (or, for IPv6,
/// a link-local address, which can only reach the gateway).
fn spoof_check(endpoint: &Endpoint, parsed: &Parsed) -> Result<(), DropReason> {
    if parsed.src_mac != endpoint.mac {
        return Err(DropReason::SpoofedMac);
    }
    match &parsed.l3 {
        L3::Arp(arp) => {
            if arp.sender_mac != endpoint.mac {
                return Err(DropReason::SpoofedMac);
            }
            if !arp.sender_ip.is_unspecified() && endpoint.ipv4 != Some(arp.sender_ip) {
                return Err(DropReason::SpoofedIp);
            }
        }
        L3::Ip(ip) => {
            let link_local_to_gateway = match (ip.src, ip.dst) {
                (IpAddr::V6(src), IpAddr::V6(dst)) => {
                    (src.is_unicast_link_local() || src.is_unspecified())
                        && (dst == GATEWAY_V6 || dst.is_multicast())
                }
                _ => false,
            };
            if !endpoint.owns(ip.src) && !link_local_to_gateway {
                return Err(DropReason::SpoofedIp);
            }
        }
    }
    Ok(())
}

fn summary(parsed: &Parsed) -> String {
    match &parsed.l3 {
        L3::Arp(arp) => format!(
            "arp op {} {} asks for {}",
            arp.operation, arp.sender_ip, arp.target_ip
        ),
        L3::Ip(ip) => {
            let (sport, dport) = ip.flow_ports();
            format!(
                "{} {}:{} -> {}:{} proto {} ttl {} len {}",
                if ip.is_v6() { "ipv6" } else { "ipv4" },
                ip.src,
                sport,
                ip.dst,
                dport,
                ip.protocol,
                ip.ttl,
                ip.len
            )
        }
    }
}
