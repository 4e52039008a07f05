//! The writers' side: every source's layer per MAC, from which snapshots are built.

use super::hash::{key_mac, mac_key, MacBuildHasher};
use super::snapshot::{FdbSnapshot, Slot};
use super::{FdbError, Remote};
use crate::wire::ethernet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;
use vxdp_control::entry::{FdbOp, FdbRequest, Source};
use vxdp_control::mac::Mac;

/// One source's entry for one MAC.
pub(super) struct Layer {
    pub(super) remotes: Vec<Remote>,
    /// Learned layers only: last seen, in table-clock seconds.
    pub(super) seen: Option<Arc<AtomicU32>>,
}

/// Per-MAC layers, indexed by [`layer_index`] (highest precedence first).
#[derive(Default)]
pub(super) struct Layers([Option<Layer>; 3]);

fn layer_index(source: Source) -> usize {
    match source {
        Source::Static => 0,
        Source::Store => 1,
        Source::Learned => 2,
    }
}

impl Layers {
    pub(super) fn effective(&self) -> Option<(Source, &Layer)> {
        Source::BY_PRECEDENCE.iter().zip(&self.0).find_map(|(s, l)| l.as_ref().map(|l| (*s, l)))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    pub(super) fn pinned(&self) -> bool {
        self.0[0].is_some() || self.0[1].is_some()
    }
}

pub(super) struct Master {
    pub(super) entries: HashMap<u64, Layers, MacBuildHasher>,
    /// Published snapshots that readers may still hold; freed here once they do not.
    pub(super) retired: Vec<Arc<FdbSnapshot>>,
    pub(super) last_ageing_scan: u32,
    /// `--learning-from known`: the VTEPs learning events are taken from (None: any).
    pub(super) learn_sources: Option<std::collections::HashSet<IpAddr>>,
    pub(super) limits: LearnLimits,
    /// Learned entries per remote VTEP (the distinct-remotes bound).
    pub(super) learned_remotes: HashMap<IpAddr, u32>,
    /// New or moved MACs learned per source in the table-clock second `rate_window`.
    pub(super) rate: HashMap<IpAddr, u32>,
    pub(super) rate_window: u32,
    /// MACs changed since the last [`super::FdbTable::take_changes`].
    pub(super) changed: ChangeLog,
}

/// MACs whose entry changed since the consumer last drained them (the express mirror),
/// bounded: past [`CHANGE_LOG_LEN`] it only says "overflowed", and the consumer resyncs
/// everything.
#[derive(Debug, Default)]
pub(super) struct ChangeLog {
    pub(super) macs: Vec<[u8; 6]>,
    pub(super) overflow: bool,
}

/// Changes logged between two drains before the log gives up and asks for a full sync.
pub(super) const CHANGE_LOG_LEN: usize = 4096;

impl ChangeLog {
    /// Logs that `mac`'s entry may have changed (a duplicate is harmless).
    pub(super) fn note(&mut self, mac: [u8; 6]) {
        if self.overflow {
            return;
        }
        if self.macs.len() >= CHANGE_LOG_LEN {
            self.macs = Vec::new();
            self.overflow = true;
        } else {
            self.macs.push(mac);
        }
    }
}

/// Sources whose learning rate one second tracks; past it, new sources wait for the
/// next second (bounds the rate table under a flood of spoofed sources).
const MAX_RATE_SOURCES: usize = 4096;

/// What learning may add. Static and store entries are never refused or evicted by
/// these; they count toward `max_entries`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LearnLimits {
    /// Most MACs in the table before learning adds no new one (`--max-fdb`, the kernel's
    /// `maxaddress`); 0: unlimited.
    pub max_entries: usize,
    /// New or moved MACs learned from one source VTEP per second; 0: unlimited.
    pub per_source_per_sec: u32,
    /// Most distinct remote VTEPs learned entries point at; 0: unlimited.
    pub max_learned_remotes: usize,
}

/// Why the bounds refused a learning event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The table holds `max_entries` MACs.
    Full,
    /// The source taught `per_source_per_sec` MACs this second already.
    RateLimited,
    /// A new remote, and learned entries point at `max_learned_remotes` already.
    TooManyRemotes,
}

/// [`Master::learn`]'s outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learn {
    Unchanged,
    Changed,
    Refused(Refusal),
}

