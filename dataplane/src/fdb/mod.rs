//! The FDB: which remote VTEP(s) each inner MAC lives behind. Hot-path readers never
//! block and never allocate.
//!
//! # Structure
//! Read-copy-update. Writers (control socket, Consul, `--fdb` files, learning) take a
//! mutex that only writers contend for, change the *master* table, and build a fresh
//! immutable [`FdbSnapshot`], which they publish with one atomic pointer swap
//! (`arc-swap`). Workers call [`FdbTable::snapshot`] once per batch: a lock-free load
//! that never waits for a writer, so lookups cost one hash probe in a plain
//! `HashMap<u64, Slot>` keyed by the MAC packed into a `u64`, hashed with [`MacHasher`]
//! (one folded multiply with a per-table random seed). `docs/FDB.md` has the
//! measurements (RCU snapshot vs `dashmap`) that chose this.
//!
//! Publishing costs O(entries) (the snapshot is rebuilt); it happens at most once per
//! `apply`/`apply_batch` call and once per [`FdbTable::maintain`] tick (the control
//! loop's, at most 50 ms apart).
//! Old snapshots are freed on the writer side: a publish keeps the previous snapshot
//! until no reader still holds it, so a worker dropping its `Guard` never frees a table.
//!
//! # Sources
//! Every [`Source`] has its own layer per MAC. The highest layer that has the MAC
//! (Static > Consul > Learned) is what the data plane uses; deleting it reveals the
//! next. `bridge fdb` operations act on the layer of the source that issues them, so
//! `add` reports "exists" only when *that* source already has the MAC.
//! The all-zeros MAC is the flood (head-end replication) list, with the same layering.
//!
//! # Learning and ageing
//! Decap calls [`FdbSnapshot::needs_learning`]; on `true` it queues the event with
//! [`FdbTable::learn`] (a bounded lock-free queue). [`FdbTable::maintain`] drains the
//! queue on the control thread: unknown MACs are learned, moved MACs move, MACs that
//! Static or Consul pin are left alone (kernel semantics). A learned entry's last-seen
//! time (seconds since the table was created, an `AtomicU32` shared by all snapshots)
//! is refreshed by `needs_learning`; `maintain` expires learned entries idle longer
//! than the ageing time (0 disables ageing, as in the kernel).
//!
//! [`Remote`] is `vxdp_control::entry::Remote` itself: it is `Copy` (32 bytes), so
//! snapshots store it inline and the hot path reads it without conversion.
#![forbid(unsafe_code)]

use arc_swap::{ArcSwap, Guard};
use crossbeam_queue::ArrayQueue;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vxdp_control::ctl::FdbShowEntry;
use vxdp_control::entry::{FdbOp, FdbRequest, Source};
use vxdp_control::mac::Mac;

pub use vxdp_control::entry::Remote;

mod follow;
mod hash;
mod master;
mod snapshot;

pub use follow::{FdbFollower, Followed};
use hash::key_mac;
pub use hash::{mac_key, MacBuildHasher, MacHasher};
pub use master::LearnLimits;
use master::{ChangeLog, Layers, Learn, Master, Refusal};
use snapshot::clock_secs;
pub use snapshot::{FdbSnapshot, Snoop};

/// `--max-fdb`'s default: the express path's FDB map size, so every entry can be served
/// in XDP, and a snapshot rebuild (O(entries), at most once per control-loop tick) stays
/// within a few milliseconds (docs/FDB.md: 2-6 ms at 100,000). The kernel's default is
/// unlimited, which lets one spoofing source grow the table without bound.
pub const DEFAULT_MAX_FDB: usize = vxdp_common::express::MAX_FDB as usize;

/// Kernel default ageing time (`ageing 300`).
pub const DEFAULT_AGEING: Duration = Duration::from_secs(300);
/// Learning events that can wait for the control thread; more are dropped until the next
/// [`FdbTable::maintain`] (the worker counts them as `learn_queue_full`).
pub const LEARN_QUEUE_LEN: usize = 4096;
/// How often, at most, `maintain` scans for expired learned entries.
const AGEING_SCAN_INTERVAL_SECS: u32 = 1;

/// FDB errors; each names the MAC (and remote) concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FdbError {
    #[error("fdb entry {mac} already exists ({layer})")]
    Exists { mac: Mac, layer: Source },
    #[error("no fdb entry for {mac} ({layer})")]
    NotFound { mac: Mac, layer: Source },
    #[error("fdb entry {mac} ({layer}) has no remote {remote}")]
    RemoteNotFound { mac: Mac, remote: Remote, layer: Source },
    #[error("fdb {op} {mac} needs a remote (dst)")]
    MissingRemote { op: FdbOp, mac: Mac },
    #[error("cannot learn {mac}: only unicast, non-zero MACs are learned")]
    NotLearnable { mac: Mac },
    /// Refused from every source alike (`vxdp fdb`, `--fdb`, Consul) until vxdp has an
    /// IPv6 underlay: such an entry could only blackhole its frames.
    #[error("fdb {mac} dst {ip}: IPv6 underlay is not supported yet (remote VTEPs must be IPv4)")]
    Ipv6Underlay { mac: Mac, ip: IpAddr },
    #[error("{} of {total} fdb changes failed; first: {}", failed.len(), failed[0].1)]
    Batch { total: usize, failed: Vec<(usize, FdbError)> },
}

