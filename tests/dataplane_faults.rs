//! Faults that must not wedge a dataplane: a `port_add` that blocks (its
//! netns is a FIFO nobody opens) leaves the rest of the API answering; a
//! state file that cannot be written (a full disk) refuses and undoes the
//! change instead of acknowledging what a restart would lose; a tap of ours
//! whose port was lost (a stale state file after a crash) is adopted by the
//! next `port_add`, and `port_remove` then removes it.
//!
//! Each test has its own prefix; namespaces, the tmpfs and the processes go
//! with their guards, also on failure.

use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tweed_api::dataplane::proto::{ErrorKind, PortAdd};
use tweed_suite::control::links;
use tweed_suite::netns::Netns;
use tweed_suite::node::Node;
use tweed_suite::pod::{IFNAME, Pod};
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::tmpfs::Tmpfs;
use tweed_suite::traffic::wait_ping;

const FIRST: Duration = Duration::from_secs(10);

fn add_request(name: &str, netns: &str, ipv4: &str) -> PortAdd {
    PortAdd {
        name: name.into(),
        netns: netns.into(),
        ifname: IFNAME.into(),
        ipv4: Some(ipv4.parse().expect("an address")),
        ipv6: None,
        mac: None,
        mtu: None,
    }
}

#[test]
fn a_port_add_that_blocks_leaves_the_rest_of_the_api_answering() {
    if !require_root() {
        return;
    }
    let prefix = "dfb";
    let node = Node::standalone(prefix, "192.168.211.1", &[]);
    let fifo = node.dir.join("netns-fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", fifo.display());

    // Opening a FIFO for reading blocks until a writer comes: this port_add
    // is stuck in the kernel for as long as the test wants.
    let api = node.api.clone();
    let netns = fifo.display().to_string();
    let stuck =
        std::thread::spawn(move || api.port_add(add_request("dfb/stuck", &netns, "10.244.61.9")));

    let started = Instant::now();
    assert!(node.api.port_list().is_empty(), "port_list answers");
    let _ = node.api.stats();
    let a = Pod::attach(
        &node,
        prefix,
        "a",
        Some("10.244.61.2".parse().unwrap()),
        None,
    );
    let b = Pod::attach(
        &node,
        prefix,
        "b",
        Some("10.244.61.3".parse().unwrap()),
        None,
    );
    assert!(
        wait_ping(&a.netns, IpAddr::V4(b.ipv4()), FIRST),
        "pods added meanwhile forward"
    );
    let names: Vec<String> = node.api.port_list().into_iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        ["dfb/a", "dfb/b"],
        "only the finished adds are ports"
    );
    eprintln!(
        "while a port_add was blocked: port_list, stats, two port_adds and a ping took {:?}",
        started.elapsed()
    );

    // Let the stuck add go on: a writer opens the FIFO (non-blocking: if the
    // add already gave up, there is no reader and nothing to release).
    let released = poll::wait(FIRST, || {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc_o_nonblock())
            .open(&fifo);
        stuck.is_finished()
    });
    assert!(released, "the stuck port_add returns once the FIFO opens");
    let result = stuck.join().expect("the add thread");
    let error = result.expect_err("a FIFO is no network namespace");
    assert_ne!(error.kind, ErrorKind::Conflict, "{error:?}");
    assert_eq!(node.api.port_list().len(), 2, "the failed add left no port");
}

/// `O_NONBLOCK` (the harness has no libc dependency).
fn libc_o_nonblock() -> i32 {
    0o4000
}

