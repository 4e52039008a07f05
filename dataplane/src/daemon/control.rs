//! The daemon's side of the control socket: `vxdp fdb` changes and `vxdp stats`.

use crate::counters::{CounterSet, LocalCounters, WorkerCounters};
use crate::fdb::FdbTable;
use crate::nexthop::NextHops;
use crate::xdp::XdpPrograms;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use vxdp_common::XdpCounter;
use vxdp_control::ctl::{Handler, Request, Response};
use vxdp_control::entry::Source;

/// What the control socket needs to answer requests.
pub(super) struct Control {
    pub(super) name: String,
    pub(super) fdb: Arc<FdbTable>,
    pub(super) counters: Vec<Arc<WorkerCounters>>,
    pub(super) xdp: Arc<Mutex<XdpPrograms>>,
    pub(super) nexthops: Arc<ArcSwap<NextHops>>,
    pub(super) fdb_changed: Arc<AtomicBool>,
}

impl Control {
    fn stats_json(&self) -> serde_json::Value {
        let mut total = LocalCounters::default();
        let mut workers = Vec::new();
        for c in &self.counters {
            let s = c.snapshot();
            total.accumulate(&s);
            workers.push(counter_object(&CounterSet::from(&s)));
        }
        let mut xdp = serde_json::Map::new();
        if let Ok(values) = self.xdp.lock().map_err(|_| ()).and_then(|x| x.counters().map_err(|_| ())) {
            for c in XdpCounter::ALL {
                xdp.insert(c.name().to_string(), values[c as usize].into());
            }
        }
        serde_json::json!({
            "name": self.name,
            "total": counter_object(&CounterSet::from(&total)),
            "workers": workers,
            "xdp": xdp,
            "resolved_remotes": self.nexthops.load().len(),
        })
    }
}

fn counter_object(set: &CounterSet) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in &set.0 {
        m.insert(k.clone(), (*v).into());
    }
    serde_json::Value::Object(m)
}

impl Handler for Control {
    fn handle(&self, req: Request) -> Response {
        match req {
            Request::Fdb(r) => match self.fdb.apply(&r, Source::Static) {
                Ok(()) => {
                    self.fdb_changed.store(true, Ordering::Release);
                    Response::Ok
                }
                Err(e) => Response::Error(e.to_string()),
            },
            Request::FdbShow => Response::Fdb(self.fdb.show()),
            Request::Stats => Response::Stats(self.stats_json()),
        }
    }
}
