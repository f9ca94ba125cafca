//! The overlay's trust boundary on real nodes: a pod cannot inject
//! encapsulated packets into another node's dataplane, and a process on a
//! peer node that is not its dataplane cannot either.
//!
//! The attack this guards against: a pod sends a UDP datagram whose payload
//! is a whole VXLAN packet to a peer node's underlay address on the VXLAN
//! port. Its node masquerades the datagram to the node's own underlay
//! address, so without the guards the peer's dataplane takes it for its
//! peer's and delivers the inner packet, with a forged inner source, past the
//! sending pod's anti-spoofing and the target pod's ingress policy.
//!
//! Two nodes on etcd, a pod on each; the crafted packets are built with
//! etherparse (an independent library) and sent from inside the namespaces
//! with ordinary UDP sockets, as a pod or a process on the node would.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use etherparse::PacketBuilder;
use tweed_suite::cluster::{ClusterPod, NodeSpec, start_together};
use tweed_suite::daemon::Daemon;
use tweed_suite::etcd::Etcd;
use tweed_suite::netns::Netns;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::wait_ping;
use tweed_suite::underlay::Underlay;

const PREFIX: &str = "ovg";
const BASE: &str = "10.96.23";
const FIRST: Duration = Duration::from_secs(20);
/// The port the target pod listens on.
const TARGET_PORT: u16 = 7777;
/// How long the target pod listens for.
const LISTEN_SECS: &str = "12";

/// Prints each datagram received on ADDR:PORT for SECONDS, one per line
/// (after a `ready` line). Args: ADDR PORT SECONDS.
const UDP_LOG: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
end = time.monotonic() + float(sys.argv[3])
print("ready", flush=True)
while True:
    left = end - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        data, peer = s.recvfrom(65535)
    except socket.timeout:
        break
    print(data.decode(errors="replace"), flush=True)
"#;

