//! One mapped AF_XDP ring (RX, TX, fill or completion): producer and consumer indices
//! shared with the kernel, and the descriptor array. The index protocol lives here;
//! what a descriptor means, and who owns the frame it names, is the socket's business.

use std::io;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};

/// A mapped ring: producer and consumer indices, flags, and descriptors of type `T`.
pub(super) struct Ring<T> {
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
    pub(super) size: u32,
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
    /// Maps the ring at page offset `pgoff` of socket `fd`.
    ///
    /// # Safety
    ///
    /// The kernel must have created that ring on `fd` with `size` entries of type `T`
    /// (setsockopt), and `off` must be its offsets from `XDP_MMAP_OFFSETS` on `fd`:
    /// every later access trusts them.
    pub(super) unsafe fn map(fd: RawFd, off: &libc::xdp_ring_offset, size: u32, pgoff: u64) -> io::Result<Ring<T>> {
        let map_len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: mapping the ring the kernel created for this socket with setsockopt; the
        // offsets come from XDP_MMAP_OFFSETS for the same socket (the caller's contract).
        // Checked below.
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
    pub(super) fn needs_wakeup(&self) -> bool {
        // SAFETY: as for `prod`.
        unsafe { &*self.flags }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Producer side: how many slots are free (up to `want`), refreshing the cached consumer index only when needed.
    #[inline(always)]
    pub(super) fn free(&mut self, want: u32) -> u32 {
        let free = self.cached.wrapping_add(self.size).wrapping_sub(self.local);
        if free >= want {
            return free;
        }
        self.cached = self.cons().load(Ordering::Acquire);
        self.cached.wrapping_add(self.size).wrapping_sub(self.local)
    }

    /// Producer side: write a descriptor at position `i` past the local producer index.
    ///
    /// # Safety
    ///
    /// `i` must be below what [`free`](Self::free) last returned (so the kernel is not
    /// reading the slot), and the frame `v` names must be one userspace has given up
    /// (released in its UMEM): once submitted, the kernel reads or writes it.
    #[inline(always)]
    pub(super) unsafe fn write(&mut self, i: u32, v: T) {
        let idx = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx <= mask < size, within the descriptor array; the slot is free
        // (the caller's contract), so the kernel is not reading it.
        unsafe { self.descs.add(idx).write(v) };
    }

    /// Producer side: publish `n` written descriptors.
    #[inline(always)]
    pub(super) fn submit(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.prod().store(self.local, Ordering::Release);
    }

    /// Consumer side: how many descriptors are ready (up to `max`).
    #[inline(always)]
    pub(super) fn available(&mut self, max: u32) -> u32 {
        let mut avail = self.cached.wrapping_sub(self.local);
        if avail == 0 {
            self.cached = self.prod().load(Ordering::Acquire);
            avail = self.cached.wrapping_sub(self.local);
        }
        avail.min(max)
    }

    /// Consumer side: read the descriptor at position `i` past the local consumer index.
    #[inline(always)]
    pub(super) fn read(&self, i: u32) -> T
    where
        T: Copy,
    {
        let idx = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: within the array; the kernel published it (Acquire in `available`).
        unsafe { self.descs.add(idx).read() }
    }

    /// Consumer side: release `n` read descriptors back to the kernel.
    #[inline(always)]
    pub(super) fn release(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.cons().store(self.local, Ordering::Release);
    }

    /// Producer side: descriptors submitted that the kernel has not consumed yet.
    #[inline(always)]
    pub(super) fn outstanding(&self) -> u32 {
        self.local.wrapping_sub(self.cons().load(Ordering::Acquire))
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly our mapping; nothing references it after drop.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}
