//! A data-path worker: one thread, one memory area, two AF_XDP sockets.
#![forbid(unsafe_code)]
//!
//! Worker `i` owns the underlay socket on RX queue `i` of the underlay NIC and the
//! overlay socket on queue `i` of vxdp's end of the overlay veth. Each socket registers
//! the worker's memory as a UMEM of its own (so each binds in its own mode, see
//! [`zerocopy`](crate::afxdp::zerocopy)); both see the same bytes, so a frame received on one side is transmitted on the other by
//! handing over its [`Frame`] handle: decap advances the frame's span past the outer
//! header, encap moves it back into the headroom. Only head-end replication copies
//! (into a free frame, one per extra remote).
//!
//! Per batch: one ring read per socket, one FDB snapshot load, one next-hop load,
//! one TX submit and a few `sendto` kicks per socket; no allocation, no locks.

mod ports;

use crate::afxdp::localmac::{LocalMacQueue, Reporter};
use crate::afxdp::xsk::{poll_readable, Frame, Umem, XskSocket, RX_HEADROOM};
use crate::counters::{Counter, DropReason, LocalCounters, WorkerCounters};
use crate::fdb::{mac_key, FdbSnapshot, FdbTable, Snoop};
use crate::neigh::NeighTable;
use crate::nexthop::NextHops;
use crate::vxlan::{self, Decap, DecapConfig, SrcPortRange, OUTER_V4_LEN};
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Frames read per ring call.
pub const BATCH: usize = 64;
/// UMEM frames per worker.
pub const FRAMES: u32 = 8192;
/// Frames kept off the fill rings so replication and TX always have some.
const RESERVE: usize = 512;
/// Completions taken per ring call.
const COMP_BATCH: usize = BATCH * 4;
/// TX kicks per socket per iteration at most (copy mode sends 32 per kick).
const MAX_KICKS: u32 = 16;

/// What a worker needs to know, fixed at start.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub decap: DecapConfig,
    pub srcport: SrcPortRange,
    /// Underlay MTU: the outer IP packet must fit.
    pub underlay_mtu: u32,
    /// `--proxy`: answer ARP requests and neighbour solicitations from `Shared::neigh`.
    pub proxy: bool,
    /// The sockets are in preferred busy-poll mode (`--busy-poll`): each pass runs the
    /// NAPI of both queues from this thread (`XskSocket::busy_poll`) before reading the
    /// RX rings.
    pub busy_poll: bool,
    /// The worker thread's nice value (`--worker-nice`).
    pub nice: i32,
    /// Port layout: the overlay socket serves the trunk to the ports (`worker/ports.rs`).
    pub ports: bool,
    /// Which outer header fields each frame takes from its inner packet (`--ttl`,
    /// `--tos`, `--df inherit`; `vxdp_common::outer::INHERIT_*`).
    pub inherit: vxdp_common::outer::Inherit,
}

/// State shared between a worker and the rest of the daemon.
#[derive(Clone)]
pub struct Shared {
    pub fdb: Arc<FdbTable>,
    pub nexthops: Arc<ArcSwap<NextHops>>,
    pub stop: Arc<AtomicBool>,
    /// Where local MACs are reported (only when advertising to Consul).
    pub local_macs: Option<Arc<LocalMacQueue>>,
    /// The overlay device's MAC as [`mac_key`] packs it ([`NO_OWN_MAC`] until known):
    /// decap drops frames from it (a loop). The control loop keeps it current.
    pub own_mac: Arc<AtomicU64>,
    /// The proxy neighbour table (read only with `WorkerConfig::proxy`).
    pub neigh: Arc<NeighTable>,
    /// Port layout: the ports and the MACs on them.
    pub ports: Arc<crate::ports::PortTable>,
}

/// [`Shared::own_mac`] when no MAC is set (no packed MAC is this large).
pub const NO_OWN_MAC: u64 = u64::MAX;

