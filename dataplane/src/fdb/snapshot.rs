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

/// [`FdbSnapshot::snoop`]'s verdict on a decapsulated frame's inner source MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Snoop {
    /// Deliver; nothing to learn.
    Deliver,
    /// Deliver, and queue a learning event (new or moved MAC).
    Learn,
    /// Drop: a zero or multicast source MAC (learning on, as the kernel).
    DropInvalid,
    /// Drop: a static or store entry pins this MAC behind another VTEP.
    DropPinned,
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

    /// One MAC's entry as [`FdbSnapshot::unicast_entries`] gives it: its remotes and
    /// whether it is learned. For the express mirror's incremental sync.
    pub fn entry(&self, mac: &[u8; 6]) -> Option<(&[Remote], bool)> {
        let slot = self.map.get(&mac_key(mac))?;
        Some((&self.remotes[slot.start as usize..(slot.start + slot.len) as usize], slot.seen.is_some()))
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
        self.snoop(mac, vtep, now_secs) == Snoop::Learn
    }

    /// Hot path (decap): what the kernel's `vxlan_snoop` decides for a frame whose
    /// inner source is `mac`, from `vtep`. With learning off, always [`Snoop::Deliver`].
    /// With learning on: a zero or multicast MAC is dropped; a MAC that a Static or
    /// Consul entry pins behind another VTEP (its first remote, as the kernel compares)
    /// is dropped; a new or moved MAC is learned; a learned MAC behind `vtep` has its
    /// last-seen time refreshed, as [`Self::needs_learning`] says. One hash probe.
    #[inline]
    pub fn snoop(&self, mac: &[u8; 6], vtep: IpAddr, now_secs: u32) -> Snoop {
        if !self.learning {
            return Snoop::Deliver;
        }
        if !ethernet::is_unicast(mac) {
            return Snoop::DropInvalid;
        }
        let Some(slot) = self.map.get(&mac_key(mac)) else {
            return Snoop::Learn;
        };
        let first = self.remotes[slot.start as usize].ip;
        let Some(seen) = &slot.seen else {
            // Pinned by Static or Consul: never moved, and a frame from elsewhere is dropped.
            return if first == vtep { Snoop::Deliver } else { Snoop::DropPinned };
        };
        if first != vtep {
            return Snoop::Learn; // moved
        }
        if seen.load(Ordering::Relaxed) != now_secs {
            seen.store(now_secs, Ordering::Relaxed);
        }
        Snoop::Deliver
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
    use super::Snoop;
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
            assert_eq!(t.snapshot().snoop(&mac, vtep, now), Snoop::DropInvalid, "{mac:02x?}");
        }
        let off = FdbTable::new(false, DEFAULT_AGEING);
        assert_eq!(off.snapshot().snoop(&[0; 6], vtep, now), Snoop::Deliver, "learning off: the kernel checks nothing");
    }

    #[test]
    fn a_pinned_mac_from_another_vtep_is_dropped_as_the_kernel_does() {
        use vxdp_control::entry::{FdbOp, FdbRequest, Remote, Source};
        let ip = |last| IpAddr::V4(Ipv4Addr::new(192, 0, 2, last));
        let mac = [0x02, 0, 0, 0, 0, 0x0a];
        for source in [Source::Static, Source::Store] {
            let t = FdbTable::new(true, DEFAULT_AGEING);
            let req = |op, last| FdbRequest::new(op, vxdp_control::mac::Mac(mac), Some(Remote::new(ip(last))));
            t.apply(&req(FdbOp::Add, 1), source).unwrap();
            t.apply(&req(FdbOp::Append, 2), source).unwrap();
            let snap = t.snapshot();
            assert_eq!(snap.snoop(&mac, ip(1), 0), Snoop::Deliver);
            // The kernel compares the first remote only.
            assert_eq!(snap.snoop(&mac, ip(2), 0), Snoop::DropPinned, "{source}");
            assert_eq!(snap.snoop(&mac, ip(9), 0), Snoop::DropPinned, "{source}");
            assert!(!snap.needs_learning(&mac, ip(9), 0));
        }
        // A learned entry moves instead.
        let t = FdbTable::new(true, DEFAULT_AGEING);
        t.learn(mac, ip(1));
        t.maintain(Instant::now());
        assert_eq!(t.snapshot().snoop(&mac, ip(9), 0), Snoop::Learn);
        // Learning off: delivered, as the kernel (vxlan_snoop runs only with learning).
        let off = FdbTable::new(false, DEFAULT_AGEING);
        off.apply(&FdbRequest::new(FdbOp::Add, vxdp_control::mac::Mac(mac), Some(Remote::new(ip(1)))), Source::Static)
            .unwrap();
        assert_eq!(off.snapshot().snoop(&mac, ip(9), 0), Snoop::Deliver);
    }
}
