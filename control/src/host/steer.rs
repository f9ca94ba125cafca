//! Steering: packets from outside the cluster to a native Service's NodePort,
//! externalIP or load-balancer address go to the dataplane, not the node's
//! stack.
//!
//! Those frontends are this node's own addresses (a NodePort) or addresses
//! routed to it (an externalIP): the kernel would deliver them locally, where
//! nothing listens. An nftables `netdev` table hooks the ingress of each
//! underlay device and sends a packet whose destination address, protocol
//! and port are a frontend's straight to the host port (`fwd to tweed0`),
//! before the node's netfilter and routing see it; the dataplane balances it
//! (`pipeline::service`). The replies come back out of the host port from
//! the frontend's address and the kernel forwards them; an `inet` table marks
//! them untracked (`notrack`, at raw priority), as the node's conntrack never
//! saw their flow start. The kernel must accept a packet from one of its own
//! addresses on the host port for that: `accept_local` (see
//! [`super::forwarding::accept_local`]).
//!
//! Only a first fragment carries ports: later fragments of a datagram to a
//! frontend reach the node's stack, which drops them (as kube-proxy's rules
//! cannot match them either without reassembly).
//!
//! [`ruleset`] builds the script (pure); [`install`] and [`remove`] run nft,
//! which applies a script as one transaction, as the masquerade table does.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use tweed_dataplane::table::service::ServiceKey;

use super::HostError;
use super::error::NftStep;
use super::filter::quoted;
use super::masquerade::{check_table_name, run_nft};

/// What the steering needs: where packets come in, where they go, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteerPlan {
    /// The host port the dataplane reads (`tweed0`).
    pub host_port: String,
    /// The devices packets from outside arrive on (the underlay's).
    pub devices: Vec<String>,
    /// The frontends reached from outside: this node's NodePorts, the
    /// externalIPs and load-balancer addresses of its Services.
    pub frontends: BTreeSet<ServiceKey>,
}

/// The nft script that atomically replaces both tables (`netdev` and
/// `inet`, named `table`) with the steering for `plan`; with no frontend or
/// no device, it only deletes them. `table` must pass
/// [`check_table_name`].
pub fn ruleset(table: &str, plan: &SteerPlan) -> String {
    let mut s = removal(table);
    if plan.frontends.is_empty() || plan.devices.is_empty() {
        return s;
    }
    let port = quoted(&plan.host_port);
    let _ = writeln!(s, "table netdev {table} {{");
    sets(&mut s, &plan.frontends);
    for (i, device) in plan.devices.iter().enumerate() {
        let _ = writeln!(s, "\tchain ingress_{i} {{");
        let _ = writeln!(
            s,
            "\t\ttype filter hook ingress device {} priority filter; policy accept;",
            quoted(device)
        );
        let _ = writeln!(
            s,
            "\t\tip daddr . meta l4proto . th dport @frontends4 fwd to {port}"
        );
        let _ = writeln!(
            s,
            "\t\tip6 daddr . meta l4proto . th dport @frontends6 fwd to {port}"
        );
        s.push_str("\t}\n");
    }
    s.push_str("}\n");
    let _ = writeln!(s, "table inet {table} {{");
    sets(&mut s, &plan.frontends);
    s.push_str("\tchain replies {\n");
    s.push_str("\t\ttype filter hook prerouting priority raw; policy accept;\n");
    let _ = writeln!(
        s,
        "\t\tiifname {port} ip saddr . meta l4proto . th sport @frontends4 notrack"
    );
    let _ = writeln!(
        s,
        "\t\tiifname {port} ip6 saddr . meta l4proto . th sport @frontends6 notrack"
    );
    s.push_str("\t}\n}\n");
    s
}

/// The two sets of frontends (address, protocol number, port), one per
/// family.
fn sets(s: &mut String, frontends: &BTreeSet<ServiceKey>) {
    for (name, kind, v4) in [
        ("frontends4", "ipv4_addr", true),
        ("frontends6", "ipv6_addr", false),
    ] {
        let elements: Vec<String> = frontends
            .iter()
            .filter(|f| f.ip.is_ipv4() == v4)
            .map(|f| format!("{} . {} . {}", f.ip, f.protocol, f.port))
            .collect();
        let _ = writeln!(s, "\tset {name} {{");
        let _ = writeln!(s, "\t\ttype {kind} . inet_proto . inet_service");
        if !elements.is_empty() {
            let _ = writeln!(s, "\t\telements = {{ {} }}", elements.join(", "));
        }
        s.push_str("\t}\n");
    }
}

