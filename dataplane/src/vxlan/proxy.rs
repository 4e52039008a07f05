//! ARP and IPv6 neighbour-discovery suppression (the kernel vxlan device's `proxy`):
//! an ARP request or neighbour solicitation sent into the overlay for an address the
//! neighbour table knows is answered locally, in place, and never flooded.
//!
//! Mirrors the Linux driver's `arp_reduce`, `neigh_reduce` and `vxlan_na_create`:
//! the same requests are answered, with the same replies (addresses, flags, hop
//! limit). One difference, by intent: the kernel drops a request it cannot answer
//! (and reports an `l3miss` to userspace); vxdp floods it as without `proxy`, so an
//! address missing from the table still resolves the ordinary way. Duplicate address
//! detection (a solicitation from `::`) is not answered either: the kernel would
//! answer it to `::`.

use crate::wire::checksum;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use vxdp_common::hdr::{eth, ethertype, ip_proto, ipv6};

/// Field offsets of an Ethernet/IPv4 ARP packet, from the start of the ARP header.
mod arp {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
    pub const LEN: usize = 28;
    pub const HTYPE_ETHER: u16 = 1;
    pub const HTYPE_IEEE802: u16 = 6;
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

/// Offsets of a neighbour solicitation/advertisement, from the ICMPv6 header.
mod nd {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const FLAGS: usize = 4;
    pub const TARGET: usize = 8;
    /// ICMPv6 header, reserved word and target.
    pub const MSG_LEN: usize = 24;
    pub const OPTIONS: usize = 24;
    pub const SOLICITATION: u8 = 135;
    pub const ADVERTISEMENT: u8 = 136;
    pub const OPT_SOURCE_LL: u8 = 1;
    pub const OPT_TARGET_LL: u8 = 2;
    /// Solicited and override (`vxlan_na_create`; router is not set).
    pub const FLAGS_S_O: u8 = 0x60;
    /// A target link-layer address option for Ethernet: 8 bytes.
    pub const LL_OPT_LEN: usize = 8;
}

const ARP_FRAME_LEN: usize = eth::HEADER_LEN + arp::LEN;
/// The advertisement vxdp answers with: Ethernet, IPv6, NA, target link-layer option.
pub const NA_FRAME_LEN: usize = eth::HEADER_LEN + ipv6::HEADER_LEN + nd::MSG_LEN + nd::LL_OPT_LEN;

/// What [`reply`] did with an overlay frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proxy {
    /// Not an ARP request or neighbour solicitation vxdp answers: forward as usual.
    NotAsked,
    /// A request for an address the table does not have: forward (flood) as usual.
    Unknown,
    /// The frame now holds the ARP reply, `len` bytes: send it back to the overlay.
    ArpReply { len: usize },
    /// The frame now holds the neighbour advertisement, `len` bytes ([`NA_FRAME_LEN`]).
    NdReply { len: usize },
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Answers an ARP request or IPv6 neighbour solicitation in `buf[..len]` for an address
/// `lookup` knows, rewriting the frame in place into the reply (`buf` must have room for
/// [`NA_FRAME_LEN`] bytes for a solicitation). An untagged frame only, as the kernel's
/// `eth->h_proto` check. Never panics.
pub fn reply(buf: &mut [u8], len: usize, lookup: impl Fn(IpAddr) -> Option<[u8; 6]>) -> Proxy {
    let Some(frame) = buf.get(..len) else { return Proxy::NotAsked };
    if frame.len() < eth::HEADER_LEN {
        return Proxy::NotAsked;
    }
    match be16(frame, eth::ETHERTYPE) {
        ethertype::ARP => arp_reply(buf, len, lookup),
        ethertype::IPV6 => nd_reply(buf, len, lookup),
        _ => Proxy::NotAsked,
    }
}

/// `arp_reduce`: an Ethernet/IPv4 request for a target that is neither loopback nor
/// multicast; the reply comes from the target's MAC (`arp_create(ARPOP_REPLY, ETH_P_ARP,
/// sip, dev, tip, sha, n->ha, sha)`).
fn arp_reply(buf: &mut [u8], len: usize, lookup: impl Fn(IpAddr) -> Option<[u8; 6]>) -> Proxy {
    if len < ARP_FRAME_LEN {
        return Proxy::NotAsked;
    }
    let a = &buf[eth::HEADER_LEN..ARP_FRAME_LEN];
    let htype = be16(a, arp::HTYPE);
    if (htype != arp::HTYPE_ETHER && htype != arp::HTYPE_IEEE802)
        || be16(a, arp::PTYPE) != ethertype::IPV4
        || be16(a, arp::OPER) != arp::REQUEST
        || a[arp::HLEN] != 6
        || a[arp::PLEN] != 4
    {
        return Proxy::NotAsked;
    }
    let sha: [u8; 6] = a[arp::SHA..arp::SHA + 6].try_into().expect("6 bytes");
    let spa: [u8; 4] = a[arp::SPA..arp::SPA + 4].try_into().expect("4 bytes");
    let tpa: [u8; 4] = a[arp::TPA..arp::TPA + 4].try_into().expect("4 bytes");
    let target = Ipv4Addr::from(tpa);
    if target.is_loopback() || target.is_multicast() {
        return Proxy::NotAsked;
    }
    let Some(mac) = lookup(IpAddr::V4(target)) else { return Proxy::Unknown };
    let f = &mut buf[..ARP_FRAME_LEN];
    f[eth::DESTINATION..eth::DESTINATION + 6].copy_from_slice(&sha);
    f[eth::SOURCE..eth::SOURCE + 6].copy_from_slice(&mac);
    let a = &mut f[eth::HEADER_LEN..];
    a[arp::OPER..arp::OPER + 2].copy_from_slice(&arp::REPLY.to_be_bytes());
    a[arp::SHA..arp::SHA + 6].copy_from_slice(&mac);
    a[arp::SPA..arp::SPA + 4].copy_from_slice(&tpa);
    a[arp::THA..arp::THA + 6].copy_from_slice(&sha);
    a[arp::TPA..arp::TPA + 4].copy_from_slice(&spa);
    Proxy::ArpReply { len: ARP_FRAME_LEN }
}

/// `neigh_reduce` and `vxlan_na_create`: a solicitation (ICMPv6 right after the fixed
/// header, type 135, code 0) to a non-loopback destination for a non-multicast target;
/// the advertisement goes from the target address and MAC to the solicitation's source
/// link-layer option (else its Ethernet source), hop limit 255, flags solicited and
/// override, with a target link-layer option.
fn nd_reply(buf: &mut [u8], len: usize, lookup: impl Fn(IpAddr) -> Option<[u8; 6]>) -> Proxy {
    let ip = eth::HEADER_LEN;
    let icmp = ip + ipv6::HEADER_LEN;
    if len < icmp + nd::MSG_LEN || buf.len() < NA_FRAME_LEN {
        return Proxy::NotAsked;
    }
    let f = &buf[..len];
    if f[ip] >> 4 != 6
        || f[ip + ipv6::NEXT_HEADER] != ip_proto::ICMPV6
        || f[icmp + nd::TYPE] != nd::SOLICITATION
        || f[icmp + nd::CODE] != 0
    {
        return Proxy::NotAsked;
    }
    let src: [u8; 16] = f[ip + ipv6::SRC..ip + ipv6::SRC + 16].try_into().expect("16 bytes");
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[ip + ipv6::DST..ip + ipv6::DST + 16]).expect("16 bytes"));
    let target: [u8; 16] = f[icmp + nd::TARGET..icmp + nd::TARGET + 16].try_into().expect("16 bytes");
    if dst.is_loopback() || Ipv6Addr::from(target).is_multicast() || Ipv6Addr::from(src).is_unspecified() {
        return Proxy::NotAsked;
    }
    // The payload as the IPv6 header says, within the frame.
    let payload = usize::from(be16(f, ip + ipv6::PAYLOAD_LEN)).min(len - icmp);
    let Some(to) = source_ll(&f[icmp..icmp + payload]).or_else(|| f[eth::SOURCE..eth::SOURCE + 6].try_into().ok())
    else {
        return Proxy::NotAsked;
    };
    let Some(mac) = lookup(IpAddr::V6(Ipv6Addr::from(target))) else { return Proxy::Unknown };
    // The traffic class of the request (`priority`, its upper four bits, as the kernel).
    let priority = f[ip] & 0x0f;

    let out = &mut buf[..NA_FRAME_LEN];
    out[eth::DESTINATION..eth::DESTINATION + 6].copy_from_slice(&to);
    out[eth::SOURCE..eth::SOURCE + 6].copy_from_slice(&mac);
    out[eth::ETHERTYPE..eth::ETHERTYPE + 2].copy_from_slice(&ethertype::IPV6.to_be_bytes());
    let h = &mut out[ip..icmp];
    h.fill(0);
    h[0] = 0x60 | priority;
    let plen = (nd::MSG_LEN + nd::LL_OPT_LEN) as u16;
    h[ipv6::PAYLOAD_LEN..ipv6::PAYLOAD_LEN + 2].copy_from_slice(&plen.to_be_bytes());
    h[ipv6::NEXT_HEADER] = ip_proto::ICMPV6;
    h[ipv6::HOP_LIMIT] = 255;
    h[ipv6::SRC..ipv6::SRC + 16].copy_from_slice(&target);
    h[ipv6::DST..ipv6::DST + 16].copy_from_slice(&src);
    let m = &mut out[icmp..];
    m.fill(0);
    m[nd::TYPE] = nd::ADVERTISEMENT;
    m[nd::FLAGS] = nd::FLAGS_S_O;
    m[nd::TARGET..nd::TARGET + 16].copy_from_slice(&target);
    m[nd::OPTIONS] = nd::OPT_TARGET_LL;
    m[nd::OPTIONS + 1] = (nd::LL_OPT_LEN / 8) as u8;
    m[nd::OPTIONS + 2..nd::OPTIONS + 8].copy_from_slice(&mac);
    let pseudo = checksum::pseudo_header_v6(&target, &src, ip_proto::ICMPV6, u32::from(plen));
    let c = checksum::finish(checksum::combine(pseudo, checksum::sum(m)));
    m[nd::CHECKSUM..nd::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
    Proxy::NdReply { len: NA_FRAME_LEN }
}

