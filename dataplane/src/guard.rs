//! The underlay guard's userspace half: who may send this VTEP VXLAN at all.
//!
//! XDP sees a frame before netfilter (netdev ingress included) and before `rp_filter`,
//! so a host firewall rule limiting UDP/4789 to known peers never sees vxdp's traffic.
//! The guard is that rule, in XDP: an LPM trie of accepted outer IPv4 sources
//! (`--accept any|known|CIDR...`), with the host's own addresses always refused (the
//! kernel's `fib_validate_source` does the same), and a counter
//! (`xdp_drop_source_rejected`). [`accept_entries`] is the pure part: what the trie
//! should hold for a policy, the FDB's known VTEPs and the host's addresses; [`Guard`]
//! applies it to the map, in an order no program run sees a half-made policy in
//! (additions and changes first, then removals).
//!
//! It also carries the overlay device's MAC, so the express path leaves frames from it
//! (a loop) to the workers, which drop them as the kernel's `vxlan_snoop` does.
#![forbid(unsafe_code)]

use crate::xdp::{XdpError, XdpPrograms};
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, MapData, MapError};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use vxdp_common::guard::{GuardConfig, ACCEPT, GUARD_FILTER, GUARD_OWN_MAC, MAX_ACCEPT_V4, REJECT};
use vxdp_common::maps;
use vxdp_control::ctl::FdbShowEntry;
use vxdp_control::entry::Source;

/// An IPv4 prefix, host bits cleared (`10.1.0.0/16`; a bare address is a `/32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix4 {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Prefix4 {
    /// `addr/len` with the bits past `len` cleared; `len` at most 32.
    pub fn new(addr: Ipv4Addr, len: u8) -> Prefix4 {
        let len = len.min(32);
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
        Prefix4 { addr: Ipv4Addr::from(u32::from(addr) & mask), len }
    }

    pub fn host(addr: Ipv4Addr) -> Prefix4 {
        Prefix4 { addr, len: 32 }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        Prefix4::new(ip, self.len).addr == self.addr
    }
}

impl FromStr for Prefix4 {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().ok().filter(|l| *l <= 32).ok_or(format!("'{s}': bad prefix length"))?),
            None => (s, 32),
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| {
            if addr.parse::<std::net::Ipv6Addr>().is_ok() {
                format!("'{s}': IPv6 underlay is not supported yet")
            } else {
                format!("'{s}' is not any, known, or an IPv4 address or CIDR prefix")
            }
        })?;
        Ok(Prefix4::new(addr, len))
    }
}

impl fmt::Display for Prefix4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// `--accept`: the outer sources VXLAN is taken from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptPolicy {
    /// `any`: every source but the host's own (the kernel's behaviour).
    pub any: bool,
    /// `known`: the VTEPs the FDB names in static, flood-list and store entries.
    pub known: bool,
    /// And these prefixes.
    pub prefixes: Vec<Prefix4>,
}

impl Default for AcceptPolicy {
    fn default() -> Self {
        AcceptPolicy { any: true, known: false, prefixes: Vec::new() }
    }
}

impl AcceptPolicy {
    /// The `--accept` values as given (each may be a comma-separated list): `any`
    /// alone, or `known` and/or prefixes. None given: `any`.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<AcceptPolicy, String> {
        let mut p = AcceptPolicy { any: false, known: false, prefixes: Vec::new() };
        let mut n = 0;
        for v in values.iter().flat_map(|v| v.as_ref().split(',')).map(str::trim).filter(|v| !v.is_empty()) {
            n += 1;
            match v {
                "any" => p.any = true,
                "known" => p.known = true,
                cidr => p.prefixes.push(cidr.parse()?),
            }
        }
        if n == 0 {
            return Ok(AcceptPolicy::default());
        }
        if p.any && n > 1 {
            return Err("'any' takes every source and cannot be combined with known or prefixes".into());
        }
        Ok(p)
    }
}

impl fmt::Display for AcceptPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.any {
            return f.write_str("any");
        }
        let mut parts: Vec<String> = Vec::new();
        if self.known {
            parts.push("known".into());
        }
        parts.extend(self.prefixes.iter().map(|p| p.to_string()));
        f.write_str(&parts.join(","))
    }
}

/// `--learning-from`: whose frames may teach the FDB where a MAC lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LearningFrom {
    /// Any source VXLAN is accepted from (the kernel's behaviour).
    #[default]
    Any,
    /// Only VTEPs the FDB already names in static, flood-list or store entries.
    Known,
}

impl FromStr for LearningFrom {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "any" => Ok(LearningFrom::Any),
            "known" => Ok(LearningFrom::Known),
            _ => Err(format!("'{s}' is not known or any")),
        }
    }
}

