//! Fragmenting an outer IPv4 packet that its path cannot carry, as the kernel does for
//! a vxlan device's packets without DF (`ip_do_fragment`'s slow path): every fragment
//! but the last carries the same multiple of 8 bytes of IP payload, the most that fits
//! the path MTU; each has a copy of the Ethernet and IPv4 headers with its own length,
//! offset, MF bit and checksum; all keep the packet's identification. The UDP checksum
//! (if any) is the whole datagram's, computed before the split.
//!
//! The outer packet is always Ethernet + a 20-byte IPv4 header (vxdp's template); the
//! caller decides that fragmenting is right (DF clear on the outer header, an inner
//! packet the kernel would not answer with ICMP instead, see `vxlan::pmtu`).
#![forbid(unsafe_code)]

use crate::wire::checksum;
use vxdp_common::hdr::{eth, ipv4};

/// Where the IPv4 header sits in an outer frame.
const IP_AT: usize = eth::HEADER_LEN;
/// Ethernet and IPv4 headers: what every fragment repeats.
const HEADERS: usize = eth::HEADER_LEN + ipv4::HEADER_LEN;
const MF: u16 = 0x2000;

/// How an outer packet of `ip_len` bytes (IPv4 header included) is split for a path
/// MTU of `mtu`: the payload bytes of every fragment but the last, and the number of
/// fragments. `None` if the packet fits, or the MTU cannot carry 8 payload bytes.
pub fn plan(ip_len: usize, mtu: usize) -> Option<(usize, usize)> {
    if ip_len <= mtu {
        return None;
    }
    let per = mtu.checked_sub(ipv4::HEADER_LEN)? & !7;
    if per == 0 {
        return None;
    }
    let payload = ip_len.checked_sub(ipv4::HEADER_LEN)?;
    Some((per, payload.div_ceil(per)))
}

/// Writes fragment `k` (1 ..`count`) of the outer frame `frame` (the whole packet,
/// unchanged) into `out`, split `per` payload bytes a fragment, and returns its length;
/// `None` if `out` cannot hold it or `k` is out of range.
pub fn write_fragment(frame: &[u8], per: usize, k: usize, count: usize, out: &mut [u8]) -> Option<usize> {
    if k == 0 || k >= count || frame.len() <= HEADERS {
        return None;
    }
    let from = HEADERS + k * per;
    let to = frame.len().min(from + per);
    let len = HEADERS + to.checked_sub(from)?;
    let out = out.get_mut(..len)?;
    out[..HEADERS].copy_from_slice(&frame[..HEADERS]);
    out[HEADERS..].copy_from_slice(&frame[from..to]);
    set_fragment(out, k * per, k + 1 < count);
    Some(len)
}

/// Makes `frame` (the whole packet) its own first fragment of `per` payload bytes and
/// returns its new length. Call after [`write_fragment`] has copied the rest.
pub fn make_first(frame: &mut [u8], per: usize) -> usize {
    let len = (HEADERS + per).min(frame.len());
    set_fragment(&mut frame[..len], 0, true);
    len
}

