//! The advertiser: publishes this node as a VTEP of its VNI and the MACs seen behind
//! its overlay device, under a Consul session, so other nodes' watchers find them.
//!
//! - One session (TTL, `Behavior=delete`, no lock delay), renewed every TTL/2. If the
//!   node dies, Consul invalidates the session after the TTL and deletes every key it
//!   holds: the node's entries vanish from every other node by themselves.
//! - Keys are written with `?acquire=<session>`. If the session is lost (renew answers
//!   404, e.g. after a long partition), a new one is created and everything this node
//!   still owns is written again.
//! - A MAC that moves: the node that now sees the MAC locally claims its key. If another
//!   node's session holds it, the claimant deletes it with `?cas=<ModifyIndex>` (so it
//!   only removes the version it looked at) and acquires it; the old owner's watcher
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
//!   completed reflects it; with `stale` reads a follower may lag, so there the write
//!   must be [`STALE_GRACE`] older than the listing.)

use super::client::{Client, Consistency, ConsulError};
use super::schema::{Keys, MacValue, VtepValue, VERSION};
use super::watch::{sleep_unless, Backoff};
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
    /// Session TTL (Consul accepts 10 s to 24 h).
    pub ttl: Duration,
    /// A local MAC not seen for this long is withdrawn.
    pub mac_ageing: Duration,
    /// A sighting at most this old justifies taking a MAC's key from another node's
    /// session (the data plane re-reports a MAC that keeps sending every 10 s).
    pub takeover_window: Duration,
    /// Session name, for operators reading `consul operator` output.
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
    /// Keys found missing from Consul and written again.
    pub rewritten: AtomicU64,
    pub errors: AtomicU64,
}

/// With `stale` reads, how long after writing a key a listing may still lack it
/// before the key counts as missing.
pub const STALE_GRACE: Duration = Duration::from_secs(2);

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

    /// Consul says `mac` now lives behind another VTEP: stop claiming it.
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

/// A running advertiser. Dropping it destroys the session (its keys are deleted).
pub struct Advertiser {
    stop: Arc<AtomicBool>,
    stats: Arc<AdvertiseStats>,
    handle: AdvertiserHandle,
    thread: Option<JoinHandle<()>>,
}

impl Advertiser {
    pub fn spawn(client: Client, cfg: AdvertiseConfig) -> std::io::Result<Advertiser> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(AdvertiseStats::default());
        let (tx, rx) = channel();
        let (s, st) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("consul-advertise".into())
            .spawn(move || State::new(client, cfg, rx).run(&s, &st))?;
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
    /// Its key vanished from Consul: written back only if no other node holds it by
    /// then (a takeover deletes the old key before writing its own, and that gap must
    /// not be undone).
    Rewrite,
}

