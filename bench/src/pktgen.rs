//! A traffic generator and sink on AF_XDP (copy mode), built on [`vxdp::afxdp::xsk`].
//!
//! - [`TxPort`]: one AF_XDP socket on one queue of the generator's interface, with its
//!   own UMEM holding a prebuilt frame per slot; sending only patches the [`Stamp`].
//! - [`RxPort`]: one AF_XDP socket on one queue of the sink's interface; vxdp's
//!   `vxdp_overlay` XDP program (attached by [`SinkXdp`]) steers every frame to it.
//! - [`Tester`]: drives both from one thread: a TX batch, then a pass over the RX
//!   sockets, so a rate-limited run never competes with a second busy thread for the
//!   core it is pinned to. It counts loss, reordering and latency ([`PhaseResult`]).
//!
//! Every loop is bounded by the phase's duration; nothing allocates per packet.

use crate::frame::{find_stamp, FrameSpec, Stamp};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};
use vxdp::afxdp::xsk::{Frame, RingSizes, Umem, XskSocket, RX_HEADROOM};
use vxdp::xdp::{XdpMode, XdpPrograms};

/// Frames per ring call.
pub const BATCH: usize = 64;
/// UMEM frames per port.
const PORT_FRAMES: u32 = 4096;
/// `sendto` kicks per TX batch at most (copy mode moves 32 frames per kick).
const MAX_KICKS: u32 = 8;
/// Latency histogram range: 1 µs .. 1 s in ns, 3 significant digits.
const LAT_MAX_NS: u64 = 1_000_000_000;

/// CLOCK_MONOTONIC in nanoseconds (the same clock in every namespace).
#[inline(always)]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we pass; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Drives copy-mode TX: a `sendto` moves at most 32 frames, so repeat while frames
/// are outstanding and the kernel makes progress.
fn kick(sock: &XskSocket) {
    for _ in 0..MAX_KICKS {
        let before = sock.tx_outstanding();
        if before == 0 || sock.kick_tx().is_err() || sock.tx_outstanding() == before {
            break;
        }
    }
}

/// One generator socket: its UMEM holds `slots` prebuilt frames used round-robin.
pub struct TxPort {
    umem: Umem,
    sock: XskSocket,
    /// Slots in use (a multiple of `flows.len()`, so slot `s` always carries flow `flows[s % n]`).
    slots: u32,
    flows: Vec<u16>,
    frame_len: u32,
    stamp_at: usize,
    /// Prebuilt frames off the TX ring, in the order they go out (completions come back
    /// in TX order, so this stays round-robin over the slots).
    ready: VecDeque<Frame>,
    in_flight: u32,
    /// The batch being queued (capacity BATCH).
    batch: Vec<Frame>,
    /// Completions of one ring call (capacity BATCH * 4).
    comp: Vec<Frame>,
}

impl TxPort {
    /// Binds a socket to `ifindex`/`queue` (in the calling thread's network namespace)
    /// and prebuilds a frame of `spec` for each slot, cycling through `flows`.
    pub fn new(ifindex: u32, queue: u32, spec: &FrameSpec, flows: Vec<u16>) -> io::Result<TxPort> {
        assert!(!flows.is_empty() && flows.len() <= PORT_FRAMES as usize / 2, "1..=2048 flows per port");
        let mut umem = Umem::new(PORT_FRAMES)?;
        let sizes = RingSizes { rx: 64, tx: 2048, fill: 64, comp: 2048 };
        let sock = XskSocket::bind(&umem, ifindex, queue, None, sizes)?;
        let slots = (PORT_FRAMES / flows.len() as u32) * flows.len() as u32;
        let mut frame_len = 0;
        let mut ready: VecDeque<Frame> = umem.take_free_frames().into_iter().take(slots as usize).collect();
        for f in &mut ready {
            let chunk = umem.chunk_mut(f);
            frame_len = spec.write(&mut chunk[RX_HEADROOM as usize..], flows[f.index() % flows.len()]) as u32;
            assert!(f.set_span(RX_HEADROOM as usize, frame_len as usize), "the frame spec fits in a UMEM frame");
        }
        Ok(TxPort {
            umem,
            sock,
            slots,
            flows,
            frame_len,
            stamp_at: RX_HEADROOM as usize + spec.stamp_offset(),
            ready,
            in_flight: 0,
            batch: Vec::with_capacity(BATCH),
            comp: Vec::with_capacity(BATCH * 4),
        })
    }

