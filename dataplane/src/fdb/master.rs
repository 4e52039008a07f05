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
        Source::Consul => 1,
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
}

impl Master {
    pub(super) fn apply(&mut self, req: &FdbRequest, source: Source, now: u32) -> Result<(), FdbError> {
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

    /// A learning event: returns whether the table changed.
    pub(super) fn learn(&mut self, mac: [u8; 6], vtep: IpAddr, now: u32) -> bool {
        if mac == [0; 6] || mac[0] & 1 != 0 {
            return false;
        }
        let layers = self.entries.entry(mac_key(&mac)).or_default();
        if layers.pinned() {
            return false;
        }
        match &mut layers.0[layer_index(Source::Learned)] {
            Some(layer) if layer.remotes.len() == 1 && layer.remotes[0].ip == vtep => {
                if let Some(seen) = &layer.seen {
                    seen.store(now, Ordering::Relaxed);
                }
                false
            }
            Some(layer) => {
                layer.remotes.clear();
                layer.remotes.push(Remote::new(vtep));
                match &layer.seen {
                    Some(seen) => seen.store(now, Ordering::Relaxed),
                    None => layer.seen = Some(Arc::new(AtomicU32::new(now))),
                }
                log::debug!("fdb: {} moved to {vtep}", Mac(mac));
                true
            }
            slot @ None => {
                *slot = Some(Layer { remotes: vec![Remote::new(vtep)], seen: Some(Arc::new(AtomicU32::new(now))) });
                log::debug!("fdb: learned {} behind {vtep}", Mac(mac));
                true
            }
        }
    }

    /// Drop learned layers idle longer than `ageing_secs`; returns how many.
    pub(super) fn expire(&mut self, now: u32, ageing_secs: u32) -> usize {
        let mut expired = 0;
        let learned = layer_index(Source::Learned);
        self.entries.retain(|key, layers| {
            if let Some(Layer { seen: Some(seen), .. }) = &layers.0[learned] {
                if now.saturating_sub(seen.load(Ordering::Relaxed)) > ageing_secs {
                    log::debug!("fdb: {} aged out", key_mac(*key));
                    layers.0[learned] = None;
                    expired += 1;
                }
            }
            !layers.is_empty()
        });
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
