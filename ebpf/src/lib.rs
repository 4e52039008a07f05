//! The vxdp XDP programs.
//!
//! - [`vxdp_underlay`], on the underlay NIC: VXLAN addressed to a local VTEP goes to the
//!   AF_XDP socket of its RX queue; everything else (and anything it cannot parse) goes
//!   to the kernel untouched.
//! - [`vxdp_overlay`], on vxdp's end of the overlay veth: every frame goes to AF_XDP.
//! - [`vxdp_port`] and [`vxdp_trunk`], the port layout's (see `ports.rs`).
//!
//! Every verdict is counted in [`COUNTERS`] by its [`XdpCounter`]. Maps are legacy
//! `maps`-section definitions, so the object needs no BTF.
//!
//! Built as a `staticlib` (no linker) whose fat-LTO bitcode `dataplane/build.rs`
//! compiles with `llc`; see there.
#![no_std]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray, XskMap},
    programs::XdpContext,
};
use vxdp_common::{maps as names, UnderlayConfig, XdpCounter, MAX_LOCAL_ADDRS, MAX_QUEUES, MAX_VNIS};

mod express;
mod guard;
mod hdr;
mod ports;
use hdr::{eth, ip_proto, ipv4, ipv6, udp, vlan};

/// Underlay configuration, element 0, written by userspace before attach.
#[map(name = "VXDP_CONFIG")]
pub static CONFIG: Array<UnderlayConfig> = Array::with_max_entries(1, 0);

/// AF_XDP sockets on the underlay NIC, by RX queue.
#[map(name = "VXDP_UNDERLAY_XSKS")]
pub static UNDERLAY_XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

/// AF_XDP sockets on the overlay veth, by RX queue.
#[map(name = "VXDP_OVERLAY_XSKS")]
pub static OVERLAY_XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

/// The VNIs served (host order) → overlay device slot; any other VNI is passed.
#[map(name = "VXDP_VNIS")]
pub static VNIS: HashMap<u32, u32> = HashMap::with_max_entries(MAX_VNIS, 0);

/// Per-CPU verdict counters, by [`XdpCounter`].
#[map(name = "VXDP_COUNTERS")]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(XdpCounter::MAP_LEN, 0);

// `#[map(name = ...)]` takes only a string literal, not a path to a constant, so the
// names are written twice; this fails the build if a literal drifts from the constant
// userspace opens the map by (and build.rs keeps the symbol by).
const _: () = {
    assert!(str_eq(names::CONFIG, "VXDP_CONFIG"));
    assert!(str_eq(names::UNDERLAY_XSKS, "VXDP_UNDERLAY_XSKS"));
    assert!(str_eq(names::OVERLAY_XSKS, "VXDP_OVERLAY_XSKS"));
    assert!(str_eq(names::COUNTERS, "VXDP_COUNTERS"));
    assert!(str_eq(names::EXPRESS_CONFIG, "VXDP_X_CONFIG"));
    assert!(str_eq(names::EXPRESS_FDB, "VXDP_X_FDB"));
    assert!(str_eq(names::EXPRESS_REMOTES, "VXDP_X_REMOTES"));
    assert!(str_eq(names::EXPRESS_DEVS, "VXDP_X_DEVS"));
    assert!(str_eq(names::EXPRESS_LOCAL_MACS, "VXDP_X_LOCAL_MACS"));
    assert!(str_eq(names::EXPRESS_CPU, "VXDP_X_CPU"));
    assert!(str_eq(names::GUARD_CONFIG, "VXDP_G_CONFIG"));
    assert!(str_eq(names::GUARD_ACCEPT_V4, "VXDP_G_ACCEPT_V4"));
    assert!(str_eq(names::PORT_MACS, "VXDP_P_MACS"));
    assert!(str_eq(names::PORT_DEVS, "VXDP_P_DEVS"));
    assert!(str_eq(names::PORT_STATS, "VXDP_P_STATS"));
    assert!(str_eq(names::VNIS, "VXDP_VNIS"));
};

pub(crate) const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Decapsulates known VXLAN addressed to this VTEP on the express path, steers the rest
/// of it into AF_XDP, and passes everything else.
#[xdp]
pub fn vxdp_underlay(ctx: XdpContext) -> u32 {
    match classify_underlay(&ctx) {
        Verdict::Steer { l3, ihl } => {
            if !guard::source_accepted(&Frame::new(&ctx), l3, ihl != 0) {
                count(XdpCounter::DropSourceRejected);
                return xdp_action::XDP_DROP;
            }
            if ihl != 0 {
                match express::decap(&ctx, l3, ihl) {
                    Ok(action) => return action,
                    Err(reason) => count(reason),
                }
            } else {
                count(XdpCounter::ToWorkersOther);
            }
            // Fallback XDP_PASS: the helper returns it when no socket is bound on the queue.
            match UNDERLAY_XSKS.redirect(ctx.rx_queue_index(), u64::from(xdp_action::XDP_PASS)) {
                Ok(action) => {
                    count(XdpCounter::UnderlaySteered);
                    action
                }
                Err(_) => {
                    count(XdpCounter::UnderlayNoSocket);
                    xdp_action::XDP_PASS
                }
            }
        }
        Verdict::Pass(reason) => {
            count(reason);
            xdp_action::XDP_PASS
        }
    }
}

