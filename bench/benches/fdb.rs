//! FDB lookup: the RCU snapshot (`vxdp::fdb`) vs `dashmap`, 10 and 100,000 entries,
//! hit and miss, idle and with a writer thread doing continuous updates.
//!
//! Each iteration looks up a batch of 64 MACs (a worker's RX batch): the RCU variant
//! loads the snapshot once per batch, as workers do; dashmap takes a shard read lock
//! per lookup. Both use the same hasher (`MacBuildHasher`), so the comparison is of the
//! concurrency scheme, not the hash. Report ns/lookup = time per iteration / 64.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dashmap::DashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use vxdp::fdb::{mac_key, FdbTable, MacBuildHasher, Remote, DEFAULT_AGEING};
use vxdp_control::entry::{FdbOp, FdbRequest, Source};
use vxdp_control::mac::Mac;

const BATCH: usize = 64;
const PROBES: usize = 4096;

/// xorshift64*: deterministic MACs spread over the whole space.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn mac(&mut self) -> [u8; 6] {
        let b = self.next().to_le_bytes();
        [b[0] & 0xfe | 0x02, b[1], b[2], b[3], b[4], b[5]] // unicast, locally administered
    }
}

fn remote(i: u64) -> Remote {
    Remote::new(IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)))
}

struct Workload {
    macs: Vec<[u8; 6]>,
    hits: Vec<[u8; 6]>,
    misses: Vec<[u8; 6]>,
}

fn workload(n: usize) -> Workload {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = std::collections::HashSet::new();
    let mut macs = Vec::with_capacity(n);
    while macs.len() < n {
        let m = rng.mac();
        if seen.insert(m) {
            macs.push(m);
        }
    }
    let hits = (0..PROBES).map(|_| macs[(rng.next() % n as u64) as usize]).collect();
    let mut misses = Vec::with_capacity(PROBES);
    while misses.len() < PROBES {
        let m = rng.mac();
        if !seen.contains(&m) {
            misses.push(m);
        }
    }
    Workload { macs, hits, misses }
}

fn rcu_table(w: &Workload) -> Arc<FdbTable> {
    let t = FdbTable::new(false, DEFAULT_AGEING);
    let reqs: Vec<_> = w
        .macs
        .iter()
        .enumerate()
        .map(|(i, m)| (FdbRequest::new(FdbOp::Add, Mac(*m), Some(remote(i as u64))), Source::Static))
        .collect();
    t.apply_batch(&reqs).unwrap();
    Arc::new(t)
}

fn dash_table(w: &Workload) -> Arc<DashMap<u64, Box<[Remote]>, MacBuildHasher>> {
    let d = DashMap::with_capacity_and_hasher(w.macs.len(), MacBuildHasher::default());
    for (i, m) in w.macs.iter().enumerate() {
        d.insert(mac_key(m), vec![remote(i as u64)].into_boxed_slice());
    }
    Arc::new(d)
}

/// A thread updating random existing entries until dropped; counts its updates.
struct Writer {
    stop: Arc<AtomicBool>,
    updates: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn spawn(mut update: impl FnMut(u64) + Send + 'static) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let updates = Arc::new(AtomicU64::new(0));
        let (s, u) = (stop.clone(), updates.clone());
        let thread = std::thread::spawn(move || {
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                update(i);
                i += 1;
                u.store(i, Ordering::Relaxed);
            }
        });
        Writer { stop, updates, thread: Some(thread) }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("fdb_lookup");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.sample_size(20);
    group.throughput(Throughput::Elements(BATCH as u64));

    for n in [10usize, 100_000] {
        let w = workload(n);
        let rcu = rcu_table(&w);
        let dash = dash_table(&w);
        for writer in [false, true] {
            let _rcu_writer = writer.then(|| {
                let (t, macs) = (rcu.clone(), w.macs.clone());
                Writer::spawn(move |i| {
                    let m = macs[(i as usize * 7919) % macs.len()];
                    t.apply(&FdbRequest::new(FdbOp::Replace, Mac(m), Some(remote(i))), Source::Static).unwrap();
                })
            });
            for (kind, probes) in [("hit", &w.hits), ("miss", &w.misses)] {
                let label = format!("{n}/{kind}/{}", if writer { "writer" } else { "idle" });
                group.bench_with_input(BenchmarkId::new("rcu", &label), probes, |b, probes| {
                    let mut at = 0;
                    b.iter(|| {
                        let snap = rcu.snapshot();
                        let mut found = 0usize;
                        for mac in &probes[at..at + BATCH] {
                            found += snap.lookup(mac).map_or(0, |r| r.len());
                        }
                        at = (at + BATCH) % PROBES;
                        black_box(found)
                    })
                });
            }
            if let Some(wr) = &_rcu_writer {
                eprintln!("rcu writer ({n} entries): {} publishes", wr.updates.load(Ordering::Relaxed));
            }
            drop(_rcu_writer);
            let _dash_writer_holder = writer.then(|| {
                let (d, macs) = (dash.clone(), w.macs.clone());
                Writer::spawn(move |i| {
                    let m = macs[(i as usize * 7919) % macs.len()];
                    d.insert(mac_key(&m), vec![remote(i)].into_boxed_slice());
                })
            });
            for (kind, probes) in [("hit", &w.hits), ("miss", &w.misses)] {
                let label = format!("{n}/{kind}/{}", if writer { "writer" } else { "idle" });
                group.bench_with_input(BenchmarkId::new("dashmap", &label), probes, |b, probes| {
                    let mut at = 0;
                    b.iter(|| {
                        let mut found = 0usize;
                        for mac in &probes[at..at + BATCH] {
                            found += dash.get(&mac_key(mac)).map_or(0, |r| r.len());
                        }
                        at = (at + BATCH) % PROBES;
                        black_box(found)
                    })
                });
            }
            if let Some(wr) = &_dash_writer_holder {
                eprintln!("dashmap writer ({n} entries): {} updates", wr.updates.load(Ordering::Relaxed));
            }
        }
    }
    group.finish();
}

/// What one control-plane change costs the writer (rebuild + publish).
fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("fdb_publish");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.sample_size(10);
    for n in [10usize, 100_000] {
        let w = workload(n);
        let rcu = rcu_table(&w);
        let mut i = 0u64;
        group.bench_function(BenchmarkId::new("rcu_replace", n), |b| {
            b.iter(|| {
                i += 1;
                let m = w.macs[(i as usize * 7919) % n];
                rcu.apply(&FdbRequest::new(FdbOp::Replace, Mac(m), Some(remote(i))), Source::Static).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lookups, publish);
criterion_main!(benches);
