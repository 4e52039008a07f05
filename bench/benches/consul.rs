//! Consul control-plane figures (plain `main`, not criterion: these are latencies and
//! rates of a running system, not a closure timed in a loop).
//!
//! The Consul HTTP API is the in-process test server (`vxdp_testsupport::consul`), run in a child
//! process so that its memory and CPU are not counted as vxdp's. The watcher applies to
//! a real `FdbTable` exactly as `vxdp run --consul` does (`vxdp::daemon::store::apply`).
//!
//! 1. Propagation: a KV write to the entry being visible in the data plane's snapshot,
//!    p50/p99/max over 1,000 changes (hdrhistogram).
//! 2. Load: time and peak RSS growth to load 100,000 entries from one listing.
//! 3. Hot path under churn: FDB lookups per second (batches of 64, one snapshot load
//!    per batch, as a worker does) with no churn, then during a 10,000-change burst.
//!
//! `cargo bench -p vxdp-bench --bench consul`. Results go in docs/CONSUL.md.

use hdrhistogram::Histogram;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vxdp::fdb::{FdbTable, DEFAULT_AGEING};
use vxdp::vxlan::Vni;
use vxdp_bench::storebench::{rss_kib, wait_len};
use vxdp_control::consul::{Client, ConsulConfig};
use vxdp_control::store::consul::ConsulStore;
use vxdp_control::store::{Change, Keys, WatchConfig, Watcher};
use vxdp_testsupport::consul::TestConsul;

const SERVE_ENV: &str = "VXDP_BENCH_CONSUL_SERVE";

fn mac(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, 0x42, b[0], b[1], b[2], b[3]]
}

fn value(i: u32) -> String {
    format!(r#"{{"v":1,"vtep":"10.{}.{}.{}"}}"#, i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff)
}

/// The Consul test server in a child process (this binary with SERVE_ENV set).
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(preload: u32) -> Server {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env(SERVE_ENV, preload.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("server address");
        Server { child, url: line.trim().to_string() }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(preload: u32) -> ! {
    let s = TestConsul::start().expect("test server");
    let keys = Keys::new("vxdp/", Vni::new(42).unwrap());
    for i in 0..preload {
        s.put(&keys.mac(vxdp_control::Mac(mac(i))), value(i).as_bytes());
    }
    println!("{}", s.url());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn watch(url: &str, fdb: &Arc<FdbTable>) -> Watcher {
    let f = fdb.clone();
    let changed = Arc::new(AtomicBool::new(false));
    let cfg = WatchConfig::new(Keys::new("vxdp/", Vni::new(42).unwrap()));
    Watcher::spawn(ConsulStore::new(ConsulConfig::new(url)).expect("client"), cfg, move |c: &[Change]| {
        vxdp::daemon::store::apply(&f, &changed, None, c)
    })
    .expect("watcher")
}

fn propagation() {
    let server = Server::start(0);
    let fdb = Arc::new(FdbTable::new(false, DEFAULT_AGEING));
    let _w = watch(&server.url, &fdb);
    let client = Client::new(ConsulConfig::new(&server.url)).expect("client");
    let keys = Keys::new("vxdp/", Vni::new(42).unwrap());
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    std::thread::sleep(Duration::from_millis(300)); // the watcher's first (empty) listing
    for i in 0..1000u32 {
        let m = mac(i);
        let start = Instant::now();
        client.kv_put(&keys.mac(vxdp_control::Mac(m)), value(i).as_bytes(), None, None).expect("put");
        while fdb.snapshot().lookup(&m).is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "change {i} never arrived");
            std::hint::spin_loop();
        }
        h.record(start.elapsed().as_micros() as u64).expect("record");
        // Changes 25 ms apart (40/s): above the watcher's sustained query rate (one
        // per 20 ms), so each is a fresh change, not part of a coalesced burst.
        std::thread::sleep(Duration::from_millis(25));
    }
    println!(
        "propagation, KV write -> live in the FDB snapshot, 1,000 changes: p50 {} us, p99 {} us, max {} us",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
}

fn load() {
    let server = Server::start(100_000);
    let before = rss_kib("VmRSS:");
    let fdb = Arc::new(FdbTable::new(false, DEFAULT_AGEING));
    let start = Instant::now();
    let _w = watch(&server.url, &fdb);
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

fn churn() {
    let server = Server::start(10_000);
    let fdb = Arc::new(FdbTable::new(false, DEFAULT_AGEING));
    let _w = watch(&server.url, &fdb);
    wait_len(&fdb, 10_000, Duration::from_secs(60));

    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let reader = {
        let (fdb, stop, lookups) = (fdb.clone(), stop.clone(), lookups.clone());
        std::thread::spawn(move || {
            let probes: Vec<[u8; 6]> = (0..4096u32).map(|i| mac(i.wrapping_mul(2_654_435_761) % 20_000)).collect();
            let mut at = 0;
            let mut found = 0u64;
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
    let rate = |d: Duration| {
        let l0 = lookups.load(Ordering::Relaxed);
        let t0 = Instant::now();
        std::thread::sleep(d);
        (lookups.load(Ordering::Relaxed) - l0) as f64 / t0.elapsed().as_secs_f64()
    };
    let idle = rate(Duration::from_secs(2));

    // The burst: 10,000 changes (moves of existing MACs and new MACs) from a writer.
    let url = server.url.clone();
    let writer = std::thread::spawn(move || {
        let client = Client::new(ConsulConfig::new(&url)).expect("client");
        let keys = Keys::new("vxdp/", Vni::new(42).unwrap());
        let start = Instant::now();
        for i in 0..10_000u32 {
            let target = if i % 2 == 0 { i } else { 10_000 + i };
            client.kv_put(&keys.mac(vxdp_control::Mac(mac(target))), value(i + 7).as_bytes(), None, None).expect("put");
        }
        start.elapsed()
    });
    let l0 = lookups.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let burst_took = writer.join().expect("writer");
    wait_len(&fdb, 15_000, Duration::from_secs(60));
    let busy = (lookups.load(Ordering::Relaxed) - l0) as f64 / t0.elapsed().as_secs_f64();
    let applied = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("reader");
    println!(
        "hot path: {:.1} M lookups/s with no churn, {:.1} M lookups/s during a 10,000-change burst ({:.0}%); \
         burst written in {:.2} s, all live {:.2} s after it began",
        idle / 1e6,
        busy / 1e6,
        100.0 * busy / idle,
        burst_took.as_secs_f64(),
        applied.as_secs_f64()
    );
}

fn main() {
    if let Ok(n) = std::env::var(SERVE_ENV) {
        serve(n.parse().expect("preload count"));
    }
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("vxdp Consul control plane, {} CPUs", std::thread::available_parallelism().map_or(1, |n| n.get()));
    propagation();
    load();
    churn();
}
