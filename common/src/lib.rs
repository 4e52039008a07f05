//! Types shared by the vxdp eBPF programs (`ebpf/`) and userspace (`dataplane/`).
//!
//! Both sides compile against this crate, so map value layouts cannot drift apart.
//! Everything here is `#[repr(C)]`, `Copy` and free of padding surprises.
#![no_std]

mod counter_enum;
pub mod csum;
pub mod ecn;
pub mod express;
pub mod flow;
pub mod guard;
pub mod hdr;
pub mod outer;
pub mod ports;
mod vni;
pub use vni::{ParseVniError, Vni};

/// Names of the maps in the eBPF object, used by the loader to find them.
pub mod maps {
    /// `Array<UnderlayConfig>` with one element, written by userspace before attach.
    pub const CONFIG: &str = "VXDP_CONFIG";
    /// `XskMap` indexed by underlay RX queue: the worker sockets on the underlay NIC.
    pub const UNDERLAY_XSKS: &str = "VXDP_UNDERLAY_XSKS";
    /// `XskMap` indexed by overlay RX queue: the worker sockets on vxdp's end of the overlay veth.
    pub const OVERLAY_XSKS: &str = "VXDP_OVERLAY_XSKS";
    /// `PerCpuArray<u64>` indexed by [`XdpCounter`](super::XdpCounter).
    pub const COUNTERS: &str = "VXDP_COUNTERS";
    /// `Array<ExpressConfig>` with one element: the express path's settings.
    pub const EXPRESS_CONFIG: &str = "VXDP_X_CONFIG";
    /// `HashMap<FdbKey, FdbValue>`: the FDB's unicast entries the express path can use.
    pub const EXPRESS_FDB: &str = "VXDP_X_FDB";
    /// `Array<RemoteTemplate>`: the outer header toward each remote.
    pub const EXPRESS_REMOTES: &str = "VXDP_X_REMOTES";
    /// `DevMap`: redirect targets, by `express::DEV_*`.
    pub const EXPRESS_DEVS: &str = "VXDP_X_DEVS";
    /// `LruHashMap<[u8; 8], u32>`: local MACs and the clock they were last reported at.
    pub const EXPRESS_LOCAL_MACS: &str = "VXDP_X_LOCAL_MACS";
    /// `PerCpuArray<ExpressCpu>` with one element: each CPU's learning-report budget
    /// and IPv4 identification counter.
    pub const EXPRESS_CPU: &str = "VXDP_X_CPU";
    /// `Array<GuardConfig>` with one element: the underlay guard's settings.
    pub const GUARD_CONFIG: &str = "VXDP_G_CONFIG";
    /// `LpmTrie<[u8; 4], u32>`: outer IPv4 sources VXLAN is accepted from (see [`guard`](crate::guard)).
    pub const GUARD_ACCEPT_V4: &str = "VXDP_G_ACCEPT_V4";
    /// `HashMap<[u8; 8], u32>`: port layout, MAC → port ifindex (`ports::mac_key`).
    pub const PORT_MACS: &str = "VXDP_P_MACS";
    /// `DevMapHash`: port layout, the ports by ifindex.
    pub const PORT_DEVS: &str = "VXDP_P_DEVS";
    /// `PerCpuHashMap<u32, PortStats>`: port layout, each port's counters by ifindex.
    pub const PORT_STATS: &str = "VXDP_P_STATS";
    /// `HashMap<u32, u32>`: the VNIs this daemon serves (host order) → overlay device
    /// slot. VXLAN for any other VNI is the kernel's (another vxlan device may own it).
    pub const VNIS: &str = "VXDP_VNIS";
    /// Every map, for the build's symbol list.
    pub const ALL: [&str; 16] = [
        CONFIG,
        UNDERLAY_XSKS,
        OVERLAY_XSKS,
        COUNTERS,
        EXPRESS_CONFIG,
        EXPRESS_FDB,
        EXPRESS_REMOTES,
        EXPRESS_DEVS,
        EXPRESS_LOCAL_MACS,
        EXPRESS_CPU,
        GUARD_CONFIG,
        GUARD_ACCEPT_V4,
        PORT_MACS,
        PORT_DEVS,
        PORT_STATS,
        VNIS,
    ];
}

