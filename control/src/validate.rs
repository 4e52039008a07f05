//! Store values checked before they reach the FDB, the same for every store backend
//! (Consul today; etcd and ZooKeeper call the same functions): a backend decodes its
//! keys into `(MAC, Remote)` with the key schema, then asks [`StoreValidator::admit`]
//! whether each one may go in.
//!
//! Refused, counted and logged once by key (again only if the key turns bad anew):
//! - a VTEP that is multicast, broadcast, unspecified, loopback or one of this node's
//!   own addresses (the local VTEP address itself is not an error: entries pointing
//!   at it are this node's own, which the backends set aside before asking);
//! - an address family the node cannot reach (no IPv6 underlay yet);
//! - port 0;
//! - with [`StoreRules::require_held`], a key no session or lease holds (advertised keys
//!   always are: a dead node's keys vanish with its session; an unheld key is stale or
//!   forged).
//!
//! And past [`StoreRules::max_entries`] entries in one answer, the rest are refused
//! (counted, logged once per answer while it lasts): what is already accepted stays.
#![forbid(unsafe_code)]

use crate::entry::Remote;
use crate::mac::Mac;
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

/// Most entries accepted from one store answer by default: the 100,000-entry listing
/// the Consul benchmark loads (docs/CONSUL.md), which fits the 64 MiB answer cap
/// ([`MAX_ANSWER_BYTES`]) several times over.
pub const DEFAULT_MAX_STORE_ENTRIES: usize = 100_000;

/// Largest store answer read (a listing of 100,000 entries is ~15 MB); a larger one is
/// refused whole, and the last good state stays.
pub const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// What a store value must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRules {
    /// This node's addresses (all interfaces): never a remote VTEP.
    pub own: BTreeSet<IpAddr>,
    /// The node has an IPv4 underlay.
    pub ipv4: bool,
    /// The node has an IPv6 underlay.
    pub ipv6: bool,
    /// Most entries accepted from one answer.
    pub max_entries: usize,
    /// Refuse MAC keys that no session or lease holds.
    pub require_held: bool,
}

impl Default for StoreRules {
    fn default() -> Self {
        StoreRules {
            own: BTreeSet::new(),
            ipv4: true,
            ipv6: false,
            max_entries: DEFAULT_MAX_STORE_ENTRIES,
            require_held: false,
        }
    }
}

/// Why a store entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("VTEP {0} is a multicast address")]
    Multicast(IpAddr),
    #[error("VTEP {0} is the broadcast address")]
    Broadcast(IpAddr),
    #[error("VTEP {0} is unspecified")]
    Unspecified(IpAddr),
    #[error("VTEP {0} is a loopback address")]
    Loopback(IpAddr),
    #[error("VTEP {0} is one of this node's own addresses")]
    Own(IpAddr),
    #[error("VTEP {0}: this node has no {1} underlay")]
    Unreachable(IpAddr, &'static str),
    #[error("port 0")]
    PortZero,
    #[error("no session or lease holds the key")]
    NotHeld,
}

/// Checks one remote against the rules.
pub fn check_remote(remote: &Remote, rules: &StoreRules) -> Result<(), Invalid> {
    let ip = remote.ip;
    if ip.is_unspecified() {
        return Err(Invalid::Unspecified(ip));
    }
    if ip.is_multicast() {
        return Err(Invalid::Multicast(ip));
    }
    if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
        return Err(Invalid::Broadcast(ip));
    }
    if ip.is_loopback() {
        return Err(Invalid::Loopback(ip));
    }
    match ip {
        IpAddr::V4(_) if !rules.ipv4 => return Err(Invalid::Unreachable(ip, "IPv4")),
        IpAddr::V6(_) if !rules.ipv6 => return Err(Invalid::Unreachable(ip, "IPv6")),
        _ => {}
    }
    if rules.own.contains(&ip) {
        return Err(Invalid::Own(ip));
    }
    if remote.port == Some(0) {
        return Err(Invalid::PortZero);
    }
    Ok(())
}

/// Checks one decoded store entry: its remote, and (MAC keys, with
/// [`StoreRules::require_held`]) that a session or lease holds it. The flood list's
/// VTEP keys are checked like any remote.
pub fn check_entry(mac: Mac, remote: &Remote, held: bool, rules: &StoreRules) -> Result<(), Invalid> {
    check_remote(remote, rules)?;
    if rules.require_held && !mac.is_zero() && !held {
        return Err(Invalid::NotHeld);
    }
    Ok(())
}

/// Applies [`StoreRules`] to one answer after another: counts what it refuses and logs
/// each bad key once (while it stays bad), and the entry cap once per answer.
#[derive(Debug)]
pub struct StoreValidator {
    rules: StoreRules,
    /// The store's name in log lines (`consul`, `etcd`, ...).
    store: &'static str,
    logged: HashSet<String>,
    bad_now: HashSet<String>,
    accepted: usize,
    capped: u64,
    capped_logged: bool,
}

