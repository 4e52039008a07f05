//! The port layout: vxdp as the L2 switch of its overlay, with an XDP program on each
//! port (a container's host-side veth) and one on the trunk (the user end of the overlay
//! veth, whose other end the workers' sockets serve). See [`vxdp_common::ports`].
//!
//! - [`switch`], on a port: a unicast destination on another port is redirected there;
//!   a unicast destination behind a remote is encapsulated by the express path; a new
//!   or moved source MAC, broadcast, multicast, unknown unicast and anything else goes
//!   through the trunk to the workers ([`to_trunk`]).
//! - [`decap_target`], for the underlay's express decap: the port owning the inner
//!   destination MAC, or the workers.
//! - [`from_trunk`], on the trunk: the workers' frames into the port their header names.
//!
//! With `--datapath afxdp` only the trunk runs: every port frame goes to the workers.

use crate::{count, count_n, express, Frame};
use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_xdp_adjust_head,
    macros::map,
    maps::{DevMapHash, HashMap, PerCpuHashMap},
    programs::XdpContext,
};
use vxdp_common::express::{ExpressConfig, CFG_PORT_SWITCH, DEV_TRUNK};
use vxdp_common::hdr::eth;
use vxdp_common::ports::*;
use vxdp_common::XdpCounter;

#[map(name = "VXDP_P_MACS")]
pub static P_MACS: HashMap<[u8; 8], u32> = HashMap::with_max_entries(MAX_PORT_MACS, 0);

#[map(name = "VXDP_P_DEVS")]
pub static P_DEVS: DevMapHash = DevMapHash::with_max_entries(MAX_PORTS, 0);

#[map(name = "VXDP_P_STATS")]
pub static P_STATS: PerCpuHashMap<u32, PortStats> = PerCpuHashMap::with_max_entries(MAX_PORTS, 0);

/// Adds one frame of `len` bytes to a port's RX (`rx`) or TX counters.
#[inline(always)]
pub fn count_port(ifindex: u32, rx: bool, len: usize) {
    if let Some(s) = P_STATS.get_ptr_mut(ifindex) {
        // SAFETY: a successful per-CPU lookup points at this CPU's value; XDP programs
        // are not preempted on a CPU, so nothing else writes it meanwhile.
        let s = unsafe { &mut *s };
        if rx {
            s.rx_frames += 1;
            s.rx_bytes += len as u64;
        } else {
            s.tx_frames += 1;
            s.tx_bytes += len as u64;
        }
    }
}

/// The port a MAC lives on.
#[inline(always)]
fn port_of(mac: &[u8; 6]) -> Option<u32> {
    // SAFETY: the value is copied out before the program returns, while the map holds it.
    unsafe { P_MACS.get(mac_key(mac)) }.copied()
}

/// A port's frame: switched to another port or encapsulated (`Ok`), or left to the
/// workers (`Err(reason)`; no reason with `--datapath afxdp`, where the trunk's own
/// program counts every frame it steers).
#[inline(never)]
pub fn switch(ctx: &XdpContext, ingress: u32) -> Result<u32, Option<XdpCounter>> {
    let cfg: &ExpressConfig = express::X_CONFIG.get(0).ok_or(XdpCounter::ToWorkersOther)?;
    if cfg.flags & CFG_PORT_SWITCH == 0 {
        return Err(None);
    }
    let frame = Frame::new(ctx);
    let len = frame.len;
    if len < eth::HEADER_LEN || len > cfg.max_inner_len as usize {
        return Err(Some(XdpCounter::ToWorkersOther));
    }
    let macs = frame.read::<12>(0).ok_or(XdpCounter::ToWorkersOther)?;
    let dst = [macs[0], macs[1], macs[2], macs[3], macs[4], macs[5]];
    let src = [macs[6], macs[7], macs[8], macs[9], macs[10], macs[11]];
    if express::is_unicast(&src) && port_of(&src) != Some(ingress) {
        // A new or moved MAC: the workers learn it (within this CPU's budget).
        express::report_new()?;
    }
    if dst[0] & 1 != 0 {
        return Err(Some(XdpCounter::ToWorkersFlood));
    }
    match port_of(&dst) {
        Some(out) if out == ingress => Err(Some(XdpCounter::ToWorkersOther)),
        Some(out) => {
            let action = P_DEVS.redirect(out, 0).map_err(|_| XdpCounter::ExpressRedirectFailed)?;
            count(XdpCounter::PortSwitched);
            count_n(XdpCounter::PortSwitchedBytes, len as u64);
            count_port(out, false, len);
            Ok(action)
        }
        None => express::encap(ctx).map_err(Some),
    }
}