impl fmt::Display for LearningFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LearningFrom::Any => "any",
            LearningFrom::Known => "known",
        })
    }
}

/// The known VTEPs: every remote of a static or store entry (the flood list included),
/// not the ones only learning put there.
pub fn known_vteps(entries: &[FdbShowEntry]) -> BTreeSet<IpAddr> {
    entries.iter().filter(|e| e.source != Source::Learned).map(|e| e.remote.ip).collect()
}

/// What the accept trie should hold: the policy's prefixes (with `known`, one `/32` per
/// known IPv4 VTEP) accepted, and the host's own addresses refused, which wins over
/// everything. At most [`MAX_ACCEPT_V4`] prefixes: own addresses first, then the
/// configured prefixes, then known VTEPs (the ones past the cap are left out, so
/// rejected: safe, and the caller logs it).
pub fn accept_entries(
    policy: &AcceptPolicy,
    known: &BTreeSet<IpAddr>,
    own: &BTreeSet<Ipv4Addr>,
) -> (BTreeMap<Prefix4, u32>, usize) {
    let mut out = BTreeMap::new();
    let cap = MAX_ACCEPT_V4 as usize;
    for ip in own {
        if out.len() < cap {
            out.insert(Prefix4::host(*ip), REJECT);
        }
    }
    let mut left_out = 0;
    let mut accept = |p: Prefix4, out: &mut BTreeMap<Prefix4, u32>| {
        if out.contains_key(&p) {
            return;
        }
        if out.len() < cap {
            out.insert(p, ACCEPT);
        } else {
            left_out += 1;
        }
    };
    if policy.any {
        accept(Prefix4::new(Ipv4Addr::UNSPECIFIED, 0), &mut out);
    }
    for p in &policy.prefixes {
        accept(*p, &mut out);
    }
    if policy.known {
        for ip in known {
            if let IpAddr::V4(v4) = ip {
                accept(Prefix4::host(*v4), &mut out);
            }
        }
    }
    (out, left_out)
}

fn map_err(map: &'static str) -> impl Fn(MapError) -> XdpError {
    move |source| XdpError::Map { map, source }
}

/// The guard's maps and what was last written to them.
pub struct Guard {
    config: Array<MapData, GuardConfig>,
    trie: LpmTrie<MapData, [u8; 4], u32>,
    policy: AcceptPolicy,
    installed: BTreeMap<Prefix4, u32>,
    cfg: GuardConfig,
    warned_cap: bool,
}

impl Guard {
    /// Takes the guard's maps out of the loaded object. Nothing is filtered until the
    /// first [`Guard::sync`], which must run before the underlay program is attached.
    pub fn new(xdp: &mut XdpPrograms, policy: AcceptPolicy) -> Result<Guard, XdpError> {
        let config = Array::try_from(xdp.take_map(maps::GUARD_CONFIG)?).map_err(map_err(maps::GUARD_CONFIG))?;
        let trie = LpmTrie::try_from(xdp.take_map(maps::GUARD_ACCEPT_V4)?).map_err(map_err(maps::GUARD_ACCEPT_V4))?;
        Ok(Guard { config, trie, policy, installed: BTreeMap::new(), cfg: GuardConfig::default(), warned_cap: false })
    }

    pub fn policy(&self) -> &AcceptPolicy {
        &self.policy
    }

