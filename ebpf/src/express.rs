//! The express path: known unicast decapsulated and encapsulated in XDP and redirected
//! without copies. Each function either takes the frame (`Ok(action)`) or leaves it,
//! untouched, to the workers (`Err(reason)`, counted by the caller), so the workers
//! stay the complete data plane.
//!
//! The maps are mirrored by userspace from its authoritative tables
//! (`dataplane/src/express/`); see [`vxdp_common::express`].

use crate::{count, count_n, Frame};
use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_xdp_adjust_head},
    macros::map,
    maps::{Array, DevMap, HashMap, LruHashMap, PerCpuArray},
    programs::XdpContext,
};
use vxdp_common::csum::{fold, unfinished};
use vxdp_common::express::*;
use vxdp_common::flow::{flow_hash, pick_port, FrameBytes};
use vxdp_common::hdr::{eth, ethertype, ip_proto, ipv4, ipv6, udp, vxlan};
use vxdp_common::XdpCounter;

#[map(name = "VXDP_X_CONFIG")]
pub static X_CONFIG: Array<ExpressConfig> = Array::with_max_entries(1, 0);

#[map(name = "VXDP_X_FDB")]
pub static X_FDB: HashMap<FdbKey, FdbValue> = HashMap::with_max_entries(MAX_FDB, 0);

#[map(name = "VXDP_X_REMOTES")]
pub static X_REMOTES: Array<RemoteTemplate> = Array::with_max_entries(MAX_REMOTES, 0);

#[map(name = "VXDP_X_DEVS")]
pub static X_DEVS: DevMap = DevMap::with_max_entries(DEVS, 0);

#[map(name = "VXDP_X_LOCAL_MACS")]
pub static X_LOCAL_MACS: LruHashMap<[u8; 8], u32> = LruHashMap::with_max_entries(MAX_LOCAL_MACS, 0);

#[map(name = "VXDP_X_CPU")]
pub static X_CPU: PerCpuArray<ExpressCpu> = PerCpuArray::with_max_entries(1, 0);

/// IPv4 header, UDP header and VXLAN header: what decap strips after the Ethernet
/// header (and tag), and the outer IP packet's size without the inner frame.
const OUTER_L3_LEN: usize = ipv4::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;
/// The VXLAN flags word with only the I flag set.
const VXLAN_FLAGS_I: u32 = (vxlan::FLAG_I as u32) << 24;

/// Whether a MAC is unicast and not zero (the workers' `is_unicast`).
#[inline(always)]
pub(crate) fn is_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) != 0
}

/// Takes one learning report from this CPU's budget, refilled every
/// `LEARN_REPORT_WINDOW_NS`.
#[inline(always)]
fn take_learn_token() -> bool {
    let Some(cpu) = X_CPU.get_ptr_mut(0) else { return false };
    // SAFETY: a successful per-CPU lookup points at this CPU's element; XDP programs
    // are not preempted on a CPU, so nothing else touches it meanwhile.
    let cpu = unsafe { &mut *cpu };
    // SAFETY: the helper has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(cpu.refilled_ns) >= LEARN_REPORT_WINDOW_NS {
        cpu.refilled_ns = now;
        cpu.tokens = LEARN_REPORTS_PER_WINDOW;
    }
    if cpu.tokens == 0 {
        return false;
    }
    cpu.tokens -= 1;
    true
}

