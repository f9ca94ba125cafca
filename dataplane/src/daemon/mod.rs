//! The running dataplane: shared state, worker threads, the control logic
//! behind the config API, and restart from the state file.
//!
//! Start-up order matters: the host port and the underlay sockets exist before
//! the workers, the workers before ports are restored (their epoll sets or
//! rings must be there to register with), and the API opens last, so that a client never
//! sees a half-started dataplane.

pub mod config;
pub mod control;
pub mod idle;
pub mod io;
pub mod persist;
pub mod ports;
pub mod reaper;
pub mod shared;
pub mod sources;
pub mod trace;
mod tx;
pub mod worker;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use config::Config;
use control::Control;
use io::{IoBackend, Registrar};
use shared::{PortIo, Shared, TapHandles};
use sources::{Sources, UringSources};
use sources::{TOKEN_HOST, TOKEN_UDP, TOKEN_VXLAN, TOKEN_WAKE};
use worker::WorkerIo;

use crate::table::conntrack::{Conntrack, ConntrackConfig};
use crate::table::nexthop::NextHop;
use crate::table::tables::TablesWriter;
use config::DEFAULT_VXLAN_SENDERS;
use tweed_api::dataplane::proto::{ApiError, Request, ResponseBody};
use tweed_sys::epoll::Epoll;
use tweed_sys::eventfd::EventFd;
use tweed_sys::uring::{Ring, Unavailable};

/// How long a stopping dataplane waits for pending tap removals (the rest
/// stay listed in the state file for the next start).
const STOP_REMOVALS: Duration = Duration::from_secs(3);

