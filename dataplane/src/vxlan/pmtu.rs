//! Path MTU on bridged links: an inner packet too big for the underlay is answered with
//! ICMP "fragmentation needed" (IPv4 with DF) or ICMPv6 "packet too big" carrying the
//! MTU left inside the tunnel, built in place from the frame and sent back into the
//! overlay, so the sender's path MTU discovery works across vxdp.
//!
//! Mirrors the Linux driver's `skb_tunnel_check_pmtu` for a device that is a bridge
//! port, and `iptunnel_pmtud_check_icmp`/`iptunnel_pmtud_build_icmp` (and their IPv6
//! twins): the same packets are answered, with the same reply. It comes from the
//! original destination (IP and MAC) to the original source, TTL or hop limit copied,
//! quoting as much of the packet as fits 576 (IPv4) or 1280 (IPv6) bytes.
//!
//! The kernel reaches this only when the vxlan device's MTU is above what the
//! underlay carries (`ip link set vxlan0 mtu 1500` over a 1500-byte underlay, or a
//! smaller path MTU learned for the remote); with vxdp the same holds for `vx0`.

use crate::wire::checksum;
use vxdp_common::hdr::{eth, ethertype, ip_proto, ipv4, ipv6};

/// The smallest MTU the kernel reports over IPv4, and the most an IPv4 reply carries.
pub const MIN_V4: usize = 576;
/// The same for IPv6 (the IPv6 minimum MTU).
pub const MIN_V6: usize = 1280;
const ICMP_HEADER_LEN: usize = 8;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;
const ICMPV6_PKT_TOOBIG: u8 = 2;
/// IPv4 flags and fragment offset of a packet that may not be fragmented, and is no
/// fragment itself: the only one the kernel answers.
const DF_ONLY: u16 = 0x4000;

/// Turns the too-big inner frame `frame` (its first `len` bytes) into the ICMP or
/// ICMPv6 error for `mtu`, in place; returns the reply's length, or `None` when the
/// kernel would not answer (no DF, a fragment, a broadcast or multicast destination,
/// a source that cannot be answered, an ICMP error, a tagged or non-IP frame, an MTU
/// below the protocol's minimum). The reply is never longer than the frame: it quotes
/// less of it when the frame is short.
pub fn too_big_reply(frame: &mut [u8], len: usize, mtu: usize) -> Option<usize> {
    let frame = frame.get_mut(..len)?;
    let et = u16::from_be_bytes([*frame.get(eth::ETHERTYPE)?, *frame.get(eth::ETHERTYPE + 1)?]);
    match et {
        ethertype::IPV4 => v4(frame, mtu),
        ethertype::IPV6 => v6(frame, mtu),
        _ => None,
    }
}

fn v4(frame: &mut [u8], mtu: usize) -> Option<usize> {
    const IP: usize = eth::HEADER_LEN;
    let h = frame.get(IP..IP + ipv4::HEADER_LEN)?;
    if mtu < MIN_V4 || h[ipv4::VER_IHL] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(h[ipv4::VER_IHL] & 0x0f) * 4;
    if u16::from_be_bytes([h[ipv4::FLAGS_FRAG], h[ipv4::FLAGS_FRAG + 1]]) != DF_ONLY {
        return None;
    }
    let src: [u8; 4] = h[ipv4::SRC..ipv4::SRC + 4].try_into().ok()?;
    let dst: [u8; 4] = h[ipv4::DST..ipv4::DST + 4].try_into().ok()?;
    let (s, d) = (std::net::Ipv4Addr::from(src), std::net::Ipv4Addr::from(dst));
    if d.is_broadcast()
        || d.is_multicast()
        || s.is_unspecified()
        || s.is_loopback()
        || s.is_broadcast()
        || s.is_multicast()
    {
        return None;
    }
    if h[ipv4::PROTOCOL] == ip_proto::ICMP && is_icmp_error(*frame.get(IP + ihl)?) {
        return None;
    }
    let ttl = h[ipv4::TTL];
    // The quoted packet: from its IP header, at most what fits 576 bytes.
    let at = IP + ipv4::HEADER_LEN + ICMP_HEADER_LEN;
    let quoted = (frame.len() - IP).min(MIN_V4 - ipv4::HEADER_LEN - ICMP_HEADER_LEN).min(frame.len().checked_sub(at)?);
    frame.copy_within(IP..IP + quoted, at);
    swap_macs(frame);

    let icmp_len = ICMP_HEADER_LEN + quoted;
    let icmp = &mut frame[IP + ipv4::HEADER_LEN..at];
    icmp.copy_from_slice(&[ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 0, 0, 0, 0, 0, 0]);
    icmp[6..8].copy_from_slice(&(mtu as u16).to_be_bytes());
    let c = checksum::finish(checksum::sum(&frame[IP + ipv4::HEADER_LEN..IP + ipv4::HEADER_LEN + icmp_len]));
    frame[IP + ipv4::HEADER_LEN + 2..IP + ipv4::HEADER_LEN + 4].copy_from_slice(&c.to_be_bytes());

    let total = (ipv4::HEADER_LEN + icmp_len) as u16;
    let ip = &mut frame[IP..IP + ipv4::HEADER_LEN];
    ip[..12].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, ttl, ip_proto::ICMP, 0, 0]);
    ip[ipv4::TOTAL_LEN..ipv4::TOTAL_LEN + 2].copy_from_slice(&total.to_be_bytes());
    ip[ipv4::SRC..ipv4::SRC + 4].copy_from_slice(&dst);
    ip[ipv4::DST..ipv4::DST + 4].copy_from_slice(&src);
    let c = checksum::finish(checksum::sum(ip));
    ip[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
    Some(IP + usize::from(total))
}

