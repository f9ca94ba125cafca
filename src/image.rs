//! A container image without a registry: a rootfs of Debian's static
//! busybox (`/bin/busybox` and a symlink per applet) as a tar, which a
//! runtime imports (`podman import`, `ctr images import` of an OCI layout).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process;

/// Debian's `busybox-static`.
pub const BUSYBOX: &str = "/bin/busybox";

/// Writes the rootfs tar to `dir/busybox.tar` and returns its path; the
/// rootfs itself is left in `dir/rootfs`.
pub fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("create {}: {e}", bin.display()));
    for d in ["tmp", "www", "etc", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("create a rootfs directory");
    }
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap_or_else(|e| {
        panic!("copy {BUSYBOX} (install busybox-static, see .ci/install-deps): {e}")
    });
    let list = process::run(Command::new(BUSYBOX).arg("--list"), Duration::from_secs(10));
    assert!(list.success(), "busybox --list: {list}");
    for applet in list
        .stdout
        .lines()
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
    }
    let tar = dir.join("busybox.tar");
    let out = process::run(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
        Duration::from_secs(30),
    );
    assert!(out.success(), "tar the busybox rootfs: {out}");
    tar
}

/// Writes an OCI image archive of the busybox rootfs to `dir/busybox-oci.tar`
/// (one uncompressed layer, named `name` by the `io.containerd.image.name`
/// annotation, as `ctr images import` reads it) and returns its path.
pub fn busybox_oci_archive(dir: &Path, name: &str) -> PathBuf {
    let layer = busybox_rootfs_tar(dir);
    let layout = dir.join("oci");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("create the OCI layout");
    let put = |bytes: &[u8]| -> (String, usize) {
        let tmp = layout.join("blob.tmp");
        std::fs::write(&tmp, bytes).expect("write a blob");
        let digest = sha256(&tmp);
        std::fs::rename(&tmp, blobs.join(&digest)).expect("name a blob by its digest");
        (format!("sha256:{digest}"), bytes.len())
    };
    let layer_bytes = std::fs::read(&layer).expect("read the layer");
    let (layer_digest, layer_size) = put(&layer_bytes);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["sh"], "Env": ["PATH=/bin"] },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    });
    let (config_digest, config_size) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": { "architecture": "amd64", "os": "linux" },
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": "latest",
            },
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("write index.json");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("write oci-layout");
    let tar = dir.join("busybox-oci.tar");
    let out = process::run(
        Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&tar)
            .args(["index.json", "oci-layout", "blobs"]),
        Duration::from_secs(30),
    );
    assert!(out.success(), "tar the OCI layout: {out}");
    tar
}

/// The hex SHA-256 of a file (`sha256sum`, coreutils).
fn sha256(path: &Path) -> String {
    let out = process::run(Command::new("sha256sum").arg(path), Duration::from_secs(30));
    assert!(out.success(), "sha256sum: {out}");
    out.stdout
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}