pub struct Worker {
    id: usize,
    cfg: WorkerConfig,
    shared: Shared,
    counters: Arc<WorkerCounters>,
    local: LocalCounters,
    umem: Umem,
    underlay: XskSocket,
    overlay: XskSocket,
    /// Frames userspace owns and no one uses (capacity: every frame of the UMEM).
    free: Vec<Frame>,
    /// The batch just received (capacity BATCH, emptied each pass).
    rx: Vec<Frame>,
    to_underlay: Vec<Frame>,
    to_overlay: Vec<Frame>,
    /// Proxy ARP/ND replies back to the overlay (counted when made, not as decap).
    replies: Vec<Frame>,
    /// Port layout: frames from one port for another, sent on the overlay socket too.
    to_ports: Vec<Frame>,
    ip_id: u16,
    /// The FDB table clock for this pass (learning timestamps, local-MAC reports).
    now_secs: u32,
    /// The table-clock second of the last read of the kernel's drop counters.
    drops_read_at: Option<u32>,
    reporter: Option<Reporter>,
    /// Path MTU answers left this second (`PMTU_REPLIES_PER_SEC`).
    pmtu_budget: PerSecond,
}

/// At most this many ICMP "too big" answers per worker and second: enough for every
/// sender's path MTU discovery, and a sender spraying oversized frames cannot turn a
/// worker into an ICMP generator.
pub const PMTU_REPLIES_PER_SEC: u32 = 1000;

/// Whether an inner frame too big for its path may go as outer fragments: not an IPv4
/// packet with DF, nor an IPv6 packet (`vxdp_common::outer::InnerIp::df`).
fn fragmentable_inner(inner: &[u8]) -> bool {
    !vxdp_common::outer::inner_ip(inner).df
}

/// A budget of events per (table clock) second.
#[derive(Debug)]
struct PerSecond {
    limit: u32,
    second: u32,
    left: u32,
}

impl PerSecond {
    fn new(limit: u32) -> Self {
        PerSecond { limit, second: u32::MAX, left: 0 }
    }

    /// Takes one event from the budget of second `now`, if any is left.
    fn take(&mut self, now: u32) -> bool {
        if now != self.second {
            (self.second, self.left) = (now, self.limit);
        }
        let ok = self.left > 0;
        self.left = self.left.saturating_sub(1);
        ok
    }
}