fn v6(frame: &mut [u8], mtu: usize) -> Option<usize> {
    const IP: usize = eth::HEADER_LEN;
    let h = frame.get(IP..IP + ipv6::HEADER_LEN)?;
    if mtu < MIN_V6 || h[0] >> 4 != 6 {
        return None;
    }
    let src: [u8; 16] = h[ipv6::SRC..ipv6::SRC + 16].try_into().ok()?;
    let dst: [u8; 16] = h[ipv6::DST..ipv6::DST + 16].try_into().ok()?;
    let (s, d) = (std::net::Ipv6Addr::from(src), std::net::Ipv6Addr::from(dst));
    // `iptunnel_pmtud_check_icmpv6`: no reply to or from a multicast or unspecified
    // address, from a loopback one, or to an ICMPv6 error.
    if d.is_multicast() || s.is_multicast() || s.is_unspecified() || s.is_loopback() {
        return None;
    }
    if h[ipv6::NEXT_HEADER] == ip_proto::ICMPV6 && frame.get(IP + ipv6::HEADER_LEN).is_some_and(|t| *t < 128) {
        return None;
    }
    let hops = h[ipv6::HOP_LIMIT];
    let at = IP + ipv6::HEADER_LEN + ICMP_HEADER_LEN;
    let quoted = (frame.len() - IP).min(MIN_V6 - ipv6::HEADER_LEN - ICMP_HEADER_LEN).min(frame.len().checked_sub(at)?);
    frame.copy_within(IP..IP + quoted, at);
    swap_macs(frame);

    let icmp_len = ICMP_HEADER_LEN + quoted;
    let icmp = &mut frame[IP + ipv6::HEADER_LEN..at];
    icmp.copy_from_slice(&[ICMPV6_PKT_TOOBIG, 0, 0, 0, 0, 0, 0, 0]);
    icmp[4..8].copy_from_slice(&(mtu as u32).to_be_bytes());
    let ip = &mut frame[IP..IP + ipv6::HEADER_LEN];
    ip[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, ip_proto::ICMPV6, hops]);
    ip[ipv6::PAYLOAD_LEN..ipv6::PAYLOAD_LEN + 2].copy_from_slice(&(icmp_len as u16).to_be_bytes());
    ip[ipv6::SRC..ipv6::SRC + 16].copy_from_slice(&dst);
    ip[ipv6::DST..ipv6::DST + 16].copy_from_slice(&src);
    let pseudo = checksum::pseudo_header_v6(&dst, &src, ip_proto::ICMPV6, icmp_len as u32);
    let body = &frame[IP + ipv6::HEADER_LEN..IP + ipv6::HEADER_LEN + icmp_len];
    let c = checksum::finish(checksum::combine(pseudo, checksum::sum(body)));
    frame[IP + ipv6::HEADER_LEN + 2..IP + ipv6::HEADER_LEN + 4].copy_from_slice(&c.to_be_bytes());
    Some(IP + ipv6::HEADER_LEN + icmp_len)
}

