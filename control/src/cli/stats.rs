//! The table output of `stats` and `trace`: pure functions from the
//! dataplane's replies (passed through by the daemon) to the text printed.

use tweed_api::dataplane::proto::VerdictSpec;

use super::table::{Table, key_values};
use crate::api::proto::{StatsReply, TraceReply, TraceStage};

/// `tweed stats`: per-port and per-worker tables, actions, conntrack and
/// the drop reasons that counted something.
pub fn render_stats(stats: &StatsReply) -> String {
    let mut out = String::new();
    if stats.ports.is_empty() {
        out.push_str("no ports\n");
    } else {
        let mut ports = Table::new(["PORT", "RX-PACKETS", "RX-BYTES", "TX-PACKETS", "TX-BYTES"])
            .right(&[1, 2, 3, 4]);
        for p in &stats.ports {
            ports.row([
                p.name.clone(),
                p.rx_packets.to_string(),
                p.rx_bytes.to_string(),
                p.tx_packets.to_string(),
                p.tx_bytes.to_string(),
            ]);
        }
        out.push_str(&ports.render());
    }
    out.push('\n');
    let mut workers = Table::new([
        "WORKER",
        "RX",
        "TX",
        "UNDERLAY-RX",
        "UNDERLAY-TX",
        "IO-ERRORS",
    ])
    .right(&[0, 1, 2, 3, 4, 5]);
    for w in &stats.workers {
        workers.row([
            w.id.to_string(),
            w.rx.to_string(),
            w.tx.to_string(),
            w.underlay_rx.to_string(),
            w.underlay_tx.to_string(),
            w.io_errors.to_string(),
        ]);
    }
    out.push_str(&workers.render());
    out.push('\n');
    let a = &stats.actions;
    let ct = &stats.conntrack;
    out.push_str(&key_values(&[
        (
            "actions",
            format!(
                "delivered {}, to_host {}, encapsulated {}, replied {}",
                a.delivered, a.to_host, a.encapsulated, a.replied
            ),
        ),
        (
            "conntrack",
            if ct.busy == 0 {
                format!(
                    "{} of {} entries, {} evictions",
                    ct.entries, ct.capacity, ct.evictions
                )
            } else {
                format!(
                    "{} of {} entries, {} evictions, {} flows not recorded (bucket busy)",
                    ct.entries, ct.capacity, ct.evictions, ct.busy
                )
            },
        ),
    ]));
    out.push('\n');
    let mut drops = Table::new(["DROP", "COUNT"]).right(&[1]);
    for (reason, count) in stats.drops.iter().filter(|(_, n)| **n > 0) {
        drops.row([reason.clone(), count.to_string()]);
    }
    if drops.is_empty() {
        out.push_str("no drops\n");
    } else {
        out.push_str(&drops.render());
    }
    if !stats.policy_drops.is_empty() {
        out.push('\n');
        let mut by_rule = Table::new(["PORT", "DIRECTION", "DENIED-BY", "PACKETS"]).right(&[3]);
        for d in &stats.policy_drops {
            let rule = match (&d.name, d.rule) {
                (Some(name), _) => name.clone(),
                (None, Some(id)) => format!("rule {id}"),
                (None, None) => "default deny".to_owned(),
            };
            by_rule.row([
                d.port.clone(),
                d.direction.clone(),
                rule,
                d.packets.to_string(),
            ]);
        }
        out.push_str(&by_rule.render());
    }
    out
}

/// A policy stage's decision: `allow (rule 7)`, `deny (default)`, with the
/// log rules that matched.
fn policy(verdict: VerdictSpec, rule: Option<u32>, logged: &[u32]) -> String {
    let verdict = match verdict {
        VerdictSpec::Allow => "allow",
        VerdictSpec::Deny => "deny",
    };
    let by = rule.map_or_else(|| "default".to_owned(), |r| format!("rule {r}"));
    let mut text = format!("{verdict} ({by})");
    if !logged.is_empty() {
        let ids: Vec<String> = logged.iter().map(u32::to_string).collect();
        text.push_str(&format!(", logged by rule {}", ids.join(", ")));
    }
    text
}