/// Names of the two XDP programs in the eBPF object.
pub mod programs {
    /// Attached to the underlay NIC: steers VXLAN to this VTEP into AF_XDP, passes the rest.
    pub const UNDERLAY: &str = "vxdp_underlay";
    /// Attached to vxdp's end of the overlay veth pair: every frame goes to AF_XDP.
    pub const OVERLAY: &str = "vxdp_overlay";
    /// Port layout, on each port: switches between ports, encapsulates, the rest to the trunk.
    pub const PORT: &str = "vxdp_port";
    /// Port layout, on the user end of the overlay veth (the trunk): delivers the
    /// workers' frames into the port their trunk header names.
    pub const TRUNK: &str = "vxdp_trunk";
    /// Every program, for the build's symbol list.
    pub const ALL: [&str; 4] = [UNDERLAY, OVERLAY, PORT, TRUNK];
}

/// Maximum number of AF_XDP sockets (RX queues) per interface.
pub const MAX_QUEUES: u32 = 64;
/// Maximum number of local VTEP addresses per family the underlay program matches.
pub const MAX_LOCAL_ADDRS: usize = 4;
/// Maximum number of VNIs one daemon serves ([`maps::VNIS`]).
pub const MAX_VNIS: u32 = 4096;

/// Configuration of the underlay program, one element in [`maps::CONFIG`].
///
/// Addresses and the port are stored in network byte order so the program compares
/// them against packet bytes without swapping.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnderlayConfig {
    /// VXLAN UDP destination port, network byte order.
    pub port_be: u16,
    /// Number of valid entries in `local_v4`.
    pub n_v4: u8,
    /// Number of valid entries in `local_v6`.
    pub n_v6: u8,
    /// Local IPv4 VTEP addresses, network byte order (as read from the packet).
    pub local_v4: [u32; MAX_LOCAL_ADDRS],
    /// Local IPv6 VTEP addresses.
    pub local_v6: [[u8; 16]; MAX_LOCAL_ADDRS],
    /// The underlay device's MAC: a unicast frame to any other MAC is another host's
    /// (`PACKET_OTHERHOST`) and passed to the kernel, which drops it. All zero: no check.
    pub mac: [u8; 6],
    pub pad: [u8; 2],
}

#[cfg(feature = "user")]
// SAFETY: UnderlayConfig is repr(C), Copy, contains only integers and has no padding
// (2 + 1 + 1 + 16 + 64 + 6 + 2 bytes, all fields naturally aligned).
unsafe impl aya::Pod for UnderlayConfig {}

