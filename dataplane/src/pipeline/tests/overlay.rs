//! Encapsulation to peers and decapsulation from them.

use super::*;
use crate::pipeline::{DropReason, Encap, Split};
use crate::table::nexthop::PeerId;
use crate::wire::virtio_net::{F_NEEDS_CSUM, GSO_TCPV4, VirtioNetHdr};

fn peer_id(fx: &Fixture, name: &str) -> PeerId {
    fx.tables.peers.id_of(name).unwrap()
}

/// Changes peer `name` with `change` and publishes the tables.
fn edit_peer(fx: &mut Fixture, name: &str, change: impl FnOnce(&mut crate::table::peers::Peer)) {
    let mut peer = fx.writer.peers().get(peer_id(fx, name)).unwrap().clone();
    change(&mut peer);
    fx.writer.upsert_peer(peer).unwrap();
    fx.tables = fx.writer.publish();
}

#[test]
fn pod_to_remote_pod_is_vxlan_encapsulated() {
    let fx = Fixture::new();
    let input = tcp4(MAC_A, POD_A, REMOTE_VX, 80, b"over the wire");
    let (action, frame, counters) = fx.run(Ingress::Port(PORT_A), &tap(input.clone()));
    let Action::Encap(Encap {
        peer,
        dst,
        flow_hash,
    }) = action
    else {
        panic!("{action:?}")
    };
    assert_eq!(peer, peer_id(&fx, "node2"));
    assert_eq!(dst, SocketAddr::new(IpAddr::V4(NODE2), 4789));
    assert_eq!(counters.encapsulated, 1);
    let payload = frame.data();
    // RFC 7348: flags 0x08 (I), reserved zero, VNI 1 in bytes 4..7.
    assert_eq!(&payload[..8], &[0x08, 0, 0, 0, 0, 0, 1, 0]);
    let inner = &payload[8..];
    assert_eq!(
        &inner[..6],
        &PEER2_VTEP,
        "inner destination is the peer's VTEP MAC"
    );
    assert_eq!(&inner[6..12], &VTEP_MAC);
    assert_eq!(inner.len(), input.len());
    let packet = sliced(inner);
    let Some(etherparse::NetSlice::Ipv4(ip)) = &packet.net else {
        panic!()
    };
    assert_eq!(ip.header().ttl(), 63);
    assert_ipv4_checksum(inner);
    // The same flow always hashes the same; another flow (most likely) not.
    let (again, _, _) = fx.run(Ingress::Port(PORT_A), &tap(input));
    let Action::Encap(again) = again else {
        panic!()
    };
    assert_eq!(again.flow_hash, flow_hash);
    let (other, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4(MAC_A, POD_A, REMOTE_VX, 81, b"")),
    );
    let Action::Encap(other) = other else {
        panic!()
    };
    assert_ne!(other.flow_hash, flow_hash);
}

#[test]
fn ipv6_pod_to_remote_pod_is_vxlan_encapsulated() {
    let fx = Fixture::new();
    let (action, frame, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp6(MAC_A, POD_A6, REMOTE_VX6, 80, b"v6")),
    );
    assert!(matches!(action, Action::Encap(Encap { dst, .. }) if dst.ip() == IpAddr::V4(NODE2)));
    let packet = sliced(&frame.data()[8..]);
    let Some(etherparse::NetSlice::Ipv6(ip)) = &packet.net else {
        panic!()
    };
    assert_eq!(ip.header().hop_limit(), 63);
}

#[test]
fn pod_to_udp_peer_sends_the_bare_ip_packet() {
    let fx = Fixture::new();
    let input = udp4(MAC_A, POD_A, REMOTE_UDP, 64, b"flannel-udp");
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &tap(input.clone()));
    let Action::Encap(Encap { dst, .. }) = action else {
        panic!("{action:?}")
    };
    assert_eq!(dst, SocketAddr::new(IpAddr::V4(NODE3), 8285));
    let packet = SlicedPacket::from_ip(frame.data()).expect("a bare IP packet");
    let Some(etherparse::NetSlice::Ipv4(ip)) = &packet.net else {
        panic!()
    };
    assert_eq!(ip.header().ttl(), 63);
    assert_eq!(frame.len(), input.len() - 14);
}

