//! What the control loop derives from the FDB each time it changes: the remotes whose
//! next hops it resolves, and the known VTEPs (`--accept known`, `--learning-from
//! known`).
#![forbid(unsafe_code)]

use super::{FdbTable, Remote};
use crate::nexthop::{NextHops, RemoteKey};
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

/// The remotes and known VTEPs of the FDB as of the last [`FdbFollower::update`].
#[derive(Debug, Default)]
pub struct FdbFollower {
    keys: Vec<RemoteKey>,
    known: BTreeSet<IpAddr>,
}

/// What an update found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Followed {
    /// The known VTEPs changed.
    pub known_changed: bool,
}

impl FdbFollower {
    /// Reads the FDB's remotes again, from the published snapshot: one pass over its
    /// entries, without the sorting and the per-entry records of `FdbTable::show`
    /// (at 100,000 entries 22-34 ms that way, docs/FDB.md).
    pub fn update(&mut self, fdb: &FdbTable, hops: &NextHops) -> Followed {
        let snap = fdb.snapshot();
        let mut all: HashSet<Remote> = HashSet::new();
        let mut known: BTreeSet<IpAddr> = BTreeSet::new();
        // The flood list is static or store entries, never learned.
        let flood = snap.flood().iter().map(|r| (r, false));
        let unicast =
            snap.unicast_entries().flat_map(|(_, remotes, learned)| remotes.iter().map(move |r| (r, learned)));
        for (r, learned) in flood.chain(unicast) {
            all.insert(*r);
            if !learned {
                known.insert(r.ip);
            }
        }
        let mut keys: Vec<RemoteKey> = all.iter().filter_map(|r| hops.key(r)).collect();
        keys.sort();
        keys.dedup();
        self.keys = keys;
        let known_changed = known != self.known;
        self.known = known;
        Followed { known_changed }
    }

    /// The distinct remotes of the FDB (address, port, VNI), sorted.
    pub fn keys(&self) -> &[RemoteKey] {
        &self.keys
    }

    /// The VTEPs static and store entries name (not learned ones).
    pub fn known(&self) -> &BTreeSet<IpAddr> {
        &self.known
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdb::DEFAULT_AGEING;
    use crate::nexthop::EncapDefaults;
    use crate::vxlan::Vni;
    use std::net::Ipv4Addr;
    use vxdp_control::entry::{FdbOp, FdbRequest, Source};
    use vxdp_control::mac::Mac;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn keys_are_every_remote_once_and_known_the_pinned_ones() {
        let t = FdbTable::new(true, DEFAULT_AGEING);
        let put = |m: u8, r: u8, op, s| {
            let req = FdbRequest::new(op, Mac([2, 0, 0, 0, 0, m]), Some(Remote::new(ip(r))));
            t.apply(&req, s).unwrap()
        };
        put(1, 1, FdbOp::Add, Source::Static);
        put(2, 1, FdbOp::Add, Source::Store);
        put(3, 2, FdbOp::Add, Source::Store);
        put(4, 3, FdbOp::Add, Source::Learned);
        // A learned remote that a store entry also names is known.
        put(5, 2, FdbOp::Add, Source::Learned);
        let flood = FdbRequest::new(FdbOp::Append, Mac::ZERO, Some(Remote::new(ip(9))));
        t.apply(&flood, Source::Static).unwrap();
        let d = EncapDefaults::new(Ipv4Addr::new(10, 0, 0, 1), Vni::new(42).unwrap());
        let hops = NextHops::new(d);
        let mut f = FdbFollower::default();
        assert!(f.update(&t, &hops).known_changed);
        let ips: Vec<IpAddr> = f.keys().iter().map(|k| k.ip).collect();
        assert_eq!(ips, vec![ip(1), ip(2), ip(3), ip(9)]);
        assert_eq!(f.known(), &[ip(1), ip(2), ip(9)].into());
        assert_eq!(*f.known(), crate::guard::known_vteps(&t.show()), "not what show() says");
        assert!(!f.update(&t, &hops).known_changed);
    }
}
