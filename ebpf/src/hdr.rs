//! The header layouts the classifier reads, from [`vxdp_common::hdr`] (the same numbers
//! the workers' parser uses), plus the few values it compares against raw loads:
//! those carry a `_BE` suffix and are in network byte order as read natively from the
//! packet, so the comparison needs no swap.

pub use vxdp_common::hdr::{eth, ethertype, ip_proto, ipv4, ipv6, is_vlan_tpid, udp, vlan};

/// The IPv4 EtherType as loaded raw from the packet.
pub const ETHERTYPE_IPV4_BE: u16 = ethertype::IPV4.to_be();
/// The IPv6 EtherType as loaded raw from the packet.
pub const ETHERTYPE_IPV6_BE: u16 = ethertype::IPV6.to_be();
