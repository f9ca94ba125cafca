//! IP forwarding on the node: pod traffic that leaves the cluster (and
//! masqueraded replies) is routed by the node's kernel between `tweed0` and
//! the underlay, which the kernel only does with forwarding on.

use std::path::Path;

use super::HostError;

const IPV4: &str = "/proc/sys/net/ipv4/ip_forward";
const IPV6: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

/// Turns forwarding on for IPv4, and for IPv6 when `ipv6`; a value already
/// on is left alone.
pub fn enable(ipv6: bool) -> Result<(), HostError> {
    set(Path::new(IPV4))?;
    if ipv6 {
        set(Path::new(IPV6))?;
    }
    Ok(())
}

fn set(path: &Path) -> Result<(), HostError> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(path, "1").map_err(|source| HostError::Sysctl {
        path: path.display().to_string(),
        source,
    })
}

/// Lets the kernel accept packets from its own addresses on `device` (IPv4's
/// `accept_local`; IPv6 has no such check): the replies of native Services
/// reached from outside come out of the host port from the node's address.
/// `device` must be an interface name (no `/`).
pub fn accept_local(device: &str) -> Result<(), HostError> {
    if device.is_empty() || device.contains('/') || device.starts_with('.') {
        return Err(HostError::Sysctl {
            path: format!("net.ipv4.conf.{device}.accept_local"),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an interface name"),
        });
    }
    set(Path::new(&format!(
        "/proc/sys/net/ipv4/conf/{device}/accept_local"
    )))
}
