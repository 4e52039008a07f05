//! The control loop: the daemon's main thread once the data path runs. Each tick
//! (at most 50 ms) it maintains the FDB (learning, ageing), re-resolves next hops when
//! the FDB or the kernel's routes and neighbours change, and every 2 s checks whether a
//! worker falls behind its sockets.
#![forbid(unsafe_code)]

use super::control::Control;
use super::guard::GuardDuty;
use super::SIGNALLED;
use crate::counters::{LocalCounters, OverloadWatch};
use crate::express::Express;
use crate::fdb::{FdbFollower, FdbTable};
use crate::netlink::{self, ChangeMonitor, Netlink};
use crate::nexthop::{EncapDefaults, NextHops};
use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the control loop compares the workers' kernel drops with their traffic.
const OVERLOAD_CHECK: Duration = Duration::from_secs(2);

/// Keeps the FDB maintained (learning, ageing), the next hops resolved and the express
/// path's maps mirrored until a signal. The tables are the ones the control socket serves.
pub(super) fn control_loop(
    nl: &mut Netlink,
    tables: &Control,
    guard: &mut GuardDuty,
    defaults: EncapDefaults,
    underlay_ifindex: u32,
    underlay: &str,
) -> Result<()> {
    let mut encap_watch = EncapWatch::default();
    let mut port_watch = super::ports::PortWatch::default();
    let Control { fdb, nexthops, fdb_changed, counters, express, .. } = tables;
    let (fdb, nexthops, fdb_changed, counters, express) =
        (&**fdb, &**nexthops, &**fdb_changed, counters.as_slice(), &**express);
    let mut monitor = ChangeMonitor::open().context("subscribing to rtnetlink changes")?;
    let mut overload = OverloadWatch::new(counters.len(), Duration::from_secs(60));
    let mut last_overload_check = Instant::now();
    let mut last_resolve = Instant::now() - Duration::from_secs(10);
    let mut warned: BTreeSet<IpAddr> = BTreeSet::new();
    // Learned remotes change the next hops as fast as traffic teaches them.
    let mut resolved_log = vxdp_control::loglimit::LogLimit::new(5, Duration::from_secs(10));
    let mut follower = FdbFollower::default();
    let mut guard_error: Option<String> = None;
    while !SIGNALLED.load(Ordering::SeqCst) {
        let kernel_changed = monitor.wait(Duration::from_millis(50)).unwrap_or(false);
        if last_overload_check.elapsed() >= OVERLOAD_CHECK {
            last_overload_check = Instant::now();
            let now: Vec<LocalCounters> = counters.iter().map(|c| c.snapshot()).collect();
            for o in overload.check(&now, last_overload_check) {
                log::warn!(
                    "worker {}: the kernel dropped {} frames at the {} socket in {:?} while the worker took {}: \
                     it is falling behind. If softirq work (RPS, IRQs of the bridge ports or NIC) runs on its \
                     CPU, move that work or the worker (--cpus); `vxdp stats` counts these as \
                     drop_{side}_rx_ring_full and drop_{side}_no_rx_buffer",
                    o.worker,
                    o.dropped,
                    o.side,
                    OVERLOAD_CHECK,
                    o.received,
                    side = o.side
                );
            }
        }
        encap_watch.check(tables, underlay);
        tables.ports.maintain();
        port_watch.check(&tables.ports);
        let changed_entries = fdb.maintain(Instant::now());
        let fdb_dirty = fdb_changed.swap(false, Ordering::AcqRel) || changed_entries > 0;
        mirror(express, fdb, nexthops, fdb_dirty);
        let current = nexthops.load();
        if fdb_dirty && follower.update(fdb, &current).known_changed {
            guard.fdb_changed(follower.known(), fdb);
        }
        let keys = follower.keys();
        match guard.tick(nl, kernel_changed) {
            Ok(()) => guard_error = None,
            Err(e) => {
                let e = format!("{e:#}");
                if guard_error.as_ref() != Some(&e) {
                    log::warn!("--accept: {e} (keeping the list XDP has)");
                    guard_error = Some(e);
                }
            }
        }
        let incomplete = keys.len() != current.len();
        let periodic = last_resolve.elapsed() >= Duration::from_secs(if incomplete { 1 } else { 30 });
        if !(kernel_changed || fdb_dirty || periodic) {
            continue;
        }
        last_resolve = Instant::now();
        let mut next = NextHops::new(defaults);
        // An FDB change alone resolves only the remotes it brought: the others keep
        // their next hop until the kernel reports a change or the periodic pass, so a
        // burst of learned MACs costs no netlink round trips per known remote.
        let incremental = fdb_dirty && !kernel_changed && !periodic;
        for k in keys {
            if let Some(t) = current.get_key(k).filter(|_| incremental) {
                let p = t.params();
                next.insert(*k, p.src_mac, p.dst_mac, u32::from(p.path_mtu));
                continue;
            }
            let hop = match k.ip {
                // `--group` (or an entry to a group): out of the underlay, no neighbour.
                IpAddr::V4(group) if group.is_multicast() => {
                    netlink::multicast_next_hop(nl, underlay_ifindex, group, IpAddr::V4(defaults.local)).map(Some)
                }
                _ => netlink::resolve_next_hop(nl, k.ip),
            };
            match hop {
                Ok(Some(hop)) if hop.ifindex == underlay_ifindex => {
                    next.insert(*k, hop.src_mac, hop.dst_mac, hop.mtu);
                    warned.remove(&k.ip);
                }
                Ok(Some(_)) => {
                    if warned.insert(k.ip) {
                        log::warn!(
                            "remote {}: route leaves through another interface than the underlay; not reachable",
                            k.ip
                        );
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    if warned.insert(k.ip) {
                        log::warn!("remote {}: {e}", k.ip);
                    }
                }
            }
        }
        // A remote that left the FDB is forgotten here too: it would be warned about
        // again should it come back, and the set stays as large as the FDB's remotes.
        warned.retain(|ip| keys.iter().any(|k| k.ip == *ip));
        if next.summary() != current.summary() {
            if let Some(left_out) = resolved_log.allow(Instant::now()) {
                let note = vxdp_control::loglimit::suppressed_note(left_out);
                log::info!("next hops: {} of {} remote(s) resolved{note}", next.len(), keys.len());
            }
            nexthops.store(Arc::new(next));
            mirror(express, fdb, nexthops, true);
        }
    }
    Ok(())
}

/// Ticks the express path's clock and, when `changed`, mirrors the tables into its maps.
/// A failure is logged, not fatal: the workers still serve every frame the maps miss.
fn mirror(express: &Mutex<Express>, fdb: &FdbTable, nexthops: &ArcSwap<NextHops>, changed: bool) {
    let mut x = express.lock().unwrap_or_else(|e| e.into_inner());
    let clock = fdb.coarse_now_secs();
    let r =
        x.set_clock(clock).and_then(
            |()| {
                if changed {
                    x.sync(fdb, &nexthops.load(), clock).map(|_| ())
                } else {
                    Ok(())
                }
            },
        );
    if let Err(e) = r {
        log::warn!("XDP express path: {e}");
    }
}

/// Frames the express path hands the underlay that the underlay does not send: a veth
/// whose peer has no NAPI drops every frame redirected into it, without an error the
/// program could see. Watched through the veth's `tx_queue_N_xdp_xmit` statistics, in
/// windows of at least [`Self::MIN_FRAMES`] express-encapsulated frames: when in
/// [`Self::STRIKES`] windows in a row fewer than a quarter of them were sent, express
/// encap is turned off (once, logged) and the workers encapsulate. One short window does
/// not: while links come up (the peer's NAPI appears with its GRO or XDP) a few of the
/// first redirects can be lost, and the express path must not be given up for those. A
/// NIC without these statistics is not watched.
#[derive(Default)]
struct EncapWatch {
    last: Option<(u64, u64)>,
    strikes: u32,
    done: bool,
}

impl EncapWatch {
    /// Frames encapsulated in a window before the comparison means anything.
    const MIN_FRAMES: u64 = 8;
    /// Windows in a row with most of their frames lost before express encap is off.
    const STRIKES: u32 = 2;

    fn check(&mut self, tables: &Control, underlay: &str) {
        if self.done {
            return;
        }
        let mut express = tables.express.lock().unwrap_or_else(|e| e.into_inner());
        if !express.encap_on() {
            self.done = true;
            return;
        }
        let sent = match crate::ethtool::xdp_xmit_frames(underlay) {
            Ok(Some(n)) => n,
            Ok(None) | Err(_) => {
                self.done = true; // not a veth (or no statistics): nothing to watch
                return;
            }
        };
        let Ok(counters) = tables.xdp.lock().map_err(|_| ()).and_then(|x| x.counters().map_err(|_| ())) else {
            return;
        };
        let encapsulated = counters[vxdp_common::XdpCounter::ExpressEncap as usize];
        if let Some((enc0, sent0)) = self.last {
            let (enc, sent) = (encapsulated.saturating_sub(enc0), sent.saturating_sub(sent0));
            if enc < Self::MIN_FRAMES {
                return; // keep the baseline until the window holds enough frames
            }
            match self.window(enc, sent) {
                Verdict::Healthy | Verdict::Suspect => {}
                Verdict::Dropping => {
                    log::warn!(
                        "XDP express path: {underlay} sent {sent} of the {enc} frames encapsulated for it, {} \
                         times in a row; it is a veth whose peer has no NAPI (turn GRO on there, after the \
                         link is up, or attach XDP), so express encap is off and the workers encapsulate \
                         from now on",
                        Self::STRIKES
                    );
                    if let Err(e) = express.disable_encap() {
                        log::warn!("XDP express path: {e}");
                    }
                    self.done = true;
                }
            }
        }
        self.last = Some((encapsulated, sent));
    }

    /// Judges one window of `enc` (at least [`Self::MIN_FRAMES`]) frames encapsulated,
    /// `sent` of them sent.
    fn window(&mut self, enc: u64, sent: u64) -> Verdict {
        if sent.saturating_mul(4) >= enc {
            self.strikes = 0;
            return Verdict::Healthy;
        }
        self.strikes += 1;
        if self.strikes >= Self::STRIKES {
            Verdict::Dropping
        } else {
            Verdict::Suspect
        }
    }
}

/// What one [`EncapWatch`] window says.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Healthy,
    /// Most frames lost, not yet often enough in a row.
    Suspect,
    Dropping,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lossy_window_while_links_come_up_keeps_express_encap() {
        let mut w = EncapWatch::default();
        // The false alarm seen at start: 2 of the first frames sent, then all of them.
        assert_eq!(w.window(9, 2), Verdict::Suspect);
        assert_eq!(w.window(40, 40), Verdict::Healthy);
        assert_eq!(w.window(12, 1), Verdict::Suspect);
        assert_eq!(w.window(12, 3), Verdict::Healthy, "a quarter sent is not dropping");
    }

    #[test]
    fn lossy_windows_in_a_row_turn_express_encap_off() {
        let mut w = EncapWatch::default();
        assert_eq!(w.window(8, 0), Verdict::Suspect);
        assert_eq!(w.window(10, 2), Verdict::Dropping);
    }
}
