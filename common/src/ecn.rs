//! ECN across the tunnel (RFC 6040), as the Linux driver does it
//! (`ip_tunnel_ecn_encap`, `INET_ECN_decapsulate`): one definition for the workers and
//! the XDP express path.

use crate::flow::FrameBytes;
use crate::hdr::{eth, ethertype, ipv4, ipv6};

/// The ECN field's mask in the IPv4 TOS / IPv6 traffic class.
pub const MASK: u8 = 0x03;
pub const NOT_ECT: u8 = 0;
pub const ECT_1: u8 = 1;
pub const ECT_0: u8 = 2;
pub const CE: u8 = 3;

/// The ECN bits of an untagged inner IPv4 or IPv6 packet (what the kernel's
/// `ip_tunnel_get_dsfield` reads); `NOT_ECT` for anything else.
#[inline(always)]
pub fn inner_ecn<F: FrameBytes + ?Sized>(f: &F) -> u8 {
    let Some(et) = f.read::<2>(eth::ETHERTYPE) else { return NOT_ECT };
    let et = u16::from_be_bytes(et);
    if et == ethertype::IPV4 {
        match f.read::<2>(eth::HEADER_LEN) {
            Some(h) if h[ipv4::VER_IHL] >> 4 == 4 => h[ipv4::TOS] & MASK,
            _ => NOT_ECT,
        }
    } else if et == ethertype::IPV6 {
        match f.read::<2>(eth::HEADER_LEN + ipv6::VER_TC_FLOW) {
            // The traffic class spans the low nibble of byte 0 and the high one of byte 1.
            Some(h) if h[0] >> 4 == 6 => (h[1] >> 4) & MASK,
            _ => NOT_ECT,
        }
    } else {
        NOT_ECT
    }
}

/// The outer ECN bits for an inner packet's (`INET_ECN_encapsulate`): copied, except
/// that CE becomes ECT(0) (RFC 6040 normal mode).
#[inline(always)]
pub const fn encap(inner: u8) -> u8 {
    if inner & MASK == CE {
        ECT_0
    } else {
        inner & MASK
    }
}

/// What decapsulation does to the inner packet (`__INET_ECN_decapsulate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decap {
    /// Deliver as it is.
    Keep,
    /// Outer CE over an ECT inner packet: mark the inner one CE.
    SetCe,
    /// Outer ECT(1) over an ECT(0) inner packet: the inner one becomes ECT(1).
    SetEct1,
    /// Outer CE over a not-ECT inner packet: drop (`SKB_DROP_REASON_IP_TUNNEL_ECN`).
    Drop,
}

/// The decapsulation rule for outer and inner ECN bits.
#[inline(always)]
pub const fn decap(outer: u8, inner: u8) -> Decap {
    let (outer, inner) = (outer & MASK, inner & MASK);
    if inner == NOT_ECT {
        return if outer == CE { Decap::Drop } else { Decap::Keep };
    }
    if outer == CE && inner != CE {
        Decap::SetCe
    } else if outer == ECT_1 && inner == ECT_0 {
        Decap::SetEct1
    } else {
        Decap::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6040_tables() {
        assert_eq!([NOT_ECT, ECT_1, ECT_0, CE].map(encap), [NOT_ECT, ECT_1, ECT_0, ECT_0]);
        assert_eq!(decap(CE, NOT_ECT), Decap::Drop);
        assert_eq!(decap(ECT_0, NOT_ECT), Decap::Keep);
        assert_eq!(decap(CE, ECT_0), Decap::SetCe);
        assert_eq!(decap(CE, ECT_1), Decap::SetCe);
        assert_eq!(decap(CE, CE), Decap::Keep);
        assert_eq!(decap(ECT_1, ECT_0), Decap::SetEct1);
        assert_eq!(decap(NOT_ECT, ECT_0), Decap::Keep);
        assert_eq!(decap(ECT_0, ECT_1), Decap::Keep);
    }

    #[test]
    fn reads_ipv4_and_ipv6_inner_ecn() {
        let mut v4 = [0u8; 34];
        v4[12..14].copy_from_slice(&[0x08, 0x00]);
        v4[14] = 0x45;
        v4[15] = 0xb8 | ECT_0;
        assert_eq!(inner_ecn(&v4[..]), ECT_0);
        let mut v6 = [0u8; 54];
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        v6[14] = 0x6b; // traffic class 0xb_
        v6[15] = (CE << 4) | 0x0f;
        assert_eq!(inner_ecn(&v6[..]), CE);
        let mut arp = [0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        arp[15] = 0x03;
        assert_eq!(inner_ecn(&arp[..]), NOT_ECT);
    }
}