impl StoreValidator {
    pub fn new(store: &'static str, rules: StoreRules) -> StoreValidator {
        StoreValidator {
            rules,
            store,
            logged: HashSet::new(),
            bad_now: HashSet::new(),
            accepted: 0,
            capped: 0,
            capped_logged: false,
        }
    }

    pub fn rules(&self) -> &StoreRules {
        &self.rules
    }

    /// Starts a new answer.
    pub fn begin(&mut self) {
        self.bad_now.clear();
        self.accepted = 0;
        self.capped = 0;
    }

    /// Whether the entry under `key` may go in. Refusals are logged once by key.
    pub fn admit(&mut self, key: &str, mac: Mac, remote: &Remote, held: bool) -> bool {
        if let Err(e) = check_entry(mac, remote, held, &self.rules) {
            self.refuse(key, &e.to_string());
            return false;
        }
        if self.accepted >= self.rules.max_entries {
            self.capped += 1;
            return false;
        }
        self.accepted += 1;
        true
    }

    /// A key the backend itself could not decode: logged once by key like the rest.
    pub fn refuse(&mut self, key: &str, why: &str) {
        if !self.logged.contains(key) {
            log::warn!("{}: skipping key {key}: {why}", self.store);
        }
        self.bad_now.insert(key.to_string());
    }

    /// Ends the answer: returns (keys refused as invalid, entries refused by the cap).
    pub fn end(&mut self) -> (u64, u64) {
        if self.capped > 0 && !self.capped_logged {
            log::warn!(
                "{}: the answer has more than {} entries; the {} past the cap are refused (the cap is a \
                 bound against a store that grows without limit)",
                self.store,
                self.rules.max_entries,
                self.capped
            );
        }
        self.capped_logged = self.capped > 0;
        std::mem::swap(&mut self.logged, &mut self.bad_now);
        (self.logged.len() as u64, self.capped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn r(s: &str) -> Remote {
        Remote::new(s.parse().unwrap())
    }

    fn rules() -> StoreRules {
        StoreRules { own: ["192.0.2.1".parse().unwrap()].into(), ..Default::default() }
    }

    #[test]
    fn bad_vteps_are_refused_naming_why() {
        let rules = rules();
        for (remote, want) in [
            (r("224.0.0.1"), Invalid::Multicast("224.0.0.1".parse().unwrap())),
            (r("255.255.255.255"), Invalid::Broadcast(IpAddr::V4(Ipv4Addr::BROADCAST))),
            (r("0.0.0.0"), Invalid::Unspecified(IpAddr::V4(Ipv4Addr::UNSPECIFIED))),
            (r("127.0.0.5"), Invalid::Loopback("127.0.0.5".parse().unwrap())),
            (r("192.0.2.1"), Invalid::Own("192.0.2.1".parse().unwrap())),
            (r("2001:db8::1"), Invalid::Unreachable("2001:db8::1".parse().unwrap(), "IPv6")),
            (r("::1"), Invalid::Loopback(IpAddr::V6(Ipv6Addr::LOCALHOST))),
            (Remote { port: Some(0), ..r("192.0.2.9") }, Invalid::PortZero),
        ] {
            assert_eq!(check_remote(&remote, &rules), Err(want), "{remote}");
        }
        assert_eq!(check_remote(&r("192.0.2.9"), &rules), Ok(()));
        assert_eq!(check_remote(&Remote { port: Some(8472), ..r("192.0.2.9") }, &rules), Ok(()));
        assert!(Invalid::Own("192.0.2.1".parse().unwrap()).to_string().contains("own addresses"));
    }

    #[test]
    fn unheld_mac_keys_are_refused_when_required() {
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let mut rules = rules();
        assert_eq!(check_entry(mac, &r("192.0.2.9"), false, &rules), Ok(()));
        rules.require_held = true;
        assert_eq!(check_entry(mac, &r("192.0.2.9"), false, &rules), Err(Invalid::NotHeld));
        assert_eq!(check_entry(mac, &r("192.0.2.9"), true, &rules), Ok(()));
        assert_eq!(check_entry(Mac::ZERO, &r("192.0.2.9"), false, &rules), Ok(()), "VTEP keys are not MAC keys");
    }

    #[test]
    fn the_validator_caps_counts_and_forgets_fixed_keys() {
        let mut v = StoreValidator::new("test", StoreRules { max_entries: 2, ..rules() });
        let mac = |i: u8| Mac([2, 0, 0, 0, 0, i]);
        v.begin();
        assert!(v.admit("k1", mac(1), &r("192.0.2.9"), false));
        assert!(!v.admit("bad", mac(2), &r("127.0.0.1"), false));
        assert!(v.admit("k3", mac(3), &r("192.0.2.9"), false));
        assert!(!v.admit("k4", mac(4), &r("192.0.2.9"), false), "past the cap");
        assert_eq!(v.end(), (1, 1));
        v.begin();
        assert!(v.admit("bad", mac(2), &r("192.0.2.10"), false), "fixed");
        assert_eq!(v.end(), (0, 0));
        assert!(v.logged.is_empty());
    }
}
