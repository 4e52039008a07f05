//! ZooKeeper control-plane figures against a real 3-server ZooKeeper 3.8 ensemble on
//! loopback (Debian's zookeeper, run as this process's children by
//! `vxdp_testsupport::zookeeper`): the same four figures as `benches/stores.rs` (etcd).
//! The watcher applies to a real `FdbTable` exactly as `vxdp run --cluster-store
//! zk://...` does (`vxdp::daemon::store::apply`). Plain `main`.
//!
//! 1. Propagation: a write to the entry being live in the FDB snapshot, p50/p99/max over
//!    1,000 changes 25 ms apart (hdrhistogram).
//! 2. Load: time and peak RSS growth to load 100,000 entries (one listing, every key
//!    read with a data watch).
//! 3. Hot path under churn: FDB lookups per second (batches of 64 per snapshot load)
//!    with no churn, then during a 10,000-change burst (500 writes in flight).
//! 4. Failover: the leader SIGKILLed; the time until a change written after the kill
//!    (retried until the cluster takes it) is live in the FDB.
//!
//! `cargo bench -p vxdp-bench --bench zookeeper` (needs the `zookeeper` package: `cargo
//! xtask setup`).
//! Results go in docs/STORES.md.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vxdp::fdb::{FdbTable, DEFAULT_AGEING};
use vxdp::vxlan::Vni;
use vxdp_bench::storebench::{rss_kib, wait_len};
use vxdp_control::store::zk::{ZkConfig, ZkStore};
use vxdp_control::store::{Change, Keys, Store, WatchConfig, Watcher};
use vxdp_control::Mac;
use vxdp_testsupport::zookeeper::ZkEnsemble;

fn mac(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, 0x42, b[0], b[1], b[2], b[3]]
}

fn value(i: u32) -> Vec<u8> {
    format!(r#"{{"v":1,"vtep":"10.{}.{}.{}"}}"#, i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff).into_bytes()
}

fn keys() -> Keys {
    Keys::new("vxdp/", Vni::new(42).unwrap())
}

fn client(c: &ZkEnsemble) -> ZkStore {
    let eps = c.endpoints();
    ZkStore::new(ZkConfig::new(&eps.iter().map(String::as_str).collect::<Vec<_>>())).expect("client")
}

fn pairs(range: std::ops::Range<u32>, v: impl Fn(u32) -> u32) -> Vec<(String, Vec<u8>)> {
    range.map(|i| (keys().mac(Mac(mac(i))), value(v(i)))).collect()
}

fn watch(c: &ZkEnsemble, fdb: &Arc<FdbTable>) -> Watcher {
    let f = fdb.clone();
    let changed = Arc::new(AtomicBool::new(false));
    Watcher::spawn(client(c), WatchConfig::new(keys()), move |ch: &[Change]| {
        vxdp::daemon::store::apply(&f, &changed, None, ch)
    })
    .expect("watcher")
}

fn propagation(c: &ZkEnsemble) {
    let fdb = Arc::new(FdbTable::new(false, DEFAULT_AGEING));
    let w = watch(c, &fdb);
    while !w.stats().connected.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut s = client(c);
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    for i in 0..1000u32 {
        let m = mac(i);
        let start = Instant::now();
        assert!(s.put(&keys().mac(Mac(m)), &value(i), None).expect("put"));
        while fdb.snapshot().lookup(&m).is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "change {i} never arrived");
            std::hint::spin_loop();
        }
        h.record(start.elapsed().as_micros() as u64).expect("record");
        std::thread::sleep(Duration::from_millis(25));
    }
    println!(
        "propagation, zk put -> live in the FDB snapshot, 1,000 changes: p50 {} us, p99 {} us, max {} us",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
}

fn load(c: &ZkEnsemble) {
    client(c).put_batch(&pairs(0..100_000, |i| i)).expect("preload");
    let before = rss_kib("VmRSS:");
    let fdb = Arc::new(FdbTable::new(false, DEFAULT_AGEING));
    let start = Instant::now();
    let _w = watch(c, &fdb);
    wait_len(&fdb, 100_000, Duration::from_secs(120));
    let took = start.elapsed();
    let peak = rss_kib("VmHWM:");
    println!(
        "load 100,000 entries (one listing, one batch): {:.2} s, peak RSS {} MiB (+{} MiB over the {} MiB before)",
        took.as_secs_f64(),
        peak / 1024,
        peak.saturating_sub(before) / 1024,
        before / 1024
    );
}