/// Underlay, after the classifier found VXLAN to a local IPv4 VTEP at `l3` (IHL words
/// in `ihl` bytes): validates the rest as the workers' `decap` would, strips the outer
/// headers and redirects the inner frame to the overlay. A frame with anything to judge
/// (IPv4 options, a bad checksum, a martian source, another VNI, flags, lengths) goes
/// to the workers, which count it as they do today.
///
/// Inlined into the program: as a BPF subprogram, LLVM may return its `Result` through
/// the caller's stack (an sret pointer in r0), which the verifier refuses ("cannot
/// return stack pointer to the caller"); the ECN check made it do so.
#[inline(always)]
pub fn decap(ctx: &XdpContext, l3: usize, ihl: usize) -> Result<u32, XdpCounter> {
    let cfg = X_CONFIG.get(0).ok_or(XdpCounter::ToWorkersOther)?;
    if cfg.flags & CFG_DECAP == 0 || ihl != ipv4::HEADER_LEN {
        return Err(XdpCounter::ToWorkersOther);
    }
    let frame = Frame::new(ctx);
    // Each header is copied out with one bounds check and parsed from the copy: the
    // verifier follows a constant-size check, not a chain of them.
    let ip = frame.read::<{ ipv4::HEADER_LEN }>(l3).ok_or(XdpCounter::ToWorkersOther)?;
    // The IPv4 header checksum (the kernel's ip_rcv_core checks it too).
    let mut sum = 0u32;
    let mut w = 0;
    while w < ipv4::HEADER_LEN {
        sum += u32::from(u16::from_be_bytes([ip[w], ip[w + 1]]));
        w += 2;
    }
    if fold(sum) != 0xffff {
        return Err(XdpCounter::ToWorkersOther);
    }
    let total_len = usize::from(u16::from_be_bytes([ip[ipv4::TOTAL_LEN], ip[ipv4::TOTAL_LEN + 1]]));
    // Exactly the frame: no Ethernet padding to trim, nothing truncated.
    if total_len < OUTER_L3_LEN + eth::HEADER_LEN || l3 + total_len != frame.len {
        return Err(XdpCounter::ToWorkersOther);
    }
    let src = [ip[ipv4::SRC], ip[ipv4::SRC + 1], ip[ipv4::SRC + 2], ip[ipv4::SRC + 3]];
    // Martian sources (zeronet, loopback, multicast, limited broadcast): the workers drop them.
    if src[0] == 0 || src[0] == 127 || src[0] & 0xf0 == 0xe0 || src == [0xff; 4] {
        return Err(XdpCounter::ToWorkersOther);
    }
    let l4 = l3 + ipv4::HEADER_LEN;
    let uv = frame.read::<{ udp::HEADER_LEN + vxlan::HEADER_LEN }>(l4).ok_or(XdpCounter::ToWorkersOther)?;
    let udp_len = usize::from(u16::from_be_bytes([uv[udp::LENGTH], uv[udp::LENGTH + 1]]));
    if udp_len != total_len - ipv4::HEADER_LEN {
        return Err(XdpCounter::ToWorkersOther);
    }
    let vx = udp::HEADER_LEN;
    let flags = u32::from_be_bytes([uv[vx], uv[vx + 1], uv[vx + 2], uv[vx + 3]]);
    let vni_word = u32::from_be_bytes([uv[vx + 4], uv[vx + 5], uv[vx + 6], uv[vx + 7]]);
    // Only the I flag, no reserved bits, our VNI: anything else is the workers' to count.
    if flags != VXLAN_FLAGS_I || vni_word & 0xff != 0 || vni_word >> 8 != cfg.vni {
        return Err(XdpCounter::ToWorkersOther);
    }
    let inner = l4 + udp::HEADER_LEN + vxlan::HEADER_LEN;
    let inner_len = total_len - OUTER_L3_LEN;
    if inner_len > cfg.max_inner_len as usize {
        return Err(XdpCounter::ToWorkersOther);
    }
    // An outer header with ECN bits set (e.g. CE) goes to a worker, which applies RFC
    // 6040 to the inner packet (`vxlan::decap_ecn`: mark it CE, or drop it); the usual
    // unmarked frame stays here. (Inline: a helper taking the header copy by reference
    // makes the verifier see a stack pointer returned.)
    if ip[ipv4::TOS] & vxdp_common::ecn::MASK != 0 {
        return Err(XdpCounter::ToWorkersEcn);
    }

    inner_csum_finished(&frame, inner)?;

    crate::guard::inner_source(&frame, inner, cfg.flags & CFG_LEARNING != 0)?;
    if cfg.flags & CFG_LEARNING != 0 {
        let mac = frame.read::<6>(inner + eth::SOURCE).ok_or(XdpCounter::ToWorkersOther)?;
        if is_unicast(&mac) {
            if crate::ports::is_local(cfg, &mac) {
                // Moved from a local port to this remote: a worker learns it.
                report_new()?;
            }
            learn(cfg, &FdbKey::new(cfg.vni, mac), u32::from_ne_bytes(src))?;
        }
    }

    // Redirect first: while the frame is still whole, a refusal can fall back to the
    // workers; the redirect itself happens after the program returns. In the port
    // layout the target is the port owning the inner destination.
    let (action, port) = if cfg.flags & CFG_PORT_LAYOUT != 0 {
        crate::ports::decap_target(cfg, &frame, inner)?
    } else {
        (X_DEVS.redirect(DEV_OVERLAY, 0).map_err(|_| XdpCounter::ExpressRedirectFailed)?, 0)
    };
    // SAFETY: the context pointer is the program's own; shrinking the head by the outer
    // headers keeps `data` before `data_end` (at least an Ethernet header is left).
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, inner as i32) } != 0 {
        return Err(XdpCounter::ToWorkersOther);
    }
    count(XdpCounter::ExpressDecap);
    count_n(XdpCounter::ExpressDecapBytes, inner_len as u64);
    if port != 0 {
        crate::ports::count_port(port, false, inner_len);
    }
    Ok(action)
}