    /// Takes completions back; returns how many frames can be queued now.
    fn reclaim(&mut self) -> u32 {
        loop {
            let n = self.sock.complete(&mut self.umem, &mut self.comp, BATCH * 4);
            self.in_flight -= self.comp.len() as u32;
            // Back with an empty span: the prebuilt frame is still in the chunk.
            for mut f in self.comp.drain(..) {
                let _ = f.set_span(RX_HEADROOM as usize, self.frame_len as usize);
                self.ready.push_back(f);
            }
            if n < BATCH * 4 {
                break;
            }
        }
        // Keep half the slots off the ring: the ring holds 2048 descriptors.
        (self.slots / 2).saturating_sub(self.in_flight)
    }

    /// Stamps and queues up to `max` frames with sequence numbers from `*seq`; returns
    /// how many the TX ring took.
    fn send(&mut self, max: usize, seq: &mut u64, now: u64) -> usize {
        let n = max.min(BATCH).min(self.reclaim() as usize).min(self.ready.len());
        for (i, f) in self.ready.drain(..n).enumerate() {
            let flow = self.flows[f.index() % self.flows.len()];
            let st = Stamp { flow, seq: *seq + i as u64, sent_ns: now };
            st.write_at(self.umem.chunk_mut(&f), self.stamp_at);
            self.batch.push(f);
        }
        let sent = self.sock.send(&mut self.umem, &mut self.batch);
        // What the ring did not take goes out first next time.
        while let Some(f) = self.batch.pop() {
            self.ready.push_front(f);
        }
        self.in_flight += sent as u32;
        *seq += sent as u64;
        kick(&self.sock);
        sent
    }

    /// Pushes out what is still queued, for at most `within`.
    fn drain(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.sock.tx_outstanding() > 0 && Instant::now() < deadline {
            kick(&self.sock);
        }
        self.reclaim();
    }
}

/// One sink socket; frames go straight back to its fill ring after inspection.
pub struct RxPort {
    umem: Umem,
    sock: XskSocket,
    /// The batch just received (capacity BATCH, back on the fill ring each pass).
    rx: Vec<Frame>,
}

impl RxPort {
    /// Binds a socket to `ifindex`/`queue` and stocks its fill ring.
    pub fn new(ifindex: u32, queue: u32) -> io::Result<RxPort> {
        let mut umem = Umem::new(PORT_FRAMES)?;
        let sizes = RingSizes { rx: 2048, tx: 64, fill: 4096, comp: 64 };
        let mut sock = XskSocket::bind(&umem, ifindex, queue, None, sizes)?;
        let mut frames = umem.take_free_frames();
        sock.fill(&mut umem, &mut frames, PORT_FRAMES as usize);
        Ok(RxPort { umem, sock, rx: Vec::with_capacity(BATCH) })
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        self.sock.fd()
    }

    /// Receives one batch and accounts it in `acc`; returns the number of frames.
    fn poll(&mut self, acc: &mut Accounting, now: u64) -> usize {
        let n = self.sock.recv(&mut self.umem, &mut self.rx, BATCH);
        for f in &self.rx {
            acc.account(find_stamp(self.umem.frame_mut(f)), f.len() as u32, now);
        }
        if n > 0 {
            // The fill ring has a slot for every frame of the UMEM, so it takes them all.
            self.sock.fill(&mut self.umem, &mut self.rx, BATCH);
            self.rx.clear();
            self.sock.kick_fill();
        }
        n
    }
}

/// Attaches vxdp's `vxdp_overlay` program (every frame to the AF_XDP socket of its
/// queue) to a sink interface; detached on drop.
pub struct SinkXdp {
    _programs: XdpPrograms,
}

impl SinkXdp {
    /// In the calling thread's namespace: registers `ports` by queue and attaches
    /// to `ifname` in native mode.
    pub fn attach(ifname: &str, ports: &[RxPort]) -> Result<SinkXdp, vxdp::xdp::XdpError> {
        let mut p = XdpPrograms::load(&vxdp_common::UnderlayConfig::default())?;
        for (q, port) in ports.iter().enumerate() {
            p.register_overlay_socket(q as u32, port.fd())?;
        }
        p.attach_overlay(ifname, XdpMode::Native)?;
        Ok(SinkXdp { _programs: p })
    }
}

