//! `--group`: membership of the underlay multicast group, held for the daemon's life.
//!
//! The kernel's vxlan device joins its `group` on `dev` when it comes up, so the
//! underlay (IGMP snooping switches, multicast routers) forwards the group's traffic
//! to the host. vxdp does the same with a UDP socket that only holds the membership
//! (`IP_ADD_MEMBERSHIP` with the underlay's ifindex): it reads nothing, since the
//! underlay's XDP program steers the group's VXLAN to the workers before the stack. The
//! kernel leaves the group when the socket closes, also when vxdp is killed.

use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;

/// Membership of one group on one interface, until dropped.
#[derive(Debug)]
pub struct Membership {
    _socket: UdpSocket,
}

impl Membership {
    /// Joins `group` on interface `ifindex`, announcing it from `local`.
    pub fn join(group: Ipv4Addr, local: Ipv4Addr, ifindex: u32) -> io::Result<Membership> {
        // Bound to loopback on a port of its own: the socket is never a receiver of
        // the underlay's traffic, only the holder of the membership.
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let req = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: u32::from_ne_bytes(group.octets()) },
            imr_address: libc::in_addr { s_addr: u32::from_ne_bytes(local.octets()) },
            imr_ifindex: ifindex as libc::c_int,
        };
        // SAFETY: `req` is a valid `ip_mreqn` that lives across the call, its size is
        // passed, and the descriptor is an open UDP socket owned by `socket`.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_ADD_MEMBERSHIP,
                (&req as *const libc::ip_mreqn).cast(),
                std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Membership { _socket: socket })
    }
}
