//! The `CNI_*` environment variables a runtime sets for each command.
//!
//! Required per command (SPEC 1.1.0, "Parameters"): ADD and CHECK need
//! `CNI_CONTAINERID`, `CNI_NETNS` and `CNI_IFNAME`; DEL needs
//! `CNI_CONTAINERID` and `CNI_IFNAME` (the netns may be gone already);
//! STATUS, GC and VERSION need only `CNI_COMMAND`, and VERSION reads
//! nothing else at all (libcni sets `CNI_NETNS=dummy` for it). `CNI_PATH` is not read:
//! tweed delegates to no other plugin. `CNI_ARGS` is `K=V;K=V`; tweed reads
//! `K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `IP` and `MAC` and ignores other keys (runtimes
//! add `IgnoreUnknown`, `K8S_POD_UID`, ...). A missing or malformed variable
//! is error 4 naming it.

use std::fmt;

use super::error::{CniError, code};

/// The operation a runtime asks for (`CNI_COMMAND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach the container.
    Add,
    /// Detach it (idempotent).
    Del,
    /// Verify an attachment.
    Check,
    /// Whether the plugin can serve ADD.
    Status,
    /// Release every attachment not listed.
    Gc,
    /// The versions the plugin speaks.
    Version,
}

impl Command {
    /// The command spelt `s` (as `CNI_COMMAND` spells it), if any.
    pub fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            _ => return None,
        })
    }

    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }

    /// The variables (besides `CNI_COMMAND`) this command requires.
    fn required(self) -> &'static [&'static str] {
        match self {
            Command::Add | Command::Check => &[CONTAINER_ID, NETNS, IFNAME],
            Command::Del => &[CONTAINER_ID, IFNAME],
            Command::Status | Command::Gc | Command::Version => &[],
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const COMMAND: &str = "CNI_COMMAND";
const CONTAINER_ID: &str = "CNI_CONTAINERID";
const NETNS: &str = "CNI_NETNS";
const IFNAME: &str = "CNI_IFNAME";
const ARGS: &str = "CNI_ARGS";

/// What the environment says, checked for the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID` (present for ADD, CHECK, DEL).
    pub container_id: Option<String>,
    /// `CNI_NETNS`, an absolute path (present for ADD, CHECK).
    pub netns: Option<String>,
    /// `CNI_IFNAME` (present for ADD, CHECK, DEL).
    pub ifname: Option<String>,
    /// `K8S_POD_NAMESPACE` from `CNI_ARGS`.
    pub pod_namespace: Option<String>,
    /// `K8S_POD_NAME` from `CNI_ARGS`.
    pub pod_name: Option<String>,
    /// `IP` from `CNI_ARGS`, as given (see `spec::wanted`).
    pub arg_ip: Option<String>,
    /// `MAC` from `CNI_ARGS`, as given.
    pub arg_mac: Option<String>,
}

impl Env {
    /// Reads the variables through `get` (e.g. `std::env::var`) and checks
    /// that the command has what it needs. An empty variable counts as unset.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<Env, CniError> {
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        let command = var(COMMAND).ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                "CNI_COMMAND is not set: run tweed from a container runtime, \
                 which sets it to ADD, DEL, CHECK, STATUS, GC or VERSION",
            )
        })?;
        let command = Command::parse(&command).ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                format!(
                    "CNI_COMMAND={command:?} is not a CNI command \
                     (ADD, DEL, CHECK, STATUS, GC or VERSION)"
                ),
            )
        })?;
        if command == Command::Version {
            // libcni probes with CNI_NETNS=dummy and whatever else it has: the
            // spec lets a runtime pass anything besides CNI_COMMAND here.
            return Ok(Env {
                command,
                container_id: None,
                netns: None,
                ifname: None,
                pod_namespace: None,
                pod_name: None,
                arg_ip: None,
                arg_mac: None,
            });
        }
        let missing: Vec<&str> = command
            .required()
            .iter()
            .copied()
            .filter(|name| var(name).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!(
                    "{} not set: the runtime must set {} for {command}",
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" }
                ),
            ));
        }
        let netns = var(NETNS);
        if let Some(path) = &netns
            && !path.starts_with('/')
        {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!(
                    "CNI_NETNS={path:?} is not an absolute path \
                     (like /run/netns/NAME or /proc/PID/ns/net)"
                ),
            ));
        }
        let args = parse_args(&var(ARGS).unwrap_or_default())?;
        let arg = |key: &str| {
            args.iter()
                .find(|(k, v)| k == key && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        Ok(Env {
            command,
            container_id: var(CONTAINER_ID),
            netns,
            ifname: var(IFNAME),
            pod_namespace: arg("K8S_POD_NAMESPACE"),
            pod_name: arg("K8S_POD_NAME"),
            arg_ip: arg("IP"),
            arg_mac: arg("MAC"),
        })
    }

    /// `CNI_CONTAINERID`, or error 4 if unset.
    pub fn container_id(&self) -> Result<&str, CniError> {
        required(CONTAINER_ID, self.command, self.container_id.as_deref())
    }

    /// `CNI_NETNS`, or error 4 if unset.
    pub fn netns(&self) -> Result<&str, CniError> {
        required(NETNS, self.command, self.netns.as_deref())
    }

    /// `CNI_IFNAME`, or error 4 if unset.
    pub fn ifname(&self) -> Result<&str, CniError> {
        required(IFNAME, self.command, self.ifname.as_deref())
    }
}

