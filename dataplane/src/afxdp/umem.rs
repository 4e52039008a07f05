//! The UMEM: an anonymous memory area divided into chunks that the kernel and
//! userspace pass back and forth through the rings, and [`Frame`], the handle that says
//! userspace owns one chunk.
//!
//! Ownership is in the types. A [`Frame`] is neither `Copy` nor `Clone`; the only ways
//! to get one are [`Umem::take_free_frames`] (once, every chunk) and the socket's RX and
//! completion consumers, and the only ways to give one up are the socket's TX and fill
//! producers, which take it by value. So while code holds a `Frame`, no ring holds its
//! chunk, the kernel neither reads nor writes it, and [`Umem::chunk_mut`] is safe.
//!
//! The kernel is not trusted to keep that bargain: the UMEM records who owns each chunk
//! (userspace, or the fill or TX ring of one socket), and a descriptor coming back from a
//! ring is only turned into a `Frame` if it lies inside one chunk and that chunk was on
//! the matching ring of the same socket (`Umem::claim`). Anything else is refused, and
//! the socket counts it.

use std::cell::Cell;
use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};

/// Size of one UMEM frame (chunk). Aligned mode needs a power of two in 2048..=PAGE_SIZE.
pub const FRAME_SIZE: u32 = 4096;
/// Where the kernel puts received data inside a chunk (XDP_PACKET_HEADROOM, with a UMEM
/// headroom of zero): the space in front is ours for encapsulation.
pub const RX_HEADROOM: u32 = 256;

/// The chunk that contains `addr`.
#[inline(always)]
pub(super) fn chunk_of(addr: u64) -> u64 {
    addr & !(FRAME_SIZE as u64 - 1)
}

/// The index of the chunk holding a descriptor `(addr, len)`, if the descriptor lies
/// wholly inside one chunk of a UMEM of `frames` chunks. No arithmetic here can wrap,
/// whatever the descriptor says.
#[inline(always)]
pub(super) fn chunk_index(addr: u64, len: u32, frames: u32) -> Option<usize> {
    let index = addr / FRAME_SIZE as u64;
    if index >= u64::from(frames) {
        return None;
    }
    let end = (addr % FRAME_SIZE as u64).checked_add(u64::from(len))?;
    (end <= FRAME_SIZE as u64).then_some(index as usize)
}

/// One chunk that userspace owns, and the span of bytes in it that is the packet.
///
/// Not `Copy`, not `Clone`: moving the handle is moving the ownership. Dropping it loses
/// the chunk (it is never reused), which is safe.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    /// UMEM address of the first packet byte; `chunk_of(addr)` is the chunk.
    addr: u64,
    /// Packet length; `offset() + len <= FRAME_SIZE` always holds.
    len: u32,
    /// The [`Umem::id`] of the UMEM the chunk belongs to.
    umem: u32,
}

impl Frame {
    /// UMEM address of the packet's first byte (for a descriptor or a log line).
    #[inline(always)]
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Where the packet starts inside its chunk.
    #[inline(always)]
    pub fn offset(&self) -> usize {
        (self.addr - chunk_of(self.addr)) as usize
    }

    /// Packet length in bytes.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the packet span is empty (as for a frame back from the completion ring).
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk's number in its UMEM (0, 1, ...).
    #[inline(always)]
    pub fn index(&self) -> usize {
        (self.addr / FRAME_SIZE as u64) as usize
    }

    /// Makes `chunk[offset..offset + len]` the packet. Returns false, and changes
    /// nothing, if that span does not fit in the chunk.
    #[inline(always)]
    #[must_use]
    pub fn set_span(&mut self, offset: usize, len: usize) -> bool {
        if offset.checked_add(len).is_none_or(|end| end > FRAME_SIZE as usize) {
            return false;
        }
        self.addr = chunk_of(self.addr) + offset as u64;
        self.len = len as u32;
        true
    }
}