#[test]
fn a_full_disk_refuses_and_undoes_changes_and_they_work_once_space_is_back() {
    if !require_root() {
        return;
    }
    let prefix = "dfd";
    let disk = Tmpfs::mount(prefix, 1 << 20);
    let mut node = Node::standalone_with_state(prefix, "192.168.212.1", Some(disk.path()), &[]);
    let a = Pod::attach(
        &node,
        prefix,
        "a",
        Some("10.244.62.2".parse().unwrap()),
        None,
    );
    let b_netns = Netns::new(prefix, "b");
    let before = std::fs::read_to_string(node.state_file()).expect("the state file");

    let filled = disk.fill();
    assert!(filled > 0, "the tmpfs had room to fill");
    let refused = node
        .api
        .port_add(add_request("dfd/b", &b_netns.path(), "10.244.62.3"))
        .expect_err("no space for the state file");
    assert_eq!(refused.kind, ErrorKind::Io, "{refused:?}");
    assert!(
        refused.message.contains("save the state file")
            && refused.message.contains("No space left on device"),
        "the error names the step and the cause: {}",
        refused.message
    );
    assert!(links(&b_netns).is_empty(), "the refused add's tap is gone");
    let removed = node
        .api
        .port_remove("dfd/a")
        .expect_err("no space to record the removal");
    assert!(
        removed.message.contains("No space left on device"),
        "{}",
        removed.message
    );
    let ports: Vec<String> = node.api.port_list().into_iter().map(|p| p.name).collect();
    assert_eq!(ports, ["dfd/a"], "both changes were undone");
    assert_eq!(
        std::fs::read_to_string(node.state_file()).expect("the state file"),
        before,
        "the file still says what the tables say"
    );
    assert_eq!(links(&a.netns), [IFNAME], "a keeps its interface");
    let gateway = IpAddr::V4("169.254.1.1".parse().unwrap());
    assert!(wait_ping(&a.netns, gateway, FIRST), "a still forwards");

    disk.free();
    let b = node
        .api
        .port_add(add_request("dfd/b", &b_netns.path(), "10.244.62.3"))
        .expect("with space back, the same add works");
    assert_eq!(b.name, "dfd/b");
    node.kill();
    node.restart();
    let ports: Vec<String> = node.api.port_list().into_iter().map(|p| p.name).collect();
    assert_eq!(
        ports,
        ["dfd/a", "dfd/b"],
        "what was acknowledged survives a crash"
    );
    assert!(
        wait_ping(&a.netns, IpAddr::V4("10.244.62.3".parse().unwrap()), FIRST),
        "a → b after the restart"
    );
    node.api.port_remove("dfd/b").expect("remove b");
    let gone = poll::wait(FIRST, || links(&b_netns).is_empty());
    assert!(gone, "b's tap goes: {:?}", links(&b_netns));
}

#[test]
fn a_tap_whose_port_was_lost_is_adopted_then_removed_then_made_anew() {
    if !require_root() {
        return;
    }
    let prefix = "dfa";
    let mut node = Node::standalone(prefix, "192.168.213.1", &[]);
    let a = Pod::attach(
        &node,
        prefix,
        "a",
        Some("10.244.63.2".parse().unwrap()),
        None,
    );
    // The state file as it was before b: what a crash between creating b's
    // tap and saving would leave.
    let stale = std::fs::read(node.state_file()).expect("the state file");
    let b = Pod::attach(
        &node,
        prefix,
        "b",
        Some("10.244.63.3".parse().unwrap()),
        None,
    );
    let b_ip = IpAddr::V4(b.ipv4());
    assert!(wait_ping(&a.netns, b_ip, FIRST), "a → b");
    node.kill();
    std::fs::write(node.state_file(), &stale).expect("put the stale file back");
    node.restart();
    let ports: Vec<String> = node.api.port_list().into_iter().map(|p| p.name).collect();
    assert_eq!(ports, ["dfa/a"], "b's port is lost");
    assert_eq!(links(&b.netns), [IFNAME], "b's tap outlived it");

    let again = node
        .api
        .port_add(add_request("dfa/b", &b.netns.path(), "10.244.63.3"))
        .expect("the same port again adopts the tap");
    assert_eq!(again.mac, b.port.mac, "the same interface");
    assert_eq!(links(&b.netns), [IFNAME], "no second interface");
    assert!(
        wait_ping(&a.netns, b_ip, FIRST),
        "a → b through the adopted tap"
    );

    // A tap that is not ours is never adopted: another MAC (another pod's
    // address) in the same netns is a conflict.
    let other = node
        .api
        .port_add(add_request("dfa/other", &b.netns.path(), "10.244.63.9"))
        .expect_err("eth0 is taken by b");
    assert_eq!(other.kind, ErrorKind::Conflict, "{other:?}");

    node.api.port_remove("dfa/b").expect("remove b");
    let gone = poll::wait(FIRST, || links(&b.netns).is_empty());
    assert!(
        gone,
        "b's adopted tap goes with its port: {:?}",
        links(&b.netns)
    );
    node.api
        .port_add(add_request("dfa/b", &b.netns.path(), "10.244.63.3"))
        .expect("and a new one can be made in that netns");
    assert!(wait_ping(&a.netns, b_ip, FIRST), "a → the new b");
    assert!(Path::new(&node.state_file()).exists());
}
