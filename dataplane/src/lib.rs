//! tweed's dataplane: a userspace router for pod traffic.
//!
//! The crate is split the way a packet travels through it:
//!
//! - [`wire`]: typed views over the headers tweed parses itself (VXLAN, the
//!   virtio-net header), and the Ethernet, TCP and UDP constants the layers
//!   below share; everything else is parsed with etherparse.
//! - [`offload`]: checksum arithmetic, TCP segmentation of GSO super-frames
//!   (copied or planned as gathered segments), receive coalescing (copied, or
//!   found as a run in a `UDP_GRO` read), IPv4 fragmentation and address
//!   translation with incremental checksums: pure byte transformations.
//! - [`table`]: the tables the workers read without locks: longest-prefix match,
//!   policy classifiers, connection tracking, fragments' ports, endpoints,
//!   peers, Services (Maglev backend choice), next hops, and the snapshot that holds them (`tables`).
//! - [`pipeline`]: the forwarding decision, a pure function of (tables, frame)
//!   that returns one [`pipeline::Action`] per frame, and its output stage
//!   ([`pipeline::output`]): what the ports transmit for a batch's actions
//!   (frames merged for a pod, super-frames planned as gathered GSO segments
//!   for a peer).
//! - [`port::seam`]: the port seam, the only way frames enter and leave a
//!   worker: batch receive into frame buffers, batch transmit of frames,
//!   gathered frames and segment plans. Implemented by the daemon's taps and
//!   sockets ([`daemon::ports`]) and by in-memory ports ([`port::memory`])
//!   that the simulation tests join two dataplanes with.
//! - [`frame`]: the owned buffer a frame lives in, with headroom for
//!   encapsulation.
//!
//! Nothing in these layers performs I/O or reads a clock: time is passed in
//! (`.ci/pure-layers` checks `wire`, `offload`, `table` and `pipeline`). They
//! import none of `api`, `daemon` and `tweed_sys`, and of `port` only the seam
//! (the output stage is generic over its `TxPorts`) and, in tests, `memory`.
//! The seam takes the `GroDatagram` type and `memory` the GSO limits from
//! `tweed_sys::mmsg`: a type and constants, no calls.
//!
//! The process around them, run by the `tweed-dataplane` binary (`tweed` uses
//! `api` too). `port` and `api` import the layers above; `daemon`, all. Their
//! system calls (tap ioctls, `setns`, epoll, eventfd, io_uring, batched socket
//! calls, peer credentials, umask, rtnetlink) are the `tweed-sys` crate's, the
//! workspace's only unsafe code:
//!
//! - [`port`] (the rest): pod taps, the host port, underlay sockets, adopting
//!   a lost tap: creating and removing interfaces.
//! - [`api`]: the config API: wire types, codec and validation (pure; shared
//!   with the control daemon), the Unix socket server, a client, the state file.
//! - [`daemon`]: start-up, the workers and their sources and ports, the control
//!   side that applies API requests and publishes snapshots, restart from state.

pub mod frame;
pub mod offload;
pub mod pipeline;
pub mod table;
pub mod wire;

pub mod api;
pub mod daemon;
pub mod port;
