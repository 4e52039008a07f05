//! The watcher: one thread that keeps a VNI's FDB in step with a cluster store
//! ([`Store`]), the same on every store:
//!
//! - the first poll is a full listing; later polls wait for changes (Consul: a
//!   blocking query on the last index; etcd: a watch stream from the next revision);
//! - after an error the store comes back as it can without losing anything: Consul
//!   with a full listing, whose diff against what it said before removes entries
//!   deleted while we were away (resync); etcd by resuming its watch from the next
//!   revision, which replays every change since;
//! - a store that loses its position (Consul's index going backwards, etcd compacting
//!   past the watch's revision) answers a full listing again, logged as a resync;
//! - polls are rate-limited by a token bucket (bursts of `burst`, refilled at one per
//!   `min_interval`): isolated changes go through at once, sustained churn is
//!   coalesced into fewer, larger answers; errors back off exponentially with full
//!   jitter, up to `max_backoff`;
//! - on errors the last known entries stay in the table: traffic keeps flowing.
//!
//! Every answer goes through a [`View`], which parses each key once and yields the
//! MACs whose remotes changed; they are handed to a [`Sink`] in one call (the data
//! plane applies them as one batch, one snapshot publish). Keys whose value is
//! malformed are skipped, counted and logged once by name.
//!
//! The log says one line per state change: connected (with the entries resynced),
//! lost, still unreachable, resynced after a reset; the etcd backend adds the
//! endpoint it failed over to.

use super::schema::Keys;
use super::view::View;
use super::{Store, StoreError, Update};
use crate::entry::Remote;
use crate::mac::Mac;
use crate::validate::StoreRules;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One MAC whose store-sourced remotes changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub mac: Mac,
    /// The store had entries for this MAC before this change.
    pub existed: bool,
    /// The MAC's remotes now; empty means the store no longer has it.
    pub remotes: BTreeSet<Remote>,
}

/// Where the watcher's changes go (the data plane's FDB, or a test's record).
pub trait Sink: Send + 'static {
    /// Applies one answer's changes atomically (readers see all or none).
    fn apply(&mut self, changes: &[Change]);

    /// With [`WatchConfig::local`] set, called after every answer with the MACs whose
    /// keys point at this node (the all-zeros MAC: its VTEP registration), from a
    /// listing asked for at `listed_at`. The advertiser uses it to notice its keys
    /// vanishing.
    fn own(&mut self, _macs: BTreeSet<Mac>, _listed_at: Instant) {}
}

impl<F: FnMut(&[Change]) + Send + 'static> Sink for F {
    fn apply(&mut self, changes: &[Change]) {
        self(changes)
    }
}

/// Tunables; [`WatchConfig::new`] has the defaults.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub keys: Keys,
    /// This node's VTEP address: entries pointing at it are local, not installed.
    pub local: Option<IpAddr>,
    /// How long one poll may wait for a change (Consul caps it at 10 minutes).
    pub wait: Duration,
    pub min_interval: Duration,
    pub burst: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// What a value must satisfy to reach the FDB ([`crate::validate`]).
    pub rules: StoreRules,
}

impl WatchConfig {
    pub fn new(keys: Keys) -> WatchConfig {
        WatchConfig {
            keys,
            local: None,
            wait: Duration::from_secs(60),
            min_interval: Duration::from_millis(20),
            burst: 10,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            rules: StoreRules::default(),
        }
    }
}

/// What the watcher has done, readable while it runs.
#[derive(Debug, Default)]
pub struct WatchStats {
    pub connected: AtomicBool,
    /// Full listings applied after (re)connecting.
    pub resyncs: AtomicU64,
    /// Answers received and handed to the sink.
    pub answers: AtomicU64,
    /// MAC changes handed to the sink.
    pub changes: AtomicU64,
    /// Keys skipped now as malformed or invalid ([`crate::validate`]).
    pub skipped: AtomicU64,
    /// Keys refused now because the view already held [`StoreRules::max_entries`]
    /// entries.
    pub capped: AtomicU64,
    /// Failed queries.
    pub errors: AtomicU64,
    /// Watch positions lost (Consul's index going backwards, etcd compacting past the
    /// watch's revision); each is followed by a full listing.
    pub index_resets: AtomicU64,
    /// Entries from the store in the table now.
    pub entries: AtomicU64,
}

/// A running watcher. Dropping it stops the thread after its current query.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    stats: Arc<WatchStats>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub fn spawn(store: impl Store, cfg: WatchConfig, sink: impl Sink) -> std::io::Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WatchStats::default());
        let (s, st) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name(format!("{}-watch", store.kind()))
            .spawn(move || run(store, cfg, sink, &s, &st))?;
        Ok(Watcher { stop, stats, thread: Some(thread) })
    }

    pub fn stats(&self) -> &Arc<WatchStats> {
        &self.stats
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // A blocking query may hold the thread for up to `wait`; it exits when it
        // returns. Nobody needs to wait for it: its last diff is harmless.
        drop(self.thread.take());
    }
}

/// Allows `burst` queries at once, then one per `interval`.
struct TokenBucket {
    burst: f64,
    per_sec: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(burst: u32, interval: Duration) -> TokenBucket {
        let per_sec = 1.0 / interval.as_secs_f64().max(1e-6);
        TokenBucket { burst: burst.max(1) as f64, per_sec, tokens: burst.max(1) as f64, at: Instant::now() }
    }