#[test]
fn host_to_remote_pod_is_encapsulated() {
    let fx = Fixture::new();
    let node_ip = Ipv4Addr::new(192, 168, 0, 1);
    let (action, _, _) = fx.run(
        Ingress::Host,
        &tap(udp4(HOST_MAC, node_ip, REMOTE_VX, 64, b"")),
    );
    assert!(matches!(action, Action::Encap(_)));
}

#[test]
fn a_partial_checksum_is_completed_before_encapsulation() {
    let fx = Fixture::new();
    let input = tcp4(MAC_A, POD_A, REMOTE_VX, 80, b"checksum me");
    let reference = etherparse::TcpHeaderSlice::from_slice(&input[34..])
        .unwrap()
        .checksum();
    let bytes = partial_tcp4(REMOTE_VX, b"checksum me");
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &bytes);
    assert!(matches!(action, Action::Encap(_)));
    let inner = &frame.data()[8..];
    let tcp = etherparse::TcpHeaderSlice::from_slice(&inner[34..]).unwrap();
    assert_eq!(tcp.checksum(), reference);
}

#[test]
fn an_oversized_gso_super_frame_is_segmented() {
    let fx = Fixture::new();
    let input = tcp4(MAC_A, POD_A, REMOTE_VX, 80, &[7; 4000]);
    let vnet = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 54,
        gso_size: 1398,
        csum_start: 34,
        csum_offset: 16,
    };
    let mut bytes = vnet.to_bytes().to_vec();
    bytes.extend_from_slice(&input);
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &bytes);
    let Action::EncapSplit(_, Split::Segment(hdr)) = action else {
        panic!("{action:?}")
    };
    assert_eq!(hdr, vnet);
    // The frame keeps its virtio-net header, with MACs rewritten for the peer.
    assert_eq!(&frame.data()[10..16], &PEER2_VTEP);
}

#[test]
fn an_oversized_packet_without_df_is_fragmented() {
    let fx = Fixture::new();
    let (action, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4_df(MAC_A, POD_A, REMOTE_VX, &[1; 3000], false)),
    );
    assert!(
        matches!(action, Action::EncapSplit(_, Split::Fragment(MTU))),
        "{action:?}"
    );
}

#[test]
fn an_oversized_packet_with_df_answers_fragmentation_needed() {
    let fx = Fixture::new();
    let (action, frame, counters) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4_df(MAC_A, POD_A, REMOTE_VX, &[1; 2000], true)),
    );
    assert_eq!(action, Action::Reply);
    assert_eq!(counters.drops_of(DropReason::TooBig), 1);
    let packet = sliced(eth_of(&frame));
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &packet.transport else {
        panic!()
    };
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: MTU }
        )
    );
}

#[test]
fn an_oversized_ipv6_packet_answers_packet_too_big() {
    let fx = Fixture::new();
    let (action, frame, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp6(MAC_A, POD_A6, REMOTE_VX6, 80, &[1; 2000])),
    );
    assert_eq!(action, Action::Reply);
    let packet = sliced(eth_of(&frame));
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &packet.transport else {
        panic!()
    };
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv6Type::PacketTooBig {
            mtu: u32::from(MTU)
        }
    );
    assert!(
        icmp.slice().len() <= 1280 - 40,
        "the quote keeps the error within the IPv6 minimum MTU"
    );
}

/// A VXLAN payload carrying an Ethernet frame to `inner_dst_mac`.
fn vxlan(vni: u32, flags: u8, inner_dst_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut out = vec![flags, 0, 0, 0];
    out.extend_from_slice(&(vni << 8).to_be_bytes());
    PacketBuilder::ethernet2(PEER2_VTEP, inner_dst_mac)
        .ipv4(src.octets(), dst.octets(), 63)
        .udp(1000, 2000)
        .write(&mut out, b"from afar")
        .unwrap();
    out
}

