//! The Service lines' Services, the same for both implementations: N
//! ClusterIP Services of one TCP port, each with one endpoint; the client
//! calls the one in the middle (kube-proxy's iptables mode tests the
//! Services one rule at a time, so the middle one is its average case). Its
//! endpoint is the server pod; the others' are addresses no pod has. For
//! tweed a `service_set`; for the kernel the `nat` table kube-proxy's
//! iptables mode writes (`KUBE-SERVICES` → `KUBE-SVC-…` → `KUBE-SEP-…`
//! DNAT, the shape of the fixtures in tests/fixtures/kube-proxy), loaded
//! with one `iptables-restore`, or the `kube-proxy` table its nftables mode
//! writes (the `service-ips` verdict map → `service-…` → `endpoint-…` DNAT),
//! loaded with one `nft -f`. Pure.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

use tweed_api::dataplane::proto::ServiceSpec;
use tweed_dataplane::table::service::{
    Affinity, Frontend, FrontendKind, ServiceEndpoint, ServiceKey, ServicePort, TrafficPolicy,
};
use tweed_dataplane::wire::transport::PROTO_TCP;

/// The port every Service answers on.
pub const SERVICE_PORT: u16 = 80;

/// Service `i`'s cluster IP: counted up from 10.96.0.1.
pub fn vip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 1)) + i as u32)
}

/// The Service the client calls among `n`.
pub fn called(n: usize) -> usize {
    n / 2
}

/// Service `i`'s endpoint: the server for the called one, else an address
/// of 172.20.0.0/14 (no pod's) on the same port.
fn endpoint(i: usize, n: usize, server: Ipv4Addr) -> Ipv4Addr {
    if i == called(n) {
        server
    } else {
        Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 20, 0, 1)) + i as u32)
    }
}

/// `n` Services for tweed's `service_set`.
pub fn tweed_services(n: usize, server: Ipv4Addr, port: u16) -> Vec<ServiceSpec> {
    (0..n)
        .map(|i| {
            let name = format!("bench/svc-{i}");
            ServiceSpec {
                ports: vec![ServicePort {
                    name: format!("{name}:p"),
                    frontends: vec![Frontend {
                        key: ServiceKey {
                            ip: IpAddr::V4(vip(i)),
                            protocol: PROTO_TCP,
                            port: SERVICE_PORT,
                        },
                        kind: FrontendKind::ClusterIp,
                    }],
                    endpoints: vec![ServiceEndpoint {
                        ip: IpAddr::V4(endpoint(i, n, server)),
                        port,
                        local: false,
                        ready: true,
                        serving: true,
                        terminating: false,
                    }],
                    internal: TrafficPolicy::Cluster,
                    external: TrafficPolicy::Cluster,
                    affinity: Affinity::None,
                }],
                name,
            }
        })
        .collect()
}

