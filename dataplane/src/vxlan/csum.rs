//! Completing inner checksums a sender's offload left unfinished.
//!
//! A kernel VTEP whose underlay is a veth with transmit checksum offload on (the
//! default) sends inner TCP/UDP segments whose checksum field holds only the
//! pseudo-header's sum (`CHECKSUM_PARTIAL`); the kernel vxlan device on the receiving
//! side keeps that state in the skb and delivers them, but after AF_XDP only the bytes
//! are left, and the receiver's stack would drop them. Which segments those are is
//! decided by [`vxdp_common::csum::unfinished`] (one rule with the express path, which
//! hands them to the workers); this finishes them.

use crate::wire::checksum;

/// Completes the TCP or UDP checksum of the inner frame `inner` if its field holds
/// only the pseudo-header's sum. Returns whether the frame changed: a finished
/// checksum that happens to equal its pseudo-header sum (one in 65,536) is recomputed
/// to the same value and reported unchanged. One pass over the segment, only for
/// segments whose field matches; every other frame costs a look at its headers.
#[inline]
pub fn complete_inner_csum(inner: &mut [u8]) -> bool {
    let Some(u) = vxdp_common::csum::unfinished(&inner[..]) else {
        return false;
    };
    let field = [inner[u.field], inner[u.field + 1]];
    // The field holds the pseudo-header sum, so summing the segment as it is adds
    // exactly the pseudo-header: the complement is the finished checksum.
    let mut c = checksum::finish(checksum::sum(&inner[u.l4..u.l4 + u.l4_len]));
    if u.udp && c == 0 {
        c = 0xffff;
    }
    if c.to_be_bytes() == field {
        return false;
    }
    inner[u.field..u.field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::testutil::*;
    use etherparse::TransportSlice;

    /// Overwrites the L4 checksum of an etherparse-built frame with its pseudo-header
    /// sum, as a sender with checksum offload leaves it.
    fn unfinish(f: &mut [u8]) {
        let u = vxdp_common::csum::unfinished(&f[..]);
        assert!(u.is_none(), "a finished checksum equal to its pseudo-header sum: pick other bytes");
        let (l4, at, pseudo) = match SlicedPacket::from_ethernet(f).unwrap().net.unwrap() {
            etherparse::NetSlice::Ipv4(ip) => {
                let h = ip.header();
                let len = (h.total_len() - h.ihl() as u16 * 4) as u32;
                let s = checksum::pseudo_header_v4(h.source(), h.destination(), h.protocol().0, len as u16);
                (14 + h.ihl() as usize * 4, if h.protocol() == IpNumber::TCP { 16 } else { 6 }, s)
            }
            etherparse::NetSlice::Ipv6(ip) => {
                let h = ip.header();
                let s = checksum::pseudo_header_v6(
                    &h.source(),
                    &h.destination(),
                    h.next_header().0,
                    h.payload_length() as u32,
                );
                (54, if h.next_header() == IpNumber::TCP { 16 } else { 6 }, s)
            }
        };
        f[l4 + at..l4 + at + 2].copy_from_slice(&pseudo.to_be_bytes());
    }

    /// Whether etherparse's own checksum computation agrees with the frame's field.
    fn l4_valid(f: &[u8]) -> bool {
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let (src4, dst4, src6, dst6) = match p.net.as_ref().unwrap() {
            etherparse::NetSlice::Ipv4(ip) => (Some(ip.header().source()), Some(ip.header().destination()), None, None),
            etherparse::NetSlice::Ipv6(ip) => (None, None, Some(ip.header().source()), Some(ip.header().destination())),
        };
        match p.transport.unwrap() {
            TransportSlice::Tcp(t) => {
                let h = t.to_header();
                let want = match (src4, src6) {
                    (Some(_), _) => h.calc_checksum_ipv4_raw(src4.unwrap(), dst4.unwrap(), t.payload()).unwrap(),
                    _ => h.calc_checksum_ipv6_raw(src6.unwrap(), dst6.unwrap(), t.payload()).unwrap(),
                };
                want == h.checksum
            }
            TransportSlice::Udp(u) => {
                let h = u.to_header();
                let want = match (src4, src6) {
                    (Some(_), _) => h.calc_checksum_ipv4_raw(src4.unwrap(), dst4.unwrap(), u.payload()).unwrap(),
                    _ => h.calc_checksum_ipv6_raw(src6.unwrap(), dst6.unwrap(), u.payload()).unwrap(),
                };
                want == h.checksum
            }
            _ => unreachable!(),
        }
    }

    fn tcp_v4(payload_len: usize) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(INNER_SRC, INNER_DST)
            .ipv4([198, 51, 100, 2], [198, 51, 100, 1], 64)
            .tcp(40000, 5201, 0x1234_5678, 502)
            .ack(0x0bad_cafe);
        let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7) as u8).collect();
        let mut v = Vec::new();
        b.write(&mut v, &payload).unwrap();
        v
    }

    fn udp_v6(payload_len: usize) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(INNER_SRC, INNER_DST).ipv6(REMOTE6, LOCAL6, 64).udp(5300, 5300);
        let payload: Vec<u8> = (0..payload_len).map(|i| (i * 3) as u8).collect();
        let mut v = Vec::new();
        b.write(&mut v, &payload).unwrap();
        v
    }

    #[test]
    fn completes_tcp_v4_udp_v4_and_udp_v6_odd_and_even_lengths() {
        for mut f in [tcp_v4(1398), tcp_v4(1), inner_udp(1000, 2000, 33), udp_v6(100), udp_v6(7)] {
            assert!(l4_valid(&f));
            let finished = f.clone();
            unfinish(&mut f);
            assert!(!l4_valid(&f));
            assert!(complete_inner_csum(&mut f));
            assert_eq!(f, finished, "completed to etherparse's checksum");
        }
    }

    #[test]
    fn finished_and_non_l4_frames_are_untouched() {
        for f in [tcp_v4(100), inner_udp(1, 2, 10), udp_v6(10)] {
            let mut g = f.clone();
            assert!(!complete_inner_csum(&mut g));
            assert_eq!(g, f);
        }
        // ARP, a frame shorter than its headers, an IPv4 fragment.
        let mut arp = [INNER_DST, INNER_SRC].concat();
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.resize(60, 0);
        assert!(!complete_inner_csum(&mut arp.clone()));
        let mut short = tcp_v4(100);
        unfinish(&mut short);
        short.truncate(60);
        assert!(!complete_inner_csum(&mut short));
        let mut frag = tcp_v4(100);
        unfinish(&mut frag);
        frag[20] |= 0x20; // MF
        let before = frag.clone();
        assert!(!complete_inner_csum(&mut frag));
        assert_eq!(frag, before);
    }

    #[test]
    fn tagged_inner_frame_is_completed() {
        let b = PacketBuilder::ethernet2(INNER_SRC, INNER_DST)
            .single_vlan(VlanId::try_new(100).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1, 2, 3, 4);
        let mut f = Vec::new();
        b.write(&mut f, &[9u8; 50]).unwrap();
        let finished = f.clone();
        // The checksum field of TCP behind a tag: 14 + 4 + 20 + 16.
        let tcp = 14 + 4 + 20;
        let s = checksum::pseudo_header_v4([10, 0, 0, 1], [10, 0, 0, 2], 6, 70);
        f[tcp + 16..tcp + 18].copy_from_slice(&s.to_be_bytes());
        assert!(complete_inner_csum(&mut f));
        assert_eq!(f, finished);
    }
}
