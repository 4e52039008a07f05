//! VXLAN (RFC 7348) encapsulation and decapsulation on caller-owned buffers.
//!
//! Pure functions, no I/O, no allocation: [`decap`] validates a frame received on the
//! underlay and says where its inner frame is ([`Decap`]); [`encap`] writes a
//! precomputed outer header ([`OuterTemplate`]) in front of an inner frame in place.
//! [`flow_hash`] and [`SrcPortRange`] pick the outer UDP source port the way Linux's
//! `udp_flow_src_port` does. Behaviour follows the Linux `vxlan` driver wherever the
//! wire shows it; each such choice names the kernel function it mirrors.

use crate::counters::DropReason;
use crate::wire::checksum;
use crate::wire::ethernet::{self, EthernetFrame, MacAddr, VlanHeader};
use crate::wire::ipv4::{self, protocol, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::udp::{self, UdpDatagram};
use crate::wire::vxlan::{self as vxlan_hdr, VxlanHeader};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// IANA-assigned VXLAN UDP port (Linux `IANA_VXLAN_UDP_PORT`).
pub const DEFAULT_PORT: u16 = 4789;

/// Outer header bytes in front of the inner frame over IPv4: 14 + 20 + 8 + 8.
pub const OUTER_V4_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + vxlan_hdr::HEADER_LEN;
/// Outer header bytes in front of the inner frame over IPv6: 14 + 40 + 8 + 8.
pub const OUTER_V6_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN + vxlan_hdr::HEADER_LEN;
const _: () = assert!(OUTER_V4_LEN == 50 && OUTER_V6_LEN == 70);

/// Offsets of the outer headers inside an untagged IPv4 outer header.
const V4_IP: usize = ethernet::HEADER_LEN;
const V4_UDP: usize = V4_IP + ipv4::HEADER_LEN;
const V4_VXLAN: usize = V4_UDP + udp::HEADER_LEN;
/// UDP length of a VXLAN datagram without its inner frame.
const UDP_OVERHEAD: usize = udp::HEADER_LEN + vxlan_hdr::HEADER_LEN;
/// Longest inner frame whose outer IPv4 total length still fits 16 bits.
pub const MAX_INNER_V4: usize = u16::MAX as usize - ipv4::HEADER_LEN - UDP_OVERHEAD;

// ---------------------------------------------------------------------------------
// VNI

/// A 24-bit VXLAN Network Identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vni(u32);

impl Vni {
    /// The largest VNI, 2^24 - 1.
    pub const MAX: u32 = 0xff_ffff;

    /// `None` above [`Vni::MAX`]. 0 is valid, as for `ip link add ... type vxlan id 0`.
    pub const fn new(v: u32) -> Option<Vni> {
        if v <= Self::MAX {
            Some(Vni(v))
        } else {
            None
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a string is not a VNI.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseVniError {
    #[error("invalid VNI {0:?}: expected a decimal (or 0x-prefixed hex) number from 0 to 16777215")]
    NotANumber(String),
    #[error("invalid VNI {0}: a VNI has 24 bits, so it must be at most 16777215")]
    OutOfRange(u64),
}

impl FromStr for Vni {
    type Err = ParseVniError;

    /// Decimal, or hex with a `0x` prefix (like iproute2's `get_u32(.., 0)`, but
    /// without its octal reading of a leading zero).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => t.parse::<u64>(),
        };
        let v = parsed.map_err(|_| ParseVniError::NotANumber(s.to_string()))?;
        u32::try_from(v).ok().and_then(Vni::new).ok_or(ParseVniError::OutOfRange(v))
    }
}

// ---------------------------------------------------------------------------------
// Decapsulation

/// What decap accepts. Built once at startup.
#[derive(Clone, Debug)]
pub struct DecapConfig {
    pub vni: Vni,
    /// UDP destination port (usually [`DEFAULT_PORT`]).
    pub port: u16,
    /// Local VTEP addresses: frames to any other address are `NotVxlan`.
    pub local_v4: Vec<Ipv4Addr>,
    pub local_v6: Vec<Ipv6Addr>,
    /// Longest inner frame delivered: overlay MTU + 14 (+4 if the overlay is tagged).
    pub max_inner_len: usize,
}

impl DecapConfig {
    /// The `max_inner_len` for an overlay MTU (Ethernet header, plus one tag if asked).
    pub const fn max_inner_len_for_mtu(mtu: u16, tagged: bool) -> usize {
        mtu as usize + ethernet::HEADER_LEN + if tagged { ethernet::VLAN_TAG_LEN } else { 0 }
    }
}

/// The outcome of [`decap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decap {
    /// Deliver `frame[inner_start..inner_start + inner_len]` to the overlay; learn
    /// `inner_src -> src_vtep`.
    Deliver {
        inner_start: usize,
        inner_len: usize,
        src_vtep: IpAddr,
        inner_src: [u8; 6],
    },
    Drop(DropReason),
}

/// Validates the outer headers of a frame received on the underlay (Ethernet with
/// at most one 802.1Q tag, IPv4 or IPv6, UDP, VXLAN) and locates the inner frame.
/// Never panics on any input.
///
/// Checks, in this order (the order decides which counter a frame with several faults
/// lands in; it follows the order Linux checks them in):
/// 1. Ethernet header and tag present (`Truncated`); EtherType IPv4/IPv6, else `NotVxlan`.
/// 2. IPv4, as `ip_rcv_core`: header present (`Truncated`); version 4 and IHL >= 5
///    (`BadHeader`); options present (`Truncated`); header checksum (`BadHeader`:
///    `ip_rcv_core` always verifies it, and over 20 bytes it costs a few ns); total
///    length at most the frame (`Truncated`, the kernel's `IPSTATS_MIB_INTRUNCATEDPKTS`) and
///    at least IHL*4 (`BadHeader`). Bytes after the total length (Ethernet padding) are
///    ignored. Source 0/8, 127/8, multicast or 255.255.255.255 is a martian
///    (`ip_route_input_slow`): `BadHeader`. Destination not in `local_v4`: `NotVxlan`.
///    A fragment (MF or offset, `ip_is_fragment`): `BadHeader` (vxdp does not
///    reassemble; the XDP program passes fragments to the kernel). Not UDP: `NotVxlan`.
/// 3. IPv6, as `ip6_rcv_core`: header present (`Truncated`); version 6 (`BadHeader`);
///    payload length <= frame (`Truncated`); multicast or loopback source (`BadHeader`);
///    destination not in `local_v6` (`NotVxlan`); next header Fragment (`BadHeader`);
///    next header not UDP (`NotVxlan`: extension headers are not walked).
/// 4. UDP, as `__udp4_lib_rcv`: header present, length >= 8 and <= the IP payload
///    (`Truncated`); the datagram ends at its length field. Destination port:
///    `NotVxlan`. The UDP checksum is not verified: kernel peers on veth send it
///    unfinished (CHECKSUM_PARTIAL), and a zero checksum over IPv6 is accepted (as
///    with `udp6zerocsumrx`).
/// 5. VXLAN, as `vxlan_rcv`: header present (`Truncated`); I flag (`BadFlags`); VNI
///    (`WrongVni`); then every other bit of the header zero (`BadFlags`). RFC 7348
///    says to ignore reserved bits on receive, but Linux does not: `vxlan_rcv` drops a
///    header using any bit outside its `reserved_bits` (default: all but I and the
///    VNI) as `SKB_DROP_REASON_VXLAN_INVALID_HDR`, checked after the VNI lookup. vxdp
///    mirrors the kernel, so a peer sending GBP/GPE bits is dropped by both alike.
/// 6. Inner frame at least an Ethernet header (`Truncated`) and at most
///    `cfg.max_inner_len` (`MtuExceeded`).
pub fn decap(frame: &[u8], cfg: &DecapConfig) -> Decap {
    match locate_inner(frame, cfg) {
        Ok(d) => d,
        Err(reason) => Decap::Drop(reason),
    }
}

fn locate_inner(frame: &[u8], cfg: &DecapConfig) -> Result<Decap, DropReason> {
    let eth = EthernetFrame::new_checked(frame)?;
    let mut l3_start = ethernet::HEADER_LEN;
    let mut ethertype = eth.ethertype();
    if ethertype == ethernet::ethertype::VLAN {
        let tag = VlanHeader::new_checked(eth.payload())?;
        ethertype = tag.ethertype();
        l3_start += ethernet::VLAN_TAG_LEN;
    }
    let l3 = &frame[l3_start..];
    let (src_vtep, udp_start, l3_end) = match ethertype {
        ethernet::ethertype::IPV4 => {
            let (src, hl, total) = check_ipv4(l3, cfg)?;
            (IpAddr::V4(src), l3_start + hl, l3_start + total)
        }
        ethernet::ethertype::IPV6 => {
            let (src, payload_len) = check_ipv6(l3, cfg)?;
            (IpAddr::V6(src), l3_start + ipv6::HEADER_LEN, l3_start + ipv6::HEADER_LEN + payload_len)
        }
        _ => return Err(DropReason::NotVxlan),
    };

    let udp = UdpDatagram::new_checked(&frame[udp_start..l3_end])?;
    if udp.dst_port() != cfg.port {
        return Err(DropReason::NotVxlan);
    }
    let vxlan = VxlanHeader::new_checked(udp.payload())?;
    if !vxlan.i_flag() {
        return Err(DropReason::BadFlags);
    }
    if vxlan.vni() != cfg.vni.get() {
        return Err(DropReason::WrongVni);
    }
    if !vxlan.reserved_bits_clear() {
        return Err(DropReason::BadFlags);
    }
    let inner = EthernetFrame::new_checked(vxlan.payload())?;
    let inner_len = inner.as_bytes().len();
    if inner_len > cfg.max_inner_len {
        return Err(DropReason::MtuExceeded);
    }
    Ok(Decap::Deliver { inner_start: udp_start + UDP_OVERHEAD, inner_len, src_vtep, inner_src: inner.src_addr() })
}

/// Returns (source, header length, total length) of a valid, local, unfragmented
/// IPv4/UDP packet.
#[inline]
fn check_ipv4(l3: &[u8], cfg: &DecapConfig) -> Result<(Ipv4Addr, usize, usize), DropReason> {
    if l3.len() < ipv4::HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let ip = Ipv4Packet::new_unchecked(l3);
    if ip.version() != 4 {
        return Err(DropReason::BadHeader);
    }
    ip.check_len()?;
    if !ip.verify_checksum() {
        return Err(DropReason::BadHeader);
    }
    ip.check_total_len()?;
    let src = ip.src_addr();
    if is_martian_v4(src) {
        return Err(DropReason::BadHeader);
    }
    if !cfg.local_v4.contains(&ip.dst_addr()) {
        return Err(DropReason::NotVxlan);
    }
    if ip.is_fragment() {
        return Err(DropReason::BadHeader);
    }
    if ip.protocol() != protocol::UDP {
        return Err(DropReason::NotVxlan);
    }
    Ok((src, ip.header_len(), ip.total_len() as usize))
}

/// Linux `ip_route_input_slow` `martian_source`: zeronet, loopback (without
/// `route_localnet`), multicast, limited broadcast.
#[inline]
fn is_martian_v4(a: Ipv4Addr) -> bool {
    a.octets()[0] == 0 || a.is_loopback() || a.is_multicast() || a.is_broadcast()
}

/// Returns (source, payload length) of a valid, local IPv6/UDP packet.
#[inline]
fn check_ipv6(l3: &[u8], cfg: &DecapConfig) -> Result<(Ipv6Addr, usize), DropReason> {
    let ip = Ipv6Packet::new_checked(l3)?;
    if ip.version() != 6 {
        return Err(DropReason::BadHeader);
    }
    ip.check_payload_len()?;
    let src = ip.src_addr();
    if src.is_multicast() || src.is_loopback() {
        return Err(DropReason::BadHeader);
    }
    if !cfg.local_v6.contains(&ip.dst_addr()) {
        return Err(DropReason::NotVxlan);
    }
    match ip.next_header() {
        protocol::UDP => Ok((src, ip.payload_len() as usize)),
        protocol::IPV6_FRAGMENT => Err(DropReason::BadHeader),
        _ => Err(DropReason::NotVxlan),
    }
}

// ---------------------------------------------------------------------------------
// Encapsulation

/// Parameters of one outer IPv4 header toward one remote VTEP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncapParams {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub ttl: u8,
    pub tos: u8,
    pub df: bool,
    pub dst_port: u16,
    pub vni: Vni,
    /// Fill the outer UDP checksum (`ip link ... udpcsum`); Linux's default for IPv4
    /// is `noudpcsum`: checksum 0.
    pub udp_csum: bool,
}

