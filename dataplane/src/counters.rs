//! Per-worker data-path counters and the drop reasons that index them.
//!
//! Each worker owns one [`WorkerCounters`] on its own cache line and is its only writer:
//! it accumulates into a plain [`LocalCounters`] during a batch and publishes with
//! relaxed stores (no read-modify-write atomics) once per batch. Readers (`vxdp stats`)
//! load each field and sum over workers.
#![forbid(unsafe_code)]

use crate::afxdp::xsk::SocketStats;
use std::sync::atomic::{AtomicU64, Ordering};
use vxdp_control::ctl::{Drops, WorkerStats};

vxdp_common::counter_enum! {
    /// Why a frame was dropped by the data path. Indexes the drop counters; the name is
    /// printed by `vxdp stats` prefixed `drop_`.
    pub enum DropReason: u8 {
        /// Outer or inner header shorter than its fixed part, or lengths that do not add up.
        Truncated = 0 => "truncated",
        /// Outer header present but invalid (IP version, IHL, total length, ...).
        BadHeader = 1 => "bad_header",
        /// Not VXLAN for this VTEP: wrong UDP port, not addressed to a local address, not UDP.
        NotVxlan = 2 => "not_vxlan",
        /// VXLAN header without the I flag, or with reserved bits set where RFC 7348 says zero.
        BadFlags = 3 => "bad_flags",
        /// VNI other than the configured one.
        WrongVni = 4 => "wrong_vni",
        /// Frame longer than the path allows (overlay MTU on decap, underlay MTU on encap).
        MtuExceeded = 5 => "mtu_exceeded",
        /// Encap: no FDB entry and no all-zeros (flood) entry for the destination.
        NoFdbEntry = 6 => "no_fdb_entry",
        /// Encap: the VTEP's underlay next hop (route or neighbour) is not resolved yet.
        NoNeighbour = 7 => "no_neighbour",
        /// TX ring had no room for the frame.
        TxRingFull = 8 => "tx_ring_full",
        /// No free UMEM frame (for replication).
        NoFrame = 9 => "no_frame",
        /// Dropped by the kernel before the worker saw it: the underlay socket's RX ring was
        /// full (the worker fell behind). From the socket's `XDP_STATISTICS`.
        UnderlayRxRingFull = 10 => "underlay_rx_ring_full",
        /// As `UnderlayRxRingFull`, on the overlay socket.
        OverlayRxRingFull = 11 => "overlay_rx_ring_full",
        /// Dropped by the kernel: no buffer on the underlay socket's fill ring (or a frame
        /// larger than a UMEM chunk). From `XDP_STATISTICS` (`rx_dropped`).
        UnderlayNoRxBuffer = 12 => "underlay_no_rx_buffer",
        /// As `UnderlayNoRxBuffer`, on the overlay socket.
        OverlayNoRxBuffer = 13 => "overlay_no_rx_buffer",
        /// A descriptor from an RX or completion ring naming memory the socket did not
        /// give the kernel (outside the UMEM, across a chunk, or a chunk not on that
        /// ring): dropped without touching it.
        BadDescriptor = 14 => "bad_descriptor",
        /// Decap: the inner source MAC is the overlay device's own (a loop), as the
        /// kernel's `vxlan_set_mac` drops.
        SrcMacOwn = 15 => "src_mac_own",
        /// Decap, learning on: a static or store entry pins the inner source MAC behind
        /// another VTEP (`vxlan_snoop`: "don't migrate static entries, drop packets").
        SrcMacPinned = 16 => "src_mac_pinned",
        /// Decap, learning on: the inner source MAC is zero or multicast (`vxlan_snoop`).
        SrcMacInvalid = 17 => "src_mac_invalid",
        /// Decap: the outer header is marked CE (congestion) but the inner packet is not
        /// ECN-capable, so the mark cannot be passed on (RFC 6040; the kernel drops it too).
        EcnCeNotEct = 18 => "ecn_ce_not_ect",
        /// Port layout: a trunk frame without a valid trunk header, or from an interface
        /// that is no longer a port.
        NotAPort = 19 => "not_a_port",
        /// Port layout: a frame to a MAC on the port it came from (a bridge drops these too).
        PortLoop = 20 => "port_loop",
        /// Port layout: a decapsulated frame with no port to deliver it to.
        NoPort = 21 => "no_port",
    }
}