/// Sends each hex payload as one UDP datagram to ADDR:PORT, from SPORT (0:
/// any port), three times. Args: ADDR PORT SPORT HEX...
const UDP_SEND: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[3])))
for _ in range(3):
    for payload in sys.argv[4:]:
        s.sendto(bytes.fromhex(payload), (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.2)
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An IPv4/UDP packet from `src` to `dst:TARGET_PORT` carrying `text`.
fn inner_ipv4(src: Ipv4Addr, dst: Ipv4Addr, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .udp(5555, TARGET_PORT)
        .write(&mut out, text.as_bytes())
        .expect("an inner packet");
    out
}

/// A VXLAN payload (VNI 1) whose inner frame is for `vtep` and carries an
/// IPv4/UDP packet from `src` to `dst:TARGET_PORT` with `text`.
fn vxlan_payload(vtep: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, text: &str) -> Vec<u8> {
    let mut out = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    PacketBuilder::ethernet2([0x02, 0x77, 0, 0, 0, 1], vtep)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(5555, TARGET_PORT)
        .write(&mut out, text.as_bytes())
        .expect("a VXLAN payload");
    out
}

/// The VTEP MAC the daemon gives a node: 02:77 and its underlay IPv4 address.
fn vtep_of(underlay: IpAddr) -> [u8; 6] {
    let IpAddr::V4(v4) = underlay else {
        panic!("an IPv4 underlay")
    };
    let o = v4.octets();
    [0x02, 0x77, o[0], o[1], o[2], o[3]]
}

/// Sends hex payloads over UDP from inside `ns`.
fn send(ns: &Netns, to: IpAddr, port: u16, from_port: u16, payloads: &[Vec<u8>]) {
    let hexes: Vec<String> = payloads.iter().map(|p| hex(p)).collect();
    let (to, port, from_port) = (to.to_string(), port.to_string(), from_port.to_string());
    let mut args = vec!["-c", UDP_SEND, &to, &port, &from_port];
    args.extend(hexes.iter().map(String::as_str));
    let out = ns.exec_bounded("python3", &args, Duration::from_secs(10));
    assert!(out.success(), "UDP send from {}: {out}", ns.name());
}

/// A drop counter of the node's dataplane, from `tweed stats -o json`.
fn drops(daemon: &Daemon, reason: &str) -> u64 {
    let stats = daemon.cli_json(&["stats"]);
    stats["drops"][reason].as_u64().unwrap_or_else(|| {
        panic!(
            "`tweed stats` on {} has no {reason} drop counter: {stats}",
            daemon.name()
        )
    })
}

#[test]
fn pods_and_node_processes_cannot_inject_into_a_peers_overlay() {
    if !require_root() {
        return;
    }
    let underlay = Underlay::new(PREFIX, BASE, 2);
    let etcd = Etcd::start(underlay.switch(), underlay.switch_ip());
    let args: Vec<String> = ["--etcd-endpoints", etcd.endpoint(), "--workers", "1"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let specs = [
        NodeSpec {
            netns: underlay.node(0),
            name: "node0",
            args: &args,
        },
        NodeSpec {
            netns: underlay.node(1),
            name: "node1",
            args: &args,
        },
    ];
    let daemons = start_together(&specs);
    let attacker = ClusterPod::add(&daemons[0], PREFIX, "attacker");
    let target = ClusterPod::add(&daemons[1], PREFIX, "target");
    assert!(
        wait_ping(&attacker.netns, target.ip(), FIRST),
        "the two pods reach each other across the overlay"
    );
    let (IpAddr::V4(attacker_ip), IpAddr::V4(target_ip)) = (attacker.ip(), target.ip()) else {
        panic!("IPv4 pods")
    };
    // A forged source in node0's subnet: what node1 accepts from node0.
    let forged = Ipv4Addr::from(u32::from(attacker_ip) + 100);
    let node1 = underlay.node_ip(1);

    let mut listener = target.netns.spawn(
        "python3",
        &[
            "-c",
            UDP_LOG,
            "0.0.0.0",
            &TARGET_PORT.to_string(),
            LISTEN_SECS,
        ],
    );
    let lines = tweed_suite::traffic::lines_of(listener.stdout.take().expect("stdout"));
    assert_eq!(
        lines.recv_timeout(Duration::from_secs(10)).as_deref(),
        Ok("ready"),
        "the target's listener starts"
    );

    let tunnel_before = drops(&daemons[0], "tunnel_port");
    let source_port_before = drops(&daemons[1], "wrong_source_port");
    // The control: plain UDP from the attacker pod arrives.
    send(
        &attacker.netns,
        target.ip(),
        TARGET_PORT,
        0,
        &[b"HELLO".to_vec()],
    );
    // From the attacker pod: VXLAN to node1's VXLAN port, flannel's UDP
    // format to its UDP port, and VXLAN to its UDP port.
    let vxlan = vxlan_payload(vtep_of(node1), forged, target_ip, "INJECTED-VXLAN");
    send(
        &attacker.netns,
        node1,
        4789,
        0,
        std::slice::from_ref(&vxlan),
    );
    send(
        &attacker.netns,
        node1,
        8285,
        0,
        &[inner_ipv4(forged, target_ip, "INJECTED-UDP")],
    );
    // From node0's host, a process other than the dataplane (say a
    // hostNetwork pod without root): its ephemeral port is not one of
    // node0's VXLAN source ports.
    let host = vxlan_payload(vtep_of(node1), forged, target_ip, "INJECTED-HOST");
    send(underlay.node(0), node1, 4789, 0, &[host]);

    let mut received = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
        received.push(line);
    }
    let _ = listener.wait();
    assert!(
        received.iter().any(|l| l == "HELLO"),
        "the target pod's listener got the control datagram: {received:?}"
    );
    let injected: Vec<&String> = received
        .iter()
        .filter(|l| l.starts_with("INJECTED"))
        .collect();
    assert!(
        injected.is_empty(),
        "nothing injected reaches the target pod, got {injected:?}"
    );
    assert!(
        poll::wait(Duration::from_secs(5), || drops(&daemons[0], "tunnel_port")
            >= tunnel_before + 6),
        "node0 counts the attacker's six tunnel datagrams as tunnel_port drops (before {tunnel_before}, now {})",
        drops(&daemons[0], "tunnel_port")
    );
    assert!(
        poll::wait(Duration::from_secs(5), || drops(
            &daemons[1],
            "wrong_source_port"
        ) >= source_port_before + 3),
        "node1 drops the host process's VXLAN as wrong_source_port (before {source_port_before}, now {})",
        drops(&daemons[1], "wrong_source_port")
    );
    drop(attacker);
    drop(target);
    drop(daemons);
    drop(etcd);
}