/// Encapsulates known unicast on the express path and sends every other frame on the
/// overlay veth to the AF_XDP socket of its queue.
#[xdp]
pub fn vxdp_overlay(ctx: XdpContext) -> u32 {
    // In the port layout this veth is the trunk: its frames carry a trunk header and
    // are the workers' to handle, all of them.
    let trunk = express::X_CONFIG.get(0).is_some_and(|c| c.flags & vxdp_common::express::CFG_PORT_LAYOUT != 0);
    if !trunk {
        match express::encap(&ctx) {
            Ok(action) => return action,
            Err(reason) => count(reason),
        }
    }
    match OVERLAY_XSKS.redirect(ctx.rx_queue_index(), u64::from(xdp_action::XDP_PASS)) {
        Ok(action) => {
            count(XdpCounter::OverlaySteered);
            action
        }
        Err(_) => {
            count(XdpCounter::OverlayNoSocket);
            xdp_action::XDP_PASS
        }
    }
}

/// Port layout, on each port: frames to another port are switched, frames to a remote
/// encapsulated (the express path); the rest goes through the trunk to the workers.
#[xdp]
pub fn vxdp_port(ctx: XdpContext) -> u32 {
    let ingress = ctx.ingress_ifindex() as u32;
    let len = Frame::new(&ctx).len;
    ports::count_port(ingress, true, len);
    match ports::switch(&ctx, ingress) {
        Ok(action) => return action,
        Err(Some(reason)) => count(reason),
        Err(None) => {}
    }
    ports::to_trunk(&ctx, ingress)
}

/// Port layout, on the trunk (the user end of the overlay veth): the workers' frames go
/// into the port their trunk header names.
#[xdp]
pub fn vxdp_trunk(ctx: XdpContext) -> u32 {
    ports::from_trunk(&ctx)
}

/// What the underlay program decided before redirecting.
enum Verdict {
    /// VXLAN to a local VTEP address, its IP header at `l3`; `ihl` is the IPv4 header
    /// length, 0 for IPv6.
    Steer { l3: usize, ihl: usize },
    /// To the kernel, counted under this reason.
    Pass(XdpCounter),
}

#[inline(always)]
fn count(counter: XdpCounter) {
    count_n(counter, 1);
}

#[inline(always)]
fn count_n(counter: XdpCounter, n: u64) {
    if let Some(value) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: the pointer comes from a successful per-CPU array lookup, so it points at
        // this CPU's u64 slot; XDP programs are not preempted on a CPU, so no one else
        // writes it concurrently.
        unsafe { *value += n };
    }
}

/// Bounds-checked view of the frame: every read checks against `data_end`, which is
/// what the verifier needs to see.
pub(crate) struct Frame {
    start: usize,
    end: usize,
    /// `end - start`, from the helper (the verifier follows no pointer subtraction).
    len: usize,
}

impl Frame {
    #[inline(always)]
    fn new(ctx: &XdpContext) -> Self {
        // SAFETY: the context pointer is the program's own; the helper only reads it.
        let len = unsafe { aya_ebpf::helpers::bpf_xdp_get_buff_len(ctx.ctx) } as usize;
        Self { start: ctx.data(), end: ctx.data_end(), len }
    }

    /// Pointer to `N` bytes at `offset`, if they are inside the frame.
    #[inline(always)]
    fn bytes<const N: usize>(&self, offset: usize) -> Option<*const [u8; N]> {
        let at = self.start + offset;
        if at + N > self.end {
            return None;
        }
        Some(at as *const [u8; N])
    }

