//! `vxdp run --consul`: wires the Consul watcher and advertiser (`vxdp_control::consul`)
//! to the data plane. The watcher's diffs become one `apply_batch` on the FDB with
//! source `consul` (one snapshot publish per Consul answer; workers never wait); MACs
//! the workers see behind the overlay feed the advertiser.

use crate::fdb::FdbTable;
use crate::localmac::LocalMacQueue;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use vxdp_control::consul::{
    AdvertiseConfig, Advertiser, AdvertiserHandle, Change, Client, Consistency, ConsulConfig, Keys, Sink, WatchConfig,
    Watcher,
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
        if let Some(dc) = &self.consul_dc {
            if dc.is_empty() || !dc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                bail!("--consul-dc '{dc}': a datacenter name is letters, digits, '-' and '_'");
            }
        }
        let p = &self.consul_prefix;
        if p.contains(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%')) || p.contains("//")
        {
            bail!("--consul-prefix '{p}': no spaces, control characters, '?', '#', '%' or '//' in a key prefix");
        }
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
            // Three report intervals: a MAC still sending here has been reported since.
            takeover_window: Duration::from_secs(3 * u64::from(crate::localmac::REFRESH_SECS)),
            name: format!("vxdp {} vni {}", p.local, p.vni),
        };
        Some(
            Advertiser::spawn(args.client()?.expect("address checked"), cfg)
                .context("starting the Consul advertiser")?,
        )
    } else {
        None
    };
    let handle = advertiser.as_ref().map(Advertiser::handle);

    let mut wcfg = WatchConfig::new(keys);
    wcfg.local = Some(p.local);
    let sink = FdbSink { fdb: p.fdb.clone(), changed: p.fdb_changed.clone(), advertiser: handle.clone() };
    let watcher = Watcher::spawn(client, wcfg, sink).context("starting the Consul watcher")?;

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

/// Where the watcher's answers go: the FDB, and (when advertising) the advertiser,
/// which learns which MACs moved away and which of its keys are in Consul.
struct FdbSink {
    fdb: Arc<FdbTable>,
    changed: Arc<AtomicBool>,
    advertiser: Option<AdvertiserHandle>,
}

impl Sink for FdbSink {
    fn apply(&mut self, changes: &[Change]) {
        apply(&self.fdb, &self.changed, self.advertiser.as_ref(), changes);
    }

    fn own(&mut self, macs: BTreeSet<Mac>, listed_at: Instant) {
        if let Some(a) = &self.advertiser {
            a.present(macs, listed_at);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdb::DEFAULT_AGEING;
    use clap::Parser;
    use std::collections::BTreeSet;
    use vxdp_control::fdb::Remote;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        consul: ConsulArgs,
    }

    fn parse(args: &[&str]) -> Result<ConsulArgs, String> {
        Cli::try_parse_from(std::iter::once("vxdp").chain(args.iter().copied()))
            .map(|c| c.consul)
            .map_err(|e| e.to_string())
    }

    /// The options read CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN: with them set, the
    /// expectations below do not hold.
    fn env_is_clean(test: &str) -> bool {
        let set = ["CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN"].iter().any(|v| std::env::var_os(v).is_some());
        if set {
            eprintln!("{test}: skipped, CONSUL_HTTP_ADDR or CONSUL_HTTP_TOKEN is set");
        }
        !set
    }

    #[test]
    fn options_validate_and_errors_name_the_option() {
        if !env_is_clean("options_validate_and_errors_name_the_option") {
            return;
        }
        let none = parse(&[]).unwrap();
        assert!(none.client().unwrap().is_none(), "no --consul must mean no Consul");
        let a =
            parse(&["--consul", "10.0.0.1:8500", "--consul-consistency", "stale", "--consul-dc", "dc2", "--advertise"])
                .unwrap();
        let c = a.client().unwrap().expect("a client");
        assert_eq!(c.config().consistency, Consistency::Stale);
        assert_eq!(c.config().datacenter.as_deref(), Some("dc2"));
        assert_eq!((a.consul_ttl, a.consul_prefix.as_str(), a.advertise), (10, "vxdp/", true));

        let e = parse(&["--consul", "x:1", "--consul-consistency", "strong"]).unwrap_err();
        assert!(e.contains("--consul-consistency") && e.contains("strong"), "{e}");
        let e = parse(&["--consul", "x:1", "--consul-ttl", "5"]).unwrap_err();
        assert!(e.contains("--consul-ttl"), "{e}");
        let e = parse(&["--advertise"]).unwrap_err();
        assert!(e.contains("--consul"), "{e}");
        let e =
            format!("{:#}", parse(&["--consul", "ftp://x:1"]).unwrap().client().err().expect("bad scheme accepted"));
        assert!(e.contains("--consul ftp://x:1"), "{e}");
        for (flag, value) in [("--consul-dc", "dc 1"), ("--consul-dc", ""), ("--consul-prefix", "vx?dp/")] {
            let e = format!("{:#}", parse(&["--consul", "x:1", flag, value]).unwrap().client().err().expect(value));
            assert!(e.contains(&format!("{flag} '{value}'")), "{e}");
        }
        let bad_ca = parse(&["--consul", "https://x:8501", "--consul-ca", "/nonexistent/ca.pem"]).unwrap();
        let e = format!("{:#}", bad_ca.client().err().expect("missing CA file accepted"));
        assert!(e.contains("--consul-ca /nonexistent/ca.pem"), "{e}");
    }

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
        let c = Source::Consul;
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