    /// Takes a token, sleeping until one is there.
    fn take(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.per_sec).min(self.burst);
        self.at = now;
        if self.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec);
            std::thread::sleep(wait);
            self.tokens = 1.0;
            self.at = Instant::now();
        }
        self.tokens -= 1.0;
    }
}

/// Exponential backoff with full jitter.
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    seed: u64,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        let seed =
            Instant::now().elapsed().as_nanos() as u64 ^ (std::process::id() as u64) << 32 ^ 0x9e37_79b9_7f4a_7c15;
        Backoff { min, max, next: min, seed: seed | 1 }
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    /// The next delay: uniform in [min, current cap]; the cap doubles each time.
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let cap = self.next;
        self.next = (self.next * 2).min(self.max);
        let span = cap.saturating_sub(self.min).as_micros() as u64;
        self.min + Duration::from_micros(if span == 0 { 0 } else { self.seed % (span + 1) })
    }
}

/// Sleeps up to `d`, waking early when `stop` is set.
pub(crate) fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let Some(left) = end.checked_duration_since(Instant::now()) else { return };
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

fn run<S: Store>(mut store: S, cfg: WatchConfig, mut sink: impl Sink, stop: &AtomicBool, stats: &WatchStats) {
    let prefix = cfg.keys.vni_prefix();
    let kind = store.kind();
    let mut view = View::new(cfg.keys.clone(), cfg.local, kind).with_rules(cfg.rules.clone());
    let mut resync = true;
    let mut connected = false;
    let mut ever_connected = false;
    let mut reported_error = false;
    let mut endpoint = store.endpoint();
    let mut backoff = Backoff::new(cfg.min_backoff, cfg.max_backoff);
    let mut limiter = TokenBucket::new(cfg.burst, cfg.min_interval);

    while !stop.load(Ordering::Relaxed) {
        limiter.take();
        let listed_at = Instant::now();
        let poll = match store.poll(&prefix, resync, cfg.wait) {
            Ok(p) => p,
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                if connected || !reported_error {
                    log_lost(kind, &endpoint, &e, connected, ever_connected, view.entries());
                }
                connected = false;
                reported_error = true;
                stats.connected.store(false, Ordering::Relaxed);
                // The store decides how to come back: Consul lists everything again,
                // etcd resumes its watch from the next revision (or resyncs if that
                // was compacted meanwhile).
                sleep_unless(stop, backoff.next_delay());
                continue;
            }
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        backoff.reset();
        resync = false;
        let full = matches!(poll.update, Update::Full(_));
        if let Some(why) = &poll.reset {
            stats.index_resets.fetch_add(1, Ordering::Relaxed);
            log::info!("{kind}: {why}");
        }

        let changes = view.apply(&poll.update);
        let skipped = view.skipped() as u64;
        stats.skipped.store(skipped, Ordering::Relaxed);
        stats.capped.store(view.capped() as u64, Ordering::Relaxed);
        if !changes.is_empty() {
            sink.apply(&changes);
            stats.changes.fetch_add(changes.len() as u64, Ordering::Relaxed);
        }
        if cfg.local.is_some() {
            sink.own(view.own(), listed_at);
        }
        stats.entries.store(view.entries() as u64, Ordering::Relaxed);
        // Counted once the sink has the answer: whoever sees `answers` move sees the
        // table that answer made.
        stats.answers.fetch_add(1, Ordering::Release);

        endpoint = store.endpoint();
        let malformed = if skipped > 0 { format!(" ({skipped} malformed keys skipped)") } else { String::new() };
        if !connected {
            connected = true;
            ever_connected = true;
            reported_error = false;
            stats.connected.store(true, Ordering::Relaxed);
            if full {
                stats.resyncs.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "{kind}: connected to {endpoint}, resynced {prefix} with {} entries{malformed}",
                    view.entries()
                );
            } else {
                log::info!("{kind}: connected to {endpoint}, resumed watching {prefix} ({} entries)", view.entries());
            }
        } else if full && poll.reset.is_some() {
            stats.resyncs.fetch_add(1, Ordering::Relaxed);
            log::info!("{kind}: resynced {prefix} with {} entries{malformed}", view.entries());
        }
    }
}

fn log_lost(kind: &str, endpoint: &str, e: &StoreError, connected: bool, ever: bool, entries: usize) {
    if connected {
        log::warn!("{kind}: lost {endpoint} ({e}); keeping the last {entries} entries and retrying");
    } else if ever {
        log::warn!("{kind}: {endpoint} still unreachable ({e}); retrying");
    } else {
        log::warn!("{kind}: cannot reach {endpoint} ({e}); running on static entries and retrying");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_allows_a_burst_then_paces() {
        let mut b = TokenBucket::new(5, Duration::from_millis(20));
        let start = Instant::now();
        for _ in 0..5 {
            b.take();
        }
        assert!(start.elapsed() < Duration::from_millis(15), "burst was paced: {:?}", start.elapsed());
        for _ in 0..5 {
            b.take();
        }
        assert!(start.elapsed() >= Duration::from_millis(90), "not paced after the burst: {:?}", start.elapsed());
    }

    #[test]
    fn backoff_grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut max_seen = Duration::ZERO;
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_secs(2), "{d:?}");
            max_seen = max_seen.max(d);
        }
        assert!(max_seen > Duration::from_millis(400), "never grew: {max_seen:?}");
        b.reset();
        assert!(b.next_delay() == Duration::from_millis(100));
    }
}
