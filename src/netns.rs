//! Network namespaces that delete themselves, and veth pairs between them.
//!
//! A [`Netns`] is named `tw-<prefix>-<role>-<pid>`: the test's own prefix keeps
//! tests that run in parallel apart, the pid keeps two runs apart. Links are
//! created inside the namespaces (never in the root namespace), so their names
//! only have to be unique within one namespace and deleting the namespace
//! deletes them. Drop first kills every process still inside the namespace
//! (a daemon's orphaned child, a forgotten listener), then deletes it; it runs
//! on panic too, so a failing test leaves nothing. Namespaces are made,
//! listed and removed by the lab's rooms (`tweed_lab::netns`, the same code
//! `tweed demo` and `tweed bench` use); what this module adds is for
//! assertions and setup the product may not do (`ip`, ethtool).

use std::net::IpAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::process::{self, Bounded};

/// The longest interface name Linux accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// How long a plain `ip` command may take.
const IP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long killed processes may take to leave a namespace.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// A network namespace under `/run/netns`, deleted on drop (after the
/// processes still in it are killed).
#[derive(Debug)]
pub struct Netns {
    name: String,
    prefix: String,
}

impl Netns {
    /// Creates `tw-<prefix>-<role>-<pid>` with its loopback up.
    pub fn new(prefix: &str, role: &str) -> Self {
        let name = format!("tw-{prefix}-{role}-{}", std::process::id());
        // A namespace left by a killed run of this very pid would be stale.
        let _ = tweed_lab::netns::remove(&name);
        if let Err(e) = tweed_lab::netns::create(&name) {
            panic!("create netns {name}: {e}");
        }
        Self {
            name,
            prefix: prefix.to_owned(),
        }
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The test prefix it was created with (for naming what belongs to it).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Its bind-mount path, what `port_add` takes as `netns`.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// A `Command` running `program args` inside the namespace.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]).args(args);
        cmd
    }

