//! Decapsulation: validate a frame received on the underlay and locate its inner frame,
//! checking what the Linux `vxlan` driver checks, in its order.

use super::{Vni, UDP_OVERHEAD};
use crate::counters::DropReason;
use crate::wire::ethernet::{self, EthernetFrame, VlanHeader};
use crate::wire::ipv4::{self, protocol, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::udp::UdpDatagram;
use crate::wire::vxlan::VxlanHeader;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Clone, Debug)]
pub struct DecapConfig {
    pub vni: Vni,
    /// UDP destination port (usually [`DEFAULT_PORT`](super::DEFAULT_PORT)).
    pub port: u16,
    /// Local VTEP addresses: frames to any other address are `NotVxlan`.
    pub local_v4: Vec<Ipv4Addr>,
    pub local_v6: Vec<Ipv6Addr>,
    /// Longest inner frame delivered: overlay MTU + 14 (+4 if the overlay is tagged;
    /// the daemon always allows the tag, as the kernel's `is_skb_forwardable` does).
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
/// at most one 802.1Q or 802.1ad tag, IPv4 or IPv6, UDP, VXLAN) and locates the inner
/// frame. The tag types are the ones the XDP program steers
/// ([`vxdp_common::hdr::is_vlan_tpid`]), so nothing it hands over is refused here.
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
    if ethernet::is_vlan_tpid(ethertype) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::testutil::*;

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

    /// An outer frame with one 802.1ad (S-tag, TPID 0x88a8) tag, as the XDP program
    /// steers it: delivered exactly like the 802.1Q one.
    #[test]
    fn decap_8021ad_tagged_outer() {
        let inner = inner_udp(1, 2, 10);
        let f = tagged_v4(0x88a8, 100, &inner);
        assert_eq!(&f[12..18], &[0x88, 0xa8, 0x00, 0x64, 0x08, 0x00]);
        assert_eq!(
            decap(&f, &cfg()),
            Decap::Deliver {
                inner_start: OUTER_V4_LEN + 4,
                inner_len: inner.len(),
                src_vtep: IpAddr::V4(Ipv4Addr::from(REMOTE)),
                inner_src: INNER_SRC,
            }
        );
        assert_eq!(decap(&f, &cfg()), decap(&tagged_v4(0x8100, 100, &inner), &cfg()));
        for n in 0..f.len() {
            assert_eq!(decap(&f[..n], &cfg()), Decap::Drop(DropReason::Truncated), "len {n}");
        }
    }

    /// One tag only, of either kind: a second tag (QinQ, 802.1ad then 802.1Q) is not
    /// parsed, as the XDP program passes such frames to the kernel (`xdp_pass_not_ip`).
    #[test]
    fn decap_drops_double_tagged_outer() {
        let mut f = tagged_v4(0x88a8, 100, &inner_udp(1, 2, 10));
        f.splice(16..16, [0x81, 0x00, 0x00, 0xc8]);
        assert_eq!(&f[12..22], &[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00]);
        assert_drop(&f, DropReason::NotVxlan);
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
}
