//! `tweed install-cni`: puts the CNI plugin where runtimes look for it and
//! writes the network configuration, as flannel's and Calico's installers do.
//!
//! The plugin is installed under the name of its `type`, `tweed`, by copying
//! to a temporary file in the target directory and renaming it over the old
//! one, so a runtime never runs a half-written binary. The conflist is written
//! the same way.

use std::io;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::api::DEFAULT_RUN_DIR;

/// `tweed install-cni` flags.
#[derive(Args, Debug, Clone)]
pub struct InstallArgs {
    /// Where runtimes look for plugins.
    #[arg(long, value_name = "DIR", default_value = "/opt/cni/bin")]
    pub bin_dir: PathBuf,
    /// Where runtimes look for network configurations.
    #[arg(long, value_name = "DIR", default_value = "/etc/cni/net.d")]
    pub conf_dir: PathBuf,
    /// The plugin to install [default: tweed-cni next to tweed].
    #[arg(long, value_name = "FILE")]
    pub plugin: Option<PathBuf>,
}

/// The file name of the conflist.
pub const CONFLIST: &str = "10-tweed.conflist";

/// The `cniVersion` of the conflist: the newest one the libcni of current
/// distributions reads (Debian 12's podman 4.3 and containerd 1.6 stop at
/// 1.0.0); the plugin answers in whatever version a configuration asks for.
pub const CONFLIST_VERSION: &str = "1.0.0";

/// The conflist: tweed, which takes static addresses and MACs from the
/// runtime (`ips`, `mac`), chained with the standard `portmap` plugin for
/// published ports (`portMappings`); plus the socket when the daemon runs
/// with another run directory.
pub fn conflist(run_dir: &Path) -> String {
    let mut plugin = serde_json::json!({
        "type": "tweed",
        "capabilities": { "ips": true, "mac": true },
    });
    if run_dir != Path::new(DEFAULT_RUN_DIR) {
        plugin["socket"] = crate::api::socket_path(run_dir)
            .display()
            .to_string()
            .into();
    }
    let list = serde_json::json!({
        "cniVersion": CONFLIST_VERSION,
        "name": "tweed",
        "plugins": [
            plugin,
            { "type": "portmap", "capabilities": { "portMappings": true } },
        ],
    });
    let mut text = serde_json::to_string_pretty(&list).expect("a conflist always serializes");
    text.push('\n');
    text
}

/// Installs the plugin and the conflist; returns what was written.
pub fn install(args: &InstallArgs, run_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let plugin = match &args.plugin {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("find the tweed executable: {e}"))?
            .with_file_name("tweed-cni"),
    };
    let bin = args.bin_dir.join("tweed");
    let conf = args.conf_dir.join(CONFLIST);
    let step = |what: &str, path: &Path, e: io::Error| format!("{what} {}: {e}", path.display());
    std::fs::create_dir_all(&args.bin_dir).map_err(|e| step("create", &args.bin_dir, e))?;
    std::fs::create_dir_all(&args.conf_dir).map_err(|e| step("create", &args.conf_dir, e))?;
    let bytes = std::fs::read(&plugin)
        .map_err(|e| step("read the plugin", &plugin, e) + " (build it, or pass --plugin)")?;
    replace(&bin, &bytes, 0o755).map_err(|e| step("install", &bin, e))?;
    replace(&conf, conflist(run_dir).as_bytes(), 0o644).map_err(|e| step("write", &conf, e))?;
    Ok(vec![bin, conf])
}

fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("tweed-tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_conflist_chains_portmap_at_1_0_0() {
        let list: serde_json::Value =
            serde_json::from_str(&conflist(Path::new(DEFAULT_RUN_DIR))).unwrap();
        assert_eq!(
            list,
            serde_json::json!({"cniVersion":"1.0.0","name":"tweed","plugins":[
                {"type":"tweed","capabilities":{"ips":true,"mac":true}},
                {"type":"portmap","capabilities":{"portMappings":true}}
            ]})
        );
    }

    #[test]
    fn deploy_holds_what_install_cni_writes() {
        assert_eq!(
            include_str!("../../../deploy/10-tweed.conflist"),
            conflist(Path::new(DEFAULT_RUN_DIR))
        );
    }

    #[test]
    fn another_run_dir_names_its_socket() {
        let list: serde_json::Value = serde_json::from_str(&conflist(Path::new("/tmp/x"))).unwrap();
        assert_eq!(list["plugins"][0]["socket"], "/tmp/x/control.sock");
    }

    #[test]
    fn install_copies_the_plugin_as_tweed_and_writes_the_conflist() {
        let dir = std::env::temp_dir().join(format!("tweed-install-{}", std::process::id()));
        let plugin = dir.join("tweed-cni");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&plugin, b"#!/bin/sh\n").unwrap();
        let args = InstallArgs {
            bin_dir: dir.join("bin"),
            conf_dir: dir.join("net.d"),
            plugin: Some(plugin),
        };
        let written = install(&args, Path::new(DEFAULT_RUN_DIR)).unwrap();
        assert_eq!(
            written,
            [dir.join("bin/tweed"), dir.join("net.d").join(CONFLIST)]
        );
        assert_eq!(std::fs::read(&written[0]).unwrap(), b"#!/bin/sh\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&written[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        let missing = InstallArgs {
            plugin: Some(dir.join("nope")),
            ..args
        };
        let err = install(&missing, Path::new(DEFAULT_RUN_DIR)).unwrap_err();
        assert!(err.contains("--plugin"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