/// Sends a port's frame through the trunk to the workers, behind a header naming the port.
#[inline(never)]
pub fn to_trunk(ctx: &XdpContext, ingress: u32) -> u32 {
    let Ok(action) = express::X_DEVS.redirect(DEV_TRUNK, 0) else {
        count(XdpCounter::PortNoTrunk);
        return xdp_action::XDP_DROP;
    };
    // SAFETY: the context pointer is the program's own; growing the head by 8 bytes uses
    // the XDP headroom, and the helper fails rather than overrun it.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(TRUNK_LEN as i32)) } != 0 {
        count(XdpCounter::PortNoTrunk);
        return xdp_action::XDP_DROP;
    }
    let out = Frame::new(ctx);
    let Some(h) = out.bytes_mut::<TRUNK_LEN>(0) else {
        count(XdpCounter::PortNoTrunk);
        return xdp_action::XDP_DROP;
    };
    // SAFETY: `bytes_mut` checked that the header's bytes lie inside the packet.
    unsafe { *h = trunk_header(ingress) };
    count(XdpCounter::PortToWorkers);
    action
}

/// Underlay decap in the port layout: redirects the inner frame starting at `inner`
/// into the port owning its destination MAC; returns that port, or the reason the
/// workers take it (they flood it to the ports).
#[inline(always)]
pub fn decap_target(cfg: &ExpressConfig, frame: &Frame, inner: usize) -> Result<(u32, u32), XdpCounter> {
    if cfg.flags & CFG_PORT_SWITCH == 0 {
        return Err(XdpCounter::ToWorkersOther);
    }
    let dst = frame.read::<6>(inner + eth::DESTINATION).ok_or(XdpCounter::ToWorkersOther)?;
    if dst[0] & 1 != 0 {
        return Err(XdpCounter::ToWorkersFlood);
    }
    let out = port_of(&dst).ok_or(XdpCounter::ToWorkersMiss)?;
    let action = P_DEVS.redirect(out, 0).map_err(|_| XdpCounter::ExpressRedirectFailed)?;
    Ok((action, out))
}

/// Whether a source MAC decap sees is on a port: it moved from there to a remote, a
/// worker must learn it.
#[inline(always)]
pub fn is_local(cfg: &ExpressConfig, mac: &[u8; 6]) -> bool {
    cfg.flags & CFG_PORT_SWITCH != 0 && port_of(mac).is_some()
}

/// The trunk: a frame the workers sent, into the port its header names.
#[inline(never)]
pub fn from_trunk(ctx: &XdpContext) -> u32 {
    let frame = Frame::new(ctx);
    let Some(h) = frame.read::<TRUNK_LEN>(0) else {
        count(XdpCounter::TrunkDropped);
        return xdp_action::XDP_DROP;
    };
    let Some(out) = trunk_port(&h) else {
        count(XdpCounter::TrunkDropped);
        return xdp_action::XDP_DROP;
    };
    let Ok(action) = P_DEVS.redirect(out, 0) else {
        count(XdpCounter::TrunkDropped);
        return xdp_action::XDP_DROP;
    };
    // SAFETY: the context pointer is the program's own; the frame is longer than the
    // header (`read` checked), so `data` stays before `data_end`.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, TRUNK_LEN as i32) } != 0 {
        count(XdpCounter::TrunkDropped);
        return xdp_action::XDP_DROP;
    }
    count(XdpCounter::TrunkDelivered);
    count_port(out, false, frame.len - TRUNK_LEN);
    action
}