/// Precomputed 50-byte outer header and its partial checksums; per-packet work only
/// patches lengths, IP id, UDP source port and the checksums.
#[derive(Clone, Copy, Debug)]
pub struct OuterTemplate {
    params: EncapParams,
    header: [u8; OUTER_V4_LEN],
    /// Sum of the IPv4 header with total length, identification and checksum zero.
    ip_sum: u16,
    /// Sum of the pseudo-header without its length, plus the UDP header with source
    /// port, length and checksum zero, plus the VXLAN header.
    udp_sum: u16,
}

impl OuterTemplate {
    pub fn new(p: &EncapParams) -> Self {
        let mut h = [0u8; OUTER_V4_LEN];
        let mut eth = EthernetFrame::new_unchecked(&mut h[..]);
        eth.set_dst_addr(p.dst_mac);
        eth.set_src_addr(p.src_mac);
        eth.set_ethertype(ethernet::ethertype::IPV4);

        let mut ip = Ipv4Packet::new_unchecked(&mut h[V4_IP..V4_UDP]);
        ip.set_version_and_header_len(ipv4::HEADER_LEN);
        ip.set_tos(p.tos);
        ip.set_unfragmented(p.df);
        ip.set_ttl(p.ttl);
        ip.set_protocol(protocol::UDP);
        ip.set_src_addr(p.src_ip);
        ip.set_dst_addr(p.dst_ip);
        let ip_sum = checksum::sum(&h[V4_IP..V4_UDP]);

        UdpDatagram::new_unchecked(&mut h[V4_UDP..V4_VXLAN]).set_dst_port(p.dst_port);
        VxlanHeader::new_unchecked(&mut h[V4_VXLAN..]).set_header(p.vni.get());
        let pseudo = checksum::pseudo_header_v4(p.src_ip.octets(), p.dst_ip.octets(), protocol::UDP, 0);
        let udp_sum = checksum::combine(pseudo, checksum::sum(&h[V4_UDP..]));

        OuterTemplate { params: *p, header: h, ip_sum, udp_sum }
    }

