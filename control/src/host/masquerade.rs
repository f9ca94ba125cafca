//! Masquerade for pod traffic that leaves the cluster, as one nftables table of our own.
//!
//! Pods have cluster addresses the outside world cannot route back to, so traffic from
//! a cluster CIDR to anything outside the cluster CIDRs is masqueraded on its way out
//! of the node (postrouting, `srcnat` priority). Traffic between cluster CIDRs keeps
//! its source: pods see each other's real addresses.
//!
//! There is no maintained Rust crate that speaks nftables' netlink protocol (the
//! `nftables` crate drives the `nft` binary too), so we run `nft -f -` with a script on
//! stdin. The script declares the table, deletes it and declares it again with its
//! chain: nft applies a script as one transaction, so the table is replaced atomically
//! whether or not it existed, and running it twice gives the same ruleset. Only our own
//! table is touched; other tables (the distribution's firewall, kube-proxy's) are left
//! alone.
//!
//! [`ruleset`] and [`removal`] build the scripts (pure); [`install`] and [`remove`] run
//! nft (found on `PATH`, else `/usr/sbin/nft`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use tokio::io::AsyncWriteExt;

use super::HostError;
use super::error::NftStep;

/// Where nft lives when it is not on `PATH` (Debian's nftables package).
pub const NFT_FALLBACK: &str = "/usr/sbin/nft";

/// The longest table name we accept (nft allows more; ours are short).
const TABLE_NAME_MAX: usize = 64;

/// Checks that `table` is a plain nft identifier (a letter, then letters, digits or
/// `_`), so it can be written into a script unquoted.
pub fn check_table_name(table: &str) -> Result<(), HostError> {
    let mut bytes = table.bytes();
    let ok = table.len() <= TABLE_NAME_MAX
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(HostError::InvalidTableName {
            table: table.to_string(),
        })
    }
}

/// The nft script that atomically replaces table `inet <table>` with one postrouting
/// chain masquerading traffic from `cluster_cidrs` to anywhere outside them (one rule
/// per family present; overlapping or adjacent CIDRs are merged first, as nft refuses
/// overlapping intervals in one set). `table` must pass [`check_table_name`].
pub fn ruleset(table: &str, cluster_cidrs: &[IpNet]) -> String {
    let v4: Vec<Ipv4Net> = cluster_cidrs
        .iter()
        .filter_map(|c| match c {
            IpNet::V4(n) => Some(n.trunc()),
            IpNet::V6(_) => None,
        })
        .collect();
    let v6: Vec<Ipv6Net> = cluster_cidrs
        .iter()
        .filter_map(|c| match c {
            IpNet::V6(n) => Some(n.trunc()),
            IpNet::V4(_) => None,
        })
        .collect();
    let mut s = removal(table);
    let _ = writeln!(s, "table inet {table} {{");
    s.push_str("\tchain postrouting {\n");
    s.push_str("\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
    if let Some(set) = nft_set(&Ipv4Net::aggregate(&v4)) {
        let _ = writeln!(s, "\t\tip saddr {set} ip daddr != {set} masquerade");
    }
    if let Some(set) = nft_set(&Ipv6Net::aggregate(&v6)) {
        let _ = writeln!(s, "\t\tip6 saddr {set} ip6 daddr != {set} masquerade");
    }
    s.push_str("\t}\n}\n");
    s
}

/// The nft script that deletes table `inet <table>`, whether or not it exists
/// (declaring it first makes the delete always find it).
pub fn removal(table: &str) -> String {
    format!("table inet {table} {{ }}\ndelete table inet {table}\n")
}

/// A prefix alone, or an anonymous set `{ a, b }` of several; `None` for none.
pub(super) fn nft_set<N: std::fmt::Display>(nets: &[N]) -> Option<String> {
    match nets {
        [] => None,
        [one] => Some(one.to_string()),
        many => {
            let items: Vec<String> = many.iter().map(ToString::to_string).collect();
            Some(format!("{{ {} }}", items.join(", ")))
        }
    }
}

/// Replaces our masquerade table with the rules for `cluster_cidrs`. Idempotent.
pub async fn install(table: &str, cluster_cidrs: &[IpNet]) -> Result<(), HostError> {
    check_table_name(table)?;
    run_nft(NftStep::Install, &ruleset(table, cluster_cidrs)).await
}

/// Deletes our masquerade table; an absent table is fine.
pub async fn remove(table: &str) -> Result<(), HostError> {
    check_table_name(table)?;
    run_nft(NftStep::Remove, &removal(table)).await
}

/// The nft binary: the first `nft` on `PATH`, else [`NFT_FALLBACK`].
pub fn nft_path() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nft"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(NFT_FALLBACK))
}

