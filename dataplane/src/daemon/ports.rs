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
        // A bridge port's frames are the bridge's: vxdp's program would take them first.
        if let Ok(master) = std::fs::read_link(format!("/sys/class/net/{ifname}/master")) {
            let master = master.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            return Err(format!("{ifname} is in {master}; take it out first (ip link set {ifname} nomaster)"));
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

/// Once a second: removes a port whose interface is gone (its container was deleted),
/// and looks for frames vxdp delivers into a port that the port does not pass on: a veth whose peer
/// (the container end) has no NAPI drops every frame redirected into it, without an
/// error the programs could see. Watched through the port's `tx_queue_N_xdp_xmit`
/// statistics against the port's TX counter; a port that sends fewer than half of at
/// least [`PortWatch::MIN_FRAMES`] frames is named in the log, once. There is no other
/// way into a port, so nothing is turned off: the container end needs GRO on (after
/// the link is up) or an XDP program.
#[derive(Default)]
pub(super) struct PortWatch {
    /// Per port: (vxdp's TX count, the port's xdp_xmit count) at the last look.
    last: std::collections::HashMap<u32, (u64, u64)>,
    warned: std::collections::HashSet<u32>,
    looked: Option<std::time::Instant>,
}

impl PortWatch {
    const MIN_FRAMES: u64 = 3;
    const INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

    pub(super) fn check(&mut self, plane: &PortPlane) {
        if self.looked.is_some_and(|t| t.elapsed() < Self::INTERVAL) {
            return;
        }
        self.looked = Some(std::time::Instant::now());
        let Ok(ports) = plane.show() else { return };
        self.last.retain(|i, _| ports.iter().any(|p| p.ifindex == *i));
        for p in ports {
            if crate::xdp::if_index(&p.name).ok() != Some(p.ifindex) {
                // The container went, and its veth with it: serve it no longer.
                log::info!("port {}: its interface is gone; removing the port", p.name);
                if let Err(e) = plane.del(&p.name) {
                    log::warn!("port {}: {e}", p.name);
                }
                continue;
            }
            let Ok(Some(sent)) = crate::ethtool::xdp_xmit_frames(&p.name) else { continue };
            let now = (p.tx_frames, sent);
            if let Some((tx0, sent0)) = self.last.get(&p.ifindex).copied() {
                let (tx, sent) = (p.tx_frames.saturating_sub(tx0), sent.saturating_sub(sent0));
                if tx < Self::MIN_FRAMES {
                    continue; // keep the baseline until the window holds enough frames
                }
                if sent.saturating_mul(2) < tx && self.warned.insert(p.ifindex) {
                    log::warn!(
                        "port {}: it passed on {sent} of the {tx} frames vxdp delivered into it; its peer (the \
                         container end) has no NAPI, so the kernel drops them: turn GRO on there (`ethtool -K \
                         eth0 gro on` in the container, after the link is up) or attach an XDP program",
                        p.name
                    );
                }
            }
            self.last.insert(p.ifindex, now);
        }
    }
}
