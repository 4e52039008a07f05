//! The express path's maps: what the XDP programs need to decapsulate and encapsulate
//! known unicast without the workers, mirrored by userspace from its authoritative
//! tables (the RCU FDB and next-hop snapshots).
//!
//! - [`ExpressConfig`] (one element): whether each direction is on, the VNI, the MTU
//!   limits, the source-port range, the table clock.
//! - [`FdbKey`] → [`FdbValue`]: a MAC of a VNI and the remote it lives behind.
//! - [`RemoteTemplate`] array: the outer header toward one remote, ready to copy.
//! - a device map: where decapsulated ([`DEV_OVERLAY`]) and encapsulated
//!   ([`DEV_UNDERLAY`]) frames are redirected.
//!
//! Anything the programs do not handle goes to the workers exactly as without the express
//! path, so the workers stay the complete data plane.

/// Index of the overlay target (vxdp's end of the overlay veth) in the device map.
pub const DEV_OVERLAY: u32 = 0;
/// Index of the underlay NIC in the device map.
pub const DEV_UNDERLAY: u32 = 1;
/// Index of the trunk (the user end of the overlay veth) in the device map: port layout.
pub const DEV_TRUNK: u32 = 2;
/// Entries of the device map.
pub const DEVS: u32 = 3;

/// Most (VNI, MAC) entries the express path holds; past it the rest go to the workers.
pub const MAX_FDB: u32 = 65_536;
/// Most remotes (outer-header templates) the express path holds.
pub const MAX_REMOTES: u32 = 4_096;
/// Local MACs whose last report the overlay program remembers (an LRU map).
pub const MAX_LOCAL_MACS: u32 = 16_384;
/// [`FdbValue::remote`] when the entry has no single remote the program can use (several
/// remotes to replicate to, or more remotes than [`MAX_REMOTES`]): its frames go to the
/// workers.
pub const NO_REMOTE: u32 = u32::MAX;

/// Seconds between two frames of one MAC that the programs hand to the workers so they
/// see the MAC as active: learned entries (decap) stay alive, local MACs (encap) stay
/// advertised. Well below the shortest ageing time that makes sense and the local-MAC
/// refresh interval.
pub const REPORT_INTERVAL_SECS: u32 = 1;

/// Learning reports (frames of new or moved source MACs handed to the workers) per CPU
/// per window of `LEARN_REPORT_WINDOW_NS` (2,000 a second); past it such frames are
/// delivered without learning (counted), so a flood of new MACs cannot swamp userspace.
pub const LEARN_REPORTS_PER_WINDOW: u32 = 200;
pub const LEARN_REPORT_WINDOW_NS: u64 = 100_000_000;

/// [`ExpressConfig::flags`]: decapsulate known VXLAN in XDP.
pub const CFG_DECAP: u32 = 1 << 0;
/// [`ExpressConfig::flags`]: encapsulate known unicast in XDP.
pub const CFG_ENCAP: u32 = 1 << 1;
/// [`ExpressConfig::flags`]: learning is on (new or moved source MACs are reported).
pub const CFG_LEARNING: u32 = 1 << 2;
/// [`ExpressConfig::flags`]: local MACs are reported to the workers (advertising on).
pub const CFG_REPORT_LOCAL: u32 = 1 << 3;
/// [`ExpressConfig::flags`]: ARP/ND suppression (`--proxy`) is on: ARP and neighbour
/// solicitations go to the workers, which answer them from the neighbour table.
pub const CFG_PROXY: u32 = 1 << 4;
/// [`ExpressConfig::flags`]: port layout. The overlay veth is the trunk to the workers
/// (its frames carry a trunk header, so the overlay program leaves them all to the
/// workers); decap looks the inner destination up in the port table.
pub const CFG_PORT_LAYOUT: u32 = 1 << 5;
/// [`ExpressConfig::flags`]: port layout, express path on: XDP switches between ports and
/// decap delivers into the port owning the destination MAC.
pub const CFG_PORT_SWITCH: u32 = 1 << 6;
/// [`ExpressConfig::flags`]: bits 8-10 hold the `outer::INHERIT_*` bits (`--ttl`,
/// `--tos`, `--df inherit`): which outer fields each frame takes from its inner packet.
pub const CFG_INHERIT_SHIFT: u32 = 8;

/// The express path's settings, one element, written by userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpressConfig {
    /// `CFG_*` bits; zero turns the express path off (everything to the workers).
    pub flags: u32,
    /// The VNI served.
    pub vni: u32,
    /// Longest inner frame (overlay MTU + Ethernet header) either direction handles.
    pub max_inner_len: u32,
    /// Underlay MTU: the outer IP packet must fit.
    pub underlay_mtu: u32,
    /// Outer UDP source port range, `min..max` (max exclusive, as the kernel's `srcport`).
    pub srcport_min: u16,
    pub srcport_max: u16,
    /// The FDB table clock (whole seconds), set by the control loop each tick.
    pub clock: u32,
}

