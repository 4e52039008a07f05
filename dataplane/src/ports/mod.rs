//! The port layout's table: which interfaces are ports, and which MAC lives on which
//! port. vxdp is then the L2 switch of its overlay: container-side veths attach to it
//! directly, with no bridge and no `vx0` in between.
//!
//! Read-copy-update, like the FDB: workers load a [`PortSnapshot`] once per batch (one
//! atomic load, never blocks); the control socket (`vxdp port add|del`) and the control
//! loop (learning) build the next snapshot aside and swap it in. Workers never write the
//! table: they queue learning events (a MAC seen on a port, or a port MAC seen behind a
//! remote, which moved) on a bounded lock-free queue that [`PortTable::maintain`] drains
//! on the control thread. A MAC given with `vxdp port add IF mac MAC` is pinned to its
//! port (learning does not move it); learned MACs stay until they move, or their port
//! is deleted.
//!
//! [`maps`] mirrors the table into the XDP programs' maps.
#![forbid(unsafe_code)]

pub mod maps;

use crate::fdb::{mac_key, MacBuildHasher};
use arc_swap::{ArcSwap, Guard};
use crossbeam_queue::ArrayQueue;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use vxdp_common::ports::{MAX_PORTS, MAX_PORT_MACS};
use vxdp_control::mac::Mac;

/// `--layout`: how containers reach the overlay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// `vx0` is a netdev the user bridges or addresses, like a kernel `vxlan0`.
    #[default]
    Bridge,
    /// vxdp serves container-side veths directly (`--port`, `vxdp port add`); the
    /// overlay veth pair is its internal trunk to the workers.
    Port,
}

impl std::str::FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bridge" => Ok(Layout::Bridge),
            "port" => Ok(Layout::Port),
            _ => Err(format!("'{s}' is not a layout (bridge or port)")),
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Bridge => "bridge",
            Layout::Port => "port",
        })
    }
}

/// Learning events that can wait for the control thread; more are dropped (the next
/// frame from that MAC tries again).
pub const LEARN_QUEUE_LEN: usize = 4096;

/// Errors of `vxdp port` changes; each names the interface.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("{name} is already a port")]
    Exists { name: String },
    #[error("{name} is not a port")]
    NotFound { name: String },
    #[error("{name}: vxdp serves at most {MAX_PORTS} ports")]
    Full { name: String },
    #[error("{name}: {mac} is not a unicast MAC")]
    BadMac { name: String, mac: Mac },
    #[error("{name}: {mac} is already given to port {owner}")]
    MacTaken { name: String, mac: Mac, owner: String },
}

/// One port as `vxdp port show` reports it (without counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub ifindex: u32,
    pub name: String,
    /// The MACs on the port, in order, and whether each was given (pinned).
    pub macs: Vec<(Mac, bool)>,
}

/// What readers see: the ports and the MAC → port map. Hold it for one batch.
pub struct PortSnapshot {
    ports: Vec<u32>,
    macs: HashMap<u64, u32, MacBuildHasher>,
}

impl PortSnapshot {
    /// The port `mac` lives on.
    #[inline]
    pub fn lookup(&self, mac: &[u8; 6]) -> Option<u32> {
        self.macs.get(&mac_key(mac)).copied()
    }

    /// Every port's ifindex, in ascending order: the flood list.
    #[inline]
    pub fn ports(&self) -> &[u32] {
        &self.ports
    }

    #[inline]
    pub fn is_port(&self, ifindex: u32) -> bool {
        self.ports.binary_search(&ifindex).is_ok()
    }
}

/// A MAC on a port, in the master table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MacEntry {
    ifindex: u32,
    pinned: bool,
}

struct Master {
    ports: BTreeMap<u32, String>,
    macs: HashMap<[u8; 6], MacEntry>,
}

/// The port table, shared as `Arc<PortTable>`.
pub struct PortTable {
    current: ArcSwap<PortSnapshot>,
    master: Mutex<Master>,
    /// (MAC, port it was seen on), or (MAC, 0): seen behind a remote.
    events: ArrayQueue<([u8; 6], u32)>,
    hasher: MacBuildHasher,
}

