//! FDB churn during the soak: `vxdp fdb add|replace|del` through the control socket,
//! and puts and deletes of MAC keys in the store (etcd), each on MACs of its own pool
//! that the soak's traffic never uses, towards host B (resolved) or an address on the
//! underlay nobody has (unresolved), so entries come and go in the tables, the express
//! path's maps and the next-hop set without changing where soak frames go.
//!
//! Each churner keeps a model of what it set; the orchestrator pauses it (a paused
//! churner finishes its operation first: operations run under the model's lock) and
//! compares the daemon's `vxdp fdb show` with the model (CLI) or with the store's own
//! listing (store).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use vxdp_control::store::etcd::{EtcdConfig, EtcdStore};
use vxdp_control::store::Store;
use vxdp_tests::store_e2e::PREFIX;

/// The remotes churned entries point at: host B, and an underlay address nobody has.
pub const CHURN_REMOTES: [&str; 2] = ["192.0.2.2", "192.0.2.3"];
/// MACs per pool.
const POOL: u64 = 96;
/// Pause between two operations of one churner.
const CLI_PERIOD: Duration = Duration::from_millis(100);
const STORE_PERIOD: Duration = Duration::from_millis(50);

/// A small xorshift generator (no dependency for a soak's coin flips).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A churner's shared state.
#[derive(Default)]
pub struct Churn {
    /// MAC → remote, as the churner last set it.
    pub model: Mutex<BTreeMap<String, String>>,
    pub paused: AtomicBool,
    pub ops: AtomicU64,
    pub errors: AtomicU64,
    /// The last error, for the report.
    pub last_error: Mutex<Option<String>>,
}

impl Churn {
    fn failed(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap() = Some(e);
    }
}

fn pool_mac(prefix: u8, i: u64) -> String {
    format!("02:{prefix:02x}:00:00:00:{i:02x}")
}

/// `vxdp fdb add|replace|del` on device `vx0` of the daemon in `ns`, every 100 ms.
pub fn cli(bin: &Path, ns: &str, c: &Churn, stop: &AtomicBool) {
    let bin = bin.to_string_lossy().to_string();
    let mut rng = Rng::new(0x05ee_dc11);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(CLI_PERIOD);
        if c.paused.load(Ordering::Acquire) {
            continue;
        }
        let mut model = c.model.lock().unwrap();
        let mac = pool_mac(0xc1, rng.next() % POOL);
        let dst = CHURN_REMOTES[(rng.next() % 2) as usize];
        let (op, next): (&str, Option<&str>) = match model.get(&mac) {
            None => ("add", Some(dst)),
            Some(_) if rng.next().is_multiple_of(3) => ("replace", Some(dst)),
            Some(_) => ("del", None),
        };
        let mut argv = vec!["ip", "netns", "exec", ns, &bin, "fdb", op, &mac];
        if let Some(d) = next {
            argv.extend(["dst", d]);
        }
        argv.extend(["dev", "vx0"]);
        c.ops.fetch_add(1, Ordering::Relaxed);
        match vxdp_tests::netns::run_cmd(&argv) {
            Ok(_) => match next {
                Some(d) => {
                    model.insert(mac, d.to_string());
                }
                None => {
                    model.remove(&mac);
                }
            },
            Err(e) => c.failed(format!("{e:#}")),
        }
    }
}

/// Puts and deletes `PREFIX/mac/MAC` keys in the store, every 50 ms, from a thread in
/// the store's namespace. Failures while the store restarts are expected: they are
/// counted, and the comparison uses the store's listing, not the model.
pub fn store(endpoints: &[String], c: &Churn, stop: &AtomicBool) {
    let eps: Vec<&str> = endpoints.iter().map(String::as_str).collect();
    let mut st = match EtcdStore::new(EtcdConfig::new(&eps)) {
        Ok(s) => s,
        Err(e) => return c.failed(format!("etcd client: {e}")),
    };
    let mut rng = Rng::new(0x5eed_e7cd);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(STORE_PERIOD);
        if c.paused.load(Ordering::Acquire) {
            continue;
        }
        let mut model = c.model.lock().unwrap();
        let mac = pool_mac(0x5e, rng.next() % POOL);
        let key = format!("{PREFIX}mac/{mac}");
        c.ops.fetch_add(1, Ordering::Relaxed);
        match model.entry(mac) {
            Entry::Occupied(e) => match st.delete(&key, None) {
                Ok(_) => {
                    e.remove();
                }
                Err(err) => c.failed(format!("etcd delete {key}: {err}")),
            },
            Entry::Vacant(e) => {
                let dst = CHURN_REMOTES[(rng.next() % 2) as usize];
                let value = format!(r#"{{"v":1,"vtep":"{dst}"}}"#);
                match st.put(&key, value.as_bytes(), None) {
                    Ok(_) => {
                        e.insert(dst.to_string());
                    }
                    Err(err) => c.failed(format!("etcd put {key}: {err}")),
                }
            }
        }
    }
}

/// `(MAC, dst)` entries of a `vxdp fdb show` by source (`static`, `store`, `learned`).
pub fn fdb_by_source(show: &str) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for line in show.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |w: &str| words.iter().position(|x| *x == w).and_then(|i| words.get(i + 1)).copied();
        let (Some(mac), Some(dst), Some(source)) = (words.first(), after("dst"), after("source")) else { continue };
        out.entry(source.to_string()).or_default().insert((mac.to_string(), dst.to_string()));
    }
    out
}

/// The FDB entries the store's listing means for a VTEP at `own`: every other VTEP's
/// registration (a flood entry) and every MAC behind another VTEP.
pub fn store_expected(pairs: &[(String, Vec<u8>)], own: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (k, v) in pairs {
        let Some(rest) = k.strip_prefix(PREFIX) else { continue };
        if let Some(ip) = rest.strip_prefix("vtep/") {
            if ip != own {
                out.insert(("00:00:00:00:00:00".to_string(), ip.to_string()));
            }
        } else if let Some(mac) = rest.strip_prefix("mac/") {
            let value: serde_json::Value = serde_json::from_slice(v).unwrap_or_default();
            if let Some(vtep) = value["vtep"].as_str() {
                if vtep != own {
                    out.insert((mac.to_string(), vtep.to_string()));
                }
            }
        }
    }
    out
}
