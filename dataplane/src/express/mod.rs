//! The express path's userspace half. The XDP programs (`ebpf/src/express.rs`)
//! decapsulate and encapsulate known unicast themselves; this module keeps their maps a
//! mirror of the authoritative tables (the RCU FDB and next hops), in batches, on every
//! change from every source, and synchronously when `vxdp fdb` changes an entry, so
//! that once the command returns no frame leaves toward the old remote.
//!
//! [`mirror`] is the pure part (what the maps should hold, and the ordered changes);
//! [`Express`] applies them to the maps.

pub mod mirror;

use crate::fdb::FdbTable;
use crate::nexthop::NextHops;
use crate::xdp::XdpError;
use aya::maps::{Array, DevMap, HashMap as BpfHashMap, MapData, MapError};
use mirror::Mirror;
use std::fmt;
use std::str::FromStr;
use vxdp_common::express::{
    ExpressConfig, FdbKey, FdbValue, RemoteTemplate, CFG_DECAP, CFG_ENCAP, CFG_INHERIT_SHIFT, CFG_LEARNING,
    CFG_PORT_LAYOUT, CFG_PORT_SWITCH, CFG_PROXY, CFG_REPORT_LOCAL, DEV_OVERLAY, DEV_TRUNK, DEV_UNDERLAY,
};
use vxdp_common::maps;

/// `--datapath`: who moves frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Datapath {
    /// The XDP express path takes known unicast; the workers everything else.
    #[default]
    Auto,
    /// Every frame goes to the workers (zero-copy NICs, benchmarking the workers).
    Afxdp,
}

impl FromStr for Datapath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Datapath::Auto),
            "afxdp" => Ok(Datapath::Afxdp),
            _ => Err(format!("'{s}' is not a datapath (auto or afxdp)")),
        }
    }
}

impl fmt::Display for Datapath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Datapath::Auto => "auto",
            Datapath::Afxdp => "afxdp",
        })
    }
}

/// What the express path needs to know about the device, fixed at start.
#[derive(Clone, Copy, Debug)]
pub struct ExpressSettings {
    pub datapath: Datapath,
    pub vni: u32,
    pub learning: bool,
    /// Local MACs are advertised: the overlay program hands one frame per MAC and
    /// second to the workers, which report it.
    pub report_local: bool,
    /// Overlay MTU + Ethernet header.
    pub max_inner_len: u32,
    pub underlay_mtu: u32,
    /// Outer source port range, `min..max`.
    pub srcport: (u16, u16),
    /// Redirect targets: vxdp's end of the overlay veth, and the underlay NIC.
    pub overlay_ifindex: u32,
    pub underlay_ifindex: u32,
    /// `--proxy`: ARP and neighbour solicitations go to the workers, which answer them.
    pub proxy: bool,
    /// Port layout: the trunk (the user end of the overlay veth), which the port
    /// program sends the workers' frames to; `None` in the bridge layout.
    pub trunk_ifindex: Option<u32>,
    /// Which outer header fields each frame takes from its inner packet.
    pub inherit: vxdp_common::outer::Inherit,
}

/// What one [`Express::sync`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub entries: usize,
    pub written: usize,
    pub over_capacity: usize,
}

/// The express path's maps and their mirror.
pub struct Express {
    config: Array<MapData, ExpressConfig>,
    fdb: BpfHashMap<MapData, FdbKey, FdbValue>,
    remotes: Array<MapData, RemoteTemplate>,
    mirror: Mirror,
    cfg: ExpressConfig,
}

fn map_err(map: &'static str) -> impl Fn(MapError) -> XdpError {
    move |source| XdpError::Map { map, source }
}

