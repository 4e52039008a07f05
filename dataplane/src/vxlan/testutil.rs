//! Test fixtures the encap, decap and source-port tests share. Packets are built with
//! etherparse (and VXLAN headers by hand), never with `crate::wire`, so the two
//! implementations check each other.

pub use super::*;
pub use crate::counters::DropReason;
pub use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv4Dscp, Ipv4Ecn, Ipv4Header, PacketBuilder, SlicedPacket, UdpHeader, VlanId,
};
pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const LOCAL: [u8; 4] = [192, 0, 2, 1];
pub const REMOTE: [u8; 4] = [198, 51, 100, 7];
pub const LOCAL6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const REMOTE6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub const LOCAL_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
pub const REMOTE_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
pub const INNER_SRC: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01];
pub const INNER_DST: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02];
pub const VNI: u32 = 0x00_1092; // 4242
pub const ETH: usize = 14;
pub const IP: usize = 14; // outer IPv4 header offset, untagged

pub fn vni() -> Vni {
    Vni::new(VNI).unwrap()
}

pub fn cfg() -> DecapConfig {
    DecapConfig {
        vni: vni(),
        port: DEFAULT_PORT,
        local_v4: vec![Ipv4Addr::new(10, 9, 9, 9), Ipv4Addr::from(LOCAL)],
        local_v6: vec![Ipv6Addr::from(LOCAL6)],
        max_inner_len: DecapConfig::max_inner_len_for_mtu(1500, false),
    }
}

pub fn vxlan_bytes(vni: u32) -> [u8; 8] {
    [0x08, 0, 0, 0, (vni >> 16) as u8, (vni >> 8) as u8, vni as u8, 0]
}

/// An inner Ethernet/IPv4/UDP frame with `payload_len` bytes of payload.
pub fn inner_udp(sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(INNER_SRC, INNER_DST).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).udp(sport, dport);
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    let mut v = Vec::with_capacity(b.size(payload_len));
    b.write(&mut v, &payload).unwrap();
    v
}

pub fn vxlan_payload(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut p = vxlan_bytes(vni).to_vec();
    p.extend_from_slice(inner);
    p
}

/// A complete VXLAN-over-IPv4 frame from REMOTE to `dst`.
pub fn outer_v4(dst: [u8; 4], dport: u16, vni: u32, inner: &[u8]) -> Vec<u8> {
    let payload = vxlan_payload(vni, inner);
    let b = PacketBuilder::ethernet2(REMOTE_MAC, LOCAL_MAC).ipv4(REMOTE, dst, 64).udp(49152, dport);
    let mut v = Vec::new();
    b.write(&mut v, &payload).unwrap();
    v
}

/// A VXLAN-over-IPv4 frame from REMOTE to LOCAL with one VLAN tag: TPID `tpid`
/// (0x8100 for 802.1Q, 0x88a8 for 802.1ad), VLAN id `vid`.
pub fn tagged_v4(tpid: u16, vid: u16, inner: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(REMOTE_MAC, LOCAL_MAC)
        .single_vlan(VlanId::try_new(vid).unwrap())
        .ipv4(REMOTE, LOCAL, 64)
        .udp(40000, DEFAULT_PORT);
    let mut f = Vec::new();
    b.write(&mut f, &vxlan_payload(VNI, inner)).unwrap();
    // etherparse writes an 802.1Q TPID; the tag's layout is the same for 802.1ad.
    assert_eq!(&f[12..14], &[0x81, 0x00]);
    f[12..14].copy_from_slice(&tpid.to_be_bytes());
    f
}

pub fn good_v4() -> Vec<u8> {
    outer_v4(LOCAL, DEFAULT_PORT, VNI, &inner_udp(1000, 2000, 32))
}

/// Recomputes the outer IPv4 header checksum at `off`, independently of `wire`.
pub fn fix_ip_csum(f: &mut [u8], off: usize) {
    let hl = ((f[off] & 0x0f) as usize) * 4;
    f[off + 10] = 0;
    f[off + 11] = 0;
    let mut acc: u32 = 0;
    for w in f[off..off + hl].chunks(2) {
        acc += u16::from_be_bytes([w[0], w[1]]) as u32;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    f[off + 10..off + 12].copy_from_slice(&(!(acc as u16)).to_be_bytes());
}

pub fn assert_drop(f: &[u8], reason: DropReason) {
    assert_eq!(decap(f, &cfg()), Decap::Drop(reason), "frame {f:02x?}");
}

pub fn outer_v6(src: [u8; 16], dst: [u8; 16], inner: &[u8]) -> Vec<u8> {
    let payload = vxlan_payload(VNI, inner);
    let b = PacketBuilder::ethernet2(REMOTE_MAC, LOCAL_MAC).ipv6(src, dst, 64).udp(50000, DEFAULT_PORT);
    let mut f = Vec::new();
    b.write(&mut f, &payload).unwrap();
    f
}

/// xorshift64*, so the fuzz loop is deterministic without a dependency.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