vxdp_common::counter_enum! {
    /// Traffic counters, in the order they are published.
    pub enum Counter: u8 {
        /// Frames/bytes read from the underlay AF_XDP socket.
        UnderlayRxFrames = 0 => "underlay_rx_frames",
        UnderlayRxBytes = 1 => "underlay_rx_bytes",
        /// Inner frames/bytes written to the overlay netdev after decapsulation.
        DecapFrames = 2 => "decap_frames",
        DecapBytes = 3 => "decap_bytes",
        /// Frames/bytes read from the overlay netdev.
        OverlayRxFrames = 4 => "overlay_rx_frames",
        OverlayRxBytes = 5 => "overlay_rx_bytes",
        /// VXLAN frames/bytes sent on the underlay (a replicated frame counts once per copy).
        EncapFrames = 6 => "encap_frames",
        EncapBytes = 7 => "encap_bytes",
        /// Overlay frames sent by head-end replication to the all-zeros entries.
        Flooded = 8 => "flooded",
        /// Source MAC learning events handed to the control thread.
        Learned = 9 => "learned",
        /// Learning events lost because the queue to the control thread was full (the
        /// frame itself was delivered; the next one from that MAC tries again).
        LearnQueueFull = 10 => "learn_queue_full",
        /// Decapsulated TCP/UDP segments whose checksum the sender's offload left
        /// unfinished (only the pseudo-header sum), completed before delivery.
        CsumCompleted = 11 => "csum_completed",
        /// ARP requests answered from the proxy table (`--proxy`), not flooded.
        ProxyArpReplies = 12 => "proxy_arp_replies",
        /// IPv6 neighbour solicitations answered from the proxy table, not flooded.
        ProxyNdReplies = 13 => "proxy_nd_replies",
        /// Port layout: frames/bytes the workers delivered from one port into another
        /// (switched, or a flooded frame once per port; decapsulated frames are `decap_*`).
        PortTxFrames = 14 => "port_tx_frames",
        PortTxBytes = 15 => "port_tx_bytes",
        /// Port layout: frames from a port flooded to the other ports (once per frame).
        PortFlooded = 16 => "port_flooded",
        /// Overlay frames too big for the underlay answered with ICMP "fragmentation
        /// needed" / ICMPv6 "packet too big" back into the overlay (the frame itself is
        /// counted as `mtu_exceeded`).
        PmtuReplies = 17 => "pmtu_replies",
        /// Underlay frames beyond the first of outer IPv4 packets sent as fragments (an
        /// inner packet without DF too big for its path, as the kernel fragments it);
        /// each fragment is also one of `encap_frames`.
        EncapFragments = 18 => "encap_fragments",
    }
}

/// A worker's private tally for the batch in progress: plain integers, no atomics.
#[derive(Clone, Debug, Default)]
pub struct LocalCounters {
    pub traffic: [u64; Counter::COUNT],
    pub drops: [u64; DropReason::COUNT],
}

impl LocalCounters {
    #[inline(always)]
    pub fn add(&mut self, c: Counter, n: u64) {
        self.traffic[c as usize] += n;
    }

    #[inline(always)]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// Takes the kernel's drop totals of the worker's two sockets (cumulative over the
    /// sockets' life, which is the worker's).
    pub fn set_kernel_drops(&mut self, underlay: &SocketStats, overlay: &SocketStats) {
        self.drops[DropReason::UnderlayRxRingFull as usize] = underlay.rx_ring_full;
        self.drops[DropReason::OverlayRxRingFull as usize] = overlay.rx_ring_full;
        self.drops[DropReason::UnderlayNoRxBuffer as usize] = underlay.rx_dropped;
        self.drops[DropReason::OverlayNoRxBuffer as usize] = overlay.rx_dropped;
    }
}

/// The published counters of one worker, on their own cache lines.
#[repr(align(128))]
#[derive(Debug, Default)]
pub struct WorkerCounters {
    traffic: [AtomicU64; Counter::COUNT],
    drops: [AtomicU64; DropReason::COUNT],
    /// A gauge, not a counter: UMEM frames off the worker's free list (in the fill,
    /// RX, TX and completion rings, or in hand), set about once a second.
    umem_in_use: AtomicU64,
}