#[test]
fn vxlan_from_a_peer_is_decapsulated_and_delivered() {
    let fx = Fixture::new();
    let input = vxlan(1, 0x08, VTEP_MAC, REMOTE_VX, POD_A);
    let (action, frame, _) = fx.run(from_underlay(Backend::Vxlan, NODE2), &input);
    assert_eq!(action, Action::Deliver(PORT_A));
    assert_eq!(
        &frame.data()[..10],
        &[0; 10],
        "an empty virtio-net header for the tap"
    );
    let eth = eth_of(&frame);
    assert_eq!(&eth[..6], &MAC_A);
    assert_eq!(&eth[6..12], &GW_MAC);
    assert_eq!(eth.len(), input.len() - 8);
    let packet = sliced(eth);
    let Some(etherparse::NetSlice::Ipv4(ip)) = &packet.net else {
        panic!()
    };
    assert_eq!(ip.header().ttl(), 62);
    assert_ipv4_checksum(eth);
    assert!(matches!(
        packet.transport,
        Some(etherparse::TransportSlice::Udp(_))
    ));
}

#[test]
fn flannel_udp_from_a_peer_is_decapsulated_and_delivered() {
    let fx = Fixture::new();
    let input = bare_udp4(REMOTE_UDP, POD_B, b"bare");
    let (action, frame, _) = fx.run(from_underlay(Backend::Udp, NODE3), &input);
    assert_eq!(action, Action::Deliver(PORT_B));
    let eth = eth_of(&frame);
    assert_eq!(&eth[..6], &MAC_B);
    assert_eq!(&eth[12..14], &[0x08, 0x00]);
    assert_eq!(eth.len(), 14 + input.len());
    assert_ipv4_checksum(eth);
}

#[test]
fn decapsulation_refuses_strangers_and_wrong_headers() {
    let fx = Fixture::new();
    let stranger = fx.run(
        from_underlay(Backend::Vxlan, Ipv4Addr::new(192, 168, 0, 99)),
        &vxlan(1, 0x08, VTEP_MAC, REMOTE_VX, POD_A),
    );
    assert_eq!(stranger.0, Action::Drop(DropReason::UnknownPeer));
    let wrong_backend = fx.run(
        from_underlay(Backend::Udp, NODE2),
        &bare_udp4(REMOTE_VX, POD_A, b""),
    );
    assert_eq!(wrong_backend.0, Action::Drop(DropReason::WrongBackend));
    let no_i_flag = fx.run(
        from_underlay(Backend::Vxlan, NODE2),
        &vxlan(1, 0x00, VTEP_MAC, REMOTE_VX, POD_A),
    );
    assert_eq!(no_i_flag.0, Action::Drop(DropReason::BadVxlan));
    let wrong_vni = fx.run(
        from_underlay(Backend::Vxlan, NODE2),
        &vxlan(2, 0x08, VTEP_MAC, REMOTE_VX, POD_A),
    );
    assert_eq!(wrong_vni.0, Action::Drop(DropReason::WrongVni));
    let wrong_mac = fx.run(
        from_underlay(Backend::Vxlan, NODE2),
        &vxlan(1, 0x08, MAC_B, REMOTE_VX, POD_A),
    );
    assert_eq!(wrong_mac.0, Action::Drop(DropReason::WrongInnerMac));
    let short = fx.run(from_underlay(Backend::Vxlan, NODE2), &[0x08, 0, 0]);
    assert_eq!(short.0, Action::Drop(DropReason::Truncated));
}

