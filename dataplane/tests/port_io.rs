//! Integration tests of the I/O layer (`sys` and `port`) on real taps,
//! network namespaces and sockets.
//!
//! The tap/netns tests need root: without it they print a skip line, or fail
//! when `CI=true`. Each makes its own netns (`twpio-<test>-<pid>`) and a drop
//! guard removes it, even on panic.
//! The socket, epoll and credential tests need no privileges.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tweed_dataplane::port::host::{open_host_port, remove_host_port};
use tweed_dataplane::port::tap::{
    PodLink, close_pod_tap, create_pod_tap, pod_link_exists, reattach_pod_tap, remove_pod_tap,
};
use tweed_dataplane::port::underlay::bind_underlay;
use tweed_sys::PortError;
use tweed_sys::cred::peer_uid;
use tweed_sys::epoll::Epoll;
use tweed_sys::mmsg::{recv_batch, send_batch};
use tweed_sys::netns::run_in_netns;
use tweed_sys::tap::{TapQueue, VNET_HDR_LEN, set_persist};

const POD_MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0xf4, 0x01, 0x05];
const GW_MAC: [u8; 6] = [0x02, 0xee, 0xee, 0xee, 0xee, 0xee];
const POD_V4: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 5);
const POD_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5);
const GW_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

fn our_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .expect("stat /proc/self")
        .uid()
}

/// Reports that `test` cannot run here: a failure under `CI=true` (a test
/// that cannot run must not pass quietly there), a printed skip elsewhere.
fn cannot_run(test: &str, needs: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs {needs} (CI=true, refusing to skip)");
    }
    eprintln!("SKIP {test}: needs {needs}");
}

/// True if we may run privileged tests; otherwise skips (or fails on CI).
fn privileged(test: &str) -> bool {
    let ok = our_uid() == 0 && Path::new("/dev/net/tun").exists();
    if !ok {
        cannot_run(test, "root and /dev/net/tun");
    }
    ok
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip")
}

fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_json(args: &[&str]) -> Value {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ip -j output is JSON")
}

/// Whether `ifname` exists in the netns `ns` (`None`: the root netns).
fn link_present(ns: Option<&str>, ifname: &str) -> bool {
    let out = match ns {
        Some(ns) => ip(&["-n", ns, "link", "show", "dev", ifname]),
        None => ip(&["link", "show", "dev", ifname]),
    };
    out.status.success()
}

/// Polls `cond` for up to two seconds (netns teardown is asynchronous).
fn eventually(cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A test netns, deleted on drop.
struct TestNs {
    name: String,
    path: PathBuf,
}

impl TestNs {
    fn new(test: &str) -> Self {
        let name = format!("twpio-{test}-{}", std::process::id());
        let _ = ip(&["netns", "del", &name]);
        ip_ok(&["netns", "add", &name]);
        ip_ok(&["-n", &name, "link", "set", "lo", "up"]);
        TestNs {
            path: PathBuf::from(format!("/run/netns/{name}")),
            name,
        }
    }

    fn link(&self, ifname: &str) -> PodLink {
        PodLink {
            netns: self.path.clone(),
            ifname: ifname.to_string(),
            mac: POD_MAC,
            mtu: 1400,
            ipv4: Some(POD_V4),
            ipv6: Some(POD_V6),
        }
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// The links of the root netns, by name.
fn root_links() -> Vec<String> {
    ip_json(&["-j", "link", "show"])
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
        .collect()
}

fn mac_str(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

/// A frame as the tap queue wants it: an all-zero virtio-net header (no
/// offloads) followed by the Ethernet frame.
fn with_vnet(eth: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; VNET_HDR_LEN];
    f.extend_from_slice(eth);
    f
}

/// An ARP reply `GW_V4 is-at GW_MAC` to the pod.
fn arp_reply() -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&POD_MAC);
    f.extend_from_slice(&GW_MAC);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&GW_MAC);
    f.extend_from_slice(&GW_V4.octets());
    f.extend_from_slice(&POD_MAC);
    f.extend_from_slice(&POD_V4.octets());
    f.resize(60, 0);
    f
}

