//! Cost of one route change made visible to readers: insert or remove one
//! route in a 100k-route IPv4 table and publish the new snapshot, while a
//! reader thread keeps looking up destinations in the latest snapshot (so old
//! snapshots stay shared and copy-on-write really copies).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use tweed_dataplane::table::lpm::{Lpm, LpmWriter};
use tweed_suite::workload::{ipv4_routes, lookup_keys};

/// Routes in the table.
const ROUTES: usize = 100_000;
/// Extra routes that updates insert and remove in turn.
const CHURN: usize = 4_096;

fn update(c: &mut Criterion) {
    // One seeded mix; the tail is the churn list, so it looks like the table.
    let all = ipv4_routes(ROUTES + CHURN, 1);
    let (table, churn) = all.split_at(ROUTES);
    let mut writer = LpmWriter::new();
    for (i, &(prefix, len)) in table.iter().enumerate() {
        writer
            .insert(prefix, len, i as u32 + 1)
            .expect("valid route");
    }
    let current = Arc::new(ArcSwap::from_pointee(writer.publish()));
    eprintln!("ipv4-100k table: {} KiB", writer.memory_bytes() / 1024);

    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let reader = {
        let (current, stop, lookups) = (current.clone(), stop.clone(), lookups.clone());
        let keys = lookup_keys(table, 1024, 2);
        thread::spawn(move || {
            let mut out = vec![None; keys.len()];
            while !stop.load(Ordering::Relaxed) {
                let lpm: Arc<Lpm<u32>> = current.load_full();
                lpm.lookup_batch(&keys, &mut out);
                black_box(&out);
                lookups.fetch_add(keys.len() as u64, Ordering::Relaxed);
            }
        })
    };

    let started = Instant::now();
    let mut step = 0usize;
    c.bench_function("update/ipv4-100k", |b| {
        b.iter(|| {
            let (prefix, len) = churn[(step / 2) % churn.len()];
            if step.is_multiple_of(2) {
                writer.insert(prefix, len, 7).expect("valid route");
            } else {
                writer.remove(prefix, len);
            }
            step += 1;
            current.store(Arc::new(writer.publish()));
        })
    });
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("reader thread");
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "background reader: {:.1} M lookups/s during updates",
        lookups.load(Ordering::Relaxed) as f64 / seconds / 1e6
    );
}

criterion_group!(benches, update);
criterion_main!(benches);