    pub fn params(&self) -> &EncapParams {
        &self.params
    }
}

/// Encapsulates in place: the inner frame is `buf[inner_start..inner_start +
/// inner_len]`; writes the outer header into `buf[inner_start - 50..inner_start]` and
/// returns the start of the outer frame (`inner_start - 50`).
///
/// Errors: `Truncated` if `inner_start < 50` or the inner frame overruns `buf`;
/// `MtuExceeded` if the outer IPv4 total length would not fit 16 bits. The path MTU
/// check is the caller's. Outer IPv4: checksum, TTL/TOS/DF from the template,
/// identification `ip_id`. UDP: `src_port`, length, checksum 0 unless
/// `udp_csum` (then full, 0 sent as 0xffff as in `udp4_hwcsum`/`csum_fold`
/// `CSUM_MANGLED_0`). VXLAN: flags 0x08, the VNI, reserved bits zero.
#[inline]
pub fn encap(
    buf: &mut [u8],
    inner_start: usize,
    inner_len: usize,
    tpl: &OuterTemplate,
    src_port: u16,
    ip_id: u16,
) -> Result<usize, DropReason> {
    let start = inner_start.checked_sub(OUTER_V4_LEN).ok_or(DropReason::Truncated)?;
    let end = inner_start.checked_add(inner_len).ok_or(DropReason::Truncated)?;
    if end > buf.len() {
        return Err(DropReason::Truncated);
    }
    if inner_len > MAX_INNER_V4 {
        return Err(DropReason::MtuExceeded);
    }
    let udp_len = (UDP_OVERHEAD + inner_len) as u16;
    let total_len = ipv4::HEADER_LEN as u16 + udp_len;
    let frame = &mut buf[start..end];
    frame[..OUTER_V4_LEN].copy_from_slice(&tpl.header);

    let mut ip = Ipv4Packet::new_unchecked(&mut frame[V4_IP..V4_UDP]);
    ip.set_total_len(total_len);
    ip.set_ident(ip_id);
    let ip_sum = checksum::combine(checksum::combine(tpl.ip_sum, total_len), ip_id);
    ip.set_checksum(checksum::finish(ip_sum));

    let (outer, inner) = frame.split_at_mut(OUTER_V4_LEN);
    let mut udp = UdpDatagram::new_unchecked(&mut outer[V4_UDP..V4_VXLAN]);
    udp.set_src_port(src_port);
    udp.set_length(udp_len);
    if tpl.params.udp_csum {
        // udp_len appears twice: in the pseudo-header and in the UDP header.
        let s = checksum::combine(tpl.udp_sum, checksum::combine(udp_len, udp_len));
        let s = checksum::combine(checksum::combine(s, src_port), checksum::sum(inner));
        let c = checksum::finish(s);
        udp.set_checksum(if c == 0 { 0xffff } else { c });
    }
    Ok(start)
}

// ---------------------------------------------------------------------------------
// Source port selection

