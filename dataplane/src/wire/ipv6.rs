//! IPv6 fixed headers (RFC 8200).

use super::{get_array, get_u16, set_u16, view_common, Error, Field};
use std::net::Ipv6Addr;
use vxdp_common::hdr::ipv6 as hdr;

/// Named byte ranges of the IPv6 fixed header.
pub mod field {
    use super::{hdr, Field};
    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: Field = hdr::VER_TC_FLOW..hdr::VER_TC_FLOW + 4;
    pub const PAYLOAD_LEN: Field = hdr::PAYLOAD_LEN..hdr::PAYLOAD_LEN + 2;
    pub const NEXT_HEADER: usize = hdr::NEXT_HEADER;
    pub const HOP_LIMIT: usize = hdr::HOP_LIMIT;
    pub const SRC_ADDR: Field = hdr::SRC..hdr::SRC + hdr::ADDR_LEN;
    pub const DST_ADDR: Field = hdr::DST..hdr::DST + hdr::ADDR_LEN;
}

/// Length of the IPv6 fixed header.
pub const HEADER_LEN: usize = hdr::HEADER_LEN;

/// A view of an IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

view_common!(Ipv6Packet);

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Checks that the buffer holds the fixed header.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Checks that the buffer holds the payload length (padding after it is fine).
    #[inline]
    pub fn check_payload_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN + self.payload_len() as usize {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    fn ver_tc_flow(&self) -> u32 {
        u32::from_be_bytes(get_array(self.buffer.as_ref(), field::VER_TC_FLOW))
    }

    #[inline]
    pub fn version(&self) -> u8 {
        (self.ver_tc_flow() >> 28) as u8
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    #[inline]
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PAYLOAD_LEN.start)
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    pub fn src_bytes(&self) -> [u8; 16] {
        get_array(self.buffer.as_ref(), field::SRC_ADDR)
    }

    #[inline]
    pub fn dst_bytes(&self) -> [u8; 16] {
        get_array(self.buffer.as_ref(), field::DST_ADDR)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src_bytes())
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst_bytes())
    }

    /// The payload as given by the payload length. Needs `check_payload_len`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, the traffic class and the flow label.
    #[inline]
    pub fn set_ver_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let w = (6u32 << 28) | ((traffic_class as u32) << 20) | (flow_label & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }

    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::PAYLOAD_LEN.start, v)
    }

    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_then_read() {
        let mut buf = [0u8; 48];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_ver_tc_flow(0xb8, 0x12345);
        p.set_payload_len(8);
        p.set_next_header(17);
        p.set_hop_limit(64);
        p.set_src_addr("2001:db8::1".parse().unwrap());
        p.set_dst_addr("2001:db8::2".parse().unwrap());
        assert_eq!(&buf[..8], &[0x6b, 0x81, 0x23, 0x45, 0, 8, 17, 64]);
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.check_payload_len(), Ok(()));
        assert_eq!(p.payload().len(), 8);
        assert_eq!(Ipv6Packet::new_checked(&buf[..39]).err(), Some(Error::Truncated));
        assert_eq!(Ipv6Packet::new_unchecked(&buf[..47]).check_payload_len(), Err(Error::Truncated));
    }
}