impl Default for PortTable {
    fn default() -> Self {
        Self::new()
    }
}

impl PortTable {
    pub fn new() -> PortTable {
        let hasher = MacBuildHasher::default();
        let master = Master { ports: BTreeMap::new(), macs: HashMap::new() };
        PortTable {
            current: ArcSwap::from_pointee(build(&master, hasher)),
            master: Mutex::new(master),
            events: ArrayQueue::new(LEARN_QUEUE_LEN),
            hasher,
        }
    }

    /// Hot path: the current snapshot; call once per batch.
    #[inline]
    pub fn snapshot(&self) -> Guard<Arc<PortSnapshot>> {
        self.current.load()
    }

    /// Hot path: `mac` was seen on port `ifindex`. False when the queue is full.
    #[inline]
    pub fn learn(&self, mac: [u8; 6], ifindex: u32) -> bool {
        self.events.push((mac, ifindex)).is_ok()
    }

    /// Hot path: `mac`, a port's MAC, was seen behind a remote VTEP: it moved there.
    #[inline]
    pub fn moved_away(&self, mac: [u8; 6]) -> bool {
        self.events.push((mac, 0)).is_ok()
    }

    fn lock(&self) -> MutexGuard<'_, Master> {
        self.master.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, master: &Master) {
        self.current.store(Arc::new(build(master, self.hasher)));
    }

    /// Adds a port, with a MAC pinned to it if given.
    pub fn add(&self, ifindex: u32, name: &str, mac: Option<Mac>) -> Result<(), PortError> {
        let mut m = self.lock();
        if m.ports.contains_key(&ifindex) {
            return Err(PortError::Exists { name: name.into() });
        }
        if m.ports.len() >= MAX_PORTS as usize {
            return Err(PortError::Full { name: name.into() });
        }
        if let Some(mac) = mac {
            if !crate::wire::ethernet::is_unicast(&mac.0) {
                return Err(PortError::BadMac { name: name.into(), mac });
            }
            if let Some(e) = m.macs.get(&mac.0).filter(|e| e.pinned) {
                let owner = m.ports.get(&e.ifindex).cloned().unwrap_or_default();
                return Err(PortError::MacTaken { name: name.into(), mac, owner });
            }
            m.macs.insert(mac.0, MacEntry { ifindex, pinned: true });
        }
        m.ports.insert(ifindex, name.to_string());
        log::info!("port {name} (ifindex {ifindex}) added");
        self.publish(&m);
        Ok(())
    }

    /// Removes a port and every MAC on it.
    pub fn del(&self, name: &str) -> Result<u32, PortError> {
        let mut m = self.lock();
        let ifindex = m
            .ports
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(i, _)| *i)
            .ok_or_else(|| PortError::NotFound { name: name.into() })?;
        m.ports.remove(&ifindex);
        m.macs.retain(|_, e| e.ifindex != ifindex);
        log::info!("port {name} (ifindex {ifindex}) removed");
        self.publish(&m);
        Ok(ifindex)
    }

    /// The port named `name`.
    pub fn ifindex(&self, name: &str) -> Option<u32> {
        self.lock().ports.iter().find(|(_, n)| n.as_str() == name).map(|(i, _)| *i)
    }

    /// Control thread: applies the queued learning events; publishes and returns true
    /// when the table changed.
    pub fn maintain(&self) -> bool {
        if self.events.is_empty() {
            return false;
        }
        let mut m = self.lock();
        let mut changed = false;
        while let Some((mac, ifindex)) = self.events.pop() {
            let current = m.macs.get(&mac).copied();
            if current.is_some_and(|e| e.pinned) {
                continue;
            }
            if ifindex == 0 {
                if current.is_some() {
                    m.macs.remove(&mac);
                    log::debug!("port mac {} moved to a remote", Mac(mac));
                    changed = true;
                }
                continue;
            }
            if !m.ports.contains_key(&ifindex) || current.is_some_and(|e| e.ifindex == ifindex) {
                continue;
            }
            if current.is_none() && m.macs.len() >= MAX_PORT_MACS as usize {
                continue;
            }
            m.macs.insert(mac, MacEntry { ifindex, pinned: false });
            changed = true;
        }
        if changed {
            self.publish(&m);
        }
        changed
    }

    /// Every port and its MACs, by ifindex.
    pub fn show(&self) -> Vec<PortInfo> {
        let m = self.lock();
        m.ports
            .iter()
            .map(|(ifindex, name)| {
                let mut macs: Vec<(Mac, bool)> = m
                    .macs
                    .iter()
                    .filter(|(_, e)| e.ifindex == *ifindex)
                    .map(|(mac, e)| (Mac(*mac), e.pinned))
                    .collect();
                macs.sort();
                PortInfo { ifindex: *ifindex, name: name.clone(), macs }
            })
            .collect()
    }

    /// The MAC → port map, for the XDP mirror.
    pub fn mac_map(&self) -> HashMap<[u8; 6], u32> {
        self.lock().macs.iter().map(|(mac, e)| (*mac, e.ifindex)).collect()
    }
}

