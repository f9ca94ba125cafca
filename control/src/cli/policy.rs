//! `tweed policy ...` and `tweed label ...`: their arguments, the requests
//! they make and how their answers print. Pure but for reading the policy
//! file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::CliError;
use super::table::Table;
use crate::api::policy::{
    AppliedReply, ExplainReply, LabelNamespace, LabelPod, PoliciesReply, PolicyApply, PolicyExplain,
};
use crate::api::proto::{Empty, Request};
use crate::policy::{PolicyKey, PolicyKind};

/// `tweed policy ...`.
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Create or replace the policies of a YAML or JSON file (`-` for stdin).
    Apply {
        /// The file: NetworkPolicy, Policy and GlobalPolicy documents.
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: PathBuf,
    },
    /// Delete a policy by kind and name, or every policy a file defines.
    Delete(DeleteArgs),
    /// List the policies.
    List,
    /// Which policy and rule decide a connection, and the verdict.
    Explain(ExplainArgs),
}

/// A policy's kind on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// A Kubernetes NetworkPolicy.
    Networkpolicy,
    /// A namespaced ordered policy.
    Policy,
    /// A cluster-wide ordered policy.
    Globalpolicy,
}

/// `tweed policy delete` arguments.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The policy's kind.
    #[arg(value_enum, required_unless_present = "file")]
    pub kind: Option<KindArg>,
    /// The policy's name.
    #[arg(required_unless_present = "file")]
    pub name: Option<String>,
    /// The policy's namespace (not for a globalpolicy).
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Delete every policy this file defines instead.
    #[arg(short = 'f', long = "filename", value_name = "FILE", conflicts_with_all = ["kind", "name"])]
    pub file: Option<PathBuf>,
}

/// `tweed policy explain` arguments.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The source pod, NAMESPACE/POD.
    #[arg(long, value_name = "NAMESPACE/POD")]
    pub from: String,
    /// The destination: NAMESPACE/POD or an IP address.
    #[arg(long, value_name = "NAMESPACE/POD|IP")]
    pub to: String,
    /// The destination port and protocol, e.g. 80/tcp, 53/udp, 9000/sctp, icmp.
    #[arg(long, value_name = "PORT/PROTO", default_value = "icmp", value_parser = parse_port)]
    pub port: (u16, u8),
}

/// `tweed label ...`.
#[derive(Subcommand, Debug)]
pub enum LabelCommand {
    /// Set (`key=value`) or remove (`key-`) labels of a pod.
    Pod {
        /// The pod, NAMESPACE/NAME.
        #[arg(value_name = "NAMESPACE/NAME")]
        pod: String,
        /// `key=value` to set, `key-` to remove.
        #[arg(value_name = "LABEL", required = true)]
        labels: Vec<String>,
    },
    /// Set (`key=value`) or remove (`key-`) labels of a namespace.
    Namespace {
        /// The namespace.
        namespace: String,
        /// `key=value` to set, `key-` to remove.
        #[arg(value_name = "LABEL", required = true)]
        labels: Vec<String>,
    },
}

/// `80/tcp`, `53/udp`, `9000/sctp`, `icmp`, `icmpv6`, `80` (TCP).
pub fn parse_port(text: &str) -> Result<(u16, u8), String> {
    let proto = |name: &str| -> Result<u8, String> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "tcp" => 6,
            "udp" => 17,
            "sctp" => 132,
            "icmp" => 1,
            "icmpv6" => 58,
            other => {
                return Err(format!(
                    "unknown protocol {other:?}: use tcp, udp, sctp, icmp or icmpv6"
                ));
            }
        })
    };
    let (port, protocol) = match text.split_once('/') {
        Some((port, name)) => (port, proto(name)?),
        None if text.chars().all(|c| c.is_ascii_digit()) => (text, 6),
        None => return proto(text).map(|p| (0, p)),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number (1-65535)"))?;
    if port == 0 && matches!(protocol, 6 | 17 | 132) {
        return Err("port 0 is not a destination port; give 1-65535".to_owned());
    }
    Ok((port, protocol))
}

/// Splits `key=value` and `key-` arguments.
pub fn parse_labels(args: &[String]) -> Result<(BTreeMap<String, String>, Vec<String>), CliError> {
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    for arg in args {
        if let Some((k, v)) = arg.split_once('=') {
            set.insert(k.to_owned(), v.to_owned());
        } else if let Some(k) = arg.strip_suffix('-') {
            remove.push(k.to_owned());
        } else {
            return Err(CliError::Usage(format!(
                "label {arg:?}: write key=value to set it or key- to remove it"
            )));
        }
    }
    Ok((set, remove))
}

/// Reads a policy file (`-`: stdin).
pub fn read_file(path: &std::path::Path) -> Result<String, CliError> {
    let read = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|e| CliError::Usage(format!("reading {}: {e}", path.display())))
}

