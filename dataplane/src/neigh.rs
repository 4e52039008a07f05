//! The proxy neighbour table: overlay IP → MAC, which `--proxy` answers ARP requests
//! and neighbour solicitations from (the kernel vxlan device's neighbour table, as
//! `ip neigh add IP lladdr MAC dev vxlan0` fills it).
//!
//! Read-copy-update like the FDB: workers load a snapshot (one atomic load) only for a
//! frame that is an ARP request or an IPv6 packet; writers (the control socket) build
//! the next table aside under a lock and swap it in.
#![forbid(unsafe_code)]

use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use vxdp_control::mac::Mac;
use vxdp_control::neigh::{NeighOp, NeighRequest, NeighShowEntry};

/// Entries the table holds at most (a bound, so the control socket cannot grow it
/// without limit).
pub const MAX_NEIGH: usize = 65_536;

/// A refused change; the text names the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NeighError {
    #[error("neigh add {0}: the address has an entry (use replace)")]
    Exists(IpAddr),
    #[error("neigh del {0}: no entry for this address")]
    NotFound(IpAddr),
    #[error("neigh {0}: lladdr MAC is required")]
    NoMac(IpAddr),
    #[error("neigh add {0}: the table is full ({MAX_NEIGH} entries)")]
    Full(IpAddr),
}

/// The table; cheap to share (`Arc`).
#[derive(Default)]
pub struct NeighTable {
    current: ArcSwap<HashMap<IpAddr, [u8; 6]>>,
    writer: Mutex<()>,
}

impl NeighTable {
    pub fn new() -> NeighTable {
        NeighTable::default()
    }

    /// The table as it is now (for one lookup or one batch).
    #[inline]
    pub fn snapshot(&self) -> Arc<HashMap<IpAddr, [u8; 6]>> {
        self.current.load_full()
    }

    /// Applies one `ip neigh`-style change.
    pub fn apply(&self, r: &NeighRequest) -> Result<(), NeighError> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = HashMap::clone(&self.current.load());
        match r.op {
            NeighOp::Add | NeighOp::Replace => {
                let mac = r.mac.ok_or(NeighError::NoMac(r.ip))?;
                if r.op == NeighOp::Add && next.contains_key(&r.ip) {
                    return Err(NeighError::Exists(r.ip));
                }
                if !next.contains_key(&r.ip) && next.len() >= MAX_NEIGH {
                    return Err(NeighError::Full(r.ip));
                }
                next.insert(r.ip, mac.octets());
            }
            NeighOp::Del => {
                next.remove(&r.ip).ok_or(NeighError::NotFound(r.ip))?;
            }
        }
        self.current.store(Arc::new(next));
        Ok(())
    }

    /// Every entry, sorted by address.
    pub fn show(&self) -> Vec<NeighShowEntry> {
        let mut v: Vec<_> =
            self.current.load().iter().map(|(ip, mac)| NeighShowEntry { ip: *ip, mac: Mac(*mac) }).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: NeighOp, ip: &str, mac: Option<&str>) -> NeighRequest {
        NeighRequest { op, ip: ip.parse().unwrap(), mac: mac.map(|m| m.parse().unwrap()) }
    }

    #[test]
    fn add_replace_del_like_ip_neigh() {
        let t = NeighTable::new();
        let snap = t.snapshot();
        t.apply(&req(NeighOp::Add, "10.0.0.2", Some("02:00:00:00:00:02"))).unwrap();
        assert!(snap.is_empty(), "a snapshot does not change under the reader");
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(t.snapshot().get(&ip), Some(&[2, 0, 0, 0, 0, 2]));
        assert_eq!(t.apply(&req(NeighOp::Add, "10.0.0.2", Some("02:00:00:00:00:03"))), Err(NeighError::Exists(ip)));
        t.apply(&req(NeighOp::Replace, "10.0.0.2", Some("02:00:00:00:00:03"))).unwrap();
        t.apply(&req(NeighOp::Replace, "2001:db8::2", Some("02:00:00:00:00:04"))).unwrap();
        let shown: Vec<String> = t.show().iter().map(|e| e.to_string()).collect();
        assert_eq!(shown, ["10.0.0.2 lladdr 02:00:00:00:00:03", "2001:db8::2 lladdr 02:00:00:00:00:04"]);
        t.apply(&req(NeighOp::Del, "10.0.0.2", None)).unwrap();
        assert_eq!(t.apply(&req(NeighOp::Del, "10.0.0.2", None)), Err(NeighError::NotFound(ip)));
        assert_eq!(t.apply(&req(NeighOp::Add, "10.0.0.9", None)), Err(NeighError::NoMac("10.0.0.9".parse().unwrap())));
        assert_eq!(t.show().len(), 1);
    }
}
