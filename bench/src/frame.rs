//! Test frames: prebuilt Ethernet/IPv4/UDP frames, optionally inside VXLAN, whose UDP
//! payload starts with a [`Stamp`] (flow, sequence number, send time).
//!
//! The generator writes a frame per UMEM slot once ([`FrameSpec::write`]) and per send
//! only patches the stamp ([`Stamp::write_at`]); the sink finds the stamp behind zero or
//! one VXLAN header ([`find_stamp`]), so one sink serves decap (inner frames), encap
//! (VXLAN frames) and the medium baseline (either).
//!
//! Checksums: IPv4 header checksums are complete; UDP checksums are 0 (allowed for
//! IPv4, and what the kernel's vxlan device sends by default), so patching the stamp
//! never invalidates a frame.

use std::net::Ipv4Addr;

/// Ethernet header length.
pub const ETH_LEN: usize = 14;
/// IPv4 header length without options.
pub const IPV4_LEN: usize = 20;
/// UDP header length.
pub const UDP_LEN: usize = 8;
/// VXLAN header length.
pub const VXLAN_LEN: usize = 8;
/// Bytes VXLAN over IPv4 adds in front of an inner frame.
pub const OUTER_LEN: usize = ETH_LEN + IPV4_LEN + UDP_LEN + VXLAN_LEN;
/// Offset of the UDP payload (and the stamp) in an inner frame.
pub const PAYLOAD_OFF: usize = ETH_LEN + IPV4_LEN + UDP_LEN;
/// Smallest inner frame that holds headers and a stamp (64-byte frames without FCS have 60).
pub const MIN_INNER_LEN: usize = PAYLOAD_OFF + Stamp::LEN;
/// The IANA VXLAN port.
pub const VXLAN_PORT: u16 = 4789;
/// Inner UDP destination port (discard).
pub const INNER_DST_PORT: u16 = 9;
/// First inner UDP source port; flow `f` uses `INNER_SRC_PORT_BASE + f`.
pub const INNER_SRC_PORT_BASE: u16 = 10_000;
/// First outer UDP source port; flow `f` uses `OUTER_SRC_PORT_BASE + f` (as a VTEP
/// hashing the inner flow would spread them).
pub const OUTER_SRC_PORT_BASE: u16 = 49_152;

const ETHERTYPE_IPV4: u16 = 0x0800;
const PROTO_UDP: u8 = 17;

/// Addresses of one Ethernet/IPv4 hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L3Hop {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
}

/// The outer headers of a VXLAN frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outer {
    pub hop: L3Hop,
    pub vni: u32,
}

/// What every frame of a run looks like; frames of different flows differ only in
/// their UDP source ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    /// Inner frame: Ethernet + IPv4 + UDP + payload, `inner_len` bytes (no FCS).
    pub inner: L3Hop,
    pub inner_len: usize,
    /// VXLAN around the inner frame, if any.
    pub outer: Option<Outer>,
}

impl FrameSpec {
    /// Length of the frame on the wire (without FCS).
    pub fn frame_len(&self) -> usize {
        self.inner_len + if self.outer.is_some() { OUTER_LEN } else { 0 }
    }

    /// Writes the frame of `flow` into the front of `buf` and returns its length;
    /// the stamp is zero. Panics if `buf` is too short or `inner_len` is below
    /// [`MIN_INNER_LEN`] (a configuration error, caught before any traffic).
    pub fn write(&self, buf: &mut [u8], flow: u16) -> usize {
        assert!(self.inner_len >= MIN_INNER_LEN, "inner frames need at least {MIN_INNER_LEN} bytes");
        let len = self.frame_len();
        let buf = &mut buf[..len];
        buf.fill(0);
        let inner_at = match &self.outer {
            Some(o) => {
                let udp_len = (UDP_LEN + VXLAN_LEN + self.inner_len) as u16;
                write_eth_ipv4_udp(buf, &o.hop, udp_len, OUTER_SRC_PORT_BASE.wrapping_add(flow), VXLAN_PORT);
                let vx = &mut buf[ETH_LEN + IPV4_LEN + UDP_LEN..OUTER_LEN];
                vx[0] = 0x08;
                vx[4..8].copy_from_slice(&(o.vni << 8).to_be_bytes());
                OUTER_LEN
            }
            None => 0,
        };
        let udp_len = (self.inner_len - ETH_LEN - IPV4_LEN) as u16;
        write_eth_ipv4_udp(
            &mut buf[inner_at..],
            &self.inner,
            udp_len,
            INNER_SRC_PORT_BASE.wrapping_add(flow),
            INNER_DST_PORT,
        );
        len
    }