/// A hash of the inner flow, standing in for Linux's `skb_get_hash` as used by
/// `udp_flow_src_port` (the kernel's value is keyed by a random per-boot secret, so
/// only its inputs can be mirrored, not its value):
/// - IPv4/IPv6 (after at most one 802.1Q tag, whose VLAN id is mixed in like the
///   flow dissector's VLAN key): source and destination address, protocol, and for
///   TCP, UDP, UDP-Lite, SCTP, DCCP the ports (ESP: the SPI; AH: the SPI at offset 4:
///   `proto_ports_offset`), not for fragments (the dissector stops at a fragment).
///   Other IP protocols hash on addresses and protocol. IPv6 extension headers are
///   not walked (hash on addresses and next header).
/// - anything else: Ethernet destination, source and EtherType, like the `use_eth`
///   fallback of `udp_flow_src_port` (`jhash(skb->data, 12, skb->protocol)`).
///
/// Difference: the kernel's `__flow_hash_consistentify` sorts addresses and ports so
/// both directions hash alike; vxdp keeps the order (a VTEP only ever encapsulates
/// one direction of a flow, so symmetry buys nothing and order spreads more flows).
/// Reads at most the first 14 + 4 + 40 + 8 bytes. Never panics.
pub fn flow_hash(inner: &[u8]) -> u32 {
    let Ok(eth) = EthernetFrame::new_checked(inner) else {
        let mut h = FlowHasher::new(SEED_SHORT);
        for c in inner.chunks(4) {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            h.word(u32::from_be_bytes(w));
        }
        return h.finish();
    };
    let mut ethertype = eth.ethertype();
    let mut l3 = eth.payload();
    let mut vlan = 0u32;
    if ethertype == ethernet::ethertype::VLAN {
        if let Ok(tag) = VlanHeader::new_checked(l3) {
            vlan = tag.vlan_id() as u32;
            ethertype = tag.ethertype();
            l3 = &l3[ethernet::VLAN_TAG_LEN..];
        }
    }
    match ethertype {
        ethernet::ethertype::IPV4 => {
            if let Ok(ip) = Ipv4Packet::new_checked(l3) {
                if ip.version() == 4 {
                    let mut h = FlowHasher::new(SEED_IP ^ vlan);
                    h.word(u32::from_be_bytes(ip.src_bytes()));
                    h.word(u32::from_be_bytes(ip.dst_bytes()));
                    let proto = ip.protocol();
                    let ports = if ip.is_fragment() { None } else { l4_ports(proto, &l3[ip.header_len()..]) };
                    return h.l4(proto, ports);
                }
            }
        }
        ethernet::ethertype::IPV6 => {
            if let Ok(ip) = Ipv6Packet::new_checked(l3) {
                if ip.version() == 6 {
                    let mut h = FlowHasher::new(SEED_IP ^ vlan);
                    for a in [ip.src_bytes(), ip.dst_bytes()] {
                        for w in a.chunks_exact(4) {
                            h.word(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
                        }
                    }
                    let nh = ip.next_header();
                    return h.l4(nh, l4_ports(nh, &l3[ipv6::HEADER_LEN..]));
                }
            }
        }
        _ => {}
    }
    let b = eth.as_bytes();
    let mut h = FlowHasher::new(SEED_ETH ^ vlan);
    for w in b[..12].chunks_exact(4) {
        h.word(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    h.word(ethertype as u32);
    h.finish()
}

const SEED_IP: u32 = 0x5658_4450; // "VXDP"
const SEED_ETH: u32 = 0x4554_4832;
const SEED_SHORT: u32 = 0x5348_5254;

/// The 32 bits the flow dissector takes as "ports" for `proto` (Linux
/// `proto_ports_offset`), if present.
#[inline]
fn l4_ports(proto: u8, l4: &[u8]) -> Option<u32> {
    let off = match proto {
        protocol::TCP | protocol::UDP | protocol::DCCP | protocol::ESP | protocol::SCTP | protocol::UDPLITE => 0,
        protocol::AH => 4,
        _ => return None,
    };
    let p = l4.get(off..off + 4)?;
    Some(u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
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
        self.word(proto as u32 | if ports.is_some() { 0x100 } else { 0 });
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

/// The outer UDP source port range, as `ip link ... srcport MIN MAX`.
///
/// Kernel semantics (`udp_flow_src_port`, called by `vxlan_xmit_one` with
/// `cfg.port_min`/`cfg.port_max`): the port is `((hash ^ hash << 16) * (max - min)) >> 32
/// + min`, so it lies in `min..max` — **MAX is exclusive**. If `min >= max` the kernel
/// uses `ip_local_port_range` instead (default 32768 60999, again with 60999 never
/// picked). `vxlan_nl2conf` rejects `max < min` ("Invalid source port range").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrcPortRange {
    pub min: u16,
    /// Exclusive.
    pub max: u16,
}

impl SrcPortRange {
    /// `ip_local_port_range`'s default, what the kernel uses without `srcport`.
    pub const KERNEL_DEFAULT: SrcPortRange = SrcPortRange { min: 32768, max: 60999 };

    /// `None` if `max < min` (the kernel refuses it). `min == max` (including
    /// `srcport 0 0`, which iproute2 does not even send) gives the default range, as
    /// in the kernel.
    pub fn new(min: u16, max: u16) -> Option<Self> {
        if max < min {
            None
        } else if min == max {
            Some(Self::KERNEL_DEFAULT)
        } else {
            Some(SrcPortRange { min, max })
        }
    }

    /// The source port for a flow hash: `udp_flow_src_port`'s formula exactly.
    #[inline]
    pub fn pick(&self, hash: u32) -> u16 {
        let r = if self.min >= self.max { Self::KERNEL_DEFAULT } else { *self };
        let hash = hash ^ (hash << 16);
        (((hash as u64 * (r.max - r.min) as u64) >> 32) as u32 + r.min as u32) as u16
    }
}

impl Default for SrcPortRange {
    fn default() -> Self {
        Self::KERNEL_DEFAULT
    }
}

/// Whether an inner source MAC may be learned (unicast, non-zero).
#[inline]
pub fn is_learnable(mac: &MacAddr) -> bool {
    ethernet::is_unicast(mac)
}

#[cfg(test)]
mod tests {
    //! Packets here are built with etherparse (and VXLAN headers by hand), never with
    //! `crate::wire`, so the two implementations check each other.
    use super::*;
    use etherparse::{
        EtherType, Ethernet2Header, IpNumber, Ipv4Dscp, Ipv4Ecn, Ipv4Header, PacketBuilder, SlicedPacket, UdpHeader,
        VlanId,
    };

    const LOCAL: [u8; 4] = [192, 0, 2, 1];
    const REMOTE: [u8; 4] = [198, 51, 100, 7];
    const LOCAL6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const REMOTE6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const LOCAL_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    const REMOTE_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
    const INNER_SRC: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01];
    const INNER_DST: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02];
    const VNI: u32 = 0x00_1092; // 4242
    const ETH: usize = 14;
    const IP: usize = 14; // outer IPv4 header offset, untagged

    fn vni() -> Vni {
        Vni::new(VNI).unwrap()
    }

    fn cfg() -> DecapConfig {
        DecapConfig {
            vni: vni(),
            port: DEFAULT_PORT,
            local_v4: vec![Ipv4Addr::new(10, 9, 9, 9), Ipv4Addr::from(LOCAL)],
            local_v6: vec![Ipv6Addr::from(LOCAL6)],
            max_inner_len: DecapConfig::max_inner_len_for_mtu(1500, false),
        }
    }

    fn vxlan_bytes(vni: u32) -> [u8; 8] {
        [0x08, 0, 0, 0, (vni >> 16) as u8, (vni >> 8) as u8, vni as u8, 0]
    }

    /// An inner Ethernet/IPv4/UDP frame with `payload_len` bytes of payload.
    fn inner_udp(sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(INNER_SRC, INNER_DST).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).udp(sport, dport);
        let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
        let mut v = Vec::with_capacity(b.size(payload_len));
        b.write(&mut v, &payload).unwrap();
        v
    }

    fn vxlan_payload(vni: u32, inner: &[u8]) -> Vec<u8> {
        let mut p = vxlan_bytes(vni).to_vec();
        p.extend_from_slice(inner);
        p
    }

    /// A complete VXLAN-over-IPv4 frame from REMOTE to `dst`.
    fn outer_v4(dst: [u8; 4], dport: u16, vni: u32, inner: &[u8]) -> Vec<u8> {
        let payload = vxlan_payload(vni, inner);
        let b = PacketBuilder::ethernet2(REMOTE_MAC, LOCAL_MAC).ipv4(REMOTE, dst, 64).udp(49152, dport);
        let mut v = Vec::new();
        b.write(&mut v, &payload).unwrap();
        v
    }

    fn good_v4() -> Vec<u8> {
        outer_v4(LOCAL, DEFAULT_PORT, VNI, &inner_udp(1000, 2000, 32))
    }

    /// Recomputes the outer IPv4 header checksum at `off`, independently of `wire`.
    fn fix_ip_csum(f: &mut [u8], off: usize) {
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

    fn assert_drop(f: &[u8], reason: DropReason) {
        assert_eq!(decap(f, &cfg()), Decap::Drop(reason), "frame {f:02x?}");
    }

    // ---- decap: accepted frames ----

    #[test]
    fn decap_ipv4_finds_inner_frame_and_vtep() {
        let inner = inner_udp(1000, 2000, 32);
        let f = outer_v4(LOCAL, DEFAULT_PORT, VNI, &inner);
        let d = decap(&f, &cfg());
        assert_eq!(
            d,
            Decap::Deliver {
                inner_start: OUTER_V4_LEN,
                inner_len: inner.len(),
                src_vtep: IpAddr::V4(Ipv4Addr::from(REMOTE)),
                inner_src: INNER_SRC,
            }
        );
        assert_eq!(&f[OUTER_V4_LEN..], &inner[..]);
    }

    #[test]
    fn decap_ignores_ethernet_padding() {
        // A 14-byte inner frame makes a 64-byte outer frame; pad it to 74 like a NIC
        // padding a short frame, with junk that must not count as inner bytes.
        let inner = [INNER_DST, INNER_SRC].concat().into_iter().chain([0x88, 0xb5]).collect::<Vec<u8>>();
        let mut f = outer_v4(LOCAL, DEFAULT_PORT, VNI, &inner);
        f.extend_from_slice(&[0xee; 10]);
        match decap(&f, &cfg()) {
            Decap::Deliver { inner_start, inner_len, .. } => {
                assert_eq!((inner_start, inner_len), (OUTER_V4_LEN, 14));
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn decap_vlan_tagged_outer() {
        let inner = inner_udp(1, 2, 10);
        let payload = vxlan_payload(VNI, &inner);
        let b = PacketBuilder::ethernet2(REMOTE_MAC, LOCAL_MAC)
            .single_vlan(VlanId::try_new(100).unwrap())
            .ipv4(REMOTE, LOCAL, 64)
            .udp(40000, DEFAULT_PORT);
        let mut f = Vec::new();
        b.write(&mut f, &payload).unwrap();
        assert_eq!(&f[12..14], &[0x81, 0x00]);
        assert_eq!(
            decap(&f, &cfg()),
            Decap::Deliver {
                inner_start: OUTER_V4_LEN + 4,
                inner_len: inner.len(),
                src_vtep: IpAddr::V4(Ipv4Addr::from(REMOTE)),
                inner_src: INNER_SRC,
            }
        );
        for n in 0..f.len() {
            assert_eq!(decap(&f[..n], &cfg()), Decap::Drop(DropReason::Truncated), "len {n}");
        }
    }

    fn outer_v6(src: [u8; 16], dst: [u8; 16], inner: &[u8]) -> Vec<u8> {
        let payload = vxlan_payload(VNI, inner);
        let b = PacketBuilder::ethernet2(REMOTE_MAC, LOCAL_MAC).ipv6(src, dst, 64).udp(50000, DEFAULT_PORT);
        let mut f = Vec::new();
        b.write(&mut f, &payload).unwrap();
        f
    }

    #[test]
    fn decap_ipv6_outer() {
        let inner = inner_udp(5, 6, 100);
        let f = outer_v6(REMOTE6, LOCAL6, &inner);
        assert_eq!(
            decap(&f, &cfg()),
            Decap::Deliver {
                inner_start: OUTER_V6_LEN,
                inner_len: inner.len(),
                src_vtep: IpAddr::V6(Ipv6Addr::from(REMOTE6)),
                inner_src: INNER_SRC,
            }
        );
        for n in 0..f.len() {
            assert_eq!(decap(&f[..n], &cfg()), Decap::Drop(DropReason::Truncated), "len {n}");
        }
    }

    #[test]
    fn decap_ipv6_drops() {
        let inner = inner_udp(5, 6, 10);
        assert_drop(&outer_v6(REMOTE6, REMOTE6, &inner), DropReason::NotVxlan);
        let mut mcast_src = REMOTE6;
        mcast_src[0] = 0xff;
        assert_drop(&outer_v6(mcast_src, LOCAL6, &inner), DropReason::BadHeader);
        let mut f = outer_v6(REMOTE6, LOCAL6, &inner);
        f[ETH] = 0x40; // version 4 under the IPv6 EtherType
        assert_drop(&f, DropReason::BadHeader);
        let mut f = outer_v6(REMOTE6, LOCAL6, &inner);
        f[ETH + 6] = 44; // Fragment header
        assert_drop(&f, DropReason::BadHeader);
        f[ETH + 6] = 6; // TCP
        assert_drop(&f, DropReason::NotVxlan);
    }

    #[test]
    fn decap_ipv4_with_options() {
        let mut f = good_v4();
        // Insert 4 bytes of options (NOP NOP NOP EOL): IHL 6, total length + 4.
        f.splice(IP + 20..IP + 20, [1, 1, 1, 0]);
        f[IP] = 0x46;
        let total = u16::from_be_bytes([f[IP + 2], f[IP + 3]]) + 4;
        f[IP + 2..IP + 4].copy_from_slice(&total.to_be_bytes());
        fix_ip_csum(&mut f, IP);
        match decap(&f, &cfg()) {
            Decap::Deliver { inner_start, .. } => assert_eq!(inner_start, OUTER_V4_LEN + 4),
            d => panic!("{d:?}"),
        }
        // Options cut short by the end of the frame.
        assert_drop(&f[..IP + 22], DropReason::Truncated);
    }

    #[test]
    fn decap_accepts_exactly_max_inner_len() {
        let mut c = cfg();
        let inner = inner_udp(1, 2, 100);
        c.max_inner_len = inner.len();
        let f = outer_v4(LOCAL, DEFAULT_PORT, VNI, &inner);
        assert!(matches!(decap(&f, &c), Decap::Deliver { .. }));
        c.max_inner_len = inner.len() - 1;
        assert_eq!(decap(&f, &c), Decap::Drop(DropReason::MtuExceeded));
    }

    // ---- decap: every drop reason from a real packet ----

    #[test]
    fn drop_truncated_at_every_length() {
        let f = good_v4();
        for n in 0..f.len() {
            assert_eq!(decap(&f[..n], &cfg()), Decap::Drop(DropReason::Truncated), "len {n}");
        }
        assert!(matches!(decap(&f, &cfg()), Decap::Deliver { .. }));
    }

    #[test]
    fn drop_wrong_vni() {
        assert_drop(&outer_v4(LOCAL, DEFAULT_PORT, VNI + 1, &inner_udp(1, 2, 3)), DropReason::WrongVni);
    }

    #[test]
    fn drop_i_flag_clear() {
        let mut f = good_v4();
        f[42] = 0x00;
        assert_drop(&f, DropReason::BadFlags);
        f[42] = 0xf7; // every flag but I
        assert_drop(&f, DropReason::BadFlags);
    }

    #[test]
    fn drop_reserved_bits_like_vxlan_rcv() {
        for (byte, bit) in [(42usize, 0x80u8), (42, 0x04), (43, 0x01), (45, 0x10), (49, 0x01)] {
            let mut f = good_v4();
            f[byte] |= bit;
            assert_drop(&f, DropReason::BadFlags);
        }
        // vxlan_rcv looks the VNI up before the reserved bits.
        let mut f = outer_v4(LOCAL, DEFAULT_PORT, VNI + 1, &inner_udp(1, 2, 3));
        f[49] = 0xff;
        assert_drop(&f, DropReason::WrongVni);
    }

    #[test]
    fn drop_ipv4_fragments() {
        for flg_off in [0x2000u16, 0x0001, 0x6000, 0x00b9] {
            let mut f = good_v4();
            f[IP + 6..IP + 8].copy_from_slice(&flg_off.to_be_bytes());
            fix_ip_csum(&mut f, IP);
            assert_drop(&f, DropReason::BadHeader);
        }
        // DF alone is not a fragment.
        let mut f = good_v4();
        f[IP + 6..IP + 8].copy_from_slice(&0x4000u16.to_be_bytes());
        fix_ip_csum(&mut f, IP);
        assert!(matches!(decap(&f, &cfg()), Decap::Deliver { .. }));
    }

    #[test]
    fn drop_wrong_port_not_local_not_udp_not_ip() {
        assert_drop(&outer_v4(LOCAL, 8472, VNI, &inner_udp(1, 2, 3)), DropReason::NotVxlan);
        assert_drop(&outer_v4([192, 0, 2, 99], DEFAULT_PORT, VNI, &inner_udp(1, 2, 3)), DropReason::NotVxlan);
        let mut f = good_v4();
        f[IP + 9] = 6;
        fix_ip_csum(&mut f, IP);
        assert_drop(&f, DropReason::NotVxlan);
        let mut arp = good_v4();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_drop(&arp, DropReason::NotVxlan);
    }

    #[test]
    fn drop_bad_ipv4_headers() {
        let mut f = good_v4();
        f[IP] = 0x44; // IHL 4
        assert_drop(&f, DropReason::BadHeader);
        f[IP] = 0x65; // version 6
        assert_drop(&f, DropReason::BadHeader);
        let mut f = good_v4();
        f[IP + 11] ^= 1; // checksum
        assert_drop(&f, DropReason::BadHeader);
        let mut f = good_v4();
        f[IP + 2..IP + 4].copy_from_slice(&19u16.to_be_bytes()); // total length < IHL*4
        fix_ip_csum(&mut f, IP);
        assert_drop(&f, DropReason::BadHeader);
        for src in [[224, 0, 0, 1], [255, 255, 255, 255], [0, 1, 2, 3], [127, 0, 0, 1]] {
            let mut f = good_v4();
            f[IP + 12..IP + 16].copy_from_slice(&src);
            fix_ip_csum(&mut f, IP);
            assert_drop(&f, DropReason::BadHeader);
        }
    }

    #[test]
    fn drop_total_length_larger_than_frame() {
        let mut f = good_v4();
        let total = (f.len() - ETH + 1) as u16;
        f[IP + 2..IP + 4].copy_from_slice(&total.to_be_bytes());
        fix_ip_csum(&mut f, IP);
        assert_drop(&f, DropReason::Truncated);
    }

    #[test]
    fn drop_bad_udp_lengths() {
        let udp_len_at = IP + 20 + 4;
        for (len, why) in [(7u16, "below header"), (15, "no room for VXLAN"), (2000, "beyond IP payload")] {
            let mut f = good_v4();
            f[udp_len_at..udp_len_at + 2].copy_from_slice(&len.to_be_bytes());
            assert_eq!(decap(&f, &cfg()), Decap::Drop(DropReason::Truncated), "{why}");
        }
        // A UDP length shorter than the IP payload trims the inner frame (to 13 bytes here).
        let mut f = good_v4();
        f[udp_len_at..udp_len_at + 2].copy_from_slice(&(16u16 + 13).to_be_bytes());
        assert_drop(&f, DropReason::Truncated);
    }

    #[test]
    fn drop_inner_too_short_or_too_long() {
        assert_drop(&outer_v4(LOCAL, DEFAULT_PORT, VNI, &[0x02; 13]), DropReason::Truncated);
        assert_drop(&outer_v4(LOCAL, DEFAULT_PORT, VNI, &inner_udp(1, 2, 1473)), DropReason::MtuExceeded);
        assert!(matches!(
            decap(&outer_v4(LOCAL, DEFAULT_PORT, VNI, &inner_udp(1, 2, 1472)), &cfg()),
            Decap::Deliver { inner_len: 1514, .. }
        ));
    }

    /// xorshift64*, so the fuzz loop is deterministic without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn fuzz_decap_and_flow_hash_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let seeds = [good_v4(), outer_v6(REMOTE6, LOCAL6, &inner_udp(3, 4, 40))];
        let mut delivered = 0;
        for i in 0..200_000 {
            let mut f: Vec<u8> = if i % 4 == 0 {
                (0..rng.below(120)).map(|_| rng.next() as u8).collect()
            } else {
                let mut f = seeds[i % 2].clone();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(f.len());
                    f[at] = rng.next() as u8;
                }
                f
            };
            if rng.below(3) == 0 {
                let n = rng.below(f.len() + 1);
                f.truncate(n);
            }
            if let Decap::Deliver { inner_start, inner_len, .. } = decap(&f, &cfg()) {
                assert!(inner_len >= 14 && inner_start + inner_len <= f.len());
                delivered += 1;
            }
            let _ = flow_hash(&f);
        }
        // Mutations of the reserved/payload bytes must still deliver some frames.
        assert!(delivered > 1000, "{delivered}");
    }

    // ---- encap ----

    fn params(udp_csum: bool) -> EncapParams {
        EncapParams {
            src_mac: LOCAL_MAC,
            dst_mac: REMOTE_MAC,
            src_ip: Ipv4Addr::from(LOCAL),
            dst_ip: Ipv4Addr::from(REMOTE),
            ttl: 17,
            tos: 0xb9, // DSCP 46, ECN 1
            df: true,
            dst_port: DEFAULT_PORT,
            vni: vni(),
            udp_csum,
        }
    }

    /// What etherparse serializes for the same outer headers around `inner`.
    fn expected(p: &EncapParams, inner: &[u8], sport: u16, id: u16) -> Vec<u8> {
        let payload = vxlan_payload(p.vni.get(), inner);
        let eth = Ethernet2Header { source: p.src_mac, destination: p.dst_mac, ether_type: EtherType::IPV4 };
        let mut ip =
            Ipv4Header::new((8 + payload.len()) as u16, p.ttl, IpNumber::UDP, p.src_ip.octets(), p.dst_ip.octets())
                .unwrap();
        ip.dscp = Ipv4Dscp::try_new(p.tos >> 2).unwrap();
        ip.ecn = Ipv4Ecn::try_new(p.tos & 3).unwrap();
        ip.identification = id;
        ip.dont_fragment = p.df;
        ip.header_checksum = ip.calc_header_checksum();
        let udp = if p.udp_csum {
            UdpHeader::with_ipv4_checksum(sport, p.dst_port, &ip, &payload).unwrap()
        } else {
            UdpHeader::without_ipv4_checksum(sport, p.dst_port, payload.len()).unwrap()
        };
        let mut v = eth.to_bytes().to_vec();
        v.extend_from_slice(&ip.to_bytes());
        v.extend_from_slice(&udp.to_bytes());
        v.extend_from_slice(&payload);
        v
    }

    fn encap_vec(tpl: &OuterTemplate, inner: &[u8], headroom: usize, sport: u16, id: u16) -> (Vec<u8>, usize) {
        let mut buf = vec![0xcc; headroom + inner.len() + 7];
        buf[headroom..headroom + inner.len()].copy_from_slice(inner);
        let start = encap(&mut buf, headroom, inner.len(), tpl, sport, id).unwrap();
        assert_eq!(start, headroom - OUTER_V4_LEN);
        assert_eq!(&buf[headroom + inner.len()..], &[0xcc; 7], "wrote past the inner frame");
        (buf, start)
    }

    #[test]
    fn encap_matches_etherparse_without_udp_checksum() {
        for df in [false, true] {
            let p = EncapParams { df, ..params(false) };
            let tpl = OuterTemplate::new(&p);
            assert_eq!(tpl.params(), &p);
            for (i, len) in [14usize, 50, 64, 65, 1514].into_iter().enumerate() {
                let inner = inner_udp(i as u16, 80, len.saturating_sub(42));
                let inner = &inner[..len.min(inner.len())];
                let (sport, id) = (32768 + i as u16 * 1111, 0xfffe - i as u16 * 7);
                let (buf, start) = encap_vec(&tpl, inner, 128, sport, id);
                assert_eq!(&buf[start..start + OUTER_V4_LEN + inner.len()], &expected(&p, inner, sport, id)[..]);
            }
        }
    }

    #[test]
    fn encap_matches_etherparse_with_udp_checksum() {
        let p = params(true);
        let tpl = OuterTemplate::new(&p);
        for len in [14usize, 15, 60, 61, 64, 99, 1514] {
            let inner: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            for (sport, id) in [(49152u16, 0u16), (65535, 1), (1, 0xffff)] {
                let (buf, start) = encap_vec(&tpl, &inner, OUTER_V4_LEN, sport, id);
                assert_eq!(start, 0);
                assert_eq!(&buf[..OUTER_V4_LEN + len], &expected(&p, &inner, sport, id)[..], "len {len}");
            }
        }
    }

    #[test]
    fn encap_sends_zero_udp_checksum_as_ffff() {
        let tpl = OuterTemplate::new(&params(true));
        let mut inner = inner_udp(1, 2, 20);
        inner.extend_from_slice(&[0, 0]); // even length so far: the last word is ours
        assert_eq!(inner.len() % 2, 0);
        let (buf, _) = encap_vec(&tpl, &inner, OUTER_V4_LEN, 40000, 9);
        let c = u16::from_be_bytes([buf[40], buf[41]]);
        // Adding the old checksum as a data word makes the sum all ones: checksum 0.
        let n = inner.len();
        inner[n - 2..].copy_from_slice(&c.to_be_bytes());
        let (buf, _) = encap_vec(&tpl, &inner, OUTER_V4_LEN, 40000, 9);
        assert_eq!(&buf[40..42], &[0xff, 0xff]);
        assert_eq!(&buf[..OUTER_V4_LEN + n], &expected(tpl.params(), &inner, 40000, 9)[..]);
    }

    #[test]
    fn encap_rejects_bad_bounds() {
        let tpl = OuterTemplate::new(&params(false));
        let mut buf = [0u8; 200];
        assert_eq!(encap(&mut buf, 49, 64, &tpl, 1, 1), Err(DropReason::Truncated));
        assert_eq!(encap(&mut buf, 50, 151, &tpl, 1, 1), Err(DropReason::Truncated));
        assert_eq!(encap(&mut buf, usize::MAX, 1, &tpl, 1, 1), Err(DropReason::Truncated));
        assert_eq!(encap(&mut buf, 50, 150, &tpl, 1, 1), Ok(0));
        let mut big = vec![0u8; 70_000];
        assert_eq!(encap(&mut big, 50, MAX_INNER_V4 + 1, &tpl, 1, 1), Err(DropReason::MtuExceeded));
        assert_eq!(encap(&mut big, 50, MAX_INNER_V4, &tpl, 1, 1), Ok(0));
        assert_eq!(&big[16..18], &[0xff, 0xff]); // total length 65535
    }

    #[test]
    fn encap_then_decap_round_trips() {
        for udp_csum in [false, true] {
            let p = params(udp_csum);
            let tpl = OuterTemplate::new(&p);
            let inner = inner_udp(4321, 53, 200);
            let (buf, start) = encap_vec(&tpl, &inner, 256, 51000, 77);
            let frame = &buf[start..256 + inner.len()];
            // etherparse accepts it as Ethernet/IPv4/UDP.
            let sliced = SlicedPacket::from_ethernet(frame).unwrap();
            assert!(sliced.net.is_some() && sliced.transport.is_some());
            // The remote VTEP's view: it is local there and we are the source.
            let remote = DecapConfig {
                vni: p.vni,
                port: p.dst_port,
                local_v4: vec![p.dst_ip],
                local_v6: vec![],
                max_inner_len: 1514,
            };
            assert_eq!(
                decap(frame, &remote),
                Decap::Deliver {
                    inner_start: OUTER_V4_LEN,
                    inner_len: inner.len(),
                    src_vtep: IpAddr::V4(p.src_ip),
                    inner_src: INNER_SRC,
                }
            );
            assert_eq!(&frame[OUTER_V4_LEN..], &inner[..]);
        }
    }

    // ---- flow hash and source port ----

    fn inner_tcp(src: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(INNER_SRC, INNER_DST).ipv4(src, [10, 0, 0, 2], 64).tcp(sport, dport, 1, 1000);
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn flow_hash_stable_per_flow_and_sensitive_to_ports() {
        let a = flow_hash(&inner_tcp([10, 0, 0, 1], 1000, 2000, b"hello"));
        assert_eq!(a, flow_hash(&inner_tcp([10, 0, 0, 1], 1000, 2000, b"a different payload")));
        assert_ne!(a, flow_hash(&inner_tcp([10, 0, 0, 1], 2000, 1000, b"hello")), "swapped ports");
        assert_ne!(a, flow_hash(&inner_tcp([10, 0, 0, 1], 1000, 2001, b"hello")));
        assert_ne!(a, flow_hash(&inner_tcp([10, 0, 0, 3], 1000, 2000, b"hello")));
        assert_ne!(a, flow_hash(&inner_udp(1000, 2000, 5)), "TCP and UDP differ");
        let v6 = |sport: u16| {
            let b = PacketBuilder::ethernet2(INNER_SRC, INNER_DST).ipv6(REMOTE6, LOCAL6, 64).udp(sport, 53);
            let mut v = Vec::new();
            b.write(&mut v, b"x").unwrap();
            v
        };
        assert_eq!(flow_hash(&v6(1)), flow_hash(&v6(1)));
        assert_ne!(flow_hash(&v6(1)), flow_hash(&v6(2)));
    }

    #[test]
    fn flow_hash_ignores_ports_of_fragments_and_uses_macs_for_non_ip() {
        let mut f1 = inner_udp(1000, 2000, 30);
        let mut f2 = inner_udp(3000, 4000, 30);
        for f in [&mut f1, &mut f2] {
            f[ETH + 6] = 0x20; // MF
        }
        assert_eq!(flow_hash(&f1), flow_hash(&f2));
        let arp = |src: [u8; 6]| [INNER_DST.to_vec(), src.to_vec(), vec![0x08, 0x06], vec![0; 28]].concat();
        assert_eq!(flow_hash(&arp(INNER_SRC)), flow_hash(&arp(INNER_SRC)));
        assert_ne!(flow_hash(&arp(INNER_SRC)), flow_hash(&arp([2, 0, 0, 0, 0, 9])));
    }

    #[test]
    fn flow_hash_spreads_source_ports() {
        let range = SrcPortRange::default();
        let mut buckets = [0u32; 16];
        let n = 16_000;
        for i in 0..n {
            let f = inner_tcp([10, 0, (i >> 8) as u8, i as u8], 40000 + (i % 7) as u16, 443, b"");
            let port = range.pick(flow_hash(&f));
            assert!((range.min..range.max).contains(&port));
            buckets[(port - range.min) as usize * 16 / (range.max - range.min) as usize] += 1;
        }
        for b in buckets {
            assert!((n / 16 * 8 / 10..n / 16 * 12 / 10).contains(&b), "{buckets:?}");
        }
    }

    /// `udp_flow_src_port` transcribed from include/net/udp.h, with C integer types.
    fn kernel_udp_flow_src_port(hash: u32, mut min: i32, mut max: i32) -> u16 {
        if min >= max {
            (min, max) = (32768, 60999);
        }
        let mut hash = hash;
        hash ^= hash << 16;
        ((((hash as u64) * ((max - min) as u64)) >> 32) as u32 as i32 + min) as u16
    }

    #[test]
    fn src_port_range_mirrors_kernel() {
        assert_eq!(SrcPortRange::new(5000, 4999), None);
        assert_eq!(SrcPortRange::new(7000, 7000), Some(SrcPortRange::default()));
        assert_eq!(SrcPortRange::new(0, 0), Some(SrcPortRange { min: 32768, max: 60999 }));
        let d = SrcPortRange::default();
        assert_eq!(d.pick(0), 32768);
        assert_eq!(d.pick(0x8000_0000), 32768 + 28231 / 2);
        assert_eq!(d.pick(0xffff_0000), 60998, "max is exclusive");
        let mut rng = Rng(12345);
        for (min, max) in [(32768u16, 60999u16), (49152, 65535), (0, 1), (4789, 4790), (1, 65535), (10, 3)] {
            let r = SrcPortRange { min, max };
            for _ in 0..10_000 {
                let h = rng.next() as u32;
                let p = r.pick(h);
                assert_eq!(p, kernel_udp_flow_src_port(h, min as i32, max as i32));
                if min < max {
                    assert!(p >= min && p < max, "{p} not in {min}..{max}");
                }
            }
        }
        assert_eq!(SrcPortRange::new(4789, 4790).unwrap().pick(0xdead_beef), 4789);
    }

    // ---- VNI ----

    #[test]
    fn vni_bounds_display_and_parse() {
        assert_eq!(Vni::new(0).map(Vni::get), Some(0));
        assert_eq!(Vni::new(0xff_ffff).map(Vni::get), Some(16_777_215));
        assert_eq!(Vni::new(0x100_0000), None);
        assert_eq!(vni().to_string(), "4242");
        assert_eq!("4242".parse::<Vni>(), Ok(vni()));
        assert_eq!(" 0x1092 ".parse::<Vni>(), Ok(vni()));
        assert_eq!("16777216".parse::<Vni>(), Err(ParseVniError::OutOfRange(16_777_216)));
        let e = "blue".parse::<Vni>().unwrap_err().to_string();
        assert!(e.contains("\"blue\"") && e.contains("16777215"), "{e}");
        let e = "99999999999".parse::<Vni>().unwrap_err().to_string();
        assert!(e.contains("99999999999") && e.contains("24 bits"), "{e}");
        assert!("-1".parse::<Vni>().is_err());
        assert!("".parse::<Vni>().is_err());
    }

    #[test]
    fn learnable_macs() {
        assert!(is_learnable(&INNER_SRC));
        assert!(!is_learnable(&[0xff; 6]));
        assert!(!is_learnable(&[0x01, 0x00, 0x5e, 0, 0, 1]));
        assert!(!is_learnable(&[0; 6]));
    }
}