/// MACs whose entries changed between two [`FdbTable::take_changes`] calls.
#[derive(Debug, Default)]
pub struct FdbChanges {
    /// Changed MACs, possibly repeated, in no particular order.
    pub macs: Vec<[u8; 6]>,
    /// More changed than the log keeps: `macs` is empty and everything must be resynced.
    pub overflow: bool,
}

/// The FDB, shared as `Arc<FdbTable>` by workers, the control socket and learning.
pub struct FdbTable {
    current: ArcSwap<FdbSnapshot>,
    master: Mutex<Master>,
    learned: ArrayQueue<([u8; 6], IpAddr)>,
    learning: bool,
    ageing: Duration,
    epoch: Instant,
    /// The table clock as of the last [`FdbTable::maintain`] (the control loop's tick):
    /// what workers pass to `needs_learning` without reading the system clock.
    clock: AtomicU32,
    hasher: MacBuildHasher,
    /// Learning events refused by `--learning-from known` (the source is not a known VTEP).
    learn_refused: AtomicU64,
    /// Learning events refused by the [`LearnLimits`], by [`Refusal`] (Full, RateLimited,
    /// TooManyRemotes).
    bounded: [AtomicU64; 3],
    /// Table clock of the last warning per [`Refusal`] (logged at most once a minute each).
    warned_at: Mutex<[Option<u32>; 3]>,
}

impl FdbTable {
    /// An empty table. `ageing` of zero disables ageing.
    pub fn new(learning: bool, ageing: Duration) -> Self {
        Self::with_epoch(learning, ageing, Instant::now())
    }

    /// An empty table whose clock starts at `epoch` (tests inject a clock this way).
    pub fn with_epoch(learning: bool, ageing: Duration, epoch: Instant) -> Self {
        let hasher = MacBuildHasher::default();
        let master = Master {
            entries: HashMap::with_hasher(hasher),
            retired: Vec::new(),
            last_ageing_scan: 0,
            learn_sources: None,
            limits: LearnLimits::default(),
            learned_remotes: HashMap::new(),
            rate: HashMap::new(),
            rate_window: 0,
            changed: ChangeLog::default(),
        };
        let empty = master.build(hasher, learning, epoch);
        FdbTable {
            current: ArcSwap::from_pointee(empty),
            master: Mutex::new(master),
            learned: ArrayQueue::new(LEARN_QUEUE_LEN),
            learning,
            ageing,
            epoch,
            clock: AtomicU32::new(0),
            hasher,
            learn_refused: AtomicU64::new(0),
            bounded: Default::default(),
            warned_at: Mutex::new([None; 3]),
        }
    }

    /// The table clock (whole seconds since creation) as of the control loop's last
    /// [`FdbTable::maintain`], at most one tick old: one relaxed load, no clock read,
    /// and the same time base as ageing.
    #[inline]
    pub fn coarse_now_secs(&self) -> u32 {
        self.clock.load(Ordering::Relaxed)
    }

    pub fn learning(&self) -> bool {
        self.learning
    }

    pub fn ageing(&self) -> Duration {
        self.ageing
    }

    /// Hot path: the current snapshot; call once per batch. Lock-free, never blocks on
    /// writers.
    #[inline]
    pub fn snapshot(&self) -> Guard<Arc<FdbSnapshot>> {
        self.current.load()
    }

    /// The published snapshot and the MACs changed since the last call (drained): every
    /// change logged is in the snapshot, since both are read under the writers' lock.
    /// For the express mirror, the one consumer; `overflow` means "resync everything".
    pub fn take_changes(&self) -> (Arc<FdbSnapshot>, FdbChanges) {
        let mut master = self.lock();
        let log = std::mem::take(&mut master.changed);
        (self.current.load_full(), FdbChanges { macs: log.macs, overflow: log.overflow })
    }

    /// The table clock (see [`FdbSnapshot::now_secs`]).
    pub fn now_secs(&self, now: Instant) -> u32 {
        clock_secs(self.epoch, now)
    }

    fn lock(&self) -> MutexGuard<'_, Master> {
        self.master.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Build and publish a snapshot from `master`; free retired snapshots no reader holds.
    fn publish(&self, master: &mut Master) {
        let next = Arc::new(master.build(self.hasher, self.learning, self.epoch));
        let old = self.current.swap(next);
        master.retired.push(old);
        master.retired.retain(|s| Arc::strong_count(s) > 1);
    }

