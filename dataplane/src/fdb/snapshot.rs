//! What readers see: an immutable [`FdbSnapshot`], loaded once per batch.

use super::hash::{mac_key, MacBuildHasher};
use super::Remote;
use crate::wire::ethernet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One MAC in a snapshot: its remotes are `remotes[start..start + len]`.
pub(super) struct Slot {
    pub(super) start: u32,
    pub(super) len: u32,
    /// Last-seen clock of a learned entry (shared with the master and later snapshots);
    /// `None` when a Static or Consul layer decides the MAC.
    pub(super) seen: Option<Arc<AtomicU32>>,
}

/// An immutable view of the FDB, published by writers. Hold it for one batch.
pub struct FdbSnapshot {
    pub(super) map: HashMap<u64, Slot, MacBuildHasher>,
    /// All remotes, grouped per MAC; the flood list is `remotes[..flood_len]`.
    pub(super) remotes: Vec<Remote>,
    pub(super) flood_len: usize,
    pub(super) learning: bool,
    pub(super) epoch: Instant,
}

impl FdbSnapshot {
    /// Unicast lookup. `None` when the MAC has no entry (then flood).
    #[inline]
    pub fn lookup(&self, mac: &[u8; 6]) -> Option<&[Remote]> {
        let slot = self.map.get(&mac_key(mac))?;
        Some(&self.remotes[slot.start as usize..(slot.start + slot.len) as usize])
    }

    /// Every MAC with an entry except the all-zeros (flood) one: the MAC, its remotes,
    /// and whether the entry is learned (not pinned by a static or store entry). For the
    /// express path's mirror; not for the hot path.
    pub fn unicast_entries(&self) -> impl Iterator<Item = ([u8; 6], &[Remote], bool)> + '_ {
        self.map.iter().map(|(key, slot)| {
            let remotes = &self.remotes[slot.start as usize..(slot.start + slot.len) as usize];
            (super::hash::key_mac(*key).0, remotes, slot.seen.is_some())
        })
    }

    /// The all-zeros entries: head-end replication list for broadcast, multicast and
    /// unknown unicast. Empty when there is none.
    #[inline]
    pub fn flood(&self) -> &[Remote] {
        &self.remotes[..self.flood_len]
    }

    /// Hot path (decap, learning on): true if the caller should call
    /// [`FdbTable::learn`](super::FdbTable::learn) (MAC unknown, or learned behind another VTEP, and not pinned
    /// by a Static/Consul entry). Otherwise refreshes the learned entry's last-seen
    /// time (a relaxed store at most once per second per entry) and returns false.
    /// Zero and multicast source MACs are never learned. `now_secs` is the table
    /// clock ([`FdbTable::coarse_now_secs`](super::FdbTable::coarse_now_secs) on the hot path). Never blocks or allocates.
    #[inline]
    pub fn needs_learning(&self, mac: &[u8; 6], vtep: IpAddr, now_secs: u32) -> bool {
        if !self.learning || !ethernet::is_unicast(mac) {
            return false;
        }
        let Some(slot) = self.map.get(&mac_key(mac)) else {
            return true;
        };
        let Some(seen) = &slot.seen else {
            return false; // pinned by Static or Consul
        };
        if self.remotes[slot.start as usize].ip != vtep {
            return true; // moved
        }
        if seen.load(Ordering::Relaxed) != now_secs {
            seen.store(now_secs, Ordering::Relaxed);
        }
        false
    }

    /// The table clock: whole seconds since the table was created, for
    /// [`FdbSnapshot::needs_learning`].
    #[inline]
    pub fn now_secs(&self, now: Instant) -> u32 {
        clock_secs(self.epoch, now)
    }

    /// MACs with an entry, the all-zeros (flood) entry included.
    pub fn len(&self) -> usize {
        self.map.len() + usize::from(self.flood_len > 0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub(super) fn clock_secs(epoch: Instant, now: Instant) -> u32 {
    now.saturating_duration_since(epoch).as_secs().min(u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use crate::fdb::{FdbTable, DEFAULT_AGEING};
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Instant;

    #[test]
    fn only_unicast_sources_need_learning() {
        let t = FdbTable::new(true, DEFAULT_AGEING);
        let vtep = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let now = t.snapshot().now_secs(Instant::now());
        assert!(t.snapshot().needs_learning(&[0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01], vtep, now));
        for mac in [[0xff; 6], [0x01, 0x00, 0x5e, 0, 0, 1], [0; 6]] {
            assert!(!t.snapshot().needs_learning(&mac, vtep, now), "{mac:02x?}");
        }
    }
}
