//! Outer-header templates per remote VTEP, built from the kernel's routes and neighbours.
//!
//! The control thread resolves each remote's underlay next hop (route, then neighbour)
//! through netlink and turns it into a precomputed [`OuterTemplate`]; workers look the
//! template up per packet in a published, immutable [`NextHops`] snapshot. A remote
//! whose neighbour is not resolved yet has no template, and its frames are dropped as
//! `no_neighbour` until it is.
#![forbid(unsafe_code)]

use crate::vxlan::{EncapParams, OuterTemplate, Vni};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use vxdp_control::entry::Remote;

/// A remote VTEP as the wire sees it: address, UDP port and VNI, defaults filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteKey {
    pub ip: IpAddr,
    pub port: u16,
    pub vni: u32,
}

/// Device-wide defaults for fields a remote does not set, and the outer header knobs.
#[derive(Clone, Copy, Debug)]
pub struct EncapDefaults {
    pub local: Ipv4Addr,
    pub port: u16,
    pub vni: Vni,
    /// The template's TTL and TOS (zero when inherited, `crate::outer::OuterKnobs`).
    pub ttl: u8,
    /// The TTL toward a multicast remote (`--group`; 1 with `--ttl auto`).
    pub ttl_multicast: u8,
    pub tos: u8,
    /// DF in every outer header (`--df set`).
    pub df: bool,
    pub udp_csum: bool,
}

impl EncapDefaults {
    /// A device of `vni` at `local` with the kernel vxlan device's defaults for the
    /// rest: port 4789, TTL 64 (1 toward a multicast group), TOS 0, DF unset, no outer
    /// UDP checksum.
    pub fn new(local: Ipv4Addr, vni: Vni) -> EncapDefaults {
        EncapDefaults { local, port: 4789, vni, ttl: 64, ttl_multicast: 1, tos: 0, df: false, udp_csum: false }
    }
}

/// The published set of resolved remotes.
#[derive(Default)]
pub struct NextHops {
    defaults: Option<EncapDefaults>,
    templates: HashMap<RemoteKey, OuterTemplate>,
}

impl NextHops {
    pub fn new(defaults: EncapDefaults) -> NextHops {
        NextHops { defaults: Some(defaults), templates: HashMap::new() }
    }

    pub fn key(&self, r: &Remote) -> Option<RemoteKey> {
        let d = self.defaults?;
        Some(RemoteKey { ip: r.ip, port: r.port.unwrap_or(d.port), vni: r.vni.unwrap_or(d.vni.get()) })
    }

    /// Hot path: the template for a remote, if its next hop is resolved.
    #[inline]
    pub fn get(&self, r: &Remote) -> Option<&OuterTemplate> {
        if self.templates.is_empty() {
            return None;
        }
        self.templates.get(&self.key(r)?)
    }

    /// The template of a remote already turned into its key.
    pub fn get_key(&self, key: &RemoteKey) -> Option<&OuterTemplate> {
        self.templates.get(key)
    }

    /// Resolves `key` to the next hop `src_mac` -> `dst_mac` over a path carrying outer
    /// packets of up to `path_mtu` bytes.
    pub fn insert(&mut self, key: RemoteKey, src_mac: [u8; 6], dst_mac: [u8; 6], path_mtu: u32) -> bool {
        let (Some(d), IpAddr::V4(dst_ip), Some(vni)) = (self.defaults, key.ip, Vni::new(key.vni)) else {
            return false;
        };
        let params = EncapParams {
            src_mac,
            dst_mac,
            src_ip: d.local,
            dst_ip,
            ttl: if dst_ip.is_multicast() { d.ttl_multicast } else { d.ttl },
            tos: d.tos,
            df: d.df,
            dst_port: key.port,
            vni,
            udp_csum: d.udp_csum,
            path_mtu: path_mtu.min(u32::from(u16::MAX)) as u16,
        };
        self.templates.insert(key, OuterTemplate::new(&params));
        true
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// The resolved next hop of every remote, for comparing snapshots.
    pub fn summary(&self) -> Vec<(RemoteKey, [u8; 6], [u8; 6])> {
        let mut v: Vec<_> = self.templates.iter().map(|(k, t)| (*k, t.params().src_mac, t.params().dst_mac)).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multicast_remote_gets_the_multicast_ttl() {
        let d = EncapDefaults::new(Ipv4Addr::new(192, 0, 2, 1), Vni::new(42).unwrap());
        let mut h = NextHops::new(EncapDefaults { udp_csum: true, ..d });
        for (ip, ttl) in [([239, 1, 1, 1], 1), ([192, 0, 2, 2], 64)] {
            let k = h.key(&Remote::new(IpAddr::V4(Ipv4Addr::from(ip)))).unwrap();
            assert!(h.insert(k, [2; 6], [1, 0, 0x5e, 1, 1, 1], 1500));
            assert_eq!(h.get_key(&k).unwrap().params().ttl, ttl, "{k:?}");
        }
    }
}