    /// Control plane: apply a `bridge fdb` request for a source; publishes a new
    /// snapshot when it succeeds.
    pub fn apply(&self, req: &FdbRequest, source: Source) -> Result<(), FdbError> {
        let now = self.now_secs(Instant::now());
        let mut master = self.lock();
        master.apply(req, source, now)?;
        master.changed.note(req.mac.0);
        log::info!("fdb {} {} {} ({source})", req.op, req.mac, req.remote.map(|r| r.to_string()).unwrap_or_default());
        self.publish(&mut master);
        Ok(())
    }

    /// Apply many changes and publish once (Consul bursts, `--fdb` files). Every request
    /// is attempted in order; the ones that succeed are published even if others fail,
    /// and the failures come back together in [`FdbError::Batch`] (with their indices).
    pub fn apply_batch(&self, reqs: &[(FdbRequest, Source)]) -> Result<(), FdbError> {
        let now = self.now_secs(Instant::now());
        let mut master = self.lock();
        let mut failed = Vec::new();
        for (i, (req, source)) in reqs.iter().enumerate() {
            match master.apply(req, *source, now) {
                Ok(()) => master.changed.note(req.mac.0),
                Err(e) => failed.push((i, e)),
            }
        }
        if failed.len() < reqs.len() {
            log::info!("fdb: applied {} of {} changes", reqs.len() - failed.len(), reqs.len());
            self.publish(&mut master);
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(FdbError::Batch { total: reqs.len(), failed })
        }
    }

    /// The entries the data plane uses (the deciding layer of each MAC), one per remote,
    /// sorted by MAC; the flood list first.
    pub fn show(&self) -> Vec<FdbShowEntry> {
        let now = self.now_secs(Instant::now());
        let master = self.lock();
        let mut keys: Vec<(Mac, &Layers)> = master.entries.iter().map(|(k, l)| (key_mac(*k), l)).collect();
        keys.sort_by_key(|(mac, _)| *mac);
        let mut out = Vec::new();
        for (mac, layers) in keys {
            if let Some((source, layer)) = layers.effective() {
                let age_secs = layer.seen.as_ref().map(|s| u64::from(now.saturating_sub(s.load(Ordering::Relaxed))));
                out.extend(layer.remotes.iter().map(|remote| FdbShowEntry { mac, remote: *remote, source, age_secs }));
            }
        }
        out
    }

    /// Entries (MACs, the flood entry included) by the source that decides them, in
    /// [`Source::BY_PRECEDENCE`] order (for `--metrics`).
    pub fn entries_by_source(&self) -> [(Source, u64); 3] {
        let mut out = Source::BY_PRECEDENCE.map(|s| (s, 0u64));
        for layers in self.lock().entries.values() {
            if let Some((source, _)) = layers.effective() {
                if let Some(slot) = out.iter_mut().find(|(s, _)| *s == source) {
                    slot.1 += 1;
                }
            }
        }
        out
    }

    /// Every distinct remote VTEP address in use (for next-hop resolution), sorted.
    pub fn remote_ips(&self) -> Vec<IpAddr> {
        let snap = self.snapshot();
        let set: HashSet<IpAddr> = snap.remotes.iter().map(|r| r.ip).collect();
        let mut ips: Vec<IpAddr> = set.into_iter().collect();
        ips.sort();
        ips
    }

    /// Hot path (decap): hand a learned (inner source MAC, outer source IP) to the
    /// control thread. Lock-free bounded queue; returns false if full or learning is off
    /// (the worker counts a full queue as `learn_queue_full`). No allocation, no syscall.
    #[inline]
    pub fn learn(&self, mac: [u8; 6], vtep: IpAddr) -> bool {
        self.learning && self.learned.push((mac, vtep)).is_ok()
    }

    /// `--learning-from known`: learning events are taken only from these VTEPs (the
    /// known ones, which the control loop keeps current); `None` takes any (the default).
    pub fn set_learn_sources(&self, allowed: Option<HashSet<IpAddr>>) {
        self.lock().learn_sources = allowed;
    }

    /// The bounds on learning (`--max-fdb` and the learning limits); the default is
    /// unlimited.
    pub fn set_limits(&self, limits: LearnLimits) {
        self.lock().limits = limits;
    }

    /// Learning events refused by the bounds so far: (table full, rate-limited, too many
    /// learned remotes).
    pub fn learn_bounded(&self) -> (u64, u64, u64) {
        let n = |i: usize| self.bounded[i].load(Ordering::Relaxed);
        (n(0), n(1), n(2))
    }

    /// Distinct remote VTEPs that learned entries point at.
    pub fn learned_remotes(&self) -> usize {
        self.lock().learned_remote_count()
    }

