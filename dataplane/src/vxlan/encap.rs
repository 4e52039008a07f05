//! Encapsulation: a precomputed outer IPv4 header ([`OuterTemplate`]) written in front
//! of an inner frame in place, with only lengths, IP id, source port and checksums patched
//! per frame.

use super::{Vni, MAX_INNER_V4, OUTER_V4_LEN, UDP_OVERHEAD, V4_IP, V4_UDP, V4_VXLAN};
use crate::counters::DropReason;
use crate::wire::checksum;
use crate::wire::ethernet::{self, EthernetFrame};
use crate::wire::ipv4::{self, protocol, Ipv4Packet};
use crate::wire::udp::UdpDatagram;
use crate::wire::vxlan::VxlanHeader;
use std::net::Ipv4Addr;

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
    /// The largest outer IPv4 packet the path toward the remote carries: the route's
    /// MTU, or the underlay device's.
    pub path_mtu: u16,
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
        // The ECN bits are the inner packet's, set per frame (`set_outer_ecn`), as the
        // kernel's `ip_tunnel_ecn_encap` clears the configured ones.
        ip.set_tos(p.tos & !vxdp_common::ecn::MASK);
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

    /// The largest inner IP packet (the inner frame without its Ethernet header) the
    /// path toward this remote carries: its MTU less the outer IPv4, UDP and VXLAN
    /// headers and the inner Ethernet header, 50 bytes in all.
    pub fn max_inner_len(&self) -> usize {
        usize::from(self.params.path_mtu).saturating_sub(OUTER_V4_LEN)
    }

    /// The precomputed 50-byte header (lengths, identification, checksums and source
    /// port zero).
    pub fn header(&self) -> &[u8; OUTER_V4_LEN] {
        &self.header
    }

    /// The partial sums: (IPv4 header without total length and identification, UDP
    /// pseudo-header and headers without the lengths and source port).
    pub fn partial_sums(&self) -> (u16, u16) {
        (self.ip_sum, self.udp_sum)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::testutil::*;

    fn params(udp_csum: bool) -> EncapParams {
        EncapParams {
            src_mac: LOCAL_MAC,
            dst_mac: REMOTE_MAC,
            src_ip: Ipv4Addr::from(LOCAL),
            dst_ip: Ipv4Addr::from(REMOTE),
            ttl: 17,
            tos: 0xb9, // DSCP 46, ECN 1
            df: true,
            path_mtu: 1500,
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
        // The configured ECN bits are cleared: the outer ECN is the inner packet's
        // (`set_outer_ecn`), as the kernel's `ip_tunnel_ecn_encap` does.
        ip.ecn = Ipv4Ecn::ZERO;
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
}
