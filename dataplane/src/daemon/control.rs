//! The daemon's side of the control socket: `vxdp fdb` changes, `vxdp port` and `vxdp stats`.
#![forbid(unsafe_code)]

use crate::counters::{LocalCounters, WorkerCounters};
use crate::express::Express;
use crate::fdb::FdbTable;
use crate::nexthop::NextHops;
use crate::xdp::XdpPrograms;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use vxdp_common::XdpCounter;
use vxdp_control::ctl::{Handler, Request, Response, Stats, WorkerStats};
use vxdp_control::entry::Source;

/// What the control socket needs to answer requests.
pub(super) struct Control {
    pub(super) name: String,
    pub(super) fdb: Arc<FdbTable>,
    pub(super) counters: Vec<Arc<WorkerCounters>>,
    pub(super) xdp: Arc<Mutex<XdpPrograms>>,
    pub(super) nexthops: Arc<ArcSwap<NextHops>>,
    pub(super) fdb_changed: Arc<AtomicBool>,
    pub(super) express: Arc<Mutex<Express>>,
    /// The store watcher's counters, once it runs.
    pub(super) store_stats: Arc<std::sync::OnceLock<Arc<vxdp_control::store::WatchStats>>>,
    pub(super) neigh: Arc<crate::neigh::NeighTable>,
    pub(super) ports: Arc<super::ports::PortPlane>,
    /// The settings `vxdp link show` prints (its MTU and address are read live).
    pub(super) link: vxdp_control::link::LinkInfo,
}

impl Control {
    fn mirror(&self) -> Result<(), crate::xdp::XdpError> {
        let mut express = self.express.lock().unwrap_or_else(|e| e.into_inner());
        express.sync(&self.fdb, &self.nexthops.load(), self.fdb.coarse_now_secs()).map(|_| ())
    }

    /// The workers' counters, and in the totals the express path's frames too: a frame
    /// the express path decapsulated or encapsulated never reaches a worker, so every
    /// frame is counted once (the per-worker figures stay the workers' own).
    fn stats(&self) -> Stats {
        let mut total = LocalCounters::default();
        let mut workers = Vec::new();
        for c in &self.counters {
            let s = c.snapshot();
            total.accumulate(&s);
            workers.push(WorkerStats::from(&s));
        }
        let mut xdp = BTreeMap::new();
        let mut total = WorkerStats::from(&total);
        if let Ok(values) = self.xdp.lock().map_err(|_| ()).and_then(|x| x.counters().map_err(|_| ())) {
            for c in XdpCounter::ALL {
                xdp.insert(c.name().to_string(), values[c as usize]);
            }
            let v = |c: XdpCounter| values[c as usize];
            total.decap_frames += v(XdpCounter::ExpressDecap);
            total.decap_bytes += v(XdpCounter::ExpressDecapBytes);
            total.encap_frames += v(XdpCounter::ExpressEncap);
            total.encap_bytes += v(XdpCounter::ExpressEncapBytes);
            total.port_tx_frames += v(XdpCounter::PortSwitched);
            total.port_tx_bytes += v(XdpCounter::PortSwitchedBytes);
        }
        let (full, rate_limited, remotes_capped) = self.fdb.learn_bounded();
        let control = [
            ("fdb_full", full),
            ("learn_rate_limited", rate_limited),
            ("learn_refused_unknown_source", self.fdb.learn_refused()),
            ("learn_remotes_capped", remotes_capped),
        ]
        .into_iter()
        .chain(self.store_stats.get().into_iter().flat_map(|w| {
            [("store_skipped", w.skipped.load(Ordering::Relaxed)), ("store_capped", w.capped.load(Ordering::Relaxed))]
        }))
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let umem = [
            ("frames", u64::from(crate::afxdp::worker::FRAMES) * self.counters.len() as u64),
            ("in_use", self.counters.iter().map(|c| c.umem_in_use()).sum()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Stats {
            control,
            name: self.name.clone(),
            resolved_remotes: self.nexthops.load().len() as u64,
            total,
            umem,
            workers,
            xdp,
        }
    }
}

impl Control {
    /// [`Control::link`] with the device's MTU and address as they are now (`ip link
    /// set vx0 address ...` changes them under the daemon).
    fn link_now(&self) -> anyhow::Result<vxdp_control::link::LinkInfo> {
        let mut nl = crate::netlink::Netlink::open()?;
        let dev = nl.link(&self.link.name)?;
        let m = dev.mac;
        Ok(vxdp_control::link::LinkInfo {
            ifindex: dev.index,
            mtu: dev.mtu,
            address: format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]),
            ..self.link.clone()
        })
    }

    /// What one `--metrics` scrape reports: the `vxdp stats` counters, the FDB by
    /// source, remotes without a next hop, and the stores' state.
    pub(super) fn sample(&self, stores: Vec<super::metrics::StoreStatus>) -> super::metrics::Sample {
        let remotes = self.fdb.remote_ips();
        let hops = self.nexthops.load();
        let unresolved = remotes
            .iter()
            .filter(|ip| hops.get(&vxdp_control::entry::Remote { ip: **ip, port: None, vni: None }).is_none())
            .count();
        super::metrics::Sample {
            stats: self.stats(),
            fdb_entries: self.fdb.entries_by_source().iter().map(|(s, n)| (s.as_str(), *n)).collect(),
            remotes: remotes.len() as u64,
            unresolved: unresolved as u64,
            stores,
        }
    }
}

impl Handler for Control {
    fn handle(&self, req: Request) -> Response {
        match req {
            Request::Fdb(r) => match self.fdb.apply(&r, Source::Static) {
                Ok(()) => {
                    self.fdb_changed.store(true, Ordering::Release);
                    // Mirrored before the answer: once `vxdp fdb` returns, the express
                    // path sends nothing toward a removed or replaced remote.
                    if let Err(e) = self.mirror() {
                        return Response::Error(format!("applied, but mirroring it into XDP failed: {e}"));
                    }
                    Response::Ok
                }
                Err(e) => Response::Error(e.to_string()),
            },
            Request::FdbShow => Response::Fdb(self.fdb.show()),
            Request::Stats => Response::Stats(Box::new(self.stats())),
            Request::Neigh(r) => match self.neigh.apply(&r) {
                Ok(()) => Response::Ok,
                Err(e) => Response::Error(e.to_string()),
            },
            Request::NeighShow => Response::Neigh(self.neigh.show()),
            Request::PortAdd(p) => self.ports.add(&p.ifname, p.mac).map_or_else(Response::Error, |()| Response::Ok),
            Request::PortDel(ifname) => self.ports.del(&ifname).map_or_else(Response::Error, |()| Response::Ok),
            Request::PortShow => self.ports.show().map_or_else(Response::Error, Response::Ports),
            Request::LinkShow => match self.link_now() {
                Ok(l) => Response::Link(Box::new(l)),
                Err(e) => Response::Error(format!("{e:#}")),
            },
        }
    }
}