/// Why the dataplane could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A directory could not be created.
    #[error("create {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    /// The host port could not be opened.
    #[error("open the host port {name}: {source}")]
    HostPort {
        name: String,
        source: Box<tweed_sys::PortError>,
    },
    /// An underlay socket could not be bound.
    #[error("bind the underlay socket {addr}: {source}")]
    Underlay {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// epoll could not be set up.
    #[error("set up epoll: {0}")]
    Epoll(std::io::Error),
    /// io_uring was asked for (`--io uring`) and cannot be used.
    #[error("tap I/O with io_uring: {0}")]
    Uring(#[source] Unavailable),
    /// A worker's io_uring could not be set up.
    #[error("set up worker {worker}'s io_uring: {source}")]
    WorkerRing {
        worker: usize,
        source: std::io::Error,
    },
    /// The thread that deletes removed ports' taps could not be started.
    #[error("start the tap reaper thread: {0}")]
    Reaper(std::io::Error),
    /// The state file could not be restored.
    #[error("restore the previous state: {0}")]
    Restore(ApiError),
    /// The API socket could not be served.
    #[error("serve the config API on {path}: {source}")]
    Api {
        path: String,
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("install signal handlers: {0}")]
    Signals(std::io::Error),
}

impl crate::api::server::Handler for Control {
    fn handle(&self, request: Request) -> Result<ResponseBody, ApiError> {
        Control::handle(self, request)
    }
}

/// Runs the dataplane until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<(), RunError> {
    let clock = Instant::now();
    for dir in [Some(config.state_dir.as_path()), config.socket.parent()]
        .into_iter()
        .flatten()
    {
        std::fs::create_dir_all(dir).map_err(|source| RunError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let workers = config.workers;
    let mut choice = io::choose(config.io).map_err(RunError::Uring)?;
    choice.idle = config.idle;
    tracing::info!("tap I/O: {}", choice.describe());
    let mut writer = TablesWriter::new(config.node());
    let host = match &config.host_port {
        Some(name) => {
            let (queues, kernel_mac) = crate::port::host::open_host_port(name, workers, config.mtu)
                .map_err(|source| RunError::HostPort {
                    name: name.clone(),
                    source: Box::new(source),
                })?;
            let mut node = writer.node().clone();
            node.host_mac = kernel_mac;
            writer.set_node(node);
            // Everything outside the cluster goes to the node's kernel.
            for default in ["0.0.0.0/0", "::/0"] {
                if let Ok(prefix) = default.parse() {
                    let _ = writer.set_route(prefix, NextHop::Host);
                }
            }
            Some(Arc::new(TapHandles { queues }))
        }
        None => None,
    };
    let conntrack = Conntrack::new(ConntrackConfig::new(
        config.conntrack_capacity,
        random_seed(),
    ));
    let shared = Arc::new(Shared::new(writer.publish(), conntrack, workers));
    shared.ports.store(Arc::new(PortIo {
        pods: Default::default(),
        host: host.clone(),
    }));

    let mut registrars = Vec::with_capacity(workers);
    let mut ios = Vec::with_capacity(workers);
    // The k-th VXLAN sender of every worker shares one source port
    // (SO_REUSEPORT): a flow's outer source port then depends on its hash
    // only, not on which worker sent it, so the receiving node's reuseport
    // hash keeps the flow on one worker and one tap queue (no reordering).
    let mut sender_ports: Vec<u16> = match config.vxlan_source_ports {
        Some(range) => range.ports().collect(),
        None => vec![0; DEFAULT_VXLAN_SENDERS],
    };
    for index in 0..workers {
        let vxlan = bind(config.underlay_ip, config.vxlan_port)?;
        let udp = bind(config.underlay_ip, config.udp_port)?;
        let mut vxlan_senders = Vec::with_capacity(sender_ports.len());
        for port in sender_ports.iter_mut() {
            let socket = bind(config.underlay_ip, *port)?;
            if *port == 0 {
                *port = socket
                    .local_addr()
                    .map_err(|source| RunError::Underlay {
                        addr: SocketAddr::new(config.underlay_ip, 0),
                        source,
                    })?
                    .port();
            }
            vxlan_senders.push(socket);
        }
        let host_queue = host.as_ref().and_then(|h| h.queues.get(index));
        let sources = match choice.backend {
            IoBackend::Epoll => {
                let epoll = Arc::new(Epoll::new().map_err(RunError::Epoll)?);
                epoll
                    .add(vxlan.as_raw_fd(), TOKEN_VXLAN)
                    .map_err(RunError::Epoll)?;
                epoll
                    .add(udp.as_raw_fd(), TOKEN_UDP)
                    .map_err(RunError::Epoll)?;
                if let Some(queue) = host_queue {
                    epoll
                        .add(queue.as_raw_fd(), TOKEN_HOST)
                        .map_err(RunError::Epoll)?;
                }
                registrars.push(Registrar::Epoll(epoll.clone()));
                Sources::Epoll(epoll, Vec::with_capacity(64))
            }
            IoBackend::Uring => {
                let ring = Ring::new().map_err(RunError::Uring)?;
                let ring_error = |source| RunError::WorkerRing {
                    worker: index,
                    source,
                };
                let wake = Arc::new(EventFd::new().map_err(ring_error)?);
                let mut fixed = vec![(vxlan.as_fd(), TOKEN_VXLAN), (udp.as_fd(), TOKEN_UDP)];
                if let Some(queue) = host_queue {
                    fixed.push((queue.as_fd(), TOKEN_HOST));
                }
                let uring = UringSources::new(ring, index, &fixed, wake.clone(), TOKEN_WAKE)
                    .map_err(ring_error)?;
                registrars.push(Registrar::Uring(wake));
                Sources::Uring(Box::new(uring))
            }
        };
        ios.push(WorkerIo {
            index,
            sources,
            idle: config.idle,
            vxlan,
            udp,
            vxlan_senders,
        });
    }
    let threads: Vec<_> = ios
        .into_iter()
        .map(|io| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("tweed-worker-{}", io.index))
                .spawn(move || worker::run(shared, io, clock))
        })
        .collect::<Result<_, _>>()
        .map_err(RunError::Epoll)?;

    let control = Arc::new(Control::new(
        config.clone(),
        shared.clone(),
        registrars,
        choice.describe(),
        clock,
        writer,
    ));
    control.start_reaper().map_err(RunError::Reaper)?;
    let restored = control.restore().map_err(RunError::Restore)?;
    tracing::info!(workers, restored, underlay = %config.underlay_ip, vxlan_port = config.vxlan_port, io = choice.backend.name(), "dataplane started");

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).map_err(RunError::Signals)?;
    }
    let server = crate::api::server::serve(&config.socket, control.clone(), stop.clone()).map_err(
        |source| RunError::Api {
            path: config.socket.display().to_string(),
            source,
        },
    )?;
    tracing::info!(socket = %config.socket.display(), "config API ready");

    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    tracing::info!("stopping: pod interfaces stay in place for the next start");
    drop(server);
    if !control.finish_removals(STOP_REMOVALS) {
        tracing::warn!("tap removals still pending; the next start finishes them");
    }
    shared.shutdown.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

fn bind(ip: IpAddr, port: u16) -> Result<UdpSocket, RunError> {
    crate::port::underlay::bind_underlay(ip, port).map_err(|source| RunError::Underlay {
        addr: SocketAddr::new(ip, port),
        source,
    })
}

/// A seed for conntrack's keyed hash, so pods cannot precompute collisions.
fn random_seed() -> [u64; 4] {
    let mut bytes = [0u8; 32];
    if let Ok(mut urandom) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = urandom.read_exact(&mut bytes);
    }
    let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    [
        word(0),
        word(1),
        word(2),
        word(3) ^ std::process::id() as u64,
    ]
}