impl Master {
    pub(super) fn apply(&mut self, req: &FdbRequest, source: Source, now: u32) -> Result<(), FdbError> {
        if source != Source::Learned {
            return self.apply_layer(req, source, now);
        }
        // Learned layers are counted per remote (the distinct-remotes bound).
        let key = mac_key(&req.mac.0);
        let ips = |m: &Master| -> Vec<IpAddr> {
            m.entries
                .get(&key)
                .and_then(|l| l.0[layer_index(Source::Learned)].as_ref())
                .map(|l| l.remotes.iter().map(|r| r.ip).collect())
                .unwrap_or_default()
        };
        let before = ips(self);
        self.apply_layer(req, source, now)?;
        for ip in before {
            self.unref_remote(ip);
        }
        for ip in ips(self) {
            *self.learned_remotes.entry(ip).or_insert(0) += 1;
        }
        Ok(())
    }

    fn apply_layer(&mut self, req: &FdbRequest, source: Source, now: u32) -> Result<(), FdbError> {
        let mac = req.mac;
        if source == Source::Learned && !ethernet::is_unicast(&mac.0) {
            return Err(FdbError::NotLearnable { mac });
        }
        let key = mac_key(&mac.0);
        let idx = layer_index(source);
        let new_layer = |remote: Remote| Layer {
            remotes: vec![remote],
            seen: (source == Source::Learned).then(|| Arc::new(AtomicU32::new(now))),
        };
        if let Some(r) = req.remote.filter(|r| r.ip.is_ipv6() && req.op != FdbOp::Del) {
            return Err(FdbError::Ipv6Underlay { mac, ip: r.ip });
        }
        let remote = match (req.op, req.remote) {
            (FdbOp::Del, r) => r,
            (op, None) => return Err(FdbError::MissingRemote { op, mac }),
            (_, Some(r)) => Some(r),
        };
        match req.op {
            FdbOp::Add => {
                let layers = self.entries.entry(key).or_default();
                if layers.0[idx].is_some() {
                    return Err(FdbError::Exists { mac, layer: source });
                }
                layers.0[idx] = Some(new_layer(remote.expect("checked")));
            }
            FdbOp::Append => {
                let remote = remote.expect("checked");
                let layers = self.entries.entry(key).or_default();
                match &mut layers.0[idx] {
                    Some(layer) if !layer.remotes.contains(&remote) => layer.remotes.push(remote),
                    Some(_) => {}
                    slot @ None => *slot = Some(new_layer(remote)),
                }
            }
            FdbOp::Replace => {
                let remote = remote.expect("checked");
                let layers = self.entries.entry(key).or_default();
                match &mut layers.0[idx] {
                    Some(layer) => {
                        layer.remotes.clear();
                        layer.remotes.push(remote);
                        if let Some(seen) = &layer.seen {
                            seen.store(now, Ordering::Relaxed);
                        }
                    }
                    slot @ None => *slot = Some(new_layer(remote)),
                }
            }
            FdbOp::Del => {
                let layers = self.entries.get_mut(&key).ok_or(FdbError::NotFound { mac, layer: source })?;
                let layer = layers.0[idx].as_mut().ok_or(FdbError::NotFound { mac, layer: source })?;
                match remote {
                    None => layers.0[idx] = None,
                    Some(remote) => {
                        let pos = layer.remotes.iter().position(|r| *r == remote).ok_or(FdbError::RemoteNotFound {
                            mac,
                            remote,
                            layer: source,
                        })?;
                        layer.remotes.remove(pos);
                        if layer.remotes.is_empty() {
                            layers.0[idx] = None;
                        }
                    }
                }
                if layers.is_empty() {
                    self.entries.remove(&key);
                }
            }
        }
        Ok(())
    }

