//! The key schema vxdp keeps in every cluster store (Consul, etcd), under a prefix
//! (default `vxdp/`):
//!
//! ```text
//! <prefix>vni/<vni>/vtep/<ip>   {"v":1}                                   a VTEP of the VNI (flood list)
//! <prefix>vni/<vni>/mac/<mac>   {"v":1,"vtep":"192.0.2.2","ip":"10.0.0.5"} a MAC and the VTEP it lives behind
//! ```
//!
//! Values are JSON objects with a schema version `v`. Version 1 readers accept any
//! version-1 value and ignore fields they do not know (so fields can be added without a
//! version bump); a value with a higher major version, or one that does not parse, is
//! skipped and counted, and the rest of the listing still applies. Optional fields:
//! `port` (UDP port of the VTEP when it is not the device's `dstport`), `ip` (the
//! endpoint's overlay IP, for ARP suppression later; not used by the data plane yet).
//! MACs are written lower-case `aa:bb:cc:dd:ee:ff`; a key's MAC is the authority, the
//! value does not repeat it.

use crate::entry::Remote;
use crate::mac::Mac;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use vxdp_common::Vni;

/// The schema version this code writes and the highest it reads.
pub const VERSION: u32 = 1;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "vxdp/";

/// Value of a `vtep/<ip>` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VtepValue {
    pub v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// Value of a `mac/<mac>` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacValue {
    pub v: u32,
    pub vtep: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
}

/// Why a key under the prefix was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("key does not follow <prefix>vni/<vni>/(vtep|mac)/<id>")]
    BadKey,
    #[error("'{0}' is not a MAC address")]
    BadMac(String),
    #[error("'{0}' is not an IP address")]
    BadIp(String),
    #[error("value is not valid JSON for this key: {0}")]
    BadValue(String),
    #[error("schema version {0} is newer than this vxdp understands ({VERSION})")]
    Version(u32),
}

/// The keys of one VNI under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
    vni: Vni,
}

impl Keys {
    /// `prefix` should end in `/` (one is added if not).
    pub fn new(prefix: &str, vni: Vni) -> Keys {
        let mut prefix = prefix.trim_start_matches('/').to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Keys { prefix, vni }
    }

    /// What the watcher lists: everything of this VNI.
    pub fn vni_prefix(&self) -> String {
        format!("{}vni/{}/", self.prefix, self.vni)
    }

    pub fn vtep(&self, ip: IpAddr) -> String {
        format!("{}vtep/{ip}", self.vni_prefix())
    }

    pub fn mac(&self, mac: Mac) -> String {
        format!("{}mac/{mac}", self.vni_prefix())
    }

    /// Parses one key of a listing of [`Keys::vni_prefix`] into the FDB entry it means:
    /// `(00:00:00:00:00:00, vtep)` for a VTEP registration, `(mac, vtep)` for a MAC.
    /// `Ok(None)` for keys of kinds this version does not know (a later schema may add
    /// them; they are not errors).
    pub fn parse(&self, key: &str, value: &[u8]) -> Result<Option<(Mac, Remote)>, SchemaError> {
        let rest = key.strip_prefix(&self.vni_prefix()).ok_or(SchemaError::BadKey)?;
        let (kind, id) = rest.split_once('/').ok_or(SchemaError::BadKey)?;
        if id.is_empty() || id.contains('/') {
            return Err(SchemaError::BadKey);
        }
        let version = |v: u32| if v > VERSION { Err(SchemaError::Version(v)) } else { Ok(()) };
        let bad_value = |e: serde_json::Error| SchemaError::BadValue(e.to_string());
        match kind {
            "vtep" => {
                let ip: IpAddr = id.parse().map_err(|_| SchemaError::BadIp(id.to_string()))?;
                let v: VtepValue = serde_json::from_slice(value).map_err(bad_value)?;
                version(v.v)?;
                Ok(Some((Mac::ZERO, Remote { ip, port: v.port, vni: None })))
            }
            "mac" => {
                let mac: Mac = id.parse().map_err(|_| SchemaError::BadMac(id.to_string()))?;
                if mac.is_zero() || mac.is_multicast() {
                    return Err(SchemaError::BadMac(id.to_string()));
                }
                let v: MacValue = serde_json::from_slice(value).map_err(bad_value)?;
                version(v.v)?;
                Ok(Some((mac, Remote { ip: v.vtep, port: v.port, vni: None })))
            }
            _ => Ok(None),
        }
    }
}

