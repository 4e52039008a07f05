//! The underlay guard: whose VXLAN is taken at all (`--accept`, the host's own
//! addresses), and which inner sources the express path must leave to the workers so
//! they can drop them as the kernel's `vxlan_snoop` does. See [`vxdp_common::guard`].

use crate::Frame;
use aya_ebpf::{
    macros::map,
    maps::{lpm_trie::Key, Array, LpmTrie},
};
use vxdp_common::guard::*;
use vxdp_common::hdr::{eth, ipv4};
use vxdp_common::XdpCounter;

#[map(name = "VXDP_G_CONFIG")]
pub static G_CONFIG: Array<GuardConfig> = Array::with_max_entries(1, 0);

#[map(name = "VXDP_G_ACCEPT_V4")]
pub static G_ACCEPT_V4: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(MAX_ACCEPT_V4, 0);

/// Whether VXLAN steered to a local VTEP (IP header at `l3`; `v4` false for IPv6) comes
/// from a source the accept trie takes. Without the filter on, everything is taken.
/// IPv6 sources are refused when it is on: vxdp has no IPv6 underlay yet.
#[inline(always)]
pub fn source_accepted(frame: &Frame, l3: usize, v4: bool) -> bool {
    let Some(cfg) = G_CONFIG.get(0) else { return true };
    if cfg.flags & GUARD_FILTER == 0 {
        return true;
    }
    if !v4 {
        return false;
    }
    let Some(src) = frame.read::<4>(l3 + ipv4::SRC) else { return false };
    matches!(G_ACCEPT_V4.get(Key::new(32, src)), Some(&ACCEPT))
}

/// Express decap, inner frame at `inner`: a frame from the overlay device's own MAC (a
/// loop) goes to the workers, which drop it; so does, with learning on, an invalid
/// (zero or multicast) source MAC, which the kernel drops too.
#[inline(always)]
pub fn inner_source(frame: &Frame, inner: usize, learning: bool) -> Result<(), XdpCounter> {
    let mac = frame.read::<6>(inner + eth::SOURCE).ok_or(XdpCounter::ToWorkersOther)?;
    if learning && (mac[0] & 1 != 0 || (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0) {
        return Err(XdpCounter::ToWorkersSnoop);
    }
    let Some(cfg) = G_CONFIG.get(0) else { return Ok(()) };
    if cfg.flags & GUARD_OWN_MAC != 0 && mac == cfg.own_mac {
        return Err(XdpCounter::ToWorkersSnoop);
    }
    Ok(())
}

/// With learning on, a frame whose source MAC a static or store entry pins behind
/// another VTEP (`pinned_vtep`, 0 when the entry has several remotes) goes to the
/// workers, which drop it as `vxlan_snoop` does.
#[inline(always)]
pub fn pinned_elsewhere(pinned_vtep: u32, vtep: u32) -> Result<(), XdpCounter> {
    if pinned_vtep != vtep {
        Err(XdpCounter::ToWorkersSnoop)
    } else {
        Ok(())
    }
}
