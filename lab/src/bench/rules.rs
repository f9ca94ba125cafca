//! The policy-heavy lines' rules, the same for both implementations: N
//! ingress rules on the server pod, ipBlocks with a TCP port each, none of
//! which match the client except the last, an allow of the client's
//! address on the server's port. For tweed a `policy_set`; for the kernel
//! Calico-style iptables chains (a per-pod ingress chain jumped to from
//! FORWARD on the host veth, one rule per ipBlock and port), loaded with
//! one `iptables-restore`. Pure.

use std::fmt::Write;
use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};
use tweed_api::dataplane::proto::{
    PortRangeSpec, RuleActionSpec, RuleSetSpec, RuleSpec, VerdictSpec,
};

/// The ipBlocks that do not match: /28s counted up from 172.16.0.0 (the
/// pods are in 10.244.0.0/16), each with a TCP port of its own (8000 and
/// up), as 10,000 separately written policy rules would have.
fn decoy(i: usize) -> (Ipv4Net, u16) {
    let base = u32::from(Ipv4Addr::new(172, 16, 0, 0));
    let net = Ipv4Net::new(Ipv4Addr::from(base + (i as u32) * 16), 28)
        .expect("28 is a valid prefix length");
    (net, 8_000 + (i % 50_000) as u16)
}

/// `n` rules (`n` ≥ 1) whose last allows `client` to TCP `port`.
pub fn tweed_ingress(n: usize, client: Ipv4Addr, port: u16) -> RuleSetSpec {
    let rule = |id: usize, net: Ipv4Net, port: u16| RuleSpec {
        id: id as u32 + 1,
        tier: 0,
        action: RuleActionSpec::Allow,
        remote: vec![IpNet::V4(net)],
        remote_except: vec![],
        protocol: Some(6),
        ports: Some(PortRangeSpec {
            first: port,
            last: port,
        }),
        name: None,
    };
    let mut rules: Vec<RuleSpec> = (0..n.saturating_sub(1))
        .map(|i| {
            let (net, p) = decoy(i);
            rule(i, net, p)
        })
        .collect();
    let client = Ipv4Net::new(client, 32).expect("32 is a valid prefix length");
    rules.push(rule(n.saturating_sub(1), client, port));
    RuleSetSpec {
        default: VerdictSpec::Deny,
        rules,
    }
}

/// The `iptables-restore` input for the same rules on the server's host
/// veth `hostif` (replaces the filter table of the node's namespace).
pub fn iptables_restore(n: usize, client: Ipv4Addr, port: u16, hostif: &str) -> String {
    let chain = format!("cali-tw-{hostif}");
    let mut s = String::with_capacity(n * 64 + 512);
    s.push_str("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    let _ = writeln!(s, ":{chain} - [0:0]");
    let _ = writeln!(s, "-A FORWARD -o {hostif} -j {chain}");
    let _ = writeln!(
        s,
        "-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    );
    let _ = writeln!(s, "-A {chain} -m conntrack --ctstate INVALID -j DROP");
    for i in 0..n.saturating_sub(1) {
        let (net, p) = decoy(i);
        let _ = writeln!(s, "-A {chain} -s {net} -p tcp -m tcp --dport {p} -j ACCEPT");
    }
    let _ = writeln!(
        s,
        "-A {chain} -s {client}/32 -p tcp -m tcp --dport {port} -j ACCEPT"
    );
    let _ = writeln!(s, "-A {chain} -j DROP");
    s.push_str("COMMIT\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);

    #[test]
    fn only_the_last_tweed_rule_matches_the_client() {
        let set = tweed_ingress(10_000, CLIENT, 7000);
        assert_eq!(set.rules.len(), 10_000);
        assert_eq!(set.default, VerdictSpec::Deny);
        let ids: std::collections::HashSet<u32> = set.rules.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), 10_000, "ids are unique");
        let client = IpNet::V4(Ipv4Net::new(CLIENT, 32).unwrap());
        for r in &set.rules[..9_999] {
            assert!(!r.remote[0].contains(&client), "{r:?}");
        }
        let last = set.rules.last().unwrap();
        assert_eq!(last.remote, [client]);
        assert_eq!(last.ports.unwrap().first, 7000);
    }

    #[test]
    fn the_decoys_stay_out_of_the_pod_network() {
        let (net, _) = decoy(9_999);
        assert!(
            Ipv4Net::new(Ipv4Addr::new(172, 16, 0, 0), 12)
                .unwrap()
                .contains(&net)
        );
    }

    #[test]
    fn the_decoys_have_ports_of_their_own_clear_of_the_servers() {
        let ports: std::collections::BTreeSet<u16> = (0..9_999).map(|i| decoy(i).1).collect();
        assert_eq!(ports.len(), 9_999);
        assert!(!ports.contains(&7000));
    }

    #[test]
    fn iptables_has_one_rule_per_block_in_one_chain() {
        let text = iptables_restore(1_000, CLIENT, 7000, "cali-b");
        assert_eq!(text.matches("--dport").count(), 1_000);
        assert!(text.contains("-A FORWARD -o cali-b -j cali-tw-cali-b\n"));
        assert!(text.contains("-A cali-tw-cali-b -s 10.244.1.2/32 -p tcp -m tcp --dport 7000 -j ACCEPT\n-A cali-tw-cali-b -j DROP\nCOMMIT\n"));
        assert!(text.contains("-s 172.16.0.0/28 -p tcp -m tcp --dport 8000 -j ACCEPT"));
    }
}