fn required<'a>(name: &str, command: Command, value: Option<&'a str>) -> Result<&'a str, CniError> {
    value.ok_or_else(|| {
        CniError::new(
            code::INVALID_ENV,
            format!("{name} not set: the runtime must set it for {command}"),
        )
    })
}

/// Splits `CNI_ARGS` (`K=V;K=V`, empty parts ignored) into pairs.
fn parse_args(text: &str) -> Result<Vec<(String, String)>, CniError> {
    text.split(';')
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(CniError::new(
                code::INVALID_ENV,
                format!("CNI_ARGS: {part:?} is not KEY=VALUE (pairs are separated by ';')"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<Env, CniError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env::parse(|k| map.get(k).cloned())
    }

    #[test]
    fn add_reads_everything_and_the_pod_from_cni_args() {
        let e = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/run/netns/p"),
            ("CNI_IFNAME", "eth0"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=web;K8S_POD_NAME=front;K8S_POD_UID=x",
            ),
        ])
        .unwrap();
        assert_eq!(e.command, Command::Add);
        assert_eq!(e.container_id().unwrap(), "c1");
        assert_eq!(e.netns().unwrap(), "/run/netns/p");
        assert_eq!(e.ifname().unwrap(), "eth0");
        assert_eq!(e.pod_namespace.as_deref(), Some("web"));
        assert_eq!(e.pod_name.as_deref(), Some("front"));
    }

    #[test]
    fn missing_variables_are_named_with_code_4() {
        let e = env(&[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1")]).unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(e.msg.contains("CNI_NETNS, CNI_IFNAME"), "{}", e.msg);
        let e = env(&[
            ("CNI_COMMAND", "CHECK"),
            ("CNI_CONTAINERID", "c"),
            ("CNI_IFNAME", "e"),
        ])
        .unwrap_err();
        assert!(e.msg.starts_with("CNI_NETNS not set"), "{}", e.msg);
        assert_eq!(env(&[]).unwrap_err().code, code::INVALID_ENV);
        assert_eq!(
            env(&[("CNI_COMMAND", "PUT")]).unwrap_err().code,
            code::INVALID_ENV
        );
    }

    #[test]
    fn del_needs_no_netns_and_status_needs_nothing() {
        let e = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
        ])
        .unwrap();
        assert_eq!(e.netns, None);
        assert!(e.netns().is_err());
        for cmd in ["STATUS", "GC", "VERSION"] {
            assert!(env(&[("CNI_COMMAND", cmd)]).is_ok(), "{cmd}");
        }
    }

    #[test]
    fn version_ignores_garbage_in_every_other_variable() {
        let e = env(&[
            ("CNI_COMMAND", "VERSION"),
            ("CNI_NETNS", "dummy"),
            ("CNI_CONTAINERID", ""),
            ("CNI_IFNAME", "not/an\0ifname"),
            ("CNI_ARGS", "no pairs;;=x"),
            ("CNI_PATH", "::"),
        ])
        .unwrap();
        assert_eq!(e.command, Command::Version);
        assert_eq!(e.netns, None);
    }

    #[test]
    fn a_relative_netns_or_a_bad_pair_is_refused() {
        let base = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
        ];
        let mut vars = base.to_vec();
        vars.push(("CNI_NETNS", "netns/p"));
        assert!(env(&vars).unwrap_err().msg.contains("absolute"));
        let mut vars = base.to_vec();
        vars.extend([("CNI_NETNS", "/p"), ("CNI_ARGS", "K8S_POD_NAME")]);
        let e = env(&vars).unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(e.msg.starts_with("CNI_ARGS"), "{}", e.msg);
    }
}
