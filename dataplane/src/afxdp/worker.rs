//! A data-path worker: one thread, one UMEM, two AF_XDP sockets.
//!
//! Worker `i` owns the underlay socket on RX queue `i` of the underlay NIC and the
//! overlay socket on queue `i` of vxdp's end of the overlay veth. Both share the
//! worker's UMEM, so a frame received on one side is transmitted on the other by
//! handing over its address: decap advances the address past the outer header, encap
//! moves it back into the headroom. Only head-end replication copies (one copy per
//! extra remote).
//!
//! Per batch: one ring read per socket, one FDB snapshot load, one next-hop load,
//! one TX submit and a few `sendto` kicks per socket; no allocation, no locks.

use crate::afxdp::localmac::{LocalMacQueue, Reporter};
use crate::afxdp::xsk::{chunk_of, poll_readable, Addr, Desc, Umem, XskSocket, FRAME_SIZE, RX_HEADROOM};
use crate::counters::{Counter, DropReason, LocalCounters, WorkerCounters};
use crate::fdb::FdbTable;
use crate::nexthop::NextHops;
use crate::vxlan::{self, Decap, DecapConfig, SrcPortRange, OUTER_V4_LEN};
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Frames read per ring call.
pub const BATCH: usize = 64;
/// UMEM frames per worker.
pub const FRAMES: u32 = 8192;
/// Frames kept off the fill rings so replication and TX always have some.
const RESERVE: usize = 512;
/// TX kicks per socket per iteration at most (copy mode sends 32 per kick).
const MAX_KICKS: u32 = 16;

/// What a worker needs to know, fixed at start.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub decap: DecapConfig,
    pub srcport: SrcPortRange,
    /// Longest inner frame accepted for encapsulation (overlay MTU + Ethernet header).
    pub max_inner_len: usize,
    /// Underlay MTU: the outer IP packet must fit.
    pub underlay_mtu: u32,
}

/// State shared between a worker and the rest of the daemon.
#[derive(Clone)]
pub struct Shared {
    pub fdb: Arc<FdbTable>,
    pub nexthops: Arc<ArcSwap<NextHops>>,
    pub stop: Arc<AtomicBool>,
    /// Where local MACs are reported (only when advertising to Consul).
    pub local_macs: Option<Arc<LocalMacQueue>>,
}

pub struct Worker {
    id: usize,
    cfg: WorkerConfig,
    shared: Shared,
    counters: Arc<WorkerCounters>,
    local: LocalCounters,
    umem: Umem,
    underlay: XskSocket,
    overlay: XskSocket,
    free: Vec<Addr>,
    rx: [Desc; BATCH],
    to_underlay: Vec<Desc>,
    to_overlay: Vec<Desc>,
    comp: [Addr; BATCH * 4],
    ip_id: u16,
    /// The FDB table clock for this pass (learning timestamps, local-MAC reports).
    now_secs: u32,
    /// The table-clock second of the last read of the kernel's drop counters.
    drops_read_at: Option<u32>,
    reporter: Option<Reporter>,
}

impl Worker {
    pub fn new(
        id: usize,
        cfg: WorkerConfig,
        shared: Shared,
        counters: Arc<WorkerCounters>,
        umem: Umem,
        underlay: XskSocket,
        overlay: XskSocket,
    ) -> Worker {
        let free: Vec<Addr> = umem.frame_addrs().collect();
        let reporter = shared.local_macs.clone().map(Reporter::new);
        Worker {
            id,
            cfg,
            shared,
            counters,
            local: LocalCounters::default(),
            umem,
            underlay,
            overlay,
            free,
            rx: [Desc::default(); BATCH],
            // One overlay frame can fan out to many remotes; the vectors keep their
            // capacity, so pushes after warm-up never allocate.
            to_underlay: Vec::with_capacity(FRAMES as usize),
            to_overlay: Vec::with_capacity(BATCH),
            comp: [0; BATCH * 4],
            ip_id: (id as u16).wrapping_mul(0x1f3d),
            now_secs: 0,
            drops_read_at: None,
            reporter,
        }
    }

    /// Runs until the stop flag is set.
    pub fn run(mut self) {
        log::debug!("worker {} running", self.id);
        self.refill();
        let mut idle = 0u32;
        while !self.shared.stop.load(Ordering::Relaxed) {
            let moved = self.poll_once();
            if self.drops_read_at != Some(self.now_secs) {
                self.read_kernel_drops();
            }
            if moved > 0 {
                idle = 0;
                self.counters.publish(&self.local);
                continue;
            }
            idle += 1;
            if idle < 64 {
                std::hint::spin_loop();
                continue;
            }
            // Nothing to do: publish counters and sleep until a socket has frames.
            self.counters.publish(&self.local);
            let in_flight = self.underlay.tx_outstanding() + self.overlay.tx_outstanding();
            let timeout = if in_flight > 0 || self.free.len() < FRAMES as usize / 2 { 1 } else { 100 };
            let _ = poll_readable(&[self.underlay.fd(), self.overlay.fd()], timeout);
        }
        self.read_kernel_drops();
        self.counters.publish(&self.local);
        log::debug!("worker {} stopped", self.id);
    }

