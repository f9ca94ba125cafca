//! Underlay sockets: one nonblocking UDP socket per worker, all bound to the
//! same VXLAN `ip:port` with `SO_REUSEPORT` so the kernel spreads incoming
//! flows across workers.
//!
//! `UDP_GRO` is enabled where the kernel has it: a read may then carry many
//! datagrams of one flow (see [`tweed_sys::mmsg::recv_gro`]), which the
//! worker splits again before the pipeline sees them.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

use tweed_sys::mmsg;

/// Socket buffer size we ask for (best effort; capped by `net.core.*mem_max`).
const SOCKET_BUFFER: usize = 4 << 20;

/// Binds a nonblocking UDP socket to `ip:port` with `SO_REUSEADDR` and
/// `SO_REUSEPORT` (call once per worker), large socket buffers and, if the
/// kernel supports it, `UDP_GRO`.
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
    // Best effort: without GRO every datagram is one read.
    if let Err(e) = mmsg::enable_udp_gro(socket.as_raw_fd()) {
        tracing::debug!(error = %e, "could not enable UDP_GRO on the underlay socket");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