/// The requests a `tweed policy` command makes (several for a delete by file).
pub fn policy_requests(command: &PolicyCommand) -> Result<Vec<Request>, CliError> {
    Ok(match command {
        PolicyCommand::Apply { file } => vec![Request::PolicyApply(PolicyApply {
            text: read_file(file)?,
        })],
        PolicyCommand::List => vec![Request::PolicyList(Empty {})],
        PolicyCommand::Explain(args) => vec![Request::PolicyExplain(PolicyExplain {
            from: args.from.clone(),
            to: args.to.clone(),
            protocol: args.port.1,
            port: args.port.0,
        })],
        PolicyCommand::Delete(args) => match (&args.file, args.kind, &args.name) {
            (Some(file), _, _) => {
                let text = read_file(file)?;
                let policies = crate::policy::parse_documents(&text)
                    .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
                policies
                    .iter()
                    .map(|p| Request::PolicyDelete(p.key()))
                    .collect()
            }
            (None, Some(kind), Some(name)) => {
                vec![Request::PolicyDelete(key(kind, name, &args.namespace))]
            }
            _ => {
                return Err(CliError::Usage(
                    "give KIND NAME (and -n NAMESPACE) or -f FILE".to_owned(),
                ));
            }
        },
    })
}

fn key(kind: KindArg, name: &str, namespace: &str) -> PolicyKey {
    let kind = match kind {
        KindArg::Networkpolicy => PolicyKind::NetworkPolicy,
        KindArg::Policy => PolicyKind::Policy,
        KindArg::Globalpolicy => PolicyKind::GlobalPolicy,
    };
    PolicyKey {
        namespace: (kind != PolicyKind::GlobalPolicy).then(|| namespace.to_owned()),
        kind,
        name: name.to_owned(),
    }
}

/// The request a `tweed label` command makes.
pub fn label_request(command: &LabelCommand) -> Result<Request, CliError> {
    Ok(match command {
        LabelCommand::Pod { pod, labels } => {
            let (namespace, name) = pod
                .split_once('/')
                .ok_or_else(|| CliError::Usage(format!("{pod:?} is not NAMESPACE/NAME")))?;
            let (labels, remove) = parse_labels(labels)?;
            Request::LabelPod(LabelPod {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                labels,
                remove,
            })
        }
        LabelCommand::Namespace { namespace, labels } => {
            let (labels, remove) = parse_labels(labels)?;
            Request::LabelNamespace(LabelNamespace {
                namespace: namespace.clone(),
                labels,
                remove,
            })
        }
    })
}

/// `policy apply`'s answer.
pub fn render_applied(reply: &AppliedReply) -> String {
    let mut out = String::new();
    for key in &reply.applied {
        out.push_str(&format!("{key} applied\n"));
    }
    for warning in &reply.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}

/// `policy list`'s answer.
pub fn render_policies(reply: &PoliciesReply) -> String {
    let mut table = Table::new(["KIND", "NAMESPACE", "NAME", "ORDER", "DIRECTIONS", "PODS"]);
    for p in &reply.policies {
        table.row(vec![
            p.key.kind.name().to_owned(),
            p.key.namespace.clone().unwrap_or_else(|| "-".to_owned()),
            p.key.name.clone(),
            p.order.map_or_else(|| "-".to_owned(), |o| o.to_string()),
            p.directions.join(","),
            p.selected_pods.to_string(),
        ]);
    }
    table.render()
}

/// `policy explain`'s answer: one line per step, then the verdict.
pub fn render_explain(reply: &ExplainReply) -> String {
    let mut out = String::new();
    for step in &reply.steps {
        out.push_str(&format!(
            "{:<7} {} {}: {}\n",
            if step.allowed { "allow" } else { "deny" },
            step.direction,
            step.endpoint,
            step.reason
        ));
    }
    out.push_str(if reply.allowed {
        "verdict: allow\n"
    } else {
        "verdict: deny\n"
    });
    out
}

/// A label command's answer: the labels now in force.
pub fn render_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "no labels\n".to_owned();
    }
    labels.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_with_and_without_a_protocol() {
        assert_eq!(parse_port("80/tcp"), Ok((80, 6)));
        assert_eq!(parse_port("53/UDP"), Ok((53, 17)));
        assert_eq!(parse_port("8080"), Ok((8080, 6)));
        assert_eq!(parse_port("icmp"), Ok((0, 1)));
        assert!(parse_port("0/tcp").is_err());
        assert!(parse_port("80/gre").unwrap_err().contains("gre"));
        assert!(parse_port("http/tcp").is_err());
    }

    #[test]
    fn labels_split_into_set_and_remove() {
        let (set, remove) = parse_labels(&[
            "app=web".to_owned(),
            "tier-".to_owned(),
            "empty=".to_owned(),
        ])
        .unwrap();
        assert_eq!(set.get("app").map(String::as_str), Some("web"));
        assert_eq!(set.get("empty").map(String::as_str), Some(""));
        assert_eq!(remove, ["tier"]);
        assert!(parse_labels(&["bare".to_owned()]).is_err());
    }
}