impl WorkerCounters {
    /// Publishes the worker's running totals. Only the owning worker calls this.
    #[inline]
    pub fn publish(&self, local: &LocalCounters) {
        for (slot, v) in self.traffic.iter().zip(local.traffic.iter()) {
            slot.store(*v, Ordering::Relaxed);
        }
        for (slot, v) in self.drops.iter().zip(local.drops.iter()) {
            slot.store(*v, Ordering::Relaxed);
        }
    }

    /// A consistent-enough copy for reporting.
    /// Records the UMEM frames the worker holds outside its free list (once a second,
    /// beside the kernel's socket drop counters; never per frame or batch).
    pub fn set_umem_in_use(&self, frames: u64) {
        self.umem_in_use.store(frames, Ordering::Relaxed);
    }

    /// The last [`set_umem_in_use`](Self::set_umem_in_use) value.
    pub fn umem_in_use(&self) -> u64 {
        self.umem_in_use.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> LocalCounters {
        let mut out = LocalCounters::default();
        for (o, slot) in out.traffic.iter_mut().zip(self.traffic.iter()) {
            *o = slot.load(Ordering::Relaxed);
        }
        for (o, slot) in out.drops.iter_mut().zip(self.drops.iter()) {
            *o = slot.load(Ordering::Relaxed);
        }
        out
    }
}

/// Counters as reported over the control socket (`vxdp stats`): the fixed counters by
/// field, the drops by [`DropReason::name`].
impl From<&LocalCounters> for WorkerStats {
    fn from(c: &LocalCounters) -> Self {
        let t = |k: Counter| c.traffic[k as usize];
        WorkerStats {
            csum_completed: t(Counter::CsumCompleted),
            decap_bytes: t(Counter::DecapBytes),
            decap_frames: t(Counter::DecapFrames),
            drops: Drops(DropReason::ALL.iter().map(|&r| (r.name().to_string(), c.drops[r as usize])).collect()),
            encap_bytes: t(Counter::EncapBytes),
            encap_fragments: t(Counter::EncapFragments),
            encap_frames: t(Counter::EncapFrames),
            flooded: t(Counter::Flooded),
            learn_queue_full: t(Counter::LearnQueueFull),
            learned: t(Counter::Learned),
            overlay_rx_bytes: t(Counter::OverlayRxBytes),
            overlay_rx_frames: t(Counter::OverlayRxFrames),
            proxy_arp_replies: t(Counter::ProxyArpReplies),
            proxy_nd_replies: t(Counter::ProxyNdReplies),
            port_flooded: t(Counter::PortFlooded),
            port_tx_bytes: t(Counter::PortTxBytes),
            port_tx_frames: t(Counter::PortTxFrames),
            pmtu_replies: t(Counter::PmtuReplies),
            underlay_rx_bytes: t(Counter::UnderlayRxBytes),
            underlay_rx_frames: t(Counter::UnderlayRxFrames),
        }
    }
}

impl LocalCounters {
    /// Adds another worker's totals into this one.
    pub fn accumulate(&mut self, other: &LocalCounters) {
        for (a, b) in self.traffic.iter_mut().zip(other.traffic.iter()) {
            *a += b;
        }
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_slot_and_name() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?} is out of order in ALL");
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn kernel_drops_land_per_socket_and_are_totals_not_increments() {
        let mut c = LocalCounters::default();
        let under = SocketStats { rx_ring_full: 7, rx_dropped: 3, ..Default::default() };
        let over = SocketStats { rx_ring_full: 11, rx_dropped: 5, ..Default::default() };
        c.set_kernel_drops(&under, &over);
        c.set_kernel_drops(&under, &over);
        let json = serde_json::to_value(WorkerStats::from(&c)).unwrap();
        let get = |n: &str| json[n].as_u64();
        assert_eq!(get("drop_underlay_rx_ring_full"), Some(7));
        assert_eq!(get("drop_overlay_rx_ring_full"), Some(11));
        assert_eq!(get("drop_underlay_no_rx_buffer"), Some(3));
        assert_eq!(get("drop_overlay_no_rx_buffer"), Some(5));
    }

