//! Unfinished inner checksums: the one rule, for the workers (over a byte slice) and the
//! XDP express path (over the packet), of which decapsulated TCP/UDP segments carry a
//! checksum a sender's offload never completed.
//!
//! A Linux sender with transmit checksum offload on writes only the folded sum of the
//! pseudo-header into the TCP or UDP checksum field (`CHECKSUM_PARTIAL`: "the device
//! adds the rest"), and a veth never adds it. The kernel vxlan device on the receiving
//! side keeps the skb's checksum state and delivers such a segment; the bytes alone,
//! which is all XDP and AF_XDP see, fail the receiver's check. Telling them apart is
//! cheap: the field equals the pseudo-header's sum, which the headers alone give. A
//! finished checksum has that value only once in 65,536 segments, and the workers,
//! which sum the whole segment to complete it, then see it is valid and leave it.

use crate::flow::FrameBytes;
use crate::hdr::{eth, ethertype, ip_proto, ipv4, ipv6, is_vlan_tpid, vlan};

/// Where an inner segment's unfinished checksum is, relative to the inner frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unfinished {
    /// Offset of the TCP/UDP header.
    pub l4: usize,
    /// Length of the TCP/UDP segment (from the IP header's lengths).
    pub l4_len: usize,
    /// Offset of the checksum field.
    pub field: usize,
    /// Folded ones'-complement sum of the pseudo-header (the field's current value).
    pub pseudo: u16,
    /// UDP: a computed checksum of 0 is sent as 0xffff.
    pub udp: bool,
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u32 {
    u32::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

/// Folds a 32-bit one's-complement sum to 16 bits (shared with the eBPF express path).
#[inline(always)]
pub fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// `Some` if the frame (an inner Ethernet frame, at most one 802.1Q/802.1ad tag, IPv4
/// without fragmentation or IPv6 whose next header is TCP or UDP) carries a TCP or UDP
/// checksum field equal to its pseudo-header sum: a checksum a sender's offload left
/// unfinished (or, once in 65,536 finished segments, a finished one; the caller can
/// tell by summing the segment). A UDP checksum of 0 (none) is finished. Reads at most
/// the first 14 + 4 + 40 + 18 bytes. Never panics.
#[inline(always)]
pub fn unfinished<F: FrameBytes + ?Sized>(f: &F) -> Option<Unfinished> {
    let eh = f.read::<{ eth::HEADER_LEN }>(0)?;
    let mut et = u16::from_be_bytes([eh[eth::ETHERTYPE], eh[eth::ETHERTYPE + 1]]);
    let mut l3 = eth::HEADER_LEN;
    if is_vlan_tpid(et) {
        let tag = f.read::<{ vlan::LEN }>(l3)?;
        et = u16::from_be_bytes([tag[vlan::ETHERTYPE], tag[vlan::ETHERTYPE + 1]]);
        l3 += vlan::LEN;
    }
    let (proto, l4, l4_len, mut sum) = if et == ethertype::IPV4 {
        let ip = f.read::<{ ipv4::HEADER_LEN }>(l3)?;
        let hl = usize::from(ip[ipv4::VER_IHL] & 0x0f) * 4;
        let total = be16(&ip, ipv4::TOTAL_LEN) as usize;
        let frag = be16(&ip, ipv4::FLAGS_FRAG) as u16 & (ipv4::FLAG_MF | ipv4::FRAG_OFFSET_MASK);
        if ip[ipv4::VER_IHL] >> 4 != 4 || hl < ipv4::HEADER_LEN || total < hl || frag != 0 {
            return None;
        }
        let s = be16(&ip, ipv4::SRC) + be16(&ip, ipv4::SRC + 2) + be16(&ip, ipv4::DST) + be16(&ip, ipv4::DST + 2);
        (ip[ipv4::PROTOCOL], l3 + hl, total - hl, s)
    } else if et == ethertype::IPV6 {
        let ip = f.read::<{ ipv6::HEADER_LEN }>(l3)?;
        if ip[ipv6::VER_TC_FLOW] >> 4 != 6 {
            return None;
        }
        let mut s = 0u32;
        let mut w = ipv6::SRC;
        while w < ipv6::HEADER_LEN {
            s += be16(&ip, w);
            w += 2;
        }
        (ip[ipv6::NEXT_HEADER], l3 + ipv6::HEADER_LEN, be16(&ip, ipv6::PAYLOAD_LEN) as usize, s)
    } else {
        return None;
    };
    // The checksum field's offset within the TCP (16) or UDP (6) header.
    let (at, udp) = match proto {
        ip_proto::TCP => (16, false),
        ip_proto::UDP => (6, true),
        _ => return None,
    };
    if l4_len < at + 2 || !f.has(l4, l4_len) {
        return None;
    }
    let field = f.read::<2>(l4 + at)?;
    let value = u16::from_be_bytes(field);
    if udp && value == 0 {
        return None;
    }
    // The segment length is below 2^16 for IPv4 and IPv6 without jumbograms.
    sum += u32::from(proto) + l4_len as u32;
    let pseudo = fold(sum);
    // 0 and 0xffff are the same ones'-complement number.
    let same = value == pseudo || (value | pseudo == 0xffff && (value == 0 || pseudo == 0));
    same.then_some(Unfinished { l4, l4_len, field: l4 + at, pseudo, udp })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + UDP frame with `csum` in the UDP checksum field.
    fn v4_udp(csum: u16) -> [u8; 14 + 20 + 8 + 4] {
        let mut f = [0u8; 46];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&32u16.to_be_bytes());
        f[23] = ip_proto::UDP;
        f[26..30].copy_from_slice(&[198, 51, 100, 2]);
        f[30..34].copy_from_slice(&[198, 51, 100, 1]);
        f[38..40].copy_from_slice(&12u16.to_be_bytes());
        f[40..42].copy_from_slice(&csum.to_be_bytes());
        f
    }

    /// The pseudo-header sum of `v4_udp`, computed by hand.
    const PSEUDO: u16 = {
        let s: u32 = 0xc633 + 0x6402 + 0xc633 + 0x6401 + 17 + 12;
        ((s & 0xffff) + (s >> 16)) as u16
    };

    #[test]
    fn pseudo_header_value_is_unfinished() {
        let u = unfinished(&v4_udp(PSEUDO)[..]).expect("unfinished");
        assert_eq!(u, Unfinished { l4: 34, l4_len: 12, field: 40, pseudo: PSEUDO, udp: true });
    }

    #[test]
    fn other_values_and_no_checksum_are_finished() {
        assert_eq!(unfinished(&v4_udp(PSEUDO ^ 1)[..]), None);
        assert_eq!(unfinished(&v4_udp(0)[..]), None);
    }

    #[test]
    fn fragments_truncated_and_other_protocols_are_left_alone() {
        let mut f = v4_udp(PSEUDO);
        f[20] = 0x20; // MF
        assert_eq!(unfinished(&f[..]), None);
        assert_eq!(unfinished(&v4_udp(PSEUDO)[..40]), None);
        let mut f = v4_udp(PSEUDO);
        f[23] = 1; // ICMP
        assert_eq!(unfinished(&f[..]), None);
    }
}
