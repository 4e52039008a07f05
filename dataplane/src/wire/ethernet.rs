//! Ethernet II frames and the 802.1Q / 802.1ad tag.

use super::{get_array, get_u16, set_u16, view_common, Error, Field, Rest};
use vxdp_common::hdr::{eth, vlan};

/// EtherType values vxdp looks at (shared with the XDP program).
pub use vxdp_common::hdr::ethertype;
/// Whether an EtherType announces a tag vxdp parses (802.1Q or 802.1ad), the same
/// predicate the XDP program steers by.
pub use vxdp_common::hdr::is_vlan_tpid;

/// Named byte ranges of the Ethernet II header.
pub mod field {
    use super::{eth, Field, Rest};
    pub const DESTINATION: Field = eth::DESTINATION..eth::DESTINATION + eth::ADDR_LEN;
    pub const SOURCE: Field = eth::SOURCE..eth::SOURCE + eth::ADDR_LEN;
    pub const ETHERTYPE: Field = eth::ETHERTYPE..eth::ETHERTYPE + 2;
    pub const PAYLOAD: Rest = eth::HEADER_LEN..;
}

/// Length of the untagged Ethernet header.
pub const HEADER_LEN: usize = eth::HEADER_LEN;

/// An Ethernet address.
pub type MacAddr = [u8; eth::ADDR_LEN];

/// Whether a MAC address is a unicast, non-zero address (Linux `is_valid_ether_addr`).
#[inline]
pub fn is_unicast(mac: &MacAddr) -> bool {
    mac[0] & 1 == 0 && *mac != [0; 6]
}

/// A view of an Ethernet II frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

view_common!(EthernetFrame);

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Checks that the buffer holds the 14-byte header.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        get_array(self.buffer.as_ref(), field::DESTINATION)
    }

    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        get_array(self.buffer.as_ref(), field::SOURCE)
    }

    #[inline]
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    /// Everything after the 14-byte header (a VLAN tag, if any, is part of it).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    #[inline]
    pub fn set_dst_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&mac);
    }

    #[inline]
    pub fn set_src_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&mac);
    }

    #[inline]
    pub fn set_ethertype(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::ETHERTYPE.start, v)
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// Named byte ranges of an 802.1Q / 802.1ad tag, relative to the end of the outer
/// EtherType (that is, to [`EthernetFrame::payload`]).
pub mod vlan_field {
    use super::{vlan, Field, Rest};
    /// Priority (3 bits), DEI (1 bit), VLAN id (12 bits).
    pub const TCI: Field = vlan::TCI..vlan::TCI + 2;
    /// The EtherType of what follows the tag.
    pub const ETHERTYPE: Field = vlan::ETHERTYPE..vlan::ETHERTYPE + 2;
    pub const PAYLOAD: Rest = vlan::LEN..;
}

/// Length of one tag (802.1Q or 802.1ad: both are a TPID and a TCI).
pub const VLAN_TAG_LEN: usize = vlan::LEN;

/// A view of an 802.1Q or 802.1ad tag and what follows it (the outer EtherType,
/// checked with [`is_vlan_tpid`], says which).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlanHeader<T: AsRef<[u8]>> {
    buffer: T,
}

view_common!(VlanHeader);

impl<T: AsRef<[u8]>> VlanHeader<T> {
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < VLAN_TAG_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn tci(&self) -> u16 {
        get_u16(self.buffer.as_ref(), vlan_field::TCI.start)
    }

    #[inline]
    pub fn vlan_id(&self) -> u16 {
        self.tci() & 0x0fff
    }

    #[inline]
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), vlan_field::ETHERTYPE.start)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[vlan_field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanHeader<T> {
    #[inline]
    pub fn set_tci(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), vlan_field::TCI.start, v)
    }

    #[inline]
    pub fn set_ethertype(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), vlan_field::ETHERTYPE.start, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; 18] = [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x81, 0x00, 0x20, 0x64, 0x08, 0x00];

    #[test]
    fn reads_tagged_header() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.src_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.ethertype(), ethertype::VLAN);
        let v = VlanHeader::new_checked(f.payload()).unwrap();
        assert_eq!(v.vlan_id(), 100);
        assert_eq!(v.tci() >> 13, 1);
        assert_eq!(v.ethertype(), ethertype::IPV4);
        assert!(v.payload().is_empty());
    }

    #[test]
    fn short_buffers_are_truncated() {
        for n in 0..HEADER_LEN {
            assert_eq!(EthernetFrame::new_checked(&FRAME[..n]), Err(Error::Truncated));
        }
        assert_eq!(VlanHeader::new_checked(&FRAME[14..17]), Err(Error::Truncated));
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = [0u8; 14];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst_addr([1, 2, 3, 4, 5, 6]);
        f.set_src_addr([7, 8, 9, 10, 11, 12]);
        f.set_ethertype(ethertype::IPV6);
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x86, 0xdd]);
        assert!(is_unicast(&[2, 0, 0, 0, 0, 1]));
        assert!(!is_unicast(&[1, 0, 0x5e, 0, 0, 1]));
        assert!(!is_unicast(&[0; 6]));
    }
}
