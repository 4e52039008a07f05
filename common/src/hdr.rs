//! Header layouts both sides parse: the XDP classifier (`ebpf/`) and the workers'
//! typed views (`dataplane/src/wire/`). One copy of each number, so the two cannot
//! disagree on what a frame is.
//!
//! Offsets are from the start of their own header. Values (EtherTypes, protocol
//! numbers, flags, the port) are in host byte order; the XDP program swaps what it
//! loads, or swaps a constant once at compile time.
#![forbid(unsafe_code)]

/// Ethernet II (IEEE 802.3 framing with an EtherType).
pub mod eth {
    /// Length of a MAC address.
    pub const ADDR_LEN: usize = 6;
    pub const DESTINATION: usize = 0;
    pub const SOURCE: usize = 6;
    pub const ETHERTYPE: usize = 12;
    /// Length of the untagged header.
    pub const HEADER_LEN: usize = 14;
}

/// EtherType values vxdp looks at.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    /// 802.1Q customer VLAN tag (TPID).
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (TPID; the outer tag of QinQ).
    pub const QINQ: u16 = 0x88a8;
    pub const IPV6: u16 = 0x86dd;
}

/// Whether `ethertype` (host order) announces a VLAN tag vxdp parses: 802.1Q or
/// 802.1ad. vxdp reads at most one tag, of either kind, after the outer Ethernet header.
#[inline(always)]
pub const fn is_vlan_tpid(ethertype: u16) -> bool {
    ethertype == ethertype::VLAN || ethertype == ethertype::QINQ
}

/// One 802.1Q / 802.1ad tag: offsets from the end of the outer EtherType.
pub mod vlan {
    /// Priority (3 bits), DEI (1 bit), VLAN id (12 bits).
    pub const TCI: usize = 0;
    /// The EtherType of what follows the tag.
    pub const ETHERTYPE: usize = 2;
    /// Length of one tag.
    pub const LEN: usize = 4;
}

/// IPv4 (RFC 791), the fixed header.
pub mod ipv4 {
    /// Version (high nibble) and IHL in 32-bit words (low nibble).
    pub const VER_IHL: usize = 0;
    /// DSCP (6 bits) and ECN (2 bits), formerly TOS.
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    /// Flags (3 bits: reserved, DF, MF) and fragment offset (13 bits, 8-byte units).
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    /// Length of the header without options (IHL 5).
    pub const HEADER_LEN: usize = 20;
    /// Length of an address.
    pub const ADDR_LEN: usize = 4;
    /// The DF bit of the (host-order) flags/fragment-offset word.
    pub const FLAG_DF: u16 = 0x4000;
    /// The MF bit of the flags/fragment-offset word.
    pub const FLAG_MF: u16 = 0x2000;
    /// The fragment-offset bits of the flags/fragment-offset word.
    pub const FRAG_OFFSET_MASK: u16 = 0x1fff;
}

/// IPv6 (RFC 8200), the fixed header.
pub mod ipv6 {
    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 40;
    /// Length of an address.
    pub const ADDR_LEN: usize = 16;
}

/// IP protocol numbers (IPv4 protocol, IPv6 next header) vxdp looks at.
pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const DCCP: u8 = 33;
    /// The IPv6 Fragment extension header.
    pub const IPV6_FRAGMENT: u8 = 44;
    pub const ICMPV6: u8 = 58;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const SCTP: u8 = 132;
    pub const UDPLITE: u8 = 136;
}

/// UDP (RFC 768).
pub mod udp {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
    /// Length of the header.
    pub const HEADER_LEN: usize = 8;
}

/// VXLAN (RFC 7348 §5).
pub mod vxlan {
    /// The flags byte, first of the first 32-bit word (Linux `vx_flags`).
    pub const FLAGS: usize = 0;
    /// The 24-bit VNI, first three bytes of the second 32-bit word (Linux `vx_vni`).
    pub const VNI: usize = 4;
    /// Length of the header.
    pub const HEADER_LEN: usize = 8;
    /// The I flag in the flags byte: the VNI is valid (Linux `VXLAN_HF_VNI`).
    pub const FLAG_I: u8 = 0x08;
    /// IANA-assigned UDP port (Linux `IANA_VXLAN_UDP_PORT`).
    pub const IANA_PORT: u16 = 4789;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_tag_types_and_nothing_else() {
        assert!(is_vlan_tpid(0x8100));
        assert!(is_vlan_tpid(0x88a8));
        for other in [0x0800, 0x86dd, 0x0806, 0x9100, 0x0081, 0xa888, 0] {
            assert!(!is_vlan_tpid(other), "{other:#06x}");
        }
    }

    #[test]
    fn fixed_headers_end_where_their_last_field_does() {
        assert_eq!(eth::ETHERTYPE + 2, eth::HEADER_LEN);
        assert_eq!(vlan::ETHERTYPE + 2, vlan::LEN);
        assert_eq!(ipv4::DST + ipv4::ADDR_LEN, ipv4::HEADER_LEN);
        assert_eq!(ipv6::DST + ipv6::ADDR_LEN, ipv6::HEADER_LEN);
        assert_eq!(udp::CHECKSUM + 2, udp::HEADER_LEN);
        assert_eq!(vxlan::VNI + 4, vxlan::HEADER_LEN);
    }
}