/// The nft script that deletes both tables, whether or not they exist.
pub fn removal(table: &str) -> String {
    format!(
        "table netdev {table} {{ }}\ndelete table netdev {table}\n\
         table inet {table} {{ }}\ndelete table inet {table}\n"
    )
}

/// Replaces the steering with `plan`'s. Idempotent.
pub async fn install(table: &str, plan: &SteerPlan) -> Result<(), HostError> {
    check_table_name(table)?;
    run_nft(NftStep::InstallSteer, &ruleset(table, plan)).await
}

/// Deletes the steering; absent tables are fine.
pub async fn remove(table: &str) -> Result<(), HostError> {
    check_table_name(table)?;
    run_nft(NftStep::RemoveSteer, &removal(table)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str, protocol: u8, port: u16) -> ServiceKey {
        ServiceKey {
            ip: ip.parse().unwrap(),
            protocol,
            port,
        }
    }

    fn plan(devices: &[&str], frontends: &[ServiceKey]) -> SteerPlan {
        SteerPlan {
            host_port: "tweed0".into(),
            devices: devices.iter().map(|d| (*d).to_owned()).collect(),
            frontends: frontends.iter().copied().collect(),
        }
    }

    #[test]
    fn frontends_from_each_device_go_to_the_host_port_and_their_replies_are_untracked() {
        let s = ruleset(
            "tweed_steer",
            &plan(
                &["eth0"],
                &[key("192.168.1.1", 6, 30080), key("fd00::1", 17, 53)],
            ),
        );
        assert_eq!(
            s,
            "table netdev tweed_steer { }\n\
             delete table netdev tweed_steer\n\
             table inet tweed_steer { }\n\
             delete table inet tweed_steer\n\
             table netdev tweed_steer {\n\
             \tset frontends4 {\n\
             \t\ttype ipv4_addr . inet_proto . inet_service\n\
             \t\telements = { 192.168.1.1 . 6 . 30080 }\n\
             \t}\n\
             \tset frontends6 {\n\
             \t\ttype ipv6_addr . inet_proto . inet_service\n\
             \t\telements = { fd00::1 . 17 . 53 }\n\
             \t}\n\
             \tchain ingress_0 {\n\
             \t\ttype filter hook ingress device \"eth0\" priority filter; policy accept;\n\
             \t\tip daddr . meta l4proto . th dport @frontends4 fwd to \"tweed0\"\n\
             \t\tip6 daddr . meta l4proto . th dport @frontends6 fwd to \"tweed0\"\n\
             \t}\n\
             }\n\
             table inet tweed_steer {\n\
             \tset frontends4 {\n\
             \t\ttype ipv4_addr . inet_proto . inet_service\n\
             \t\telements = { 192.168.1.1 . 6 . 30080 }\n\
             \t}\n\
             \tset frontends6 {\n\
             \t\ttype ipv6_addr . inet_proto . inet_service\n\
             \t\telements = { fd00::1 . 17 . 53 }\n\
             \t}\n\
             \tchain replies {\n\
             \t\ttype filter hook prerouting priority raw; policy accept;\n\
             \t\tiifname \"tweed0\" ip saddr . meta l4proto . th sport @frontends4 notrack\n\
             \t\tiifname \"tweed0\" ip6 saddr . meta l4proto . th sport @frontends6 notrack\n\
             \t}\n\
             }\n"
        );
    }

    #[test]
    fn every_device_gets_its_chain_and_an_empty_family_an_empty_set() {
        let s = ruleset(
            "t",
            &plan(&["eth0", "bond\"1"], &[key("192.0.2.7", 132, 9000)]),
        );
        assert!(s.contains("chain ingress_0 {\n\t\ttype filter hook ingress device \"eth0\""));
        assert!(s.contains("chain ingress_1 {\n\t\ttype filter hook ingress device \"bond1\""));
        assert!(
            s.contains("\tset frontends6 {\n\t\ttype ipv6_addr . inet_proto . inet_service\n\t}\n")
        );
    }

    #[test]
    fn nothing_to_steer_only_deletes() {
        assert_eq!(ruleset("t", &plan(&["eth0"], &[])), removal("t"));
        assert_eq!(
            ruleset("t", &plan(&[], &[key("192.0.2.7", 6, 80)])),
            removal("t")
        );
    }
}