/// Who owns a chunk: userspace ([`USER`]) or one ring of one socket ([`RingTag`]).
const USER: u8 = 0;

/// Names the fill or the TX ring of one socket, as the owner of chunks placed on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RingTag(u8);

/// The tags of one socket's two producer rings.
#[derive(Clone, Copy, Debug)]
pub(super) struct SocketTags {
    pub fill: RingTag,
    pub tx: RingTag,
}

/// Hands out a distinct id per UMEM, so a frame of one is refused by another.
static NEXT_UMEM_ID: AtomicU32 = AtomicU32::new(1);

/// An anonymous memory area divided into frames, registered with the kernel.
pub struct Umem {
    area: NonNull<u8>,
    len: usize,
    frames: u32,
    id: u32,
    /// Owner of each chunk: `USER` or the `RingTag` of the ring holding it.
    owner: Box<[u8]>,
    /// Sockets registered so far (each takes two tags).
    sockets: Cell<u8>,
    /// Whether [`take_free_frames`](Self::take_free_frames) has run.
    handed_out: bool,
}

// SAFETY: the area is plain memory owned by this struct; which side owns each chunk is
// recorded in `owner` and in the `Frame` handles, never by aliasing references.
unsafe impl Send for Umem {}

impl Umem {
    /// Maps `frames` frames of [`FRAME_SIZE`] bytes, pre-faulted.
    pub fn new(frames: u32) -> io::Result<Umem> {
        let id = NEXT_UMEM_ID
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |id| id.checked_add(1))
            .map_err(|_| io::Error::other("too many UMEMs created in this process"))?;
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
        Ok(Umem {
            area: NonNull::new(p.cast()).expect("mmap returned null"),
            len,
            frames,
            id,
            owner: vec![USER; frames as usize].into_boxed_slice(),
            sockets: Cell::new(0),
            handed_out: false,
        })
    }

    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// This UMEM's id, distinct from every other UMEM's in the process.
    pub(super) fn id(&self) -> u32 {
        self.id
    }

    /// Start and length of the area, for `XDP_UMEM_REG`.
    pub(super) fn area(&self) -> (u64, u64) {
        (self.area.as_ptr() as u64, self.len as u64)
    }

    /// A handle for every frame, for the initial free list. Only the first call returns
    /// frames (a second set would alias the first); later calls return none.
    pub fn take_free_frames(&mut self) -> Vec<Frame> {
        if std::mem::replace(&mut self.handed_out, true) {
            return Vec::new();
        }
        let id = self.id;
        (0..u64::from(self.frames)).map(|i| Frame { addr: i * FRAME_SIZE as u64, len: 0, umem: id }).collect()
    }

    /// Tags for the fill and TX rings of one more socket on this UMEM.
    pub(super) fn register_socket(&self) -> io::Result<SocketTags> {
        let n = self.sockets.get();
        if n >= 127 {
            return Err(io::Error::other("more than 127 sockets on one UMEM"));
        }
        self.sockets.set(n + 1);
        let slot = (n + 1) * 2;
        Ok(SocketTags { fill: RingTag(slot), tx: RingTag(slot + 1) })
    }

    /// Turns a descriptor the kernel handed back into a frame, if it lies inside one
    /// chunk of this UMEM and that chunk was placed on the ring tagged `from`. Returns
    /// `None` (and changes nothing) for any other descriptor.
    ///
    /// # Safety
    ///
    /// `(addr, len)` must have been read from the consumer ring that pairs with `from`
    /// (RX for a fill tag, completion for a TX tag) of the socket that owns `from`, and
    /// the caller must release that ring entry, so that the kernel is done with the
    /// chunk. Called for a descriptor the kernel still owns, the returned frame would let
    /// userspace write memory the kernel is using.
    #[inline(always)]
    pub(super) unsafe fn claim(&mut self, addr: u64, len: u32, from: RingTag) -> Option<Frame> {
        let index = chunk_index(addr, len, self.frames)?;
        let owner = self.owner.get_mut(index)?;
        if *owner != from.0 {
            return None;
        }
        *owner = USER;
        Some(Frame { addr, len, umem: self.id })
    }

    /// Records that `frame`'s chunk goes onto the ring tagged `to` and returns the
    /// descriptor to write there.
    ///
    /// Panics if the frame belongs to another UMEM (a bug in the caller).
    #[inline(always)]
    pub(super) fn release(&mut self, frame: Frame, to: RingTag) -> (u64, u32) {
        self.check_ours(&frame);
        // In bounds: a frame of this UMEM names one of its chunks.
        self.owner[frame.index()] = to.0;
        (frame.addr, frame.len)
    }

    #[inline(always)]
    fn check_ours(&self, frame: &Frame) {
        assert!(frame.umem == self.id, "frame of another UMEM");
    }

    /// The whole chunk of `frame`, for reading and writing.
    ///
    /// Panics if the frame belongs to another UMEM (a bug in the caller).
    #[inline(always)]
    pub fn chunk_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.check_ours(frame);
        let base = chunk_of(frame.addr) as usize;
        // SAFETY: a frame of this UMEM (checked above) names a chunk inside the area
        // (`claim` and `take_free_frames` only make such frames and `set_span` keeps the
        // address in its chunk). Holding the frame means userspace owns the chunk: no
        // ring holds it, so the kernel does not access it, and frames are unique, so no
        // other frame names it. `&mut self` rules out a second live slice of the area.
        unsafe { std::slice::from_raw_parts_mut(self.area.as_ptr().add(base), FRAME_SIZE as usize) }
    }

    /// The packet bytes of `frame` (its span inside the chunk).
    #[inline(always)]
    pub fn frame_mut(&mut self, frame: &Frame) -> &mut [u8] {
        let (start, len) = (frame.offset(), frame.len());
        // In bounds: `offset + len <= FRAME_SIZE` is an invariant of `Frame`.
        &mut self.chunk_mut(frame)[start..start + len]
    }

    /// The chunks of two frames at once (for replication: copy from one into the other).
    ///
    /// Panics if either frame belongs to another UMEM or both name the same chunk (which
    /// unique handles rule out; checked anyway).
    #[inline(always)]
    pub fn two_chunks_mut(&mut self, a: &Frame, b: &Frame) -> (&mut [u8], &mut [u8]) {
        self.check_ours(a);
        self.check_ours(b);
        let (ca, cb) = (chunk_of(a.addr) as usize, chunk_of(b.addr) as usize);
        assert!(ca != cb, "two frames on the same chunk");
        let p = self.area.as_ptr();
        // SAFETY: both chunks lie inside the area and are owned by userspace, as for
        // `chunk_mut`; they do not overlap (distinct aligned chunks, checked above).
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

#[cfg(test)]
mod tests {
    use super::*;

    const F: u64 = FRAME_SIZE as u64;

    #[test]
    fn chunk_of_masks_offsets() {
        assert_eq!(chunk_of(0), 0);
        assert_eq!(chunk_of(4096 + 256), 4096);
        assert_eq!(chunk_of(3 * 4096 + 4095), 3 * 4096);
    }

    #[test]
    fn umem_chunks_are_disjoint_and_writable() {
        let mut u = Umem::new(4).unwrap();
        let mut frames = u.take_free_frames();
        let addrs: Vec<_> = frames.iter().map(Frame::addr).collect();
        assert_eq!(addrs, vec![0, 4096, 8192, 12288]);
        assert!(frames[1].set_span(300, 10));
        u.chunk_mut(&frames[1])[0] = 7;
        u.frame_mut(&frames[1])[0] = 5;
        let (a, b) = u.two_chunks_mut(&frames[1], &frames[2]);
        assert_eq!(a[0], 7);
        assert_eq!(a[300], 5);
        b[0] = 9;
        assert_eq!(u.chunk_mut(&frames[2])[0], 9);
    }

    #[test]
    fn frames_are_handed_out_once() {
        let mut u = Umem::new(2).unwrap();
        assert_eq!(u.take_free_frames().len(), 2);
        assert!(u.take_free_frames().is_empty());
    }

    #[test]
    fn descriptors_outside_one_chunk_are_refused_without_wrapping() {
        assert_eq!(chunk_index(0, 0, 4), Some(0));
        assert_eq!(chunk_index(3 * F + 256, 3840, 4), Some(3));
        assert_eq!(chunk_index(3 * F + 4095, 1, 4), Some(3));
        // Past the end of the area.
        assert_eq!(chunk_index(4 * F, 0, 4), None);
        assert_eq!(chunk_index(u64::MAX, 0, 4), None);
        assert_eq!(chunk_index(u64::MAX - 10, 64, u32::MAX), None);
        // Crossing into the next chunk, or longer than a chunk.
        assert_eq!(chunk_index(256, 3841, 4), None);
        assert_eq!(chunk_index(F, u32::MAX, 4), None);
        assert_eq!(chunk_index(0, FRAME_SIZE + 1, 4), None);
    }

    #[test]
    fn claim_takes_only_chunks_on_the_named_ring() {
        let mut u = Umem::new(4).unwrap();
        let a = u.register_socket().unwrap();
        let b = u.register_socket().unwrap();
        assert_ne!(a.fill, b.fill);
        let mut frames = u.take_free_frames();
        let f3 = frames.pop().unwrap();
        let f2 = frames.pop().unwrap();
        assert_eq!(u.release(f3, a.fill), (3 * F, 0));
        assert_eq!(u.release(f2, a.tx), (2 * F, 0));
        // SAFETY: no socket exists, so the kernel touches no chunk; every claim below is
        // of a chunk nothing else can write.
        unsafe {
            // A chunk userspace still owns (a duplicate or forged descriptor).
            assert_eq!(u.claim(0, 60, a.fill), None);
            // On another ring of the same socket, or the same ring of another socket.
            assert_eq!(u.claim(2 * F + 256, 60, a.fill), None);
            assert_eq!(u.claim(3 * F + 256, 60, b.fill), None);
            // Outside the UMEM, or spilling out of its chunk.
            assert_eq!(u.claim(u64::MAX, 60, a.fill), None);
            assert_eq!(u.claim(3 * F + 4000, 200, a.fill), None);
            // The real thing, once.
            let got = u.claim(3 * F + 256, 60, a.fill).expect("chunk 3 was on a's fill ring");
            assert_eq!((got.addr(), got.offset(), got.len(), got.index()), (3 * F + 256, 256, 60, 3));
            assert_eq!(u.claim(3 * F + 256, 60, a.fill), None);
            let done = u.claim(2 * F + 100, 0, a.tx).expect("chunk 2 was on a's TX ring");
            assert!(done.is_empty());
        }
    }

    #[test]
    fn set_span_stays_inside_the_chunk() {
        let mut u = Umem::new(2).unwrap();
        let mut f = u.take_free_frames().pop().unwrap();
        assert!(f.set_span(256, 3840));
        assert_eq!((f.addr(), f.len()), (F + 256, 3840));
        assert!(!f.set_span(256, 3841));
        assert!(!f.set_span(usize::MAX, 2));
        assert_eq!((f.addr(), f.len()), (F + 256, 3840));
        assert!(f.set_span(0, 0));
        assert_eq!(f.addr(), F);
    }

    #[test]
    #[should_panic(expected = "frame of another UMEM")]
    fn a_frame_of_another_umem_is_refused() {
        let mut a = Umem::new(1).unwrap();
        let mut b = Umem::new(1).unwrap();
        let f = a.take_free_frames().pop().unwrap();
        let _ = b.take_free_frames();
        b.chunk_mut(&f);
    }
}