#[test]
fn decapsulation_accepts_only_the_peers_dataplane_source_ports() {
    let fx = Fixture::new();
    let from = |backend, ip, port| Ingress::Underlay {
        backend,
        src: SocketAddr::new(IpAddr::V4(ip), port),
    };
    let input = vxlan(1, 0x08, VTEP_MAC, REMOTE_VX, POD_A);
    // node2 publishes 61000-61007: both ends of the range pass, the ports
    // beside it and a process's ephemeral port do not.
    for port in [61000, 61007] {
        let (action, _, _) = fx.run(from(Backend::Vxlan, NODE2, port), &input);
        assert_eq!(action, Action::Deliver(PORT_A), "source port {port}");
    }
    for port in [60999, 61008, 4789, 40000] {
        let (action, _, counters) = fx.run(from(Backend::Vxlan, NODE2, port), &input);
        assert_eq!(
            action,
            Action::Drop(DropReason::WrongSourcePort),
            "source port {port}"
        );
        assert_eq!(counters.drops[DropReason::WrongSourcePort as usize], 1);
    }
    // flannel's UDP format comes from the UDP port itself.
    let bare = bare_udp4(REMOTE_UDP, POD_B, b"bare");
    let (action, _, _) = fx.run(from(Backend::Udp, NODE3, 8285), &bare);
    assert_eq!(action, Action::Deliver(PORT_B));
    let (action, _, _) = fx.run(from(Backend::Udp, NODE3, 40000), &bare);
    assert_eq!(action, Action::Drop(DropReason::WrongSourcePort));
}

#[test]
fn a_peer_without_published_source_ports_is_accepted_from_any() {
    let mut fx = Fixture::new();
    edit_peer(&mut fx, "node2", |peer| peer.source_ports = None);
    let src = SocketAddr::new(IpAddr::V4(NODE2), 40000);
    let (action, _, _) = fx.run(
        Ingress::Underlay {
            backend: Backend::Vxlan,
            src,
        },
        &vxlan(1, 0x08, VTEP_MAC, REMOTE_VX, POD_A),
    );
    assert_eq!(action, Action::Deliver(PORT_A), "a kernel vxlan peer");
}

/// A pod's UDP datagram to `dst:dport` whose payload is a whole VXLAN
/// packet claiming to come from `inner_src`.
fn crafted_vxlan(dst: Ipv4Addr, dport: u16, inner_src: Ipv4Addr) -> Vec<u8> {
    let payload = vxlan(1, 0x08, PEER2_VTEP, inner_src, REMOTE_VX);
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, GW_MAC)
        .ipv4(POD_A.octets(), dst.octets(), 64)
        .udp(61003, dport)
        .write(&mut out, &payload)
        .unwrap();
    out
}

#[test]
fn pods_cannot_send_to_any_nodes_tunnel_ports() {
    let fx = Fixture::new();
    // To a peer's VXLAN and UDP ports, to this node's own, and with either port to either peer.
    for (dst, dport) in [
        (NODE2, 4789),
        (NODE3, 8285),
        (NODE2, 8285),
        (NODE3, 4789),
        (NODE1, 4789),
        (NODE1, 8285),
    ] {
        let (action, _, counters) = fx.run(
            Ingress::Port(PORT_A),
            &tap(crafted_vxlan(dst, dport, REMOTE_VX)),
        );
        assert_eq!(
            action,
            Action::Drop(DropReason::TunnelPort),
            "{dst}:{dport}"
        );
        assert_eq!(counters.drops[DropReason::TunnelPort as usize], 1);
        assert_eq!(counters.to_host, 0);
    }
    // Other ports on the nodes, and the tunnel ports elsewhere, go to the host as before.
    for (dst, dport) in [(NODE2, 4790), (NODE2, 53), (OUTSIDE, 4789)] {
        let (action, _, _) = fx.run(
            Ingress::Port(PORT_A),
            &tap(crafted_vxlan(dst, dport, REMOTE_VX)),
        );
        assert_eq!(action, Action::ToHost, "{dst}:{dport}");
    }
    // TCP to the VXLAN port number is no tunnel traffic.
    let (action, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4(MAC_A, POD_A, NODE2, 4789, b"")),
    );
    assert_eq!(action, Action::ToHost);
}

