//! The port layout's shared definitions: vxdp as the L2 switch of its overlay, serving
//! container-side veths ("ports") directly, without `vx0` in a bridge.
//!
//! - a MAC → port table (`[u8; 8]` key: the MAC and two zero bytes → port ifindex),
//!   mirrored by userspace from its authoritative table (`dataplane/src/ports/`);
//! - a device map of the ports, by ifindex, the redirect targets of the programs;
//! - per-port counters, per CPU ([`PortStats`]);
//! - the trunk: the overlay veth pair, which in the port layout carries frames between
//!   the ports and the AF_XDP workers. Each frame on it starts with a [`TRUNK_LEN`]-byte
//!   header naming the port it came from (toward the workers) or goes to (from them).

/// Most ports one vxdp serves.
pub const MAX_PORTS: u32 = 256;
/// Most MACs the port table holds; past it frames to the rest go to the workers.
pub const MAX_PORT_MACS: u32 = 16_384;

/// Bytes of the trunk header in front of the Ethernet frame.
pub const TRUNK_LEN: usize = 8;
/// The trunk header's first two bytes ("vx").
pub const TRUNK_MAGIC: [u8; 2] = *b"vx";
/// Trunk header version (byte 2); byte 3 is zero.
pub const TRUNK_VERSION: u8 = 1;

/// The trunk header naming port `ifindex` (little-endian: both ends run on this host).
#[inline(always)]
pub const fn trunk_header(ifindex: u32) -> [u8; TRUNK_LEN] {
    let i = ifindex.to_le_bytes();
    [TRUNK_MAGIC[0], TRUNK_MAGIC[1], TRUNK_VERSION, 0, i[0], i[1], i[2], i[3]]
}

/// The port a trunk header names, if it is one.
#[inline(always)]
pub const fn trunk_port(h: &[u8; TRUNK_LEN]) -> Option<u32> {
    if h[0] != TRUNK_MAGIC[0] || h[1] != TRUNK_MAGIC[1] || h[2] != TRUNK_VERSION || h[3] != 0 {
        return None;
    }
    let ifindex = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if ifindex == 0 {
        None
    } else {
        Some(ifindex)
    }
}

/// The port table's key for a MAC.
#[inline(always)]
pub const fn mac_key(mac: &[u8; 6]) -> [u8; 8] {
    [mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0]
}

/// One port's counters (per CPU in the map; summed when read). RX: frames the port sent
/// into vxdp (its XDP program saw them); TX: frames vxdp delivered into the port (by the
/// express path or, through the trunk, by the workers).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
}

#[cfg(feature = "user")]
// SAFETY: repr(C), four u64, no padding.
unsafe impl aya::Pod for PortStats {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_header_round_trips_and_refuses_others() {
        assert_eq!(trunk_port(&trunk_header(7)), Some(7));
        assert_eq!(trunk_port(&trunk_header(0x0102_0304)), Some(0x0102_0304));
        assert_eq!(trunk_port(&trunk_header(0)), None);
        // An Ethernet frame's first bytes (a broadcast destination) are no header.
        assert_eq!(trunk_port(&[0xff; 8]), None);
        let mut h = trunk_header(3);
        h[2] = 2;
        assert_eq!(trunk_port(&h), None);
        assert_eq!(core::mem::size_of::<PortStats>(), 32);
    }
}
