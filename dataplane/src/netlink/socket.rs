//! The raw NETLINK_ROUTE socket: open, bind, send to the kernel, receive whole datagrams.
//!
//! All socket `unsafe` of the netlink module lives here.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_ADD_MEMBERSHIP: libc::c_int = 1;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

/// One bound NETLINK_ROUTE socket.
#[derive(Debug)]
pub struct NlSocket {
    fd: OwnedFd,
}

impl NlSocket {
    pub fn open(nonblocking: bool) -> io::Result<NlSocket> {
        let mut ty = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        if nonblocking {
            ty |= libc::SOCK_NONBLOCK;
        }
        // SAFETY: plain socket(2) call with constant arguments; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, ty, libc::NETLINK_ROUTE) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = NlSocket { fd };
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `addr` is a valid sockaddr_nl and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                sock.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // Extended acks give the kernel's reason in errors; capped acks keep them small.
        // Both are best effort (old kernels lack them).
        let _ = sock.set_int(SOL_NETLINK, NETLINK_EXT_ACK, 1);
        let _ = sock.set_int(SOL_NETLINK, NETLINK_CAP_ACK, 1);
        Ok(sock)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn set_int(&self, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
        // SAFETY: `v` outlives the call and the length passed is its size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&v as *const libc::c_int).cast(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn add_membership(&self, group: u32) -> io::Result<()> {
        self.set_int(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group as libc::c_int)
    }

    /// Bounds every blocking receive; a timeout shows as `WouldBlock`.
    pub fn set_recv_timeout(&self, t: Duration) -> io::Result<()> {
        let tv = libc::timeval { tv_sec: t.as_secs() as libc::time_t, tv_usec: t.subsec_micros() as libc::suseconds_t };
        // SAFETY: `tv` outlives the call and the length passed is its size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends one request to the kernel (port id 0).
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value (the kernel).
        let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: `buf` and `addr` are valid for the lengths passed.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    0,
                    (&addr as *const libc::sockaddr_nl).cast(),
                    mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return if n as usize == buf.len() {
                    Ok(())
                } else {
                    Err(io::Error::new(io::ErrorKind::WriteZero, "short netlink send"))
                };
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Receives one whole datagram into `buf` (grown to fit) and returns its length and
    /// whether it came from the kernel (sender port id 0).
    pub fn recv(&self, buf: &mut Vec<u8>, flags: libc::c_int) -> io::Result<(usize, bool)> {
        // Peek with MSG_TRUNC to learn the datagram's real size, so nothing is cut off.
        let want = self.recv_raw(buf, flags | libc::MSG_PEEK | libc::MSG_TRUNC)?.0;
        if want > buf.len() {
            buf.resize(want, 0);
        }
        let (n, from_kernel) = self.recv_raw(buf, flags)?;
        if n > buf.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "netlink datagram truncated"));
        }
        Ok((n, from_kernel))
    }

    fn recv_raw(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<(usize, bool)> {
        loop {
            // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
            let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
            let mut alen = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // SAFETY: `buf` is valid for writes of its length, `addr`/`alen` describe a
            // sockaddr_nl-sized buffer; with MSG_TRUNC the kernel still writes at most `len`.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags,
                    (&mut addr as *mut libc::sockaddr_nl).cast(),
                    &mut alen,
                )
            };
            if n >= 0 {
                return Ok((n as usize, addr.nl_pid == 0));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}
