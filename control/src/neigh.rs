//! Proxy neighbour entries as requested, in `ip neigh` terms: `vxdp neigh
//! add|replace|del IP [lladdr MAC] [dev NAME]`, like `ip neigh ... dev vxlan0`. With
//! `vxdp run --proxy`, the data plane answers ARP requests and IPv6 neighbour
//! solicitations for these addresses itself (the kernel device's `proxy`).
#![forbid(unsafe_code)]

use crate::mac::Mac;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// `ip neigh` operations on the proxy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NeighOp {
    /// Fails if the address has an entry (`ip neigh add`: "File exists").
    Add,
    /// Sets the entry, whether it exists or not.
    Replace,
    /// Removes the entry; fails if there is none.
    Del,
}

impl std::str::FromStr for NeighOp {
    type Err = NeighParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "add" => Ok(NeighOp::Add),
            "replace" | "change" => Ok(NeighOp::Replace),
            "del" | "delete" => Ok(NeighOp::Del),
            _ => Err(NeighParseError(format!("unknown neigh command '{s}': expected add, replace, del or show"))),
        }
    }
}

/// One change to the proxy table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighRequest {
    pub op: NeighOp,
    /// The overlay address (IPv4 for ARP, IPv6 for neighbour discovery).
    pub ip: IpAddr,
    /// The MAC to answer with; required for `add` and `replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
}

/// One entry, as `neigh show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NeighShowEntry {
    pub ip: IpAddr,
    pub mac: Mac,
}

/// A refused `vxdp neigh` argument list; the text names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NeighParseError(pub String);

/// Parsed `IP [lladdr MAC] [nud permanent] [dev NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighArgs {
    pub ip: IpAddr,
    pub mac: Option<Mac>,
    pub dev: Option<String>,
}

impl NeighArgs {
    /// The request for `op`: `add` and `replace` need `lladdr`, multicast and all-zeros
    /// MACs are refused (as `ip neigh` on a vxlan device answers nothing useful with them).
    pub fn request(&self, op: NeighOp) -> Result<NeighRequest, NeighParseError> {
        match (op, self.mac) {
            (NeighOp::Add | NeighOp::Replace, None) => {
                Err(NeighParseError(format!("neigh {}: lladdr MAC is required", op_name(op))))
            }
            (_, Some(m)) if m.is_zero() || m.is_multicast() => {
                Err(NeighParseError(format!("lladdr {m}: not a unicast MAC")))
            }
            _ => Ok(NeighRequest { op, ip: self.ip, mac: self.mac }),
        }
    }
}

fn op_name(op: NeighOp) -> &'static str {
    match op {
        NeighOp::Add => "add",
        NeighOp::Replace => "replace",
        NeighOp::Del => "del",
    }
}

/// Parses the tail of `vxdp neigh add|replace|del`: `IP [lladdr MAC] [nud permanent]
/// [dev NAME]`, keywords in any order after the address (as `ip neigh` takes them).
pub fn parse_neigh_args<S: AsRef<str>>(args: &[S]) -> Result<NeighArgs, NeighParseError> {
    let mut it = args.iter().map(AsRef::as_ref);
    let ip_text = it.next().ok_or_else(|| NeighParseError("expected an IP address".into()))?;
    let ip: IpAddr = ip_text.parse().map_err(|_| NeighParseError(format!("'{ip_text}' is not an IP address")))?;
    if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
        return Err(NeighParseError(format!("{ip}: not a unicast overlay address")));
    }
    let (mut mac, mut dev) = (None, None);
    while let Some(key) = it.next() {
        let mut value = || it.next().ok_or_else(|| NeighParseError(format!("'{key}' needs a value")));
        match key {
            "lladdr" => {
                let v = value()?;
                mac = Some(v.parse::<Mac>().map_err(|_| NeighParseError(format!("lladdr '{v}' is not a MAC")))?);
            }
            "dev" => dev = Some(value()?.to_string()),
            "nud" => match value()? {
                "permanent" => {}
                v => return Err(NeighParseError(format!("nud {v}: vxdp's proxy entries are always permanent"))),
            },
            other => return Err(NeighParseError(format!("unexpected '{other}': expected lladdr, nud or dev"))),
        }
    }
    Ok(NeighArgs { ip, mac, dev })
}

/// The entries the way `ip neigh show dev vxlan0` prints permanent ones (with the
/// `dev` column when `dev` is given, as the unfiltered `ip neigh show` does).
pub fn fmt_neigh_show(entries: &[NeighShowEntry], dev: Option<&str>) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&e.ip.to_string());
        if let Some(dev) = dev {
            out.push_str(" dev ");
            out.push_str(dev);
        }
        out.push_str(&format!(" lladdr {} PERMANENT\n", e.mac));
    }
    out
}

impl fmt::Display for NeighShowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lladdr {}", self.ip, self.mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_neigh_style_arguments() {
        let a = parse_neigh_args(&["198.51.100.2", "lladdr", "02:00:00:00:00:02", "dev", "vx0"]).unwrap();
        assert_eq!(a.ip, "198.51.100.2".parse::<IpAddr>().unwrap());
        assert_eq!(a.mac, Some("02:00:00:00:00:02".parse().unwrap()));
        assert_eq!(a.dev.as_deref(), Some("vx0"));
        let r = a.request(NeighOp::Add).unwrap();
        assert_eq!(r.op, NeighOp::Add);
        let v6 = parse_neigh_args(&["2001:db8::2", "dev", "vx1", "lladdr", "02:00:00:00:00:03", "nud", "permanent"]);
        assert!(v6.unwrap().ip.is_ipv6());
        let del = parse_neigh_args(&["198.51.100.2"]).unwrap().request(NeighOp::Del).unwrap();
        assert_eq!(del.mac, None);
    }

    #[test]
    fn refuses_bad_input_naming_it() {
        let err = |args: &[&str]| parse_neigh_args(args).and_then(|a| a.request(NeighOp::Add)).unwrap_err().0;
        assert!(err(&[]).contains("expected an IP"));
        assert!(err(&["nope"]).contains("'nope' is not an IP"));
        assert!(err(&["224.0.0.1", "lladdr", "02:00:00:00:00:01"]).contains("not a unicast overlay address"));
        assert!(err(&["10.0.0.1"]).contains("lladdr MAC is required"));
        assert!(err(&["10.0.0.1", "lladdr", "zz"]).contains("lladdr 'zz' is not a MAC"));
        assert!(err(&["10.0.0.1", "lladdr", "01:00:5e:00:00:01"]).contains("not a unicast MAC"));
        assert!(err(&["10.0.0.1", "lladdr"]).contains("'lladdr' needs a value"));
        assert!(err(&["10.0.0.1", "nud", "reachable"]).contains("always permanent"));
        assert!(err(&["10.0.0.1", "proxy"]).contains("unexpected 'proxy'"));
        assert!("show".parse::<NeighOp>().is_err());
    }

    #[test]
    fn show_prints_like_ip_neigh() {
        let e = [NeighShowEntry { ip: "198.51.100.2".parse().unwrap(), mac: "02:00:00:00:00:02".parse().unwrap() }];
        assert_eq!(fmt_neigh_show(&e, None), "198.51.100.2 lladdr 02:00:00:00:00:02 PERMANENT\n");
        assert_eq!(fmt_neigh_show(&e, Some("vx0")), "198.51.100.2 dev vx0 lladdr 02:00:00:00:00:02 PERMANENT\n");
    }
}
