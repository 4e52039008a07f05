//! The advertiser: publishes this node as a VTEP of its VNI and the MACs seen behind
//! its overlay device, under a lease of the store (a Consul session, an etcd lease), so
//! other nodes' watchers find them. The rules are the same on every store:
//!
//! - One lease with a TTL, renewed every TTL/2 (Consul: a session with
//!   `Behavior=delete` and no lock delay; etcd: a lease kept alive). If the node dies,
//!   the store ends the lease after the TTL and deletes every key under it: the node's
//!   entries vanish from every other node by themselves.
//! - Keys are written under the lease, only if free or already ours ([`Store::put`]:
//!   Consul `?acquire=<session>`, etcd a transaction on the key's create revision and
//!   lease). If the lease is lost (e.g. after a partition longer than the TTL), a new
//!   one is created and everything this node still owns is written again.
//! - A MAC that moves: the node that now sees the MAC locally claims its key. If another
//!   node's lease holds it, the claimant deletes exactly the version it looked at
//!   ([`Store::delete`] with a version) and writes its own; the old owner's watcher
//!   then sees the MAC at another VTEP and calls [`AdvertiserHandle::disown`], so the
//!   old owner never claims it back unless its own traffic shows the MAC again.
//! - Only a fresh sighting (within [`AdvertiseConfig::takeover_window`]) takes a key
//!   from another session. A claim from memory (re-advertising after a new session, say
//!   after a partition during which the MAC moved) only acquires a free key; if another
//!   node holds it, this node forgets the MAC. Any failed claim forgets the MAC, so
//!   the next sighting claims it again.
//! - A local MAC not seen for the ageing time is released: its key is deleted (only if
//!   this node's session still holds it).
//! - Keys that vanish while this node still owns them (an operator's delete, a snapshot
//!   restore from before they were written, a claimant that deleted and then died) are
//!   written again: the watcher reports which of this node's keys each answer holds
//!   ([`AdvertiserHandle::present`]), and a key written before that listing was asked
//!   for but missing from it is claimed again. (A listing asked for after a write
//!   completed reflects it; where answers may lag, Consul's `stale` reads or an etcd
//!   watch stream, the write must be [`Store::read_lag`] older than the listing.)

use super::schema::{Keys, MacValue, VtepValue, VERSION};
use super::watch::{sleep_unless, Backoff};
use super::{Lease, Store, StoreError};
use crate::mac::Mac;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Tunables of the advertiser.
#[derive(Debug, Clone)]
pub struct AdvertiseConfig {
    pub keys: Keys,
    /// This node's VTEP address.
    pub local: IpAddr,
    /// This node's VXLAN port, when it is not the peers' default.
    pub port: Option<u16>,
    /// Lease TTL (Consul accepts 10 s to 24 h; etcd at least its election timeout).
    pub ttl: Duration,
    /// A local MAC not seen for this long is withdrawn.
    pub mac_ageing: Duration,
    /// A sighting at most this old justifies taking a MAC's key from another node's
    /// session (the data plane re-reports a MAC that keeps sending every 10 s).
    pub takeover_window: Duration,
    /// Lease name, for operators (Consul shows it with the session; etcd keeps none).
    pub name: String,
}

/// What the advertiser has done, readable while it runs.
#[derive(Debug, Default)]
pub struct AdvertiseStats {
    pub session_ok: AtomicBool,
    pub sessions_created: AtomicU64,
    pub macs_owned: AtomicU64,
    pub claims: AtomicU64,
    pub takeovers: AtomicU64,
    pub withdrawn: AtomicU64,
    /// Keys found missing from the store and written again.
    pub rewritten: AtomicU64,
    pub errors: AtomicU64,
}

enum Msg {
    Seen(Mac),
    Disown(Mac),
    Present { macs: BTreeSet<Mac>, listed_at: Instant },
}

/// Feeds the advertiser: MACs seen locally, MACs now owned by another node.
#[derive(Clone)]
pub struct AdvertiserHandle {
    tx: Sender<Msg>,
}

impl AdvertiserHandle {
    /// A frame from `mac` was sent into the overlay here.
    pub fn seen(&self, mac: Mac) {
        let _ = self.tx.send(Msg::Seen(mac));
    }

    /// The store says `mac` now lives behind another VTEP: stop claiming it.
    pub fn disown(&self, mac: Mac) {
        let _ = self.tx.send(Msg::Disown(mac));
    }

    /// A listing asked for at `listed_at` holds this node's keys for `macs` (the
    /// all-zeros MAC: its VTEP registration). Owned keys missing from it are written
    /// again.
    pub fn present(&self, macs: BTreeSet<Mac>, listed_at: Instant) {
        let _ = self.tx.send(Msg::Present { macs, listed_at });
    }
}

