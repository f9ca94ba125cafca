//! The daemon's host-side networking on real network namespaces (root only).
//!
//! Each test makes its own netns `tw-hostnet-<test>-<pid>` (deleted on drop, also when
//! the test panics) with a tap `tweed0` standing in for the dataplane's host port, runs
//! the `tweed_control::host` functions inside it (a dedicated thread that `setns`es
//! into it and runs a current-thread tokio runtime there) and checks the result with
//! `ip -j` and `nft -j`, which are independent of our netlink code.
//!
//! Without root (or without `ip`/`nft`) a test prints why and passes, unless `CI=true`,
//! where it fails: a privileged test that silently does not run proves nothing.

use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;
use tweed_control::host::{self, HostError, HostPlan, masquerade, routes};
use tweed_sys::netns::run_in_netns;

// ---------------------------------------------------------------------------------------
// Guard and fixtures

/// True when the test can run; otherwise panics under `CI=true` and returns false
/// elsewhere (after saying why). The same contract as the root harness's
/// `require_root`, which this crate cannot use (it is the root package).
fn require_root() -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .is_some_and(|euid| euid == "0")
    });
    let tools = ["ip", "nft"].iter().all(|tool| {
        Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if root && tools {
        return true;
    }
    let why = if root {
        "needs iproute2's `ip` and nftables' `nft`"
    } else {
        "needs root"
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("this privileged test cannot run: it {why}; in CI (CI=true) that is a failure");
    }
    eprintln!("skipping: {why}");
    false
}

/// A network namespace under `/run/netns`, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    /// Creates `tw-hostnet-<test>-<pid>` with loopback up.
    fn new(test: &str) -> Self {
        let name = format!("tw-hostnet-{test}-{}", std::process::id());
        // One left by a killed run with this very pid would be stale.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        check(Command::new("ip").args(["netns", "add", &name]).output());
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Creates `ns` with a tap `tweed0` (down, no carrier: nobody holds its queue).
    fn with_tap(test: &str) -> Self {
        let ns = Self::new(test);
        ns.ip(&["tuntap", "add", "dev", "tweed0", "mode", "tap"]);
        ns
    }

    /// Runs `ip -n NS args`; panics with its stderr if it fails.
    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output();
        String::from_utf8_lossy(&check(out).stdout).into_owned()
    }

    /// Runs `ip -n NS -j args` and parses its JSON.
    fn ip_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["-j"];
        full.extend_from_slice(args);
        json(&self.ip(&full))
    }

    /// Runs `program args` inside the namespace.
    fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program} in {}: {e}", self.name))
    }

    /// Runs the future `f()` on a current-thread tokio runtime on a thread inside
    /// this namespace.
    fn run<T, F, Fut>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let path = format!("/run/netns/{}", self.name);
        run_in_netns(Path::new(&path), move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build a tokio runtime")
                .block_on(f())
        })
        .unwrap_or_else(|e| panic!("enter netns {path}: {e}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

fn check(out: std::io::Result<Output>) -> Output {
    let out = out.expect("run ip");
    assert!(
        out.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Array(Vec::new());
    }
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn plan(addrs: &[&str], cidrs: &[&str]) -> HostPlan {
    HostPlan {
        device: "tweed0".into(),
        node_addrs: addrs.iter().map(|a| a.parse::<IpAddr>().unwrap()).collect(),
        cluster_cidrs: cidrs.iter().map(|c| c.parse::<IpNet>().unwrap()).collect(),
        service_cidrs: vec![],
    }
}

fn dual_stack() -> HostPlan {
    plan(
        &["10.244.1.1", "fd00:10:244:1::1"],
        &["10.244.0.0/16", "10.96.0.0/12", "fd00:10:244::/48"],
    )
}

/// The global addresses on `dev` as `addr/len`, sorted.
fn global_addrs(ns: &Netns, dev: &str) -> Vec<String> {
    let links = ns.ip_json(&["addr", "show", "dev", dev]);
    let mut out: Vec<String> = links[0]["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    out.sort();
    out
}

/// The routes of one family (`-4`/`-6`) whose destination is one of `dsts`, as
/// `ip -j` prints them, sorted by destination.
fn routes_to(ns: &Netns, family: &str, dsts: &[&str]) -> Vec<Value> {
    let mut out: Vec<Value> = ns
        .ip_json(&[family, "route", "show", "table", "main"])
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| dsts.iter().any(|d| r["dst"] == *d))
        .collect();
    out.sort_by_key(|r| r["dst"].to_string());
    out
}

fn all_cluster_routes(ns: &Netns) -> Vec<Value> {
    let mut v = routes_to(ns, "-4", &["10.244.0.0/16", "10.96.0.0/12"]);
    v.extend(routes_to(ns, "-6", &["fd00:10:244::/48"]));
    v
}

fn has_flag(route: &Value, flag: &str) -> bool {
    route["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

// ---------------------------------------------------------------------------------------
// Routes and addresses

#[test]
fn install_sets_the_port_up_with_node_addresses_and_cluster_routes() {
    if !require_root() {
        return;
    }
    let ns = Netns::with_tap("install");
    ns.run(|| async { routes::install(&dual_stack()).await })
        .expect("install");

    let link = ns.ip_json(&["link", "show", "dev", "tweed0"]);
    let flags = link[0]["flags"].as_array().expect("link flags");
    assert!(flags.iter().any(|f| f == "UP"), "tweed0 not up: {link}");
    assert_eq!(
        global_addrs(&ns, "tweed0"),
        vec!["10.244.1.1/32", "fd00:10:244:1::1/128"]
    );

    let v4 = routes_to(&ns, "-4", &["10.244.0.0/16", "10.96.0.0/12"]);
    assert_eq!(v4.len(), 2, "{v4:?}");
    for r in &v4 {
        assert_eq!(r["gateway"], "169.254.1.1", "{r}");
        assert_eq!(r["dev"], "tweed0", "{r}");
        assert_eq!(r["prefsrc"], "10.244.1.1", "{r}");
        assert!(has_flag(r, "onlink"), "{r}");
    }
    let v6 = routes_to(&ns, "-6", &["fd00:10:244::/48"]);
    assert_eq!(v6.len(), 1, "{v6:?}");
    assert_eq!(v6[0]["gateway"], "fe80::1");
    assert_eq!(v6[0]["dev"], "tweed0");
    assert_eq!(v6[0]["prefsrc"], "fd00:10:244:1::1");

    // The IPv6 address must be usable at once (no DAD), or the route's src would be refused.
    let info = ns.ip_json(&["-6", "addr", "show", "dev", "tweed0", "scope", "global"]);
    let a = &info[0]["addr_info"][0];
    assert_eq!(a["nodad"], true, "{info}");
    assert!(a.get("tentative").is_none(), "{info}");
}

#[test]
fn install_twice_converges_and_replaces_a_stale_route() {
    if !require_root() {
        return;
    }
    let ns = Netns::with_tap("twice");
    // A route a previous run (or someone else) left for one of the prefixes.
    ns.ip(&["link", "set", "tweed0", "up"]);
    ns.ip(&[
        "route",
        "add",
        "10.244.0.0/16",
        "via",
        "169.254.9.9",
        "dev",
        "tweed0",
        "onlink",
    ]);

    ns.run(|| async { routes::install(&dual_stack()).await })
        .expect("first install");
    let first = all_cluster_routes(&ns);
    let first_addrs = global_addrs(&ns, "tweed0");
    assert_eq!(first.len(), 3, "{first:?}");
    assert_eq!(
        routes_to(&ns, "-4", &["10.244.0.0/16"])[0]["gateway"],
        "169.254.1.1",
        "the stale route was not replaced"
    );

    ns.run(|| async { routes::install(&dual_stack()).await })
        .expect("second install");
    assert_eq!(all_cluster_routes(&ns), first);
    assert_eq!(global_addrs(&ns, "tweed0"), first_addrs);
}

#[test]
fn remove_leaves_nothing_and_tolerates_what_is_gone() {
    if !require_root() {
        return;
    }
    let ns = Netns::with_tap("remove");
    // Someone else's route on another device must survive our removal.
    ns.ip(&[
        "link", "add", "other0", "type", "veth", "peer", "name", "other0p",
    ]);
    ns.ip(&["link", "set", "other0", "up"]);
    ns.ip(&["route", "add", "192.0.2.0/24", "dev", "other0"]);

    ns.run(|| async {
        routes::install(&dual_stack()).await?;
        routes::remove(&dual_stack()).await?;
        // Everything already gone: still fine.
        routes::remove(&dual_stack()).await
    })
    .expect("install, remove, remove");

    assert_eq!(global_addrs(&ns, "tweed0"), Vec::<String>::new());
    assert_eq!(all_cluster_routes(&ns), Vec::<Value>::new());
    assert_eq!(routes_to(&ns, "-4", &["192.0.2.0/24"]).len(), 1);

    // With the port itself gone, removal has nothing to do.
    ns.ip(&["link", "del", "tweed0"]);
    ns.run(|| async { routes::remove(&dual_stack()).await })
        .expect("remove without the port");
}

#[test]
fn install_without_the_port_names_it() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("noport");
    let err = ns
        .run(|| async { routes::install(&dual_stack()).await })
        .expect_err("install without tweed0");
    assert!(
        matches!(&err, HostError::LinkMissing { name } if name == "tweed0"),
        "{err}"
    );
}

#[test]
fn wait_for_link_sees_a_port_that_appears_later_and_gives_up_on_a_missing_one() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("wait");
    let err = ns
        .run(|| async { routes::wait_for_link("tweed0", Duration::from_millis(200)).await })
        .expect_err("no tweed0 yet");
    assert!(matches!(err, HostError::LinkWait { .. }), "{err}");

    // Create the tap while the waiter polls (the waiter's timeout is only a bound).
    let name = ns.name.clone();
    let creator = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        Command::new("ip")
            .args(["-n", &name, "tuntap", "add", "dev", "tweed0", "mode", "tap"])
            .status()
            .is_ok_and(|s| s.success())
    });
    let index = ns
        .run(|| async { routes::wait_for_link("tweed0", Duration::from_secs(30)).await })
        .expect("tweed0 appears");
    assert!(
        creator.join().expect("creator thread"),
        "ip tuntap add failed"
    );
    let link = ns.ip_json(&["link", "show", "dev", "tweed0"]);
    assert_eq!(link[0]["ifindex"], index);
}

// ---------------------------------------------------------------------------------------
// Masquerade

/// `nft -j list table inet <table>` in the namespace; `None` if there is no such table.
fn nft_table(ns: &Netns, table: &str) -> Option<Value> {
    let out = ns.exec("nft", &["-j", "list", "table", "inet", table]);
    out.status
        .success()
        .then(|| json(&String::from_utf8_lossy(&out.stdout)))
}

/// The `nftables` array's entries of one kind (`chain`, `rule`).
fn nft_items<'a>(listing: &'a Value, kind: &str) -> Vec<&'a Value> {
    listing["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.get(kind))
        .collect()
}