    /// Offset of the stamp in frames of this spec.
    pub fn stamp_offset(&self) -> usize {
        PAYLOAD_OFF + if self.outer.is_some() { OUTER_LEN } else { 0 }
    }
}

fn write_eth_ipv4_udp(buf: &mut [u8], hop: &L3Hop, udp_len: u16, src_port: u16, dst_port: u16) {
    buf[0..6].copy_from_slice(&hop.dst_mac);
    buf[6..12].copy_from_slice(&hop.src_mac);
    buf[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip = &mut buf[ETH_LEN..ETH_LEN + IPV4_LEN];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(IPV4_LEN as u16 + udp_len).to_be_bytes());
    ip[8] = 64;
    ip[9] = PROTO_UDP;
    ip[12..16].copy_from_slice(&hop.src_ip.octets());
    ip[16..20].copy_from_slice(&hop.dst_ip.octets());
    let csum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let udp = &mut buf[ETH_LEN + IPV4_LEN..ETH_LEN + IPV4_LEN + UDP_LEN];
    udp[0..2].copy_from_slice(&src_port.to_be_bytes());
    udp[2..4].copy_from_slice(&dst_port.to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
}

/// RFC 1071 checksum of an IPv4 header whose checksum field is zero.
pub fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = hdr.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What the generator puts at the start of every UDP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub flow: u16,
    /// Per run, increasing in send order (so per flow too).
    pub seq: u64,
    /// CLOCK_MONOTONIC nanoseconds when the frame was queued for sending.
    pub sent_ns: u64,
}

/// Marks a payload as ours ("xd").
const MAGIC: u16 = 0x7864;

impl Stamp {
    /// Bytes a stamp takes: magic, flow, sequence, time.
    pub const LEN: usize = 2 + 2 + 8 + 8;