/// An inner TCP/UDP segment whose checksum a sender's offload left unfinished (a kernel
/// peer on a veth with `tx` checksum offload on) goes to a worker, which completes it:
/// the rule is [`vxdp_common::csum::unfinished`], shared with the workers.
#[inline(always)]
fn inner_csum_finished(frame: &Frame, inner: usize) -> Result<(), XdpCounter> {
    match unfinished(&InnerFrame { frame, at: inner }) {
        Some(_) => Err(XdpCounter::ToWorkersCsum),
        None => Ok(()),
    }
}

/// The inner frame of a VXLAN packet, at `at` in the outer one, as [`FrameBytes`].
struct InnerFrame<'a> {
    frame: &'a Frame,
    at: usize,
}

impl FrameBytes for InnerFrame<'_> {
    #[inline(always)]
    fn has(&self, at: usize, n: usize) -> bool {
        self.at + at + n <= self.frame.len
    }

    #[inline(always)]
    fn read<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.frame.read::<N>(self.at + at)
    }
}

/// Learning for an express-path frame from `vtep`: `Err` hands it to a worker, which
/// learns (a new or moved MAC, within this CPU's budget) or refreshes (an active
/// learned entry, once per `REPORT_INTERVAL_SECS`). Static and store entries need neither.
#[inline(always)]
fn learn(cfg: &ExpressConfig, key: &FdbKey, vtep: u32) -> Result<(), XdpCounter> {
    match X_FDB.get_ptr_mut(key) {
        None => report_new(),
        Some(v) => {
            // SAFETY: a successful lookup points at the map's value, valid for this
            // program run; a racing store of `reported` by another CPU is harmless.
            let v = unsafe { &mut *v };
            if v.flags & FDB_LEARNED == 0 {
                crate::guard::pinned_elsewhere(v.vtep_v4, vtep)
            } else if v.vtep_v4 != vtep {
                report_new()
            } else if cfg.clock.wrapping_sub(v.reported) >= REPORT_INTERVAL_SECS {
                v.reported = cfg.clock;
                Err(XdpCounter::ToWorkersRefresh)
            } else {
                Ok(())
            }
        }
    }
}

#[inline(always)]
pub(crate) fn report_new() -> Result<(), XdpCounter> {
    if take_learn_token() {
        Err(XdpCounter::ToWorkersLearn)
    } else {
        count(XdpCounter::ExpressLearnLimited);
        Ok(())
    }
}

