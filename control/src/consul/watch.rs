//! The watcher: one thread that keeps a VNI's FDB in step with Consul through blocking
//! queries on the VNI's prefix, following Consul's documented rules
//! (<https://developer.hashicorp.com/consul/api-docs/features/blocking>):
//!
//! - the first query (and the first after an error) is non-blocking: it is a full
//!   listing, so the diff against what Consul said before removes entries deleted while
//!   we were away (resync);
//! - the next query blocks on the `X-Consul-Index` of the last answer, for `wait`;
//! - an index that goes backwards (snapshot restore, new cluster) resets to 0, an index
//!   below 1 is treated as 1;
//! - queries are rate-limited by a token bucket (bursts of `burst` queries, refilled
//!   at one per `min_interval`): isolated changes go through at once, sustained churn
//!   is coalesced into fewer, larger answers; errors back off exponentially with full
//!   jitter, up to `max_backoff`;
//! - on errors the last known entries stay in the table: traffic keeps flowing.
//!
//! Every answer becomes a diff against the entries that came from Consul, handed to a
//! [`Sink`] in one call (the data plane applies it as one batch, one snapshot publish).
//! Keys whose value is malformed are skipped, counted and logged once by name.

use super::client::{Client, ConsulError};
use super::schema::{diff, Desired, Keys};
use crate::entry::Remote;
use crate::mac::Mac;
use crate::validate::{StoreRules, StoreValidator};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One MAC whose Consul-sourced remotes changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub mac: Mac,
    /// Consul had entries for this MAC before this change.
    pub existed: bool,
    /// The MAC's remotes now; empty means Consul no longer has it.
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
    /// How long a blocking query may wait (Consul caps it at 10 minutes).
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
    /// Answers received.
    pub answers: AtomicU64,
    /// MAC changes handed to the sink.
    pub changes: AtomicU64,
    /// Keys skipped as malformed or invalid ([`crate::validate`]) in the last answer.
    pub skipped: AtomicU64,
    /// Entries refused in the last answer because it had more than
    /// [`StoreRules::max_entries`].
    pub capped: AtomicU64,
    /// Failed queries.
    pub errors: AtomicU64,
    /// Index resets (backwards or below 1).
    pub index_resets: AtomicU64,
    /// Entries from Consul in the table now.
    pub entries: AtomicU64,
}

/// A running watcher. Dropping it stops the thread after its current query.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    stats: Arc<WatchStats>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub fn spawn(client: Client, cfg: WatchConfig, sink: impl Sink) -> std::io::Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WatchStats::default());
        let (s, st) = (stop.clone(), stats.clone());
        let thread =
            std::thread::Builder::new().name("consul-watch".into()).spawn(move || run(client, cfg, sink, &s, &st))?;
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

fn run(client: Client, cfg: WatchConfig, mut sink: impl Sink, stop: &AtomicBool, stats: &WatchStats) {
    let prefix = cfg.keys.vni_prefix();
    let addr = client.config().address.clone();
    let mut index = 0u64;
    let mut current = Desired::new();
    let mut connected = false;
    let mut ever_connected = false;
    let mut reported_error = false;
    let mut backoff = Backoff::new(cfg.min_backoff, cfg.max_backoff);
    let mut validator = StoreValidator::new("consul", cfg.rules.clone());
    let mut limiter = TokenBucket::new(cfg.burst, cfg.min_interval);

    while !stop.load(Ordering::Relaxed) {
        limiter.take();
        let listed_at = Instant::now();
        let listing = match client.kv_list(&prefix, index, cfg.wait) {
            Ok(l) => l,
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                if connected || !reported_error {
                    log_lost(&addr, &e, connected, ever_connected, current.len());
                }
                connected = false;
                reported_error = true;
                stats.connected.store(false, Ordering::Relaxed);
                index = 0; // the next answer is a full listing: a resync
                sleep_unless(stop, backoff.next_delay());
                continue;
            }
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        backoff.reset();
        stats.answers.fetch_add(1, Ordering::Relaxed);

        let (desired, own, skipped, capped) = decode(&cfg, &listing.pairs, &mut validator);
        stats.skipped.store(skipped, Ordering::Relaxed);
        stats.capped.store(capped, Ordering::Relaxed);
        let changes: Vec<Change> = diff(&current, &desired)
            .into_iter()
            .map(|(mac, remotes)| Change { mac, existed: current.contains_key(&mac), remotes })
            .collect();
        if !changes.is_empty() {
            sink.apply(&changes);
            stats.changes.fetch_add(changes.len() as u64, Ordering::Relaxed);
        }
        current = desired;
        if cfg.local.is_some() {
            sink.own(own, listed_at);
        }
        stats.entries.store(current.values().map(|s| s.len() as u64).sum(), Ordering::Relaxed);

        if !connected {
            connected = true;
            ever_connected = true;
            reported_error = false;
            stats.connected.store(true, Ordering::Relaxed);
            stats.resyncs.fetch_add(1, Ordering::Relaxed);
            log::info!(
                "consul: connected to {addr}, resynced {prefix} with {} entries{}",
                stats.entries.load(Ordering::Relaxed),
                if skipped > 0 { format!(" ({skipped} malformed keys skipped)") } else { String::new() }
            );
        }

        index = if listing.index < index {
            stats.index_resets.fetch_add(1, Ordering::Relaxed);
            log::info!("consul: index went backwards ({index} -> {}), resetting", listing.index);
            0
        } else if listing.index < 1 {
            stats.index_resets.fetch_add(1, Ordering::Relaxed);
            1
        } else {
            listing.index
        };
    }
}

