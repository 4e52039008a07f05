//! AF_XDP sockets: bind, socket options, kernel statistics, and the batch operations on
//! a socket's four rings, which move [`Frame`] handles in and out of userspace.
//!
//! With [`umem`](super::umem) and `ring`, this is where vxdp touches raw
//! kernel memory. Everything these modules expose outside `afxdp` is safe to call; each
//! `unsafe` block says why it holds.
//!
//! Why not xsk-rs: its `FrameDesc` keeps the descriptor address private, so a frame
//! cannot grow or shrink at its front. vxdp encapsulates by writing the outer header
//! into the headroom in front of a received frame and decapsulates by advancing the
//! address past the outer header; both need to set the TX descriptor's address
//! ([`Frame::set_span`]).
//!
//! Layout: one [`Umem`] per worker, registered on the worker's first socket (the
//! underlay) and shared (`XDP_SHARED_UMEM`) by its second (the overlay end of the
//! veth pair). Each socket has its own fill and completion rings, so a frame received
//! on one socket can be transmitted on the other without a copy. Frames are chunks of
//! [`FRAME_SIZE`] bytes in aligned mode; the kernel writes received data
//! [`RX_HEADROOM`] bytes into the chunk, leaving room for a 50-byte outer header.
//!
//! A descriptor the kernel hands back (RX or completion) that is outside the UMEM, not
//! inside one chunk, or names a chunk that was not on this socket's matching ring is
//! dropped and counted ([`XskSocket::bad_descriptors`]), never trusted.

use super::ring::Ring;
pub use super::umem::{Frame, Umem, FRAME_SIZE, RX_HEADROOM};
use super::umem::{RingTag, SocketTags};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

/// Ring sizes of one socket (powers of two).
#[derive(Clone, Copy, Debug)]
pub struct RingSizes {
    pub rx: u32,
    pub tx: u32,
    pub fill: u32,
    pub comp: u32,
}

impl Default for RingSizes {
    fn default() -> Self {
        RingSizes { rx: 2048, tx: 2048, fill: 2048, comp: 2048 }
    }
}

/// How a socket gets at its UMEM and in which mode it binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindMode {
    /// Register the UMEM's memory on this socket (`XDP_UMEM_REG`) and bind in copy
    /// mode. The same memory may be registered again on other sockets, each a UMEM of
    /// its own in the kernel's eyes, with its own mode: frames still change hands by
    /// address, because every registration sees the same bytes at the same offsets.
    Copy,
    /// Register the memory on this socket and bind `XDP_ZEROCOPY`: fails (EOPNOTSUPP)
    /// where the driver cannot, e.g. on a veth.
    ZeroCopy,
    /// Register the memory on this socket and bind with neither flag: the kernel binds
    /// zero-copy where the driver can and falls back to copy mode where it cannot
    /// (`xp_assign_dev`); [`XskSocket::bound_mode`] says which it chose.
    Auto,
    /// Share the UMEM registered on the socket `fd` (`XDP_SHARED_UMEM`), with fill and
    /// completion rings of its own; the mode is that socket's.
    SharedWith(RawFd),
}

/// The mode a socket is bound in, as the kernel reports it (`XDP_OPTIONS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundMode {
    Copy,
    ZeroCopy,
}

impl std::fmt::Display for BoundMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BoundMode::Copy => "copy",
            BoundMode::ZeroCopy => "zero-copy",
        })
    }
}

/// Kernel-side counters of one socket (XDP_STATISTICS).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct SocketStats {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

/// One AF_XDP socket bound to an interface queue, with its four rings.
pub struct XskSocket {
    fd: OwnedFd,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    fill: Ring<u64>,
    comp: Ring<u64>,
    /// This socket's fill and TX rings as owners of chunks in the UMEM.
    tags: SocketTags,
    /// The id of the UMEM the socket was bound with (the tags mean something only there).
    umem: u32,
    /// Descriptors from the RX or completion ring refused as not ours (cumulative).
    bad_descs: u64,
}

