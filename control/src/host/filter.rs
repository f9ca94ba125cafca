//! The node's own nftables filter table, beside the masquerade table: what the
//! node's kernel must not let through for the pod network to keep its promises.
//!
//! - **Cluster sources only from the host port.** A packet whose source is in a
//!   cluster CIDR may enter the node's kernel only from the dataplane's host port
//!   (or loopback). The dataplane hands kube-proxy's translated pod traffic back
//!   in from the host port with the pod's own source and trusts it as that pod's
//!   (egress policy, the backend's ingress policy); a packet from the underlay or
//!   any other interface claiming a pod's address is spoofed, and would otherwise
//!   be forwarded into `tweed0` (loose reverse-path filtering accepts it, since the
//!   cluster is routed there). Only with masquerade on: without it, another node's
//!   pods reach this node's own addresses over the underlay with their real source.
//! - **Service traffic the node did not translate.** A pod's packet to a Service
//!   address passes the dataplane without its egress policy, which applies after
//!   kube-proxy's DNAT (`tweed-dataplane --service-cidr`). One that no Service rule
//!   translated must not leave the node with that policy unchecked: forwarded
//!   packets from the host port still addressed to a Service range are dropped.
//!
//! [`ruleset`] builds the script (pure); [`install`] and [`remove`] run nft, the same
//! way as the masquerade table (one atomic transaction, our table only).

use std::fmt::Write as _;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::HostError;
use super::error::NftStep;
use super::masquerade::{check_table_name, nft_set, removal, run_nft};

/// What the filter table guards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPlan {
    /// The dataplane's host port: the one interface cluster sources may come from.
    pub host_port: String,
    /// The cluster CIDRs; empty: no anti-spoofing rule (no masquerade).
    pub cluster_cidrs: Vec<IpNet>,
    /// The Service ranges untranslated traffic to is dropped.
    pub service_cidrs: Vec<IpNet>,
}

/// The prefixes of one family in `nets`, merged (nft refuses overlapping set
/// elements).
fn family(nets: &[IpNet]) -> (Vec<Ipv4Net>, Vec<Ipv6Net>) {
    let v4: Vec<Ipv4Net> = nets
        .iter()
        .filter_map(|n| match n {
            IpNet::V4(n) => Some(n.trunc()),
            IpNet::V6(_) => None,
        })
        .collect();
    let v6: Vec<Ipv6Net> = nets
        .iter()
        .filter_map(|n| match n {
            IpNet::V6(n) => Some(n.trunc()),
            IpNet::V4(_) => None,
        })
        .collect();
    (Ipv4Net::aggregate(&v4), Ipv6Net::aggregate(&v6))
}

/// The nft script that atomically replaces table `inet <table>`.
/// `table` must pass [`check_table_name`]; `plan.host_port` is quoted.
pub fn ruleset(table: &str, plan: &FilterPlan) -> String {
    let port = quoted(&plan.host_port);
    let mut s = removal(table);
    let _ = writeln!(s, "table inet {table} {{");
    s.push_str("\tchain prerouting {\n");
    s.push_str("\t\ttype filter hook prerouting priority raw; policy accept;\n");
    let (v4, v6) = family(&plan.cluster_cidrs);
    if let Some(set) = nft_set(&v4) {
        let _ = writeln!(s, "\t\tiifname != {{ {port}, \"lo\" }} ip saddr {set} drop");
    }
    if let Some(set) = nft_set(&v6) {
        let _ = writeln!(
            s,
            "\t\tiifname != {{ {port}, \"lo\" }} ip6 saddr {set} drop"
        );
    }
    s.push_str("\t}\n");
    s.push_str("\tchain forward {\n");
    s.push_str("\t\ttype filter hook forward priority filter; policy accept;\n");
    let (v4, v6) = family(&plan.service_cidrs);
    if let Some(set) = nft_set(&v4) {
        let _ = writeln!(s, "\t\tiifname {port} ip daddr {set} drop");
    }
    if let Some(set) = nft_set(&v6) {
        let _ = writeln!(s, "\t\tiifname {port} ip6 daddr {set} drop");
    }
    s.push_str("\t}\n}\n");
    s
}

/// An interface name as an nft string: in quotes, any quote or backslash
/// in it dropped so it cannot end the string.
pub(super) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace(['"', '\\'], ""))
}

/// Replaces our filter table with the rules of `plan`. Idempotent.
pub async fn install(table: &str, plan: &FilterPlan) -> Result<(), HostError> {
    check_table_name(table)?;
    run_nft(NftStep::InstallFilter, &ruleset(table, plan)).await
}

/// Deletes our filter table; an absent table is fine.
pub async fn remove(table: &str) -> Result<(), HostError> {
    check_table_name(table)?;
    run_nft(NftStep::RemoveFilter, &removal(table)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cluster: &[&str], services: &[&str]) -> FilterPlan {
        FilterPlan {
            host_port: "tweed0".into(),
            cluster_cidrs: cluster.iter().map(|c| c.parse().unwrap()).collect(),
            service_cidrs: services.iter().map(|c| c.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn cluster_sources_may_come_only_from_the_host_port_and_loopback() {
        let s = ruleset(
            "tweed_filter",
            &plan(&["10.244.0.0/16", "fd00:10::/48"], &[]),
        );
        assert_eq!(
            s,
            "table inet tweed_filter { }\n\
             delete table inet tweed_filter\n\
             table inet tweed_filter {\n\
             \tchain prerouting {\n\
             \t\ttype filter hook prerouting priority raw; policy accept;\n\
             \t\tiifname != { \"tweed0\", \"lo\" } ip saddr 10.244.0.0/16 drop\n\
             \t\tiifname != { \"tweed0\", \"lo\" } ip6 saddr fd00:10::/48 drop\n\
             \t}\n\
             \tchain forward {\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t}\n\
             }\n"
        );
    }

    #[test]
    fn untranslated_service_traffic_from_the_host_port_is_dropped() {
        let s = ruleset(
            "t",
            &plan(&[], &["10.96.0.0/12", "10.96.5.0/24", "fd00:96::/108"]),
        );
        let rules: Vec<&str> = s.lines().filter(|l| l.ends_with("drop")).collect();
        assert_eq!(
            rules,
            vec![
                "\t\tiifname \"tweed0\" ip daddr 10.96.0.0/12 drop",
                "\t\tiifname \"tweed0\" ip6 daddr fd00:96::/108 drop",
            ]
        );
    }

    #[test]
    fn a_quote_in_the_port_name_cannot_end_the_string() {
        let mut p = plan(&["10.244.0.0/16"], &[]);
        p.host_port = "tw\"0; flush ruleset".into();
        let s = ruleset("t", &p);
        assert!(s.contains("\"tw0; flush ruleset\""), "{s}");
    }
}
