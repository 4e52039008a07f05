//! AF_XDP sockets, their rings, and the UMEM they share.
//!
//! This is the one module that touches raw kernel memory. Everything it exposes is
//! safe to call; each `unsafe` block says why it holds.
//!
//! Why not xsk-rs: its `FrameDesc` keeps the descriptor address private, so a frame
//! cannot grow or shrink at its front. vxdp encapsulates by writing the outer header
//! into the headroom in front of a received frame and decapsulates by advancing the
//! address past the outer header; both need to set the TX descriptor's address.
//!
//! Layout: one [`Umem`] per worker, registered on the worker's first socket (the
//! underlay) and shared (`XDP_SHARED_UMEM`) by its second (the overlay end of the
//! veth pair). Each socket has its own fill and completion rings, so a frame received
//! on one socket can be transmitted on the other without a copy. Frames are chunks of
//! [`FRAME_SIZE`] bytes in aligned mode; the kernel writes received data
//! [`RX_HEADROOM`] bytes into the chunk, leaving room for a 50-byte outer header.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};

/// Size of one UMEM frame (chunk). Aligned mode needs a power of two in 2048..=PAGE_SIZE.
pub const FRAME_SIZE: u32 = 4096;
/// Where the kernel puts received data inside a chunk (XDP_PACKET_HEADROOM, with a UMEM
/// headroom of zero): the space in front is ours for encapsulation.
pub const RX_HEADROOM: u32 = 256;

/// A UMEM address: byte offset from the start of the UMEM area.
pub type Addr = u64;

/// The chunk that contains `addr`.
#[inline(always)]
pub fn chunk_of(addr: Addr) -> Addr {
    addr & !(FRAME_SIZE as u64 - 1)
}

/// An anonymous memory area divided into frames, registered with the kernel.
pub struct Umem {
    area: NonNull<u8>,
    len: usize,
    frames: u32,
}

// SAFETY: the area is plain memory owned by this struct; ownership of individual frames
// is tracked by the worker (free list / rings), never by aliasing references.
unsafe impl Send for Umem {}

impl Umem {
    /// Maps `frames` frames of [`FRAME_SIZE`] bytes, pre-faulted.
    pub fn new(frames: u32) -> io::Result<Umem> {
        let len = frames as usize * FRAME_SIZE as usize;
        // SAFETY: anonymous private mapping, no file; the result is checked below.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Umem { area: NonNull::new(p.cast()).expect("mmap returned null"), len, frames })
    }

    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// The addresses of every frame, for the initial free list.
    pub fn frame_addrs(&self) -> impl Iterator<Item = Addr> {
        (0..self.frames as u64).map(|i| i * FRAME_SIZE as u64)
    }

    /// The whole chunk that contains `addr`, for reading and writing.
    ///
    /// The caller must own that frame: it came from an RX or completion ring (or the
    /// initial free list) and has not been put on a fill or TX ring since. The kernel
    /// only writes to frames on a fill ring and only reads frames on a TX ring, so the
    /// returned slice is not accessed by anyone else while the caller holds it.
    #[inline(always)]
    pub fn chunk_mut(&mut self, addr: Addr) -> &mut [u8] {
        let base = chunk_of(addr) as usize;
        assert!(base + FRAME_SIZE as usize <= self.len, "UMEM address out of range");
        // SAFETY: in bounds (checked above); exclusive per the ownership rule in the doc
        // comment, and `&mut self` prevents two chunk slices at once from this handle.
        unsafe { std::slice::from_raw_parts_mut(self.area.as_ptr().add(base), FRAME_SIZE as usize) }
    }

    /// Two distinct chunks at once (for replication: copy from one into the other).
    #[inline(always)]
    pub fn two_chunks_mut(&mut self, a: Addr, b: Addr) -> (&mut [u8], &mut [u8]) {
        let (ca, cb) = (chunk_of(a) as usize, chunk_of(b) as usize);
        assert!(ca != cb, "two_chunks_mut on the same chunk");
        assert!(ca.max(cb) + FRAME_SIZE as usize <= self.len, "UMEM address out of range");
        let p = self.area.as_ptr();
        // SAFETY: both in bounds and non-overlapping (distinct aligned chunks); ownership
        // as for `chunk_mut`.
        unsafe {
            (
                std::slice::from_raw_parts_mut(p.add(ca), FRAME_SIZE as usize),
                std::slice::from_raw_parts_mut(p.add(cb), FRAME_SIZE as usize),
            )
        }
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping created in `new`. Sockets that registered
        // it hold the pages pinned in the kernel until they close, so this is safe even
        // if a socket outlives us (the kernel keeps its own reference).
        unsafe { libc::munmap(self.area.as_ptr().cast(), self.len) };
    }
}