/// Key of the express FDB: a MAC of a VNI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FdbKey {
    pub vni: u32,
    pub mac: [u8; 6],
    /// Always zero (the whole key is hashed).
    pub pad: [u8; 2],
}

impl FdbKey {
    pub const fn new(vni: u32, mac: [u8; 6]) -> FdbKey {
        FdbKey { vni, mac, pad: [0; 2] }
    }
}

/// [`FdbValue::flags`]: a learned entry (decap refreshes it, and a frame from another
/// VTEP is a move to learn).
pub const FDB_LEARNED: u32 = 1 << 0;

/// Value of the express FDB.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdbValue {
    /// Index into the templates array, or [`NO_REMOTE`].
    pub remote: u32,
    /// `FDB_*` bits.
    pub flags: u32,
    /// The remote VTEP's IPv4 address as read from the packet (network order): decap
    /// compares a frame's outer source with it to see a move.
    pub vtep_v4: u32,
    /// Table clock when the decap program last handed a frame of this MAC to a worker
    /// (written by the program; userspace writes the clock of the update).
    pub reported: u32,
}

/// Outer header bytes over IPv4: Ethernet, IPv4, UDP, VXLAN.
pub const OUTER_V4_LEN: usize = crate::hdr::eth::HEADER_LEN
    + crate::hdr::ipv4::HEADER_LEN
    + crate::hdr::udp::HEADER_LEN
    + crate::hdr::vxlan::HEADER_LEN;
const _: () = assert!(OUTER_V4_LEN == 50);

/// [`RemoteTemplate::flags`]: the next hop is resolved and the template is usable.
pub const TPL_VALID: u32 = 1 << 0;
/// [`RemoteTemplate::flags`]: the outer UDP checksum must be filled (`udpcsum`).
pub const TPL_UDP_CSUM: u32 = 1 << 1;

/// The outer header toward one remote, as the workers' `OuterTemplate` builds it: total
/// length, identification, IPv4 checksum, UDP source port, length and checksum are the
/// parts the program fills per frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteTemplate {
    /// The 50 header bytes, then 6 bytes of padding (keeps the struct 8-aligned).
    pub header: [u8; 56],
    /// `TPL_*` bits.
    pub flags: u32,
    /// One's-complement sum (unfolded to 16 bits) of the IPv4 header with total length,
    /// identification and checksum zero.
    pub ip_sum: u16,
    /// Sum of the pseudo-header without its length plus the UDP header with source port,
    /// length and checksum zero, plus the VXLAN header.
    pub udp_sum: u16,
    /// The largest outer IPv4 packet the path toward this remote carries (the route's
    /// MTU when it is below the underlay device's); bigger frames go to a worker,
    /// which answers them with ICMP "fragmentation needed".
    pub path_mtu: u32,
    pub pad: u32,
}

impl Default for RemoteTemplate {
    fn default() -> Self {
        RemoteTemplate { header: [0; 56], flags: 0, ip_sum: 0, udp_sum: 0, path_mtu: 0, pad: 0 }
    }
}

/// Per-CPU scratch of the express programs, one element of a per-CPU array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpressCpu {
    /// Learning reports left in this CPU's budget.
    pub tokens: u32,
    /// IPv4 identification of the last outer header this CPU wrote.
    pub ip_id: u32,
    /// `bpf_ktime_get_ns` of the last budget refill.
    pub refilled_ns: u64,
}

#[cfg(feature = "user")]
mod pod {
    // Each type below is repr(C), Copy, integer fields only, no padding: ExpressConfig is
    // 4 * 4 + 2 * 2 + 4 = 24 bytes; FdbKey 4 + 6 + 2 = 12; FdbValue 16; RemoteTemplate
    // 56 + 4 + 2 + 2 = 64, each field at its natural alignment (sizes checked in tests).
    // SAFETY: see above.
    unsafe impl aya::Pod for super::ExpressConfig {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::FdbKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::FdbValue {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::RemoteTemplate {}
    // SAFETY: repr(C), integers only, 4 + 4 + 8 = 16 bytes without padding.
    unsafe impl aya::Pod for super::ExpressCpu {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layouts_have_no_padding() {
        assert_eq!(size_of::<ExpressConfig>(), 24);
        assert_eq!(size_of::<FdbKey>(), 12);
        assert_eq!(size_of::<FdbValue>(), 16);
        assert_eq!(size_of::<RemoteTemplate>(), 72);
        assert_eq!(size_of::<ExpressCpu>(), 16);
    }
}
