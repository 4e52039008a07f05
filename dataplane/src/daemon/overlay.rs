//! The overlay netdev: a veth pair whose user end (`--name`) is bridged or addressed
//! like a kernel `vxlan0`, and whose other end vxdp's sockets and XDP program serve.
#![forbid(unsafe_code)]

use crate::netlink::Netlink;

/// Name of vxdp's own end of the overlay veth pair: `vxdp-NAME` when that fits an
/// interface name (15 bytes), else `vx-` and 12 hex digits of a hash of NAME, so that
/// two long names never share a peer (truncating them did: `tenant-aaa1` and
/// `tenant-aaa2` both gave `vxdp-tenant-aaa`, and the second instance deleted the
/// first one's live pair).
pub fn peer_name(name: &str) -> String {
    let p = format!("vxdp-{name}");
    if p.len() <= 15 {
        return p;
    }
    // FNV-1a, 64 bits, of which 48 are kept: stable across releases and machines.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("vx-{:012x}", h >> 16)
}

/// Whether `peer` (an existing device named like our peer end) is vxdp's overlay pair
/// for `name`: a veth linked to the device `name`. Anything else is not ours to delete.
pub(super) fn is_our_pair(nl: &mut Netlink, name: &str, peer: &crate::netlink::Link) -> bool {
    match nl.link(name) {
        Ok(user_end) => peer.link == Some(user_end.index) && user_end.link == Some(peer.index),
        Err(_) => false,
    }
}

/// Deletes the overlay veth pair on drop (deleting one end removes both).
pub(super) struct OverlayLink {
    pub(super) name: String,
}

impl Drop for OverlayLink {
    fn drop(&mut self) {
        match Netlink::open().and_then(|mut nl| nl.delete_link(&self.name)) {
            Ok(()) => log::info!("removed overlay device {}", self.name),
            Err(e) => log::warn!("could not remove overlay device {}: {e}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::peer_name;

    #[test]
    fn peer_names_fit_and_long_names_do_not_collide() {
        assert_eq!(peer_name("vx0"), "vxdp-vx0");
        assert_eq!(peer_name("tenant1234"), "vxdp-tenant1234");
        let (a, b) = (peer_name("tenant-aaa1"), peer_name("tenant-aaa2"));
        assert_ne!(a, b);
        for p in [&a, &b, &peer_name("a-name-of-15ch")] {
            assert!(p.len() <= 15 && p.starts_with("vx-"), "{p}");
        }
        assert_eq!(peer_name("tenant-aaa1"), a, "stable");
    }
}