    /// Copies the kernel's drop counters of both sockets: two `getsockopt` calls, once
    /// per second of the table clock (and at exit), never per frame or per wake-up.
    fn read_kernel_drops(&mut self) {
        self.drops_read_at = Some(self.now_secs);
        if let (Ok(u), Ok(o)) = (self.underlay.stats(), self.overlay.stats()) {
            self.local.set_kernel_drops(&u, &o);
        }
    }

    /// One pass over both directions. Returns the number of frames received.
    pub fn poll_once(&mut self) -> usize {
        self.reclaim();
        // The table's coarse clock, not the system clock: perf showed `clock_gettime`
        // once per pass at 7-10% of a polling worker's time.
        self.now_secs = self.shared.fdb.coarse_now_secs();
        // Underlay → overlay: decapsulate. Snapshots are loaded only for a direction
        // that has frames: an idle pass is ring reads only.
        let n_dec = self.underlay.recv(&mut self.rx);
        if n_dec > 0 {
            self.decap_batch(n_dec);
        }

        // Overlay → underlay: encapsulate (and replicate).
        let n_enc = self.overlay.recv(&mut self.rx);
        if n_enc > 0 {
            let snap = self.shared.fdb.snapshot();
            let hops = self.shared.nexthops.load();
            for i in 0..n_enc {
                let d = self.rx[i];
                self.local.add(Counter::OverlayRxFrames, 1);
                self.local.add(Counter::OverlayRxBytes, d.len as u64);
                self.encap_one(d, &snap, &hops);
            }
        }

        self.flush();
        self.refill();
        n_dec + n_enc
    }

    /// Decapsulates the first `n` descriptors of `self.rx` onto the overlay TX list.
    fn decap_batch(&mut self, n: usize) {
        let snap = self.shared.fdb.snapshot();
        let now_secs = self.now_secs;
        for i in 0..n {
            let d = self.rx[i];
            self.local.add(Counter::UnderlayRxFrames, 1);
            self.local.add(Counter::UnderlayRxBytes, d.len as u64);
            let chunk = chunk_of(d.addr);
            let off = (d.addr - chunk) as usize;
            let Some(end) = off.checked_add(d.len as usize).filter(|e| *e <= FRAME_SIZE as usize) else {
                self.drop_frame(chunk, DropReason::Truncated);
                continue;
            };
            let frame = &self.umem.chunk_mut(chunk)[off..end];
            match vxlan::decap(frame, &self.cfg.decap) {
                Decap::Deliver { inner_start, inner_len, src_vtep, inner_src } => {
                    if snap.needs_learning(&inner_src, src_vtep, now_secs) {
                        let queued = self.shared.fdb.learn(inner_src, src_vtep);
                        self.local.add(if queued { Counter::Learned } else { Counter::LearnQueueFull }, 1);
                    }
                    self.to_overlay.push(Desc { addr: d.addr + inner_start as u64, len: inner_len as u32 });
                }
                Decap::Drop(reason) => self.drop_frame(chunk, reason),
            }
        }
    }