    /// Runs `program args` inside the namespace and returns its output
    /// (killed after 30 s).
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        let out = process::run(&mut self.command(program, args), Duration::from_secs(30));
        assert!(
            !out.timed_out(),
            "`{program} {}` in {} did not finish in 30 s",
            args.join(" "),
            self.name
        );
        Output {
            status: out.status.expect("exited"),
            stdout: out.stdout.into_bytes(),
            stderr: out.stderr.into_bytes(),
        }
    }

    /// Runs `program args` inside the namespace with a deadline.
    pub fn exec_bounded(&self, program: &str, args: &[&str], timeout: Duration) -> Bounded {
        process::run(&mut self.command(program, args), timeout)
    }

    /// Starts `program args` inside the namespace with piped stdout and
    /// stderr; the caller owns (and must reap) the child.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Child {
        self.command(program, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program} in {}: {e}", self.name))
    }

    /// Runs `ip -n NS args`, panicking with its stderr if it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name]).args(args);
        run_ok(&mut cmd)
    }

    /// Runs `ip -n NS -j args` and parses the JSON it prints.
    pub fn ip_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["-j"];
        full.extend_from_slice(args);
        let text = self.ip(&full);
        if text.trim().is_empty() {
            return serde_json::Value::Array(Vec::new());
        }
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("`ip -j {}` printed no JSON ({e}): {text}", args.join(" ")))
    }

    /// Sets a sysctl inside the namespace (e.g. `net.ipv4.ip_forward=1`).
    pub fn sysctl(&self, setting: &str) {
        let out = self.exec("sysctl", &["-qw", setting]);
        assert!(
            out.status.success(),
            "sysctl {setting} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The addresses (`ADDR/LEN`) configured on `ifname`, with their flags
    /// (e.g. `tentative`), from `ip -j addr`.
    pub fn addresses(&self, ifname: &str) -> Vec<(String, Vec<String>)> {
        let json = self.ip_json(&["addr", "show", "dev", ifname]);
        let mut found = Vec::new();
        for link in json.as_array().into_iter().flatten() {
            for info in link["addr_info"].as_array().into_iter().flatten() {
                let local = info["local"].as_str().unwrap_or_default();
                let len = info["prefixlen"].as_u64().unwrap_or_default();
                let flags = ["tentative", "dadfailed"]
                    .iter()
                    .filter(|f| info.get(**f).is_some_and(|v| v.as_bool() == Some(true)))
                    .map(|f| (*f).to_owned())
                    .collect();
                found.push((format!("{local}/{len}"), flags));
            }
        }
        found
    }

    /// Turns transmit checksum offload off on `ifname` (`ethtool -K IF tx
    /// off`, done with the ioctl since ethtool may not be installed).
    ///
    /// A veth never computes offloaded checksums: the kernel hands the packet
    /// to the other end marked "checksum partial". When the other end is a
    /// userspace UDP socket (tweed's underlay), the inner TCP checksum of a
    /// kernel-built VXLAN packet arrives unfinished, which no real wire would
    /// deliver. Linux peers in tests therefore transmit with full checksums.
    pub fn disable_tx_checksum(&self, ifname: &str) {
        let out = self.exec("python3", &["-c", TX_CSUM_OFF, ifname]);
        assert!(
            out.status.success(),
            "turn tx checksumming off on {ifname} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Turns every transmit offload off on `ifname`: checksums,
    /// scatter-gather, TSO and GSO (`ethtool -K IF tx off sg off tso off gso
    /// off`, with the ioctls), so the kernel hands it MTU-sized frames with
    /// complete checksums.
    pub fn disable_offloads(&self, ifname: &str) {
        let out = self.exec("python3", &["-c", OFFLOADS_OFF, ifname]);
        assert!(
            out.status.success(),
            "turn the offloads off on {ifname} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The MAC address of `ifname`.
    pub fn mac(&self, ifname: &str) -> String {
        let json = self.ip_json(&["link", "show", "dev", ifname]);
        json[0]["address"]
            .as_str()
            .unwrap_or_else(|| panic!("{ifname} in {} has no MAC: {json}", self.name))
            .to_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_all(&self.name);
        if let Err(e) = tweed_lab::netns::remove(&self.name) {
            eprintln!("cleanup: remove netns {}: {e}", self.name);
        }
    }
}

/// The pids of the processes in namespace `name`, without this test process
/// itself; empty when the namespace does not exist.
pub fn pids(name: &str) -> Vec<u32> {
    let own = std::process::id();
    tweed_lab::netns::pids_in(name)
        .into_iter()
        .filter(|pid| *pid != own)
        .collect()
}

/// Kills (SIGKILL) every process in namespace `name` except this test
/// process, and waits until none is left (the lab's `kill_processes`); says
/// so on stderr if some stay.
///
/// A daemon killed with SIGKILL leaves its children running; a namespace
/// whose processes outlive the test keeps their sockets (and the ports)
/// alive, so every namespace guard does this before deleting the namespace.
pub fn kill_all(name: &str) {
    // A test's leftovers get no grace: SIGKILL.
    tweed_lab::netns::kill_processes(&[name.to_owned()], KILL_TIMEOUT);
    let left = pids(name);
    if !left.is_empty() {
        eprintln!("cleanup: processes still in netns {name} after SIGKILL: {left:?}");
    }
}

/// `ETHTOOL_STXCSUM` off, then `ETHTOOL_GTXCSUM` to check. Args: IFNAME.
const TX_CSUM_OFF: &str = r#"
import array, fcntl, socket, struct, sys
SIOCETHTOOL, ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM = 0x8946, 0x16, 0x17
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def call(cmd, data):
    ev = array.array("I", [cmd, data])
    ifr = struct.pack("16sP", sys.argv[1].encode(), ev.buffer_info()[0])
    fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
    return ev[1]
call(ETHTOOL_STXCSUM, 0)
sys.exit(0 if call(ETHTOOL_GTXCSUM, 0) == 0 else "tx checksumming is still on")
"#;

/// `disable_offloads`: each (get, set) ethtool command set to 0 and read back.
const OFFLOADS_OFF: &str = r#"
import array, fcntl, socket, struct, sys
SIOCETHTOOL = 0x8946
# (name, get, set): TSO and GSO first, as the kernel ties them to sg and tx.
OFFLOADS = [("gso", 0x23, 0x24), ("tso", 0x1e, 0x1f), ("sg", 0x18, 0x19), ("tx", 0x16, 0x17)]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def call(cmd, data):
    ev = array.array("I", [cmd, data])
    ifr = struct.pack("16sP", sys.argv[1].encode(), ev.buffer_info()[0])
    fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
    return ev[1]
for name, get, set_ in OFFLOADS:
    call(set_, 0)
on = [name for name, get, _ in OFFLOADS if call(get, 0) != 0]
sys.exit("still on: " + " ".join(on) if on else 0)
"#;

/// One end of a veth pair: its namespace, name and address (`ADDR/LEN`).
#[derive(Debug, Clone, Copy)]
pub struct End<'a> {
    /// The namespace this end lives in.
    pub ns: &'a Netns,
    /// The interface name (at most [`IFNAME_MAX`] bytes).
    pub ifname: &'a str,
    /// The address with prefix length, e.g. `192.168.40.1/24`; `None` for none.
    pub addr: Option<&'a str>,
}

/// Connects two namespaces with a veth pair, sets the addresses and brings
/// both ends up. The pair goes away with either namespace.
pub fn veth(a: End<'_>, b: End<'_>) {
    for end in [&a, &b] {
        assert!(
            end.ifname.len() <= IFNAME_MAX,
            "interface name {:?} is longer than {IFNAME_MAX} bytes",
            end.ifname
        );
    }
    a.ns.ip(&[
        "link",
        "add",
        a.ifname,
        "type",
        "veth",
        "peer",
        "name",
        b.ifname,
        "netns",
        b.ns.name(),
    ]);
    for end in [a, b] {
        if let Some(addr) = end.addr {
            // IPv6 on a test underlay: no duplicate address detection delay.
            if addr
                .parse::<ipnet::IpNet>()
                .is_ok_and(|n| matches!(n.addr(), IpAddr::V6(_)))
            {
                end.ns
                    .ip(&["addr", "add", addr, "dev", end.ifname, "nodad"]);
            } else {
                end.ns.ip(&["addr", "add", addr, "dev", end.ifname]);
            }
        }
        end.ns.ip(&["link", "set", end.ifname, "up"]);
    }
}

/// Runs `cmd` (bounded), panicking with its output unless it succeeds;
/// returns its stdout.
fn run_ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = process::run(cmd, IP_TIMEOUT);
    assert!(out.success(), "{shown} failed: {out}");
    out.stdout
}
