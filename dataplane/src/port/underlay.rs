//! Underlay sockets: one nonblocking UDP socket per worker, all bound to the
//! same VXLAN `ip:port` with `SO_REUSEPORT` so the kernel spreads incoming
//! flows across workers.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Socket buffer size we ask for (best effort; capped by `net.core.*mem_max`).
const SOCKET_BUFFER: usize = 4 << 20;

/// Binds a nonblocking UDP socket to `ip:port` with `SO_REUSEADDR` and
/// `SO_REUSEPORT` (call once per worker) and large socket buffers.
pub fn bind_underlay(ip: IpAddr, port: u16) -> io::Result<UdpSocket> {
    let addr = SocketAddr::new(ip, port);
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if ip.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: a smaller buffer only costs drops under bursts.
    if let Err(e) = socket.set_recv_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "could not enlarge the underlay receive buffer");
    }
    if let Err(e) = socket.set_send_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "could not enlarge the underlay send buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
