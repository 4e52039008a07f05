//! The medium's ceiling: plain AF_XDP forwarding between two interfaces, no VXLAN.
//!
//! Per queue, one thread, one UMEM shared by a socket on each interface (as a vxdp
//! worker has), frames handed from one socket's RX to the other's TX by handle, the
//! same ring calls, batch size and `sendto` kicks as vxdp's worker, but no parsing,
//! no FDB and no header rewrite. What the benchmark measures through it is what
//! veth + copy-mode AF_XDP allow on this machine.

use crate::pktgen::BATCH;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use vxdp::afxdp::xsk::{poll_readable, retry_busy, RingSizes, Umem, XskSocket};
use vxdp::xdp::{XdpMode, XdpPrograms};

const FRAMES: u32 = 8192;
const MAX_KICKS: u32 = 16;

/// One queue pair: sockets on interface A and B sharing a UMEM.
pub struct QueuePair {
    umem: Umem,
    a: XskSocket,
    b: XskSocket,
}

impl QueuePair {
    /// Binds both sockets on `queue` (in the calling thread's namespace).
    pub fn bind(if_a: u32, if_b: u32, queue: u32) -> io::Result<QueuePair> {
        let umem = Umem::new(FRAMES)?;
        let a = retry_busy(|| XskSocket::bind(&umem, if_a, queue, None, RingSizes::default()))?;
        let b = retry_busy(|| XskSocket::bind(&umem, if_b, queue, Some(a.fd()), RingSizes::default()))?;
        Ok(QueuePair { umem, a, b })
    }
}

/// XDP programs steering every frame of both interfaces to the queue pairs.
pub struct ForwarderXdp {
    _a: XdpPrograms,
    _b: XdpPrograms,
}

impl ForwarderXdp {
    /// In the calling thread's namespace: registers every pair and attaches.
    pub fn attach(name_a: &str, name_b: &str, pairs: &[QueuePair]) -> Result<ForwarderXdp, vxdp::xdp::XdpError> {
        let cfg = vxdp_common::UnderlayConfig::default();
        let (mut a, mut b) = (XdpPrograms::load(&cfg)?, XdpPrograms::load(&cfg)?);
        for (q, p) in pairs.iter().enumerate() {
            a.register_overlay_socket(q as u32, p.a.fd())?;
            b.register_overlay_socket(q as u32, p.b.fd())?;
        }
        a.attach_overlay(name_a, XdpMode::Native)?;
        b.attach_overlay(name_b, XdpMode::Native)?;
        Ok(ForwarderXdp { _a: a, _b: b })
    }
}

/// Running forwarder threads; stopped and joined on drop.
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Forwarder {
    /// Starts one thread per pair; pair `i` is pinned to `cpus[i % cpus.len()]`.
    pub fn start(pairs: Vec<QueuePair>, cpus: &[usize]) -> Forwarder {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = pairs
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let stop = stop.clone();
                let cpu = cpus[i % cpus.len()];
                std::thread::spawn(move || {
                    crate::cpu::pin_current_thread(cpu);
                    forward(p, &stop)
                })
            })
            .collect();
        Forwarder { stop, threads }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn kick(sock: &XskSocket) {
    for _ in 0..MAX_KICKS {
        let before = sock.tx_outstanding();
        if before == 0 || sock.kick_tx().is_err() || sock.tx_outstanding() == before {
            break;
        }
    }
}

fn forward(mut p: QueuePair, stop: &AtomicBool) {
    // Room for every frame of the UMEM, so pushes never allocate.
    let mut free = p.umem.take_free_frames();
    let mut rx = Vec::with_capacity(BATCH);
    let mut idle = 0u32;
    while !stop.load(Ordering::Relaxed) {
        for s in [&mut p.a, &mut p.b] {
            while s.complete(&mut p.umem, &mut free, BATCH * 4) == BATCH * 4 {}
            let want = (s.fill_free() as usize).min(free.len().saturating_sub(BATCH * 4));
            if want > 0 {
                s.fill(&mut p.umem, &mut free, want);
                s.kick_fill();
            }
        }
        let mut moved = 0;
        for dir in 0..2 {
            let (src, dst) = if dir == 0 { (&mut p.a, &mut p.b) } else { (&mut p.b, &mut p.a) };
            let n = src.recv(&mut p.umem, &mut rx, BATCH);
            if n == 0 {
                continue;
            }
            moved += n;
            dst.send(&mut p.umem, &mut rx);
            free.append(&mut rx);
            kick(dst);
        }
        if moved > 0 {
            idle = 0;
        } else {
            idle += 1;
            if idle > 64 {
                let _ = poll_readable(&[p.a.fd(), p.b.fd()], 1);
            }
        }
    }
}