/// Overlay: a frame the bridge sent to a MAC with a single, resolved remote gets the
/// remote's outer header, written from its template, and leaves on the underlay.
/// Broadcast, multicast, unknown unicast, unresolved remotes, frames outside the MTU
/// and `udpcsum` go to the workers.
#[inline(never)]
pub fn encap(ctx: &XdpContext) -> Result<u32, XdpCounter> {
    let cfg = X_CONFIG.get(0).ok_or(XdpCounter::ToWorkersOther)?;
    if cfg.flags & CFG_ENCAP == 0 {
        return Err(XdpCounter::ToWorkersOther);
    }
    let frame = Frame::new(ctx);
    let len = frame.len;
    if len < eth::HEADER_LEN || len > cfg.max_inner_len as usize || OUTER_L3_LEN + len > cfg.underlay_mtu as usize {
        return Err(XdpCounter::ToWorkersOther);
    }
    let dst = frame.read::<6>(eth::DESTINATION).ok_or(XdpCounter::ToWorkersOther)?;
    if dst[0] & 1 != 0 {
        return Err(XdpCounter::ToWorkersFlood);
    }
    if cfg.flags & CFG_PROXY != 0 {
        proxy_to_workers(&frame)?;
    }
    if cfg.flags & CFG_REPORT_LOCAL != 0 {
        let src = frame.read::<6>(eth::SOURCE).ok_or(XdpCounter::ToWorkersOther)?;
        if is_unicast(&src) {
            report_local(cfg, src)?;
        }
    }
    // SAFETY: the value is read before the program returns, while the map holds it.
    let entry = unsafe { X_FDB.get(FdbKey::new(cfg.vni, dst)) }.ok_or(XdpCounter::ToWorkersMiss)?;
    if entry.remote == NO_REMOTE {
        return Err(XdpCounter::ToWorkersUnresolved);
    }
    let tpl = X_REMOTES.get(entry.remote).ok_or(XdpCounter::ToWorkersUnresolved)?;
    if tpl.flags & TPL_VALID == 0 {
        return Err(XdpCounter::ToWorkersUnresolved);
    }
    if tpl.flags & TPL_UDP_CSUM != 0 || OUTER_L3_LEN + len > tpl.path_mtu as usize {
        return Err(XdpCounter::ToWorkersOther);
    }
    let src_port = pick_port(flow_hash(&frame), cfg.srcport_min, cfg.srcport_max);
    // RFC 6040: the outer ECN bits from the inner packet's (the template's are clear),
    // and the inherited TOS, TTL and DF (zero in the template).
    let inherit = (cfg.flags >> CFG_INHERIT_SHIFT) as u8 & 0x7;
    let bits = vxdp_common::outer::outer_bits(&frame, inherit);
    let ip_id = next_ip_id();

    let action = X_DEVS.redirect(DEV_UNDERLAY, 0).map_err(|_| XdpCounter::ExpressRedirectFailed)?;
    // SAFETY: the context pointer is the program's own; growing the head by 50 bytes
    // uses the XDP headroom (256 bytes), and the helper fails rather than overrun it.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(OUTER_V4_LEN as i32)) } != 0 {
        return Err(XdpCounter::ToWorkersOther);
    }
    let out = Frame::new(ctx);
    let Some(hdr) = out.bytes_mut::<OUTER_V4_LEN>(0) else {
        return Err(XdpCounter::ToWorkersOther);
    };
    let total_len = (OUTER_L3_LEN + len) as u16;
    let udp_len = (udp::HEADER_LEN + vxlan::HEADER_LEN + len) as u16;
    // The added bits land in fields that are zero in the template, so they add to its
    // checksum sum word for word (`OuterBits::sum`).
    let csum = !fold(u32::from(tpl.ip_sum) + u32::from(total_len) + u32::from(ip_id) + bits.sum());
    // SAFETY: `bytes_mut` checked that the 50 header bytes lie inside the packet; the
    // template's first 50 bytes are the header, and the writes below stay within it.
    unsafe {
        let h = &mut *hdr;
        h.copy_from_slice(&tpl.header[..OUTER_V4_LEN]);
        let ip = eth::HEADER_LEN;
        h[ip + ipv4::TOS] |= bits.tos;
        if bits.df {
            h[ip + ipv4::FLAGS_FRAG] |= (vxdp_common::outer::DF >> 8) as u8;
        }
        if bits.ttl != 0 {
            h[ip + ipv4::TTL] = bits.ttl;
        }
        h[ip + ipv4::TOTAL_LEN..ip + ipv4::TOTAL_LEN + 2].copy_from_slice(&total_len.to_be_bytes());
        h[ip + ipv4::IDENT..ip + ipv4::IDENT + 2].copy_from_slice(&ip_id.to_be_bytes());
        h[ip + ipv4::CHECKSUM..ip + ipv4::CHECKSUM + 2].copy_from_slice(&csum.to_be_bytes());
        let u = ip + ipv4::HEADER_LEN;
        h[u + udp::SRC_PORT..u + udp::SRC_PORT + 2].copy_from_slice(&src_port.to_be_bytes());
        h[u + udp::LENGTH..u + udp::LENGTH + 2].copy_from_slice(&udp_len.to_be_bytes());
    }
    count(XdpCounter::ExpressEncap);
    count_n(XdpCounter::ExpressEncapBytes, (len + OUTER_V4_LEN) as u64);
    Ok(action)
}

