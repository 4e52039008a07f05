//! The inner-flow hash that picks the outer UDP source port, written once for the workers
//! (over a byte slice) and the XDP express path (over the packet, every read checked
//! against its end as the verifier wants), so a flow keeps its source port whichever
//! path encapsulates it.

use crate::hdr::{eth, ethertype, ip_proto, ipv4, ipv6, is_vlan_tpid, vlan};

/// Bounds-checked reads of a frame: a whole header is copied out with one check and
/// parsed from the copy, which is also what the XDP verifier follows best (one
/// constant-size comparison per header). `None` past the end.
pub trait FrameBytes {
    /// Whether the `n` bytes at `at` are all inside the frame.
    fn has(&self, at: usize, n: usize) -> bool;
    /// A copy of the `N` bytes at `at`.
    fn read<const N: usize>(&self, at: usize) -> Option<[u8; N]>;
}

impl FrameBytes for [u8] {
    #[inline(always)]
    fn has(&self, at: usize, n: usize) -> bool {
        at.checked_add(n).is_some_and(|end| end <= self.len())
    }

    #[inline(always)]
    fn read<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.get(at..at.checked_add(N)?)?.try_into().ok()
    }
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

#[inline(always)]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

const SEED_IP: u32 = 0x5658_4450; // "VXDP"
const SEED_ETH: u32 = 0x4554_4832;
const SEED_SHORT: u32 = 0x5348_5254;

/// A hash of the inner flow, standing in for Linux's `skb_get_hash` as used by
/// `udp_flow_src_port` (the kernel's value is keyed by a random per-boot secret, so
/// only its inputs can be mirrored, not its value):
/// - IPv4/IPv6 (after at most one 802.1Q or 802.1ad tag, whose VLAN id is mixed in like
///   the flow dissector's VLAN key): source and destination address, protocol, and for
///   TCP, UDP, UDP-Lite, SCTP, DCCP the ports (ESP: the SPI; AH: the SPI at offset 4:
///   `proto_ports_offset`), not for fragments (the dissector stops at a fragment).
///   Other IP protocols hash on addresses and protocol. IPv6 extension headers are
///   not walked (hash on addresses and next header).
/// - anything else: Ethernet destination, source and EtherType, like the `use_eth`
///   fallback of `udp_flow_src_port` (`jhash(skb->data, 12, skb->protocol)`).
/// - a frame shorter than an Ethernet header: its bytes.
///
/// Difference: the kernel's `__flow_hash_consistentify` sorts addresses and ports so
/// both directions hash alike; vxdp keeps the order (a VTEP only ever encapsulates
/// one direction of a flow, so symmetry buys nothing and order spreads more flows).
/// Reads at most the first 14 + 4 + 40 + 8 bytes. Never panics.
#[inline(always)]
pub fn flow_hash<F: FrameBytes + ?Sized>(f: &F) -> u32 {
    let Some(eh) = f.read::<{ eth::HEADER_LEN }>(0) else {
        return short_hash(f);
    };
    let mut et = be16([eh[eth::ETHERTYPE], eh[eth::ETHERTYPE + 1]]);
    let mut l3 = eth::HEADER_LEN;
    let mut vlan_id = 0u32;
    if is_vlan_tpid(et) {
        if let Some(tag) = f.read::<{ vlan::LEN }>(l3) {
            vlan_id = u32::from(be16([tag[vlan::TCI], tag[vlan::TCI + 1]]) & 0x0fff);
            et = be16([tag[vlan::ETHERTYPE], tag[vlan::ETHERTYPE + 1]]);
            l3 += vlan::LEN;
        }
    }
    if et == ethertype::IPV4 {
        if let Some(h) = ipv4_hash(f, l3, vlan_id) {
            return h;
        }
    } else if et == ethertype::IPV6 {
        if let Some(h) = ipv6_hash(f, l3, vlan_id) {
            return h;
        }
    }
    let mut h = FlowHasher::new(SEED_ETH ^ vlan_id);
    h.word(be32(&eh, 0));
    h.word(be32(&eh, 4));
    h.word(be32(&eh, 8));
    h.word(u32::from(et));
    h.finish()
}

