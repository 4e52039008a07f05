//! A packet capture on one interface of a namespace: an `AF_PACKET` socket created
//! inside it (every frame, both directions), drained without blocking. The oracle for
//! "this frame never reached that host".

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::netns::{in_netns, Netns};

/// Frames seen on one interface since [`Capture::start`].
pub struct Capture {
    fd: OwnedFd,
}

impl Capture {
    /// Starts capturing every frame on `dev` in `ns`.
    pub fn start(ns: &Netns, dev: &str) -> Capture {
        let dev = std::ffi::CString::new(dev).expect("device name");
        let fd = in_netns(ns, || {
            let proto = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain socket(2) call; the result is checked.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK, proto.into()) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: fd is a fresh socket we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: if_nametoindex reads a NUL-terminated string.
            let ifindex = unsafe { libc::if_nametoindex(dev.as_ptr()) };
            if ifindex == 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            // SAFETY: sll is a valid sockaddr_ll of the length given.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(fd)
        })
        .unwrap_or_else(|e| panic!("capture on {dev:?} in {}: {e}", ns.name()));
        Capture { fd }
    }

    /// Sends one raw frame on the interface (as written: addresses, tags and all).
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: frame is valid for reads of its length; the socket is bound.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(n, frame.len() as isize, "raw send: {}", std::io::Error::last_os_error());
    }

    /// Every frame the interface received (not those it sent) since the last call (at
    /// most 100,000).
    pub fn drain(&self) -> Vec<Vec<u8>> {
        self.drain_with(false)
    }

    /// Every frame the interface received or sent since the last call.
    pub fn drain_all(&self) -> Vec<Vec<u8>> {
        self.drain_with(true)
    }

    fn drain_with(&self, outgoing: bool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        for _ in 0..100_000 {
            // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buf is valid for writes of its length; from/len describe a
            // writable sockaddr_ll.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n <= 0 {
                break;
            }
            if outgoing || from.sll_pkttype != libc::PACKET_OUTGOING {
                out.push(buf[..n as usize].to_vec());
            }
        }
        out
    }
}

/// Whether `f` is an ARP request for IPv4 `target`.
pub fn is_arp_request_for(f: &[u8], target: [u8; 4]) -> bool {
    f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 1] && f[38..42] == target
}

/// Whether `f` is an IPv6 neighbour solicitation for `target`.
pub fn is_solicitation_for(f: &[u8], target: [u8; 16]) -> bool {
    f.len() >= 78 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 135 && f[62..78] == target
}
