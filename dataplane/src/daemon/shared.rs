//! What the control side and the workers share: the published tables, the
//! port handles, conntrack, per-worker counters and the shutdown flag.
//!
//! Workers read all of it without locks (two `ArcSwap` loads per batch); the
//! only lock is each worker's counter slot, taken by the worker a few times a
//! second and by `stats` when asked.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::pipeline::Counters;
use crate::table::conntrack::Conntrack;
use crate::table::nexthop::PortId;
use crate::table::tables::Tables;
use tweed_sys::tap::TapQueue;

/// The queues of one tap: queue `i` belongs to worker `i`.
#[derive(Debug)]
pub struct TapHandles {
    /// One queue per worker.
    pub queues: Vec<TapQueue>,
}

/// The I/O handles of every port, published like the tables.
#[derive(Debug, Default)]
pub struct PortIo {
    /// Pod taps by port id.
    pub pods: HashMap<PortId, Arc<TapHandles>>,
    /// The host port (tweed0), if the dataplane runs one.
    pub host: Option<Arc<TapHandles>>,
}

/// Per-port traffic counted by one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames read from the port.
    pub rx_packets: u64,
    /// Bytes read from the port.
    pub rx_bytes: u64,
    /// Frames written to the port.
    pub tx_packets: u64,
    /// Bytes written to the port.
    pub tx_bytes: u64,
}

/// Everything one worker counts.
#[derive(Debug, Clone, Default)]
pub struct WorkerCounters {
    /// The pipeline's counters (drops by reason, actions, conntrack, rules).
    pub pipeline: Counters,
    /// Traffic per pod port.
    pub ports: HashMap<PortId, PortCounters>,
    /// Traffic on the host port.
    pub host: PortCounters,
    /// Datagrams received from the underlay.
    pub underlay_rx: u64,
    /// Datagrams sent to the underlay.
    pub underlay_tx: u64,
    /// Writes or sends that failed (full queue, unreachable peer, ...).
    pub io_errors: u64,
}

/// State shared by the control side and the workers.
#[derive(Debug)]
pub struct Shared {
    /// The tables the pipeline reads.
    pub tables: ArcSwap<Tables>,
    /// The port handles the workers read from and write to.
    pub ports: ArcSwap<PortIo>,
    /// Connection tracking.
    pub conntrack: Conntrack,
    /// Each worker's published counters.
    pub counters: Vec<Mutex<WorkerCounters>>,
    /// Set to stop the workers.
    pub shutdown: AtomicBool,
}

impl Shared {
    /// Shared state for `workers` workers.
    pub fn new(tables: Arc<Tables>, conntrack: Conntrack, workers: usize) -> Self {
        Self {
            tables: ArcSwap::new(tables),
            ports: ArcSwap::from_pointee(PortIo::default()),
            conntrack,
            counters: (0..workers)
                .map(|_| Mutex::new(WorkerCounters::default()))
                .collect(),
            shutdown: AtomicBool::new(false),
        }
    }

    /// Every worker's counters, summed.
    pub fn totals(&self) -> (WorkerCounters, Vec<WorkerCounters>) {
        let per_worker: Vec<WorkerCounters> = self
            .counters
            .iter()
            .map(|slot| slot.lock().map(|c| c.clone()).unwrap_or_default())
            .collect();
        let mut total = WorkerCounters::default();
        for worker in &per_worker {
            total.pipeline.merge(&worker.pipeline);
            for (port, c) in &worker.ports {
                let sum = total.ports.entry(*port).or_default();
                add(sum, c);
            }
            add(&mut total.host, &worker.host);
            total.underlay_rx += worker.underlay_rx;
            total.underlay_tx += worker.underlay_tx;
            total.io_errors += worker.io_errors;
        }
        (total, per_worker)
    }
}

fn add(sum: &mut PortCounters, c: &PortCounters) {
    sum.rx_packets += c.rx_packets;
    sum.rx_bytes += c.rx_bytes;
    sum.tx_packets += c.tx_packets;
    sum.tx_bytes += c.tx_bytes;
}