/// `None` unless `l3` starts a complete IPv4 header (version 4, IHL ≥ 5, all of it in
/// the frame).
#[inline(always)]
fn ipv4_hash<F: FrameBytes + ?Sized>(f: &F, l3: usize, vlan_id: u32) -> Option<u32> {
    let ip = f.read::<{ ipv4::HEADER_LEN }>(l3)?;
    let ver_ihl = ip[ipv4::VER_IHL];
    let hl = usize::from(ver_ihl & 0x0f) * 4;
    if ver_ihl >> 4 != 4 || hl < ipv4::HEADER_LEN || !f.has(l3, hl) {
        return None;
    }
    let mut h = FlowHasher::new(SEED_IP ^ vlan_id);
    h.word(be32(&ip, ipv4::SRC));
    h.word(be32(&ip, ipv4::DST));
    let proto = ip[ipv4::PROTOCOL];
    let frag = be16([ip[ipv4::FLAGS_FRAG], ip[ipv4::FLAGS_FRAG + 1]]) & (ipv4::FLAG_MF | ipv4::FRAG_OFFSET_MASK) != 0;
    let ports = if frag { None } else { l4_ports(f, proto, l3 + hl) };
    Some(h.l4(proto, ports))
}

/// `None` unless `l3` starts a complete IPv6 fixed header with version 6.
#[inline(always)]
fn ipv6_hash<F: FrameBytes + ?Sized>(f: &F, l3: usize, vlan_id: u32) -> Option<u32> {
    let ip = f.read::<{ ipv6::HEADER_LEN }>(l3)?;
    if ip[ipv6::VER_TC_FLOW] >> 4 != 6 {
        return None;
    }
    let mut h = FlowHasher::new(SEED_IP ^ vlan_id);
    for w in 0..8 {
        h.word(be32(&ip, ipv6::SRC + w * 4));
    }
    let nh = ip[ipv6::NEXT_HEADER];
    Some(h.l4(nh, l4_ports(f, nh, l3 + ipv6::HEADER_LEN)))
}

/// The 32 bits the flow dissector takes as "ports" for `proto` (Linux
/// `proto_ports_offset`), if present.
#[inline(always)]
fn l4_ports<F: FrameBytes + ?Sized>(f: &F, proto: u8, l4: usize) -> Option<u32> {
    let off = match proto {
        ip_proto::TCP | ip_proto::UDP | ip_proto::DCCP | ip_proto::ESP | ip_proto::SCTP | ip_proto::UDPLITE => 0,
        ip_proto::AH => 4,
        _ => return None,
    };
    f.read::<4>(l4 + off).map(u32::from_be_bytes)
}

/// A frame too short for an Ethernet header: its bytes, as zero-padded 32-bit words.
#[inline(always)]
fn short_hash<F: FrameBytes + ?Sized>(f: &F) -> u32 {
    let mut h = FlowHasher::new(SEED_SHORT);
    // At most 13 bytes: four words.
    for w in 0..4 {
        let at = w * 4;
        if !f.has(at, 1) {
            break;
        }
        let mut v = 0u32;
        for i in 0..4 {
            v = (v << 8) | u32::from(f.read::<1>(at + i).map_or(0, |b| b[0]));
        }
        h.word(v);
    }
    h.finish()
}

/// MurmurHash3 (x86_32) over 32-bit words: a few multiplies per word, full avalanche
/// in the final mix, so the upper 16 bits `udp_flow_src_port` uses are well spread.
struct FlowHasher {
    h: u32,
    n: u32,
}

impl FlowHasher {
    #[inline(always)]
    fn new(seed: u32) -> Self {
        FlowHasher { h: seed, n: 0 }
    }

    #[inline(always)]
    fn word(&mut self, w: u32) {
        let k = w.wrapping_mul(0xcc9e_2d51).rotate_left(15).wrapping_mul(0x1b87_3593);
        self.h = (self.h ^ k).rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
        self.n += 4;
    }

    #[inline(always)]
    fn l4(mut self, proto: u8, ports: Option<u32>) -> u32 {
        self.word(u32::from(proto) | if ports.is_some() { 0x100 } else { 0 });
        if let Some(p) = ports {
            self.word(p);
        }
        self.finish()
    }

    #[inline(always)]
    fn finish(self) -> u32 {
        let mut h = self.h ^ self.n;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

/// The source port for a flow hash in `min..max` (max exclusive), Linux
/// `udp_flow_src_port`'s formula exactly. The caller guarantees `min < max`.
#[inline(always)]
pub fn pick_port(hash: u32, min: u16, max: u16) -> u16 {
    let hash = hash ^ (hash << 16);
    (((u64::from(hash) * u64::from(max - min)) >> 32) as u32 + u32::from(min)) as u16
}