    /// Brings the trie to [`accept_entries`] for these known VTEPs and own addresses, and
    /// turns the filter on (the first time). Returns how many prefixes changed.
    pub fn sync(&mut self, known: &BTreeSet<IpAddr>, own: &BTreeSet<Ipv4Addr>) -> Result<usize, XdpError> {
        let (want, left_out) = accept_entries(&self.policy, known, own);
        if left_out > 0 && !self.warned_cap {
            self.warned_cap = true;
            log::warn!(
                "--accept: {left_out} known VTEP(s) left out of the accept list, which holds at most {MAX_ACCEPT_V4} \
                 prefixes; their VXLAN is refused"
            );
        }
        let err = map_err(maps::GUARD_ACCEPT_V4);
        let mut changed = 0;
        for (p, v) in &want {
            if self.installed.get(p) != Some(v) {
                self.trie.insert(&Key::new(u32::from(p.len), p.addr.octets()), v, 0).map_err(&err)?;
                self.installed.insert(*p, *v);
                changed += 1;
            }
        }
        let stale: Vec<Prefix4> = self.installed.keys().filter(|p| !want.contains_key(p)).copied().collect();
        for p in stale {
            match self.trie.remove(&Key::new(u32::from(p.len), p.addr.octets())) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(err(e)),
            }
            self.installed.remove(&p);
            changed += 1;
        }
        if changed > 0 {
            log::info!(
                "--accept {}: {} prefix(es) accepted, {} own address(es) refused",
                self.policy,
                { self.installed.values().filter(|v| **v == ACCEPT).count() },
                own.len()
            );
        }
        if self.cfg.flags & GUARD_FILTER == 0 {
            self.cfg.flags |= GUARD_FILTER;
            self.write_config()?;
        }
        Ok(changed)
    }

    /// The overlay device's MAC, for the express path's loop check.
    pub fn set_own_mac(&mut self, mac: [u8; 6]) -> Result<(), XdpError> {
        if self.cfg.own_mac == mac && self.cfg.flags & GUARD_OWN_MAC != 0 {
            return Ok(());
        }
        self.cfg.own_mac = mac;
        self.cfg.flags |= GUARD_OWN_MAC;
        self.write_config()
    }

    fn write_config(&mut self) -> Result<(), XdpError> {
        self.config.set(0, self.cfg, 0).map_err(map_err(maps::GUARD_CONFIG))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn p(s: &str) -> Prefix4 {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_parse_and_clear_host_bits() {
        assert_eq!(p("10.1.2.3/16"), Prefix4 { addr: v4("10.1.0.0"), len: 16 });
        assert_eq!(p("10.1.2.3"), Prefix4 { addr: v4("10.1.2.3"), len: 32 });
        assert_eq!(p("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert!(p("10.0.0.0/8").contains(v4("10.200.0.1")) && !p("10.0.0.0/8").contains(v4("11.0.0.1")));
        for (bad, says) in [("10.0.0.0/33", "prefix length"), ("fd00::/8", "IPv6"), ("bogus", "not any, known")] {
            let e = bad.parse::<Prefix4>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn policies_parse_like_the_flag_says() {
        assert_eq!(AcceptPolicy::parse::<&str>(&[]).unwrap(), AcceptPolicy::default());
        assert!(AcceptPolicy::parse(&["any"]).unwrap().any);
        let k = AcceptPolicy::parse(&["known,10.0.0.0/8", "192.0.2.7"]).unwrap();
        assert!(!k.any && k.known);
        assert_eq!(k.prefixes, vec![p("10.0.0.0/8"), p("192.0.2.7/32")]);
        assert_eq!(k.to_string(), "known,10.0.0.0/8,192.0.2.7/32");
        assert!(AcceptPolicy::parse(&["any", "known"]).unwrap_err().contains("cannot be combined"));
        assert_eq!("known".parse::<LearningFrom>(), Ok(LearningFrom::Known));
        assert!("some".parse::<LearningFrom>().is_err());
    }

    #[test]
    fn own_addresses_are_refused_in_every_mode_and_win() {
        let own: BTreeSet<Ipv4Addr> = [v4("192.0.2.1")].into();
        let known: BTreeSet<IpAddr> = [IpAddr::V4(v4("192.0.2.2")), IpAddr::V4(v4("192.0.2.1"))].into();
        let (any, _) = accept_entries(&AcceptPolicy::default(), &known, &own);
        assert_eq!(any, [(p("0.0.0.0/0"), ACCEPT), (p("192.0.2.1"), REJECT)].into());
        let policy = AcceptPolicy::parse(&["known", "198.51.100.0/24"]).unwrap();
        let (k, left_out) = accept_entries(&policy, &known, &own);
        assert_eq!(left_out, 0);
        assert_eq!(
            k,
            [(p("192.0.2.1"), REJECT), (p("192.0.2.2"), ACCEPT), (p("198.51.100.0/24"), ACCEPT)].into(),
            "a known VTEP that is one of our own addresses stays refused"
        );
    }

    #[test]
    fn the_trie_never_holds_more_than_its_capacity() {
        let own: BTreeSet<Ipv4Addr> = [v4("192.0.2.1")].into();
        let known: BTreeSet<IpAddr> =
            (0..MAX_ACCEPT_V4 + 10).map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))).collect();
        let (k, left_out) = accept_entries(&AcceptPolicy::parse(&["known"]).unwrap(), &known, &own);
        assert_eq!(k.len(), MAX_ACCEPT_V4 as usize);
        assert_eq!(left_out, 11);
        assert_eq!(k.get(&p("192.0.2.1")), Some(&REJECT));
    }

    #[test]
    fn known_vteps_are_the_static_and_store_remotes() {
        use vxdp_control::entry::Remote;
        use vxdp_control::mac::Mac;
        let e = |last: u8, source| FdbShowEntry {
            mac: Mac([2, 0, 0, 0, 0, last]),
            remote: Remote::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))),
            source,
            age_secs: None,
        };
        let known = known_vteps(&[e(1, Source::Static), e(2, Source::Store), e(3, Source::Learned)]);
        assert_eq!(known, [IpAddr::V4(v4("192.0.2.1")), IpAddr::V4(v4("192.0.2.2"))].into());
    }
}
