//! Offloads across nodes, from the pod's side: transfers larger than the
//! MTU with the pod's GSO on (super-frames split by the dataplane) and off
//! (every segment built by the pod's kernel), checked byte for byte; UDP
//! super-frames (a socket's `UDP_SEGMENT` sends through the tap's USO) to a
//! pod on the other node and on the same one, every datagram checked; and
//! super-frames whose virtio-net headers lie, written by a pod through an
//! `AF_PACKET` socket with `PACKET_VNET_HDR` (exactly how a misbehaving pod
//! hands the dataplane a GSO header of its choosing): each is dropped and
//! counted or segmented safely, and the workers carry on.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use etherparse::PacketBuilder;
use tweed_api::dataplane::proto::{PeerSpec, StatsReply};
use tweed_dataplane::table::peers::Backend;
use tweed_suite::netns::{End, Netns, veth};
use tweed_suite::node::Node;
use tweed_suite::pod::{IFNAME, Pod};
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{ping, tcp_transfer, udp_round_trip, wait_ping};

const FIRST: Duration = Duration::from_secs(10);
const PING: Duration = Duration::from_secs(5);
const TRANSFER: Duration = Duration::from_secs(30);

/// Two nodes joined by a veth underlay, a pod on each, VXLAN between them.
struct Pair {
    n1: Node,
    n2: Node,
    a: Pod,
    b: Pod,
}

fn pair(prefix: &str, subnet: u8) -> Pair {
    let (n1, n2) = (Netns::new(prefix, "n1"), Netns::new(prefix, "n2"));
    let (u1, u2) = (format!("192.168.{subnet}.1"), format!("192.168.{subnet}.2"));
    veth(
        End {
            ns: &n1,
            ifname: "u0",
            addr: Some(&format!("{u1}/24")),
        },
        End {
            ns: &n2,
            ifname: "u0",
            addr: Some(&format!("{u2}/24")),
        },
    );
    let n1 = Node::start(n1, &format!("{prefix}1"), u1.parse().unwrap(), &[]);
    let n2 = Node::start(n2, &format!("{prefix}2"), u2.parse().unwrap(), &[]);
    let a = Pod::attach(&n1, prefix, "a", Some("10.244.1.2".parse().unwrap()), None);
    let b = Pod::attach(&n2, prefix, "b", Some("10.244.2.2".parse().unwrap()), None);
    set_peer(&n1, "n2", &n2, "10.244.2.0/24");
    set_peer(&n2, "n1", &n1, "10.244.1.0/24");
    Pair { n1, n2, a, b }
}

fn set_peer(node: &Node, name: &str, other: &Node, subnet: &str) {
    let vtep_mac = other.api.dump().node.vtep_mac;
    node.api
        .peer_set(PeerSpec {
            name: name.into(),
            subnets: vec![subnet.parse().unwrap()],
            underlay_ip: other.underlay_ip,
            vtep_mac,
            backend: Backend::Vxlan,
            source_ports: None,
            partial_checksums: true,
        })
        .unwrap_or_else(|e| panic!("peer_set {name}: {e:?}"));
}

#[test]
fn transfers_cross_nodes_with_and_without_gso_from_the_pods() {
    if !require_root() {
        return;
    }
    let Pair { n1, n2, a, b } = pair("ofl", 211);
    let (a4, b4) = (IpAddr::V4(a.ipv4()), IpAddr::V4(b.ipv4()));
    assert!(wait_ping(&a.netns, b4, FIRST), "a → b");

    // With the pods' offloads on (the default): super-frames leave the pods.
    tcp_transfer(&a.netns, &b.netns, b4, 5301, 4 << 20, TRANSFER)
        .unwrap_or_else(|e| panic!("offloads on, a → b: {e}"));
    tcp_transfer(&b.netns, &a.netns, a4, 5302, 2 << 20, TRANSFER)
        .unwrap_or_else(|e| panic!("offloads on, b → a: {e}"));
    udp_round_trip(&a.netns, &b.netns, b4, 5303, 6000, PING)
        .unwrap_or_else(|e| panic!("offloads on, fragmented UDP: {e}"));

    // Off on both pods: checksums, scatter-gather, TSO and GSO.
    a.netns.disable_offloads(IFNAME);
    b.netns.disable_offloads(IFNAME);
    let before = (
        n1.api.stats().actions.encapsulated,
        n2.api.stats().actions.delivered,
    );
    tcp_transfer(&a.netns, &b.netns, b4, 5311, 4 << 20, TRANSFER)
        .unwrap_or_else(|e| panic!("offloads off, a → b: {e}"));
    tcp_transfer(&b.netns, &a.netns, a4, 5312, 2 << 20, TRANSFER)
        .unwrap_or_else(|e| panic!("offloads off, b → a: {e}"));
    udp_round_trip(&a.netns, &b.netns, b4, 5313, 6000, PING)
        .unwrap_or_else(|e| panic!("offloads off, fragmented UDP: {e}"));
    udp_round_trip(&b.netns, &a.netns, a4, 5314, 1400, PING)
        .unwrap_or_else(|e| panic!("offloads off, UDP: {e}"));
    // 4 MiB in segments of at most 1,398 bytes: thousands of frames each way.
    let after = (
        n1.api.stats().actions.encapsulated,
        n2.api.stats().actions.delivered,
    );
    assert!(
        after.0 >= before.0 + 3_000 && after.1 >= before.1 + 3_000,
        "MTU-sized segments were carried one by one: encapsulated {} → {}, delivered {} → {}",
        before.0,
        after.0,
        before.1,
        after.1
    );
    assert_no_io_errors(&[&n1, &n2]);
}