struct State {
    client: Client,
    cfg: AdvertiseConfig,
    rx: Receiver<Msg>,
    session: Option<String>,
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

impl State {
    fn new(client: Client, cfg: AdvertiseConfig, rx: Receiver<Msg>) -> State {
        State {
            client,
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
                            log::info!("consul: advertising again ({} MACs)", self.owned.len());
                        }
                        self.failing = false;
                        self.backoff.reset();
                    }
                    Err(e) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        if matches!(&e, ConsulError::Status { status: 500, body } if body.to_ascii_lowercase().contains("session"))
                        {
                            // Consul no longer knows our session: start over with a new one.
                            self.session = None;
                        }
                        if !self.failing {
                            log::warn!("consul: advertising failed ({e}); retrying");
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
            match self.client.session_destroy(&id) {
                Ok(_) => log::info!("consul: session destroyed, {} MACs withdrawn", self.owned.len()),
                Err(e) => log::warn!("consul: could not destroy the session ({e}); its TTL will remove our keys"),
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
                        log::info!("consul: {mac} moved to another VTEP; no longer advertised here");
                    }
                }
                Msg::Present { macs, listed_at } => self.check_present(&macs, listed_at, stats),
            }
        }
    }

    /// Schedules the keys this node wrote well before a listing, but which the listing
    /// lacks, to be written again.
    fn check_present(&mut self, macs: &BTreeSet<Mac>, listed_at: Instant, stats: &AdvertiseStats) {
        let grace = if self.client.config().consistency == Consistency::Stale { STALE_GRACE } else { Duration::ZERO };
        let missing = |at: &Instant| *at + grace < listed_at;
        if !macs.contains(&Mac::ZERO) && self.vtep_written.as_ref().is_some_and(missing) {
            log::info!("consul: {} is missing from Consul; registering again", self.cfg.keys.vtep(self.cfg.local));
            self.vtep_written = None;
            stats.rewritten.fetch_add(1, Ordering::Relaxed);
        }
        let gone: Vec<Mac> =
            self.written.iter().filter(|(mac, at)| !macs.contains(mac) && missing(at)).map(|(mac, _)| *mac).collect();
        for mac in gone {
            log::info!("consul: {} is missing from Consul; writing it again", self.cfg.keys.mac(mac));
            self.written.remove(&mac);
            self.pending.push((mac, Claim::Rewrite));
            stats.rewritten.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One round: session, renewal, pending claims, ageing. Errors leave the work pending.
    fn step(&mut self, stats: &AdvertiseStats) -> Result<(), ConsulError> {
        let session = match &self.session {
            Some(s) if self.renewed.elapsed() < self.cfg.ttl / 2 => s.clone(),
            Some(s) => {
                let s = s.clone();
                if self.client.session_renew(&s)? {
                    self.renewed = Instant::now();
                    s
                } else {
                    log::warn!("consul: session {s} expired; creating a new one and advertising again");
                    self.session = None;
                    return self.step(stats);
                }
            }
            None => {
                let s = self.client.session_create(&self.cfg.name, self.cfg.ttl)?;
                stats.sessions_created.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "consul: session {s} created (ttl {:?}), advertising {} as a VTEP",
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
                return Err(ConsulError::Decode(format!("{key} is held by another session")));
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
                if self.claim(&self.cfg.keys.mac(mac), &v, &session, takeover, stats)? {
                    self.written.insert(mac, Instant::now());
                } else {
                    // Another node holds it (and our sighting is old, or it keeps
                    // claiming): it lives there. A later sighting here claims it again.
                    self.owned.remove(&mac);
                    self.written.remove(&mac);
                    stats.withdrawn.fetch_add(1, Ordering::Relaxed);
                    log::info!("consul: {mac} is held by another VTEP; not advertised here");
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
            if let Some(p) = self.client.kv_get(&key)? {
                if p.session.as_deref() == Some(session.as_str()) {
                    self.client.kv_delete(&key, Some(p.modify_index))?;
                }
            }
            self.owned.remove(&mac);
            self.written.remove(&mac);
            stats.withdrawn.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes `key` under our session; with `takeover`, takes it from another session
    /// that holds it. `Ok(false)`: another session holds it.
    fn claim(
        &self,
        key: &str,
        value: &[u8],
        session: &str,
        takeover: bool,
        stats: &AdvertiseStats,
    ) -> Result<bool, ConsulError> {
        for _ in 0..3 {
            if self.client.kv_put(key, value, Some(session), None)? {
                stats.claims.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
            if !takeover {
                return Ok(false);
            }
            // Held by another session: remove exactly the version we saw, then retry.
            if let Some(p) = self.client.kv_get(key)? {
                let foreign = p.session.as_deref().is_some_and(|s| s != session);
                if foreign && self.client.kv_delete(key, Some(p.modify_index))? {
                    stats.takeovers.fetch_add(1, Ordering::Relaxed);
                    log::info!("consul: took over {key} from another VTEP");
                }
            }
        }
        Ok(false)
    }
}