    /// A copy of the `N` bytes at `offset`, if they are inside the frame.
    #[inline(always)]
    fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        // SAFETY: `bytes` checked that the N bytes lie inside the packet; read_unaligned
        // needs no alignment.
        self.bytes::<N>(offset).map(|p| unsafe { p.read_unaligned() })
    }

    /// Writable pointer to `N` bytes at `offset`, if they are inside the frame.
    #[inline(always)]
    fn bytes_mut<const N: usize>(&self, offset: usize) -> Option<*mut [u8; N]> {
        self.bytes::<N>(offset).map(|p| p as *mut [u8; N])
    }

    #[inline(always)]
    fn u8_at(&self, offset: usize) -> Option<u8> {
        // SAFETY: `bytes` checked that the byte lies inside the packet.
        self.bytes::<1>(offset).map(|p| unsafe { (*p)[0] })
    }

    /// Two bytes as they are in the packet (network order), read natively.
    #[inline(always)]
    fn u16_raw_at(&self, offset: usize) -> Option<u16> {
        // SAFETY: `bytes` checked that both bytes lie inside the packet; read_unaligned
        // needs no alignment.
        self.bytes::<2>(offset).map(|p| u16::from_ne_bytes(unsafe { p.read_unaligned() }))
    }

    #[inline(always)]
    fn u32_raw_at(&self, offset: usize) -> Option<u32> {
        // SAFETY: as in `u16_raw_at`, for four bytes.
        self.bytes::<4>(offset).map(|p| u32::from_ne_bytes(unsafe { p.read_unaligned() }))
    }

    #[inline(always)]
    fn u64_raw_at(&self, offset: usize) -> Option<u64> {
        // SAFETY: as in `u16_raw_at`, for eight bytes.
        self.bytes::<8>(offset).map(|p| u64::from_ne_bytes(unsafe { p.read_unaligned() }))
    }
}

#[inline(always)]
fn classify_underlay(ctx: &XdpContext) -> Verdict {
    // An array always has element 0; a zeroed one (no VTEP configured) matches nothing.
    let Some(cfg) = CONFIG.get(0) else {
        return Verdict::Pass(XdpCounter::PassNotLocal);
    };
    let frame = Frame::new(ctx);
    if let Some(reason) = not_for_this_device(&frame, cfg) {
        return Verdict::Pass(reason);
    }

    // Ethernet, then at most one 802.1Q / 802.1ad tag: the same predicate as the
    // workers' parser, so whatever is steered here is parsed there.
    let Some(mut ethertype) = frame.u16_raw_at(eth::ETHERTYPE) else {
        return Verdict::Pass(XdpCounter::PassMalformed);
    };
    let mut l3 = eth::HEADER_LEN;
    if hdr::is_vlan_tpid(u16::from_be(ethertype)) {
        let Some(inner) = frame.u16_raw_at(eth::HEADER_LEN + vlan::ETHERTYPE) else {
            return Verdict::Pass(XdpCounter::PassMalformed);
        };
        ethertype = inner;
        l3 += vlan::LEN;
    }

    if ethertype == hdr::ETHERTYPE_IPV4_BE {
        classify_ipv4(&frame, l3, cfg)
    } else if ethertype == hdr::ETHERTYPE_IPV6_BE {
        classify_ipv6(&frame, l3, cfg)
    } else {
        Verdict::Pass(XdpCounter::PassNotIp)
    }
}

/// What the kernel would not hand to the device's own stack: a unicast frame to
/// another host's MAC (`PACKET_OTHERHOST`, dropped by `ip_rcv`), and a VLAN-tagged
/// frame (it belongs to a VLAN device on top of this one, not to this device's
/// addresses; with `--dev` that VLAN device, XDP sees the frame untagged).
#[inline(always)]
fn not_for_this_device(frame: &Frame, cfg: &UnderlayConfig) -> Option<XdpCounter> {
    let Some(h) = frame.read::<{ eth::HEADER_LEN }>(0) else {
        return Some(XdpCounter::PassMalformed);
    };
    let ours = cfg.mac == [0; 6] || h[0] & 1 != 0 || h[..6] == cfg.mac;
    if !ours {
        return Some(XdpCounter::PassOtherHost);
    }
    if hdr::is_vlan_tpid(u16::from_be_bytes([h[eth::ETHERTYPE], h[eth::ETHERTYPE + 1]])) {
        return Some(XdpCounter::PassVlanTagged);
    }
    None
}

