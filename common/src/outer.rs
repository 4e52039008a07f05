//! The outer IPv4 header's TOS, TTL and DF bit per frame, as the kernel's
//! `vxlan_xmit_one` sets them: the configured values, or with `tos inherit`,
//! `ttl inherit` and `df inherit` the inner packet's (`ip_tunnel_get_dsfield`,
//! `ip_tunnel_get_ttl`), and always the inner ECN bits (RFC 6040, [`ecn`]).
//! One definition for the workers and the XDP express path.
//!
//! The outer header template carries the configured fields, and zero in every field
//! that is inherited; [`OuterBits`] are what a frame adds to it.

use crate::ecn;
use crate::flow::FrameBytes;
use crate::hdr::{eth, ethertype, ipv4, ipv6};

/// [`Inherit`] bit: the outer TOS's DSCP is the inner packet's (`tos inherit`).
pub const INHERIT_TOS: u8 = 1 << 0;
/// [`Inherit`] bit: the outer TTL is the inner packet's TTL or hop limit (`ttl inherit`).
pub const INHERIT_TTL: u8 = 1 << 1;
/// [`Inherit`] bit: the outer DF bit is the inner IPv4 packet's, and set for inner
/// IPv6 (`df inherit`).
pub const INHERIT_DF: u8 = 1 << 2;

/// Which outer fields come from the inner packet: `INHERIT_*` bits.
pub type Inherit = u8;

/// The outer TTL for an inherited TTL of 0 (an inner frame that is not IP): the
/// kernel then uses the route's hop limit, by default `ip_default_ttl`.
pub const DEFAULT_TTL: u8 = 64;

/// The IPv4 flags-and-fragment word's DF bit.
pub const DF: u16 = 0x4000;

/// What one frame adds to its outer header template: OR `tos` into the TOS byte (the
/// template's inherited and ECN bits are zero), write `ttl` when non-zero (the
/// template's TTL is zero when inherited), and set DF when `df`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OuterBits {
    pub tos: u8,
    pub ttl: u8,
    pub df: bool,
}

impl OuterBits {
    /// The frame's contribution to the outer IPv4 header's checksum sum: the header
    /// words holding TOS (low byte of word 0), DF (word 3) and TTL (high byte of word 4).
    #[inline(always)]
    pub fn sum(&self) -> u32 {
        u32::from(self.tos) + if self.df { u32::from(DF) } else { 0 } + (u32::from(self.ttl) << 8)
    }
}

/// The outer fields of an untagged inner IPv4 or IPv6 packet, as the kernel reads them
/// from `skb->protocol` (a tagged or non-IP frame gives zeros and no DF).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InnerIp {
    /// IPv4 TOS or IPv6 traffic class (DSCP and ECN).
    pub dsfield: u8,
    /// IPv4 TTL or IPv6 hop limit; 0 for a frame that is not IP.
    pub ttl: u8,
    /// IPv4 DF set, or IPv6 (which routers never fragment).
    pub df: bool,
}

/// Reads [`InnerIp`] from the inner frame.
#[inline(always)]
pub fn inner_ip<F: FrameBytes + ?Sized>(f: &F) -> InnerIp {
    let Some(et) = f.read::<2>(eth::ETHERTYPE) else { return InnerIp::default() };
    let et = u16::from_be_bytes(et);
    if et == ethertype::IPV4 {
        match f.read::<{ ipv4::TTL + 1 }>(eth::HEADER_LEN) {
            Some(h) if h[ipv4::VER_IHL] >> 4 == 4 => InnerIp {
                dsfield: h[ipv4::TOS],
                ttl: h[ipv4::TTL],
                df: u16::from_be_bytes([h[ipv4::FLAGS_FRAG], h[ipv4::FLAGS_FRAG + 1]]) & DF != 0,
            },
            _ => InnerIp::default(),
        }
    } else if et == ethertype::IPV6 {
        match f.read::<{ ipv6::HOP_LIMIT + 1 }>(eth::HEADER_LEN) {
            // The traffic class spans the low nibble of byte 0 and the high one of byte 1.
            Some(h) if h[0] >> 4 == 6 => {
                InnerIp { dsfield: (h[0] << 4) | (h[1] >> 4), ttl: h[ipv6::HOP_LIMIT], df: true }
            }
            _ => InnerIp::default(),
        }
    } else {
        InnerIp::default()
    }
}