#[test]
fn a_peer_may_only_speak_for_its_own_pods() {
    let fx = Fixture::new();
    // node2 sends a packet claiming to come from node3's subnet.
    let (action, _, _) = fx.run(
        from_underlay(Backend::Vxlan, NODE2),
        &vxlan(1, 0x08, VTEP_MAC, REMOTE_UDP, POD_A),
    );
    assert_eq!(action, Action::Drop(DropReason::DecapSpoofed));
    // ...or from a local pod's address.
    let (action, _, _) = fx.run(
        from_underlay(Backend::Vxlan, NODE2),
        &vxlan(1, 0x08, VTEP_MAC, POD_B, POD_A),
    );
    assert_eq!(action, Action::Drop(DropReason::DecapSpoofed));
}

#[test]
fn decapsulated_packets_reach_only_local_pods() {
    let fx = Fixture::new();
    for dst in [OUTSIDE, REMOTE_UDP] {
        let (action, _, _) = fx.run(
            from_underlay(Backend::Vxlan, NODE2),
            &vxlan(1, 0x08, VTEP_MAC, REMOTE_VX, dst),
        );
        assert_eq!(action, Action::Drop(DropReason::DecapNotLocal), "to {dst}");
    }
}

#[test]
fn decapsulated_packets_with_ttl_one_are_dropped_without_an_answer() {
    let fx = Fixture::new();
    let mut out = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    PacketBuilder::ethernet2(PEER2_VTEP, VTEP_MAC)
        .ipv4(REMOTE_VX.octets(), POD_A.octets(), 1)
        .udp(1, 2)
        .write(&mut out, b"")
        .unwrap();
    let (action, _, counters) = fx.run(from_underlay(Backend::Vxlan, NODE2), &out);
    assert_eq!(action, Action::Drop(DropReason::TtlExceeded));
    assert_eq!(counters.replied, 0);
}

#[test]
fn split_parts_are_wrapped_like_the_in_place_path() {
    let fx = Fixture::new();
    let input = tcp4(MAC_A, POD_A, REMOTE_VX, 80, b"same bytes");
    let (_, frame, _) = fx.run(Ingress::Port(PORT_A), &tap(input.clone()));
    // Wrap the rewritten inner frame the way split parts are wrapped.
    let mut wrapped = Vec::new();
    crate::pipeline::encap::encapsulate(&frame.data()[8..], Backend::Vxlan, 1, &mut wrapped);
    assert_eq!(wrapped, frame.data());
    let mut bare = Vec::new();
    crate::pipeline::encap::encapsulate(&frame.data()[8..], Backend::Udp, 1, &mut bare);
    assert_eq!(bare, &frame.data()[8 + 14..]);
}

/// node2 as a tweed node that accepts partial inner checksums.
fn with_partial_peer(mut fx: Fixture) -> Fixture {
    edit_peer(&mut fx, "node2", |peer| peer.partial_checksums = true);
    fx
}

/// A pod's TCP frame behind a virtio-net header asking for its checksum,
/// the field holding the pseudo-header sum (what a tap with TUN_F_CSUM
/// hands over).
fn partial_tcp4(dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut eth = tcp4(MAC_A, POD_A, dst, 80, payload);
    let tcp_len = (eth.len() - 34) as u32;
    let pseudo =
        crate::offload::checksum::pseudo_header_v4(POD_A.octets(), dst.octets(), 6, tcp_len);
    eth[34 + 16..34 + 18].copy_from_slice(&crate::offload::checksum::fold(pseudo).to_be_bytes());
    let vnet = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        csum_start: 34,
        csum_offset: 16,
        ..Default::default()
    };
    let mut bytes = vnet.to_bytes().to_vec();
    bytes.extend_from_slice(&eth);
    bytes
}