    /// Learning events refused because their source is not a known VTEP.
    pub fn learn_refused(&self) -> u64 {
        self.learn_refused.load(Ordering::Relaxed)
    }

    /// Control thread, every control-loop tick (at most 50 ms apart): drain learning events (never overriding Static or
    /// Consul entries), expire learned entries idle longer than the ageing time (scanned
    /// at most once a second), publish at most once. Returns how many entries changed.
    pub fn maintain(&self, now: Instant) -> usize {
        let now = self.now_secs(now);
        self.clock.store(now, Ordering::Relaxed);
        let mut master = self.lock();
        let mut changed = 0;
        let mut refused = 0;
        let mut bounded = [0u64; 3];
        while let Some((mac, vtep)) = self.learned.pop() {
            if master.learn_sources.as_ref().is_some_and(|allowed| !allowed.contains(&vtep)) {
                refused += 1;
                continue;
            }
            match master.learn(mac, vtep, now) {
                Learn::Unchanged => {}
                Learn::Changed => {
                    master.changed.note(mac);
                    changed += 1;
                }
                Learn::Refused(why) => bounded[why as usize] += 1,
            }
        }
        if refused > 0 {
            self.learn_refused.fetch_add(refused, Ordering::Relaxed);
        }
        self.count_bounded(&bounded, &master, now);
        let ageing_secs = self.ageing.as_secs().min(u32::MAX as u64) as u32;
        if !self.ageing.is_zero() && now.wrapping_sub(master.last_ageing_scan) >= AGEING_SCAN_INTERVAL_SECS {
            master.last_ageing_scan = now;
            let expired = master.expire(now, ageing_secs);
            if expired > 0 {
                log::info!("fdb: {expired} learned entries aged out");
            }
            changed += expired;
        }
        if changed > 0 {
            self.publish(&mut master);
        } else {
            master.retired.retain(|s| Arc::strong_count(s) > 1);
        }
        changed
    }
}

