//! Start-up: the configuration resolved against this machine, and the
//! node's memory of its own subnets across restarts.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::DaemonError;
use crate::config::{self, DaemonArgs, DaemonConfig, Machine};
use crate::host::detect;

/// Flags, then the file they name, then the machine's defaults.
pub async fn configure(run_dir: PathBuf, flags: DaemonArgs) -> Result<DaemonConfig, DaemonError> {
    let file = match &flags.config {
        Some(path) => config::load_file(path)?,
        None => DaemonArgs::default(),
    };
    let args = config::merge(flags, file);
    let underlay = match args.underlay_ip {
        Some(ip) => detect::interface_of(ip).await.map(|u| (u.ip, u.mtu)),
        None => detect::default_route_interface()
            .await
            .map(|u| (u.ip, u.mtu)),
    }
    .map_err(|e| e.to_string());
    let machine = Machine {
        hostname: hostname(),
        underlay,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        exe_dir: std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf)),
    };
    let mut config = config::resolve(args, machine)?;
    config.run_dir = run_dir;
    Ok(config)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// What the node remembers locally between runs: the subnets it held, so it
/// asks for them first (a restarted node keeps its pods' addresses).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// The node's name when it held them.
    pub node: String,
    /// The subnets.
    pub subnets: Vec<IpNet>,
}

/// The memory file in the state directory.
pub fn memory_path(config: &DaemonConfig) -> PathBuf {
    config.state_dir.join("node.json")
}

/// Reads the memory; missing or unreadable means none.
pub fn recall(config: &DaemonConfig) -> Memory {
    std::fs::read(memory_path(config))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Memory>(&bytes).ok())
        .filter(|m| m.node == config.node_name)
        .unwrap_or_default()
}

/// Writes the memory atomically (temp file, rename), mode 0600: it says
/// which subnets the node holds, nobody else's business.
pub fn remember(config: &DaemonConfig, memory: &Memory) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = memory_path(config);
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(memory).map_err(std::io::Error::other)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    // A temp file left by an older version keeps its mode otherwise.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(&json)?;
    drop(file);
    std::fs::rename(tmp, path)
}
