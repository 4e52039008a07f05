//! VXLAN (RFC 7348) encapsulation and decapsulation on caller-owned buffers.
//!
//! Pure functions, no I/O, no allocation: [`decap`] validates a frame received on the
//! underlay and says where its inner frame is ([`Decap`]); [`encap`] writes a
//! precomputed outer header ([`OuterTemplate`]) in front of an inner frame in place.
//! [`flow_hash`] and [`SrcPortRange`] pick the outer UDP source port the way Linux's
//! `udp_flow_src_port` does. Behaviour follows the Linux `vxlan` driver wherever the
//! wire shows it; each such choice names the kernel function it mirrors.
#![forbid(unsafe_code)]

mod csum;
mod decap;
mod ecn;
mod encap;
pub mod frag;
pub mod pmtu;
pub mod proxy;
mod srcport;
#[cfg(test)]
mod testutil;
mod vni;

pub use csum::complete_inner_csum;
pub use decap::{decap, Decap, DecapConfig};
pub use ecn::{decap_ecn, set_outer_bits};
pub use encap::{encap, EncapParams, OuterTemplate};
pub use srcport::{flow_hash, SrcPortRange};
pub use vni::{ParseVniError, Vni};

use crate::wire::ethernet;
use crate::wire::ipv4::{self};
use crate::wire::ipv6::{self};
use crate::wire::udp::{self};
use crate::wire::vxlan::{self as vxlan_hdr};

/// IANA-assigned VXLAN UDP port (Linux `IANA_VXLAN_UDP_PORT`).
pub const DEFAULT_PORT: u16 = vxdp_common::hdr::vxlan::IANA_PORT;

/// Outer header bytes in front of the inner frame over IPv4: 14 + 20 + 8 + 8.
pub const OUTER_V4_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + vxlan_hdr::HEADER_LEN;
/// Outer header bytes in front of the inner frame over IPv6: 14 + 40 + 8 + 8.
pub const OUTER_V6_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN + vxlan_hdr::HEADER_LEN;
const _: () = assert!(OUTER_V4_LEN == 50 && OUTER_V6_LEN == 70);

/// Offsets of the outer headers inside an untagged IPv4 outer header.
const V4_IP: usize = ethernet::HEADER_LEN;
const V4_UDP: usize = V4_IP + ipv4::HEADER_LEN;
const V4_VXLAN: usize = V4_UDP + udp::HEADER_LEN;
/// UDP length of a VXLAN datagram without its inner frame.
const UDP_OVERHEAD: usize = udp::HEADER_LEN + vxlan_hdr::HEADER_LEN;
/// Longest inner frame whose outer IPv4 total length still fits 16 bits.
pub const MAX_INNER_V4: usize = u16::MAX as usize - ipv4::HEADER_LEN - UDP_OVERHEAD;