#[test]
fn a_peer_that_accepts_partial_checksums_gets_them_flagged_and_others_get_them_completed() {
    let input = partial_tcp4(REMOTE_VX, b"left for the receiver");
    let as_sent = input[10..].to_vec();
    let (action, frame, _) = Fixture::new().run(Ingress::Port(PORT_A), &input);
    assert!(matches!(action, Action::Encap(_)));
    assert_eq!(frame.data()[0], 0x08, "no flag for a full-checksum peer");
    let tcp = etherparse::TcpHeaderSlice::from_slice(&frame.data()[8 + 34..]).unwrap();
    assert_ne!(
        tcp.checksum(),
        u16::from_be_bytes([as_sent[50], as_sent[51]])
    );

    let fx = with_partial_peer(Fixture::new());
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &input);
    assert!(matches!(action, Action::Encap(_)));
    let header = crate::wire::vxlan::Vxlan::new_checked(frame.data()).unwrap();
    assert!(header.partial_csum() && header.vni_valid());
    assert_eq!(
        &header.payload()[34 + 16..34 + 18],
        &as_sent[34 + 16..34 + 18],
        "the checksum field travels as the pod's kernel left it"
    );

    // A frame whose checksum the pod's kernel completed travels unflagged.
    let full = tap(tcp4(MAC_A, POD_A, REMOTE_VX, 80, b"complete"));
    let (_, frame, _) = fx.run(Ingress::Port(PORT_A), &full);
    assert_eq!(frame.data()[0], 0x08);
}

#[test]
fn a_flagged_segment_from_a_peer_reaches_the_pod_marked_partial() {
    let fx = Fixture::new();
    // node2 left the checksum partial: the field holds the pseudo-header sum.
    let partial = partial_tcp4(POD_A, b"left for the receiver");
    let eth = &partial[10..];
    let mut input = vec![0x08 | 0x01, 0, 0, 0, 0, 0, 1, 0];
    let mut inner = eth.to_vec();
    inner[..6].copy_from_slice(&VTEP_MAC);
    inner[6..12].copy_from_slice(&PEER2_VTEP);
    inner[26..30].copy_from_slice(&REMOTE_VX.octets());
    // The source changed: recompute the IPv4 header checksum and the
    // pseudo-header sum.
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&inner[14..]).unwrap();
    let ip_sum = ip.to_header().calc_header_checksum();
    inner[24..26].copy_from_slice(&ip_sum.to_be_bytes());
    let tcp_len = (inner.len() - 34) as u32;
    let pseudo =
        crate::offload::checksum::pseudo_header_v4(REMOTE_VX.octets(), POD_A.octets(), 6, tcp_len);
    inner[50..52].copy_from_slice(&crate::offload::checksum::fold(pseudo).to_be_bytes());
    input.extend_from_slice(&inner);

    let (action, frame, _) = fx.run(from_underlay(Backend::Vxlan, NODE2), &input);
    assert_eq!(action, Action::Deliver(PORT_A));
    let vnet = VirtioNetHdr::parse(frame.data()).unwrap();
    assert_eq!(
        (vnet.flags, vnet.csum_start, vnet.csum_offset),
        (F_NEEDS_CSUM, 34, 16),
        "the tap gets it as a NIC would hand it over"
    );
    let mut eth = eth_of(&frame).to_vec();
    crate::offload::checksum::complete_partial(&mut eth, 34, 16).unwrap();
    let packet = sliced(&eth);
    let (Some(etherparse::NetSlice::Ipv4(ip)), Some(etherparse::TransportSlice::Tcp(tcp))) =
        (&packet.net, &packet.transport)
    else {
        panic!()
    };
    let h = ip.header();
    let expected = tcp
        .to_header()
        .calc_checksum_ipv4_raw(h.source(), h.destination(), tcp.payload())
        .unwrap();
    assert_eq!(tcp.checksum(), expected, "completed, it verifies");

    // The flag on a packet without a TCP or UDP checksum is refused.
    let mut icmp = vec![0x08 | 0x01, 0, 0, 0, 0, 0, 1, 0];
    PacketBuilder::ethernet2(PEER2_VTEP, VTEP_MAC)
        .ipv4(REMOTE_VX.octets(), POD_A.octets(), 63)
        .icmpv4_echo_request(1, 1)
        .write(&mut icmp, b"ping")
        .unwrap();
    let (action, _, _) = fx.run(from_underlay(Backend::Vxlan, NODE2), &icmp);
    assert_eq!(action, Action::Drop(DropReason::BadVxlan));
}
