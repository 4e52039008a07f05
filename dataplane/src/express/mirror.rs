//! What the express path's maps should hold, and the changes that get them there: pure
//! logic over an FDB snapshot and the next hops, no I/O, so it is tested without root.
//!
//! Remotes get stable slots in the templates array (a remote keeps its slot while any
//! entry uses it), so a next-hop change rewrites one template and no FDB entry, and an
//! FDB change never touches a template another entry uses. Changes come in an order that
//! never lets a program see an entry pointing at a template that is not yet, or no
//! longer, that remote's: new templates first, then FDB entries, then the templates of
//! freed slots are invalidated. A freed slot is reused only by a later sync.
//!
//! [`Mirror::sync`] recomputes every entry (O(table)); [`Mirror::sync_changes`] only the
//! MACs the table logged as changed, plus the templates of the slots in use (O(changes +
//! remotes)), with the same result: each slot counts the entries on it, and is freed when
//! that count reaches zero.

use crate::fdb::{FdbSnapshot, Remote};
use crate::nexthop::{NextHops, RemoteKey};
use crate::wire::ethernet;
use std::collections::HashMap;
use std::net::IpAddr;
use vxdp_common::express::{
    FdbKey, FdbValue, RemoteTemplate, FDB_LEARNED, MAX_FDB, MAX_REMOTES, NO_REMOTE, OUTER_V4_LEN, TPL_UDP_CSUM,
    TPL_VALID,
};

/// Map writes for one sync, in the order they must be applied.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Templates of new or changed slots: written before any entry points at them.
    pub templates: Vec<(u32, RemoteTemplate)>,
    /// New or changed FDB entries.
    pub fdb_put: Vec<(FdbKey, FdbValue)>,
    /// FDB entries gone from the snapshot (or no longer usable).
    pub fdb_del: Vec<FdbKey>,
    /// Slots no entry uses any more: their templates are invalidated last.
    pub freed: Vec<u32>,
    /// Entries left to the workers because the express maps are full.
    pub over_capacity: usize,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty() && self.fdb_put.is_empty() && self.fdb_del.is_empty() && self.freed.is_empty()
    }
}

/// The state the maps are in (as far as this side wrote them), and the slot allocator.
#[derive(Debug)]
pub struct Mirror {
    vni: u32,
    slots: HashMap<RemoteKey, u32>,
    free: Vec<u32>,
    next_slot: u32,
    fdb: HashMap<FdbKey, FdbValue>,
    templates: HashMap<u32, RemoteTemplate>,
    /// Entries per slot in use, and the remote the slot is for.
    refs: HashMap<u32, (RemoteKey, u32)>,
    /// No sync has run yet: the first one must be a full one.
    fresh: bool,
}

impl Mirror {
    /// An empty mirror for a device of `vni` (the maps start empty too).
    pub fn new(vni: u32) -> Mirror {
        Mirror {
            vni,
            slots: HashMap::new(),
            free: Vec::new(),
            next_slot: 0,
            fdb: HashMap::new(),
            templates: HashMap::new(),
            refs: HashMap::new(),
            fresh: true,
        }
    }

    /// Entries the maps hold now.
    pub fn len(&self) -> usize {
        self.fdb.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fdb.is_empty()
    }