counter_enum! {
    /// Counters kept by the XDP programs, per CPU, indexing [`maps::COUNTERS`].
    pub enum XdpCounter: u32 {
        /// Underlay: VXLAN to a local VTEP, redirected to an AF_XDP socket.
        UnderlaySteered = 0 => "xdp_underlay_steered",
        /// Underlay: VXLAN to a local VTEP but no socket bound on this queue: passed.
        UnderlayNoSocket = 1 => "xdp_underlay_no_socket",
        /// Underlay: not IPv4/IPv6 (ARP, LLDP, ...): passed.
        PassNotIp = 2 => "xdp_pass_not_ip",
        /// Underlay: IP but not UDP: passed.
        PassNotUdp = 3 => "xdp_pass_not_udp",
        /// Underlay: UDP to another port: passed.
        PassOtherPort = 4 => "xdp_pass_other_port",
        /// Underlay: VXLAN port but not addressed to a local VTEP address: passed.
        PassNotLocal = 5 => "xdp_pass_not_local",
        /// Underlay: IPv4 fragment (or IPv6 fragment header): passed to the kernel for reassembly.
        PassFragment = 6 => "xdp_pass_fragment",
        /// Underlay: truncated or malformed header: passed for the kernel to judge.
        PassMalformed = 7 => "xdp_pass_malformed",
        /// Overlay: frame redirected to an AF_XDP socket for encapsulation.
        OverlaySteered = 8 => "xdp_overlay_steered",
        /// Overlay: no socket bound on this queue: passed.
        OverlayNoSocket = 9 => "xdp_overlay_no_socket",
        /// Underlay: decapsulated in XDP and redirected to the overlay (not steered).
        ExpressDecap = 10 => "xdp_express_decap",
        /// Bytes of the inner frames `ExpressDecap` delivered.
        ExpressDecapBytes = 11 => "xdp_express_decap_bytes",
        /// Overlay: encapsulated in XDP and redirected to the underlay (not steered).
        ExpressEncap = 12 => "xdp_express_encap",
        /// Bytes of the outer frames `ExpressEncap` sent.
        ExpressEncapBytes = 13 => "xdp_express_encap_bytes",
        /// Steered to a worker (a breakdown of the steered counters, by why the express
        /// path did not take the frame): a new or moved source MAC to learn.
        ToWorkersLearn = 14 => "xdp_to_workers_learn",
        /// Steered: the periodic frame that keeps a learned or local MAC alive.
        ToWorkersRefresh = 15 => "xdp_to_workers_refresh",
        /// Steered: broadcast or multicast destination (head-end replication).
        ToWorkersFlood = 16 => "xdp_to_workers_flood",
        /// Steered: no express FDB entry for the destination (unknown unicast).
        ToWorkersMiss = 17 => "xdp_to_workers_miss",
        /// Steered: the remote's next hop is not resolved, or the entry has several remotes.
        ToWorkersUnresolved = 18 => "xdp_to_workers_unresolved",
        /// Steered: a frame the express path leaves to the workers (IPv6 or IPv4 options
        /// outside, a VNI or flags to judge, a length outside the MTU, outer UDP checksum
        /// to fill, the express path off).
        ToWorkersOther = 19 => "xdp_to_workers_other",
        /// Underlay: a frame from a new or moved source MAC delivered without a learning
        /// report, because this CPU's report budget was spent.
        ExpressLearnLimited = 20 => "xdp_express_learn_limited",
        /// The redirect helper refused the target (device gone): the frame went to a worker.
        ExpressRedirectFailed = 21 => "xdp_express_redirect_failed",
        /// Underlay: VXLAN to a local VTEP from a source `--accept` does not take, or from
        /// one of the host's own addresses: dropped.
        DropSourceRejected = 22 => "xdp_drop_source_rejected",
        /// Steered: the inner source MAC is the overlay device's own, invalid, or pinned by
        /// a static or store entry behind another VTEP (the workers drop and count it).
        ToWorkersSnoop = 23 => "xdp_to_workers_snoop",
        /// Underlay: an inner TCP/UDP segment whose checksum the sender's offload left
        /// unfinished (a kernel peer on a veth with `tx` offload on): a worker completes it.
        ToWorkersCsum = 24 => "xdp_to_workers_csum",
        /// Overlay: an ARP packet or IPv6 neighbour solicitation with `--proxy` on: a
        /// worker answers it from the neighbour table (or forwards it).
        ToWorkersProxy = 25 => "xdp_to_workers_proxy",
        /// Underlay: the outer header carries ECN bits (e.g. CE): a worker applies them
        /// to the inner packet (RFC 6040).
        ToWorkersEcn = 26 => "xdp_to_workers_ecn",
        /// Underlay: a unicast frame to another host's MAC (`PACKET_OTHERHOST`, seen on a
        /// promiscuous NIC or a mirrored port): passed to the kernel, which drops it.
        PassOtherHost = 27 => "xdp_pass_other_host",
        /// Underlay: a VLAN-tagged frame: the kernel hands it to its VLAN device, if
        /// any (vxdp serves the VLAN when `--dev` is that VLAN device).
        PassVlanTagged = 28 => "xdp_pass_vlan_tagged",
        /// Port layout: a frame from one port delivered into another by XDP (not steered).
        PortSwitched = 29 => "xdp_port_switched",
        /// Bytes of the frames `PortSwitched` delivered.
        PortSwitchedBytes = 30 => "xdp_port_switched_bytes",
        /// Port layout: a frame from a port sent through the trunk to the workers (the
        /// `xdp_to_workers_*` counters say why).
        PortToWorkers = 31 => "xdp_port_to_workers",
        /// Port layout: a frame from a port dropped because the trunk refused it (vxdp is
        /// stopping).
        PortNoTrunk = 32 => "xdp_port_no_trunk",
        /// Port layout: a frame from the workers delivered into the port its trunk header names.
        TrunkDelivered = 33 => "xdp_trunk_delivered",
        /// Port layout: a frame on the trunk without a valid header, or for a port that is
        /// gone: dropped.
        TrunkDropped = 34 => "xdp_trunk_dropped",
        /// Underlay: VXLAN to a local VTEP for a VNI this daemon does not serve: passed
        /// to the kernel, whose own vxlan device for that VNI (if any) takes it.
        PassOtherVni = 35 => "xdp_pass_other_vni",
    }
}

impl XdpCounter {
    /// [`Self::COUNT`] as the counters map's `max_entries`.
    pub const MAP_LEN: u32 = Self::COUNT as u32;
}
