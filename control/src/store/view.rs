//! What a store holds under one VNI's prefix, and the FDB changes each update makes.
//!
//! The watcher feeds every [`Update`] of every store through [`View::apply`]: a full
//! listing is compared with what was there, events change single keys. Each key is
//! parsed in one place, `View::judge`; a malformed one is skipped, counted while it
//! stays malformed and logged once by name when it turns bad. Only the MACs whose
//! remote sets changed come out, as [`Change`]s.

use super::schema::{Keys, SchemaError};
use super::watch::Change;
use super::{Event, Update};
use crate::entry::Remote;
use crate::mac::Mac;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

/// The store's view of one VNI's FDB, key by key.
pub struct View {
    keys: Keys,
    /// Entries pointing at this address are this node's own: not installed.
    local: Option<IpAddr>,
    /// Store kind, for the log.
    kind: &'static str,
    /// Every well-formed key and the entry it means.
    entries: HashMap<String, (Mac, Remote)>,
    /// Keys malformed now.
    bad: HashSet<String>,
    /// Each MAC's remotes, with how many keys say so.
    desired: BTreeMap<Mac, BTreeMap<Remote, u32>>,
    /// MACs of this node's keys (the all-zeros MAC: its VTEP registration).
    own: BTreeMap<Mac, u32>,
}

impl View {
    pub fn new(keys: Keys, local: Option<IpAddr>, kind: &'static str) -> View {
        View {
            keys,
            local,
            kind,
            entries: HashMap::new(),
            bad: HashSet::new(),
            desired: BTreeMap::new(),
            own: BTreeMap::new(),
        }
    }

    /// Applies one update and returns the MACs whose remotes changed.
    pub fn apply(&mut self, update: &Update) -> Vec<Change> {
        let mut before: BTreeMap<Mac, Option<BTreeSet<Remote>>> = BTreeMap::new();
        match update {
            Update::Full(pairs) => {
                let listed: HashSet<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
                let gone: Vec<String> = self
                    .entries
                    .keys()
                    .chain(self.bad.iter())
                    .filter(|k| !listed.contains(k.as_str()))
                    .cloned()
                    .collect();
                for k in gone {
                    self.remove(&k, &mut before);
                }
                for (k, v) in pairs {
                    self.put(k, v, &mut before);
                }
            }
            Update::Events(events) => {
                for e in events {
                    match e {
                        Event::Put(k, v) => self.put(k, v, &mut before),
                        Event::Delete(k) => self.remove(k, &mut before),
                    }
                }
            }
        }
        let mut changes = Vec::new();
        for (mac, old) in before {
            let now: Option<BTreeSet<Remote>> = self.desired.get(&mac).map(|m| m.keys().copied().collect());
            if now != old {
                changes.push(Change { mac, existed: old.is_some(), remotes: now.unwrap_or_default() });
            }
        }
        changes
    }

    /// Judges one key/value pair from the store: the entry it means, `Ok(None)` for a
    /// kind of key this version does not know, an error for a malformed one. Every
    /// pair from every store passes through here.
    fn judge(&self, key: &str, value: &[u8]) -> Result<Option<(Mac, Remote)>, SchemaError> {
        self.keys.parse(key, value)
    }

    fn put(&mut self, key: &str, value: &[u8], before: &mut BTreeMap<Mac, Option<BTreeSet<Remote>>>) {
        let was_bad = self.bad.contains(key);
        match self.judge(key, value) {
            Ok(Some(entry)) => {
                if self.entries.get(key) == Some(&entry) {
                    return;
                }
                self.remove(key, before);
                self.add(key, entry, before);
            }
            Ok(None) => self.remove(key, before),
            Err(e) => {
                self.remove(key, before);
                if !was_bad {
                    log::warn!("{}: skipping key {key}: {e}", self.kind);
                }
                self.bad.insert(key.to_string());
            }
        }
    }

    fn add(&mut self, key: &str, (mac, remote): (Mac, Remote), before: &mut BTreeMap<Mac, Option<BTreeSet<Remote>>>) {
        if Some(remote.ip) == self.local {
            *self.own.entry(mac).or_default() += 1;
        } else {
            self.touch(mac, before);
            *self.desired.entry(mac).or_default().entry(remote).or_default() += 1;
        }
        self.entries.insert(key.to_string(), (mac, remote));
    }