fn setsockopt<T>(fd: RawFd, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: passing a pointer to a live T and its exact size.
    let r = unsafe {
        libc::setsockopt(fd, libc::SOL_XDP, opt, (v as *const T).cast(), std::mem::size_of::<T>() as libc::socklen_t)
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the integer socket option `opt` at level `SOL_SOCKET`.
fn sol_socket(fd: RawFd, opt: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: passing a pointer to a live c_int and its exact size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads socket option `opt` (level `SOL_XDP`) into a `T`.
///
/// # Safety
///
/// `T` must be the kernel's type for `opt` (or a prefix of it) and made of plain
/// integers, so that all-zero bytes, and whatever the kernel writes, are a valid `T`.
unsafe fn getsockopt<T>(fd: RawFd, opt: libc::c_int) -> io::Result<T> {
    // SAFETY: all-zero bytes are a valid `T` (the caller's contract).
    let mut v: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: buffer and length describe `v`; the kernel writes at most `len` bytes.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_XDP, opt, (&mut v as *mut T).cast(), &mut len) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

impl XskSocket {
    /// Creates a socket on `ifindex`/`queue` in copy mode.
    ///
    /// With `shared_with: None` it registers `umem` (the first socket of a worker); with
    /// `Some(fd)` it shares the UMEM registered on that socket, with fill and completion
    /// rings of its own ([`BindMode::Copy`] and [`BindMode::SharedWith`]).
    pub fn bind(
        umem: &Umem,
        ifindex: u32,
        queue: u32,
        shared_with: Option<RawFd>,
        sizes: RingSizes,
    ) -> io::Result<XskSocket> {
        let mode = shared_with.map_or(BindMode::Copy, BindMode::SharedWith);
        XskSocket::bind_with(umem, ifindex, queue, mode, sizes)
    }

    /// Creates a socket on `ifindex`/`queue`, getting at `umem` and binding as `mode`
    /// says. A failed `XDP_ZEROCOPY` bind returns the kernel's error (EOPNOTSUPP where
    /// the driver has no zero-copy support); the caller decides whether to fall back.
    pub fn bind_with(umem: &Umem, ifindex: u32, queue: u32, mode: BindMode, sizes: RingSizes) -> io::Result<XskSocket> {
        let shared_with = match mode {
            BindMode::SharedWith(fd) => Some(fd),
            BindMode::Copy | BindMode::ZeroCopy | BindMode::Auto => None,
        };
        // SAFETY: plain socket(2) call; result checked.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let raw = fd.as_raw_fd();

        if shared_with.is_none() {
            let (addr, len) = umem.area();
            let reg =
                libc::xdp_umem_reg { addr, len, chunk_size: FRAME_SIZE, headroom: 0, flags: 0, tx_metadata_len: 0 };
            setsockopt(raw, libc::XDP_UMEM_REG, &reg)?;
        }
        setsockopt(raw, libc::XDP_UMEM_FILL_RING, &sizes.fill)?;
        setsockopt(raw, libc::XDP_UMEM_COMPLETION_RING, &sizes.comp)?;
        setsockopt(raw, libc::XDP_RX_RING, &sizes.rx)?;
        setsockopt(raw, libc::XDP_TX_RING, &sizes.tx)?;

        // SAFETY: xdp_mmap_offsets is the kernel's type for XDP_MMAP_OFFSETS, plain integers.
        let off: libc::xdp_mmap_offsets = unsafe { getsockopt(raw, libc::XDP_MMAP_OFFSETS)? };

        // SAFETY: each ring was created on `raw` above with these sizes and element types
        // (xdp_desc for RX/TX, u64 addresses for fill/completion); `off` is from `raw`.
        let (rx, tx, fill, comp) = unsafe {
            (
                Ring::map(raw, &off.rx, sizes.rx, libc::XDP_PGOFF_RX_RING as u64)?,
                Ring::map(raw, &off.tx, sizes.tx, libc::XDP_PGOFF_TX_RING as u64)?,
                Ring::map(raw, &off.fr, sizes.fill, libc::XDP_UMEM_PGOFF_FILL_RING)?,
                Ring::map(raw, &off.cr, sizes.comp, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?,
            )
        };

        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            // A socket sharing a UMEM inherits its mode and need_wakeup from the first.
            sxdp_flags: match mode {
                BindMode::Copy => libc::XDP_COPY | libc::XDP_USE_NEED_WAKEUP,
                BindMode::ZeroCopy => libc::XDP_ZEROCOPY | libc::XDP_USE_NEED_WAKEUP,
                BindMode::Auto => libc::XDP_USE_NEED_WAKEUP,
                BindMode::SharedWith(_) => libc::XDP_SHARED_UMEM,
            },
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: shared_with.unwrap_or(0) as u32,
        };
        // SAFETY: address struct and its exact size.
        let r = unsafe {
            libc::bind(
                raw,
                (&sa as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // Tags only once bound, so that retried binds do not use them up.
        let tags = umem.register_socket()?;
        Ok(XskSocket { fd, rx, tx, fill, comp, tags, umem: umem.id(), bad_descs: 0 })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The mode the kernel bound this socket in (`XDP_OPTIONS`, Linux >= 5.3).
    pub fn bound_mode(&self) -> io::Result<BoundMode> {
        // SAFETY: xdp_options is the kernel's type for XDP_OPTIONS, one u32 of flags.
        let o: libc::xdp_options = unsafe { getsockopt(self.fd.as_raw_fd(), libc::XDP_OPTIONS)? };
        Ok(if o.flags & libc::XDP_OPTIONS_ZEROCOPY != 0 { BoundMode::ZeroCopy } else { BoundMode::Copy })
    }

    /// Turns on the kernel's preferred busy polling for this socket (Linux >= 5.11):
    /// `SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL` (`usecs`) and `SO_BUSY_POLL_BUDGET`
    /// (`budget` frames per poll). Then [`busy_poll`](Self::busy_poll) runs the NAPI
    /// of the socket's queue in the caller's context, and with `napi_defer_hard_irqs`
    /// and `gro_flush_timeout` set on the device the kernel leaves that NAPI to the
    /// caller while it keeps polling, instead of running it in softirq or its thread.
    pub fn set_busy_poll(&self, usecs: u32, budget: u16) -> io::Result<()> {
        let fd = self.fd.as_raw_fd();
        sol_socket(fd, libc::SO_PREFER_BUSY_POLL, 1)?;
        sol_socket(fd, libc::SO_BUSY_POLL, usecs.min(i32::MAX as u32) as libc::c_int)?;
        sol_socket(fd, libc::SO_BUSY_POLL_BUDGET, libc::c_int::from(budget))
    }

    /// A zero-length non-blocking `recvfrom`: with busy polling on, it runs the NAPI of
    /// the socket's queue once (up to the budget), which receives into the RX ring.
    #[inline]
    pub fn busy_poll(&self) {
        self.poke_rx();
    }

    /// A zero-length non-blocking `recvfrom`: the kernel's RX-side wakeup (fill ring
    /// refill, or one NAPI pass with busy polling).
    #[inline]
    fn poke_rx(&self) {
        // SAFETY: zero-length non-blocking recvfrom on our own socket; no buffer is written.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
    }

    /// Receives up to `max` frames, appending them to `out`. Returns how many
    /// descriptors it took from the RX ring: the frames appended, plus any refused as
    /// bad (counted in [`bad_descriptors`](Self::bad_descriptors)).
    ///
    /// `umem` must be the UMEM this socket was bound with (panics otherwise).
    #[inline]
    pub fn recv(&mut self, umem: &mut Umem, out: &mut Vec<Frame>, max: usize) -> usize {
        self.check_umem(umem);
        // SAFETY: the RX ring pairs with our fill ring.
        unsafe { take(&mut self.rx, umem, self.tags.fill, out, max, &mut self.bad_descs, |d| (d.addr, d.len)) }
    }

    /// Queues frames from the front of `frames` for transmission, as many as the TX ring
    /// takes; they leave `frames` (the rest stay, in order). Returns how many were queued.
    ///
    /// Panics if a frame is not of `umem`, or `umem` is not this socket's.
    #[inline]
    pub fn send(&mut self, umem: &mut Umem, frames: &mut Vec<Frame>) -> usize {
        self.check_umem(umem);
        let want = frames.len().min(u32::MAX as usize) as u32;
        let n = self.tx.free(want).min(want);
        for (i, f) in frames.drain(..n as usize).enumerate() {
            let (addr, len) = umem.release(f, self.tags.tx);
            // SAFETY: i < n <= free; the frame was given up just above.
            unsafe { self.tx.write(i as u32, libc::xdp_desc { addr, len, options: 0 }) };
        }
        if n > 0 {
            self.tx.submit(n);
        }
        n as usize
    }

    /// Frames queued on TX that the kernel has not consumed yet.
    #[inline]
    pub fn tx_outstanding(&self) -> u32 {
        self.tx.outstanding()
    }

    /// Tells the kernel to process the TX ring, if it asked to be woken up. Copy mode
    /// sends at most a small batch (32 by default) per call, so callers loop while
    /// [`tx_outstanding`](Self::tx_outstanding) is non-zero.
    #[inline]
    pub fn kick_tx(&self) -> io::Result<()> {
        if !self.tx.needs_wakeup() {
            return Ok(());
        }
        // SAFETY: zero-length sendto on our own socket; no buffer is read.
        let r = unsafe { libc::sendto(self.fd.as_raw_fd(), ptr::null(), 0, libc::MSG_DONTWAIT, ptr::null(), 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) | Some(libc::ENETDOWN) => return Ok(()),
                _ => return Err(e),
            }
        }
        Ok(())
    }

    /// Free slots in the fill ring.
    #[inline]
    pub fn fill_free(&mut self) -> u32 {
        self.fill.free(self.fill.size)
    }

    /// Gives up to `max` frames from the back of `frames` to the kernel for reception,
    /// as many as the fill ring takes; returns how many it took.
    ///
    /// Panics if a frame is not of `umem`, or `umem` is not this socket's.
    #[inline]
    pub fn fill(&mut self, umem: &mut Umem, frames: &mut Vec<Frame>, max: usize) -> usize {
        self.check_umem(umem);
        let want = frames.len().min(max).min(u32::MAX as usize) as u32;
        let n = self.fill.free(want).min(want);
        let from = frames.len() - n as usize;
        for (i, f) in frames.drain(from..).enumerate() {
            let chunk = f.addr() - f.offset() as u64;
            let _ = umem.release(f, self.tags.fill);
            // SAFETY: i < n <= free; the frame was given up just above.
            unsafe { self.fill.write(i as u32, chunk) };
        }
        if n > 0 {
            self.fill.submit(n);
        }
        n as usize
    }

    /// If the kernel asked for a wakeup to refill (fill ring ran empty), poke it.
    #[inline]
    pub fn kick_fill(&self) {
        if self.fill.needs_wakeup() {
            self.poke_rx();
        }
    }

    /// Takes up to `max` completed TX frames back, appending them to `out` (with an
    /// empty span). Returns how many descriptors it took from the completion ring: the
    /// frames appended, plus any refused as bad (counted in
    /// [`bad_descriptors`](Self::bad_descriptors)).
    ///
    /// `umem` must be the UMEM this socket was bound with (panics otherwise).
    #[inline]
    pub fn complete(&mut self, umem: &mut Umem, out: &mut Vec<Frame>, max: usize) -> usize {
        self.check_umem(umem);
        // SAFETY: the completion ring pairs with our TX ring.
        unsafe { take(&mut self.comp, umem, self.tags.tx, out, max, &mut self.bad_descs, |a| (a, 0)) }
    }

    /// Once per batch call: the ring tags are only meaningful in the UMEM we were bound with.
    #[inline(always)]
    fn check_umem(&self, umem: &Umem) {
        assert!(umem.id() == self.umem, "socket used with another UMEM than it was bound with");
    }

    /// Descriptors the kernel handed back on this socket's RX or completion ring that
    /// named no chunk of ours on the matching ring, and were dropped (cumulative).
    #[inline]
    pub fn bad_descriptors(&self) -> u64 {
        self.bad_descs
    }

    /// Kernel-side counters of this socket.
    pub fn stats(&self) -> io::Result<SocketStats> {
        // SAFETY: xdp_statistics is the kernel's type for XDP_STATISTICS, plain integers.
        let s: libc::xdp_statistics = unsafe { getsockopt(self.fd.as_raw_fd(), libc::XDP_STATISTICS)? };
        Ok(SocketStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }
}

/// Consumer side of the RX and completion rings: takes up to `max` descriptors from
/// `ring`, appends a frame to `out` for each that names a chunk placed on the ring
/// tagged `from`, counts the others in `bad`, and releases them all to the kernel.
/// Returns how many descriptors it took.
///
/// # Safety
///
/// `ring` must be the consumer ring that pairs with the producer ring `from` (RX with
/// fill, completion with TX) of one socket on `umem`.
#[inline(always)]
unsafe fn take<T: Copy>(
    ring: &mut Ring<T>,
    umem: &mut Umem,
    from: RingTag,
    out: &mut Vec<Frame>,
    max: usize,
    bad: &mut u64,
    desc: impl Fn(T) -> (u64, u32),
) -> usize {
    let n = ring.available(max.min(u32::MAX as usize) as u32);
    for i in 0..n {
        let (addr, len) = desc(ring.read(i));
        // SAFETY: read from the ring that pairs with `from` (the caller's contract) and
        // released below: the kernel is done with the chunk.
        match unsafe { umem.claim(addr, len, from) } {
            Some(f) => out.push(f),
            None => *bad += 1,
        }
    }
    if n > 0 {
        ring.release(n);
    }
    n as usize
}

/// Runs `bind` (an AF_XDP bind) again for up to 2 s while it fails with EBUSY: after a
/// socket on the same queue closes (a restarted vxdp, the previous benchmark row), the
/// kernel releases the queue asynchronously.
pub fn retry_busy<T>(mut bind: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match bind() {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

/// Waits until one of `fds` is readable or `timeout_ms` passes.
pub fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<bool> {
    let mut p = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 4];
    let n = fds.len().min(p.len());
    for (slot, fd) in p.iter_mut().zip(fds) {
        *slot = libc::pollfd { fd: *fd, events: libc::POLLIN, revents: 0 };
    }
    // SAFETY: `p[..n]` are initialised pollfds.
    let r = unsafe { libc::poll(p.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}