/// ICMP types that are errors (`icmp_is_err`): never answered with another.
fn is_icmp_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// The reply goes from the original destination's MAC to the original source's.
fn swap_macs(frame: &mut [u8]) {
    let (dst, rest) = frame.split_at_mut(6);
    dst.swap_with_slice(&mut rest[..6]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv4Type, Icmpv6Type, SlicedPacket, TransportSlice};

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    fn v4_frame(len: usize, flags: u16, proto: u8, dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&B);
        f[6..12].copy_from_slice(&A);
        f[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
        ip[6..8].copy_from_slice(&flags.to_be_bytes());
        ip[8] = 61;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&[198, 51, 100, 1]);
        ip[16..20].copy_from_slice(&dst);
        let c = checksum::finish(checksum::sum(ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn ipv4_with_df_gets_frag_needed_from_the_destination() {
        let mut f = v4_frame(1514, DF_ONLY, ip_proto::UDP, [198, 51, 100, 2]);
        let original = f.clone();
        let n = too_big_reply(&mut f, 1514, 1450).expect("answered");
        assert_eq!(n, 14 + 576, "a reply fills 576 bytes of IP");
        let p = SlicedPacket::from_ethernet(&f[..n]).unwrap();
        let eth = p.link.unwrap().to_header().unwrap().ethernet2().unwrap();
        assert_eq!((eth.source, eth.destination), (B, A));
        let ip = match p.net.unwrap() {
            etherparse::NetSlice::Ipv4(ip) => ip.header().to_header(),
            _ => panic!("not IPv4"),
        };
        assert_eq!(
            (ip.source, ip.destination, ip.time_to_live, ip.dont_fragment),
            ([198, 51, 100, 2], [198, 51, 100, 1], 61, true)
        );
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else { panic!("not ICMP") };
        assert!(matches!(
            icmp.icmp_type(),
            Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                next_hop_mtu: 1450
            })
        ));
        assert!(checksum::verify(&f[34..n]), "ICMP checksum");
        assert_eq!(&f[42..n], &original[14..14 + 548], "quotes the packet from its IP header");
    }

    #[test]
    fn the_kernels_exceptions_get_no_reply() {
        let cases = [
            ("no DF", v4_frame(1514, 0, ip_proto::UDP, [198, 51, 100, 2])),
            ("a fragment", v4_frame(1514, DF_ONLY | 0x2000, ip_proto::UDP, [198, 51, 100, 2])),
            ("broadcast", v4_frame(1514, DF_ONLY, ip_proto::UDP, [255, 255, 255, 255])),
            ("multicast", v4_frame(1514, DF_ONLY, ip_proto::UDP, [224, 0, 0, 1])),
        ];
        for (what, mut f) in cases {
            assert_eq!(too_big_reply(&mut f, 1514, 1450), None, "{what}");
        }
        let mut err = v4_frame(1514, DF_ONLY, ip_proto::ICMP, [198, 51, 100, 2]);
        err[34] = 3;
        assert_eq!(too_big_reply(&mut err, 1514, 1450), None, "an ICMP error");
        let mut echo = v4_frame(1514, DF_ONLY, ip_proto::ICMP, [198, 51, 100, 2]);
        echo[34] = 8;
        assert!(too_big_reply(&mut echo, 1514, 1450).is_some(), "an echo request is answered");
        let mut small_mtu = v4_frame(1514, DF_ONLY, ip_proto::UDP, [198, 51, 100, 2]);
        assert_eq!(too_big_reply(&mut small_mtu, 1514, 500), None, "MTU below 576");
        let mut arp = v4_frame(1514, DF_ONLY, ip_proto::UDP, [198, 51, 100, 2]);
        arp[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        assert_eq!(too_big_reply(&mut arp, 1514, 1450), None, "not IP");
    }

    #[test]
    fn ipv6_gets_packet_too_big() {
        let mut f = vec![0u8; 1514];
        f[..6].copy_from_slice(&B);
        f[6..12].copy_from_slice(&A);
        f[12..14].copy_from_slice(&ethertype::IPV6.to_be_bytes());
        f[14] = 0x60;
        f[18..20].copy_from_slice(&1460u16.to_be_bytes());
        f[20] = ip_proto::UDP;
        f[21] = 33;
        let (s, d): ([u8; 16], [u8; 16]) = (
            "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            "2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap().octets(),
        );
        f[22..38].copy_from_slice(&s);
        f[38..54].copy_from_slice(&d);
        let n = too_big_reply(&mut f, 1514, 1450).expect("answered");
        assert_eq!(n, 14 + 1280);
        let p = SlicedPacket::from_ethernet(&f[..n]).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
        let h = ip.header();
        assert_eq!((h.source(), h.destination(), h.hop_limit()), (d, s, 33));
        let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else { panic!("not ICMPv6") };
        assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1450 });
        let pseudo = checksum::pseudo_header_v6(&d, &s, ip_proto::ICMPV6, (n - 54) as u32);
        assert_eq!(checksum::combine(pseudo, checksum::sum(&f[54..n])), 0xffff, "ICMPv6 checksum");
    }
}
