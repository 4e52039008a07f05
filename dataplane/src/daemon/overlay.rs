//! The overlay netdev: a veth pair whose user end (`--name`) is bridged or addressed
//! like a kernel `vxlan0`, and whose other end vxdp's sockets and XDP program serve.
#![forbid(unsafe_code)]

use crate::netlink::Netlink;

/// Name of vxdp's own end of the overlay veth pair.
pub fn peer_name(name: &str) -> String {
    let mut p = format!("vxdp-{name}");
    p.truncate(15);
    p
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