fn build(m: &Master, hasher: MacBuildHasher) -> PortSnapshot {
    let mut macs = HashMap::with_capacity_and_hasher(m.macs.len(), hasher);
    for (mac, e) in &m.macs {
        macs.insert(mac_key(mac), e.ifindex);
    }
    PortSnapshot { ports: m.ports.keys().copied().collect(), macs }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    #[test]
    fn learning_moves_macs_between_ports_and_away_but_not_pinned_ones() {
        let t = PortTable::new();
        t.add(10, "p10", None).unwrap();
        t.add(11, "p11", Some(Mac(B))).unwrap();
        assert_eq!(t.snapshot().ports(), &[10, 11]);
        assert_eq!(t.snapshot().lookup(&B), Some(11));
        assert!(t.learn(A, 10));
        assert!(t.maintain());
        assert_eq!(t.snapshot().lookup(&A), Some(10));
        // Seen again on the same port: nothing to publish.
        t.learn(A, 10);
        assert!(!t.maintain());
        // Moves to the other port, then behind a remote.
        t.learn(A, 11);
        assert!(t.maintain());
        assert_eq!(t.snapshot().lookup(&A), Some(11));
        t.moved_away(A);
        assert!(t.maintain());
        assert_eq!(t.snapshot().lookup(&A), None);
        // A given MAC stays where it was given.
        t.learn(B, 10);
        t.moved_away(B);
        assert!(!t.maintain());
        assert_eq!(t.snapshot().lookup(&B), Some(11));
        // Frames from an interface that is not (or no longer) a port teach nothing.
        t.learn(A, 99);
        assert!(!t.maintain());
    }

    #[test]
    fn deleting_a_port_takes_its_macs_and_names_errors() {
        let t = PortTable::new();
        t.add(10, "p10", None).unwrap();
        t.add(11, "p11", None).unwrap();
        t.learn(A, 10);
        t.learn(B, 11);
        t.maintain();
        assert_eq!(t.del("p10"), Ok(10));
        assert_eq!(t.snapshot().lookup(&A), None);
        assert_eq!(t.snapshot().lookup(&B), Some(11));
        assert_eq!(t.snapshot().ports(), &[11]);
        assert!(!t.snapshot().is_port(10));
        assert_eq!(t.del("p10"), Err(PortError::NotFound { name: "p10".into() }));
        assert_eq!(t.add(11, "p11", None), Err(PortError::Exists { name: "p11".into() }));
        let e = t.add(12, "p12", Some(Mac([1, 0, 0, 0, 0, 1]))).unwrap_err();
        assert!(e.to_string().contains("p12") && e.to_string().contains("unicast"), "{e}");
        t.add(12, "p12", Some(Mac(A))).unwrap();
        let e = t.add(13, "p13", Some(Mac(A))).unwrap_err();
        assert!(e.to_string().contains("p12"), "{e}");
        let show = t.show();
        assert_eq!(show.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["p11", "p12"]);
        assert_eq!(show[1].macs, vec![(Mac(A), true)]);
    }
}