/// A running advertiser. Dropping it ends the lease (its keys are deleted).
pub struct Advertiser {
    stop: Arc<AtomicBool>,
    stats: Arc<AdvertiseStats>,
    handle: AdvertiserHandle,
    thread: Option<JoinHandle<()>>,
}

impl Advertiser {
    pub fn spawn(store: impl Store, cfg: AdvertiseConfig) -> std::io::Result<Advertiser> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(AdvertiseStats::default());
        let (tx, rx) = channel();
        let (s, st) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name(format!("{}-advertise", store.kind()))
            .spawn(move || State::new(store, cfg, rx).run(&s, &st))?;
        Ok(Advertiser { stop, stats, handle: AdvertiserHandle { tx }, thread: Some(thread) })
    }

    pub fn handle(&self) -> AdvertiserHandle {
        self.handle.clone()
    }

    pub fn stats(&self) -> &Arc<AdvertiseStats> {
        &self.stats
    }
}

impl Drop for Advertiser {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join(); // bounded: every request has a timeout
        }
    }
}

/// Why a MAC's key is to be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    /// This node saw the MAC (or owns it under a new session): a fresh sighting may take
    /// the key from another node.
    Seen,
    /// Its key vanished from the store: written back only if no other node holds it by
    /// then (a takeover deletes the old key before writing its own, and that gap must
    /// not be undone).
    Rewrite,
}

struct State<S: Store> {
    store: S,
    cfg: AdvertiseConfig,
    rx: Receiver<Msg>,
    session: Option<Lease>,
    renewed: Instant,
    /// MAC → last time it was seen locally.
    owned: HashMap<Mac, Instant>,
    /// Owned MACs whose key is not written under the current session yet, and why.
    pending: Vec<(Mac, Claim)>,
    /// When each owned MAC's key was last written under the current session.
    written: HashMap<Mac, Instant>,
    /// When the VTEP key was written under the current session.
    vtep_written: Option<Instant>,
    backoff: Backoff,
    retry_at: Instant,
    failing: bool,
}

