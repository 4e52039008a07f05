//! Header field offsets and constants, named once. Offsets are from the start of their
//! header; multi-byte constants with a `_BE` suffix are in network byte order as read
//! natively from the packet, so they compare against raw loads without swapping.

/// Ethernet II.
pub mod eth {
    pub const ETHERTYPE: usize = 12;
    pub const LEN: usize = 14;
    pub const TYPE_IPV4_BE: u16 = 0x0800u16.to_be();
    pub const TYPE_IPV6_BE: u16 = 0x86ddu16.to_be();
    /// 802.1Q customer tag.
    pub const TYPE_VLAN_BE: u16 = 0x8100u16.to_be();
    /// 802.1ad service tag.
    pub const TYPE_QINQ_BE: u16 = 0x88a8u16.to_be();
}

/// One 802.1Q/802.1ad tag, following the outer Ethernet header.
pub mod vlan {
    /// Offset of the encapsulated EtherType within the tag.
    pub const ETHERTYPE: usize = 2;
    pub const LEN: usize = 4;
}

/// IPv4 (RFC 791).
pub mod ipv4 {
    pub const VER_IHL: usize = 0;
    pub const FLAGS_FRAG: usize = 6;
    pub const PROTOCOL: usize = 9;
    pub const DST: usize = 16;
    pub const MIN_LEN: usize = 20;
    pub const PROTO_UDP: u8 = 17;
    /// More-fragments flag, in the host-order flags/fragment-offset field.
    pub const FLAG_MF: u16 = 0x2000;
    pub const FRAG_OFFSET_MASK: u16 = 0x1fff;
}

/// IPv6 fixed header (RFC 8200).
pub mod ipv6 {
    pub const VER_TC: usize = 0;
    pub const NEXT_HEADER: usize = 6;
    pub const DST: usize = 24;
    pub const LEN: usize = 40;
    pub const NH_UDP: u8 = 17;
    pub const NH_FRAGMENT: u8 = 44;
}

/// UDP (RFC 768).
pub mod udp {
    pub const DST_PORT: usize = 2;
    pub const LEN: usize = 8;
}