#[inline(always)]
fn classify_ipv4(frame: &Frame, l3: usize, cfg: &UnderlayConfig) -> Verdict {
    // The fixed header, in full, before anything in it is trusted.
    if frame.bytes::<{ ipv4::HEADER_LEN }>(l3).is_none() {
        return Verdict::Pass(XdpCounter::PassMalformed);
    }
    let Some(ver_ihl) = frame.u8_at(l3 + ipv4::VER_IHL) else {
        return Verdict::Pass(XdpCounter::PassMalformed);
    };
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    if ver_ihl >> 4 != 4 || ihl < ipv4::HEADER_LEN {
        return Verdict::Pass(XdpCounter::PassMalformed);
    }
    let Some(protocol) = frame.u8_at(l3 + ipv4::PROTOCOL) else {
        return Verdict::Pass(XdpCounter::PassMalformed);
    };
    if protocol != ip_proto::UDP {
        return Verdict::Pass(XdpCounter::PassNotUdp);
    }
    let Some(flags_frag) = frame.u16_raw_at(l3 + ipv4::FLAGS_FRAG) else {
        return Verdict::Pass(XdpCounter::PassMalformed);
    };
    if u16::from_be(flags_frag) & (ipv4::FLAG_MF | ipv4::FRAG_OFFSET_MASK) != 0 {
        return Verdict::Pass(XdpCounter::PassFragment);
    }
    let Some(dst) = frame.u32_raw_at(l3 + ipv4::DST) else {
        return Verdict::Pass(XdpCounter::PassMalformed);
    };
    let Some(dst_port) = frame.u16_raw_at(l3 + ihl + udp::DST_PORT) else {
        return Verdict::Pass(XdpCounter::PassMalformed);
    };
    if frame.bytes::<{ udp::HEADER_LEN }>(l3 + ihl).is_none() {
        return Verdict::Pass(XdpCounter::PassMalformed);
    }
    if dst_port != cfg.port_be {
        return Verdict::Pass(XdpCounter::PassOtherPort);
    }
    let mut i = 0;
    while i < MAX_LOCAL_ADDRS {
        if i < usize::from(cfg.n_v4) && cfg.local_v4[i] == dst {
            return served(frame, l3 + ihl, Verdict::Steer { l3, ihl });
        }
        i += 1;
    }
    Verdict::Pass(XdpCounter::PassNotLocal)
}

#[inline(always)]
fn classify_ipv6(frame: &Frame, l3: usize, cfg: &UnderlayConfig) -> Verdict {
    if frame.bytes::<{ ipv6::HEADER_LEN }>(l3).is_none() {
        return Verdict::Pass(XdpCounter::PassMalformed);
    }
    let Some(ver) = frame.u8_at(l3 + ipv6::VER_TC_FLOW) else {
        return Verdict::Pass(XdpCounter::PassMalformed);
    };
    if ver >> 4 != 6 {
        return Verdict::Pass(XdpCounter::PassMalformed);
    }
    let Some(next) = frame.u8_at(l3 + ipv6::NEXT_HEADER) else {
        return Verdict::Pass(XdpCounter::PassMalformed);
    };
    if next == ip_proto::IPV6_FRAGMENT {
        return Verdict::Pass(XdpCounter::PassFragment);
    }
    // Other extension headers are not walked: the kernel handles those packets.
    if next != ip_proto::UDP {
        return Verdict::Pass(XdpCounter::PassNotUdp);
    }
    let (Some(dst_hi), Some(dst_lo)) = (frame.u64_raw_at(l3 + ipv6::DST), frame.u64_raw_at(l3 + ipv6::DST + 8)) else {
        return Verdict::Pass(XdpCounter::PassMalformed);
    };
    let l4 = l3 + ipv6::HEADER_LEN;
    if frame.bytes::<{ udp::HEADER_LEN }>(l4).is_none() {
        return Verdict::Pass(XdpCounter::PassMalformed);
    }
    let Some(dst_port) = frame.u16_raw_at(l4 + udp::DST_PORT) else {
        return Verdict::Pass(XdpCounter::PassMalformed);
    };
    if dst_port != cfg.port_be {
        return Verdict::Pass(XdpCounter::PassOtherPort);
    }
    let mut i = 0;
    while i < MAX_LOCAL_ADDRS {
        if i < usize::from(cfg.n_v6) {
            let local = &cfg.local_v6[i];
            // Compare as two native u64 halves: no memcmp call (there is none in BPF).
            let local_hi =
                u64::from_ne_bytes([local[0], local[1], local[2], local[3], local[4], local[5], local[6], local[7]]);
            let local_lo = u64::from_ne_bytes([
                local[8], local[9], local[10], local[11], local[12], local[13], local[14], local[15],
            ]);
            if local_hi == dst_hi && local_lo == dst_lo {
                return served(frame, l4, Verdict::Steer { l3, ihl: 0 });
            }
        }
        i += 1;
    }
    Verdict::Pass(XdpCounter::PassNotLocal)
}

/// `steer` if the VXLAN header after the UDP header at `l4` carries a VNI this daemon
/// serves; VXLAN for another VNI belongs to the kernel (a vxlan device of its own may
/// serve it on the same address and port), as does anything else the kernel would
/// hand to its UDP socket. A datagram too short to hold a VXLAN header is steered: the
/// workers count it as truncated.
#[inline(always)]
fn served(frame: &Frame, l4: usize, steer: Verdict) -> Verdict {
    let Some(word) = frame.u32_raw_at(l4 + udp::HEADER_LEN + 4) else {
        return steer;
    };
    let vni = u32::from_be(word) >> 8;
    // SAFETY: a hash-map lookup; the value is only tested for presence.
    if unsafe { VNIS.get(vni) }.is_some() {
        steer
    } else {
        Verdict::Pass(XdpCounter::PassOtherVni)
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in a verified program: the verifier rejects any path that loops.
    loop {}
}
