//! `vxdp run --cluster-store` (or `--consul`): wires the store's watcher and advertiser
//! (`vxdp_control::store`) to the data plane. The watcher's diffs become one
//! `apply_batch` on the FDB with source `store` (the cluster-store layer, whatever the
//! store; one snapshot publish per answer; workers never wait); MACs the workers see
//! behind the overlay feed the advertiser. The store clients block on their own
//! control-plane threads: no async runtime, nothing near a worker.
#![forbid(unsafe_code)]

use crate::afxdp::localmac::LocalMacQueue;
use crate::fdb::FdbTable;
use crate::vxlan::Vni;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use vxdp_control::entry::{FdbOp, FdbRequest, Source};
use vxdp_control::store::url::StoreConfig;
use vxdp_control::store::{AdvertiseConfig, Advertiser, AdvertiserHandle, Change, Keys, Sink, WatchConfig, Watcher};
use vxdp_control::Mac;

/// Validated cluster-store settings for `vxdp run` (the command line builds them; see
/// the `vxdp-cli` crate). `None` in [`crate::daemon::Config`] means no store.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// Which store, its endpoints and options, already checked.
    pub store: StoreConfig,
    /// Key prefix of vxdp's entries in the store.
    pub prefix: String,
    /// Publish this node as a VTEP of the VNI and the MACs seen behind the overlay.
    pub advertise: bool,
    /// TTL of the advertising lease (session): how long a dead node's entries stay.
    pub ttl: Duration,
}

/// The running store threads; dropping stops them (and withdraws our keys).
pub struct StorePlane {
    status: StoreStatus,
    _watcher: Watcher,
    advertiser: Option<Advertiser>,
    feed_stop: Arc<AtomicBool>,
}

/// The watcher's connection state and the time of its last answer, for `--metrics`.
#[derive(Clone)]
pub struct StoreStatus {
    watch: Arc<vxdp_control::store::WatchStats>,
    last_answer: Arc<std::sync::Mutex<Option<Instant>>>,
    kind: &'static str,
}

impl StoreStatus {
    pub fn get(&self) -> super::metrics::StoreStatus {
        let at = *self.last_answer.lock().unwrap_or_else(|e| e.into_inner());
        super::metrics::StoreStatus {
            store: self.kind,
            connected: self.watch.connected.load(Ordering::Relaxed),
            last_sync_age_secs: at.map(|t| t.elapsed().as_secs_f64()),
        }
    }
}

impl StorePlane {
    pub fn status(&self) -> StoreStatus {
        self.status.clone()
    }
}

impl Drop for StorePlane {
    fn drop(&mut self) {
        self.feed_stop.store(true, Ordering::Relaxed);
        drop(self.advertiser.take());
    }
}

/// What the store threads need from the daemon.
pub struct Plumbing {
    pub fdb: Arc<FdbTable>,
    /// Set when the FDB changed (the control loop re-resolves next hops).
    pub fdb_changed: Arc<AtomicBool>,
    pub vni: Vni,
    pub local: IpAddr,
    pub dstport: u16,
    pub ageing: Duration,
    /// MACs the workers saw behind the overlay (present when advertising).
    pub local_macs: Option<Arc<LocalMacQueue>>,
    /// This host's addresses: never a remote VTEP (`vxdp_control::validate`).
    pub own_addrs: std::collections::BTreeSet<IpAddr>,
    /// Where the watcher's counters are published for `vxdp stats`.
    pub store_stats: Arc<std::sync::OnceLock<Arc<vxdp_control::store::WatchStats>>>,
}

