//! The dataplane's state file: what the API has been told (ports, peers,
//! routes, policy), so a restarted dataplane can rebuild its tables and taps.
//!
//! The types are pure serde; [`load`] and [`save`] are the only I/O. `save`
//! replaces the file atomically (temp file in the same directory, then
//! rename), so a process killed at any point leaves the old or the new file,
//! never a torn one.
//!
//! Nothing is fsynced. Everything the file describes (taps, their netns) is
//! kernel state that a reboot destroys, and what must survive is a crash of
//! the process, for which the page cache and an atomic rename are enough.
//! Two fsyncs per save cost more than the rest of a `port_add` on a busy
//! disk. The price is paid only after a crash of the whole machine, when the
//! file may be an older version (harmless: none of its taps exist any more,
//! so its ports are dropped) or, on some file systems, empty or cut short:
//! [`load`] then ignores a file that does not parse if it was written before
//! the machine booted, instead of refusing to start.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use tweed_api::dataplane::proto::{MacAddr, PeerSpec, RouteSpec, RuleSetSpec};

/// The state file format this build writes and reads.
pub const STATE_VERSION: u32 = 1;

/// Everything the dataplane must remember across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    /// Must be [`STATE_VERSION`].
    pub version: u32,
    /// The pod ports.
    #[serde(default)]
    pub ports: Vec<PortRecord>,
    /// The peer nodes.
    #[serde(default)]
    pub peers: Vec<PeerSpec>,
    /// The static routes (host, node and blackhole).
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// Taps of removed ports that are still being deleted (`port_remove`
    /// answers first); a start finishes them. Left out of the file when
    /// empty, so a file without pending removals reads as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<RemovalRecord>,
}

impl Default for StateFile {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            ports: Vec::new(),
            peers: Vec::new(),
            routes: Vec::new(),
            removing: Vec::new(),
        }
    }
}

/// The tap of a removed port, not yet deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovalRecord {
    /// The removed port's name (for logs).
    pub name: String,
    /// The pod's network namespace path.
    pub netns: String,
    /// The tap's name inside the pod.
    pub ifname: String,
}

/// One pod port with its policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRecord {
    /// The port's index.
    pub id: u32,
    /// `NAMESPACE/POD`.
    pub name: String,
    /// The pod's network namespace path.
    pub netns: String,
    /// The interface name inside the pod.
    pub ifname: String,
    /// The pod interface's MAC.
    pub mac: MacAddr,
    /// The pod's IPv4 address.
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    /// The pod's IPv6 address.
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    /// The pod interface's MTU.
    pub mtu: u32,
    /// Policy for traffic arriving at the pod.
    #[serde(default)]
    pub ingress: RuleSetSpec,
    /// Policy for traffic leaving the pod.
    #[serde(default)]
    pub egress: RuleSetSpec,
}

fn invalid_data(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("state file {}: {what}", path.display()),
    )
}

/// Reads the state file; `None` if it does not exist. A file that does not
/// parse, or has another version, is an `InvalidData` error naming the path,
/// except that a file which does not parse and was last written before the
/// machine booted reads as `None` (see the module docs).
pub fn load(path: &Path) -> io::Result<Option<StateFile>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("reading state file {}: {e}", path.display()),
            ));
        }
    };
    let state: StateFile = match serde_json::from_str(&text) {
        Ok(state) => state,
        Err(e) if written_before_boot(path) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring a state file that does not parse, written before the machine booted: nothing it describes exists any more");
            return Ok(None);
        }
        Err(e) => return Err(invalid_data(path, e)),
    };
    if state.version != STATE_VERSION {
        return Err(invalid_data(
            path,
            format!(
                "version {} is not supported (expected {STATE_VERSION})",
                state.version
            ),
        ));
    }
    Ok(Some(state))
}

/// Whether `path` was last modified before the machine booted (`btime` in
/// `/proc/stat`). False when either cannot be read.
fn written_before_boot(path: &Path) -> bool {
    let modified = fs::metadata(path).and_then(|m| m.modified());
    let boot = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| boot_time(&s));
    match (modified, boot) {
        (Ok(modified), Some(boot)) => modified < boot,
        _ => false,
    }
}