impl FdbTable {
    /// Adds this tick's refusals to the counters and says so in the log, at most once a
    /// minute per bound (a flood must not become a flood of log lines).
    fn count_bounded(&self, bounded: &[u64; 3], master: &Master, now: u32) {
        let mut warned = self.warned_at.lock().unwrap_or_else(|e| e.into_inner());
        for (i, why) in [Refusal::Full, Refusal::RateLimited, Refusal::TooManyRemotes].into_iter().enumerate() {
            if bounded[i] == 0 {
                continue;
            }
            self.bounded[i].fetch_add(bounded[i], Ordering::Relaxed);
            if warned[i].is_some_and(|t| now.saturating_sub(t) < 60) {
                continue;
            }
            warned[i] = Some(now);
            let l = master.limits;
            match why {
                Refusal::Full => log::warn!(
                    "fdb: {} MACs, the --max-fdb limit: learning refuses new MACs (counted fdb_full) until \
                     entries age out",
                    l.max_entries
                ),
                Refusal::RateLimited => log::warn!(
                    "fdb: a remote taught more than {} new or moved MACs in one second (--learn-rate): the rest \
                     are refused (counted learn_rate_limited)",
                    l.per_source_per_sec
                ),
                Refusal::TooManyRemotes => log::warn!(
                    "fdb: learned entries point at {} remote VTEPs, the --max-learned-remotes limit: MACs \
                     behind new remotes are refused (counted learn_remotes_capped)",
                    l.max_learned_remotes
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::atomic::AtomicBool;

    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn r(last: u8) -> Remote {
        Remote::new(ip(last))
    }

    fn req(op: FdbOp, m: &str, remote: Option<Remote>) -> FdbRequest {
        FdbRequest::new(op, mac(m), remote)
    }

    const A: &str = "02:00:00:00:00:0a";
    const B: &str = "02:00:00:00:00:0b";

    fn table() -> FdbTable {
        FdbTable::new(true, DEFAULT_AGEING)
    }

    #[test]
    fn add_append_replace_del_follow_bridge_semantics() {
        let t = table();
        let s = Source::Static;
        t.apply(&req(FdbOp::Add, A, Some(r(1))), s).unwrap();
        assert_eq!(t.apply(&req(FdbOp::Add, A, Some(r(2))), s), Err(FdbError::Exists { mac: mac(A), layer: s }));
        t.apply(&req(FdbOp::Append, A, Some(r(2))), s).unwrap();
        t.apply(&req(FdbOp::Append, A, Some(r(2))), s).unwrap(); // already there: no-op
        assert_eq!(t.snapshot().lookup(&mac(A).0), Some(&[r(1), r(2)][..]));
        t.apply(&req(FdbOp::Replace, A, Some(r(3))), s).unwrap();
        assert_eq!(t.snapshot().lookup(&mac(A).0), Some(&[r(3)][..]));
        t.apply(&req(FdbOp::Replace, B, Some(r(4))), s).unwrap(); // creates
        assert_eq!(t.snapshot().lookup(&mac(B).0), Some(&[r(4)][..]));
        assert_eq!(
            t.apply(&req(FdbOp::Del, A, Some(r(9))), s),
            Err(FdbError::RemoteNotFound { mac: mac(A), remote: r(9), layer: s })
        );
        t.apply(&req(FdbOp::Del, A, Some(r(3))), s).unwrap(); // last remote: entry goes
        assert_eq!(t.snapshot().lookup(&mac(A).0), None);
        t.apply(&req(FdbOp::Del, B, None), s).unwrap();
        assert_eq!(t.apply(&req(FdbOp::Del, B, None), s), Err(FdbError::NotFound { mac: mac(B), layer: s }));
        assert_eq!(t.apply(&req(FdbOp::Add, B, None), s), Err(FdbError::MissingRemote { op: FdbOp::Add, mac: mac(B) }));
        assert!(t.snapshot().is_empty());
    }

    #[test]
    fn ipv6_remotes_are_refused_from_every_source() {
        let t = table();
        let v6 = Remote::new("2001:db8::1".parse().unwrap());
        for source in Source::BY_PRECEDENCE {
            for op in [FdbOp::Add, FdbOp::Append, FdbOp::Replace] {
                let e = t.apply(&req(op, "02:00:00:00:00:01", Some(v6)), source).unwrap_err();
                assert!(matches!(e, FdbError::Ipv6Underlay { .. }), "{e}");
                assert!(e.to_string().contains("dst 2001:db8::1: IPv6 underlay is not supported"), "{e}");
            }
        }
        let batch = [(req(FdbOp::Append, "00:00:00:00:00:00", Some(v6)), Source::Store)];
        assert!(t.apply_batch(&batch).unwrap_err().to_string().contains("IPv6 underlay"));
        assert!(t.show().is_empty() && t.remote_ips().is_empty(), "nothing to re-resolve");
    }

    #[test]
    fn zero_mac_is_the_flood_list() {
        let t = table();
        for i in 1..=3 {
            t.apply(&req(FdbOp::Append, "00:00:00:00:00:00", Some(r(i))), Source::Static).unwrap();
        }
        let snap = t.snapshot();
        assert_eq!(snap.flood(), &[r(1), r(2), r(3)]);
        assert_eq!(snap.lookup(&mac(A).0), None);
        assert_eq!(snap.len(), 1);
        t.apply(&req(FdbOp::Add, A, Some(r(4))), Source::Static).unwrap();
        assert_eq!(t.remote_ips(), vec![ip(1), ip(2), ip(3), ip(4)]);
    }

    #[test]
    fn higher_layers_win_and_deleting_them_reveals_lower_ones() {
        let t = table();
        t.apply(&req(FdbOp::Add, A, Some(r(1))), Source::Learned).unwrap();
        t.apply(&req(FdbOp::Add, A, Some(r(2))), Source::Store).unwrap(); // overrides learned
        assert_eq!(t.snapshot().lookup(&mac(A).0), Some(&[r(2)][..]));
        t.apply(&req(FdbOp::Add, A, Some(r(3))), Source::Static).unwrap(); // overrides consul
        assert_eq!(t.snapshot().lookup(&mac(A).0), Some(&[r(3)][..]));
        // A lower source changing its layer does not override the higher one.
        t.apply(&req(FdbOp::Replace, A, Some(r(4))), Source::Store).unwrap();
        assert_eq!(t.snapshot().lookup(&mac(A).0), Some(&[r(3)][..]));
        let show = t.show();
        assert_eq!(show.len(), 1);
        assert_eq!((show[0].remote, show[0].source, show[0].age_secs), (r(3), Source::Static, None));
        // Deleting reveals the next layer down.
        t.apply(&req(FdbOp::Del, A, None), Source::Static).unwrap();
        assert_eq!(t.snapshot().lookup(&mac(A).0), Some(&[r(4)][..]));
        t.apply(&req(FdbOp::Del, A, None), Source::Store).unwrap();
        assert_eq!(t.snapshot().lookup(&mac(A).0), Some(&[r(1)][..]));
        assert_eq!(t.show()[0].source, Source::Learned);
        // Deleting a layer the source does not have fails and changes nothing.
        assert_eq!(
            t.apply(&req(FdbOp::Del, A, None), Source::Store),
            Err(FdbError::NotFound { mac: mac(A), layer: Source::Store })
        );
        assert_eq!(t.snapshot().lookup(&mac(A).0), Some(&[r(1)][..]));
    }

    #[test]
    fn batch_publishes_once_and_reports_failures() {
        let t = table();
        let before = Arc::as_ptr(&t.snapshot());
        let err = t
            .apply_batch(&[
                (req(FdbOp::Add, A, Some(r(1))), Source::Store),
                (req(FdbOp::Del, B, None), Source::Store),
                (req(FdbOp::Add, B, Some(r(2))), Source::Store),
            ])
            .unwrap_err();
        match err {
            FdbError::Batch { total: 3, failed } => {
                assert_eq!(failed, vec![(1, FdbError::NotFound { mac: mac(B), layer: Source::Store })])
            }
            other => panic!("{other:?}"),
        }
        let snap = t.snapshot();
        assert_ne!(Arc::as_ptr(&snap), before);
        assert_eq!(snap.len(), 2);
    }

    #[test]
    fn the_coarse_clock_is_the_table_clock_as_of_the_last_maintain() {
        let epoch = Instant::now();
        let t = FdbTable::with_epoch(true, DEFAULT_AGEING, epoch);
        assert_eq!(t.coarse_now_secs(), 0);
        t.maintain(epoch + Duration::from_millis(7_400));
        assert_eq!(t.coarse_now_secs(), 7);
        assert_eq!(t.coarse_now_secs(), t.now_secs(epoch + Duration::from_millis(7_400)));
        t.maintain(epoch + Duration::from_secs(301));
        assert_eq!(t.coarse_now_secs(), 301);
    }

    #[test]
    fn learning_learns_moves_and_respects_pinned_entries() {
        let epoch = Instant::now();
        let t = FdbTable::with_epoch(true, DEFAULT_AGEING, epoch);
        let now = t.now_secs(epoch);
        let (a, b) = (mac(A).0, mac(B).0);
        assert!(t.snapshot().needs_learning(&a, ip(1), now));
        assert!(t.learn(a, ip(1)));
        assert_eq!(t.maintain(epoch), 1);
        assert_eq!(t.snapshot().lookup(&a), Some(&[r(1)][..]));
        assert!(!t.snapshot().needs_learning(&a, ip(1), now));
        // Moved behind another VTEP.
        assert!(t.snapshot().needs_learning(&a, ip(2), now));
        t.learn(a, ip(2));
        assert_eq!(t.maintain(epoch), 1);
        assert_eq!(t.snapshot().lookup(&a), Some(&[r(2)][..]));
        // Pinned by Consul: never learned, never moved.
        t.apply(&req(FdbOp::Add, B, Some(r(5))), Source::Store).unwrap();
        assert!(!t.snapshot().needs_learning(&b, ip(6), now));
        t.learn(b, ip(6)); // even if queued anyway
        assert_eq!(t.maintain(epoch), 0);
        assert_eq!(t.snapshot().lookup(&b), Some(&[r(5)][..]));
        // Multicast and zero source MACs are never learned.
        let mc = mac("01:00:5e:00:00:01").0;
        assert!(!t.snapshot().needs_learning(&mc, ip(1), now));
        assert!(!t.snapshot().needs_learning(&[0; 6], ip(1), now));
        t.learn(mc, ip(1));
        assert_eq!(t.maintain(epoch), 0);
        assert!(matches!(
            t.apply(&req(FdbOp::Add, "01:00:5e:00:00:01", Some(r(1))), Source::Learned),
            Err(FdbError::NotLearnable { .. })
        ));
    }

    #[test]
    fn learning_from_known_takes_only_known_vteps() {
        let t = table();
        t.set_learn_sources(Some([ip(1)].into()));
        t.learn(mac(A).0, ip(1));
        t.learn(mac(B).0, ip(66));
        assert_eq!(t.maintain(Instant::now()), 1);
        assert_eq!(t.snapshot().lookup(&mac(A).0), Some(&[r(1)][..]));
        assert_eq!(t.snapshot().lookup(&mac(B).0), None);
        assert_eq!(t.learn_refused(), 1);
        // Nor may an unknown source move a MAC learned from a known one.
        t.learn(mac(A).0, ip(66));
        assert_eq!(t.maintain(Instant::now()), 0);
        assert_eq!(t.snapshot().lookup(&mac(A).0), Some(&[r(1)][..]));
        assert_eq!(t.learn_refused(), 2);
        t.set_learn_sources(None);
        t.learn(mac(B).0, ip(66));
        assert_eq!(t.maintain(Instant::now()), 1);
    }

    fn m(i: u32) -> [u8; 6] {
        [2, 0x10, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]
    }

    #[test]
    fn learning_stops_at_max_fdb_and_never_refuses_or_evicts_static_entries() {
        let epoch = Instant::now();
        let t = FdbTable::with_epoch(true, Duration::from_secs(10), epoch);
        t.set_limits(LearnLimits { max_entries: 3, ..Default::default() });
        t.apply(&req(FdbOp::Add, A, Some(r(1))), Source::Static).unwrap();
        for i in 0..3 {
            t.learn(m(i), ip(2));
        }
        assert_eq!(t.maintain(epoch), 2);
        assert_eq!(t.snapshot().len(), 3);
        assert_eq!(t.learn_bounded(), (1, 0, 0));
        assert_eq!(t.snapshot().lookup(&m(2)), None);
        // Static and store entries still go in (past the limit), and stay.
        t.apply(&req(FdbOp::Add, B, Some(r(3))), Source::Store).unwrap();
        assert_eq!(t.snapshot().len(), 4);
        // A MAC already there may still move.
        t.learn(m(0), ip(4));
        assert_eq!(t.maintain(epoch), 1);
        assert_eq!(t.snapshot().lookup(&m(0)), Some(&[r(4)][..]));
        // Once learned entries age out, learning resumes.
        assert_eq!(t.maintain(epoch + Duration::from_secs(11)), 2);
        t.learn(m(2), ip(2));
        assert_eq!(t.maintain(epoch + Duration::from_secs(11)), 1);
        assert_eq!(t.snapshot().lookup(&mac(A).0), Some(&[r(1)][..]));
        assert_eq!(t.learn_bounded(), (1, 0, 0));
    }

    #[test]
    fn learning_is_rate_limited_per_source() {
        let epoch = Instant::now();
        let t = FdbTable::with_epoch(true, DEFAULT_AGEING, epoch);
        t.set_limits(LearnLimits { per_source_per_sec: 5, ..Default::default() });
        for i in 0..10 {
            t.learn(m(i), ip(1));
        }
        for i in 100..103 {
            t.learn(m(i), ip(2));
        }
        assert_eq!(t.maintain(epoch), 8, "5 from the busy source, 3 from the other");
        assert_eq!(t.learn_bounded(), (0, 5, 0));
        // The next second, the busy source may teach again.
        for i in 5..10 {
            t.learn(m(i), ip(1));
        }
        assert_eq!(t.maintain(epoch + Duration::from_secs(1)), 5);
        // Refreshing a MAC where it is costs nothing.
        for _ in 0..20 {
            t.learn(m(0), ip(1));
        }
        assert_eq!(t.maintain(epoch + Duration::from_secs(1)), 0);
        assert_eq!(t.learn_bounded(), (0, 5, 0));
    }

    #[test]
    fn distinct_learned_remotes_are_capped() {
        let epoch = Instant::now();
        let t = FdbTable::with_epoch(true, Duration::from_secs(10), epoch);
        t.set_limits(LearnLimits { max_learned_remotes: 2, ..Default::default() });
        t.learn(m(1), ip(1));
        t.learn(m(2), ip(2));
        t.learn(m(3), ip(3));
        t.learn(m(4), ip(1));
        assert_eq!(t.maintain(epoch), 3);
        assert_eq!((t.learned_remotes(), t.learn_bounded()), (2, (0, 0, 1)));
        // Moving the only MAC behind ip(2) to ip(1) frees ip(2)'s place for ip(3).
        t.learn(m(2), ip(1));
        t.learn(m(3), ip(3));
        assert_eq!(t.maintain(epoch), 2);
        assert_eq!(t.snapshot().lookup(&m(3)), Some(&[r(3)][..]));
        // Ageing frees places too; static entries do not count.
        t.apply(&req(FdbOp::Add, A, Some(r(9))), Source::Static).unwrap();
        assert_eq!(t.maintain(epoch + Duration::from_secs(11)), 4);
        assert_eq!(t.learned_remotes(), 0);
    }

    #[test]
    fn learning_off_learns_nothing() {
        let t = FdbTable::new(false, DEFAULT_AGEING);
        assert!(!t.snapshot().needs_learning(&mac(A).0, ip(1), 0));
        assert!(!t.learn(mac(A).0, ip(1)));
        assert_eq!(t.maintain(Instant::now()), 0);
    }

    #[test]
    fn learn_queue_is_bounded() {
        let t = table();
        for i in 0..LEARN_QUEUE_LEN {
            assert!(t.learn([2, 0, 0, 0, (i >> 8) as u8, i as u8], ip(1)));
        }
        assert!(!t.learn(mac(A).0, ip(1)));
        assert_eq!(t.maintain(Instant::now()), LEARN_QUEUE_LEN);
        assert_eq!(t.snapshot().len(), LEARN_QUEUE_LEN);
        assert!(t.learn(mac(A).0, ip(1)));
    }

    #[test]
    fn learned_entries_age_out_unless_refreshed() {
        let epoch = Instant::now();
        let at = |s: u64| epoch + Duration::from_secs(s);
        let t = FdbTable::with_epoch(true, Duration::from_secs(300), epoch);
        let (a, b) = (mac(A).0, mac(B).0);
        t.learn(a, ip(1));
        t.learn(b, ip(2));
        t.apply(&req(FdbOp::Add, "02:00:00:00:00:0c", Some(r(3))), Source::Static).unwrap();
        assert_eq!(t.maintain(at(0)), 2);
        // Traffic from A keeps it alive; B goes quiet.
        for s in [100, 200, 290] {
            assert!(!t.snapshot().needs_learning(&a, ip(1), t.now_secs(at(s))));
            assert_eq!(t.maintain(at(s)), 0);
        }
        let show = t.show();
        assert!(show.iter().any(|e| e.mac == mac(A) && e.source == Source::Learned && e.age_secs.is_some()));
        assert_eq!(t.maintain(at(300)), 0); // exactly the ageing time: still there
        assert_eq!(t.maintain(at(301)), 1); // B idle > 300 s
        let snap = t.snapshot();
        assert_eq!(snap.lookup(&b), None);
        assert_eq!(snap.lookup(&a), Some(&[r(1)][..]));
        assert_eq!(t.maintain(at(591)), 1); // A last seen at 290
        assert_eq!(t.snapshot().len(), 1); // the static entry never ages
    }

    #[test]
    fn zero_ageing_never_expires() {
        let epoch = Instant::now();
        let t = FdbTable::with_epoch(true, Duration::ZERO, epoch);
        t.learn(mac(A).0, ip(1));
        assert_eq!(t.maintain(epoch), 1);
        assert_eq!(t.maintain(epoch + Duration::from_secs(1_000_000)), 0);
        assert_eq!(t.snapshot().len(), 1);
    }

    #[test]
    fn old_guard_keeps_seeing_old_data() {
        let t = table();
        t.apply(&req(FdbOp::Add, A, Some(r(1))), Source::Static).unwrap();
        let old = t.snapshot();
        t.apply(&req(FdbOp::Replace, A, Some(r(2))), Source::Static).unwrap();
        t.apply(&req(FdbOp::Add, B, Some(r(3))), Source::Static).unwrap();
        assert_eq!(old.lookup(&mac(A).0), Some(&[r(1)][..]));
        assert_eq!(old.lookup(&mac(B).0), None);
        let new = t.snapshot();
        assert_eq!(new.lookup(&mac(A).0), Some(&[r(2)][..]));
        assert_eq!(new.lookup(&mac(B).0), Some(&[r(3)][..]));
        // The writer, not the reader, frees the old snapshot once nobody holds it.
        let old_arc = Guard::into_inner(old);
        drop(old_arc);
        t.apply(&req(FdbOp::Del, B, None), Source::Static).unwrap();
        assert!(t.lock().retired.iter().all(|s| Arc::strong_count(s) > 1));
    }

    #[test]
    fn readers_in_threads_see_a_writer_publish_10000_changes() {
        const MACS: u32 = 64;
        const CHANGES: u32 = 10_000;
        let m = |i: u32| Mac([2, 0, 0, 0, 0, i as u8]);
        let t = Arc::new(table());
        for i in 0..MACS {
            t.apply(&FdbRequest::new(FdbOp::Add, m(i), Some(Remote { vni: Some(0), ..r(1) })), Source::Store).unwrap();
        }
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (t, done) = (t.clone(), done.clone());
                std::thread::spawn(move || {
                    // Change number n sets MAC n % MACS to vni n: per MAC, vnis only grow.
                    let mut newest = [0u32; MACS as usize];
                    let mut snapshots = 0u64;
                    while !done.load(Ordering::Acquire) {
                        let snap = t.snapshot();
                        assert_eq!(snap.len(), MACS as usize);
                        for i in 0..MACS {
                            let remotes = snap.lookup(&m(i).0).expect("every MAC is always present");
                            assert_eq!(remotes.len(), 1);
                            let vni = remotes[0].vni.unwrap();
                            assert!(vni >= newest[i as usize], "a snapshot went backwards");
                            newest[i as usize] = vni;
                        }
                        snapshots += 1;
                    }
                    snapshots
                })
            })
            .collect();
        for n in 1..=CHANGES {
            let remote = Remote { vni: Some(n), ..r((n % 200) as u8 + 1) };
            t.apply(&FdbRequest::new(FdbOp::Replace, m(n % MACS), Some(remote)), Source::Store).unwrap();
        }
        // Eventual visibility: poll with a deadline.
        let deadline = Instant::now() + Duration::from_secs(10);
        while t.snapshot().lookup(&m(CHANGES % MACS).0).map(|r| r[0].vni) != Some(Some(CHANGES)) {
            assert!(Instant::now() < deadline, "last change never became visible");
        }
        done.store(true, Ordering::Release);
        for reader in readers {
            assert!(reader.join().unwrap() > 0);
        }
        // Only snapshots still held by someone are kept.
        t.maintain(Instant::now());
        assert!(t.lock().retired.is_empty());
    }
}