impl Express {
    /// Takes the express maps out of the loaded object, points the device map at the
    /// two interfaces and writes the settings (the flags stay off until [`Self::enable`]).
    pub fn new(xdp: &mut crate::xdp::XdpPrograms, s: &ExpressSettings) -> Result<Express, XdpError> {
        let mut devs: DevMap<MapData> =
            DevMap::try_from(xdp.take_map(maps::EXPRESS_DEVS)?).map_err(map_err(maps::EXPRESS_DEVS))?;
        if s.datapath == Datapath::Auto {
            for (index, ifindex) in [(DEV_OVERLAY, s.overlay_ifindex), (DEV_UNDERLAY, s.underlay_ifindex)] {
                devs.set(index, ifindex, None, 0)
                    .map_err(|source| XdpError::DevMap { map: maps::EXPRESS_DEVS, source })?;
            }
        }
        if let Some(trunk) = s.trunk_ifindex {
            // In both datapaths: with `afxdp` every port frame goes through it.
            devs.set(DEV_TRUNK, trunk, None, 0)
                .map_err(|source| XdpError::DevMap { map: maps::EXPRESS_DEVS, source })?;
        }
        // The device map lives on with the programs that use it; this handle can go.
        drop(devs);
        let config = Array::try_from(xdp.take_map(maps::EXPRESS_CONFIG)?).map_err(map_err(maps::EXPRESS_CONFIG))?;
        let fdb = BpfHashMap::try_from(xdp.take_map(maps::EXPRESS_FDB)?).map_err(map_err(maps::EXPRESS_FDB))?;
        let remotes = Array::try_from(xdp.take_map(maps::EXPRESS_REMOTES)?).map_err(map_err(maps::EXPRESS_REMOTES))?;
        let flags = match s.datapath {
            Datapath::Auto => {
                CFG_DECAP
                    | CFG_ENCAP
                    | if s.learning { CFG_LEARNING } else { 0 }
                    | if s.report_local { CFG_REPORT_LOCAL } else { 0 }
                    | if s.proxy { CFG_PROXY } else { 0 }
                    | if s.trunk_ifindex.is_some() { CFG_PORT_LAYOUT | CFG_PORT_SWITCH } else { 0 }
                    | u32::from(s.inherit) << CFG_INHERIT_SHIFT
            }
            Datapath::Afxdp => 0,
        };
        let cfg = ExpressConfig {
            flags,
            vni: s.vni,
            max_inner_len: s.max_inner_len,
            underlay_mtu: s.underlay_mtu,
            srcport_min: s.srcport.0,
            srcport_max: s.srcport.1,
            clock: 0,
        };
        let mut e = Express { config, fdb, remotes, mirror: Mirror::new(s.vni), cfg };
        e.write_config(ExpressConfig { flags: 0, ..cfg })?;
        Ok(e)
    }

    /// Turns the express path on (as configured), once the maps are mirrored.
    pub fn enable(&mut self) -> Result<(), XdpError> {
        self.write_config(self.cfg)
    }

    /// Whether the express path encapsulates.
    pub fn encap_on(&self) -> bool {
        self.cfg.flags & CFG_ENCAP != 0
    }

    /// Stops encapsulating in XDP: every overlay frame goes to the workers from now on.
    pub fn disable_encap(&mut self) -> Result<(), XdpError> {
        self.cfg.flags &= !CFG_ENCAP;
        self.write_config(self.cfg)
    }

    /// Whether the express path is on at all.
    pub fn active(&self) -> bool {
        self.cfg.flags != 0
    }

    /// The table clock, for the programs' once-a-second reports.
    pub fn set_clock(&mut self, clock: u32) -> Result<(), XdpError> {
        if self.cfg.clock == clock {
            return Ok(());
        }
        self.cfg.clock = clock;
        self.write_config(self.cfg)
    }

    fn write_config(&mut self, cfg: ExpressConfig) -> Result<(), XdpError> {
        self.config.set(0, cfg, 0).map_err(map_err(maps::EXPRESS_CONFIG))
    }

    /// Makes the maps match the FDB's published snapshot and `hops`, in an order no
    /// program run can see a half-made entry in (see [`mirror`]). Only the entries the
    /// FDB logged as changed since the last sync are recomputed (all of them on the
    /// first sync and when the log overflowed), and the templates of the slots in use.
    pub fn sync(&mut self, fdb: &FdbTable, hops: &NextHops, clock: u32) -> Result<SyncReport, XdpError> {
        if !self.active() {
            return Ok(SyncReport::default());
        }
        let (snap, log) = fdb.take_changes();
        let c = self.mirror.sync_changes(&snap, hops, clock, &log.macs, log.overflow);
        let written = c.templates.len() + c.fdb_put.len() + c.fdb_del.len() + c.freed.len();
        for (slot, tpl) in &c.templates {
            self.remotes.set(*slot, tpl, 0).map_err(map_err(maps::EXPRESS_REMOTES))?;
        }
        for (key, value) in &c.fdb_put {
            self.fdb.insert(key, value, 0).map_err(map_err(maps::EXPRESS_FDB))?;
        }
        for key in &c.fdb_del {
            match self.fdb.remove(key) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(maps::EXPRESS_FDB)(e)),
            }
        }
        for slot in &c.freed {
            self.remotes.set(*slot, RemoteTemplate::default(), 0).map_err(map_err(maps::EXPRESS_REMOTES))?;
        }
        self.mirror.recycle(&c.freed);
        Ok(SyncReport { entries: self.mirror.len(), written, over_capacity: c.over_capacity })
    }
}
