//! One frame per drop reason, and a check that every reason has one: a new
//! reason without a case here fails the build's tests.

use super::*;
use super::{services, services_external};
use crate::pipeline::DropReason;
use crate::table::tables::GATEWAY_V4;
use crate::wire::virtio_net::{F_NEEDS_CSUM, VirtioNetHdr};

fn with_vnet(vnet: VirtioNetHdr, eth: Vec<u8>) -> Vec<u8> {
    let mut bytes = vnet.to_bytes().to_vec();
    bytes.extend_from_slice(&eth);
    bytes
}

fn vxlan_to(vni: u32, flags: u8, inner_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut out = vec![flags, 0, 0, 0];
    out.extend_from_slice(&(vni << 8).to_be_bytes());
    PacketBuilder::ethernet2(PEER2_VTEP, inner_mac)
        .ipv4(src.octets(), dst.octets(), 63)
        .udp(1, 2)
        .write(&mut out, b"")
        .unwrap();
    out
}

fn arp_reply_from_a() -> Vec<u8> {
    let packet = etherparse::ArpPacket::new(
        etherparse::ArpHardwareId::ETHERNET,
        etherparse::EtherType::IPV4,
        etherparse::ArpOperation::REPLY,
        &MAC_A,
        &POD_A.octets(),
        &GW_MAC,
        &GATEWAY_V4.octets(),
    )
    .unwrap();
    let mut out = Vec::new();
    etherparse::Ethernet2Header {
        source: MAC_A,
        destination: GW_MAC,
        ether_type: etherparse::EtherType::ARP,
    }
    .write(&mut out)
    .unwrap();
    packet.write(&mut out).unwrap();
    out
}

