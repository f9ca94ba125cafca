//! A static peer that runs no tweed: a plain Linux host with the kernel's own
//! `vxlan` device, joined to a tweed node with `tweed peer add`.
//!
//! Node 0 runs `tweed daemon` (embedded store). Node 1 is a host with a VXLAN
//! device `vx0` (VNI 1, UDP 4789, nolearning) carrying 10.250.0.1/24, and the
//! cluster CIDR routed through it the way flannel routes a remote subnet: via
//! a permanent neighbour holding node 0's VTEP MAC and an FDB entry sending
//! that MAC to node 0's underlay IP. The underlay's veths transmit with full
//! checksums (see `Netns::disable_tx_checksum`), as a real NIC would deliver.
//!
//! Then: a pod on node 0 reaches the host and TCP flows both ways; `peer
//! list` shows the peer; `peer remove` takes its route away and the host is
//! unreachable again; a peer whose subnet overlaps node 0's own is refused as
//! a conflict naming that subnet and its holder.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use tweed_control::api::node::{NodeKind, PeerAdd};
use tweed_control::api::proto::{Backend, Empty, MacAddr};
use tweed_control::api::{ClientError, ErrorKind, Request, ResponseBody};
use tweed_dataplane::daemon::config::vtep_mac_for;
use tweed_suite::cluster::{self, ClusterPod, routes, routes_prefix, subnet_v4};
use tweed_suite::daemon::Daemon;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{ping, tcp_transfer, wait_ping};
use tweed_suite::underlay::Underlay;

const PREFIX: &str = "csp";
const BASE: &str = "10.96.22";
/// The daemon's default cluster CIDR.
const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// The subnet behind the static peer, and the host's address in it.
const GW_SUBNET: &str = "10.250.0.0/24";
const GW_ADDR: &str = "10.250.0.1";
/// The host's VXLAN device.
const VXLAN_DEV: &str = "vx0";
/// How long a path may take to work for the first time.
const FIRST: Duration = Duration::from_secs(20);
/// How long a store change may take to reach the dataplane.
const CONVERGE: Duration = Duration::from_secs(20);
/// One TCP transfer.
const TRANSFER: Duration = Duration::from_secs(30);
/// One ping exchange on a path that works.
const PING: Duration = Duration::from_secs(5);