/// With `--proxy`, ARP (any destination: the kernel answers unicast requests too) and
/// IPv6 neighbour solicitations go to a worker, which answers known addresses itself.
#[inline(always)]
fn proxy_to_workers(frame: &Frame) -> Result<(), XdpCounter> {
    let et = frame.read::<2>(eth::ETHERTYPE).ok_or(XdpCounter::ToWorkersOther)?;
    let et = u16::from_be_bytes(et);
    if et == ethertype::ARP {
        return Err(XdpCounter::ToWorkersProxy);
    }
    if et == ethertype::IPV6 {
        // Next header at 6, ICMPv6 type right after the 40-byte header.
        if let Some(h) = frame.read::<{ ipv6::HEADER_LEN + 1 }>(eth::HEADER_LEN) {
            if h[ipv6::NEXT_HEADER] == ip_proto::ICMPV6 && h[ipv6::HEADER_LEN] == ND_SOLICITATION {
                return Err(XdpCounter::ToWorkersProxy);
            }
        }
    }
    Ok(())
}

/// ICMPv6 type of a neighbour solicitation.
const ND_SOLICITATION: u8 = 135;

/// A local MAC seen on encap: the first frame, and one per `REPORT_INTERVAL_SECS`,
/// goes to a worker, which reports it to the advertiser.
#[inline(always)]
fn report_local(cfg: &ExpressConfig, mac: [u8; 6]) -> Result<(), XdpCounter> {
    let key = [mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0];
    match X_LOCAL_MACS.get_ptr_mut(key) {
        Some(t) => {
            // SAFETY: a successful lookup points at the map's value for this run.
            let t = unsafe { &mut *t };
            if cfg.clock.wrapping_sub(*t) >= REPORT_INTERVAL_SECS {
                *t = cfg.clock;
                return Err(XdpCounter::ToWorkersRefresh);
            }
            Ok(())
        }
        None => {
            let _ = X_LOCAL_MACS.insert(key, cfg.clock, 0);
            Err(XdpCounter::ToWorkersRefresh)
        }
    }
}

/// The next IPv4 identification of this CPU.
#[inline(always)]
fn next_ip_id() -> u16 {
    match X_CPU.get_ptr_mut(0) {
        Some(cpu) => {
            // SAFETY: as in `take_learn_token`: this CPU's element, not preempted.
            let cpu = unsafe { &mut *cpu };
            cpu.ip_id = cpu.ip_id.wrapping_add(1);
            cpu.ip_id as u16
        }
        None => 0,
    }
}

impl FrameBytes for Frame {
    #[inline(always)]
    fn has(&self, at: usize, n: usize) -> bool {
        at + n <= self.len
    }

    #[inline(always)]
    fn read<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        Frame::read::<N>(self, at)
    }
}