#[test]
fn masquerade_install_replaces_our_table_and_remove_deletes_it() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("masq");
    // Somebody else's table must be left alone.
    let other = ns.exec("nft", &["add", "table", "inet", "other"]);
    assert!(
        other.status.success(),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );

    let cidrs: Vec<IpNet> = ["10.244.0.0/16", "10.96.0.0/12", "fd00:10:244::/48"]
        .iter()
        .map(|c| c.parse().unwrap())
        .collect();
    let c = cidrs.clone();
    ns.run(move || async move { masquerade::install("tweed", &c).await })
        .expect("install");
    let listing = nft_table(&ns, "tweed").expect("table inet tweed exists");
    let chains = nft_items(&listing, "chain");
    assert_eq!(chains.len(), 1, "{listing}");
    assert_eq!(chains[0]["name"], "postrouting");
    assert_eq!(chains[0]["type"], "nat");
    assert_eq!(chains[0]["hook"], "postrouting");
    assert_eq!(chains[0]["prio"], 100, "srcnat is priority 100");
    let rules = nft_items(&listing, "rule");
    assert_eq!(rules.len(), 2, "one rule per family: {listing}");
    for r in &rules {
        assert!(r["expr"].to_string().contains("masquerade"), "{r}");
    }
    let text = String::from_utf8_lossy(&ns.exec("nft", &["list", "table", "inet", "tweed"]).stdout)
        .into_owned();
    assert!(text.contains("10.244.0.0/16"), "{text}");
    assert!(text.contains("fd00:10:244::/48"), "{text}");

    // Again: same table, one chain, no duplicate rules.
    let c = cidrs.clone();
    ns.run(move || async move { masquerade::install("tweed", &c).await })
        .expect("install again");
    let again =
        String::from_utf8_lossy(&ns.exec("nft", &["list", "table", "inet", "tweed"]).stdout)
            .into_owned();
    assert_eq!(again, text);

    // A different plan replaces the rules instead of adding to them.
    ns.run(|| async { masquerade::install("tweed", &["10.244.0.0/16".parse().unwrap()]).await })
        .expect("install a smaller plan");
    let smaller = nft_table(&ns, "tweed").expect("table still there");
    assert_eq!(nft_items(&smaller, "rule").len(), 1, "{smaller}");

    ns.run(|| async {
        masquerade::remove("tweed").await?;
        masquerade::remove("tweed").await
    })
    .expect("remove twice");
    assert!(
        nft_table(&ns, "tweed").is_none(),
        "table inet tweed still exists"
    );
    assert!(
        nft_table(&ns, "other").is_some(),
        "table inet other was removed"
    );
}