/// The workers of `nodes` met no I/O error.
fn assert_no_io_errors(nodes: &[&Node]) {
    for node in nodes {
        let stats = node.api.stats();
        assert_eq!(
            stats.workers.iter().map(|w| w.io_errors).sum::<u64>(),
            0,
            "no I/O errors: {:?}",
            stats.workers
        );
    }
}

/// Writes each frame on IFACE with the virtio-net header given beside it
/// (`PACKET_VNET_HDR`); prints `ok` or the error of each send, one a line.
/// Args: IFACE (VNET_HEX FRAME_HEX)...
const VNET_SEND: &str = r#"
import socket, sys
SOL_PACKET, PACKET_VNET_HDR = 263, 15
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
s.bind((sys.argv[1], 0))
args = sys.argv[2:]
for vnet, frame in zip(args[0::2], args[1::2]):
    try:
        s.send(bytes.fromhex(vnet) + bytes.fromhex(frame))
        print("ok")
    except OSError as e:
        print("error", e.errno)
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A virtio-net header (host byte order, as `AF_PACKET` takes it).
fn vnet(flags: u8, gso_type: u8, hdr_len: u16, gso_size: u16, csum: (u16, u16)) -> Vec<u8> {
    let mut h = vec![flags, gso_type];
    for v in [hdr_len, gso_size, csum.0, csum.1] {
        h.extend_from_slice(&v.to_ne_bytes());
    }
    h
}

const NEEDS_CSUM: u8 = 1;
const GSO_TCPV4: u8 = 1;
const GSO_UDP_L4: u8 = 5;
/// Ethernet + IPv4 + TCP headers, where the TCP checksum starts and sits.
const HEADERS: u16 = 14 + 20 + 20;
const CSUM: (u16, u16) = (14 + 20, 16);

/// A TCP segment from `src` to `dst` with `payload` bytes (its checksum is
/// complete; the dataplane may recompute it per segment).
fn tcp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    payload: usize,
) -> Vec<u8> {
    let data: Vec<u8> = (0..payload).map(|i| (i % 251) as u8).collect();
    let builder = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(40_000, 5_399, 1, 65_535)
        .ack(1);
    let mut frame = Vec::with_capacity(builder.size(data.len()));
    builder.write(&mut frame, &data).expect("build frame");
    frame
}

