//! UDP headers (RFC 768).

use super::{get_u16, set_u16, view_common, Error, Field, Rest};
use vxdp_common::hdr::udp as hdr;

/// Named byte ranges of the UDP header.
pub mod field {
    use super::{hdr, Field, Rest};
    pub const SRC_PORT: Field = hdr::SRC_PORT..hdr::SRC_PORT + 2;
    pub const DST_PORT: Field = hdr::DST_PORT..hdr::DST_PORT + 2;
    pub const LENGTH: Field = hdr::LENGTH..hdr::LENGTH + 2;
    pub const CHECKSUM: Field = hdr::CHECKSUM..hdr::CHECKSUM + 2;
    pub const PAYLOAD: Rest = hdr::HEADER_LEN..;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = hdr::HEADER_LEN;

/// A view of a UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<T: AsRef<[u8]>> {
    buffer: T,
}

view_common!(UdpDatagram);

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    /// Checks that the buffer holds the header and that the length field is at least
    /// the header and at most the buffer (Linux `__udp4_lib_rcv`: both are
    /// `short_packet`). A buffer longer than the length field is trimmed by
    /// [`Self::payload`].
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = self.length() as usize;
        if l < HEADER_LEN || l > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// The length field: header plus payload.
    #[inline]
    pub fn length(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The payload up to the length field. Needs `check_len`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.length() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpDatagram<T> {
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT.start, v)
    }

    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT.start, v)
    }

    #[inline]
    pub fn set_length(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, v)
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A DNS query header: 53000 -> 53, length 12, checksum 0x1234, 4 payload bytes, 2 padding.
    const DGRAM: [u8; 14] = [0xcf, 0x08, 0x00, 0x35, 0x00, 0x0c, 0x12, 0x34, 1, 2, 3, 4, 0, 0];

    #[test]
    fn reads_and_trims() {
        let u = UdpDatagram::new_checked(&DGRAM[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), u.length(), u.checksum()), (53000, 53, 12, 0x1234));
        assert_eq!(u.payload(), &[1, 2, 3, 4]);
    }

    #[test]
    fn bad_lengths() {
        assert_eq!(UdpDatagram::new_checked(&DGRAM[..7]).err(), Some(Error::Truncated));
        assert_eq!(UdpDatagram::new_checked(&DGRAM[..11]).err(), Some(Error::Truncated));
        let mut d = DGRAM;
        d[5] = 7;
        assert_eq!(UdpDatagram::new_checked(&d[..]).err(), Some(Error::Truncated));
    }

    #[test]
    fn setters() {
        let mut d = [0u8; 8];
        let mut u = UdpDatagram::new_unchecked(&mut d[..]);
        u.set_src_port(53000);
        u.set_dst_port(53);
        u.set_length(12);
        u.set_checksum(0x1234);
        assert_eq!(d, DGRAM[..8]);
    }
}