/// A child process killed and reaped on drop.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn masquerade_errors_carry_nfts_stderr() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("masqerr");
    // An interactive nft holds table inet tweed with the `owner` flag: no other netlink
    // socket may change it, so our nft run is refused by the kernel.
    let mut holder = ChildGuard(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "nft", "-i"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nft -i"),
    );
    {
        use std::io::Write;
        let stdin = holder.0.stdin.as_mut().expect("nft -i stdin");
        stdin
            .write_all(b"add table inet tweed { flags owner; }\n")
            .and_then(|()| stdin.flush())
            .expect("write to nft -i");
    }
    // (Not `nft -j`: nft 1.0.6 prints broken JSON for an owned table.)
    let mut tries = 0;
    while !ns
        .exec("nft", &["list", "table", "inet", "tweed"])
        .status
        .success()
    {
        tries += 1;
        assert!(tries < 200, "nft -i never created the owned table");
        std::thread::sleep(Duration::from_millis(50));
    }

    let err = ns
        .run(|| async { masquerade::install("tweed", &["10.244.0.0/16".parse().unwrap()]).await })
        .expect_err("install over an owned table");
    match &err {
        HostError::Nft { stderr, .. } => {
            assert!(stderr.contains("Operation not permitted"), "{err}");
        }
        other => panic!("expected HostError::Nft, got {other}"),
    }
    assert!(
        err.to_string().contains("installing the masquerade table"),
        "{err}"
    );
    drop(holder);

    let err = ns
        .run(|| async { masquerade::install("tweed;flush ruleset", &[]).await })
        .expect_err("bad table name");
    assert!(matches!(err, HostError::InvalidTableName { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Underlay detection

/// A netns with a veth `eth0` (peer `eth0p`, both inside) at MTU 1400.
fn underlay_ns(test: &str) -> Netns {
    let ns = Netns::new(test);
    ns.ip(&[
        "link", "add", "eth0", "mtu", "1400", "type", "veth", "peer", "name", "eth0p",
    ]);
    ns.ip(&["link", "set", "eth0p", "up"]);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns
}

#[test]
fn detect_finds_the_default_route_interface_and_address() {
    if !require_root() {
        return;
    }
    let ns = underlay_ns("detect");
    ns.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    ns.ip(&["addr", "add", "192.0.2.3/24", "dev", "eth0"]);
    ns.ip(&["route", "add", "default", "via", "192.0.2.1", "dev", "eth0"]);

    let u = ns
        .run(|| async { host::default_route_interface().await })
        .expect("detect");
    assert_eq!(u.ifname, "eth0");
    assert_eq!(u.ip, "192.0.2.2".parse::<IpAddr>().unwrap());
    assert_eq!(u.mtu, 1400);

    // A preferred source on the default route wins over the first address.
    ns.ip(&[
        "route",
        "replace",
        "default",
        "via",
        "192.0.2.1",
        "dev",
        "eth0",
        "src",
        "192.0.2.3",
    ]);
    let u = ns
        .run(|| async { host::default_route_interface().await })
        .expect("detect with src");
    assert_eq!(u.ip, "192.0.2.3".parse::<IpAddr>().unwrap());
}

#[test]
fn detect_falls_back_to_the_ipv6_default_route() {
    if !require_root() {
        return;
    }
    let ns = underlay_ns("detect6");
    ns.ip(&["addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad"]);
    ns.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8::1",
        "dev",
        "eth0",
    ]);

    let u = ns
        .run(|| async { host::default_route_interface().await })
        .expect("detect");
    assert_eq!(u.ifname, "eth0");
    assert_eq!(u.ip, "2001:db8::2".parse::<IpAddr>().unwrap());
    assert_eq!(u.mtu, 1400);
}

#[test]
fn detect_without_a_default_route_says_to_pass_the_underlay() {
    if !require_root() {
        return;
    }
    let ns = underlay_ns("nodefault");
    ns.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    let err = ns
        .run(|| async { host::default_route_interface().await })
        .expect_err("no default route");
    assert!(matches!(err, HostError::NoDefaultRoute), "{err}");
    assert!(err.to_string().contains("--underlay-ip"), "{err}");
}

#[test]
fn interface_of_finds_the_holder_of_an_address() {
    if !require_root() {
        return;
    }
    let ns = underlay_ns("ifof");
    ns.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);

    let (eth, lo, missing) = ns.run(|| async {
        (
            host::interface_of("192.0.2.2".parse().unwrap()).await,
            host::interface_of("127.0.0.1".parse().unwrap()).await,
            host::interface_of("198.51.100.7".parse().unwrap()).await,
        )
    });
    let eth = eth.expect("192.0.2.2 is on eth0");
    assert_eq!((eth.ifname.as_str(), eth.mtu), ("eth0", 1400));
    let lo = lo.expect("127.0.0.1 is on lo");
    assert_eq!((lo.ifname.as_str(), lo.mtu), ("lo", 65536));
    let err = missing.expect_err("nobody holds 198.51.100.7");
    assert!(matches!(err, HostError::AddressNotFound { .. }), "{err}");
}