/// What the inner frame `f` adds to its outer header under `inherit`.
#[inline(always)]
pub fn outer_bits<F: FrameBytes + ?Sized>(f: &F, inherit: Inherit) -> OuterBits {
    let inner = inner_ip(f);
    let dscp = if inherit & INHERIT_TOS != 0 { inner.dsfield & !ecn::MASK } else { 0 };
    let ttl = match (inherit & INHERIT_TTL != 0, inner.ttl) {
        (false, _) => 0,
        (true, 0) => DEFAULT_TTL,
        (true, t) => t,
    };
    OuterBits { tos: dscp | ecn::encap(inner.dsfield & ecn::MASK), ttl, df: inherit & INHERIT_DF != 0 && inner.df }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(tos: u8, ttl: u8, df: bool) -> [u8; 34] {
        let mut f = [0u8; 34];
        f[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        f[14] = 0x45;
        f[15] = tos;
        f[20] = if df { 0x40 } else { 0 };
        f[22] = ttl;
        f
    }

    fn ipv6(tclass: u8, hops: u8) -> [u8; 54] {
        let mut f = [0u8; 54];
        f[12..14].copy_from_slice(&ethertype::IPV6.to_be_bytes());
        f[14] = 0x60 | (tclass >> 4);
        f[15] = tclass << 4;
        f[21] = hops;
        f
    }

    #[test]
    fn inner_fields_of_ipv4_ipv6_and_others() {
        assert_eq!(inner_ip(&ipv4(0xba, 7, true)[..]), InnerIp { dsfield: 0xba, ttl: 7, df: true });
        assert_eq!(inner_ip(&ipv6(0xb9, 9)[..]), InnerIp { dsfield: 0xb9, ttl: 9, df: true });
        let mut arp = [0u8; 42];
        arp[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        assert_eq!(inner_ip(&arp[..]), InnerIp::default());
        // Too short for the TTL: nothing is read.
        assert_eq!(inner_ip(&ipv4(0xba, 7, true)[..20]), InnerIp::default());
    }

    #[test]
    fn configured_fields_add_only_ecn() {
        // CE inner is sent as ECT(0); nothing else of the inner packet is taken.
        assert_eq!(outer_bits(&ipv4(0xbb, 7, true)[..], 0), OuterBits { tos: ecn::ECT_0, ttl: 0, df: false });
    }

    #[test]
    fn inherited_fields_come_from_the_inner_packet() {
        let all = INHERIT_TOS | INHERIT_TTL | INHERIT_DF;
        assert_eq!(outer_bits(&ipv4(0xb9, 7, true)[..], all), OuterBits { tos: 0xb9, ttl: 7, df: true });
        assert_eq!(outer_bits(&ipv4(0xb8, 200, false)[..], all), OuterBits { tos: 0xb8, ttl: 200, df: false });
        assert_eq!(outer_bits(&ipv6(0x2b, 9)[..], all), OuterBits { tos: 0x2a, ttl: 9, df: true });
        // Not IP: TTL from the route's default, no DSCP, no DF.
        let mut other = [0u8; 60];
        other[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        assert_eq!(outer_bits(&other[..], all), OuterBits { tos: 0, ttl: DEFAULT_TTL, df: false });
    }

    #[test]
    fn sum_covers_the_three_header_words() {
        let b = OuterBits { tos: 0xb8, ttl: 7, df: true };
        assert_eq!(b.sum(), 0xb8 + 0x4000 + 0x0700);
    }
}