    fn remove(&mut self, key: &str, before: &mut BTreeMap<Mac, Option<BTreeSet<Remote>>>) {
        self.bad.remove(key);
        let Some((mac, remote)) = self.entries.remove(key) else { return };
        if Some(remote.ip) == self.local {
            if let Some(n) = self.own.get_mut(&mac) {
                *n -= 1;
                if *n == 0 {
                    self.own.remove(&mac);
                }
            }
            return;
        }
        self.touch(mac, before);
        if let Some(remotes) = self.desired.get_mut(&mac) {
            if let Some(n) = remotes.get_mut(&remote) {
                *n -= 1;
                if *n == 0 {
                    remotes.remove(&remote);
                }
            }
            if remotes.is_empty() {
                self.desired.remove(&mac);
            }
        }
    }

    /// Remembers a MAC's remotes before the first change of this update touches it.
    fn touch(&self, mac: Mac, before: &mut BTreeMap<Mac, Option<BTreeSet<Remote>>>) {
        before.entry(mac).or_insert_with(|| self.desired.get(&mac).map(|m| m.keys().copied().collect()));
    }

    /// The MACs whose keys point at this node.
    pub fn own(&self) -> BTreeSet<Mac> {
        self.own.keys().copied().collect()
    }

    /// Keys under the prefix that are malformed now.
    pub fn skipped(&self) -> usize {
        self.bad.len()
    }

    /// Remotes from the store in the table now (the flood list counts each VTEP).
    pub fn entries(&self) -> usize {
        self.desired.values().map(|r| r.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        View::new(Keys::new("vxdp/", vxdp_common::Vni::new(5).unwrap()), Some("192.0.2.1".parse().unwrap()), "test")
    }

    fn kv(key: &str, value: &str) -> (String, Vec<u8>) {
        (key.to_string(), value.as_bytes().to_vec())
    }

    const M1: &str = "vxdp/vni/5/mac/02:00:00:00:00:01";
    const M2: &str = "vxdp/vni/5/mac/02:00:00:00:00:02";
    const M3: &str = "vxdp/vni/5/mac/02:00:00:00:00:03";

    #[test]
    fn full_listings_diff_skip_bad_keys_and_keep_own_apart() {
        let mut v = view();
        let good = kv(M1, r#"{"v":1,"vtep":"192.0.2.2"}"#);
        let mine = kv(M2, r#"{"v":1,"vtep":"192.0.2.1"}"#);
        let bad = kv(M3, "{");
        let c = v.apply(&Update::Full(vec![good.clone(), mine.clone(), bad.clone()]));
        assert_eq!(c.len(), 1);
        assert!(!c[0].existed && c[0].mac == Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!((v.entries(), v.skipped()), (1, 1));
        assert_eq!(v.own(), BTreeSet::from([Mac([2, 0, 0, 0, 0, 2])]));
        // The same listing again changes nothing; the bad key stays counted.
        assert!(v.apply(&Update::Full(vec![good.clone(), mine.clone(), bad.clone()])).is_empty());
        assert_eq!(v.skipped(), 1);
        // Fixed, and m1 deleted: two changes.
        let fixed = kv(M3, r#"{"v":1,"vtep":"192.0.2.3"}"#);
        let c = v.apply(&Update::Full(vec![mine, fixed]));
        assert_eq!(c.len(), 2);
        assert!(c.iter().any(|c| c.mac == Mac([2, 0, 0, 0, 0, 1]) && c.existed && c.remotes.is_empty()));
        assert_eq!((v.entries(), v.skipped()), (1, 0));
    }

    #[test]
    fn events_change_single_keys() {
        let mut v = view();
        v.apply(&Update::Full(vec![kv(M1, r#"{"v":1,"vtep":"192.0.2.2"}"#)]));
        let c = v.apply(&Update::Events(vec![
            Event::Put(M1.into(), br#"{"v":1,"vtep":"192.0.2.4"}"#.to_vec()),
            Event::Put("vxdp/vni/5/vtep/192.0.2.4".into(), br#"{"v":1}"#.to_vec()),
            Event::Put(M2.into(), b"nope".to_vec()),
        ]));
        assert_eq!(c.len(), 2);
        let moved = c.iter().find(|c| c.mac == Mac([2, 0, 0, 0, 0, 1])).unwrap();
        assert!(moved.existed && moved.remotes.iter().map(|r| r.ip.to_string()).eq(["192.0.2.4"]));
        assert_eq!(v.skipped(), 1);
        // A put and a delete of the same key in one update cancel out.
        let c = v.apply(&Update::Events(vec![
            Event::Put(M3.into(), br#"{"v":1,"vtep":"192.0.2.9"}"#.to_vec()),
            Event::Delete(M3.into()),
            Event::Delete(M2.into()),
        ]));
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(v.skipped(), 0);
        let c = v.apply(&Update::Events(vec![Event::Delete("vxdp/vni/5/vtep/192.0.2.4".into())]));
        assert_eq!(c.len(), 1);
        assert!(c[0].mac.is_zero() && c[0].remotes.is_empty());
    }
}