#[test]
fn lying_virtio_headers_from_a_pod_are_dropped_or_segmented_and_the_workers_carry_on() {
    if !require_root() {
        return;
    }
    let Pair { n1, n2, a, b } = pair("ovh", 212);
    let b4 = IpAddr::V4(b.ipv4());
    assert!(wait_ping(&a.netns, b4, FIRST), "a → b before anything lies");

    let gateway = n1.api.dump().node.gateway_mac.0;
    let good = tcp_frame(a.port.mac.0, gateway, a.ipv4(), b.ipv4(), 3_000);
    let mut ip_length_short = good.clone();
    ip_length_short[16..18].copy_from_slice(&140u16.to_be_bytes());
    let mut ip_length_long = good.clone();
    ip_length_long[16..18].copy_from_slice(&65_000u16.to_be_bytes());
    let mut doff_long = good.clone();
    doff_long[14 + 20 + 12] = 0xf0; // a 60-byte TCP header over 20 bytes of options that are payload
    let udp = {
        let builder = PacketBuilder::ethernet2(a.port.mac.0, gateway)
            .ipv4(a.ipv4().octets(), b.ipv4().octets(), 64)
            .udp(40_001, 5_399);
        let mut frame = Vec::new();
        builder.write(&mut frame, &[7u8; 3_000]).expect("build udp");
        frame
    };
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "gso_size 1",
            vnet(NEEDS_CSUM, GSO_TCPV4, HEADERS, 1, CSUM),
            good.clone(),
        ),
        (
            "gso_size 0",
            vnet(NEEDS_CSUM, GSO_TCPV4, HEADERS, 0, CSUM),
            good.clone(),
        ),
        (
            "gso_size 87",
            vnet(NEEDS_CSUM, GSO_TCPV4, HEADERS, 87, CSUM),
            good.clone(),
        ),
        (
            "IP length shorter than the frame",
            vnet(NEEDS_CSUM, GSO_TCPV4, HEADERS, 1_000, CSUM),
            ip_length_short,
        ),
        (
            "IP length beyond the frame",
            vnet(NEEDS_CSUM, GSO_TCPV4, HEADERS, 1_000, CSUM),
            ip_length_long,
        ),
        (
            "TCP header longer than said",
            vnet(NEEDS_CSUM, GSO_TCPV4, HEADERS, 1_000, CSUM),
            doff_long,
        ),
        (
            "UDP under a TCP GSO type",
            vnet(NEEDS_CSUM, GSO_TCPV4, 14 + 20 + 8, 1_000, (34, 6)),
            udp.clone(),
        ),
        (
            "UDP GSO with gso_size 1",
            vnet(NEEDS_CSUM, GSO_UDP_L4, 14 + 20 + 8, 1, (34, 6)),
            udp,
        ),
        (
            "checksum offset past the frame",
            vnet(NEEDS_CSUM, 0, 0, 0, (5_000, 16)),
            good.clone(),
        ),
        (
            "hdr_len past the frame",
            vnet(NEEDS_CSUM, GSO_TCPV4, 9_000, 1_000, CSUM),
            good,
        ),
    ];
    let before = n1.api.stats();
    let (seen_before, too_small_before) = (decided(&before), gso_too_small(&before));
    let mut args = vec!["-c".to_owned(), VNET_SEND.to_owned(), IFNAME.to_owned()];
    for (_, header, frame) in &cases {
        args.push(hex(header));
        args.push(hex(frame));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = a
        .netns
        .exec_bounded("python3", &args, Duration::from_secs(10));
    assert!(out.success(), "vnet send from the pod: {out}");
    let results: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    assert_eq!(results.len(), cases.len(), "one result a frame: {out}");
    let accepted: Vec<&str> = cases
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.as_str() == "ok")
        .map(|((name, _, _), _)| *name)
        .collect();
    eprintln!("the pod's kernel took: {accepted:?}; results {results:?}");
    assert!(
        accepted.contains(&"gso_size 1"),
        "the pod's kernel passes a TCP super-frame with gso_size 1 on (else this test checks nothing): {results:?}"
    );

    // Every frame the kernel took reached the dataplane and was decided:
    // dropped with a reason or forwarded (segmented) — none lost unseen.
    // Each worker publishes its counters on its own clock (every 100 ms), and
    // the pod's own neighbour discovery moves them too: wait for both
    // conditions in one snapshot rather than read a second one after the
    // first holds, which may still miss another worker's latest counts.
    let mut stats = before.clone();
    let ok = poll::wait(Duration::from_secs(5), || {
        stats = n1.api.stats();
        decided(&stats) >= seen_before + accepted.len() as u64
            && gso_too_small(&stats) > too_small_before
    });
    assert!(
        decided(&stats) >= seen_before + accepted.len() as u64,
        "{} frames taken by the pod's kernel, {} decided: {stats:?}",
        accepted.len(),
        decided(&stats) - seen_before
    );
    assert!(
        ok,
        "a segment size of 1 is refused, not split into 3,000 packets: {:?}, actions {:?}",
        stats.drops, stats.actions
    );
    assert_eq!(
        stats.workers.iter().map(|w| w.io_errors).sum::<u64>(),
        0,
        "no I/O errors: {:?}",
        stats.workers
    );

    // The workers carry on: pings and a checked transfer still cross.
    assert!(ping(&a.netns, b4, 5, PING), "a → b after the lies");
    tcp_transfer(&a.netns, &b.netns, b4, 5401, 1 << 20, TRANSFER)
        .unwrap_or_else(|e| panic!("a → b after the lies: {e}"));
    assert!(n2.api.stats().actions.delivered > 0);
}

/// Frames a node decided from its pods: dropped (any reason) or forwarded.
fn decided(stats: &StatsReply) -> u64 {
    stats.drops.values().sum::<u64>() + stats.actions.encapsulated + stats.actions.delivered
}

/// Super-frames a node refused for a segment size below Linux's smallest MSS.
fn gso_too_small(stats: &StatsReply) -> u64 {
    stats.drops.get("gso_too_small").copied().unwrap_or(0)
}

/// Receives UDP on PORT until WANT datagrams came or 10 s passed; checks
/// each against the pattern the sender writes (message, index, then bytes
/// derived from both); prints "ready", then "GOT BAD BYTES".
/// Args: PORT WANT
const UDP_SINK: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
s.bind(("0.0.0.0", int(sys.argv[1])))
want = int(sys.argv[2])
s.settimeout(10)
print("ready", flush=True)
got = bad = total = 0
while got < want:
    try:
        d, _ = s.recvfrom(65535)
    except socket.timeout:
        break
    got += 1
    total += len(d)
    m, j = d[0], d[1]
    if d[2:] != bytes((m * 31 + j * 7 + k) % 256 for k in range(len(d) - 2)):
        bad += 1