impl<S: Store> State<S> {
    fn new(store: S, cfg: AdvertiseConfig, rx: Receiver<Msg>) -> State<S> {
        State {
            store,
            cfg,
            rx,
            session: None,
            renewed: Instant::now(),
            owned: HashMap::new(),
            pending: Vec::new(),
            written: HashMap::new(),
            vtep_written: None,
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(10)),
            retry_at: Instant::now(),
            failing: false,
        }
    }

    fn run(mut self, stop: &AtomicBool, stats: &AdvertiseStats) {
        while !stop.load(Ordering::Relaxed) {
            self.drain(stats);
            if Instant::now() >= self.retry_at {
                match self.step(stats) {
                    Ok(()) => {
                        if self.failing {
                            log::info!("{}: advertising again ({} MACs)", self.store.kind(), self.owned.len());
                        }
                        self.failing = false;
                        self.backoff.reset();
                    }
                    Err(e) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        if matches!(&e, StoreError::SessionLost(_)) {
                            // The store no longer knows our lease: start over with a new one.
                            self.session = None;
                        }
                        if !self.failing {
                            log::warn!("{}: advertising failed ({e}); retrying", self.store.kind());
                        }
                        self.failing = true;
                        self.retry_at = Instant::now() + self.backoff.next_delay();
                    }
                }
            }
            stats.session_ok.store(self.session.is_some() && !self.failing, Ordering::Relaxed);
            stats.macs_owned.store(self.owned.len() as u64, Ordering::Relaxed);
            sleep_unless(stop, Duration::from_millis(20));
        }
        if let Some(id) = self.session.take() {
            let kind = self.store.kind();
            match self.store.lease_revoke(&id) {
                Ok(()) => log::info!("{kind}: lease {id} ended, {} MACs withdrawn", self.owned.len()),
                Err(e) => log::warn!("{kind}: could not end lease {id} ({e}); its TTL will remove our keys"),
            }
        }
    }

    fn drain(&mut self, stats: &AdvertiseStats) {
        let now = Instant::now();
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Seen(mac) => {
                    if self.owned.insert(mac, now).is_none() {
                        self.pending.push((mac, Claim::Seen));
                    }
                }
                Msg::Disown(mac) => {
                    if self.owned.remove(&mac).is_some() {
                        self.written.remove(&mac);
                        stats.withdrawn.fetch_add(1, Ordering::Relaxed);
                        log::info!("{}: {mac} moved to another VTEP; no longer advertised here", self.store.kind());
                    }
                }
                Msg::Present { macs, listed_at } => self.check_present(&macs, listed_at, stats),
            }
        }
    }

    /// Schedules the keys this node wrote well before a listing, but which the listing
    /// lacks, to be written again.
    fn check_present(&mut self, macs: &BTreeSet<Mac>, listed_at: Instant, stats: &AdvertiseStats) {
        let grace = self.store.read_lag();
        let kind = self.store.kind();
        let missing = |at: &Instant| *at + grace < listed_at;
        if !macs.contains(&Mac::ZERO) && self.vtep_written.as_ref().is_some_and(missing) {
            log::info!("{kind}: {} is missing from the store; registering again", self.cfg.keys.vtep(self.cfg.local));
            self.vtep_written = None;
            stats.rewritten.fetch_add(1, Ordering::Relaxed);
        }
        let gone: Vec<Mac> =
            self.written.iter().filter(|(mac, at)| !macs.contains(mac) && missing(at)).map(|(mac, _)| *mac).collect();
        for mac in gone {
            log::info!("{kind}: {} is missing from the store; writing it again", self.cfg.keys.mac(mac));
            self.written.remove(&mac);
            self.pending.push((mac, Claim::Rewrite));
            stats.rewritten.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One round: session, renewal, pending claims, ageing. Errors leave the work pending.
    fn step(&mut self, stats: &AdvertiseStats) -> Result<(), StoreError> {
        let kind = self.store.kind();
        let session = match &self.session {
            Some(s) if self.renewed.elapsed() < self.cfg.ttl / 2 => s.clone(),
            Some(s) => {
                let s = s.clone();
                if self.store.lease_renew(&s)? {
                    self.renewed = Instant::now();
                    s
                } else {
                    log::warn!("{kind}: lease {s} expired; creating a new one and advertising again");
                    self.session = None;
                    return self.step(stats);
                }
            }
            None => {
                let s = self.store.lease_grant(&self.cfg.name, self.cfg.ttl)?;
                stats.sessions_created.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "{kind}: lease {s} created (ttl {:?}), advertising {} as a VTEP",
                    self.cfg.ttl,
                    self.cfg.local
                );
                self.session = Some(s.clone());
                self.renewed = Instant::now();
                self.vtep_written = None;
                self.written.clear();
                self.pending = self.owned.keys().map(|m| (*m, Claim::Seen)).collect();
                s
            }
        };
        if self.vtep_written.is_none() {
            let v = serde_json::to_vec(&VtepValue { v: VERSION, port: self.cfg.port }).expect("serializable");
            let key = self.cfg.keys.vtep(self.cfg.local);
            // Our own address: a session still holding it is an earlier run of this node.
            if !self.claim(&key, &v, &session, true, stats)? {
                return Err(StoreError::Refused(format!("{key} is held by another lease")));
            }
            self.vtep_written = Some(Instant::now());
        }
        while let Some((mac, why)) = self.pending.last().copied() {
            if let Some(seen) = self.owned.get(&mac).copied() {
                let v =
                    serde_json::to_vec(&MacValue { v: VERSION, vtep: self.cfg.local, port: self.cfg.port, ip: None })
                        .expect("serializable");
                let fresh = seen.elapsed() <= self.cfg.takeover_window;
                let takeover = fresh && why == Claim::Seen;
                let key = self.cfg.keys.mac(mac);
                if self.claim(&key, &v, &session, takeover, stats)? {
                    self.written.insert(mac, Instant::now());
                } else {
                    // Another node holds it (and our sighting is old, or it keeps
                    // claiming): it lives there. A later sighting here claims it again.
                    self.owned.remove(&mac);
                    self.written.remove(&mac);
                    stats.withdrawn.fetch_add(1, Ordering::Relaxed);
                    log::info!("{kind}: {mac} is held by another VTEP; not advertised here");
                }
            }
            self.pending.pop();
        }
        let now = Instant::now();
        let expired: Vec<Mac> = self
            .owned
            .iter()
            .filter(|(_, seen)| now.duration_since(**seen) > self.cfg.mac_ageing)
            .map(|(m, _)| *m)
            .collect();
        for mac in expired {
            let key = self.cfg.keys.mac(mac);
            if let Some(h) = self.store.get(&key)? {
                if h.owner.as_ref() == Some(&session) {
                    self.store.delete(&key, Some(h.version))?;
                }
            }
            self.owned.remove(&mac);
            self.written.remove(&mac);
            stats.withdrawn.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes `key` under our lease; with `takeover`, takes it from another lease that
    /// holds it. `Ok(false)`: another lease holds it.
    fn claim(
        &mut self,
        key: &str,
        value: &[u8],
        session: &Lease,
        takeover: bool,
        stats: &AdvertiseStats,
    ) -> Result<bool, StoreError> {
        for _ in 0..3 {
            if self.store.put(key, value, Some(session))? {
                stats.claims.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
            if !takeover {
                return Ok(false);
            }
            // Held by another lease: remove exactly the version we saw, then retry.
            if let Some(h) = self.store.get(key)? {
                let foreign = h.owner.as_ref().is_some_and(|s| s != session);
                if foreign && self.store.delete(key, Some(h.version))? {
                    stats.takeovers.fetch_add(1, Ordering::Relaxed);
                    log::info!("{}: took over {key} from another VTEP", self.store.kind());
                }
            }
        }
        Ok(false)
    }
}
