//! The port layout in the workers (see `crate::ports`): frames from the ports arrive on
//! the overlay socket through the trunk, behind a trunk header naming their port, and
//! frames for the ports leave on it behind a header naming the port to deliver into
//! (the trunk's XDP program does). The workers switch between ports themselves: with
//! `--datapath afxdp` every frame comes here; with `auto` the ones XDP leaves (new or
//! moved MACs, broadcast, multicast, unknown unicast).

use super::{Counter, DropReason, FdbSnapshot, Frame, NextHops, Worker, RX_HEADROOM};
use crate::ports::PortSnapshot;
use crate::wire::ethernet;
use vxdp_common::ports::{trunk_header, trunk_port, TRUNK_LEN};

/// Ethernet header length.
const ETH_LEN: usize = 14;

impl Worker {
    /// A frame the trunk brought from a port: switched into another port, encapsulated
    /// toward its remote, or flooded to the other ports and the remotes.
    pub(super) fn port_frame(&mut self, mut f: Frame, snap: &FdbSnapshot, hops: &NextHops, ports: &PortSnapshot) {
        let (start, len) = (f.offset(), f.len());
        if len < TRUNK_LEN + ETH_LEN {
            return self.drop_frame(f, DropReason::NotAPort);
        }
        let buf = self.umem.chunk_mut(&f);
        let hdr: [u8; TRUNK_LEN] = buf[start..start + TRUNK_LEN].try_into().expect("trunk header");
        let Some(ingress) = trunk_port(&hdr).filter(|i| ports.is_port(*i)) else {
            return self.drop_frame(f, DropReason::NotAPort);
        };
        let eth = start + TRUNK_LEN;
        let dst: [u8; 6] = buf[eth..eth + 6].try_into().expect("6 bytes");
        let src: [u8; 6] = buf[eth + 6..eth + 12].try_into().expect("6 bytes");
        if ethernet::is_unicast(&src) && ports.lookup(&src) != Some(ingress) {
            let queued = self.shared.ports.learn(src, ingress);
            self.local.add(if queued { Counter::Learned } else { Counter::LearnQueueFull }, 1);
        }
        let unicast = dst[0] & 1 == 0;
        if let Some(out) = ports.lookup(&dst).filter(|_| unicast) {
            if out == ingress {
                return self.drop_frame(f, DropReason::PortLoop);
            }
            // Same frame, same place: only the header changes (from → to).
            buf[start..start + TRUNK_LEN].copy_from_slice(&trunk_header(out));
            return self.to_ports.push(f);
        }
        // Toward the remotes from here on: without the header.
        if !f.set_span(eth, len - TRUNK_LEN) {
            return self.drop_frame(f, DropReason::Truncated);
        }
        if unicast && snap.lookup(&dst).is_some() {
            return self.encap_one(f, snap, hops);
        }
        // Broadcast, multicast, unknown unicast: a copy into every other port, then
        // head-end replication to the remotes (which may be none).
        let mut copied = false;
        for &out in ports.ports() {
            if out != ingress {
                copied |= self.copy_to_port(&f, out, false);
            }
        }
        if copied {
            self.local.add(Counter::PortFlooded, 1);
            if snap.flood().is_empty() {
                return self.free.push(f);
            }
        }
        self.encap_one(f, snap, hops);
    }

    /// A decapsulated frame (the inner frame at `inner_start`, relative to the frame,
    /// `inner_len` long): into the port owning its destination, or flooded to every
    /// port. A port MAC seen as the inner source moved behind a remote.
    pub(super) fn port_deliver(
        &mut self,
        mut f: Frame,
        inner_start: usize,
        inner_len: usize,
        inner_src: &[u8; 6],
        ports: &PortSnapshot,
    ) {
        if ports.lookup(inner_src).is_some() && !self.shared.ports.moved_away(*inner_src) {
            self.local.add(Counter::LearnQueueFull, 1);
        }
        // The outer headers before the inner frame leave room for the trunk header.
        let abs = f.offset() + inner_start;
        let buf = self.umem.chunk_mut(&f);
        // As on the way into `vx0`: what a sender's offload left unfinished is
        // finished before any port (or copy) gets the frame.
        if crate::vxlan::complete_inner_csum(&mut buf[abs..abs + inner_len]) {
            self.local.add(Counter::CsumCompleted, 1);
        }
        let dst: [u8; 6] = buf[abs..abs + 6].try_into().expect("6 bytes");
        let target = if dst[0] & 1 == 0 { ports.lookup(&dst) } else { None };
        let (last, others) = match (target, ports.ports().split_last()) {
            (Some(out), _) => (out, &[][..]),
            (None, Some((last, others))) => (*last, others),
            (None, None) => return self.drop_frame(f, DropReason::NoPort),
        };
        if !others.is_empty() {
            if !f.set_span(abs, inner_len) {
                return self.drop_frame(f, DropReason::Truncated);
            }
            for &out in others {
                self.copy_to_port(&f, out, true);
            }
        }
        self.umem.chunk_mut(&f)[abs - TRUNK_LEN..abs].copy_from_slice(&trunk_header(last));
        if f.set_span(abs - TRUNK_LEN, inner_len + TRUNK_LEN) {
            self.to_overlay.push(f);
        } else {
            self.drop_frame(f, DropReason::Truncated);
        }
    }

    /// A copy of `f` (an Ethernet frame) behind a trunk header for port `out`, queued on
    /// the trunk: with the decapsulated frames (`decap`) or the port-to-port ones.
    fn copy_to_port(&mut self, f: &Frame, out: u32, decap: bool) -> bool {
        let Some(mut copy) = self.free.pop() else {
            self.local.drop(DropReason::NoFrame);
            return false;
        };
        let (start, len) = (f.offset(), f.len());
        let at = RX_HEADROOM as usize;
        let (src, dst) = self.umem.two_chunks_mut(f, &copy);
        if at + TRUNK_LEN + len > dst.len() {
            self.drop_frame(copy, DropReason::Truncated);
            return false;
        }
        dst[at..at + TRUNK_LEN].copy_from_slice(&trunk_header(out));
        dst[at + TRUNK_LEN..at + TRUNK_LEN + len].copy_from_slice(&src[start..start + len]);
        if !copy.set_span(at, len + TRUNK_LEN) {
            self.drop_frame(copy, DropReason::Truncated);
            return false;
        }
        if decap {
            self.to_overlay.push(copy);
        } else {
            self.to_ports.push(copy);
        }
        true
    }
}