    #[test]
    fn stats_keys_are_the_counter_and_reason_names() {
        let mut c = LocalCounters::default();
        for (i, k) in Counter::ALL.into_iter().enumerate() {
            c.add(k, 100 + i as u64);
        }
        for (i, r) in DropReason::ALL.into_iter().enumerate() {
            c.drops[r as usize] = 200 + i as u64;
        }
        let json = serde_json::to_value(WorkerStats::from(&c)).unwrap();
        let mut want: Vec<(String, u64)> =
            Counter::ALL.iter().map(|&k| (k.name().to_string(), 100 + k as u64)).collect();
        want.extend(DropReason::ALL.iter().map(|&r| (format!("drop_{}", r.name()), 200 + r as u64)));
        want.sort();
        let got: Vec<(String, u64)> =
            json.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
        assert_eq!(got, want);
    }
}

/// Watches the kernel's AF_XDP drops per worker and says so in the log when a worker
/// falls behind: most often because softirq work is steered onto its core (see the
/// README). At most one warning per worker and side per `quiet` interval.
pub struct OverloadWatch {
    last: Vec<LocalCounters>,
    warned_at: Vec<[Option<std::time::Instant>; 2]>,
    quiet: std::time::Duration,
}

/// A worker losing frames before it sees them, over one interval.
#[derive(Debug, PartialEq, Eq)]
pub struct Overload {
    pub worker: usize,
    /// "underlay" or "overlay".
    pub side: &'static str,
    pub dropped: u64,
    pub received: u64,
}

impl OverloadWatch {
    /// Fewer kernel drops than this in one interval are never reported.
    const MIN_DROPS: u64 = 1000;

    pub fn new(workers: usize, quiet: std::time::Duration) -> OverloadWatch {
        OverloadWatch { last: vec![LocalCounters::default(); workers], warned_at: vec![[None; 2]; workers], quiet }
    }

    /// Compares `now_counters` (one per worker) with the previous call's; returns the
    /// workers and sides that dropped more frames than they received (and at least
    /// `MIN_DROPS`) and were not reported within `quiet`.
    pub fn check(&mut self, now_counters: &[LocalCounters], now: std::time::Instant) -> Vec<Overload> {
        let mut out = Vec::new();
        for (w, (cur, prev)) in now_counters.iter().zip(self.last.iter()).enumerate() {
            let sides = [
                ("underlay", DropReason::UnderlayRxRingFull, DropReason::UnderlayNoRxBuffer, Counter::UnderlayRxFrames),
                ("overlay", DropReason::OverlayRxRingFull, DropReason::OverlayNoRxBuffer, Counter::OverlayRxFrames),
            ];
            for (s, (side, full, nobuf, rx)) in sides.into_iter().enumerate() {
                let delta = |v: &LocalCounters| v.drops[full as usize] + v.drops[nobuf as usize];
                let dropped = delta(cur).saturating_sub(delta(prev));
                let received = cur.traffic[rx as usize].saturating_sub(prev.traffic[rx as usize]);
                let recent = self.warned_at[w][s].is_some_and(|t| now.duration_since(t) < self.quiet);
                if dropped >= Self::MIN_DROPS && dropped > received && !recent {
                    self.warned_at[w][s] = Some(now);
                    out.push(Overload { worker: w, side, dropped, received });
                }
            }
        }
        self.last = now_counters.to_vec();
        out
    }
}

#[cfg(test)]
mod overload_tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn at(overlay_rx: u64, overlay_full: u64) -> LocalCounters {
        let mut c = LocalCounters::default();
        c.traffic[Counter::OverlayRxFrames as usize] = overlay_rx;
        c.drops[DropReason::OverlayRxRingFull as usize] = overlay_full;
        c
    }

    #[test]
    fn warns_when_a_worker_drops_more_than_it_takes_then_stays_quiet() {
        let mut w = OverloadWatch::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(w.check(&[at(0, 0)], t0).is_empty());
        // Busy but keeping up: a few drops, many frames.
        assert!(w.check(&[at(100_000, 500)], t0 + Duration::from_secs(5)).is_empty());
        // Drops outnumber what the worker received: one warning.
        let got = w.check(&[at(101_000, 50_500)], t0 + Duration::from_secs(10));
        assert_eq!(got, vec![Overload { worker: 0, side: "overlay", dropped: 50_000, received: 1_000 }]);
        // Still overloaded, but within the quiet interval: nothing.
        assert!(w.check(&[at(102_000, 100_500)], t0 + Duration::from_secs(15)).is_empty());
        // After it: again.
        assert_eq!(w.check(&[at(103_000, 150_500)], t0 + Duration::from_secs(80)).len(), 1);
    }
}