/// Starts the watcher (and the advertiser with `--advertise`). The store being
/// unreachable is not an error: the threads retry in the background while static
/// entries serve.
pub fn start(settings: Option<&StoreSettings>, p: Plumbing) -> Result<Option<StorePlane>> {
    let Some(args) = settings else { return Ok(None) };
    let kind = args.store.kind();
    let client = || args.store.open().with_context(|| format!("--cluster-store {kind}://{}", args.store.describe()));
    let keys = Keys::new(&args.prefix, p.vni);

    let advertiser = if args.advertise {
        let cfg = AdvertiseConfig {
            keys: keys.clone(),
            local: p.local,
            port: None,
            ttl: args.ttl,
            mac_ageing: if p.ageing.is_zero() { Duration::from_secs(300) } else { p.ageing },
            // Three report intervals: a MAC still sending here has been reported since.
            takeover_window: Duration::from_secs(3 * u64::from(crate::afxdp::localmac::REFRESH_SECS)),
            name: format!("vxdp {} vni {}", p.local, p.vni),
        };
        Some(Advertiser::spawn(client()?, cfg).with_context(|| format!("starting the {kind} advertiser"))?)
    } else {
        None
    };
    let handle = advertiser.as_ref().map(Advertiser::handle);

    let mut wcfg = WatchConfig::new(keys);
    wcfg.local = Some(p.local);
    wcfg.rules.own = p.own_addrs.iter().copied().filter(|a| *a != p.local).collect();
    let last_answer = Arc::new(std::sync::Mutex::new(None));
    let sink = FdbSink {
        fdb: p.fdb.clone(),
        changed: p.fdb_changed.clone(),
        advertiser: handle.clone(),
        last_answer: last_answer.clone(),
    };
    let watcher = Watcher::spawn(client()?, wcfg, sink).with_context(|| format!("starting the {kind} watcher"))?;
    let _ = p.store_stats.set(watcher.stats().clone());
    let status = StoreStatus { watch: watcher.stats().clone(), last_answer, kind };

    let feed_stop = Arc::new(AtomicBool::new(false));
    if let (Some(queue), Some(handle)) = (p.local_macs, handle) {
        let stop = feed_stop.clone();
        std::thread::Builder::new()
            .name("store-feed".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    while let Some(mac) = queue.pop() {
                        handle.seen(Mac(mac));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
            .context("starting the local MAC feed")?;
    }
    Ok(Some(StorePlane { status, _watcher: watcher, advertiser, feed_stop }))
}

/// Where the watcher's answers go: the FDB, and (when advertising) the advertiser,
/// which learns which MACs moved away and which of its keys are in the store.
struct FdbSink {
    fdb: Arc<FdbTable>,
    changed: Arc<AtomicBool>,
    advertiser: Option<AdvertiserHandle>,
    /// When the watcher last answered (`own` follows every answer).
    last_answer: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Sink for FdbSink {
    fn apply(&mut self, changes: &[Change]) {
        apply(&self.fdb, &self.changed, self.advertiser.as_ref(), changes);
    }

    fn own(&mut self, macs: BTreeSet<Mac>, listed_at: Instant) {
        *self.last_answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        if let Some(a) = &self.advertiser {
            a.present(macs, listed_at);
        }
    }
}

/// One store answer's changes as one FDB batch, in the store's layer (source
/// `consul`): a changed MAC loses its old store remotes and gets the new ones,
/// atomically for readers.
pub fn apply(fdb: &FdbTable, changed: &AtomicBool, advertiser: Option<&AdvertiserHandle>, changes: &[Change]) {
    let mut reqs = Vec::with_capacity(changes.len() * 2);
    for c in changes {
        if c.existed {
            reqs.push((FdbRequest::new(FdbOp::Del, c.mac, None), Source::Store));
        }
        for r in &c.remotes {
            reqs.push((FdbRequest::new(FdbOp::Append, c.mac, Some(*r)), Source::Store));
        }
        if !c.mac.is_zero() && !c.remotes.is_empty() {
            // Entries pointing at this node are filtered out before here, so the MAC
            // lives elsewhere now.
            if let Some(a) = advertiser {
                a.disown(c.mac);
            }
        }
    }
    if let Err(e) = fdb.apply_batch(&reqs) {
        // Said once per answer that has such changes (an IPv6 VTEP, ...), not per frame.
        log::warn!("cluster store: some changes did not apply: {e}");
    }
    changed.store(true, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdb::DEFAULT_AGEING;
    use std::collections::BTreeSet;
    use vxdp_control::entry::Remote;

    fn ip(d: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, d))
    }

    fn change(mac: Mac, existed: bool, vteps: &[u8]) -> Change {
        Change { mac, existed, remotes: vteps.iter().map(|d| Remote::new(ip(*d))).collect::<BTreeSet<_>>() }
    }

    /// (mac, vtep, source) of every entry `fdb show` lists.
    fn shown(fdb: &FdbTable) -> Vec<(Mac, IpAddr, Source)> {
        fdb.show().into_iter().map(|e| (e.mac, e.remote.ip, e.source)).collect()
    }

    #[test]
    fn answers_apply_as_consul_entries_below_static_ones() {
        let fdb = FdbTable::new(false, DEFAULT_AGEING);
        let changed = AtomicBool::new(false);
        let m1 = Mac([2, 0, 0, 0, 0, 1]);
        let m2 = Mac([2, 0, 0, 0, 0, 2]);
        fdb.apply(&FdbRequest::new(FdbOp::Replace, m2, Some(Remote::new(ip(9)))), Source::Static).unwrap();

        apply(
            &fdb,
            &changed,
            None,
            &[change(Mac::ZERO, false, &[1, 2]), change(m1, false, &[1]), change(m2, false, &[3])],
        );
        assert!(changed.load(Ordering::Acquire));
        let c = Source::Store;
        assert_eq!(
            shown(&fdb),
            vec![(Mac::ZERO, ip(1), c), (Mac::ZERO, ip(2), c), (m1, ip(1), c), (m2, ip(9), Source::Static)]
        );
        assert_eq!(fdb.snapshot().flood().len(), 2);

        // A VTEP leaves, m1 moves, m2's Consul entry goes (the static one stays).
        apply(&fdb, &changed, None, &[change(Mac::ZERO, true, &[2]), change(m1, true, &[2]), change(m2, true, &[])]);
        assert_eq!(shown(&fdb), vec![(Mac::ZERO, ip(2), c), (m1, ip(2), c), (m2, ip(9), Source::Static)]);
        apply(&fdb, &changed, None, &[change(m1, true, &[])]);
        assert!(fdb.snapshot().lookup(&m1.0).is_none());
    }
}