    /// The changes that make the maps match `snap` and `hops`; the mirror takes them as
    /// applied. `clock` stamps new entries' last report (the table clock).
    pub fn sync(&mut self, snap: &FdbSnapshot, hops: &NextHops, clock: u32) -> Changes {
        let mut changes = Changes::default();
        let mut wanted: HashMap<FdbKey, FdbValue> = HashMap::with_capacity(self.fdb.len());
        let mut used: HashMap<RemoteKey, u32> = HashMap::new();
        for (mac, remotes, learned) in snap.unicast_entries() {
            if !ethernet::is_unicast(&mac) {
                continue;
            }
            if wanted.len() >= MAX_FDB as usize {
                changes.over_capacity += 1;
                continue;
            }
            let key = FdbKey::new(self.vni, mac);
            let (remote, vtep_v4) = match single_v4(remotes, hops) {
                Some((rk, ip)) => match self.slot(rk, &mut used) {
                    Some(slot) => (slot, ip),
                    None => {
                        changes.over_capacity += 1;
                        (NO_REMOTE, ip)
                    }
                },
                None => (NO_REMOTE, 0),
            };
            let flags = if learned { FDB_LEARNED } else { 0 };
            let reported = self.fdb.get(&key).map_or(clock, |v| v.reported);
            wanted.insert(key, FdbValue { remote, flags, vtep_v4, reported });
        }
        self.refs = used.iter().map(|(rk, slot)| (*slot, (*rk, 0))).collect();
        for v in wanted.values() {
            if let Some((_, n)) = self.refs.get_mut(&v.remote) {
                *n += 1;
            }
        }
        self.fresh = false;

        // Templates of the slots in use, before the entries that point at them.
        for (rk, slot) in &used {
            let tpl = template(hops, rk);
            if self.templates.get(slot) != Some(&tpl) {
                self.templates.insert(*slot, tpl);
                changes.templates.push((*slot, tpl));
            }
        }
        for (key, value) in &wanted {
            if self.fdb.get(key).is_none_or(|v| !same_entry(v, value)) {
                changes.fdb_put.push((*key, *value));
            }
        }
        for key in self.fdb.keys() {
            if !wanted.contains_key(key) {
                changes.fdb_del.push(*key);
            }
        }
        // Slots no entry uses any more: invalidated now, reused by a later sync.
        let gone: Vec<RemoteKey> = self.slots.keys().filter(|rk| !used.contains_key(rk)).copied().collect();
        for rk in gone {
            if let Some(slot) = self.slots.remove(&rk) {
                self.templates.remove(&slot);
                changes.freed.push(slot);
            }
        }
        changes.templates.sort_by_key(|(s, _)| *s);
        changes.fdb_put.sort_by_key(|(k, _)| k.mac);
        changes.fdb_del.sort_by_key(|k| k.mac);
        changes.freed.sort_unstable();
        self.fdb = wanted;
        changes
    }

    /// Like [`Mirror::sync`], recomputing only the entries of `macs` (the MACs changed
    /// since the last sync, repeats allowed) and the templates of the slots in use; falls
    /// back to a full sync when `overflow` (the table lost count) or before the first.
    /// `over_capacity` then counts only the changed entries that did not fit.
    pub fn sync_changes(
        &mut self,
        snap: &FdbSnapshot,
        hops: &NextHops,
        clock: u32,
        macs: &[[u8; 6]],
        overflow: bool,
    ) -> Changes {
        if overflow || self.fresh {
            return self.sync(snap, hops, clock);
        }
        let mut changes = Changes::default();
        let mut seen = std::collections::HashSet::with_capacity(macs.len());
        for mac in macs {
            if !seen.insert(*mac) {
                continue;
            }
            let key = FdbKey::new(self.vni, *mac);
            let old = self.fdb.get(&key).copied();
            let wanted = match snap.entry(mac) {
                Some(_) if !ethernet::is_unicast(mac) => None,
                None => None,
                Some(_) if old.is_none() && self.fdb.len() >= MAX_FDB as usize => {
                    changes.over_capacity += 1;
                    None
                }
                Some((remotes, learned)) => {
                    let (remote, vtep_v4) = match single_v4(remotes, hops) {
                        Some((rk, ip)) => match self.take_ref(rk) {
                            Some(slot) => (slot, ip),
                            None => {
                                changes.over_capacity += 1;
                                (NO_REMOTE, ip)
                            }
                        },
                        None => (NO_REMOTE, 0),
                    };
                    let flags = if learned { FDB_LEARNED } else { 0 };
                    let reported = old.map_or(clock, |v| v.reported);
                    Some(FdbValue { remote, flags, vtep_v4, reported })
                }
            };
            if let Some(old) = old {
                if let Some((_, n)) = self.refs.get_mut(&old.remote) {
                    *n -= 1;
                }
            }
            match wanted {
                Some(v) => {
                    if old.is_none_or(|o| !same_entry(&o, &v)) {
                        changes.fdb_put.push((key, v));
                    }
                    self.fdb.insert(key, v);
                }
                None if old.is_some() => {
                    self.fdb.remove(&key);
                    changes.fdb_del.push(key);
                }
                None => {}
            }
        }
        // Slots no entry uses any more: invalidated last, reused by a later sync.
        let gone: Vec<u32> = self.refs.iter().filter(|(_, (_, n))| *n == 0).map(|(s, _)| *s).collect();
        for slot in gone {
            if let Some((rk, _)) = self.refs.remove(&slot) {
                self.slots.remove(&rk);
                self.templates.remove(&slot);
                changes.freed.push(slot);
            }
        }
        // Templates of the slots in use (a next-hop change rewrites them here).
        for (slot, (rk, _)) in &self.refs {
            let tpl = template(hops, rk);
            if self.templates.get(slot) != Some(&tpl) {
                self.templates.insert(*slot, tpl);
                changes.templates.push((*slot, tpl));
            }
        }
        changes.templates.sort_by_key(|(s, _)| *s);
        changes.fdb_put.sort_by_key(|(k, _)| k.mac);
        changes.fdb_del.sort_by_key(|k| k.mac);
        changes.freed.sort_unstable();
        changes
    }

