//! The port layout's XDP maps: the ports as redirect targets, their counters, and the
//! MAC → port table mirrored from [`PortTable`](super::PortTable).
#![forbid(unsafe_code)]

use crate::xdp::{XdpError, XdpPrograms};
use aya::maps::{DevMapHash, HashMap as BpfHashMap, MapData, MapError, PerCpuHashMap, PerCpuValues};
use aya::sys::SyscallError;
use std::collections::HashMap;
use vxdp_common::maps;
use vxdp_common::ports::{mac_key, PortStats};

fn map_err(map: &'static str) -> impl Fn(MapError) -> XdpError {
    move |source| XdpError::Map { map, source }
}

/// The maps, taken out of the loaded object.
pub struct PortMaps {
    macs: BpfHashMap<MapData, [u8; 8], u32>,
    devs: DevMapHash<MapData>,
    stats: PerCpuHashMap<MapData, u32, PortStats>,
    /// What `macs` holds, as this side wrote it.
    mirrored: HashMap<[u8; 6], u32>,
}

impl PortMaps {
    pub fn new(xdp: &mut XdpPrograms) -> Result<PortMaps, XdpError> {
        let macs = BpfHashMap::try_from(xdp.take_map(maps::PORT_MACS)?).map_err(map_err(maps::PORT_MACS))?;
        let devs = DevMapHash::try_from(xdp.take_map(maps::PORT_DEVS)?).map_err(map_err(maps::PORT_DEVS))?;
        let stats = PerCpuHashMap::try_from(xdp.take_map(maps::PORT_STATS)?).map_err(map_err(maps::PORT_STATS))?;
        Ok(PortMaps { macs, devs, stats, mirrored: HashMap::new() })
    }

    /// Makes `ifindex` a redirect target with zeroed counters (before any frame can be
    /// switched to it).
    pub fn add_port(&mut self, ifindex: u32) -> Result<(), XdpError> {
        let syscall =
            |call, io_error| map_err(maps::PORT_STATS)(MapError::SyscallError(SyscallError { call, io_error }));
        let cpus = aya::util::nr_cpus().map_err(|(call, e)| syscall(call, e))?;
        let zeros =
            PerCpuValues::try_from(vec![PortStats::default(); cpus]).map_err(|e| syscall("per-cpu values", e))?;
        self.stats.insert(ifindex, zeros, 0).map_err(map_err(maps::PORT_STATS))?;
        self.devs.insert(ifindex, ifindex, None, 0).map_err(|source| XdpError::DevMap { map: maps::PORT_DEVS, source })
    }

    /// Removes a port's target and counters (after its MACs are gone from the mirror).
    pub fn del_port(&mut self, ifindex: u32) {
        let _ = self.devs.remove(ifindex);
        let _ = self.stats.remove(&ifindex);
    }

    /// A port's counters, summed over CPUs.
    pub fn stats(&self, ifindex: u32) -> PortStats {
        let mut sum = PortStats::default();
        if let Ok(values) = self.stats.get(&ifindex, 0) {
            for v in values.iter() {
                sum.rx_frames += v.rx_frames;
                sum.rx_bytes += v.rx_bytes;
                sum.tx_frames += v.tx_frames;
                sum.tx_bytes += v.tx_bytes;
            }
        }
        sum
    }

    /// Makes the MAC map match `want`: new and moved MACs first, then the gone ones.
    /// Returns the number of writes.
    pub fn sync(&mut self, want: &HashMap<[u8; 6], u32>) -> Result<usize, XdpError> {
        let mut written = 0;
        for (mac, ifindex) in want {
            if self.mirrored.get(mac) != Some(ifindex) {
                self.macs.insert(mac_key(mac), ifindex, 0).map_err(map_err(maps::PORT_MACS))?;
                self.mirrored.insert(*mac, *ifindex);
                written += 1;
            }
        }
        let gone: Vec<[u8; 6]> = self.mirrored.keys().filter(|m| !want.contains_key(*m)).copied().collect();
        for mac in gone {
            match self.macs.remove(&mac_key(&mac)) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(maps::PORT_MACS)(e)),
            }
            self.mirrored.remove(&mac);
            written += 1;
        }
        Ok(written)
    }
}
