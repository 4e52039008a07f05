//! The underlay guard's maps: which outer sources VXLAN is accepted from (`--accept`,
//! the host's own addresses) and the inner-source checks the kernel's `vxlan_snoop`
//! makes (the overlay device's own MAC). Userspace fills them
//! (`dataplane/src/guard.rs`); the underlay program reads them (`ebpf/src/guard.rs`).
//!
//! The accept map is an LPM trie of IPv4 prefixes whose value says [`ACCEPT`] or
//! [`REJECT`]: the longest matching prefix decides, and no match rejects. `--accept any`
//! is `0.0.0.0/0 → ACCEPT`; the host's own addresses are `/32 → REJECT` in every mode,
//! so they win over any allow prefix (the kernel's `fib_validate_source` refuses a
//! local address as the source of a received packet).

/// Most prefixes the accept trie holds (known VTEPs, `--accept` CIDRs, own addresses).
pub const MAX_ACCEPT_V4: u32 = 65_536;

/// Accept-trie value: VXLAN from this prefix is taken.
pub const ACCEPT: u32 = 1;
/// Accept-trie value: VXLAN from this prefix is dropped (counted `xdp_drop_source_rejected`).
pub const REJECT: u32 = 0;

/// [`GuardConfig::flags`]: the accept trie decides every steered frame's source.
pub const GUARD_FILTER: u32 = 1 << 0;
/// [`GuardConfig::flags`]: `own_mac` holds the overlay device's MAC; the express path
/// leaves frames from it to the workers, which drop them (a loop).
pub const GUARD_OWN_MAC: u32 = 1 << 1;

/// The guard's settings, one element, written by userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardConfig {
    /// `GUARD_*` bits; zero: every source is taken (the programs as without the guard).
    pub flags: u32,
    /// The overlay device's MAC.
    pub own_mac: [u8; 6],
    /// Always zero.
    pub pad: [u8; 2],
}

#[cfg(feature = "user")]
// SAFETY: repr(C), Copy, integer fields only: 4 + 6 + 2 = 12 bytes, no padding.
unsafe impl aya::Pod for GuardConfig {}

#[cfg(test)]
mod tests {
    #[test]
    fn layout_has_no_padding() {
        assert_eq!(core::mem::size_of::<super::GuardConfig>(), 12);
    }
}