    /// A learning event: whether the table changed, or why the bounds refused it.
    pub(super) fn learn(&mut self, mac: [u8; 6], vtep: IpAddr, now: u32) -> Learn {
        if mac == [0; 6] || mac[0] & 1 != 0 {
            return Learn::Unchanged;
        }
        let key = mac_key(&mac);
        let learned = layer_index(Source::Learned);
        let existing = self.entries.get(&key);
        let is_new_mac = existing.is_none();
        let old_vtep = match existing {
            Some(layers) if layers.pinned() => return Learn::Unchanged,
            Some(layers) => match &layers.0[learned] {
                Some(layer) if layer.remotes.len() == 1 && layer.remotes[0].ip == vtep => {
                    if let Some(seen) = &layer.seen {
                        seen.store(now, Ordering::Relaxed);
                    }
                    return Learn::Unchanged;
                }
                Some(layer) => layer.remotes.first().map(|r| r.ip),
                None => None,
            },
            None => None,
        };
        // New or moved: within the bounds only.
        let l = self.limits;
        if l.per_source_per_sec > 0 {
            if self.rate_window != now {
                self.rate_window = now;
                self.rate.clear();
            }
            match self.rate.get(&vtep) {
                Some(n) if *n >= l.per_source_per_sec => return Learn::Refused(Refusal::RateLimited),
                None if self.rate.len() >= MAX_RATE_SOURCES => return Learn::Refused(Refusal::RateLimited),
                _ => {}
            }
        }
        if is_new_mac && l.max_entries > 0 && self.entries.len() >= l.max_entries {
            return Learn::Refused(Refusal::Full);
        }
        if l.max_learned_remotes > 0
            && !self.learned_remotes.contains_key(&vtep)
            && self.learned_remotes.len() >= l.max_learned_remotes
        {
            return Learn::Refused(Refusal::TooManyRemotes);
        }
        if l.per_source_per_sec > 0 {
            *self.rate.entry(vtep).or_insert(0) += 1;
        }
        if let Some(old) = old_vtep {
            self.unref_remote(old);
        }
        *self.learned_remotes.entry(vtep).or_insert(0) += 1;
        let layers = self.entries.entry(key).or_default();
        match &mut layers.0[learned] {
            Some(layer) => {
                layer.remotes.clear();
                layer.remotes.push(Remote::new(vtep));
                match &layer.seen {
                    Some(seen) => seen.store(now, Ordering::Relaxed),
                    None => layer.seen = Some(Arc::new(AtomicU32::new(now))),
                }
                log::debug!("fdb: {} moved to {vtep}", Mac(mac));
            }
            slot @ None => {
                *slot = Some(Layer { remotes: vec![Remote::new(vtep)], seen: Some(Arc::new(AtomicU32::new(now))) });
                log::debug!("fdb: learned {} behind {vtep}", Mac(mac));
            }
        }
        Learn::Changed
    }

    /// One learned entry less points at `ip`.
    fn unref_remote(&mut self, ip: IpAddr) {
        if let Some(n) = self.learned_remotes.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.learned_remotes.remove(&ip);
            }
        }
    }

    /// Distinct remote VTEPs that learned entries point at.
    pub(super) fn learned_remote_count(&self) -> usize {
        self.learned_remotes.len()
    }

    /// Drop learned layers idle longer than `ageing_secs`; returns how many.
    pub(super) fn expire(&mut self, now: u32, ageing_secs: u32) -> usize {
        let mut expired = 0;
        let mut gone = Vec::new();
        let learned = layer_index(Source::Learned);
        let changed = &mut self.changed;
        self.entries.retain(|key, layers| {
            if let Some(Layer { seen: Some(seen), .. }) = &layers.0[learned] {
                if now.saturating_sub(seen.load(Ordering::Relaxed)) > ageing_secs {
                    log::debug!("fdb: {} aged out", key_mac(*key));
                    if let Some(layer) = layers.0[learned].take() {
                        gone.extend(layer.remotes.iter().map(|r| r.ip));
                    }
                    changed.note(key_mac(*key).0);
                    expired += 1;
                }
            }
            !layers.is_empty()
        });
        for ip in gone {
            self.unref_remote(ip);
        }
        expired
    }

    pub(super) fn build(&self, hasher: MacBuildHasher, learning: bool, epoch: Instant) -> FdbSnapshot {
        let mut map = HashMap::with_capacity_and_hasher(self.entries.len(), hasher);
        let mut remotes = Vec::with_capacity(self.entries.len() + 8);
        if let Some((_, layer)) = self.entries.get(&0).and_then(Layers::effective) {
            remotes.extend_from_slice(&layer.remotes);
        }
        let flood_len = remotes.len();
        for (&key, layers) in &self.entries {
            if key == 0 {
                continue;
            }
            if let Some((source, layer)) = layers.effective() {
                let start = remotes.len() as u32;
                remotes.extend_from_slice(&layer.remotes);
                let seen = if source == Source::Learned { layer.seen.clone() } else { None };
                map.insert(key, Slot { start, len: layer.remotes.len() as u32, seen });
            }
        }
        FdbSnapshot { map, remotes, flood_len, learning, epoch }
    }
}
