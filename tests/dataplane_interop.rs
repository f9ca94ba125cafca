//! tweed's VXLAN against the Linux kernel's: one node runs tweed, the other is
//! plain Linux configured the way flannel's `vxlan` backend configures it
//! (`flannel.1`, VNI 1, UDP 8472, a static FDB entry and a permanent
//! neighbour for the remote subnet, a route through them), with a pod netns
//! routed behind it. Pings and checked TCP transfers both ways prove the wire
//! format against an independent implementation.

use std::net::IpAddr;
use std::time::Duration;

use tweed_api::dataplane::proto::PeerSpec;
use tweed_dataplane::table::peers::Backend;
use tweed_suite::netns::{End, Netns, veth};
use tweed_suite::node::Node;
use tweed_suite::pod::Pod;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{ping, tcp_transfer, udp_round_trip, wait_ping};

const FIRST: Duration = Duration::from_secs(10);
const PING: Duration = Duration::from_secs(5);
const TRANSFER: Duration = Duration::from_secs(30);

#[test]
fn tweed_and_a_kernel_vxlan_node_exchange_pod_traffic() {
    if !require_root() {
        return;
    }
    let prefix = "iop";
    let (tweed_ul, kernel_ul) = ("192.168.204.1", "192.168.204.2");
    let tns = Netns::new(prefix, "tweed");
    let kernel = Netns::new(prefix, "kern");
    let kpod = Netns::new(prefix, "kpod");
    veth(
        End {
            ns: &tns,
            ifname: "u0",
            addr: Some("192.168.204.1/24"),
        },
        End {
            ns: &kernel,
            ifname: "u0",
            addr: Some("192.168.204.2/24"),
        },
    );
    // A real NIC finishes offloaded checksums; the kernel's veth does not.
    kernel.disable_tx_checksum("u0");
    let tweed = Node::start(
        tns,
        prefix,
        tweed_ul.parse().unwrap(),
        &["--vxlan-port", "8472", "--vni", "1"],
    );
    let tweed_vtep = tweed.api.dump().node.vtep_mac.to_string();

    // The kernel node, as flannel sets it up: its pod 10.244.2.2 behind a
    // veth, its VTEP flannel.1 with 10.244.2.0/32, and tweed's subnet
    // 10.244.1.0/24 via 10.244.1.0 (tweed's VTEP MAC, at tweed's underlay IP).
    kernel.sysctl("net.ipv4.ip_forward=1");
    kernel.ip(&[
        "link",
        "add",
        "flannel.1",
        "type",
        "vxlan",
        "id",
        "1",
        "dstport",
        "8472",
        "local",
        kernel_ul,
        "dev",
        "u0",
        "nolearning",
    ]);
    kernel.ip(&["link", "set", "flannel.1", "mtu", "1450", "up"]);
    kernel.ip(&["addr", "add", "10.244.2.0/32", "dev", "flannel.1"]);
    let fdb = kernel.exec(
        "bridge",
        &[
            "fdb",
            "append",
            &tweed_vtep,
            "dev",
            "flannel.1",
            "dst",
            tweed_ul,
            "self",
            "permanent",
        ],
    );
    assert!(
        fdb.status.success(),
        "bridge fdb: {}",
        String::from_utf8_lossy(&fdb.stderr)
    );
    kernel.ip(&[
        "neigh",
        "replace",
        "10.244.1.0",
        "lladdr",
        &tweed_vtep,
        "dev",
        "flannel.1",
        "nud",
        "permanent",
    ]);
    kernel.ip(&[
        "route",
        "add",
        "10.244.1.0/24",
        "via",
        "10.244.1.0",
        "dev",
        "flannel.1",
        "onlink",
    ]);
    veth(
        End {
            ns: &kernel,
            ifname: "cni0",
            addr: Some("10.244.2.1/24"),
        },
        End {
            ns: &kpod,
            ifname: "eth0",
            addr: Some("10.244.2.2/24"),
        },
    );
    kpod.ip(&["link", "set", "eth0", "mtu", "1450"]);
    kpod.ip(&["route", "add", "default", "via", "10.244.2.1"]);
    let kernel_vtep = kernel.mac("flannel.1");

    tweed
        .api
        .peer_set(PeerSpec {
            name: "kernel".into(),
            subnets: vec!["10.244.2.0/24".parse().unwrap()],
            underlay_ip: kernel_ul.parse().unwrap(),
            vtep_mac: kernel_vtep.parse().unwrap(),
            backend: Backend::Vxlan,
            source_ports: None,
            partial_checksums: false,
        })
        .unwrap();
    let pod = Pod::attach(
        &tweed,
        prefix,
        "a",
        Some("10.244.1.2".parse().unwrap()),
        None,
    );
    let (tweed_pod, kernel_pod): (IpAddr, IpAddr) =
        (IpAddr::V4(pod.ipv4()), "10.244.2.2".parse().unwrap());

    assert!(
        wait_ping(&pod.netns, kernel_pod, FIRST),
        "tweed pod → kernel pod"
    );
    assert!(
        ping(&pod.netns, kernel_pod, 5, PING),
        "tweed pod → kernel pod, 5 echoes"
    );
    assert!(
        ping(&kpod, tweed_pod, 5, PING),
        "kernel pod → tweed pod, 5 echoes"
    );
    // The kernel node itself (source 10.244.2.0, its flannel.1 address).
    assert!(ping(&kernel, tweed_pod, 3, PING), "kernel node → tweed pod");
    tcp_transfer(&pod.netns, &kpod, kernel_pod, 5301, 4 << 20, TRANSFER).unwrap();
    tcp_transfer(&kpod, &pod.netns, tweed_pod, 5302, 4 << 20, TRANSFER).unwrap();
    udp_round_trip(&kpod, &pod.netns, tweed_pod, 5303, 1400, PING).unwrap();

    let drops = tweed.api.stats().drops;
    for reason in [
        "unknown_peer",
        "bad_vxlan",
        "wrong_vni",
        "wrong_inner_mac",
        "decap_spoofed",
    ] {
        assert_eq!(
            drops[reason], 0,
            "the kernel's VXLAN is accepted as is: {drops:?}"
        );
    }
    // Keep the namespaces alive to the end of the test.
    drop(kpod);
    drop(kernel);
}
