//! Zero-copy typed views over the headers vxdp reads and writes: Ethernet (with one
//! 802.1Q or 802.1ad tag), IPv4, IPv6, UDP and the VXLAN header, plus the internet
//! checksum.
//!
//! Each view wraps a caller-owned buffer (`T: AsRef<[u8]>`, mutable setters when
//! `T: AsMut<[u8]>`). Field offsets are named once in each module's `field` module,
//! from the layouts in [`vxdp_common::hdr`] that the XDP program parses by too;
//! `new_checked` validates the length once, after which accessors index without
//! further checks failing. Nothing here allocates or knows about VXLAN policy: that is
//! [`crate::vxlan`].
#![forbid(unsafe_code)]

pub mod checksum;
pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod udp;
pub mod vxlan;

pub use ethernet::{EthernetFrame, VlanHeader};
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use udp::UdpDatagram;
pub use vxlan::VxlanHeader;

use crate::counters::DropReason;
use std::ops::{Range, RangeFrom};

/// A fixed-size field: a byte range inside a header.
pub type Field = Range<usize>;
/// The rest of a buffer from an offset on.
pub type Rest = RangeFrom<usize>;

/// Why a buffer is not a valid header of the kind asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header (or than a length field says).
    #[error("truncated header")]
    Truncated,
    /// A length or version field holds an impossible value.
    #[error("malformed header")]
    Malformed,
}

impl From<Error> for DropReason {
    fn from(e: Error) -> Self {
        match e {
            Error::Truncated => DropReason::Truncated,
            Error::Malformed => DropReason::BadHeader,
        }
    }
}

/// Reads a big-endian u16 at `at`. Callers have checked the length.
#[inline(always)]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
pub(crate) fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn get_array<const N: usize>(b: &[u8], f: Field) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[f]);
    out
}

/// Defines the common constructor/accessor boilerplate of a view type.
macro_rules! view_common {
    ($ty:ident) => {
        impl<T: AsRef<[u8]>> $ty<T> {
            /// Wraps a buffer without checking its length; accessors may panic on a
            /// short buffer. Use [`Self::new_checked`] for untrusted input.
            #[inline(always)]
            pub const fn new_unchecked(buffer: T) -> Self {
                $ty { buffer }
            }

            /// Wraps a buffer after [`Self::check_len`].
            #[inline]
            pub fn new_checked(buffer: T) -> Result<Self, crate::wire::Error> {
                let v = Self::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }

            /// The wrapped buffer.
            #[inline(always)]
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// The whole wrapped buffer, header included.
            #[inline(always)]
            pub fn as_bytes(&self) -> &[u8] {
                self.buffer.as_ref()
            }
        }
    };
}
pub(crate) use view_common;