impl Worker {
    pub fn new(
        id: usize,
        cfg: WorkerConfig,
        shared: Shared,
        counters: Arc<WorkerCounters>,
        mut umem: Umem,
        underlay: XskSocket,
        overlay: XskSocket,
    ) -> Worker {
        let free = umem.take_free_frames();
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
            rx: Vec::with_capacity(BATCH),
            // One overlay frame can fan out to many remotes; the vectors keep their
            // capacity, so pushes after warm-up never allocate.
            to_underlay: Vec::with_capacity(FRAMES as usize),
            to_overlay: Vec::with_capacity(FRAMES as usize),
            replies: Vec::with_capacity(FRAMES as usize),
            to_ports: Vec::with_capacity(FRAMES as usize),
            ip_id: (id as u16).wrapping_mul(0x1f3d),
            now_secs: 0,
            drops_read_at: None,
            reporter,
            pmtu_budget: PerSecond::new(PMTU_REPLIES_PER_SEC),
        }
    }

    /// Runs until the stop flag is set.
    pub fn run(mut self) {
        log::debug!("worker {} running", self.id);
        if self.cfg.nice != 0 {
            if let Err(e) = crate::cpus::set_current_thread_nice(self.cfg.nice) {
                log::warn!("worker {}: cannot set nice {}: {e}", self.id, self.cfg.nice);
            }
        }
        self.refill();
        let mut idle = 0u32;
        while !self.shared.stop.load(Ordering::Relaxed) {
            let moved = self.poll_once();
            if self.drops_read_at != Some(self.now_secs) {
                self.read_kernel_drops();
            }
            if moved > 0 {
                idle = 0;
                self.publish();
                continue;
            }
            idle += 1;
            if idle < 64 {
                std::hint::spin_loop();
                continue;
            }
            // Nothing to do: publish counters and sleep until a socket has frames.
            self.publish();
            let in_flight = self.underlay.tx_outstanding() + self.overlay.tx_outstanding();
            let timeout = if in_flight > 0 || self.free.len() < FRAMES as usize / 2 { 1 } else { 100 };
            let _ = poll_readable(&[self.underlay.fd(), self.overlay.fd()], timeout);
        }
        self.read_kernel_drops();
        self.publish();
        log::debug!("worker {} stopped", self.id);
    }

    /// Publishes the counters, with the sockets' totals of refused descriptors.
    fn publish(&mut self) {
        self.local.drops[DropReason::BadDescriptor as usize] =
            self.underlay.bad_descriptors() + self.overlay.bad_descriptors();
        self.counters.publish(&self.local);
    }

    /// Copies the kernel's drop counters of both sockets: two `getsockopt` calls, once
    /// per second of the table clock (and at exit), never per frame or per wake-up.
    fn read_kernel_drops(&mut self) {
        self.drops_read_at = Some(self.now_secs);
        if let (Ok(u), Ok(o)) = (self.underlay.stats(), self.overlay.stats()) {
            self.local.set_kernel_drops(&u, &o);
        }
        // The UMEM gauge rides on the same once-a-second slow path.
        self.counters.set_umem_in_use(u64::from(self.umem.frames()).saturating_sub(self.free.len() as u64));
    }

    /// One pass over both directions. Returns the number of frames received.
    pub fn poll_once(&mut self) -> usize {
        self.reclaim();
        // The table's coarse clock, not the system clock: perf showed `clock_gettime`
        // once per pass at 7-10% of a polling worker's time.
        self.now_secs = self.shared.fdb.coarse_now_secs();
        if self.cfg.busy_poll {
            self.underlay.busy_poll();
            self.overlay.busy_poll();
        }
        // Underlay → overlay: decapsulate. Snapshots are loaded only for a direction
        // that has frames: an idle pass is ring reads only.
        let n_dec = self.underlay.recv(&mut self.umem, &mut self.rx, BATCH);
        if !self.rx.is_empty() {
            self.decap_batch();
        }

        // Overlay → underlay: encapsulate (and replicate).
        let n_enc = self.overlay.recv(&mut self.umem, &mut self.rx, BATCH);
        if !self.rx.is_empty() {
            let snap = self.shared.fdb.snapshot();
            let hops = self.shared.nexthops.load();
            let ports = self.cfg.ports.then(|| self.shared.ports.snapshot());
            // Moved out for the loop (no allocation: an empty Vec takes its place).
            let mut rx = std::mem::take(&mut self.rx);
            for f in rx.drain(..) {
                self.local.add(Counter::OverlayRxFrames, 1);
                self.local.add(Counter::OverlayRxBytes, f.len() as u64);
                match &ports {
                    Some(p) => self.port_frame(f, &snap, &hops, p),
                    None => self.encap_one(f, &snap, &hops),
                }
            }
            self.rx = rx;
        }

        self.flush();
        self.refill();
        n_dec + n_enc
    }

    /// Decapsulates the frames in `self.rx` onto the overlay TX list.
    fn decap_batch(&mut self) {
        let snap = self.shared.fdb.snapshot();
        let ports = self.cfg.ports.then(|| self.shared.ports.snapshot());
        let now_secs = self.now_secs;
        let own_mac = self.shared.own_mac.load(Ordering::Relaxed);
        // Moved out for the loop (no allocation: an empty Vec takes its place).
        let mut rx = std::mem::take(&mut self.rx);
        for mut f in rx.drain(..) {
            self.local.add(Counter::UnderlayRxFrames, 1);
            self.local.add(Counter::UnderlayRxBytes, f.len() as u64);
            // A frame lies inside its chunk (the socket refuses descriptors that do not).
            match vxlan::decap(self.umem.frame_mut(&f), &self.cfg.decap) {
                Decap::Deliver { inner_start, inner_len, src_vtep, inner_src } => {
                    // The kernel's vxlan_set_mac: loops first, then vxlan_snoop.
                    if mac_key(&inner_src) == own_mac {
                        self.drop_frame(f, DropReason::SrcMacOwn);
                        continue;
                    }
                    match snap.snoop(&inner_src, src_vtep, now_secs) {
                        Snoop::Deliver => {}
                        Snoop::Learn => {
                            let queued = self.shared.fdb.learn(inner_src, src_vtep);
                            self.local.add(if queued { Counter::Learned } else { Counter::LearnQueueFull }, 1);
                        }
                        Snoop::DropInvalid => {
                            self.drop_frame(f, DropReason::SrcMacInvalid);
                            continue;
                        }
                        Snoop::DropPinned => {
                            self.drop_frame(f, DropReason::SrcMacPinned);
                            continue;
                        }
                    }
                    // After learning, as the kernel's vxlan_rcv (vxlan_set_mac, then
                    // vxlan_ecn_decapsulate).
                    if let Err(reason) = vxlan::decap_ecn(self.umem.frame_mut(&f), inner_start..inner_start + inner_len)
                    {
                        self.drop_frame(f, reason);
                        continue;
                    }
                    if let Some(p) = &ports {
                        self.port_deliver(f, inner_start, inner_len, &inner_src, p);
                    } else if f.set_span(f.offset() + inner_start, inner_len) {
                        self.complete_csum(&f);
                        self.to_overlay.push(f);
                    } else {
                        self.drop_frame(f, DropReason::Truncated);
                    }
                }
                Decap::Drop(reason) => self.drop_frame(f, reason),
            }
        }
        self.rx = rx;
    }

    /// Finishes an inner checksum a sender's offload left unfinished (see
    /// [`vxlan::complete_inner_csum`]) in a decapsulated frame, and counts it.
    #[inline]
    fn complete_csum(&mut self, f: &Frame) {
        if vxlan::complete_inner_csum(self.umem.frame_mut(f)) {
            self.local.add(Counter::CsumCompleted, 1);
        }
    }

    /// With `--proxy`, answers an ARP request or neighbour solicitation for a known
    /// address in place and queues the reply back to the overlay (`None`: the frame is
    /// used up); every other frame comes back to be forwarded as usual.
    #[inline]
    fn proxy_reply(&mut self, mut f: Frame) -> Option<Frame> {
        use vxdp_common::hdr::{eth, ethertype};
        if !self.cfg.proxy {
            return Some(f);
        }
        let (start, len) = (f.offset(), f.len());
        let buf = self.umem.chunk_mut(&f);
        let et = buf.get(start + eth::ETHERTYPE..start + eth::ETHERTYPE + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        if et != Some(ethertype::ARP) && et != Some(ethertype::IPV6) {
            return Some(f);
        }
        let table = self.shared.neigh.snapshot();
        let (counter, out_len) = match vxlan::proxy::reply(&mut buf[start..], len, |ip| table.get(&ip).copied()) {
            vxlan::proxy::Proxy::ArpReply { len } => (Counter::ProxyArpReplies, len),
            vxlan::proxy::Proxy::NdReply { len } => (Counter::ProxyNdReplies, len),
            vxlan::proxy::Proxy::NotAsked | vxlan::proxy::Proxy::Unknown => return Some(f),
        };
        if f.set_span(start, out_len) {
            self.local.add(counter, 1);
            self.replies.push(f);
        } else {
            self.drop_frame(f, DropReason::Truncated);
        }
        None
    }

    fn encap_one(&mut self, f: Frame, snap: &FdbSnapshot, hops: &NextHops) {
        let Some(mut f) = self.proxy_reply(f) else { return };
        let start = f.offset();
        let len = f.len();
        // `start + len` fits in the chunk: an invariant of `Frame`.
        if len < 14 || start < OUTER_V4_LEN {
            return self.drop_frame(f, DropReason::Truncated);
        }
        // The underlay bounds what can be sent: `vx0`'s MTU is the user's to raise,
        // as a vxlan device's is. An inner packet without DF goes on, to be sent as
        // outer fragments where the remote's template leaves DF clear.
        let inner_mtu = (self.cfg.underlay_mtu as usize).saturating_sub(OUTER_V4_LEN);
        let buf = self.umem.chunk_mut(&f);
        if len - 14 > inner_mtu && !fragmentable_inner(&buf[start..start + len]) {
            return self.too_big(f, inner_mtu);
        }
        let dst: [u8; 6] = buf[start..start + 6].try_into().expect("6 bytes");
        if let Some(r) = &mut self.reporter {
            r.seen(&buf[start + 6..start + 12].try_into().expect("6 bytes"), self.now_secs);
        }
        let hash = vxlan::flow_hash(&buf[start..start + len]);
        let bits = vxdp_common::outer::outer_bits(&buf[start..start + len], self.cfg.inherit);
        let src_port = self.cfg.srcport.pick(hash);

        let unicast = if dst[0] & 1 == 0 { snap.lookup(&dst) } else { None };
        let remotes = match unicast {
            Some(r) => r,
            None => snap.flood(),
        };
        let Some((last, copies)) = remotes.split_last() else {
            return self.drop_frame(f, DropReason::NoFdbEntry);
        };
        if unicast.is_none() {
            self.local.add(Counter::Flooded, 1);
        }

        // Every remote but the last gets a copy; the last one gets the original frame.
        // A remote whose path cannot carry the frame gets none; a unicast frame is
        // answered with ICMP "fragmentation needed" (`too_big`).
        for remote in copies {
            let Some(tpl) = hops.get(remote) else {
                self.local.drop(DropReason::NoNeighbour);
                continue;
            };
            let fragments = len - 14 > tpl.max_inner_len();
            if fragments && !self.fragmentable(&f, tpl) {
                self.local.drop(DropReason::MtuExceeded);
                continue;
            }
            self.ip_id = self.ip_id.wrapping_add(1);
            let Some(mut copy) = self.free.pop() else {
                self.local.drop(DropReason::NoFrame);
                continue;
            };
            let at = RX_HEADROOM as usize;
            let (src, dstbuf) = self.umem.two_chunks_mut(&f, &copy);
            dstbuf[at..at + len].copy_from_slice(&src[start..start + len]);
            let encapped = vxlan::encap(dstbuf, at, len, tpl, src_port, self.ip_id).inspect(|&out| {
                vxlan::set_outer_bits(dstbuf, out, bits);
            });
            match encapped {
                Ok(out) if copy.set_span(out, len + OUTER_V4_LEN) => self.send_underlay(copy, fragments, tpl),
                Ok(_) => self.drop_frame(copy, DropReason::Truncated),
                Err(r) => self.drop_frame(copy, r),
            }
        }
        let Some(tpl) = hops.get(last) else {
            return self.drop_frame(f, DropReason::NoNeighbour);
        };
        let fragments = len - 14 > tpl.max_inner_len();
        if fragments && !self.fragmentable(&f, tpl) {
            return match unicast {
                Some(_) => self.too_big(f, tpl.max_inner_len()),
                None => self.drop_frame(f, DropReason::MtuExceeded),
            };
        }
        self.ip_id = self.ip_id.wrapping_add(1);
        let buf = self.umem.chunk_mut(&f);
        let encapped = vxlan::encap(buf, start, len, tpl, src_port, self.ip_id).inspect(|&out| {
            vxlan::set_outer_bits(buf, out, bits);
        });
        match encapped {
            Ok(out) if f.set_span(out, len + OUTER_V4_LEN) => self.send_underlay(f, fragments, tpl),
            Ok(_) => self.drop_frame(f, DropReason::Truncated),
            Err(r) => self.drop_frame(f, r),
        }
    }

    /// Queues an encapsulated frame for the underlay; with `fragments`, as the outer
    /// IPv4 fragments its path MTU allows (`vxlan::frag`).
    #[inline]
    fn send_underlay(&mut self, f: Frame, fragments: bool, tpl: &vxlan::OuterTemplate) {
        if fragments {
            self.send_fragments(f, usize::from(tpl.params().path_mtu));
        } else {
            self.to_underlay.push(f);
        }
    }

    /// Whether the kernel would fragment the outer packet of this overlay frame rather
    /// than answer or drop it: its outer DF is clear (the template's, and the inner
    /// packet's with `--df inherit`), and it is not an IPv4 packet with DF or an IPv6
    /// one (those get ICMP "too big", `skb_tunnel_check_pmtu`).
    #[cold]
    fn fragmentable(&mut self, f: &Frame, tpl: &vxlan::OuterTemplate) -> bool {
        let (start, len) = (f.offset(), f.len());
        let inner = &self.umem.chunk_mut(f)[start..start + len];
        !tpl.params().df && fragmentable_inner(inner)
    }

    /// Sends the encapsulated frame `f` as fragments of at most `mtu` IP bytes: the
    /// rest copied into free frames first, then `f` cut to the first, queued in order.
    /// Without enough free frames none is sent (`no_frame`).
    #[cold]
    fn send_fragments(&mut self, mut f: Frame, mtu: usize) {
        let (start, len) = (f.offset(), f.len());
        let Some((per, count)) = vxlan::frag::plan(len - 14, mtu) else {
            return self.to_underlay.push(f);
        };
        let first_at = self.to_underlay.len();
        for k in 1..count {
            let Some(mut c) = self.free.pop() else {
                return self.unqueue_fragments(f, first_at, DropReason::NoFrame);
            };
            let at = RX_HEADROOM as usize;
            let (src, dst) = self.umem.two_chunks_mut(&f, &c);
            match vxlan::frag::write_fragment(&src[start..start + len], per, k, count, &mut dst[at..]) {
                Some(n) if c.set_span(at, n) => self.to_underlay.push(c),
                _ => {
                    self.free.push(c);
                    return self.unqueue_fragments(f, first_at, DropReason::Truncated);
                }
            }
        }
        let buf = self.umem.chunk_mut(&f);
        let n = vxlan::frag::make_first(&mut buf[start..start + len], per);
        if !f.set_span(start, n) {
            return self.unqueue_fragments(f, first_at, DropReason::Truncated);
        }
        self.local.add(Counter::EncapFragments, (count - 1) as u64);
        self.to_underlay.insert(first_at, f);
    }

    /// Takes back the fragments queued from `first_at` on and drops the packet once.
    #[cold]
    fn unqueue_fragments(&mut self, f: Frame, first_at: usize, reason: DropReason) {
        self.free.extend(self.to_underlay.drain(first_at..));
        self.drop_frame(f, reason);
    }

    /// An inner frame too big for the underlay: answered with ICMP "fragmentation
    /// needed" / ICMPv6 "packet too big" for `inner_mtu` when the kernel would answer
    /// it (`vxlan::pmtu`), else dropped. (Inner packets without DF do not come here
    /// unless their outer DF is set: they go as outer fragments, `send_fragments`.)
    #[cold]
    fn too_big(&mut self, mut f: Frame, inner_mtu: usize) {
        let (start, len) = (f.offset(), f.len());
        let buf = self.umem.chunk_mut(&f);
        match vxlan::pmtu::too_big_reply(&mut buf[start..], len, inner_mtu) {
            Some(n) if self.pmtu_budget.take(self.now_secs) && f.set_span(start, n) => {
                self.local.add(Counter::PmtuReplies, 1);
                self.local.drop(DropReason::MtuExceeded);
                self.replies.push(f);
            }
            _ => self.drop_frame(f, DropReason::MtuExceeded),
        }
    }

    #[inline]
    fn drop_frame(&mut self, f: Frame, reason: DropReason) {
        self.local.drop(reason);
        self.free.push(f);
    }

    /// Submits the pending TX frames of both directions and kicks the kernel.
    fn flush(&mut self) {
        let (umem, free, local) = (&mut self.umem, &mut self.free, &mut self.local);
        submit(
            &mut self.overlay,
            umem,
            &mut self.to_overlay,
            free,
            local,
            Some([Counter::DecapFrames, Counter::DecapBytes]),
        );
        submit(&mut self.overlay, umem, &mut self.replies, free, local, None);
        submit(
            &mut self.overlay,
            umem,
            &mut self.to_ports,
            free,
            local,
            Some([Counter::PortTxFrames, Counter::PortTxBytes]),
        );
        submit(
            &mut self.underlay,
            umem,
            &mut self.to_underlay,
            free,
            local,
            Some([Counter::EncapFrames, Counter::EncapBytes]),
        );
        kick(&self.overlay);
        kick(&self.underlay);
    }

    /// Takes completed TX frames back from both sockets.
    fn reclaim(&mut self) {
        for sock in [&mut self.underlay, &mut self.overlay] {
            // The free list has room for every frame, so pushes never allocate.
            while sock.complete(&mut self.umem, &mut self.free, COMP_BATCH) == COMP_BATCH {}
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
            // `fill` takes what fits of the last `want` free frames (normally all).
            sock.fill(&mut self.umem, &mut self.free, want);
            sock.kick_fill();
        }
    }
}

/// Queues `queue` on `sock`'s TX ring and counts what went as `[frames, bytes]` (if
/// given: proxy replies are counted when made); what did not fit is dropped
/// (`TxRingFull`) back onto the free list. Leaves `queue` empty.
fn submit(
    sock: &mut XskSocket,
    umem: &mut Umem,
    queue: &mut Vec<Frame>,
    free: &mut Vec<Frame>,
    local: &mut LocalCounters,
    counters: Option<[Counter; 2]>,
) {
    if queue.is_empty() {
        return;
    }
    let queued_bytes: u64 = queue.iter().map(|f| f.len() as u64).sum();
    let sent = sock.send(umem, queue);
    let unsent_bytes: u64 = queue.iter().map(|f| f.len() as u64).sum();
    if let Some([frames, bytes]) = counters {
        local.add(frames, sent as u64);
        local.add(bytes, queued_bytes - unsent_bytes);
    }
    for f in queue.drain(..) {
        local.drop(DropReason::TxRingFull);
        free.push(f);
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