/// The source link-layer address option of a solicitation (`msg` from its ICMPv6
/// header), walked as `vxlan_na_create` does; `None` if absent or malformed.
fn source_ll(msg: &[u8]) -> Option<[u8; 6]> {
    let mut at = nd::OPTIONS;
    while at + 1 < msg.len() {
        let olen = usize::from(msg[at + 1]) * 8;
        if olen == 0 {
            return None;
        }
        if msg[at] == nd::OPT_SOURCE_LL {
            return msg.get(at + 2..at + 8)?.try_into().ok();
        }
        at += olen;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::testutil::*;

    const ASKER: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa1];
    const ANSWER: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb2];

    fn table(ip: IpAddr) -> Option<[u8; 6]> {
        match ip {
            IpAddr::V4(a) if a == Ipv4Addr::new(198, 51, 100, 2) => Some(ANSWER),
            IpAddr::V6(a) if a == Ipv6Addr::from(REMOTE6) => Some(ANSWER),
            _ => None,
        }
    }

    fn arp_request(target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&ASKER);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&ASKER);
        f.extend_from_slice(&[198, 51, 100, 1]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f.resize(60, 0); // padded as on the wire
        f
    }

    #[test]
    fn arp_request_for_a_known_ip_becomes_the_kernels_reply() {
        let mut f = arp_request([198, 51, 100, 2]);
        assert_eq!(reply(&mut f, 60, table), Proxy::ArpReply { len: 42 });
        let p = SlicedPacket::from_ethernet(&f[..42]).unwrap();
        let etherparse::LinkSlice::Ethernet2(e) = p.link.unwrap() else { panic!() };
        assert_eq!((e.destination(), e.source()), (ASKER, ANSWER));
        let mut want = ASKER.to_vec();
        want.extend_from_slice(&ANSWER);
        want.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
        want.extend_from_slice(&ANSWER);
        want.extend_from_slice(&[198, 51, 100, 2]);
        want.extend_from_slice(&ASKER);
        want.extend_from_slice(&[198, 51, 100, 1]);
        assert_eq!(&f[..42], &want[..]);
    }

    #[test]
    fn unknown_loopback_replies_and_short_frames_are_not_answered() {
        let mut f = arp_request([198, 51, 100, 9]);
        assert_eq!(reply(&mut f, 60, table), Proxy::Unknown);
        assert_eq!(f, arp_request([198, 51, 100, 9]), "untouched");
        assert_eq!(reply(&mut arp_request([127, 0, 0, 1]), 60, |_| Some(ANSWER)), Proxy::NotAsked);
        let mut r = arp_request([198, 51, 100, 2]);
        r[21] = 2; // a reply
        assert_eq!(reply(&mut r, 60, table), Proxy::NotAsked);
        assert_eq!(reply(&mut arp_request([198, 51, 100, 2]), 41, table), Proxy::NotAsked);
        assert_eq!(reply(&mut arp_request([198, 51, 100, 2]), 100, table), Proxy::NotAsked);
    }

    /// A solicitation for `target` from LOCAL6 to its solicited-node group, built with
    /// etherparse (ICMPv6 checksum included), with or without a source link-layer option.
    fn solicitation(target: [u8; 16], with_sll: bool) -> Vec<u8> {
        let mut body = vec![0u8; 4 + 16];
        body[4..].copy_from_slice(&target);
        if with_sll {
            body.extend_from_slice(&[1, 1]);
            body.extend_from_slice(&[0x02, 0, 0, 0, 0, 0xcc]);
        }
        let b = PacketBuilder::ethernet2(ASKER, [0x33, 0x33, 0xff, 0, 0, 2])
            .ipv6(LOCAL6, [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2], 255)
            .icmpv6(etherparse::Icmpv6Type::Unknown { type_u8: 135, code_u8: 0, bytes5to8: [0; 4] });
        let mut f = Vec::new();
        b.write(&mut f, &body[4..]).unwrap();
        f
    }

    #[test]
    fn solicitation_for_a_known_ip_becomes_the_kernels_advertisement() {
        for (sll, to) in [(true, [0x02, 0, 0, 0, 0, 0xcc]), (false, ASKER)] {
            let mut f = solicitation(REMOTE6, sll);
            let len = f.len();
            f.resize(128, 0);
            assert_eq!(reply(&mut f, len, table), Proxy::NdReply { len: NA_FRAME_LEN });
            let p = SlicedPacket::from_ethernet(&f[..NA_FRAME_LEN]).unwrap();
            let etherparse::LinkSlice::Ethernet2(e) = p.link.clone().unwrap() else { panic!() };
            assert_eq!((e.destination(), e.source()), (to, ANSWER));
            let etherparse::NetSlice::Ipv6(ip) = p.net.clone().unwrap() else { panic!() };
            let h = ip.header();
            assert_eq!((h.source(), h.destination(), h.hop_limit()), (REMOTE6, LOCAL6, 255));
            let etherparse::TransportSlice::Icmpv6(icmp) = p.transport.unwrap() else { panic!() };
            // etherparse's own checksum over the advertisement.
            let want = icmp.icmp_type().calc_checksum(h.source(), h.destination(), icmp.payload()).unwrap();
            assert_eq!(icmp.checksum(), want);
            let m = &f[54..NA_FRAME_LEN];
            assert_eq!((m[0], m[1], m[4]), (136, 0, 0x60));
            assert_eq!(&m[8..24], &REMOTE6);
            assert_eq!(&m[24..32], &[2, 1, 0x02, 0, 0, 0, 0, 0xb2]);
        }
    }

    #[test]
    fn dad_multicast_targets_and_unknown_solicitations_are_not_answered() {
        let mut f = solicitation(LOCAL6, true);
        let len = f.len();
        f.resize(128, 0);
        assert_eq!(reply(&mut f, len, table), Proxy::Unknown);
        let mut dad = solicitation(REMOTE6, false);
        dad[22..38].fill(0); // source ::
        let len = dad.len();
        dad.resize(128, 0);
        assert_eq!(reply(&mut dad, len, table), Proxy::NotAsked);
        let mut mc = solicitation([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], true);
        let len = mc.len();
        mc.resize(128, 0);
        assert_eq!(reply(&mut mc, len, |_| Some(ANSWER)), Proxy::NotAsked);
    }
}