/// A mapped ring: producer and consumer indices, flags, and descriptors of type `T`.
struct Ring<T> {
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
    size: u32,
    /// Our local copy of the index we own (producer for a producer ring, consumer for a consumer ring).
    local: u32,
    /// Cached copy of the other side's index.
    cached: u32,
    map: *mut libc::c_void,
    map_len: usize,
}

// SAFETY: the ring memory is a private mapping owned by this struct; only the owning
// worker thread uses it after construction.
unsafe impl<T> Send for Ring<T> {}

impl<T> Ring<T> {
    fn map(fd: RawFd, off: &libc::xdp_ring_offset, size: u32, pgoff: u64) -> io::Result<Ring<T>> {
        let map_len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: mapping the ring the kernel created for this socket with setsockopt; the
        // offsets come from XDP_MMAP_OFFSETS for the same socket. Checked below.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = map.cast::<u8>();
        // SAFETY: the offsets lie within the mapping (kernel-provided for this ring).
        let (producer, consumer, flags, descs) = unsafe {
            (
                base.add(off.producer as usize).cast::<AtomicU32>(),
                base.add(off.consumer as usize).cast::<AtomicU32>(),
                base.add(off.flags as usize).cast::<AtomicU32>(),
                base.add(off.desc as usize).cast::<T>(),
            )
        };
        Ok(Ring { producer, consumer, flags, descs, mask: size - 1, size, local: 0, cached: 0, map, map_len })
    }