    /// One more entry on `rk`'s slot (allocating one), or `None` when all are taken.
    fn take_ref(&mut self, rk: RemoteKey) -> Option<u32> {
        if let Some(&slot) = self.slots.get(&rk) {
            if let Some((_, n)) = self.refs.get_mut(&slot) {
                *n += 1;
                return Some(slot);
            }
        }
        let mut used = HashMap::new();
        let slot = self.slot(rk, &mut used)?;
        self.refs.insert(slot, (rk, 1));
        Some(slot)
    }

    /// Makes the slots freed by the last sync available again: call once its changes
    /// are applied.
    pub fn recycle(&mut self, freed: &[u32]) {
        self.free.extend_from_slice(freed);
    }

    /// The slot of `rk` (allocating one), or `None` when all are taken.
    fn slot(&mut self, rk: RemoteKey, used: &mut HashMap<RemoteKey, u32>) -> Option<u32> {
        if let Some(s) = used.get(&rk) {
            return Some(*s);
        }
        let slot = match self.slots.get(&rk) {
            Some(s) => *s,
            None => {
                let s = match self.free.pop() {
                    Some(s) => s,
                    None if self.next_slot < MAX_REMOTES => {
                        self.next_slot += 1;
                        self.next_slot - 1
                    }
                    None => return None,
                };
                self.slots.insert(rk, s);
                s
            }
        };
        used.insert(rk, slot);
        Some(slot)
    }
}

/// An entry's remote when it has exactly one, over IPv4: the express path's case.
fn single_v4(remotes: &[Remote], hops: &NextHops) -> Option<(RemoteKey, u32)> {
    let [r] = remotes else { return None };
    let IpAddr::V4(ip) = r.ip else { return None };
    Some((hops.key(r)?, u32::from_ne_bytes(ip.octets())))
}

/// The template toward `rk`: valid when its next hop is resolved.
fn template(hops: &NextHops, rk: &RemoteKey) -> RemoteTemplate {
    let mut t = RemoteTemplate::default();
    if let Some(tpl) = hops.get_key(rk) {
        t.header[..OUTER_V4_LEN].copy_from_slice(tpl.header());
        (t.ip_sum, t.udp_sum) = tpl.partial_sums();
        t.flags = TPL_VALID | if tpl.params().udp_csum { TPL_UDP_CSUM } else { 0 };
        t.path_mtu = u32::from(tpl.params().path_mtu);
    }
    t
}

