//! What a pod may not do: send from an address or MAC that is not its own
//! (dropped, counted as `spoofed_ip` / `spoofed_mac`, never delivered), or
//! feed the dataplane garbage (counted by reason) — and forwarding carries on.
//!
//! The frames are built with etherparse (an independent library) and written
//! from inside the pod with a raw `AF_PACKET` socket, i.e. through the pod's
//! tap exactly as a misbehaving pod would.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use etherparse::PacketBuilder;
use tweed_suite::netns::Netns;
use tweed_suite::node::Node;
use tweed_suite::pod::{IFNAME, Pod};
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{ping, wait_ping};

const FIRST: Duration = Duration::from_secs(10);
const PING: Duration = Duration::from_secs(5);

/// Writes each hex-encoded frame on IFACE. Args: IFACE HEX...
const RAW_SEND: &str = r#"
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for frame in sys.argv[2:]:
    s.send(bytes.fromhex(frame))
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(text: &str) -> [u8; 6] {
    text.parse::<tweed_api::dataplane::proto::MacAddr>()
        .expect("MAC")
        .0
}

/// An ICMP echo request in an Ethernet frame.
fn echo(src_mac: [u8; 6], dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], seq: u16) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src, dst, 64)
        .icmpv4_echo_request(0x7777, seq);
    let payload = [0x42u8; 32];
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut frame, &payload)
        .expect("build an echo request");
    frame
}

/// The echo requests `ns`'s kernel has received (`Icmp: InEchos` in
/// `/proc/net/snmp`, which is per namespace).
fn icmp_in_echos(ns: &Netns) -> u64 {
    let out = ns.exec("cat", &["/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut icmp = text.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (
        icmp.next().expect("Icmp header"),
        icmp.next().expect("Icmp values"),
    );
    let i = names
        .split_whitespace()
        .position(|n| n == "InEchos")
        .expect("InEchos");
    values
        .split_whitespace()
        .nth(i)
        .and_then(|v| v.parse().ok())
        .expect("a count")
}

/// Sends raw frames from inside `ns`.
fn send_raw(ns: &Netns, frames: &[Vec<u8>]) {
    let hexes: Vec<String> = frames.iter().map(|f| hex(f)).collect();
    let mut args = vec!["-c", RAW_SEND, IFNAME];
    args.extend(hexes.iter().map(String::as_str));
    let out = ns.exec_bounded("python3", &args, Duration::from_secs(10));
    assert!(out.success(), "raw send from {}: {out}", ns.name());
}

/// Waits until every named drop counter has grown by at least the given
/// amount over `before`; returns the last counters seen.
fn wait_drops(
    node: &Node,
    before: &BTreeMap<String, u64>,
    grown: &[(&[&str], u64)],
) -> BTreeMap<String, u64> {
    let mut now = before.clone();
    let ok = poll::wait(Duration::from_secs(5), || {
        now = node.api.stats().drops;
        grown.iter().all(|(reasons, n)| {
            let sum = |m: &BTreeMap<String, u64>| reasons.iter().map(|r| m[*r]).sum::<u64>();
            sum(&now) >= sum(before) + n
        })
    });
    assert!(
        ok,
        "expected drop counters to grow by {grown:?}\nbefore: {before:?}\nafter:  {now:?}"
    );
    now
}

#[test]
fn forged_and_malformed_frames_are_dropped_and_counted() {
    if !require_root() {
        return;
    }
    let prefix = "grd";
    let node = Node::standalone(prefix, "192.168.205.1", &[]);
    let a = Pod::attach(
        &node,
        prefix,
        "a",
        Some("10.244.5.2".parse().unwrap()),
        None,
    );
    let b = Pod::attach(
        &node,
        prefix,
        "b",
        Some("10.244.5.3".parse().unwrap()),
        None,
    );
    let b4 = IpAddr::V4(b.ipv4());
    assert!(
        wait_ping(&a.netns, b4, FIRST),
        "a → b before anything is forged"
    );

    let gateway = node.api.dump().node.gateway_mac.0;
    let own_mac = a.port.mac.0;
    assert_eq!(
        mac(&a.netns.mac(IFNAME)),
        own_mac,
        "the pod's eth0 has the MAC port_add reported"
    );
    let (own_ip, dst) = (a.ipv4().octets(), b.ipv4().octets());

    // Forged source IP, then forged source MAC: 5 echo requests each.
    let before = node.api.stats();
    let echoes_before = icmp_in_echos(&b.netns);
    let forged_ip: Vec<_> = (0..5)
        .map(|i| echo(own_mac, gateway, [10, 244, 5, 99], dst, i))
        .collect();
    let forged_mac: Vec<_> = (0..5)
        .map(|i| {
            echo(
                [0x02, 0xde, 0xad, 0xbe, 0xef, 0x01],
                gateway,
                own_ip,
                dst,
                i,
            )
        })
        .collect();
    send_raw(&a.netns, &forged_ip);
    send_raw(&a.netns, &forged_mac);
    wait_drops(
        &node,
        &before.drops,
        &[(&["spoofed_ip"], 5), (&["spoofed_mac"], 5)],
    );
    // The frames have been processed (counted); none reached b's kernel.
    assert_eq!(
        icmp_in_echos(&b.netns),
        echoes_before,
        "no forged echo request reached b"
    );

    // Garbage, each from the pod's own MAC to the gateway.
    let eth = |ethertype: u16, payload: &[u8]| {
        let mut f = Vec::new();
        f.extend_from_slice(&gateway);
        f.extend_from_slice(&own_mac);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    };
    let good_ip = echo(own_mac, gateway, own_ip, dst, 9)[14..].to_vec();
    let mut bad_version = good_ip.clone();
    bad_version[0] = 0x65; // version 6 in an IPv4 ethertype
    let mut bad_ihl = good_ip.clone();
    bad_ihl[0] = 0x42; // header length 8 bytes < 20
    let mut lying_length = good_ip.clone();
    lying_length[2..4].copy_from_slice(&1400u16.to_be_bytes()); // total length beyond the frame
    let garbage = vec![
        eth(0x88b5, &[0xab; 46]),   // unknown ethertype (local experimental)
        eth(0x88b6, &[0xcd; 46]),   // and another
        eth(0x0800, &good_ip[..8]), // IPv4 header cut short
        eth(0x0806, &[0x00, 0x01]), // ARP cut short
        eth(0x0800, &bad_version),
        eth(0x0800, &bad_ihl),
        eth(0x0800, &lying_length),
        eth(0x86dd, &[0x60, 0, 0]), // IPv6 header cut short
    ];
    let before = node.api.stats().drops;
    send_raw(&a.netns, &garbage);
    let malformed: &[&str] = &["truncated", "malformed_ip", "malformed_arp", "malformed_l4"];
    wait_drops(
        &node,
        &before,
        &[
            (&["unknown_ethertype"], 2),
            (&["malformed_ip"], 2),
            (malformed, 6),
        ],
    );

    // Forwarding carries on.
    assert!(ping(&a.netns, b4, 5, PING), "a → b after the garbage");
    assert!(
        ping(&b.netns, IpAddr::V4(a.ipv4()), 5, PING),
        "b → a after the garbage"
    );
}