    /// Writes the stamp at `buf[at..at + LEN]`.
    #[inline(always)]
    pub fn write_at(&self, buf: &mut [u8], at: usize) {
        let b = &mut buf[at..at + Self::LEN];
        b[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        b[2..4].copy_from_slice(&self.flow.to_le_bytes());
        b[4..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12..20].copy_from_slice(&self.sent_ns.to_le_bytes());
    }

    /// Reads a stamp at `buf[at..]`, if it is there and carries the magic.
    #[inline(always)]
    pub fn read_at(buf: &[u8], at: usize) -> Option<Stamp> {
        let b = buf.get(at..at + Self::LEN)?;
        if u16::from_be_bytes([b[0], b[1]]) != MAGIC {
            return None;
        }
        Some(Stamp {
            flow: u16::from_le_bytes([b[2], b[3]]),
            seq: u64::from_le_bytes(b[4..12].try_into().ok()?),
            sent_ns: u64::from_le_bytes(b[12..20].try_into().ok()?),
        })
    }
}

/// Finds the stamp of a received frame: Ethernet/IPv4/UDP, behind at most one
/// VXLAN (UDP port 4789) encapsulation. `None` for anything else.
#[inline]
pub fn find_stamp(frame: &[u8]) -> Option<Stamp> {
    let mut at = 0usize;
    for _ in 0..2 {
        let eth = frame.get(at..at + ETH_LEN)?;
        if u16::from_be_bytes([eth[12], eth[13]]) != ETHERTYPE_IPV4 {
            return None;
        }
        let ip_at = at + ETH_LEN;
        let ip = frame.get(ip_at..ip_at + IPV4_LEN)?;
        if ip[0] >> 4 != 4 || ip[9] != PROTO_UDP {
            return None;
        }
        let udp_at = ip_at + usize::from(ip[0] & 0x0f) * 4;
        let udp = frame.get(udp_at..udp_at + UDP_LEN)?;
        if u16::from_be_bytes([udp[2], udp[3]]) == VXLAN_PORT {
            at = udp_at + UDP_LEN + VXLAN_LEN;
            continue;
        }
        return Stamp::read_at(frame, udp_at + UDP_LEN);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(outer: bool, inner_len: usize) -> FrameSpec {
        let inner = L3Hop {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: Ipv4Addr::new(198, 51, 100, 2),
            dst_ip: Ipv4Addr::new(198, 51, 100, 1),
        };
        let outer = outer.then_some(Outer {
            hop: L3Hop {
                src_mac: [2, 0, 0, 0, 1, 1],
                dst_mac: [2, 0, 0, 0, 1, 2],
                src_ip: Ipv4Addr::new(192, 0, 2, 2),
                dst_ip: Ipv4Addr::new(192, 0, 2, 1),
            },
            vni: 42,
        });
        FrameSpec { inner, inner_len, outer }
    }

    #[test]
    fn checksum_of_a_known_header() {
        // Example header from RFC 1071 discussions (checksum 0xb861).
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00,
            0xc7,
        ];
        assert_eq!(ipv4_checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(ipv4_checksum(&h), 0);
    }

    #[test]
    fn vxlan_frame_decapsulates_with_vxdp_and_keeps_the_stamp() {
        let s = spec(true, 64);
        let mut buf = [0u8; 256];
        let len = s.write(&mut buf, 7);
        assert_eq!(len, 114);
        let st = Stamp { flow: 7, seq: 99, sent_ns: 123_456 };
        st.write_at(&mut buf, s.stamp_offset());
        assert_eq!(find_stamp(&buf[..len]), Some(st));

        let cfg = vxdp::vxlan::DecapConfig {
            vni: vxdp::vxlan::Vni::new(42).unwrap(),
            port: VXLAN_PORT,
            local_v4: vec![Ipv4Addr::new(192, 0, 2, 1)],
            local_v6: vec![],
            max_inner_len: 1514,
        };
        match vxdp::vxlan::decap(&buf[..len], &cfg) {
            vxdp::vxlan::Decap::Deliver { inner_start, inner_len, .. } => {
                assert_eq!((inner_start, inner_len), (OUTER_LEN, 64));
                assert_eq!(find_stamp(&buf[inner_start..inner_start + inner_len]), Some(st));
            }
            other => panic!("vxdp rejected the generator's frame: {other:?}"),
        }
        // Outer UDP source port carries the flow.
        assert_eq!(u16::from_be_bytes([buf[34], buf[35]]), OUTER_SRC_PORT_BASE + 7);
    }

    #[test]
    fn inner_frame_has_valid_ip_header_and_flow_port() {
        let s = spec(false, 512);
        let mut buf = [0u8; 600];
        assert_eq!(s.write(&mut buf, 3), 512);
        assert_eq!(ipv4_checksum(&buf[14..34]), 0);
        assert_eq!(u16::from_be_bytes([buf[16], buf[17]]), 498);
        assert_eq!(u16::from_be_bytes([buf[34], buf[35]]), INNER_SRC_PORT_BASE + 3);
        assert_eq!(u16::from_be_bytes([buf[38], buf[39]]), 478);
        assert_eq!(find_stamp(&buf[..512]), None, "no stamp written yet");
    }

    #[test]
    fn foreign_frames_have_no_stamp() {
        assert_eq!(find_stamp(&[]), None);
        let mut arp = [0u8; 60];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(find_stamp(&arp), None);
    }
}
