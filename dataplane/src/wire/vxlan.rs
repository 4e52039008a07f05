//! The VXLAN header (RFC 7348 §5).
//!
//! ```text
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! ```

use super::{get_array, view_common, Error, Field, Rest};
use vxdp_common::hdr::vxlan as hdr;

/// Named byte ranges of the VXLAN header.
pub mod field {
    use super::{hdr, Field, Rest};
    /// The first 32-bit word: flags byte and 24 reserved bits (Linux `vx_flags`).
    pub const FLAGS_WORD: Field = hdr::FLAGS..hdr::FLAGS + 4;
    pub const FLAGS: usize = hdr::FLAGS;
    /// The second 32-bit word: VNI and 8 reserved bits (Linux `vx_vni`).
    pub const VNI_WORD: Field = hdr::VNI..hdr::VNI + 4;
    pub const VNI: Field = hdr::VNI..hdr::VNI + 3;
    pub const RESERVED2: usize = hdr::VNI + 3;
    pub const PAYLOAD: Rest = hdr::HEADER_LEN..;
}

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = hdr::HEADER_LEN;

/// The I flag: the VNI is valid (Linux `VXLAN_HF_VNI` in the flags byte).
pub const FLAG_I: u8 = hdr::FLAG_I;

/// A view of a VXLAN header and the inner frame after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VxlanHeader<T: AsRef<[u8]>> {
    buffer: T,
}

view_common!(VxlanHeader);

impl<T: AsRef<[u8]>> VxlanHeader<T> {
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    #[inline]
    pub fn i_flag(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The 24-bit VNI.
    #[inline]
    pub fn vni(&self) -> u32 {
        u32::from_be_bytes(get_array(self.buffer.as_ref(), field::VNI_WORD)) >> 8
    }

    /// Whether every bit other than the I flag and the VNI is zero: the reserved bits
    /// RFC 7348 says to send as zero (Linux's default `reserved_bits`).
    #[inline]
    pub fn reserved_bits_clear(&self) -> bool {
        let flags = u32::from_be_bytes(get_array(self.buffer.as_ref(), field::FLAGS_WORD));
        flags & !((FLAG_I as u32) << 24) == 0 && self.buffer.as_ref()[field::RESERVED2] == 0
    }

    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanHeader<T> {
    /// Writes a standard header: I flag, the VNI, every reserved bit zero.
    #[inline]
    pub fn set_header(&mut self, vni: u32) {
        let b = self.buffer.as_mut();
        b[field::FLAGS_WORD].copy_from_slice(&((FLAG_I as u32) << 24).to_be_bytes());
        b[field::VNI_WORD].copy_from_slice(&(vni << 8).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes() {
        let mut b = [0xffu8; 8];
        VxlanHeader::new_unchecked(&mut b[..]).set_header(0x123456);
        assert_eq!(b, [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        let h = VxlanHeader::new_checked(&b[..]).unwrap();
        assert!(h.i_flag() && h.reserved_bits_clear());
        assert_eq!(h.vni(), 0x123456);
        for (i, bit) in [(0usize, 0x80u8), (0, 0x01), (1, 0x01), (3, 0x80), (7, 0x01)] {
            let mut r = b;
            r[i] |= bit;
            assert!(!VxlanHeader::new_unchecked(&r[..]).reserved_bits_clear(), "byte {i} bit {bit:#x}");
        }
        assert_eq!(VxlanHeader::new_checked(&b[..7]).err(), Some(Error::Truncated));
    }
}