fn log_lost(addr: &str, e: &ConsulError, connected: bool, ever: bool, entries: usize) {
    if connected {
        log::warn!("consul: lost {addr} ({e}); keeping the last {entries} MACs and retrying");
    } else if ever {
        log::warn!("consul: {addr} still unreachable ({e}); retrying");
    } else {
        log::warn!("consul: cannot reach {addr} ({e}); running on static entries and retrying");
    }
}

/// Parses a listing into the desired FDB, skipping malformed keys and those the
/// validator refuses (which logs a key when it turns bad, not on every answer while it
/// stays bad). Also returns the MACs whose entries point at this node (not in the
/// desired FDB), and (keys skipped, entries refused by the cap).
fn decode(
    cfg: &WatchConfig,
    pairs: &[super::client::KvPair],
    validator: &mut StoreValidator,
) -> (Desired, BTreeSet<Mac>, u64, u64) {
    let mut desired = Desired::new();
    let mut own = BTreeSet::new();
    validator.begin();
    for p in pairs {
        match cfg.keys.parse(&p.key, &p.value) {
            Ok(Some((mac, remote))) => {
                if Some(remote.ip) == cfg.local {
                    own.insert(mac);
                } else if validator.admit(&p.key, mac, &remote, p.session.is_some()) {
                    desired.entry(mac).or_default().insert(remote);
                }
            }
            Ok(None) => {}
            Err(e) => validator.refuse(&p.key, &e.to_string()),
        }
    }
    let (skipped, capped) = validator.end();
    (desired, own, skipped, capped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str, value: &str) -> super::super::client::KvPair {
        super::super::client::KvPair {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            flags: 0,
            create_index: 1,
            modify_index: 1,
            lock_index: 0,
            session: None,
        }
    }

    #[test]
    fn decode_skips_bad_keys_and_remembers_only_those_still_bad() {
        let mut cfg = WatchConfig::new(Keys::new("vxdp/", vxdp_common::Vni::new(5).unwrap()));
        cfg.local = Some("192.0.2.1".parse().unwrap());
        let good = pair("vxdp/vni/5/mac/02:00:00:00:00:01", r#"{"v":1,"vtep":"192.0.2.2"}"#);
        let mine = pair("vxdp/vni/5/mac/02:00:00:00:00:02", r#"{"v":1,"vtep":"192.0.2.1"}"#);
        let bad = pair("vxdp/vni/5/mac/02:00:00:00:00:03", "{");
        let mut v = StoreValidator::new("consul", cfg.rules.clone());
        let (d, own, skipped, _) = decode(&cfg, &[good.clone(), mine.clone(), bad.clone()], &mut v);
        assert_eq!((d.len(), skipped), (1, 1));
        assert_eq!(own, BTreeSet::from([Mac([2, 0, 0, 0, 0, 2])]));
        let fixed = pair(&bad.key, r#"{"v":1,"vtep":"192.0.2.3"}"#);
        let (d, _, skipped, _) = decode(&cfg, &[good, mine, fixed], &mut v);
        assert_eq!((d.len(), skipped), (2, 0));
    }

    #[test]
    fn decode_refuses_invalid_values_and_caps_the_answer() {
        let mut cfg = WatchConfig::new(Keys::new("vxdp/", vxdp_common::Vni::new(5).unwrap()));
        cfg.local = Some("192.0.2.1".parse().unwrap());
        cfg.rules.own = ["10.9.9.9".parse().unwrap()].into();
        cfg.rules.max_entries = 3;
        let mac = |i: u8, vtep: &str| {
            pair(&format!("vxdp/vni/5/mac/02:00:00:00:00:{i:02x}"), &format!(r#"{{"v":1,"vtep":"{vtep}"}}"#))
        };
        let pairs = [
            mac(1, "224.0.0.5"),
            mac(2, "127.0.0.1"),
            mac(3, "10.9.9.9"),
            mac(4, "2001:db8::4"),
            pair("vxdp/vni/5/mac/02:00:00:00:00:05", r#"{"v":1,"vtep":"192.0.2.5","port":0}"#),
            pair("vxdp/vni/5/vtep/0.0.0.0", r#"{"v":1}"#),
            mac(6, "192.0.2.6"),
            mac(7, "192.0.2.7"),
            pair("vxdp/vni/5/vtep/192.0.2.8", r#"{"v":1}"#),
            mac(9, "192.0.2.9"),
            mac(10, "192.0.2.1"),
        ];
        let mut v = StoreValidator::new("consul", cfg.rules.clone());
        let (d, own, skipped, capped) = decode(&cfg, &pairs, &mut v);
        assert_eq!((skipped, capped), (6, 1));
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d.contains_key(&Mac([2, 0, 0, 0, 0, 6])) && d.contains_key(&Mac::ZERO));
        assert_eq!(own.len(), 1, "the local VTEP is ours, not an error");
        // Keys no session holds, when the rules require one.
        cfg.rules.require_held = true;
        let mut v = StoreValidator::new("consul", cfg.rules.clone());
        let mut held = mac(6, "192.0.2.6");
        held.session = Some("s1".into());
        let (d, _, skipped, _) = decode(&cfg, &[held, mac(7, "192.0.2.7")], &mut v);
        assert_eq!((d.len(), skipped), (1, 1));
    }

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