/// The `iptables-restore` input for the same Services (replaces the `nat`
/// table of the client's node namespace); `n` = 0 empties it.
pub fn iptables_restore(n: usize, server: Ipv4Addr, port: u16) -> String {
    let mut s = String::with_capacity(n * 400 + 512);
    s.push_str("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n");
    if n == 0 {
        s.push_str("COMMIT\n");
        return s;
    }
    s.push_str(":KUBE-SERVICES - [0:0]\n");
    for i in 0..n {
        let _ = writeln!(s, ":KUBE-SVC-{i:016X} - [0:0]\n:KUBE-SEP-{i:016X} - [0:0]");
    }
    s.push_str(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
    );
    s.push_str("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
    for i in 0..n {
        let _ = writeln!(
            s,
            "-A KUBE-SERVICES -d {}/32 -p tcp -m comment --comment \"bench/svc-{i}:p cluster IP\" -m tcp --dport {SERVICE_PORT} -j KUBE-SVC-{i:016X}",
            vip(i)
        );
    }
    for i in 0..n {
        let to = endpoint(i, n, server);
        let _ = writeln!(
            s,
            "-A KUBE-SVC-{i:016X} -m comment --comment \"bench/svc-{i}:p -> {to}:{port}\" -j KUBE-SEP-{i:016X}"
        );
        let _ = writeln!(
            s,
            "-A KUBE-SEP-{i:016X} -s {to}/32 -m comment --comment \"bench/svc-{i}:p\" -j MARK --set-xmark 0x4000/0x4000"
        );
        let _ = writeln!(
            s,
            "-A KUBE-SEP-{i:016X} -p tcp -m comment --comment \"bench/svc-{i}:p\" -m tcp -j DNAT --to-destination {to}:{port}"
        );
    }
    s.push_str("COMMIT\n");
    s
}

/// The `nft -f` input for the same Services in kube-proxy's nftables mode:
/// its `kube-proxy` table (replaced whole; `n` = 0 removes it) with the
/// `service-ips` verdict map that finds a Service in one lookup, whatever
/// their number, and a `service-…` and an `endpoint-…` chain per Service,
/// as Kubernetes' `pkg/proxy/nftables` writes them (the masquerade marks
/// kept, as the iptables rules keep theirs).
pub fn nft_ruleset(n: usize, server: Ipv4Addr, port: u16) -> String {
    // Declaring the table first makes the delete succeed when it is absent.
    let mut s = String::with_capacity(n * 300 + 1024);
    s.push_str("table ip kube-proxy\ndelete table ip kube-proxy\n");
    if n == 0 {
        return s;
    }
    s.push_str("table ip kube-proxy {\n\tcomment \"rules for kube-proxy\"\n\n");
    s.push_str("\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\telements = { ");
    for i in 0..n {
        let sep = if i + 1 == n {
            " }\n\t}\n\n"
        } else {
            ",\n\t\t\t     "
        };
        let _ = write!(
            s,
            "{} . tcp . {SERVICE_PORT} : goto service-{i:08X}-bench/svc-{i}/tcp/p{sep}",
            vip(i)
        );
    }
    s.push_str(concat!(
        "\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}\n\n",
        "\tchain nat-output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump services\n\t}\n\n",
        "\tchain mark-for-masquerade {\n\t\tmark set mark or 0x4000\n\t}\n\n",
        "\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}\n",
    ));
    for i in 0..n {
        let to = endpoint(i, n, server);
        let _ = write!(
            s,
            concat!(
                "\n\tchain service-{i:08X}-bench/svc-{i}/tcp/p {{\n",
                "\t\tnumgen random mod 1 vmap {{ 0 : goto endpoint-{i:08X}-bench/svc-{i}/tcp/p__{to}/{port} }}\n\t}}\n",
                "\n\tchain endpoint-{i:08X}-bench/svc-{i}/tcp/p__{to}/{port} {{\n",
                "\t\tip saddr {to} jump mark-for-masquerade\n",
                "\t\tmeta l4proto tcp dnat to {to}:{port}\n\t}}\n",
            ),
            i = i,
            to = to,
            port = port,
        );
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 244, 2, 2);

    #[test]
    fn only_the_called_service_leads_to_the_server() {
        let services = tweed_services(1_000, SERVER, 7000);
        assert_eq!(services.len(), 1_000);
        let to_server: Vec<usize> = services
            .iter()
            .enumerate()
            .filter(|(_, s)| s.ports[0].endpoints[0].ip == IpAddr::V4(SERVER))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(to_server, [called(1_000)]);
        assert_eq!(vip(0), Ipv4Addr::new(10, 96, 0, 1));
        assert_eq!(vip(10_000), Ipv4Addr::new(10, 96, 39, 17));
        // Every frontend is distinct, so the table builds.
        let ports: Vec<ServicePort> = services.into_iter().flat_map(|s| s.ports).collect();
        assert_eq!(
            tweed_dataplane::table::service::ServiceTable::build(&ports)
                .unwrap()
                .len(),
            1_000
        );
    }

    #[test]
    fn iptables_has_kube_proxys_three_chains_per_service() {
        let text = iptables_restore(1_000, SERVER, 7000);
        assert_eq!(text.matches("-A KUBE-SERVICES ").count(), 1_000);
        assert_eq!(text.matches("-j DNAT --to-destination").count(), 1_000);
        let called = format!("-m tcp -j DNAT --to-destination {SERVER}:7000\n");
        assert_eq!(text.matches(&called).count(), 1);
        assert!(text.starts_with("*nat\n") && text.ends_with("COMMIT\n"));
        assert!(text.contains(
            "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
        ));
        assert!(!iptables_restore(0, SERVER, 7000).contains("KUBE"));
    }

    #[test]
    fn nftables_has_one_map_entry_and_two_chains_per_service() {
        let text = nft_ruleset(1_000, SERVER, 7000);
        assert!(
            text.starts_with(
                "table ip kube-proxy\ndelete table ip kube-proxy\ntable ip kube-proxy {"
            )
        );
        assert_eq!(text.matches(" . tcp . 80 : goto service-").count(), 1_000);
        assert_eq!(text.matches("\tchain service-").count(), 1_000);
        assert_eq!(text.matches("meta l4proto tcp dnat to ").count(), 1_000);
        let called = format!("meta l4proto tcp dnat to {SERVER}:7000\n");
        assert_eq!(text.matches(&called).count(), 1);
        // Every map entry names a chain that exists.
        for line in text.lines().filter(|l| l.contains(" : goto service-")) {
            let chain = line
                .split(" : goto ")
                .nth(1)
                .unwrap()
                .trim_end_matches([',', ' ', '}']);
            assert!(text.contains(&format!("\tchain {chain} {{")), "{chain}");
        }
        assert_eq!(
            nft_ruleset(0, SERVER, 7000),
            "table ip kube-proxy\ndelete table ip kube-proxy\n"
        );
    }
}
