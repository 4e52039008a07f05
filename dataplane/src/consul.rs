//! `vxdp run --consul`: wires the Consul watcher and advertiser (`vxdp_control::consul`)
//! to the data plane. The watcher's diffs become one `apply_batch` on the FDB with
//! source `consul` (one snapshot publish per Consul answer; workers never wait); MACs
//! the workers see behind the overlay feed the advertiser.

use crate::fdb::FdbTable;
use crate::localmac::LocalMacQueue;
use anyhow::{Context, Result};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vxdp_control::consul::{
    AdvertiseConfig, Advertiser, AdvertiserHandle, Change, Client, Consistency, ConsulConfig, Keys, WatchConfig, Watcher,
};
use vxdp_control::fdb::{FdbOp, FdbRequest, Source};
use vxdp_control::Mac;

/// The Consul options of `vxdp run`.
#[derive(clap::Args, Debug, Clone)]
pub struct ConsulArgs {
    /// Consul HTTP address (http://host:port, https://host:port or host:port): watch it for FDB entries.
    #[arg(long = "consul", value_name = "URL", env = "CONSUL_HTTP_ADDR")]
    pub consul_address: Option<String>,
    /// Consul ACL token.
    #[arg(long = "consul-token", value_name = "TOKEN", env = "CONSUL_HTTP_TOKEN", hide_env_values = true)]
    pub consul_token: Option<String>,
    /// Consul datacenter to query (default: the agent's).
    #[arg(long = "consul-dc", value_name = "DC")]
    pub consul_dc: Option<String>,
    /// PEM file of the CA(s) that sign the Consul servers' certificates (https).
    #[arg(long = "consul-ca", value_name = "FILE")]
    pub consul_ca: Option<PathBuf>,
    /// Read consistency: default (leader) or stale (any server).
    #[arg(long = "consul-consistency", value_name = "MODE", default_value = "default", value_parser = parse_consistency)]
    pub consul_consistency: Consistency,
    /// Key prefix of vxdp's entries in Consul's KV store.
    #[arg(long = "consul-prefix", value_name = "PREFIX", default_value = vxdp_control::consul::schema::DEFAULT_PREFIX)]
    pub consul_prefix: String,
    /// Publish this node as a VTEP of the VNI and the MACs seen behind the overlay device.
    #[arg(long, requires = "consul_address")]
    pub advertise: bool,
    /// TTL of the advertising session in seconds (10-86400): how long a dead node's entries stay.
    #[arg(long = "consul-ttl", value_name = "SECS", default_value = "10", value_parser = clap::value_parser!(u64).range(10..=86400))]
    pub consul_ttl: u64,
}

fn parse_consistency(s: &str) -> Result<Consistency, String> {
    s.parse()
}

/// The running Consul threads; dropping stops them (and withdraws our keys).
pub struct ConsulPlane {
    _watcher: Watcher,
    advertiser: Option<Advertiser>,
    feed_stop: Arc<AtomicBool>,
}

impl Drop for ConsulPlane {
    fn drop(&mut self) {
        self.feed_stop.store(true, Ordering::Relaxed);
        drop(self.advertiser.take());
    }
}

/// What the Consul threads need from the daemon.
pub struct Plumbing {
    pub fdb: Arc<FdbTable>,
    /// Set when the FDB changed (the control loop re-resolves next hops).
    pub fdb_changed: Arc<AtomicBool>,
    pub vni: u32,
    pub local: IpAddr,
    pub dstport: u16,
    pub ageing: Duration,
    /// MACs the workers saw behind the overlay (present when advertising).
    pub local_macs: Option<Arc<LocalMacQueue>>,
}

impl ConsulArgs {
    /// Checks the options (address, CA file) without contacting Consul.
    pub fn client(&self) -> Result<Option<Client>> {
        let Some(address) = &self.consul_address else { return Ok(None) };
        let cfg = ConsulConfig {
            address: address.clone(),
            token: self.consul_token.clone().filter(|t| !t.is_empty()),
            datacenter: self.consul_dc.clone(),
            ca_file: self.consul_ca.clone(),
            consistency: self.consul_consistency,
        };
        Ok(Some(Client::new(cfg).with_context(|| format!("--consul {address}"))?))
    }
}

/// Starts the watcher (and the advertiser with `--advertise`). Consul being unreachable
/// is not an error: the threads retry in the background while static entries serve.
pub fn start(args: &ConsulArgs, p: Plumbing) -> Result<Option<ConsulPlane>> {
    let Some(client) = args.client()? else { return Ok(None) };
    let keys = Keys::new(&args.consul_prefix, p.vni);

    let advertiser = if args.advertise {
        let cfg = AdvertiseConfig {
            keys: keys.clone(),
            local: p.local,
            port: None,
            ttl: Duration::from_secs(args.consul_ttl),
            mac_ageing: if p.ageing.is_zero() { Duration::from_secs(300) } else { p.ageing },
            name: format!("vxdp {} vni {}", p.local, p.vni),
        };
        Some(Advertiser::spawn(args.client()?.expect("address checked"), cfg).context("starting the Consul advertiser")?)
    } else {
        None
    };
    let handle = advertiser.as_ref().map(Advertiser::handle);

    let mut wcfg = WatchConfig::new(keys);
    wcfg.local = Some(p.local);
    let (fdb, changed) = (p.fdb.clone(), p.fdb_changed.clone());
    let h = handle.clone();
    let watcher = Watcher::spawn(client, wcfg, move |changes: &[Change]| apply(&fdb, &changed, h.as_ref(), changes))
        .context("starting the Consul watcher")?;

    let feed_stop = Arc::new(AtomicBool::new(false));
    if let (Some(queue), Some(handle)) = (p.local_macs, handle) {
        let stop = feed_stop.clone();
        std::thread::Builder::new()
            .name("consul-feed".into())
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
    Ok(Some(ConsulPlane { _watcher: watcher, advertiser, feed_stop }))
}

/// One Consul answer's changes as one FDB batch, in the Consul layer: a changed MAC
/// loses its old Consul remotes and gets the new ones, atomically for readers.
pub fn apply(fdb: &FdbTable, changed: &AtomicBool, advertiser: Option<&AdvertiserHandle>, changes: &[Change]) {
    let mut reqs = Vec::with_capacity(changes.len() * 2);
    for c in changes {
        if c.existed {
            reqs.push((FdbRequest::new(FdbOp::Del, c.mac, None), Source::Consul));
        }
        for r in &c.remotes {
            reqs.push((FdbRequest::new(FdbOp::Append, c.mac, Some(*r)), Source::Consul));
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
        log::debug!("consul: some changes did not apply: {e}");
    }
    changed.store(true, Ordering::Release);
}