/// Per-flow state and totals of one phase at the sink.
struct Accounting {
    received: u64,
    bytes: u64,
    foreign: u64,
    reordered: u64,
    last_seq: Vec<u64>,
    hist: Histogram<u64>,
    /// Only frames stamped at or after this time count (older ones are stragglers).
    since_ns: u64,
}

impl Accounting {
    fn new(flows: usize, since_ns: u64) -> Accounting {
        Accounting {
            received: 0,
            bytes: 0,
            foreign: 0,
            reordered: 0,
            last_seq: vec![0; flows],
            hist: Histogram::new_with_bounds(1, LAT_MAX_NS, 3).expect("valid histogram bounds"),
            since_ns,
        }
    }

    #[inline(always)]
    fn account(&mut self, stamp: Option<Stamp>, len: u32, now: u64) {
        let Some(st) = stamp.filter(|s| s.sent_ns >= self.since_ns && (s.flow as usize) < self.last_seq.len()) else {
            self.foreign += 1;
            return;
        };
        self.received += 1;
        self.bytes += u64::from(len);
        let last = &mut self.last_seq[st.flow as usize];
        // Sequence numbers start at 1, so 0 means "nothing seen yet".
        if st.seq + 1 < *last {
            self.reordered += 1;
        } else {
            *last = st.seq + 1;
        }
        let _ = self.hist.record(now.saturating_sub(st.sent_ns).clamp(1, LAT_MAX_NS));
    }
}

/// What one phase measured.
#[derive(Clone, Debug)]
pub struct PhaseResult {
    pub duration: Duration,
    pub sent: u64,
    pub received: u64,
    /// Bytes of the received frames as the sink saw them.
    pub rx_bytes: u64,
    /// Frames without our stamp (ARP, IPv6, stragglers of the previous phase).
    pub foreign: u64,
    pub reordered: u64,
    pub latency: Histogram<u64>,
}

impl PhaseResult {
    /// Received frames per second, in millions.
    pub fn rx_mpps(&self) -> f64 {
        self.received as f64 / self.duration.as_secs_f64() / 1e6
    }

    /// Fraction of sent frames that did not arrive (0 if none were sent).
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        self.sent.saturating_sub(self.received) as f64 / self.sent as f64
    }

    /// Latency percentile in microseconds.
    pub fn latency_us(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1e3
    }
}

/// Generator and sink driven by one thread.
pub struct Tester {
    pub tx: Vec<TxPort>,
    pub rx: Vec<RxPort>,
    pub flows: usize,
}

impl Tester {
    /// Sends for `duration` at `rate` frames/s (or as fast as possible), spread over
    /// the TX ports in turn, while receiving; then keeps receiving for `drain`.
    pub fn run(&mut self, duration: Duration, rate: Option<f64>, drain: Duration) -> PhaseResult {
        assert!(!self.tx.is_empty(), "no TX port");
        let start_ns = now_ns();
        let mut acc = Accounting::new(self.flows, start_ns);
        let mut seq: u64 = 0;
        let mut port = 0usize;
        let mut now = start_ns;
        loop {
            let elapsed_ns = now - start_ns;
            if elapsed_ns >= duration.as_nanos() as u64 {
                break;
            }
            let budget = match rate {
                Some(r) => ((elapsed_ns as f64 * r / 1e9) as u64).saturating_sub(seq) as usize,
                None => BATCH,
            };
            if budget > 0 {
                let mut s = seq + 1; // stamps carry seq + 1 (0 = none seen)
                self.tx[port].send(budget, &mut s, now);
                seq = s - 1;
                port = (port + 1) % self.tx.len();
            }
            // One clock read per pass: it stamps the next TX batch and times this RX pass.
            now = now_ns();
            for p in &mut self.rx {
                p.poll(&mut acc, now);
            }
        }
        let sent = seq;
        for p in &mut self.tx {
            p.drain(drain);
        }
        let drain_end = Instant::now() + drain;
        while Instant::now() < drain_end {
            let t = now_ns();
            let moved: usize = self.rx.iter_mut().map(|p| p.poll(&mut acc, t)).sum();
            if moved == 0 {
                std::hint::spin_loop();
            }
        }
        PhaseResult {
            duration,
            sent,
            received: acc.received,
            rx_bytes: acc.bytes,
            foreign: acc.foreign,
            reordered: acc.reordered,
            latency: acc.hist,
        }
    }
}
