//! The port layout's control side: `vxdp port add|del|show` and `--port`, and keeping
//! the XDP port maps a mirror of the port table (see `crate::ports`).
//!
//! Order of a change, so no program run sees half of it: `add` makes the interface a
//! redirect target (device map, zeroed counters), then a port in the table (the workers
//! flood to it from the next batch), then attaches the port program (frames from it
//! arrive); `del` undoes it the other way round.
#![forbid(unsafe_code)]

use crate::ports::maps::PortMaps;
use crate::ports::PortTable;
use crate::xdp::{XdpMode, XdpPrograms};
use std::sync::{Arc, Mutex};
use vxdp_control::mac::Mac;
use vxdp_control::ports::{PortMac, PortShowEntry};

/// What port changes need.
pub(super) struct PortPlane {
    pub(super) table: Arc<PortTable>,
    /// `None` in the bridge layout: every port request is refused.
    pub(super) maps: Option<Mutex<PortMaps>>,
    pub(super) xdp: Arc<Mutex<XdpPrograms>>,
    pub(super) mode: XdpMode,
    /// Interfaces that cannot be ports: the underlay and both ends of the trunk.
    pub(super) reserved: Vec<String>,
}

impl PortPlane {
    fn maps(&self) -> Result<std::sync::MutexGuard<'_, PortMaps>, String> {
        let maps = self.maps.as_ref().ok_or(
            "vxdp runs in the bridge layout (vx0 in a bridge); start it with --layout port (or --port IF) to serve ports",
        )?;
        Ok(maps.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Serves `ifname` as a port, with `mac` pinned to it if given.
    pub(super) fn add(&self, ifname: &str, mac: Option<Mac>) -> Result<(), String> {
        let mut maps = self.maps()?;
        if self.reserved.iter().any(|r| r == ifname) {
            return Err(format!("{ifname} is vxdp's own interface (the underlay or the trunk); it cannot be a port"));
        }
        let ifindex = crate::xdp::if_index(ifname).map_err(|e| e.to_string())?;
        if self.table.ifindex(ifname).is_some() {
            return Err(format!("{ifname} is already a port"));
        }
        maps.add_port(ifindex).map_err(|e| format!("port {ifname}: {e}"))?;
        if let Err(e) = self.table.add(ifindex, ifname, mac) {
            maps.del_port(ifindex);
            return Err(e.to_string());
        }
        let mirrored = maps.sync(&self.table.mac_map()).map_err(|e| e.to_string());
        let attached = mirrored.and_then(|_| {
            let mut xdp = self.xdp.lock().unwrap_or_else(|e| e.into_inner());
            xdp.attach_port(ifname, self.mode).map_err(|e| format!("port {ifname}: {e}"))
        });
        if let Err(e) = attached {
            let _ = self.table.del(ifname);
            let _ = maps.sync(&self.table.mac_map());
            maps.del_port(ifindex);
            return Err(e);
        }
        Ok(())
    }

    /// Stops serving port `ifname`.
    pub(super) fn del(&self, ifname: &str) -> Result<(), String> {
        let mut maps = self.maps()?;
        if self.table.ifindex(ifname).is_none() {
            return Err(format!("{ifname} is not a port"));
        }
        self.xdp.lock().unwrap_or_else(|e| e.into_inner()).detach_port(ifname);
        let ifindex = self.table.del(ifname).map_err(|e| e.to_string())?;
        maps.sync(&self.table.mac_map()).map_err(|e| e.to_string())?;
        maps.del_port(ifindex);
        Ok(())
    }

    /// The ports, their MACs and counters.
    pub(super) fn show(&self) -> Result<Vec<PortShowEntry>, String> {
        let maps = self.maps()?;
        Ok(self
            .table
            .show()
            .into_iter()
            .map(|p| {
                let s = maps.stats(p.ifindex);
                PortShowEntry {
                    name: p.name,
                    ifindex: p.ifindex,
                    macs: p.macs.into_iter().map(|(mac, given)| PortMac { mac, given }).collect(),
                    rx_frames: s.rx_frames,
                    rx_bytes: s.rx_bytes,
                    tx_frames: s.tx_frames,
                    tx_bytes: s.tx_bytes,
                }
            })
            .collect())
    }

    /// Control loop tick: applies the workers' learning events and mirrors the result.
    /// A failure is logged, not fatal: the workers serve whatever XDP misses.
    pub(super) fn maintain(&self) {
        if !self.table.maintain() {
            return;
        }
        if let Ok(mut maps) = self.maps() {
            if let Err(e) = maps.sync(&self.table.mac_map()) {
                log::warn!("mirroring the port table into XDP failed: {e}");
            }
        }
    }
}