/// The boot time in `/proc/stat`'s text (its `btime SECONDS` line).
fn boot_time(proc_stat: &str) -> Option<SystemTime> {
    let secs = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Writes the state file atomically (mode 0600), without fsync (see the
/// module docs).
pub fn save(path: &Path, state: &StateFile) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;

    let step = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} for {}: {e}", path.display()))
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "state path has no file name")
    })?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);

    let mut json = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    json.push(b'\n');
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| step("creating the temporary state file", e))?;
        file.write_all(&json)
            .map_err(|e| step("writing the temporary state file", e))?;
        fs::rename(&tmp, path).map_err(|e| step("renaming the temporary state file", e))
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::peers::{Backend, PortRange};
    use tweed_api::dataplane::proto::{RouteVia, RuleActionSpec, RuleSpec, VerdictSpec};

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tweed-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn sample() -> StateFile {
        StateFile {
            version: STATE_VERSION,
            ports: vec![PortRecord {
                id: 0,
                name: "default/web".into(),
                netns: "/run/netns/web".into(),
                ifname: "eth0".into(),
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
                ipv4: Some(Ipv4Addr::new(10, 244, 1, 2)),
                ipv6: None,
                mtu: 1450,
                ingress: RuleSetSpec {
                    default: VerdictSpec::Deny,
                    rules: vec![RuleSpec {
                        id: 1,
                        tier: 0,
                        action: RuleActionSpec::Allow,
                        remote: vec!["10.0.0.0/8".parse().expect("cidr")],
                        remote_except: vec![],
                        protocol: Some(6),
                        ports: None,
                        name: Some("networkpolicy prod/web ingress[0]".into()),
                    }],
                },
                egress: RuleSetSpec::default(),
            }],
            peers: vec![PeerSpec {
                name: "node2".into(),
                subnets: vec!["10.244.2.0/24".parse().expect("cidr")],
                underlay_ip: "192.168.0.2".parse().expect("ip"),
                vtep_mac: MacAddr([2, 0, 0, 0, 0, 2]),
                backend: Backend::Vxlan,
                source_ports: Some(PortRange {
                    first: 61000,
                    last: 61007,
                }),
                partial_checksums: false,
            }],
            routes: vec![
                RouteSpec {
                    prefix: "0.0.0.0/0".parse().expect("cidr"),
                    via: RouteVia::Host,
                },
                RouteSpec {
                    prefix: "10.244.1.1/32".parse().expect("cidr"),
                    via: RouteVia::Node,
                },
            ],
            removing: vec![RemovalRecord {
                name: "default/old".into(),
                netns: "/run/netns/old".into(),
                ifname: "eth0".into(),
            }],
        }
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("round");
        let path = dir.join("state.json");
        assert_eq!(load(&path).expect("missing is fine"), None);
        save(&path, &sample()).expect("save");
        assert_eq!(load(&path).expect("load"), Some(sample()));
        save(&path, &StateFile::default()).expect("overwrite");
        assert_eq!(load(&path).expect("load"), Some(StateFile::default()));
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn an_empty_removal_list_is_left_out_of_the_file() {
        let dir = temp_dir("removing");
        let path = dir.join("state.json");
        save(&path, &StateFile::default()).expect("save");
        let text = fs::read_to_string(&path).expect("read");
        assert!(!text.contains("removing"), "{text}");
        let mut state = sample();
        save(&path, &state).expect("save");
        assert!(
            fs::read_to_string(&path)
                .expect("read")
                .contains("\"removing\"")
        );
        state.removing.clear();
        save(&path, &state).expect("save");
        assert_eq!(load(&path).expect("load"), Some(state));
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn corrupt_unknown_or_newer_files_are_refused_with_the_path() {
        let dir = temp_dir("bad");
        let path = dir.join("state.json");
        for text in [
            "{not json",
            r#"{"version":1,"pods":[]}"#,
            r#"{"version":2}"#,
        ] {
            fs::write(&path, text).expect("write");
            let err = load(&path).expect_err(text);
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{text}");
            assert!(err.to_string().contains("state.json"), "{err}");
        }
        fs::write(&path, r#"{"version":1}"#).expect("write");
        assert_eq!(load(&path).expect("minimal"), Some(StateFile::default()));
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_corrupt_file_from_before_the_boot_is_ignored() {
        let dir = temp_dir("boot");
        let path = dir.join("state.json");
        fs::write(&path, "").expect("write");
        let file = fs::File::options().write(true).open(&path).expect("open");
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1))
            .expect("set mtime");
        assert_eq!(
            load(&path).expect("an empty file from an earlier boot"),
            None
        );
        // Another version is not corruption: still refused.
        fs::write(&path, r#"{"version":2}"#).expect("write");
        let file = fs::File::options().write(true).open(&path).expect("open");
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1))
            .expect("set mtime");
        assert_eq!(
            load(&path).expect_err("version 2").kind(),
            io::ErrorKind::InvalidData
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn boot_time_is_read_from_proc_stat() {
        let stat = "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n";
        assert_eq!(
            boot_time(stat),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(boot_time("cpu 1\n"), None);
    }

    #[test]
    fn save_into_a_missing_directory_fails_naming_the_step() {
        let err =
            save(Path::new("/nonexistent-tweed-dir/state.json"), &sample()).expect_err("no dir");
        assert!(
            err.to_string()
                .contains("creating the temporary state file"),
            "{err}"
        );
    }
}
