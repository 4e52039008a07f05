//! IPv4 headers (RFC 791).

use super::{checksum, get_array, get_u16, set_u16, view_common, Error, Field};
use std::net::Ipv4Addr;
use vxdp_common::hdr::ipv4 as hdr;

/// IP protocol numbers vxdp looks at (shared with the XDP program).
pub use vxdp_common::hdr::ip_proto as protocol;

/// Named byte ranges of the fixed IPv4 header.
pub mod field {
    use super::{hdr, Field};
    /// Version (high nibble) and IHL in 32-bit words (low nibble).
    pub const VER_IHL: usize = hdr::VER_IHL;
    /// DSCP (6 bits) and ECN (2 bits), formerly TOS.
    pub const TOS: usize = hdr::TOS;
    pub const TOTAL_LEN: Field = hdr::TOTAL_LEN..hdr::TOTAL_LEN + 2;
    pub const IDENT: Field = hdr::IDENT..hdr::IDENT + 2;
    /// Flags (3 bits: reserved, DF, MF) and fragment offset (13 bits, 8-byte units).
    pub const FLG_OFF: Field = hdr::FLAGS_FRAG..hdr::FLAGS_FRAG + 2;
    pub const TTL: usize = hdr::TTL;
    pub const PROTOCOL: usize = hdr::PROTOCOL;
    pub const CHECKSUM: Field = hdr::CHECKSUM..hdr::CHECKSUM + 2;
    pub const SRC_ADDR: Field = hdr::SRC..hdr::SRC + hdr::ADDR_LEN;
    pub const DST_ADDR: Field = hdr::DST..hdr::DST + hdr::ADDR_LEN;
}

/// Length of the IPv4 header without options.
pub const HEADER_LEN: usize = hdr::HEADER_LEN;

/// The DF bit in [`field::FLG_OFF`].
pub const FLAG_DF: u16 = hdr::FLAG_DF;
/// The MF bit in [`field::FLG_OFF`].
pub const FLAG_MF: u16 = hdr::FLAG_MF;
/// The fragment-offset bits in [`field::FLG_OFF`].
pub const OFFSET_MASK: u16 = hdr::FRAG_OFFSET_MASK;

/// A view of an IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

view_common!(Ipv4Packet);

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Checks that the buffer holds the fixed header, that IHL is at least 5 and that
    /// the buffer holds the options too. Does not look at the version or total length
    /// (see [`Self::check_total_len`]).
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < hl {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Checks the total length against the header length and the buffer: a buffer
    /// shorter than the total length is `Truncated` (Linux `ip_rcv_core` counts it in
    /// `IPSTATS_MIB_INTRUNCATEDPKTS`); a total length shorter than the header is
    /// `Malformed`. A buffer longer than the total length (Ethernet padding) is fine.
    #[inline]
    pub fn check_total_len(&self) -> Result<(), Error> {
        let total = self.total_len() as usize;
        if self.buffer.as_ref().len() < total {
            Err(Error::Truncated)
        } else if total < self.header_len() {
            Err(Error::Malformed)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }

    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TOTAL_LEN.start)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT.start)
    }

    #[inline]
    fn flg_off(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLG_OFF.start)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flg_off() & FLAG_DF != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flg_off() & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flg_off() & OFFSET_MASK) << 3
    }

    /// Whether this is a fragment (MF set or a non-zero offset; Linux `ip_is_fragment`).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flg_off() & (FLAG_MF | OFFSET_MASK) != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    #[inline]
    pub fn src_bytes(&self) -> [u8; 4] {
        get_array(self.buffer.as_ref(), field::SRC_ADDR)
    }

    #[inline]
    pub fn dst_bytes(&self) -> [u8; 4] {
        get_array(self.buffer.as_ref(), field::DST_ADDR)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src_bytes())
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst_bytes())
    }

    /// Whether the header (options included) checksums to zero. Needs `check_len`.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.buffer.as_ref()[..self.header_len()])
    }

    /// The payload: from the end of the header to the total length. Needs
    /// `check_len` and `check_total_len`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    #[inline]
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v;
    }

    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::TOTAL_LEN.start, v)
    }

    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT.start, v)
    }

    /// Sets the flags and fragment offset: DF as given, not a fragment.
    #[inline]
    pub fn set_unfragmented(&mut self, df: bool) {
        set_u16(self.buffer.as_mut(), field::FLG_OFF.start, if df { FLAG_DF } else { 0 })
    }

    /// Sets the raw flags-and-offset word.
    #[inline]
    pub fn set_flags_and_offset(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::FLG_OFF.start, v)
    }

    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    #[inline]
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, v)
    }

    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Computes and stores the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::finish(checksum::sum(&self.buffer.as_ref()[..hl]));
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 192.168.0.1 -> 192.168.0.199, UDP, total length 0x73, DF, TTL 64.
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
        0x00, 0xc7,
    ];

    #[test]
    fn reads_real_header() {
        let p = Ipv4Packet::new_checked(&HDR[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 0x73);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), protocol::UDP);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.verify_checksum());
        assert_eq!(p.check_total_len(), Err(Error::Truncated));
    }

    #[test]
    fn length_checks() {
        for n in 0..20 {
            assert_eq!(Ipv4Packet::new_checked(&HDR[..n]).err(), Some(Error::Truncated));
        }
        let mut h = HDR;
        h[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&h[..]).err(), Some(Error::Malformed));
        h[0] = 0x46;
        assert_eq!(Ipv4Packet::new_checked(&h[..]).err(), Some(Error::Truncated));
        let mut h = HDR;
        h[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_unchecked(&h[..]).check_total_len(), Err(Error::Malformed));
    }

    #[test]
    fn fragments() {
        let mut h = HDR;
        let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
        p.set_flags_and_offset(FLAG_MF);
        assert!(p.is_fragment());
        p.set_flags_and_offset(185);
        assert!(p.is_fragment());
        assert_eq!(p.frag_offset(), 1480);
        p.set_unfragmented(true);
        assert!(!p.is_fragment() && p.dont_frag());
    }

    #[test]
    fn emit_and_checksum() {
        let mut h = [0u8; 20];
        let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
        p.set_version_and_header_len(20);
        p.set_total_len(0x73);
        p.set_unfragmented(true);
        p.set_ttl(64);
        p.set_protocol(protocol::UDP);
        p.set_src_addr(Ipv4Addr::new(192, 168, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(192, 168, 0, 199));
        p.fill_checksum();
        assert_eq!(h, HDR);
    }
}