    fn encap_one(&mut self, d: Desc, snap: &crate::fdb::FdbSnapshot, hops: &NextHops) {
        let chunk = chunk_of(d.addr);
        let start = (d.addr - chunk) as usize;
        let len = d.len as usize;
        if len < 14 || start < OUTER_V4_LEN || start + len > FRAME_SIZE as usize {
            return self.drop_frame(chunk, DropReason::Truncated);
        }
        if len > self.cfg.max_inner_len || len + OUTER_V4_LEN - 14 > self.cfg.underlay_mtu as usize {
            return self.drop_frame(chunk, DropReason::MtuExceeded);
        }
        let buf = self.umem.chunk_mut(chunk);
        let dst: [u8; 6] = buf[start..start + 6].try_into().expect("6 bytes");
        if let Some(r) = &mut self.reporter {
            r.seen(&buf[start + 6..start + 12].try_into().expect("6 bytes"), self.now_secs);
        }
        let hash = vxlan::flow_hash(&buf[start..start + len]);
        let src_port = self.cfg.srcport.pick(hash);

        let unicast = if dst[0] & 1 == 0 { snap.lookup(&dst) } else { None };
        let remotes = match unicast {
            Some(r) => r,
            None => snap.flood(),
        };
        if remotes.is_empty() {
            return self.drop_frame(chunk, DropReason::NoFdbEntry);
        }
        if unicast.is_none() {
            self.local.add(Counter::Flooded, 1);
        }

        // Every remote but the last gets a copy; the last one gets the original frame.
        let last = remotes.len() - 1;
        let mut original_used = false;
        for (i, remote) in remotes.iter().enumerate() {
            let Some(tpl) = hops.get(remote) else {
                self.local.drop(DropReason::NoNeighbour);
                continue;
            };
            self.ip_id = self.ip_id.wrapping_add(1);
            if i == last {
                let buf = self.umem.chunk_mut(chunk);
                match vxlan::encap(buf, start, len, tpl, src_port, self.ip_id) {
                    Ok(out) => {
                        original_used = true;
                        self.to_underlay.push(Desc { addr: chunk + out as u64, len: (len + OUTER_V4_LEN) as u32 });
                    }
                    Err(r) => self.local.drop(r),
                }
            } else {
                let Some(copy) = self.free.pop() else {
                    self.local.drop(DropReason::NoFrame);
                    continue;
                };
                let at = RX_HEADROOM as usize;
                let (src, dstbuf) = self.umem.two_chunks_mut(chunk, copy);
                dstbuf[at..at + len].copy_from_slice(&src[start..start + len]);
                match vxlan::encap(dstbuf, at, len, tpl, src_port, self.ip_id) {
                    Ok(out) => {
                        self.to_underlay.push(Desc { addr: copy + out as u64, len: (len + OUTER_V4_LEN) as u32 })
                    }
                    Err(r) => {
                        self.local.drop(r);
                        self.free.push(copy);
                    }
                }
            }
        }
        if !original_used {
            self.free.push(chunk);
        }
    }

    #[inline]
    fn drop_frame(&mut self, chunk: Addr, reason: DropReason) {
        self.local.drop(reason);
        self.free.push(chunk);
    }

    /// Submits the pending TX descriptors of both directions and kicks the kernel.
    fn flush(&mut self) {
        if !self.to_overlay.is_empty() {
            let sent = self.overlay.send(&self.to_overlay);
            for d in &self.to_overlay[..sent] {
                self.local.add(Counter::DecapFrames, 1);
                self.local.add(Counter::DecapBytes, d.len as u64);
            }
            for d in &self.to_overlay[sent..] {
                self.local.drop(DropReason::TxRingFull);
                self.free.push(chunk_of(d.addr));
            }
            self.to_overlay.clear();
        }
        if !self.to_underlay.is_empty() {
            let sent = self.underlay.send(&self.to_underlay);
            for d in &self.to_underlay[..sent] {
                self.local.add(Counter::EncapFrames, 1);
                self.local.add(Counter::EncapBytes, d.len as u64);
            }
            for d in &self.to_underlay[sent..] {
                self.local.drop(DropReason::TxRingFull);
                self.free.push(chunk_of(d.addr));
            }
            self.to_underlay.clear();
        }
        kick(&self.overlay);
        kick(&self.underlay);
    }

    /// Takes completed TX frames back from both sockets.
    fn reclaim(&mut self) {
        for sock in [&mut self.underlay, &mut self.overlay] {
            loop {
                let n = sock.complete(&mut self.comp);
                for a in &self.comp[..n] {
                    self.free.push(chunk_of(*a));
                }
                if n < self.comp.len() {
                    break;
                }
            }
        }
    }

    /// Keeps both fill rings stocked from the free list, holding back a reserve.
    fn refill(&mut self) {
        for sock in [&mut self.underlay, &mut self.overlay] {
            let spare = self.free.len().saturating_sub(RESERVE);
            let want = (sock.fill_free() as usize).min(spare);
            if want == 0 {
                continue;
            }
            let from = self.free.len() - want;
            // `fill` takes a prefix of what it is offered (normally all of it).
            let n = sock.fill(&self.free[from..]);
            self.free.drain(from..from + n);
            sock.kick_fill();
        }
    }
}

/// Drives copy-mode TX: each `sendto` moves at most a small batch, so repeat while the
/// kernel has not consumed everything, bounded per iteration.
fn kick(sock: &XskSocket) {
    let mut kicks = 0;
    while sock.tx_outstanding() > 0 && kicks < MAX_KICKS {
        let before = sock.tx_outstanding();
        if sock.kick_tx().is_err() {
            break;
        }
        kicks += 1;
        if sock.tx_outstanding() == before {
            break; // device busy: try again next iteration
        }
    }
}
