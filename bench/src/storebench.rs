//! Helpers the cluster-store benchmarks (`benches/consul.rs`, `benches/stores.rs`)
//! share: reading the process's memory use, and waiting for the FDB to fill.

use std::time::{Duration, Instant};
use vxdp::fdb::FdbTable;

/// A `/proc/self/status` field in KiB (`VmRSS:`, `VmHWM:`); 0 if unreadable.
pub fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits until `fdb`'s snapshot holds `n` entries and returns how long it took;
/// panics past `limit`.
pub fn wait_len(fdb: &FdbTable, n: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    while fdb.snapshot().len() < n {
        assert!(start.elapsed() < limit, "only {} of {n} entries after {limit:?}", fdb.snapshot().len());
        std::thread::sleep(Duration::from_micros(200));
    }
    start.elapsed()
}