/// Reads every queue until `want` matches an Ethernet frame or 5 s pass.
fn read_until(queues: &[TapQueue], want: impl Fn(&[u8]) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = vec![0u8; 65536 + VNET_HDR_LEN];
    while Instant::now() < deadline {
        let mut idle = true;
        for q in queues {
            match q.read(&mut buf) {
                Ok(n) if n > VNET_HDR_LEN => {
                    idle = false;
                    if want(&buf[VNET_HDR_LEN..n]) {
                        return true;
                    }
                }
                Ok(_) => idle = false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("tap read: {e}"),
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    false
}

fn is_arp_request_for_gateway(eth: &[u8]) -> bool {
    eth.len() >= 42
        && eth[6..12] == POD_MAC
        && eth[12..14] == [0x08, 0x06]
        && eth[20..22] == [0, 1]
        && eth[38..42] == GW_V4.octets()
}

fn rx_packets(ns: &str, ifname: &str) -> u64 {
    let v = ip_json(&["-n", ns, "-s", "-j", "link", "show", "dev", ifname]);
    v[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .expect("rx packets")
}

#[test]
fn create_pod_tap_configures_the_pod_and_moves_frames() {
    if !privileged("create_pod_tap_configures_the_pod_and_moves_frames") {
        return;
    }
    let ns = TestNs::new("create");
    let root_before = root_links();
    let queues = create_pod_tap(&ns.link("eth0"), 2).expect("create_pod_tap");
    assert_eq!(queues.len(), 2);
    assert_eq!(queues[0].ifname().expect("TUNGETIFF"), "eth0");
    assert_eq!(
        root_links(),
        root_before,
        "nothing is made in the root netns"
    );
    let names = ip_json(&["-n", &ns.name, "-j", "link", "show"]);
    let names: Vec<&str> = names
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(names, ["lo", "eth0"], "the pod gets one interface");

    let link = ip_json(&["-n", &ns.name, "-d", "-j", "link", "show", "dev", "eth0"]);
    let link = &link[0];
    // A persistent multi-queue tap with the virtio-net header, no packet info.
    let tun = &link["linkinfo"];
    assert_eq!(tun["info_kind"], "tun", "{link}");
    let data = &tun["info_data"];
    assert_eq!(data["type"], "tap", "{data}");
    assert_eq!(data["pi"], false, "{data}");
    assert_eq!(data["vnet_hdr"], true, "{data}");
    assert_eq!(data["multi_queue"], true, "{data}");
    assert_eq!(data["persist"], true, "{data}");
    // No qdisc of 256 pfifo_fast children: a tap queues nothing anyway.
    assert_eq!(link["qdisc"], "noqueue", "{link}");
    assert_eq!(link["mtu"], 1400);
    assert_eq!(link["address"], mac_str(POD_MAC));
    let flags: Vec<&str> = link["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(flags.contains(&"UP"), "flags {flags:?}");

    let addrs = ip_json(&["-n", &ns.name, "-j", "addr", "show", "dev", "eth0"]);
    let addrs: Vec<String> = addrs[0]["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
        .collect();
    assert!(addrs.contains(&"10.244.1.5/32".to_string()), "{addrs:?}");
    assert!(addrs.contains(&"fd00::5/128".to_string()), "{addrs:?}");

    let routes = ip_json(&["-n", &ns.name, "-j", "-4", "route", "show"]);
    let routes = routes.as_array().expect("routes");
    assert!(
        routes
            .iter()
            .any(|r| r["dst"] == "169.254.1.1" && r["dev"] == "eth0" && r["scope"] == "link"),
        "{routes:?}"
    );
    assert!(
        routes
            .iter()
            .any(|r| r["dst"] == "default" && r["gateway"] == "169.254.1.1" && r["dev"] == "eth0"),
        "{routes:?}"
    );
    let routes6 = ip_json(&["-n", &ns.name, "-j", "-6", "route", "show"]);
    assert!(
        routes6
            .as_array()
            .expect("routes")
            .iter()
            .any(|r| r["dst"] == "default" && r["gateway"] == "fe80::1" && r["dev"] == "eth0"),
        "{routes6:?}"
    );

    // Pod -> dataplane: a ping to the gateway makes the pod ARP for it.
    let mut ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "ping",
            "-c1",
            "-W2",
            "169.254.1.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ping");
    let seen = read_until(&queues, is_arp_request_for_gateway);
    let _ = ping.kill();
    let _ = ping.wait();
    assert!(seen, "no ARP request for 169.254.1.1 on the tap queues");

    // Dataplane -> pod: a frame written to a queue is received by the pod.
    let before = rx_packets(&ns.name, "eth0");
    let frame = with_vnet(&arp_reply());
    assert_eq!(queues[1].write(&frame).expect("tap write"), frame.len());
    assert!(
        eventually(|| rx_packets(&ns.name, "eth0") > before),
        "the pod did not receive the frame"
    );

    remove_pod_tap(&ns.path, "eth0", queues).expect("remove_pod_tap");
    assert!(!link_present(Some(&ns.name), "eth0"));
}

#[test]
fn create_pod_tap_refuses_a_taken_name_and_leaks_nothing() {
    if !privileged("create_pod_tap_refuses_a_taken_name_and_leaks_nothing") {
        return;
    }
    let ns = TestNs::new("taken");
    let root_before = root_links();
    ip_ok(&[
        "-n", &ns.name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
    ]);
    let err = create_pod_tap(&ns.link("eth0"), 2).expect_err("eth0 is taken");
    assert!(matches!(err, PortError::LinkExists { .. }), "{err:?}");
    assert!(err.to_string().contains("eth0"), "{err}");
    let veth = ip_json(&["-n", &ns.name, "-d", "-j", "link", "show", "dev", "eth0"]);
    assert_eq!(
        veth[0]["linkinfo"]["info_kind"], "veth",
        "the veth is untouched"
    );

    // A name taken by another tap is a conflict too, never an attach to it.
    ip_ok(&[
        "-n", &ns.name, "tuntap", "add", "dev", "tap1", "mode", "tap",
    ]);
    let err = create_pod_tap(&ns.link("tap1"), 2).expect_err("tap1 is taken");
    assert!(matches!(err, PortError::LinkExists { .. }), "{err:?}");
    assert!(link_present(Some(&ns.name), "tap1"), "the other tap stays");

    // A failure after the tap exists (MTU below the minimum) removes it.
    let mut bad = ns.link("pod0");
    bad.mtu = 10;
    let err = create_pod_tap(&bad, 2).expect_err("mtu 10 is invalid");
    assert!(matches!(err, PortError::LinkSetMtu { .. }), "{err:?}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "cause is chained"
    );
    assert!(eventually(|| !link_present(Some(&ns.name), "pod0")));

    // A netns that does not exist.
    let mut gone = ns.link("eth1");
    gone.netns = PathBuf::from("/run/netns/twpio-does-not-exist");
    let err = create_pod_tap(&gone, 1).expect_err("no such netns");
    assert!(matches!(err, PortError::NetnsOpen { .. }), "{err:?}");
    assert_eq!(
        root_links(),
        root_before,
        "nothing leaked to the root netns"
    );
}

#[test]
fn persistent_tap_is_reattached_and_removed_idempotently() {
    if !privileged("persistent_tap_is_reattached_and_removed_idempotently") {
        return;
    }
    let ns = TestNs::new("reattach");
    let queues = create_pod_tap(&ns.link("eth0"), 2).expect("create_pod_tap");
    drop(queues);
    assert!(
        pod_link_exists(&ns.path, "eth0").expect("pod_link_exists"),
        "a persistent tap outlives its queues"
    );

    let queues = reattach_pod_tap(&ns.path, "eth0", 2).expect("reattach_pod_tap");
    assert_eq!(queues.len(), 2);
    assert_eq!(queues[0].ifname().expect("TUNGETIFF"), "eth0");
    // The pod's configuration survived.
    let addrs = ip_json(&["-n", &ns.name, "-j", "addr", "show", "dev", "eth0"]);
    assert!(addrs.to_string().contains("10.244.1.5"));

    let err = reattach_pod_tap(&ns.path, "nothere0", 1).expect_err("no such tap");
    assert!(matches!(err, PortError::LinkNotFound { .. }), "{err:?}");
    assert!(
        !link_present(Some(&ns.name), "nothere0"),
        "reattach must not create"
    );

    remove_pod_tap(&ns.path, "eth0", queues).expect("remove_pod_tap");
    assert!(!pod_link_exists(&ns.path, "eth0").expect("pod_link_exists"));
    remove_pod_tap(&ns.path, "eth0", Vec::new()).expect("remove is idempotent");

    // Removing without queues (after a restart) deletes the persistent link.
    let queues = create_pod_tap(&ns.link("eth0"), 1).expect("create again");
    drop(queues);
    remove_pod_tap(&ns.path, "eth0", Vec::new()).expect("remove without queues");
    assert!(!link_present(Some(&ns.name), "eth0"));

    // The pod's netns mount disappears first. The queues were opened inside
    // the netns and keep it, and so the tap, alive until they are closed;
    // remove still succeeds, and the tap never comes to the root netns.
    let queues = create_pod_tap(&ns.link("podif9"), 1).expect("create again");
    ip_ok(&["netns", "del", &ns.name]);
    std::thread::sleep(Duration::from_millis(200));
    set_persist(&queues[0], true).expect("the queues keep the netns and the tap alive");
    assert!(
        !link_present(None, "podif9"),
        "the tap must not come back to the root netns"
    );
    remove_pod_tap(&ns.path, "podif9", queues).expect("remove after the netns is gone");
    assert!(!link_present(None, "podif9"));
    assert!(matches!(
        pod_link_exists(&ns.path, "podif9"),
        Err(PortError::NetnsOpen { .. })
    ));
}

#[test]
fn close_pod_tap_deletes_the_tap_and_tolerates_what_is_gone() {
    if !privileged("close_pod_tap_deletes_the_tap_and_tolerates_what_is_gone") {
        return;
    }
    let ns = TestNs::new("close");
    let queues = create_pod_tap(&ns.link("eth0"), 2).expect("create_pod_tap");
    close_pod_tap(&ns.path, "eth0", queues).expect("close_pod_tap");
    // The kernel unregisters the tap when its last queue closes. In this
    // process other tests fork `ip`: a child holds copies of the fds until
    // it execs, hence `eventually`. (The dataplane never forks.)
    assert!(
        eventually(|| !link_present(Some(&ns.name), "eth0")),
        "closing the last queue of a non-persistent tap deletes it"
    );
    close_pod_tap(&ns.path, "eth0", Vec::new()).expect("already gone");

    // Without queues (after a restart) the persistent tap is deleted by name.
    drop(create_pod_tap(&ns.link("eth0"), 1).expect("create again"));
    assert!(link_present(Some(&ns.name), "eth0"));
    close_pod_tap(&ns.path, "eth0", Vec::new()).expect("close by name");
    assert!(!link_present(Some(&ns.name), "eth0"));

    // The name is free again at once, and a netns that is gone is fine.
    let queues = create_pod_tap(&ns.link("eth0"), 1).expect("the name is free");
    let gone = Path::new("/run/netns/twpio-does-not-exist");
    close_pod_tap(gone, "eth0", Vec::new()).expect("a netns that is gone is fine");
    close_pod_tap(&ns.path, "eth0", queues).expect("close");
    assert!(eventually(|| !link_present(Some(&ns.name), "eth0")));
}

#[test]
fn host_port_is_created_reattached_and_removed() {
    if !privileged("host_port_is_created_reattached_and_removed") {
        return;
    }
    let ns = TestNs::new("host");
    let root_had_tweed0 = link_present(None, "tweed0");
    let (queues, mac) = run_in_netns(&ns.path, || open_host_port("tweed0", 2, 1450))
        .expect("enter the test netns")
        .expect("open_host_port");
    assert_eq!(queues.len(), 2);
    let link = ip_json(&["-n", &ns.name, "-j", "link", "show", "dev", "tweed0"]);
    assert_eq!(link[0]["address"], mac_str(mac));
    assert_eq!(link[0]["mtu"], 1450);
    assert!(link[0]["flags"].to_string().contains("\"UP\""), "{link}");
    assert_eq!(
        link_present(None, "tweed0"),
        root_had_tweed0,
        "root netns untouched"
    );

    // A restarted dataplane re-attaches to the same persistent tap.
    drop(queues);
    let (queues, again) = run_in_netns(&ns.path, || open_host_port("tweed0", 2, 1450))
        .expect("enter the test netns")
        .expect("re-open the host port");
    assert_eq!(mac, again);

    run_in_netns(&ns.path, move || remove_host_port("tweed0", queues))
        .expect("enter the test netns")
        .expect("remove_host_port");
    assert!(!link_present(Some(&ns.name), "tweed0"));
    run_in_netns(&ns.path, || remove_host_port("tweed0", Vec::new()))
        .expect("enter the test netns")
        .expect("remove_host_port is idempotent");
}

#[test]
fn run_in_netns_enters_the_namespace() {
    if !privileged("run_in_netns_enters_the_namespace") {
        return;
    }
    let ns = TestNs::new("enter");
    let inside = run_in_netns(&ns.path, || std::fs::read_link("/proc/thread-self/ns/net"))
        .expect("enter")
        .expect("readlink");
    let expected = format!("net:[{}]", std::fs::metadata(&ns.path).expect("stat").ino());
    assert_eq!(inside.to_string_lossy(), expected);
    let outside = std::fs::read_link("/proc/thread-self/ns/net").expect("readlink");
    assert_ne!(inside, outside, "the caller's thread must not move");
    let err = run_in_netns(Path::new("/run/netns/twpio-nope"), || ()).expect_err("no netns");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn bind_underlay_shares_a_port() {
    // The first socket takes a free port itself (probing one and binding it
    // later races with other tests), the second shares it.
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let a = bind_underlay(ip, 0).expect("first worker socket");
    let port = a.local_addr().expect("addr").port();
    let b = bind_underlay(ip, port).expect("second worker socket (SO_REUSEPORT)");
    assert_eq!(a.local_addr().expect("addr").port(), port);
    assert_eq!(b.local_addr().expect("addr").port(), port);
    let mut buf = [0u8; 8];
    assert_eq!(
        a.recv_from(&mut buf).expect_err("nonblocking").kind(),
        io::ErrorKind::WouldBlock
    );
}

fn round_trip(local: IpAddr) {
    let a = UdpSocket::bind(SocketAddr::new(local, 0)).expect("bind a");
    let b = UdpSocket::bind(SocketAddr::new(local, 0)).expect("bind b");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    let (a_addr, b_addr) = (a.local_addr().expect("a"), b.local_addr().expect("b"));

    let payloads: [&[u8]; 3] = [b"one", b"two two", b"three three three"];
    let msgs: Vec<(&[u8], SocketAddr)> = payloads.iter().map(|p| (*p, b_addr)).collect();
    assert_eq!(send_batch(a.as_raw_fd(), &msgs).expect("send_batch"), 3);

    let mut storage = vec![[0u8; 2048]; 8];
    let mut out = vec![(0usize, a_addr); 8];
    let mut got: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.len() < 3 && Instant::now() < deadline {
        let mut bufs: Vec<&mut [u8]> = storage.iter_mut().map(|b| &mut b[..]).collect();
        match recv_batch(b.as_raw_fd(), &mut bufs, &mut out) {
            Ok(n) => {
                for (i, (len, from)) in out[..n].iter().enumerate() {
                    got.push((storage[i][..*len].to_vec(), *from));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("recv_batch: {e}"),
        }
    }
    let datagrams: Vec<&[u8]> = got.iter().map(|(d, _)| d.as_slice()).collect();
    assert_eq!(datagrams, payloads);
    assert!(got.iter().all(|(_, from)| *from == a_addr), "{got:?}");

    let mut bufs: Vec<&mut [u8]> = storage.iter_mut().map(|b| &mut b[..]).collect();
    let err = recv_batch(b.as_raw_fd(), &mut bufs, &mut out).expect_err("empty");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn mmsg_round_trip_ipv4() {
    round_trip(IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[test]
fn mmsg_round_trip_ipv6() {
    if UdpSocket::bind("[::1]:0").is_err() {
        cannot_run("mmsg_round_trip_ipv6", "an IPv6 loopback address");
        return;
    }
    round_trip(IpAddr::V6(Ipv6Addr::LOCALHOST));
}

#[test]
fn peer_uid_is_ours() {
    let (a, b) = UnixStream::pair().expect("socketpair");
    assert_eq!(peer_uid(a.as_raw_fd()).expect("SO_PEERCRED"), our_uid());
    assert_eq!(peer_uid(b.as_raw_fd()).expect("SO_PEERCRED"), our_uid());
    let file = std::fs::File::open("/proc/self/stat").expect("open");
    assert!(peer_uid(file.as_raw_fd()).is_err(), "not a socket");
}

#[test]
fn epoll_reports_a_readable_socket() {
    let epoll = Arc::new(Epoll::new().expect("epoll"));
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    epoll.add(rx.as_raw_fd(), 7).expect("add");
    let mut events = Vec::new();
    assert_eq!(epoll.wait(&mut events, 0).expect("wait"), 0);

    tx.send_to(b"ping", rx.local_addr().expect("addr"))
        .expect("send");
    assert_eq!(epoll.wait(&mut events, 1000).expect("wait"), 1);
    assert_eq!(events, vec![(7, true)]);
    // Level-triggered: still readable until drained.
    assert_eq!(epoll.wait(&mut events, 0).expect("wait"), 1);
    let mut buf = [0u8; 16];
    rx.recv_from(&mut buf).expect("recv");
    assert_eq!(epoll.wait(&mut events, 0).expect("wait"), 0);

    // Registering from another thread wakes a thread that is waiting.
    let other = UdpSocket::bind("127.0.0.1:0").expect("bind");
    tx.send_to(b"ping", other.local_addr().expect("addr"))
        .expect("send");
    let waiter = {
        let epoll = Arc::clone(&epoll);
        std::thread::spawn(move || {
            let mut events = Vec::new();
            epoll.wait(&mut events, 5000).expect("wait");
            events
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    epoll
        .add(other.as_raw_fd(), 9)
        .expect("add from another thread");
    assert_eq!(waiter.join().expect("waiter"), vec![(9, true)]);

    epoll.delete(other.as_raw_fd()).expect("delete");
    assert_eq!(epoll.wait(&mut events, 0).expect("wait"), 0);
}