fn churn(c: &ZkEnsemble) {
    client(c).put_batch(&pairs(0..10_000, |i| i)).expect("preload");
    let fdb = Arc::new(FdbTable::new(false, DEFAULT_AGEING));
    let _w = watch(c, &fdb);
    wait_len(&fdb, 10_000, Duration::from_secs(60));
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let reader = {
        let (fdb, stop, lookups) = (fdb.clone(), stop.clone(), lookups.clone());
        std::thread::spawn(move || {
            let probes: Vec<[u8; 6]> = (0..4096u32).map(|i| mac(i.wrapping_mul(2_654_435_761) % 20_000)).collect();
            let (mut at, mut found) = (0, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let snap = fdb.snapshot();
                for m in &probes[at..at + 64] {
                    found += snap.lookup(m).map_or(0, |r| r.len() as u64);
                }
                at = (at + 64) % probes.len();
                lookups.fetch_add(64, Ordering::Relaxed);
            }
            std::hint::black_box(found);
        })
    };
    let l0 = lookups.load(Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let idle = (lookups.load(Ordering::Relaxed) - l0) as f64 / t0.elapsed().as_secs_f64();
    // Moves of existing MACs and new MACs, alternating.
    let burst: Vec<(String, Vec<u8>)> =
        (0..10_000u32).map(|i| (keys().mac(Mac(mac(if i % 2 == 0 { i } else { 10_000 + i }))), value(i + 7))).collect();
    let l0 = lookups.load(Ordering::Relaxed);
    let t0 = Instant::now();
    client(c).put_batch(&burst).expect("burst");
    let written = t0.elapsed();
    wait_len(&fdb, 15_000, Duration::from_secs(60));
    let applied = t0.elapsed();
    let busy = (lookups.load(Ordering::Relaxed) - l0) as f64 / applied.as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("reader");
    println!(
        "hot path: {:.1} M lookups/s with no churn, {:.1} M lookups/s during a 10,000-change burst ({:.0}%); \
         burst written in {:.2} s, all live {:.2} s after it began",
        idle / 1e6,
        busy / 1e6,
        100.0 * busy / idle,
        written.as_secs_f64(),
        applied.as_secs_f64()
    );
}

fn failover(c: &mut ZkEnsemble) {
    let fdb = Arc::new(FdbTable::new(false, DEFAULT_AGEING));
    let w = watch(c, &fdb);
    while !w.stats().connected.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let leader = c.leader().expect("leader");
    let m = mac(0xfeed);
    c.kill(leader);
    let killed = Instant::now();
    let mut s = client(c);
    while !s.put(&keys().mac(Mac(m)), &value(1), None).unwrap_or(false) {
        assert!(killed.elapsed() < Duration::from_secs(30), "no write taken 30 s after the leader's death");
        std::thread::sleep(Duration::from_millis(10));
    }
    let written = killed.elapsed();
    while fdb.snapshot().lookup(&m).is_none() {
        assert!(killed.elapsed() < Duration::from_secs(30), "the change never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    println!(
        "leader (server {}) SIGKILLed: first write taken after {:.2} s, live in the FDB after {:.2} s",
        leader + 1,
        written.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !vxdp_testsupport::zookeeper::available("zookeeper bench") {
        return;
    }
    println!(
        "vxdp ZooKeeper control plane, 3-server ZooKeeper ensemble on loopback, {} CPUs",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // `cargo bench --bench zookeeper -- failover` runs only the figures named.
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if run("propagation") {
        propagation(&ZkEnsemble::start(3));
    }
    if run("load") {
        load(&ZkEnsemble::start(3));
    }
    if run("churn") {
        churn(&ZkEnsemble::start(3));
    }
    if run("failover") {
        for _ in 0..3 {
            failover(&mut ZkEnsemble::start(3));
        }
    }
}
