//! [`ChangeMonitor`]: wakes the control thread when links, neighbours or routes change.

use super::socket::NlSocket;
use super::wire::{RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_LINK, RTNLGRP_NEIGH};
use super::NetlinkError;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Receive buffer asked for, so bursts (a neighbour flush) rarely overrun.
const RCVBUF: libc::c_int = 1 << 20;
/// Datagrams drained per `wait`, so a notification storm cannot hold the caller forever.
const MAX_DRAIN: usize = 4096;

/// A socket subscribed to RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE and
/// RTNLGRP_LINK. It only says *that* something changed; the caller re-reads what it
/// needs. A lost notification (socket overrun, ENOBUFS) also counts as a change.
#[derive(Debug)]
pub struct ChangeMonitor {
    sock: NlSocket,
    buf: Vec<u8>,
}

impl ChangeMonitor {
    pub fn open() -> Result<Self, NetlinkError> {
        let io_err = |source| NetlinkError::Io { op: "subscribing to rtnetlink change notifications".into(), source };
        let sock = NlSocket::open(true).map_err(io_err)?;
        for group in [RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE] {
            sock.add_membership(group).map_err(io_err)?;
        }
        // Best effort: SO_RCVBUF is capped by net.core.rmem_max, which is fine.
        let _ = sock.set_int(libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF);
        Ok(ChangeMonitor { sock, buf: vec![0; 32 * 1024] })
    }

    /// Returns true if any change notification arrived within `timeout` (and drains
    /// everything pending), false on timeout.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, NetlinkError> {
        if self.drain()? {
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.as_millis().min(i32::MAX as u128) as libc::c_int;
            let ms = if ms == 0 && !left.is_zero() { 1 } else { ms };
            let mut pfd = libc::pollfd { fd: self.sock.fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: `pfd` is one valid pollfd for the duration of the call.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted && !left.is_zero() {
                    continue;
                }
                return Err(NetlinkError::Io { op: "waiting for rtnetlink notifications".into(), source: e });
            }
            if rc > 0 && self.drain()? {
                return Ok(true);
            }
            if left.is_zero() || Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    pub fn fd(&self) -> RawFd {
        self.sock.fd()
    }

    /// Reads every pending datagram; true if there was any (or some were lost).
    fn drain(&mut self) -> Result<bool, NetlinkError> {
        let mut any = false;
        for _ in 0..MAX_DRAIN {
            match self.sock.recv(&mut self.buf, libc::MSG_DONTWAIT) {
                Ok((_, true)) => any = true,
                Ok((_, false)) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(any),
                // The socket overran: notifications were lost, so assume a change.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => any = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(NetlinkError::Io { op: "reading rtnetlink notifications".into(), source }),
            }
        }
        Ok(any)
    }
}