    #[inline(always)]
    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into our live mapping; the kernel accesses it atomically too.
        unsafe { &*self.producer }
    }

    #[inline(always)]
    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as for `prod`.
        unsafe { &*self.consumer }
    }

    #[inline(always)]
    fn needs_wakeup(&self) -> bool {
        // SAFETY: as for `prod`.
        unsafe { &*self.flags }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Producer side: how many slots are free (up to `want`), refreshing the cached consumer index only when needed.
    #[inline(always)]
    fn free(&mut self, want: u32) -> u32 {
        let free = self.cached.wrapping_add(self.size).wrapping_sub(self.local);
        if free >= want {
            return free;
        }
        self.cached = self.cons().load(Ordering::Acquire);
        self.cached.wrapping_add(self.size).wrapping_sub(self.local)
    }

    /// Producer side: write a descriptor at position `i` past the local producer index.
    #[inline(always)]
    fn write(&mut self, i: u32, v: T) {
        let idx = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx <= mask < size, within the descriptor array; the slot is free
        // (the caller checked `free`), so the kernel is not reading it.
        unsafe { self.descs.add(idx).write(v) };
    }

    /// Producer side: publish `n` written descriptors.
    #[inline(always)]
    fn submit(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.prod().store(self.local, Ordering::Release);
    }

    /// Consumer side: how many descriptors are ready (up to `max`).
    #[inline(always)]
    fn available(&mut self, max: u32) -> u32 {
        let mut avail = self.cached.wrapping_sub(self.local);
        if avail == 0 {
            self.cached = self.prod().load(Ordering::Acquire);
            avail = self.cached.wrapping_sub(self.local);
        }
        avail.min(max)
    }

    /// Consumer side: read the descriptor at position `i` past the local consumer index.
    #[inline(always)]
    fn read(&self, i: u32) -> T
    where
        T: Copy,
    {
        let idx = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: within the array; the kernel published it (Acquire in `available`).
        unsafe { self.descs.add(idx).read() }
    }

    /// Consumer side: release `n` read descriptors back to the kernel.
    #[inline(always)]
    fn release(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.cons().store(self.local, Ordering::Release);
    }

    /// Producer side: descriptors submitted that the kernel has not consumed yet.
    #[inline(always)]
    fn outstanding(&self) -> u32 {
        self.local.wrapping_sub(self.cons().load(Ordering::Acquire))
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly our mapping; nothing references it after drop.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

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

/// A received frame: its UMEM address (of the data) and length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub addr: Addr,
    pub len: u32,
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

impl XskSocket {
    /// Creates a socket on `ifindex`/`queue`.
    ///
    /// With `shared_with: None` it registers `umem` (the first socket of a worker); with
    /// `Some(fd)` it shares the UMEM registered on that socket, with fill and completion
    /// rings of its own. Copy mode is used so that one UMEM can serve a NIC and a veth.
    pub fn bind(
        umem: &Umem,
        ifindex: u32,
        queue: u32,
        shared_with: Option<RawFd>,
        sizes: RingSizes,
    ) -> io::Result<XskSocket> {
        // SAFETY: plain socket(2) call; result checked.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let raw = fd.as_raw_fd();

        if shared_with.is_none() {
            let reg = libc::xdp_umem_reg {
                addr: umem.area.as_ptr() as u64,
                len: umem.len as u64,
                chunk_size: FRAME_SIZE,
                headroom: 0,
                flags: 0,
                tx_metadata_len: 0,
            };
            setsockopt(raw, libc::XDP_UMEM_REG, &reg)?;
        }
        setsockopt(raw, libc::XDP_UMEM_FILL_RING, &sizes.fill)?;
        setsockopt(raw, libc::XDP_UMEM_COMPLETION_RING, &sizes.comp)?;
        setsockopt(raw, libc::XDP_RX_RING, &sizes.rx)?;
        setsockopt(raw, libc::XDP_TX_RING, &sizes.tx)?;

        // SAFETY: zeroed is a valid xdp_mmap_offsets (plain integers).
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut optlen = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: buffer and length describe `off`.
        let r = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut optlen,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }

        let rx = Ring::map(raw, &off.rx, sizes.rx, libc::XDP_PGOFF_RX_RING as u64)?;
        let tx = Ring::map(raw, &off.tx, sizes.tx, libc::XDP_PGOFF_TX_RING as u64)?;
        let fill = Ring::map(raw, &off.fr, sizes.fill, libc::XDP_UMEM_PGOFF_FILL_RING)?;
        let comp = Ring::map(raw, &off.cr, sizes.comp, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;

        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            // A socket sharing a UMEM inherits copy mode and need_wakeup from the first.
            sxdp_flags: match shared_with {
                None => libc::XDP_COPY | libc::XDP_USE_NEED_WAKEUP,
                Some(_) => libc::XDP_SHARED_UMEM,
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
        Ok(XskSocket { fd, rx, tx, fill, comp })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Receives up to `out.len()` frames. Returns how many were written to `out`.
    #[inline]
    pub fn recv(&mut self, out: &mut [Desc]) -> usize {
        let n = self.rx.available(out.len() as u32);
        for i in 0..n {
            let d = self.rx.read(i);
            out[i as usize] = Desc { addr: d.addr, len: d.len };
        }
        if n > 0 {
            self.rx.release(n);
        }
        n as usize
    }

    /// Queues frames for transmission; returns how many fit (a prefix of `descs`).
    #[inline]
    pub fn send(&mut self, descs: &[Desc]) -> usize {
        let n = self.tx.free(descs.len() as u32).min(descs.len() as u32);
        for i in 0..n {
            let d = descs[i as usize];
            self.tx.write(i, libc::xdp_desc { addr: d.addr, len: d.len, options: 0 });
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

    /// Gives frames to the kernel for reception; returns how many fit.
    #[inline]
    pub fn fill(&mut self, addrs: &[Addr]) -> usize {
        let n = self.fill.free(addrs.len() as u32).min(addrs.len() as u32);
        for i in 0..n {
            self.fill.write(i, addrs[i as usize]);
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
    }

    /// Takes completed TX frames back; returns how many were written to `out`.
    #[inline]
    pub fn complete(&mut self, out: &mut [Addr]) -> usize {
        let n = self.comp.available(out.len() as u32);
        for i in 0..n {
            out[i as usize] = self.comp.read(i);
        }
        if n > 0 {
            self.comp.release(n);
        }
        n as usize
    }

    /// Kernel-side counters of this socket.
    pub fn stats(&self) -> io::Result<SocketStats> {
        // SAFETY: zeroed is valid for this plain-integer struct.
        let mut s: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: buffer and length describe `s`.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut s as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_of_masks_offsets() {
        assert_eq!(chunk_of(0), 0);
        assert_eq!(chunk_of(4096 + 256), 4096);
        assert_eq!(chunk_of(3 * 4096 + 4095), 3 * 4096);
    }

    #[test]
    fn umem_chunks_are_disjoint_and_writable() {
        let mut u = Umem::new(4).unwrap();
        let addrs: Vec<_> = u.frame_addrs().collect();
        assert_eq!(addrs, vec![0, 4096, 8192, 12288]);
        u.chunk_mut(4096 + 300)[0] = 7;
        let (a, b) = u.two_chunks_mut(4096, 8192);
        assert_eq!(a[0], 7);
        b[0] = 9;
        assert_eq!(u.chunk_mut(8192)[0], 9);
    }
}