#[test]
fn a_kernel_vxlan_host_as_a_static_peer_exchanges_pod_traffic() {
    if !require_root() {
        return;
    }
    let underlay = Underlay::new(PREFIX, BASE, 2);
    let (node_ip, host_ip) = (underlay.node_ip(0), underlay.node_ip(1));
    let host = underlay.node(1);
    let daemon = Daemon::start(
        underlay.node(0),
        "node0",
        &["--workers".to_owned(), "1".to_owned()],
    );
    let own_subnet = subnet_v4(&daemon);
    let node_vtep = MacAddr(vtep_mac_for(node_ip)).to_string();
    assert_eq!(
        cluster::status(&daemon).node.vtep_mac.to_string(),
        node_vtep,
        "node0's VTEP MAC is derived from its underlay IP"
    );

    // The host, configured as flannel configures a remote node: the whole
    // cluster CIDR via node0's VTEP, reached at node0's underlay IP.
    let gateway = own_subnet.network().to_string();
    kernel_vxlan_host(host, host_ip, node_ip, &node_vtep, &gateway);
    let host_vtep = host.mac(VXLAN_DEV);

    let added = daemon.cli(&[
        "peer",
        "add",
        "gw",
        "--subnet",
        GW_SUBNET,
        "--underlay-ip",
        &host_ip.to_string(),
        "--vtep-mac",
        &host_vtep,
        "--backend",
        "vxlan",
    ]);
    assert!(
        added.status.success(),
        "`tweed peer add gw`: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    let listed = daemon.cli_json(&["peer", "list"]);
    let peers = listed["peers"].as_array().cloned().unwrap_or_default();
    assert_eq!(peers.len(), 1, "`tweed peer list` shows one peer: {listed}");
    assert_eq!(peers[0]["name"], "gw");
    assert_eq!(peers[0]["subnets"], serde_json::json!([GW_SUBNET]));
    assert_eq!(peers[0]["underlay_ip"], host_ip.to_string());
    assert_eq!(peers[0]["vtep_mac"], host_vtep);
    assert_eq!(peers[0]["kind"], NodeKind::Static.name());

    let gw_subnet: IpNet = GW_SUBNET.parse().unwrap();
    let gw_addr: IpAddr = GW_ADDR.parse().unwrap();
    let pod = ClusterPod::add(&daemon, PREFIX, "p0");
    assert!(
        poll::wait(CONVERGE, || routes_prefix(&daemon, gw_subnet)),
        "node0 routes {gw_subnet} to the peer: {:?}",
        routes(&daemon)
    );
    assert!(
        routes(&daemon).contains(&(gw_subnet, "peer gw".to_owned())),
        "{gw_subnet}'s next hop is the peer: {:?}",
        routes(&daemon)
    );
    assert!(
        wait_ping(&pod.netns, gw_addr, FIRST),
        "pod ({}) → the host's {gw_addr}",
        pod.ip()
    );
    assert!(
        ping(&pod.netns, gw_addr, 5, PING),
        "pod → the host, 5 echoes"
    );
    assert!(ping(host, pod.ip(), 3, PING), "the host → pod, 3 echoes");
    tcp_transfer(&pod.netns, host, gw_addr, 5401, 2 << 20, TRANSFER).expect("TCP pod → host");
    tcp_transfer(host, &pod.netns, pod.ip(), 5402, 2 << 20, TRANSFER).expect("TCP host → pod");

    // A subnet overlapping node0's own is a conflict that names it; the
    // failed request changes nothing.
    let inside: IpNet = IpNet::new(own_subnet.network(), own_subnet.prefix_len() + 1).unwrap();
    let refused = cluster::call(
        &daemon,
        Request::PeerAdd(PeerAdd {
            name: "clash".into(),
            subnets: vec![inside],
            underlay_ip: host_ip,
            vtep_mac: host_vtep.parse().unwrap(),
            backend: Backend::Vxlan,
        }),
    );
    match &refused {
        Err(ClientError::Api(e)) => {
            assert_eq!(e.kind, ErrorKind::Conflict, "{e:?}");
            assert!(
                e.message.contains(&own_subnet.to_string()) && e.message.contains("node0"),
                "the conflict names node0's {own_subnet}: {}",
                e.message
            );
        }
        other => panic!("peer_add of {inside} (inside node0's {own_subnet}) is refused: {other:?}"),
    }
    let cli_refused = daemon.cli(&[
        "peer",
        "add",
        "clash",
        "--subnet",
        &inside.to_string(),
        "--underlay-ip",
        &host_ip.to_string(),
        "--vtep-mac",
        &host_vtep,
    ]);
    let stderr = String::from_utf8_lossy(&cli_refused.stderr);
    assert!(
        !cli_refused.status.success() && stderr.contains(&own_subnet.to_string()),
        "`tweed peer add clash --subnet {inside}` fails naming {own_subnet}: {stderr}"
    );
    match cluster::call(&daemon, Request::PeerList(Empty {})) {
        Ok(ResponseBody::Peers(reply)) => assert_eq!(
            reply
                .peers
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["gw"],
            "the refused peer was not recorded"
        ),
        other => panic!("peer_list: {other:?}"),
    }

    // Removed: the route goes, and with it the way to the host.
    let removed = daemon.cli(&["peer", "remove", "gw"]);
    assert!(
        removed.status.success(),
        "`tweed peer remove gw`: {}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert!(
        poll::wait(CONVERGE, || !routes_prefix(&daemon, gw_subnet)),
        "node0 no longer routes {gw_subnet}: {:?}",
        routes(&daemon)
    );
    assert!(
        !ping(&pod.netns, gw_addr, 1, Duration::from_secs(2)),
        "the host is unreachable once its peer is removed"
    );
    let listed = daemon.cli_json(&["peer", "list"]);
    assert_eq!(
        listed["peers"],
        serde_json::json!([]),
        "`tweed peer list` is empty after the removal"
    );

    drop(pod);
    drop(daemon);
    drop(underlay);
}

/// Configures `host` as a kernel VXLAN node: `vx0` (VNI 1, port 4789) with
/// [`GW_ADDR`], and the cluster CIDR routed via `gateway` (an address of
/// node0's subnet that no pod uses), whose permanent neighbour entry holds
/// node0's VTEP MAC, which the FDB sends to node0's underlay IP.
fn kernel_vxlan_host(
    host: &tweed_suite::netns::Netns,
    host_ip: IpAddr,
    node_ip: IpAddr,
    node_vtep: &str,
    gateway: &str,
) {
    host.ip(&[
        "link",
        "add",
        VXLAN_DEV,
        "type",
        "vxlan",
        "id",
        "1",
        "dstport",
        "4789",
        "local",
        &host_ip.to_string(),
        "dev",
        "eth0",
        "nolearning",
    ]);
    host.ip(&["link", "set", VXLAN_DEV, "mtu", "1450", "up"]);
    host.ip(&["addr", "add", &format!("{GW_ADDR}/24"), "dev", VXLAN_DEV]);
    let fdb = host.exec(
        "bridge",
        &[
            "fdb",
            "append",
            node_vtep,
            "dev",
            VXLAN_DEV,
            "dst",
            &node_ip.to_string(),
            "self",
            "permanent",
        ],
    );
    assert!(
        fdb.status.success(),
        "bridge fdb append: {}",
        String::from_utf8_lossy(&fdb.stderr)
    );
    host.ip(&[
        "neigh",
        "replace",
        gateway,
        "lladdr",
        node_vtep,
        "dev",
        VXLAN_DEV,
        "nud",
        "permanent",
    ]);
    host.ip(&[
        "route",
        "add",
        CLUSTER_CIDR,
        "via",
        gateway,
        "dev",
        VXLAN_DEV,
        "onlink",
    ]);
}