/// One stage as `(name, detail)`.
fn stage(stage: &TraceStage) -> (&'static str, String) {
    let passed = |ok: bool| if ok { "passed" } else { "failed" }.to_owned();
    match stage {
        TraceStage::Parsed { summary } => ("parsed", summary.clone()),
        TraceStage::SpoofCheck { passed: ok } => ("spoof_check", passed(*ok)),
        TraceStage::Decap { peer, passed: ok } => (
            "decap",
            format!(
                "{} from peer {}",
                passed(*ok),
                peer.as_deref().unwrap_or("unknown")
            ),
        ),
        TraceStage::Gateway {} => ("gateway", "for the gateway".to_owned()),
        TraceStage::Conntrack { hit } => (
            "conntrack",
            match hit {
                None => "no flow".to_owned(),
                Some(hit) => format!("{} flow, {} (tag {})", hit.direction, hit.state, hit.tag),
            },
        ),
        TraceStage::EgressPolicy {
            verdict,
            rule,
            logged,
        } => ("egress_policy", policy(*verdict, *rule, logged)),
        TraceStage::IngressPolicy {
            verdict,
            rule,
            logged,
        } => ("ingress_policy", policy(*verdict, *rule, logged)),
        TraceStage::Service {
            service,
            frontend,
            backend,
        } => (
            "service",
            match backend {
                Some(backend) => format!("{service} {frontend} -> {backend}"),
                None => format!("{service} {frontend}: no endpoint may serve it"),
            },
        ),
        TraceStage::ServiceReply { frontend } => (
            "service_reply",
            match frontend {
                Some(frontend) => format!("from {frontend}"),
                None => "translation forgotten, sent as it is".to_owned(),
            },
        ),
        TraceStage::Route { prefix, next_hop } => (
            "route",
            match (prefix, next_hop) {
                (Some(prefix), Some(hop)) => format!("{prefix} -> {hop}"),
                (Some(prefix), None) => prefix.to_string(),
                _ => "no route".to_owned(),
            },
        ),
        TraceStage::Action { action } => ("action", action.clone()),
    }
}

/// `tweed trace`: the stages in order, then the verdict.
pub fn render_trace(trace: &TraceReply) -> String {
    let mut table = Table::new(["#", "STAGE", "DETAIL"]).right(&[0]);
    for (i, s) in trace.stages.iter().enumerate() {
        let (name, detail) = stage(s);
        table.row([(i + 1).to_string(), name.to_owned(), detail]);
    }
    format!("{}verdict: {}\n", table.render(), trace.verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fixtures;

    #[test]
    fn stats_show_ports_workers_and_only_non_zero_drops() {
        assert_eq!(
            render_stats(&fixtures::stats()),
            "\
PORT         RX-PACKETS  RX-BYTES  TX-PACKETS  TX-BYTES
default/web           5       500           6       600

WORKER   RX  TX  UNDERLAY-RX  UNDERLAY-TX  IO-ERRORS
     0  100  90           10           20          0
     1  101  90           10           20          0

actions:    delivered 7, to_host 8, encapsulated 9, replied 10
conntrack:  4 of 65536 entries, 0 evictions

DROP            COUNT
policy_ingress     17
spoofed_ip          3
"
        );
    }

    #[test]
    fn stats_without_ports_or_drops_say_so() {
        let mut stats = fixtures::stats();
        stats.ports.clear();
        stats.drops.values_mut().for_each(|n| *n = 0);
        let out = render_stats(&stats);
        assert!(out.starts_with("no ports\n"), "{out}");
        assert!(out.ends_with("no drops\n"), "{out}");
    }

    #[test]
    fn flows_conntrack_could_not_record_are_shown_once_there_are_some() {
        let mut stats = fixtures::stats();
        stats.conntrack.busy = 3;
        let out = render_stats(&stats);
        assert!(
            out.contains(
                "conntrack:  4 of 65536 entries, 0 evictions, 3 flows not recorded (bucket busy)\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn trace_lists_stages_and_the_verdict() {
        assert_eq!(
            render_trace(&fixtures::trace()),
            "\
#  STAGE          DETAIL
1  parsed         tcp 10.244.1.2:40000 -> 10.244.2.3:80
2  spoof_check    passed
3  conntrack      no flow
4  egress_policy  allow (rule 7)
5  route          10.244.2.0/24 -> peer node2
6  action         encap peer node2 192.168.0.2:4789
verdict: encapsulated to peer node2
"
        );
    }

    #[test]
    fn policy_stages_name_the_default_and_logged_rules() {
        let (name, detail) = stage(&TraceStage::IngressPolicy {
            verdict: VerdictSpec::Deny,
            rule: None,
            logged: vec![3, 4],
        });
        assert_eq!(name, "ingress_policy");
        assert_eq!(detail, "deny (default), logged by rule 3, 4");
    }
}