/// What Consul says the FDB of a VNI is: each MAC's remotes (the all-zeros MAC holds
/// the flood list).
pub type Desired = BTreeMap<Mac, BTreeSet<Remote>>;

/// The changes that turn `old` into `new`: for every MAC whose remotes differ, its new
/// remote set (empty = remove the MAC).
pub fn diff(old: &Desired, new: &Desired) -> Vec<(Mac, BTreeSet<Remote>)> {
    let mut out = Vec::new();
    for (mac, remotes) in new {
        if old.get(mac) != Some(remotes) {
            out.push((*mac, remotes.clone()));
        }
    }
    for mac in old.keys() {
        if !new.contains_key(mac) {
            out.push((*mac, BTreeSet::new()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
    }

    fn vni(v: u32) -> Vni {
        Vni::new(v).unwrap()
    }

    #[test]
    fn keys_and_values_round_trip() {
        let k = Keys::new("vxdp", vni(42));
        assert_eq!(k.vni_prefix(), "vxdp/vni/42/");
        let mac: Mac = "02:00:00:00:00:01".parse().unwrap();
        assert_eq!(k.mac(mac), "vxdp/vni/42/mac/02:00:00:00:00:01");
        let v = serde_json::to_vec(&MacValue { v: 1, vtep: ip(2), port: None, ip: None }).unwrap();
        assert_eq!(k.parse(&k.mac(mac), &v), Ok(Some((mac, Remote::new(ip(2))))));
        let v = serde_json::to_vec(&VtepValue { v: 1, port: Some(8472) }).unwrap();
        assert_eq!(
            k.parse(&k.vtep(ip(3)), &v),
            Ok(Some((Mac::ZERO, Remote { ip: ip(3), port: Some(8472), vni: None })))
        );
    }

    #[test]
    fn unknown_fields_are_ignored_unknown_kinds_skipped() {
        let k = Keys::new("vxdp/", vni(7));
        let v = br#"{"v":1,"vtep":"192.0.2.9","future":"x"}"#;
        assert!(k.parse("vxdp/vni/7/mac/02:00:00:00:00:09", v).unwrap().is_some());
        assert_eq!(k.parse("vxdp/vni/7/route/10.0.0.0_8", b"{}"), Ok(None));
    }

    #[test]
    fn malformed_keys_and_values_are_errors() {
        let k = Keys::new("vxdp/", vni(7));
        let good = br#"{"v":1,"vtep":"192.0.2.9"}"#;
        assert_eq!(
            k.parse("vxdp/vni/7/mac/zz:00:00:00:00:09", good),
            Err(SchemaError::BadMac("zz:00:00:00:00:09".into()))
        );
        assert_eq!(
            k.parse("vxdp/vni/7/mac/01:00:5e:00:00:01", good),
            Err(SchemaError::BadMac("01:00:5e:00:00:01".into()))
        );
        assert_eq!(k.parse("vxdp/vni/7/vtep/not-ip", br#"{"v":1}"#), Err(SchemaError::BadIp("not-ip".into())));
        assert!(matches!(k.parse("vxdp/vni/7/mac/02:00:00:00:00:09", b"{nope"), Err(SchemaError::BadValue(_))));
        assert_eq!(
            k.parse("vxdp/vni/7/mac/02:00:00:00:00:09", br#"{"v":2,"vtep":"192.0.2.9"}"#),
            Err(SchemaError::Version(2))
        );
        assert_eq!(k.parse("vxdp/vni/7/mac", good), Err(SchemaError::BadKey));
        assert_eq!(k.parse("vxdp/vni/8/mac/02:00:00:00:00:09", good), Err(SchemaError::BadKey));
    }

    #[test]
    fn diff_reports_changed_added_and_removed_macs() {
        let m = |b: u8| Mac([2, 0, 0, 0, 0, b]);
        let set = |d: &[u8]| d.iter().map(|d| Remote::new(ip(*d))).collect::<BTreeSet<_>>();
        let old: Desired = [(m(1), set(&[1])), (m(2), set(&[2])), (Mac::ZERO, set(&[1, 2]))].into();
        let new: Desired = [(m(1), set(&[1])), (m(2), set(&[3])), (m(4), set(&[1])), (Mac::ZERO, set(&[1]))].into();
        let mut d = diff(&old, &new);
        d.sort();
        assert_eq!(d, vec![(Mac::ZERO, set(&[1])), (m(2), set(&[3])), (m(4), set(&[1]))]);
        assert_eq!(diff(&new, &old).len(), 3);
        assert!(diff(&new, &new).is_empty());
        assert_eq!(diff(&new, &Desired::new()).len(), 4);
    }
}
