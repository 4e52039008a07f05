//! ECN across the tunnel (RFC 6040) on caller-owned frames: the outer ECN bits (and
//! the inherited TOS, TTL and DF, [`vxdp_common::outer`]) from the inner packet's on encap, the inner packet marked (or the frame dropped) from
//! the outer ones on decap. The rules are [`vxdp_common::ecn`], shared with the
//! express path.

use crate::counters::DropReason;
use crate::wire::checksum;
use vxdp_common::ecn::{self, Decap};
use vxdp_common::hdr::{eth, ethertype, ipv4, ipv6, is_vlan_tpid, vlan};
use vxdp_common::outer::{self, OuterBits};

/// Adds a frame's [`OuterBits`] to the outer IPv4 header of the encapsulated frame at
/// `buf[outer..]` (written from a template whose ECN bits and inherited fields are
/// zero): the inner ECN bits (`ip_tunnel_ecn_encap`) and, with `tos`/`ttl`/`df
/// inherit`, the inner packet's DSCP, TTL and DF, updating the header checksum. No-op
/// when there is nothing to add.
#[inline]
pub fn set_outer_bits(buf: &mut [u8], outer: usize, bits: OuterBits) {
    let ip = outer + eth::HEADER_LEN;
    if bits == OuterBits::default() || buf.len() < ip + ipv4::HEADER_LEN {
        return;
    }
    let h = &mut buf[ip..ip + ipv4::HEADER_LEN];
    let word = |h: &[u8], at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    let mut c = word(h, ipv4::CHECKSUM);
    let mut set = |h: &mut [u8], at: usize, new: u16| {
        c = checksum::update(c, word(h, at), new);
        h[at..at + 2].copy_from_slice(&new.to_be_bytes());
    };
    set(h, ipv4::VER_IHL, word(h, ipv4::VER_IHL) | u16::from(bits.tos));
    if bits.df {
        set(h, ipv4::FLAGS_FRAG, word(h, ipv4::FLAGS_FRAG) | outer::DF);
    }
    if bits.ttl != 0 {
        set(h, ipv4::TTL, (word(h, ipv4::TTL) & 0x00ff) | (u16::from(bits.ttl) << 8));
    }
    h[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
}

/// The ECN bits of the outer IP header of a received frame (IPv4 or IPv6, after at
/// most one tag, as `decap` accepted it).
fn outer_ecn(frame: &[u8]) -> u8 {
    let Some(et) = frame.get(eth::ETHERTYPE..eth::ETHERTYPE + 2) else { return 0 };
    let mut et = u16::from_be_bytes([et[0], et[1]]);
    let mut l3 = eth::HEADER_LEN;
    if is_vlan_tpid(et) {
        let Some(t) = frame.get(l3 + vlan::ETHERTYPE..l3 + vlan::ETHERTYPE + 2) else { return 0 };
        et = u16::from_be_bytes([t[0], t[1]]);
        l3 += vlan::LEN;
    }
    match (et, frame.get(l3..l3 + 2)) {
        (ethertype::IPV4, Some(h)) => h[1] & ecn::MASK,
        (ethertype::IPV6, Some(h)) => (h[1] >> 4) & ecn::MASK,
        _ => 0,
    }
}

/// Decapsulation's ECN step on a frame `decap` delivered (`inner` is its inner
/// frame's range): an outer CE marks an ECT inner packet CE, an outer ECT(1) makes an
/// ECT(0) one ECT(1), and an outer CE over a not-ECT inner packet is dropped
/// (`EcnCeNotEct`), as the kernel's `IP_ECN_decapsulate`. Returns whether the inner
/// packet changed.
#[inline]
pub fn decap_ecn(frame: &mut [u8], inner: std::ops::Range<usize>) -> Result<bool, DropReason> {
    let outer = outer_ecn(frame);
    if outer == 0 {
        return Ok(false);
    }
    let f = &mut frame[inner];
    let want = match ecn::decap(outer, ecn::inner_ecn(&f[..])) {
        Decap::Keep => return Ok(false),
        Decap::Drop => return Err(DropReason::EcnCeNotEct),
        Decap::SetCe => ecn::CE,
        Decap::SetEct1 => ecn::ECT_1,
    };
    // `inner_ecn` found an untagged IPv4 or IPv6 header, so the bytes are there.
    let ip = eth::HEADER_LEN;
    if f[eth::ETHERTYPE..eth::ETHERTYPE + 2] == ethertype::IPV4.to_be_bytes() {
        let old = u16::from_be_bytes([f[ip], f[ip + ipv4::TOS]]);
        f[ip + ipv4::TOS] = (f[ip + ipv4::TOS] & !ecn::MASK) | want;
        let new = u16::from_be_bytes([f[ip], f[ip + ipv4::TOS]]);
        if f.len() >= ip + ipv4::HEADER_LEN {
            let c = u16::from_be_bytes([f[ip + ipv4::CHECKSUM], f[ip + ipv4::CHECKSUM + 1]]);
            f[ip + ipv4::CHECKSUM..ip + ipv4::CHECKSUM + 2]
                .copy_from_slice(&checksum::update(c, old, new).to_be_bytes());
        }
    } else {
        let b = ip + ipv6::VER_TC_FLOW + 1;
        f[b] = (f[b] & !(ecn::MASK << 4)) | (want << 4);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::testutil::*;

    fn with_tos(mut f: Vec<u8>, tos: u8) -> Vec<u8> {
        f[15] = tos;
        let c = checksum::finish(checksum::sum(&{
            let mut h = f[14..34].to_vec();
            h[10..12].fill(0);
            h
        }));
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn outer_ce_marks_ect_inner_ce_and_keeps_checksums_valid() {
        let inner = with_tos(inner_udp(1, 2, 20), 0x02);
        let mut f = with_tos(outer_v4(LOCAL, DEFAULT_PORT, VNI, &inner), 0x03);
        let range = OUTER_V4_LEN..f.len();
        assert_eq!(decap_ecn(&mut f, range.clone()), Ok(true));
        let ip = Ipv4Header::from_slice(&f[range.start + 14..]).unwrap().0;
        assert_eq!(ip.ecn.value(), 3);
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
    }

    #[test]
    fn outer_ce_over_not_ect_drops_and_plain_outer_keeps() {
        let inner = inner_udp(1, 2, 20);
        let mut f = with_tos(outer_v4(LOCAL, DEFAULT_PORT, VNI, &inner), 0x03);
        let range = OUTER_V4_LEN..f.len();
        assert_eq!(decap_ecn(&mut f, range.clone()), Err(DropReason::EcnCeNotEct));
        let mut g = outer_v4(LOCAL, DEFAULT_PORT, VNI, &with_tos(inner, 0x02));
        let before = g.clone();
        assert_eq!(decap_ecn(&mut g, range), Ok(false));
        assert_eq!(g, before);
    }

    #[test]
    fn outer_ecn_follows_the_inner_packet() {
        let mut f = outer_v4(REMOTE, DEFAULT_PORT, VNI, &inner_udp(1, 2, 20));
        set_outer_bits(
            &mut f,
            0,
            OuterBits { tos: vxdp_common::ecn::encap(vxdp_common::ecn::CE), ..OuterBits::default() },
        );
        let ip = Ipv4Header::from_slice(&f[14..]).unwrap().0;
        assert_eq!(ip.ecn, Ipv4Ecn::TWO, "CE inside is ECT(0) outside");
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let mut g = outer_v4(REMOTE, DEFAULT_PORT, VNI, &inner_udp(1, 2, 20));
        let before = g.clone();
        set_outer_bits(&mut g, 0, OuterBits::default());
        assert_eq!(g, before);
    }

    #[test]
    fn inherited_fields_written_with_a_valid_checksum() {
        // The template of an inherited TTL and DF has both zero; outer_v4's are not.
        let mut f = outer_v4(REMOTE, DEFAULT_PORT, VNI, &inner_udp(1, 2, 20));
        let mut tpl = Ipv4Header::from_slice(&f[14..]).unwrap().0;
        (tpl.dont_fragment, tpl.time_to_live) = (false, 0);
        tpl.header_checksum = tpl.calc_header_checksum();
        f[14..34].copy_from_slice(&tpl.to_bytes());
        set_outer_bits(&mut f, 0, OuterBits { tos: 0xb9, ttl: 7, df: true });
        let ip = Ipv4Header::from_slice(&f[14..]).unwrap().0;
        assert_eq!((ip.dscp.value(), ip.ecn.value(), ip.time_to_live, ip.dont_fragment), (0xb9 >> 2, 1, 7, true));
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
    }
}