fn case(reason: DropReason) -> (Fixture, Ingress, Vec<u8>) {
    let mut fx = Fixture::new();
    let port_a = Ingress::Port(PORT_A);
    let vx = from_underlay(Backend::Vxlan, NODE2);
    let (ingress, bytes) = match reason {
        DropReason::Truncated => (port_a, vec![0; 12]),
        DropReason::BadVnetHeader => {
            let vnet = VirtioNetHdr {
                flags: F_NEEDS_CSUM,
                csum_start: 4000,
                csum_offset: 16,
                ..Default::default()
            };
            (
                port_a,
                with_vnet(vnet, tcp4(MAC_A, POD_A, REMOTE_VX, 80, b"")),
            )
        }
        DropReason::UnknownEthertype => {
            let mut eth = tcp4(MAC_A, POD_A, POD_B, 80, b"");
            eth[12..14].copy_from_slice(&[0x88, 0xcc]);
            (port_a, tap(eth))
        }
        DropReason::MalformedArp => {
            let mut eth = arp_reply_from_a();
            eth[14 + 4] = 8;
            (port_a, tap(eth))
        }
        DropReason::ArpIgnored => (port_a, tap(arp_reply_from_a())),
        DropReason::MalformedIp => {
            let mut eth = tcp4(MAC_A, POD_A, POD_B, 80, b"");
            eth[14] = 0x55;
            (port_a, tap(eth))
        }
        DropReason::MalformedL4 => {
            let mut eth = udp4(MAC_A, POD_A, POD_B, 64, b"");
            eth[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&9000u16.to_be_bytes());
            (port_a, tap(eth))
        }
        DropReason::Fragment => {
            let mut eth = udp4(MAC_A, POD_A, POD_B, 64, &[0; 16]);
            eth[14 + 6..14 + 8].copy_from_slice(&0x0010u16.to_be_bytes());
            (port_a, tap(eth))
        }
        DropReason::SpoofedMac => (port_a, tap(tcp4(MAC_B, POD_A, POD_B, 80, b""))),
        DropReason::SpoofedIp => (port_a, tap(tcp4(MAC_A, OUTSIDE, POD_B, 80, b""))),
        DropReason::UnknownPort => (
            Ingress::Port(PortId(9)),
            tap(tcp4(MAC_A, POD_A, POD_B, 80, b"")),
        ),
        DropReason::Broadcast => (
            port_a,
            tap(udp4(MAC_A, POD_A, Ipv4Addr::BROADCAST, 64, b"")),
        ),
        DropReason::NdIgnored => {
            let mut out = Vec::new();
            PacketBuilder::ethernet2(MAC_A, [0x33, 0x33, 0, 0, 0, 1])
                .ipv6(
                    POD_A6.octets(),
                    [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                    1,
                )
                .icmpv6(etherparse::Icmpv6Type::RouterSolicitation)
                .write(&mut out, &[])
                .unwrap();
            (port_a, tap(out))
        }
        DropReason::ToGateway => (port_a, tap(udp4(MAC_A, POD_A, GATEWAY_V4, 64, b""))),
        DropReason::TtlExceeded => (port_a, tap(udp4(MAC_A, POD_A, POD_B, 1, b""))),
        DropReason::NoRoute => {
            fx = Fixture::with_default_route(false);
            (port_a, tap(udp4(MAC_A, POD_A, OUTSIDE, 64, b"")))
        }
        DropReason::TooBig => (
            port_a,
            tap(tcp4_df(MAC_A, POD_A, REMOTE_VX, &[0; 1500], true)),
        ),
        DropReason::Blackhole => (port_a, tap(udp4(MAC_A, POD_A, BLACKHOLED, 64, b""))),
        DropReason::HostLoop => (Ingress::Host, tap(udp4(HOST_MAC, POD_A, OUTSIDE, 64, b""))),
        DropReason::PolicyEgress => {
            let deny = deny_all();
            let allow = allow_all();
            fx.set_policy(PORT_A, &allow, &deny);
            (port_a, tap(udp4(MAC_A, POD_A, POD_B, 64, b"")))
        }
        DropReason::PolicyIngress => {
            let deny = deny_all();
            let allow = allow_all();
            fx.set_policy(PORT_B, &deny, &allow);
            (port_a, tap(udp4(MAC_A, POD_A, POD_B, 64, b"")))
        }
        DropReason::UnknownPeer => (
            from_underlay(Backend::Vxlan, OUTSIDE),
            vxlan_to(1, 8, VTEP_MAC, REMOTE_VX, POD_A),
        ),
        DropReason::BadVxlan => (vx, vxlan_to(1, 0, VTEP_MAC, REMOTE_VX, POD_A)),
        DropReason::WrongVni => (vx, vxlan_to(7, 8, VTEP_MAC, REMOTE_VX, POD_A)),
        DropReason::WrongInnerMac => (vx, vxlan_to(1, 8, MAC_A, REMOTE_VX, POD_A)),
        DropReason::DecapSpoofed => (vx, vxlan_to(1, 8, VTEP_MAC, REMOTE_UDP, POD_A)),
        DropReason::DecapNotLocal => (vx, vxlan_to(1, 8, VTEP_MAC, REMOTE_VX, OUTSIDE)),
        DropReason::WrongBackend => (
            from_underlay(Backend::Udp, NODE2),
            bare_udp4(REMOTE_VX, POD_A, b""),
        ),
        DropReason::GsoTooSmall => {
            let vnet = VirtioNetHdr {
                gso_type: crate::wire::virtio_net::GSO_TCPV4,
                gso_size: 1,
                ..VirtioNetHdr::default()
            };
            (
                port_a,
                with_vnet(vnet, tcp4(MAC_A, POD_A, REMOTE_VX, 80, &[7; 3000])),
            )
        }
        DropReason::TunnelPort => {
            let mut out = Vec::new();
            PacketBuilder::ethernet2(MAC_A, GW_MAC)
                .ipv4(POD_A.octets(), NODE2.octets(), 64)
                .udp(40000, 4789)
                .write(&mut out, &vxlan_to(1, 8, PEER2_VTEP, POD_A, REMOTE_VX))
                .unwrap();
            (port_a, tap(out))
        }
        DropReason::WrongSourcePort => (
            Ingress::Underlay {
                backend: Backend::Vxlan,
                src: SocketAddr::new(IpAddr::V4(NODE2), 40000),
            },
            vxlan_to(1, 8, VTEP_MAC, REMOTE_VX, POD_A),
        ),
        DropReason::ServiceNoEndpoint => {
            services::serve(&mut fx, &[services::web(vec![])]);
            (port_a, services::from_a("S"))
        }
        DropReason::ServiceNoLocalEndpoint => {
            let mut web = services::web(vec![services::backend(REMOTE_VX, 80, false)]);
            web.internal = crate::table::service::TrafficPolicy::Local;
            services::serve(&mut fx, &[web]);
            (port_a, services::from_a("S"))
        }
        DropReason::ServiceNoSource => {
            // No overlay address of this node to masquerade the client to.
            services_external::serve_node_port(&mut fx);
            (
                Ingress::Host,
                services_external::from_outside(services_external::CLIENT, "S"),
            )
        }
        DropReason::ServiceTableFull => {
            // Room for a few translations, taken by other connections.
            fx.conntrack = Conntrack::new(ConntrackConfig::new(1, [1, 2, 3, 4]));
            services::serve(
                &mut fx,
                &[services::web(vec![services::backend(POD_B, 80, true)])],
            );
            for port in 1..200 {
                let mut syn = Vec::new();
                PacketBuilder::ethernet2(MAC_A, GW_MAC)
                    .ipv4(POD_A.octets(), services::VIP.octets(), 64)
                    .tcp(port, 80, 1, 64000)
                    .syn()
                    .write(&mut syn, b"")
                    .unwrap();
                fx.run(port_a, &tap(syn));
            }
            (port_a, services::from_a("S"))
        }
    };
    (fx, ingress, bytes)
}

#[test]
fn every_drop_reason_has_a_frame_that_causes_it_and_is_counted() {
    for &reason in DropReason::ALL {
        let (fx, ingress, bytes) = case(reason);
        let (action, counters) = if reason == DropReason::Fragment {
            // Live, a lone later fragment is held (the worker counts the
            // drop when it expires); a dry run drops it at once.
            assert_eq!(fx.run(ingress, &bytes).0, Action::Hold);
            let mut counters = Counters::default();
            let mut frame = Frame::from_bytes(&bytes);
            let action = fx.pipeline().process_traced(
                ingress,
                &mut frame,
                &mut counters,
                &mut crate::pipeline::trace::Recorder::default(),
            );
            (action, counters)
        } else {
            let (action, _, counters) = fx.run(ingress, &bytes);
            (action, counters)
        };
        let answered = matches!(
            reason,
            DropReason::TtlExceeded
                | DropReason::NoRoute
                | DropReason::TooBig
                | DropReason::ServiceNoEndpoint
        );
        if answered {
            assert_eq!(action, Action::Reply, "{reason:?} is answered with ICMP");
        } else {
            assert_eq!(action, Action::Drop(reason), "{reason:?}");
        }
        assert_eq!(counters.drops_of(reason), 1, "{reason:?} is counted once");
        assert_eq!(
            counters.drops.iter().sum::<u64>(),
            1,
            "{reason:?} alone is counted"
        );
        assert!(!reason.describe().is_empty());
    }
}