/// Sets the IPv4 total length (from the slice), the fragment offset and MF, and
/// recomputes the header checksum.
fn set_fragment(frame: &mut [u8], offset: usize, more: bool) {
    let h = &mut frame[IP_AT..];
    let total = (h.len() as u16).to_be_bytes();
    h[ipv4::TOTAL_LEN..ipv4::TOTAL_LEN + 2].copy_from_slice(&total);
    let flags = u16::from_be_bytes([h[ipv4::FLAGS_FRAG], h[ipv4::FLAGS_FRAG + 1]]) & !(MF | 0x1fff);
    let word = flags | if more { MF } else { 0 } | (offset / 8) as u16;
    h[ipv4::FLAGS_FRAG..ipv4::FLAGS_FRAG + 2].copy_from_slice(&word.to_be_bytes());
    h[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].copy_from_slice(&[0, 0]);
    let sum = checksum::finish(checksum::sum(&h[..ipv4::HEADER_LEN]));
    h[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::testutil::*;
    use crate::vxlan::{encap, EncapParams, OuterTemplate, OUTER_V4_LEN};
    use std::net::Ipv4Addr;

    /// A 1450-byte inner IPv4 packet (DF clear) encapsulated toward a 1400-byte path.
    fn outer_frame(udp_csum: bool) -> Vec<u8> {
        let p = EncapParams {
            src_mac: LOCAL_MAC,
            dst_mac: REMOTE_MAC,
            src_ip: Ipv4Addr::from(LOCAL),
            dst_ip: Ipv4Addr::from(REMOTE),
            ttl: 64,
            tos: 0,
            df: false,
            path_mtu: 1400,
            dst_port: DEFAULT_PORT,
            vni: vni(),
            udp_csum,
        };
        let inner: Vec<u8> = (0..1464u32).map(|i| (i * 7) as u8).collect();
        let mut buf = vec![0u8; 256 + inner.len()];
        buf[256..].copy_from_slice(&inner);
        let start = encap(&mut buf, 256, inner.len(), &OuterTemplate::new(&p), 4242, 0x1234).unwrap();
        buf[start..].to_vec()
    }

    #[test]
    fn sizes_follow_the_kernels_split() {
        // 1400-byte path: 1376 payload bytes a fragment (1380 rounded down to 8).
        assert_eq!(plan(1500, 1400), Some((1376, 2)));
        assert_eq!(plan(1400, 1400), None, "fits");
        assert_eq!(plan(3000, 576), Some((552, 6)));
        assert_eq!(plan(100, 27), None, "no 8 payload bytes fit");
    }

    #[test]
    fn fragments_reassemble_into_the_packet_with_valid_headers() {
        for udp_csum in [false, true] {
            let whole = outer_frame(udp_csum);
            let ip_len = whole.len() - eth::HEADER_LEN;
            let (per, count) = plan(ip_len, 1400).unwrap();
            assert_eq!((per, count), (1376, 2));
            let mut frags = Vec::new();
            for k in 1..count {
                let mut out = vec![0u8; 2048];
                let n = write_fragment(&whole, per, k, count, &mut out).unwrap();
                out.truncate(n);
                frags.push(out);
            }
            let mut first = whole.clone();
            let n = make_first(&mut first, per);
            first.truncate(n);
            frags.insert(0, first);

            let mut payload = Vec::new();
            for (k, f) in frags.iter().enumerate() {
                let h = etherparse::Ipv4HeaderSlice::from_slice(&f[IP_AT..]).expect("a valid IPv4 header");
                assert_eq!(usize::from(h.total_len()), f.len() - eth::HEADER_LEN, "fragment {k}");
                assert!(f.len() - eth::HEADER_LEN <= 1400, "fragment {k} fits the path");
                assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum(), "fragment {k}");
                assert_eq!((h.identification(), h.dont_fragment()), (0x1234, false));
                assert_eq!(h.more_fragments(), k + 1 < count);
                assert_eq!(usize::from(h.fragments_offset().value()) * 8, payload.len());
                assert_eq!(f[..eth::HEADER_LEN], whole[..eth::HEADER_LEN]);
                payload.extend_from_slice(&f[HEADERS..]);
            }
            assert_eq!(payload, whole[HEADERS..], "reassembled (udp_csum {udp_csum})");
            assert_eq!(whole.len(), OUTER_V4_LEN + 1464);
        }
    }

    #[test]
    fn bad_requests_write_nothing() {
        let whole = outer_frame(false);
        let mut small = [0u8; 64];
        assert_eq!(write_fragment(&whole, 1376, 1, 2, &mut small), None, "out too small");
        let mut out = [0u8; 2048];
        assert_eq!(write_fragment(&whole, 1376, 0, 2, &mut out), None, "the first is made in place");
        assert_eq!(write_fragment(&whole, 1376, 2, 2, &mut out), None, "past the last");
    }
}