/// Equal but for `reported`, which the program writes.
fn same_entry(a: &FdbValue, b: &FdbValue) -> bool {
    a.remote == b.remote && a.flags == b.flags && a.vtep_v4 == b.vtep_v4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdb::{FdbTable, DEFAULT_AGEING};
    use crate::nexthop::EncapDefaults;
    use crate::vxlan::Vni;
    use std::net::Ipv4Addr;
    use vxdp_control::entry::{FdbOp, FdbRequest, Source};
    use vxdp_control::Mac;

    const VNI: u32 = 42;

    fn ip(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
    }

    fn mac(d: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, d])
    }

    fn hops() -> NextHops {
        NextHops::new(EncapDefaults::new(Ipv4Addr::new(192, 0, 2, 100), Vni::new(VNI).unwrap()))
    }

    fn resolve(h: &mut NextHops, d: u8) {
        let k = h.key(&Remote::new(ip(d))).unwrap();
        assert!(h.insert(k, [2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, d], 1500));
    }

    fn put(t: &FdbTable, op: FdbOp, m: Mac, d: u8, source: Source) {
        t.apply(&FdbRequest::new(op, m, Some(Remote::new(ip(d)))), source).unwrap();
    }

    fn vtep(d: u8) -> u32 {
        u32::from_ne_bytes([192, 0, 2, d])
    }

    #[test]
    fn entries_templates_and_their_order() {
        let t = FdbTable::new(true, DEFAULT_AGEING);
        let mut h = hops();
        resolve(&mut h, 1);
        put(&t, FdbOp::Replace, mac(1), 1, Source::Static);
        put(&t, FdbOp::Replace, mac(2), 2, Source::Learned); // next hop not resolved
        put(&t, FdbOp::Append, Mac::ZERO, 1, Source::Static); // flood entry: not mirrored
        let mut m = Mirror::new(VNI);
        let c = m.sync(&t.snapshot(), &h, 7);
        assert_eq!(c.fdb_put.len(), 2, "{c:?}");
        let v1 = c.fdb_put.iter().find(|(k, _)| k.mac == mac(1).0).unwrap().1;
        let v2 = c.fdb_put.iter().find(|(k, _)| k.mac == mac(2).0).unwrap().1;
        assert_eq!((v1.flags, v1.vtep_v4, v1.reported), (0, vtep(1), 7));
        assert_eq!((v2.flags, v2.vtep_v4), (FDB_LEARNED, vtep(2)));
        assert_ne!(v1.remote, v2.remote);
        let tpl1 = c.templates.iter().find(|(s, _)| *s == v1.remote).unwrap().1;
        let tpl2 = c.templates.iter().find(|(s, _)| *s == v2.remote).unwrap().1;
        assert_eq!(tpl1.flags, TPL_VALID);
        assert_eq!(&tpl1.header[..OUTER_V4_LEN], h.get(&Remote::new(ip(1))).unwrap().header());
        assert_eq!(tpl2.flags, 0, "an unresolved remote's template is invalid");

        // Nothing changed: nothing to write.
        assert!(m.sync(&t.snapshot(), &h, 8).is_empty());

        // The next hop resolves: one template, no entry.
        resolve(&mut h, 2);
        let c = m.sync(&t.snapshot(), &h, 9);
        assert_eq!((c.templates.len(), c.fdb_put.len()), (1, 0), "{c:?}");
        assert_eq!(c.templates[0].0, v2.remote);
    }

    #[test]
    fn replace_moves_the_entry_and_frees_the_old_slot() {
        let t = FdbTable::new(true, DEFAULT_AGEING);
        let mut h = hops();
        resolve(&mut h, 1);
        resolve(&mut h, 3);
        put(&t, FdbOp::Replace, mac(1), 1, Source::Static);
        let mut m = Mirror::new(VNI);
        let first = m.sync(&t.snapshot(), &h, 1);
        let old_slot = first.fdb_put[0].1.remote;
        m.recycle(&first.freed);

        put(&t, FdbOp::Replace, mac(1), 3, Source::Static);
        let c = m.sync(&t.snapshot(), &h, 2);
        assert_eq!(c.fdb_put.len(), 1);
        let v = c.fdb_put[0].1;
        assert_eq!(v.vtep_v4, vtep(3));
        assert_ne!(v.remote, old_slot, "a slot freed in this sync is not reused in it");
        assert_eq!(c.freed, vec![old_slot]);
        assert!(c.templates.iter().any(|(s, _)| *s == v.remote));
        m.recycle(&c.freed);

        // Deleting the MAC deletes the entry and frees its slot; the next remote reuses it.
        t.apply(&FdbRequest::new(FdbOp::Del, mac(1), None), Source::Static).unwrap();
        let c = m.sync(&t.snapshot(), &h, 3);
        assert_eq!((c.fdb_del, c.freed.clone()), (vec![FdbKey::new(VNI, mac(1).0)], vec![v.remote]));
        m.recycle(&c.freed);
        put(&t, FdbOp::Replace, mac(4), 1, Source::Static);
        let c = m.sync(&t.snapshot(), &h, 4);
        assert!([old_slot, v.remote].contains(&c.fdb_put[0].1.remote), "{c:?}");
        assert!(m.len() == 1 && !m.is_empty());
    }

    #[test]
    fn several_remotes_leave_the_entry_to_the_workers_and_ipv6_never_reaches_it() {
        let t = FdbTable::new(false, DEFAULT_AGEING);
        let mut h = hops();
        resolve(&mut h, 1);
        resolve(&mut h, 2);
        put(&t, FdbOp::Append, mac(1), 1, Source::Static);
        put(&t, FdbOp::Append, mac(1), 2, Source::Static);
        let m6 = Remote::new("2001:db8::1".parse().unwrap());
        // The table refuses an IPv6 remote (no IPv6 underlay yet), so none is mirrored.
        assert!(t.apply(&FdbRequest::new(FdbOp::Replace, mac(6), Some(m6)), Source::Static).is_err());
        let mut m = Mirror::new(VNI);
        let c = m.sync(&t.snapshot(), &h, 1);
        assert_eq!(c.fdb_put.len(), 1);
        assert!(c.fdb_put.iter().all(|(_, v)| v.remote == NO_REMOTE), "{c:?}");
        assert!(c.templates.is_empty());
    }

    #[test]
    fn a_learned_entry_keeps_the_programs_report_clock() {
        let t = FdbTable::new(true, DEFAULT_AGEING);
        let h = hops();
        put(&t, FdbOp::Replace, mac(1), 1, Source::Learned);
        let mut m = Mirror::new(VNI);
        assert_eq!(m.sync(&t.snapshot(), &h, 5).fdb_put[0].1.reported, 5);
        // The same entry, re-pinned by a static one: rewritten, the clock kept.
        put(&t, FdbOp::Replace, mac(1), 1, Source::Static);
        let c = m.sync(&t.snapshot(), &h, 9);
        assert_eq!((c.fdb_put[0].1.flags, c.fdb_put[0].1.reported), (0, 5));
    }

    /// Applies `c` to a model of the maps, checking the order rule on the way.
    fn apply(maps: &mut (HashMap<FdbKey, FdbValue>, HashMap<u32, RemoteTemplate>), c: &Changes) {
        for (s, t) in &c.templates {
            maps.1.insert(*s, *t);
        }
        for (k, v) in &c.fdb_put {
            assert!(v.remote == NO_REMOTE || maps.1.contains_key(&v.remote), "entry before its template: {c:?}");
            maps.0.insert(*k, *v);
        }
        for k in &c.fdb_del {
            maps.0.remove(k);
        }
        for s in &c.freed {
            assert!(maps.0.values().all(|v| v.remote != *s), "slot {s} freed while in use");
            maps.1.remove(s);
        }
    }

    /// What each MAC's entry resolves to: slots differ between two mirrors, the remote
    /// behind them must not.
    fn resolved(
        maps: &(HashMap<FdbKey, FdbValue>, HashMap<u32, RemoteTemplate>),
    ) -> Vec<([u8; 6], u32, u32, Option<RemoteTemplate>)> {
        let mut v: Vec<_> =
            maps.0.iter().map(|(k, v)| (k.mac, v.flags, v.vtep_v4, maps.1.get(&v.remote).copied())).collect();
        v.sort_by_key(|e| e.0);
        v
    }

    #[test]
    fn incremental_sync_matches_a_full_sync_after_random_changes() {
        let t = FdbTable::new(true, DEFAULT_AGEING);
        let mut h = hops();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut inc = Mirror::new(VNI);
        let mut maps = Default::default();
        for round in 0..200 {
            for _ in 0..next(8) {
                let m = mac(next(40) as u8);
                let d = 1 + next(12) as u8;
                match next(5) {
                    0 => drop(t.apply(&FdbRequest::new(FdbOp::Del, m, None), Source::Static)),
                    1 => put(&t, FdbOp::Append, m, d, Source::Static),
                    2 => drop(t.learn(m.0, ip(d))),
                    3 => resolve(&mut h, d),
                    _ => put(&t, FdbOp::Replace, m, d, Source::Store),
                }
            }
            t.maintain(std::time::Instant::now());
            let (snap, log) = t.take_changes();
            let c = inc.sync_changes(&snap, &h, round, &log.macs, log.overflow);
            apply(&mut maps, &c);
            inc.recycle(&c.freed);
            let mut full = Mirror::new(VNI);
            let mut want = Default::default();
            apply(&mut want, &full.sync(&snap, &h, round));
            assert_eq!(resolved(&maps), resolved(&want), "round {round}");
            assert_eq!(inc.refs.len(), full.refs.len(), "round {round}: slots in use");
        }
    }

    #[test]
    fn an_overflowed_log_means_a_full_sync() {
        let t = FdbTable::new(true, DEFAULT_AGEING);
        let h = hops();
        let mut m = Mirror::new(VNI);
        let (snap, _) = t.take_changes();
        assert!(m.sync_changes(&snap, &h, 1, &[], false).is_empty(), "first sync: full, of nothing");
        let reqs: Vec<_> = (0..5000u32)
            .map(|i| {
                let b = i.to_be_bytes();
                let r = FdbRequest::new(FdbOp::Add, Mac([2, 9, b[0], b[1], b[2], b[3]]), Some(Remote::new(ip(1))));
                (r, Source::Store)
            })
            .collect();
        t.apply_batch(&reqs).unwrap();
        let (snap, log) = t.take_changes();
        assert!(log.overflow && log.macs.is_empty());
        let c = m.sync_changes(&snap, &h, 2, &log.macs, log.overflow);
        assert_eq!(c.fdb_put.len(), 5000);
        let (_, log) = t.take_changes();
        assert!(!log.overflow && log.macs.is_empty(), "drained");
    }

    #[test]
    fn incremental_frees_a_slot_last_and_reuses_it_only_later() {
        let t = FdbTable::new(true, DEFAULT_AGEING);
        let mut h = hops();
        resolve(&mut h, 1);
        resolve(&mut h, 3);
        put(&t, FdbOp::Replace, mac(1), 1, Source::Static);
        put(&t, FdbOp::Replace, mac(2), 1, Source::Static);
        let mut m = Mirror::new(VNI);
        let (snap, _) = t.take_changes();
        let first = m.sync_changes(&snap, &h, 1, &[], false);
        let slot1 = first.fdb_put[0].1.remote;
        // One of two entries leaves the slot: it stays.
        put(&t, FdbOp::Replace, mac(1), 3, Source::Static);
        let (snap, log) = t.take_changes();
        let c = m.sync_changes(&snap, &h, 2, &log.macs, false);
        assert!(c.freed.is_empty(), "{c:?}");
        let slot3 = c.fdb_put[0].1.remote;
        assert!(c.templates.iter().any(|(s, _)| *s == slot3));
        // The last one leaves: freed in this sync, not reused by the new remote in it.
        t.apply(&FdbRequest::new(FdbOp::Del, mac(2), None), Source::Static).unwrap();
        put(&t, FdbOp::Replace, mac(4), 2, Source::Static);
        let (snap, log) = t.take_changes();
        let c = m.sync_changes(&snap, &h, 3, &log.macs, false);
        assert_eq!(c.freed, vec![slot1]);
        assert_eq!(c.fdb_del, vec![FdbKey::new(VNI, mac(2).0)]);
        assert_ne!(c.fdb_put[0].1.remote, slot1);
        m.recycle(&c.freed);
        put(&t, FdbOp::Replace, mac(5), 4, Source::Static);
        let (snap, log) = t.take_changes();
        let c = m.sync_changes(&snap, &h, 4, &log.macs, false);
        assert_eq!(c.fdb_put[0].1.remote, slot1, "recycled, then reused");
    }
}