print(got, bad, total, flush=True)
"#;

/// Sends MESSAGES messages of SEGMENTS datagrams of SIZE bytes each to
/// DST:PORT, one `sendto` per message with `UDP_SEGMENT` = SIZE (the pod's
/// kernel hands a tap with USO one super-frame per message).
/// Args: DST PORT MESSAGES SEGMENTS SIZE
const UDP_GSO_SEND: &str = r#"
import socket, sys, time
dst, port, messages, segments, size = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_UDP, 103, size)  # UDP_SEGMENT
for m in range(messages):
    msg = b"".join(
        bytes([m, j]) + bytes((m * 31 + j * 7 + k) % 256 for k in range(size - 2))
        for j in range(segments)
    )
    s.sendto(msg, (dst, port))
    time.sleep(0.002)
print("sent", flush=True)
"#;

/// Frames the dataplane read from `pod`'s port so far.
fn rx_frames(node: &Node, pod: &Pod) -> u64 {
    node.api
        .stats()
        .ports
        .iter()
        .find(|p| p.name == pod.name)
        .map_or(0, |p| p.rx_packets)
}

/// `messages` UDP GSO sends of `segments` × 1,200 bytes from `from` to
/// `to`; every datagram arrives intact. Returns how many frames the
/// dataplane read from `from`'s tap meanwhile.
fn udp_gso_transfer(node: &Node, from: &Pod, to: &Pod, port: u16, messages: u32) -> u64 {
    const SEGMENTS: u32 = 10;
    let want = (messages * SEGMENTS).to_string();
    let mut sink = to
        .netns
        .spawn("python3", &["-c", UDP_SINK, &port.to_string(), &want]);
    let lines = tweed_suite::traffic::lines_of(sink.stdout.take().expect("piped"));
    assert_eq!(
        lines.recv_timeout(Duration::from_secs(10)).as_deref(),
        Ok("ready"),
        "the sink starts"
    );
    let before = rx_frames(node, from);
    let dst = to.ipv4().to_string();
    let out = from.netns.exec_bounded(
        "python3",
        &[
            "-c",
            UDP_GSO_SEND,
            &dst,
            &port.to_string(),
            &messages.to_string(),
            &SEGMENTS.to_string(),
            "1200",
        ],
        TRANSFER,
    );
    assert!(out.success(), "UDP GSO send: {out}");
    let result = lines.recv_timeout(Duration::from_secs(15));
    let _ = sink.kill();
    let _ = sink.wait();
    let result = result.expect("the sink reports");
    let counts: Vec<u64> = result
        .split_whitespace()
        .map(|n| n.parse().expect("a number"))
        .collect();
    assert_eq!(
        counts,
        vec![
            u64::from(messages * SEGMENTS),
            0,
            u64::from(messages * SEGMENTS) * 1200
        ],
        "every datagram intact: got, bad, bytes"
    );
    let mut frames = 0;
    poll::wait(Duration::from_secs(2), || {
        frames = rx_frames(node, from) - before;
        frames >= u64::from(messages)
    });
    frames
}

#[test]
fn udp_gso_super_frames_from_a_pod_reach_pods_on_both_nodes_as_datagrams() {
    if !require_root() {
        return;
    }
    let Pair { n1, n2, a, b } = pair("ouso", 213);
    let c = Pod::attach(&n1, "ouso", "c", Some("10.244.1.3".parse().unwrap()), None);
    assert!(wait_ping(&a.netns, IpAddr::V4(b.ipv4()), FIRST), "a → b");
    assert!(wait_ping(&a.netns, IpAddr::V4(c.ipv4()), FIRST), "a → c");
    const MESSAGES: u32 = 40;
    // Across nodes: each super-frame split into datagrams (partial
    // checksums, the peers accept them) and encapsulated.
    let across = udp_gso_transfer(&n1, &a, &b, 5400, MESSAGES);
    // On one node: each super-frame delivered whole to c's tap.
    let local = udp_gso_transfer(&n1, &a, &c, 5401, MESSAGES);
    // A frame a message, not ten: the pod's kernel left the segmentation
    // to the tap (USO), so the dataplane really cut them.
    for (what, frames) in [("across", across), ("local", local)] {
        assert!(
            frames < u64::from(MESSAGES) * 3,
            "{what}: {frames} frames read for {MESSAGES} messages of 10 datagrams: USO is not in effect"
        );
    }
    assert_no_io_errors(&[&n1, &n2]);
}