/// Runs `nft -f -` with `script` on stdin; nft's stderr becomes the error.
pub(super) async fn run_nft(step: NftStep, script: &str) -> Result<(), HostError> {
    let path = nft_path();
    let spawn_err = |path: &Path, source| HostError::NftSpawn {
        path: path.to_path_buf(),
        step,
        source,
    };
    let mut child = tokio::process::Command::new(&path)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_err(&path, e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means nft exited early; its status and stderr say why.
        let _ = stdin.write_all(script.as_bytes()).await;
        drop(stdin);
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| spawn_err(&path, e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(HostError::Nft {
        step,
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn single_v4_cidr() {
        assert_eq!(
            ruleset("tweed", &nets(&["10.244.0.0/16"])),
            "table inet tweed { }\n\
             delete table inet tweed\n\
             table inet tweed {\n\
             \tchain postrouting {\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade\n\
             \t}\n\
             }\n"
        );
    }

    #[test]
    fn dual_stack_gives_one_rule_per_family() {
        let s = ruleset("tweed", &nets(&["fd00:10:244::/48", "10.244.0.0/16"]));
        let rules: Vec<&str> = s.lines().filter(|l| l.contains("masquerade")).collect();
        assert_eq!(
            rules,
            vec![
                "\t\tip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade",
                "\t\tip6 saddr fd00:10:244::/48 ip6 daddr != fd00:10:244::/48 masquerade",
            ]
        );
    }

    #[test]
    fn several_cidrs_of_one_family_share_one_set_so_cluster_traffic_keeps_its_source() {
        let s = ruleset("tweed", &nets(&["10.244.0.0/16", "10.96.0.0/12"]));
        assert!(
            s.contains(
                "ip saddr { 10.96.0.0/12, 10.244.0.0/16 } \
                 ip daddr != { 10.96.0.0/12, 10.244.0.0/16 } masquerade"
            ),
            "{s}"
        );
    }

    #[test]
    fn overlapping_cidrs_and_host_bits_are_merged_away() {
        let s = ruleset(
            "tweed",
            &nets(&["10.244.1.0/24", "10.244.7.7/16", "10.245.0.0/16"]),
        );
        assert!(
            s.contains("ip saddr 10.244.0.0/15 ip daddr != 10.244.0.0/15 masquerade"),
            "{s}"
        );
    }

    #[test]
    fn no_cidrs_gives_an_empty_chain() {
        let s = ruleset("tweed", &[]);
        assert!(s.contains("type nat hook postrouting"), "{s}");
        assert!(!s.contains("masquerade"), "{s}");
    }

    #[test]
    fn removal_declares_then_deletes() {
        assert_eq!(
            removal("tw_1"),
            "table inet tw_1 { }\ndelete table inet tw_1\n"
        );
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        for ok in ["tweed", "tw_1", "T"] {
            assert!(check_table_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1tw",
            "tw-1",
            "tw 1",
            "tw;flush ruleset",
            "tw}",
            &"a".repeat(65),
        ] {
            assert!(check_table_name(bad).is_err(), "{bad:?}");
        }
    }
}
