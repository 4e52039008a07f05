//! The store watcher and advertiser against every backend, real where it can be:
//!
//! - **etcd:** a real 3-member etcd cluster (Debian's `etcd-server`, started by each
//!   test on loopback; [`vxdp_testsupport::etcd`]), plus fault tests against it: the
//!   member the watcher talks to SIGKILLed, the leader SIGKILLed, every member stopped
//!   and restarted, compaction past the watcher's revision.
//! - **consul:** the in-process Consul test server (`vxdp_testsupport::consul`): no
//!   Consul binary can be installed here. With `CONSUL_HTTP_ADDR` set (and
//!   `CONSUL_HTTP_TOKEN` if ACLs are on), the Consul tests run against that real Consul
//!   instead, each under its own key prefix, removed afterwards; the fault-injection
//!   tests, which make the test server misbehave, then skip with a message.
//!
//! - **zk:** a real 3-server ZooKeeper ensemble (Debian's `zookeeper`, started by each
//!   test on loopback; [`vxdp_testsupport::zookeeper`]), plus fault tests against it:
//!   the leader SIGKILLed, every server stopped and restarted, the watcher's and the
//!   advertiser's sessions ended under them (expiry).
//!
//! - **etcd secured:** a real etcd serving TLS with client certificates, and one with
//!   users and roles on (a user allowed only the test's prefix, a 2-second token TTL),
//!   reached through `--cluster-store`/`--cluster-store-opt` exactly as `vxdp run`
//!   parses them (`etcd_tls_*`, `etcd_auth_*`).
//!
//! Every test in [`all!`] runs once per store (`consul::NAME`, `etcd::NAME`, `zk::NAME`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vxdp_common::Vni;
use vxdp_control::consul::{Client, ConsulConfig};
use vxdp_control::entry::Remote;
use vxdp_control::store::consul::ConsulStore;
use vxdp_control::store::etcd::{EtcdConfig, EtcdStore};
use vxdp_control::store::url::{StoreConfig, StoreUrl};
use vxdp_control::store::zk::{ZkConfig, ZkStore};
use vxdp_control::store::{
    AdvertiseConfig, Advertiser, AdvertiserHandle, Change, Keys, Lease, Sink, Store, WatchConfig, Watcher,
};
use vxdp_control::Mac;
use vxdp_testsupport::consul::TestConsul;
use vxdp_testsupport::etcd::{available as etcd_available, EtcdCluster, Options as EtcdOptions};
use vxdp_testsupport::zookeeper::{available as zk_available, ZkEnsemble};

static NEXT: AtomicU64 = AtomicU64::new(0);
const VNI: u32 = 42;

/// The server behind a [`Backend`].
enum Server {
    /// The in-process test server, or `None`: a real Consul from `CONSUL_HTTP_ADDR`.
    Consul(Option<TestConsul>, ConsulConfig),
    Etcd(EtcdCluster),
    Zk(ZkEnsemble),
}

/// The store under test and this test's key prefix.
struct Backend {
    server: Server,
    prefix: String,
    /// etcd: `--cluster-store-opt`s the clients are built with (through the same
    /// parser as `vxdp run`), or none: plain `EtcdConfig::new`.
    opts: Vec<String>,
}

impl Backend {
    fn consul() -> Backend {
        let prefix = format!("vxdp-test-{}-{}/", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let server = match std::env::var("CONSUL_HTTP_ADDR") {
            Ok(url) if !url.is_empty() => {
                let mut c = ConsulConfig::new(&url);
                c.token = std::env::var("CONSUL_HTTP_TOKEN").ok();
                Server::Consul(None, c)
            }
            _ => {
                let server = TestConsul::start().expect("start the test Consul");
                let c = ConsulConfig::new(&server.url());
                Server::Consul(Some(server), c)
            }
        };
        Backend { server, prefix, opts: Vec::new() }
    }

    /// A fresh 3-member etcd cluster, or `None` (the test skips) without etcd.
    fn etcd(test: &str) -> Option<Backend> {
        if !etcd_available(test) {
            return None;
        }
        Some(Backend { server: Server::Etcd(EtcdCluster::start(3)), prefix: "vxdp/".into(), opts: Vec::new() })
    }

    /// A fresh 3-server ZooKeeper ensemble, or `None` (the test skips) without ZooKeeper.
    fn zk(test: &str) -> Option<Backend> {
        if !zk_available(test) {
            return None;
        }
        Some(Backend { server: Server::Zk(ZkEnsemble::start(3)), prefix: "vxdp/".into(), opts: Vec::new() })
    }

    fn ensemble(&mut self) -> &mut ZkEnsemble {
        match &mut self.server {
            Server::Zk(z) => z,
            _ => panic!("not zk"),
        }
    }

    fn zk_config(&self) -> ZkConfig {
        match &self.server {
            Server::Zk(z) => {
                let eps = z.endpoints();
                ZkConfig::new(&eps.iter().map(String::as_str).collect::<Vec<_>>())
            }
            _ => panic!("not zk"),
        }
    }

    /// The Consul test server, for fault injection; `None` (and a message) on a real Consul.
    fn faults(&self, test: &str) -> Option<&TestConsul> {
        match &self.server {
            Server::Consul(Some(s), _) => Some(s),
            _ => {
                eprintln!("{test}: skipped against a real Consul (needs fault injection)");
                None
            }
        }
    }

    fn cluster(&mut self) -> &mut EtcdCluster {
        match &mut self.server {
            Server::Etcd(c) => c,
            _ => panic!("not etcd"),
        }
    }

    fn consul_config(&self) -> ConsulConfig {
        match &self.server {
            Server::Consul(_, c) => c.clone(),
            _ => panic!("not consul"),
        }
    }

    /// A 1-member etcd cluster started with `options`, or `None` without etcd.
    fn etcd_with(test: &str, options: EtcdOptions) -> Option<Backend> {
        if !etcd_available(test) {
            return None;
        }
        let server = Server::Etcd(EtcdCluster::start_with(1, options));
        Some(Backend { server, prefix: "vxdp/".into(), opts: Vec::new() })
    }

    fn etcd_config(&self) -> EtcdConfig {
        self.etcd_config_with(&self.opts)
    }

    /// The client configuration `vxdp run --cluster-store URL --cluster-store-opt ...`
    /// would build for this cluster with `opts`.
    fn etcd_config_with(&self, opts: &[String]) -> EtcdConfig {
        match &self.server {
            Server::Etcd(c) if !opts.is_empty() || c.pki().is_some() => {
                let url: StoreUrl = c.url().parse().expect("cluster URL");
                match StoreConfig::new(&url, opts) {
                    Ok(StoreConfig::Etcd(cfg)) => cfg,
                    other => panic!("{} {opts:?}: {other:?}", c.url()),
                }
            }
            Server::Etcd(c) => {
                let eps = c.endpoints();
                EtcdConfig::new(&eps.iter().map(String::as_str).collect::<Vec<_>>())
            }
            _ => panic!("not etcd"),
        }
    }

    /// A new client of the store.
    fn store(&self) -> Box<dyn Store> {
        match &self.server {
            Server::Consul(_, c) => Box::new(ConsulStore::new(c.clone()).expect("client")),
            Server::Etcd(_) => Box::new(EtcdStore::new(self.etcd_config()).expect("client")),
            Server::Zk(_) => Box::new(ZkStore::new(self.zk_config()).expect("client")),
        }
    }

    fn keys(&self) -> Keys {
        Keys::new(&self.prefix, Vni::new(VNI).unwrap())
    }

    fn put(&self, key: &str, value: &[u8]) {
        assert!(self.store().put(key, value, None).expect("put"), "put {key}");
    }

    fn put_mac(&self, mac: Mac, vtep: u8) {
        self.put(&self.keys().mac(mac), format!(r#"{{"v":1,"vtep":"{}"}}"#, ip(vtep)).as_bytes());
    }

    fn put_vtep(&self, vtep: u8) {
        self.put(&self.keys().vtep(ip(vtep)), br#"{"v":1}"#);
    }

    /// Many keys at once (etcd: 100 per transaction; Consul: one by one).
    fn put_many(&self, pairs: &[(String, Vec<u8>)]) {
        match &self.server {
            Server::Etcd(_) => EtcdStore::new(self.etcd_config()).unwrap().put_batch(pairs).expect("put batch"),
            Server::Zk(_) => ZkStore::new(self.zk_config()).unwrap().put_batch(pairs).expect("put batch"),
            Server::Consul(..) => {
                let mut s = self.store();
                for (k, v) in pairs {
                    assert!(s.put(k, v, None).unwrap());
                }
            }
        }
    }

    fn delete(&self, key: &str) {
        assert!(self.store().delete(key, None).expect("delete"), "delete {key}");
    }

    fn watch(&self, wait: Duration) -> (Watcher, Table) {
        self.watch_with(self.store(), wait)
    }

    fn watch_with(&self, store: impl Store, wait: Duration) -> (Watcher, Table) {
        let table = Table::default();
        let mut cfg = WatchConfig::new(self.keys());
        cfg.wait = wait;
        cfg.max_backoff = Duration::from_millis(500);
        let t = table.clone();
        let w = Watcher::spawn(store, cfg, move |c: &[Change]| t.apply(c)).expect("spawn watcher");
        (w, table)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Server::Consul(None, c) = &self.server {
            // Best effort: leave a real Consul as we found it.
            let _ = delete_prefix(c, &self.prefix);
        }
    }
}

fn delete_prefix(cfg: &ConsulConfig, prefix: &str) -> Result<(), ()> {
    // The client has no recursive delete (vxdp never needs one); delete key by key.
    let c = Client::new(cfg.clone()).map_err(|_| ())?;
    let l = c.kv_list(prefix, 0, Duration::from_secs(1)).map_err(|_| ())?;
    for p in l.pairs {
        let _ = c.kv_delete(&p.key, None);
    }
    Ok(())
}

/// Defines `consul::NAME`, `etcd::NAME` and `zk::NAME` for each `fn NAME(b: Backend)`.
macro_rules! all {
    ($($name:ident),* $(,)?) => {
        mod consul {
            $(#[test] fn $name() { super::$name(super::Backend::consul()) })*
        }
        mod etcd {
            $(#[test] fn $name() {
                if let Some(b) = super::Backend::etcd(stringify!($name)) { super::$name(b) }
            })*
        }
        mod zk {
            $(#[test] fn $name() {
                if let Some(b) = super::Backend::zk(stringify!($name)) { super::$name(b) }
            })*
        }
    };
}

all!(
    watcher_follows_adds_changes_and_deletes,
    entries_of_this_node_are_not_installed,
    malformed_values_are_skipped_and_counted,
    invalid_store_values_are_skipped_counted_and_the_answer_capped,
    a_burst_of_10000_changes_arrives_whole_in_few_batches,
    advertiser_publishes_under_a_session_and_withdraws_on_exit,
    a_dead_nodes_keys_vanish_after_the_session_ttl,
    a_moved_mac_is_taken_over_and_not_claimed_back,
    a_stale_sighting_does_not_take_a_key_over,
    keys_that_vanish_from_the_store_are_written_again,
    rewriting_a_vanished_key_never_takes_it_from_another_node,
);

/// What a sink has been told: Consul's view of the FDB, and how many applies.
#[derive(Clone, Default)]
struct Table {
    map: Arc<Mutex<BTreeMap<Mac, BTreeSet<Remote>>>>,
    applies: Arc<AtomicU64>,
}

impl Table {
    fn apply(&self, changes: &[Change]) {
        let mut m = self.map.lock().unwrap();
        for c in changes {
            assert_eq!(c.existed, m.contains_key(&c.mac), "existed flag wrong for {}", c.mac);
            if c.remotes.is_empty() {
                m.remove(&c.mac);
            } else {
                m.insert(c.mac, c.remotes.clone());
            }
        }
        self.applies.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, mac: Mac) -> Option<Vec<IpAddr>> {
        self.map.lock().unwrap().get(&mac).map(|s| s.iter().map(|r| r.ip).collect())
    }

    fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

fn ip(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
}

fn mac(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([0x02, 0x42, b[0], b[1], b[2], b[3]])
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

fn watcher_follows_adds_changes_and_deletes(b: Backend) {
    b.put_mac(mac(1), 2);
    b.put_mac(mac(2), 3);
    b.put_vtep(2);
    b.put_vtep(3);
    let (w, t) = b.watch(Duration::from_secs(30));
    wait_for("the initial listing", Duration::from_secs(5), || t.len() == 3);
    assert_eq!(t.get(Mac::ZERO), Some(vec![ip(2), ip(3)]));
    assert_eq!(t.get(mac(1)), Some(vec![ip(2)]));

    // Changes arrive through the blocking query, long before its 30 s wait.
    b.put_mac(mac(1), 4);
    wait_for("mac 1 moving to .4", Duration::from_secs(5), || t.get(mac(1)) == Some(vec![ip(4)]));
    b.delete(&b.keys().mac(mac(2)));
    wait_for("mac 2 removed", Duration::from_secs(5), || t.get(mac(2)).is_none());
    b.delete(&b.keys().vtep(ip(3)));
    wait_for("vtep .3 leaving the flood list", Duration::from_secs(5), || t.get(Mac::ZERO) == Some(vec![ip(2)]));
    assert!(w.stats().connected.load(Ordering::Relaxed));
    assert_eq!(w.stats().resyncs.load(Ordering::Relaxed), 1);
}

fn entries_of_this_node_are_not_installed(b: Backend) {
    b.put_vtep(1);
    b.put_vtep(2);
    b.put_mac(mac(1), 1);
    b.put_mac(mac(2), 2);
    let table = Table::default();
    let mut cfg = WatchConfig::new(b.keys());
    cfg.local = Some(ip(1));
    let t = table.clone();
    let w = Watcher::spawn(b.store(), cfg, move |c: &[Change]| t.apply(c)).unwrap();
    wait_for("the listing", Duration::from_secs(5), || w.stats().answers.load(Ordering::Relaxed) > 0);
    assert_eq!(table.get(Mac::ZERO), Some(vec![ip(2)]), "own VTEP in the flood list");
    assert_eq!(table.get(mac(1)), None, "own MAC installed as remote");
    assert_eq!(table.get(mac(2)), Some(vec![ip(2)]));
}

fn malformed_values_are_skipped_and_counted(b: Backend) {
    b.put_mac(mac(1), 2);
    let k = b.keys();
    b.put(&k.mac(mac(2)), b"{not json");
    b.put(&format!("{}mac/zz:zz", k.vni_prefix()), br#"{"v":1,"vtep":"192.0.2.9"}"#);
    b.put(&k.mac(mac(3)), br#"{"v":9,"vtep":"192.0.2.9"}"#);
    let (w, t) = b.watch(Duration::from_secs(30));
    wait_for("the listing", Duration::from_secs(5), || t.len() == 1);
    assert_eq!(w.stats().skipped.load(Ordering::Relaxed), 3);
    assert_eq!(t.get(mac(1)), Some(vec![ip(2)]));
    // Fixing a bad key makes it apply.
    b.put_mac(mac(2), 5);
    wait_for("the fixed key", Duration::from_secs(5), || t.get(mac(2)) == Some(vec![ip(5)]));
    assert_eq!(w.stats().skipped.load(Ordering::Relaxed), 2);
}

fn invalid_store_values_are_skipped_counted_and_the_answer_capped(b: Backend) {
    let k = b.keys();
    b.put(&k.mac(mac(1)), br#"{"v":1,"vtep":"224.0.0.9"}"#);
    b.put(&k.mac(mac(2)), br#"{"v":1,"vtep":"127.0.0.1"}"#);
    b.put(&k.mac(mac(3)), br#"{"v":1,"vtep":"2001:db8::3"}"#);
    b.put(&k.mac(mac(4)), br#"{"v":1,"vtep":"192.0.2.4","port":0}"#);
    b.put(&k.mac(mac(5)), br#"{"v":1,"vtep":"198.51.100.77"}"#); // one of "our" addresses
    b.put(&format!("{}vtep/255.255.255.255", k.vni_prefix()), br#"{"v":1}"#);
    for i in 10..15 {
        b.put_mac(mac(i), 20 + i as u8);
    }
    let table = Table::default();
    let mut cfg = WatchConfig::new(b.keys());
    cfg.wait = Duration::from_secs(30);
    cfg.rules.own = ["198.51.100.77".parse().unwrap()].into();
    cfg.rules.max_entries = 3;
    let t = table.clone();
    let w = Watcher::spawn(b.store(), cfg, move |ch: &[Change]| t.apply(ch)).expect("spawn watcher");
    wait_for("the listing", Duration::from_secs(5), || table.len() == 3);
    assert_eq!(w.stats().skipped.load(Ordering::Relaxed), 6);
    assert_eq!(w.stats().capped.load(Ordering::Relaxed), 2);
    for i in 1..6 {
        assert_eq!(table.get(mac(i)), None, "invalid entry {i} installed");
    }
    // At the cap, what was accepted stays while new keys keep being refused.
    b.put_mac(mac(16), 36);
    wait_for("the next answer", Duration::from_secs(5), || w.stats().capped.load(Ordering::Relaxed) == 3);
    assert_eq!(table.len(), 3);
}

fn a_burst_of_10000_changes_arrives_whole_in_few_batches(b: Backend) {
    let (w, t) = b.watch(Duration::from_secs(30));
    wait_for("connected", Duration::from_secs(5), || w.stats().connected.load(Ordering::Relaxed));
    let k = b.keys();
    let pairs: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| {
            let v = format!(r#"{{"v":1,"vtep":"10.{}.{}.{}"}}"#, i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff);
            (k.mac(mac(i)), v.into_bytes())
        })
        .collect();
    b.put_many(&pairs);
    wait_for("10,000 entries", Duration::from_secs(30), || t.len() == 10_000);
    let applies = t.applies.load(Ordering::Relaxed);
    let answers = w.stats().answers.load(Ordering::Relaxed);
    eprintln!("10,000 changes arrived in {applies} batches ({answers} answers)");
    assert!(applies <= answers);
    assert_eq!(t.get(mac(9_999)), Some(vec!["10.0.39.15".parse().unwrap()]));
}

#[test]
fn consul_unreachable_at_start_connects_later() {
    let b = Backend::consul();
    let Some(s) = b.faults("unreachable_at_start_connects_later") else { return };
    s.set_down(true);
    s.put(&b.keys().mac(mac(1)), br#"{"v":1,"vtep":"192.0.2.2"}"#);
    let (w, t) = b.watch(Duration::from_secs(30));
    wait_for("a failed attempt", Duration::from_secs(5), || w.stats().errors.load(Ordering::Relaxed) >= 2);
    assert!(!w.stats().connected.load(Ordering::Relaxed));
    assert_eq!(t.len(), 0);
    s.set_down(false);
    wait_for("the entry after Consul came up", Duration::from_secs(5), || t.get(mac(1)).is_some());
    assert!(w.stats().connected.load(Ordering::Relaxed));
}

#[test]
fn consul_dying_keeps_the_table_and_reconnect_resyncs() {
    let b = Backend::consul();
    let Some(s) = b.faults("consul_dying_keeps_the_table_and_reconnect_resyncs") else { return };
    for i in 1..=3 {
        b.put_mac(mac(i), 2);
    }
    let (w, t) = b.watch(Duration::from_secs(30));
    wait_for("3 entries", Duration::from_secs(5), || t.len() == 3);
    s.set_down(true);
    wait_for("the loss noticed", Duration::from_secs(5), || !w.stats().connected.load(Ordering::Relaxed));
    // While it is down, the table stays; meanwhile the store changes.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.len(), 3, "entries dropped while Consul was down");
    s.delete(&b.keys().mac(mac(2)));
    s.put(&b.keys().mac(mac(7)), br#"{"v":1,"vtep":"192.0.2.7"}"#);
    s.set_down(false);
    wait_for("the resync", Duration::from_secs(5), || t.get(mac(7)).is_some() && t.get(mac(2)).is_none());
    assert_eq!(t.len(), 3);
    assert_eq!(w.stats().resyncs.load(Ordering::Relaxed), 2);
}

#[test]
fn consul_http_500s_and_a_hang_past_wait_are_survived() {
    let b = Backend::consul();
    let Some(s) = b.faults("http_500s_and_a_hang_past_wait_are_survived") else { return };
    s.put(&b.keys().mac(mac(1)), br#"{"v":1,"vtep":"192.0.2.2"}"#);
    s.fail_next(3);
    let (w, t) = b.watch(Duration::from_secs(1));
    wait_for("the entry despite 500s", Duration::from_secs(10), || t.get(mac(1)).is_some());
    s.set_hang(true);
    let errors = w.stats().errors.load(Ordering::Relaxed);
    // The client gives up after wait + wait/16 + 5 s.
    wait_for("a timeout on the hung query", Duration::from_secs(15), || {
        w.stats().errors.load(Ordering::Relaxed) > errors
    });
    s.set_hang(false);
    s.put(&b.keys().mac(mac(2)), br#"{"v":1,"vtep":"192.0.2.3"}"#);
    wait_for("changes after the hang", Duration::from_secs(10), || t.get(mac(2)).is_some());
    assert_eq!(t.get(mac(1)), Some(vec![ip(2)]), "entry lost across the faults");
}

#[test]
fn consul_an_index_going_backwards_resets_the_watch() {
    let b = Backend::consul();
    let Some(s) = b.faults("an_index_going_backwards_resets_the_watch") else { return };
    for i in 0..50 {
        b.put_mac(mac(i), 2);
    }
    let (w, t) = b.watch(Duration::from_secs(3));
    wait_for("50 entries", Duration::from_secs(5), || t.len() == 50);
    s.restore_backwards();
    s.put(&b.keys().mac(mac(100)), br#"{"v":1,"vtep":"192.0.2.9"}"#);
    // The blocked query sees nothing newer than its index until its wait runs out; the
    // answer then carries the lower index and the watcher resets.
    wait_for("the change after the restore", Duration::from_secs(10), || t.get(mac(100)).is_some());
    wait_for("the reset", Duration::from_secs(5), || w.stats().index_resets.load(Ordering::Relaxed) >= 1);
    // After the reset, changes arrive at once again, not a wait later.
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    s.put(&b.keys().mac(mac(101)), br#"{"v":1,"vtep":"192.0.2.9"}"#);
    wait_for("the next change", Duration::from_secs(10), || t.get(mac(101)).is_some());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "next change took {:?}: still blocking on the old index",
        start.elapsed()
    );
    assert_eq!(t.len(), 52);
}

#[test]
fn consul_acl_token_is_sent() {
    let b = Backend::consul();
    let Some(s) = b.faults("acl_token_is_sent") else { return };
    s.require_token(Some("s3cret"));
    s.put(&b.keys().mac(mac(1)), br#"{"v":1,"vtep":"192.0.2.2"}"#);
    let mut cfg = b.consul_config();
    let (_w, t) = b.watch(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.len(), 0, "a request without the token was answered");
    cfg.token = Some("s3cret".into());
    let table = Table::default();
    let tt = table.clone();
    let _w2 =
        Watcher::spawn(ConsulStore::new(cfg).unwrap(), WatchConfig::new(b.keys()), move |c: &[Change]| tt.apply(c))
            .unwrap();
    wait_for("the entry with the token", Duration::from_secs(5), || table.len() == 1);
}

fn advertiser(b: &Backend, local: u8, ttl: Duration) -> Advertiser {
    advertiser_with(b, local, ttl, Duration::from_secs(30))
}

fn advertiser_with(b: &Backend, local: u8, ttl: Duration, takeover_window: Duration) -> Advertiser {
    let cfg = AdvertiseConfig {
        keys: b.keys(),
        local: ip(local),
        port: None,
        ttl,
        mac_ageing: Duration::from_secs(300),
        takeover_window,
        name: format!("vxdp-test {}", ip(local)),
    };
    Advertiser::spawn(b.store(), cfg).expect("spawn advertiser")
}

fn holder(b: &Backend, m: Mac) -> Option<(IpAddr, bool)> {
    let h = b.store().get(&b.keys().mac(m)).unwrap()?;
    let v: serde_json::Value = serde_json::from_slice(&h.value).unwrap();
    Some((v["vtep"].as_str().unwrap().parse().unwrap(), h.owner.is_some()))
}

fn advertiser_publishes_under_a_session_and_withdraws_on_exit(b: Backend) {
    let a = advertiser(&b, 11, Duration::from_secs(10));
    a.handle().seen(mac(1));
    a.handle().seen(mac(2));
    wait_for("both MACs published", Duration::from_secs(5), || {
        holder(&b, mac(1)) == Some((ip(11), true)) && holder(&b, mac(2)) == Some((ip(11), true))
    });
    let vtep = b.store().get(&b.keys().vtep(ip(11))).unwrap().expect("vtep registered");
    assert!(vtep.owner.is_some(), "vtep key not held by a lease");
    // A watcher elsewhere sees them.
    let (_w, t) = b.watch(Duration::from_secs(30));
    wait_for("the watcher", Duration::from_secs(5), || t.len() == 3);
    drop(a);
    wait_for("the keys gone after the session was destroyed", Duration::from_secs(5), || t.len() == 0);
}

fn a_dead_nodes_keys_vanish_after_the_session_ttl(b: Backend) {
    let mut c = b.store();
    // A node that registered and died: its lease is never renewed.
    let s: Lease = c.lease_grant("dead node", Duration::from_secs(10)).unwrap();
    assert!(c.put(&b.keys().vtep(ip(13)), br#"{"v":1}"#, Some(&s)).unwrap());
    assert!(c.put(&b.keys().mac(mac(1)), br#"{"v":1,"vtep":"192.0.2.13"}"#, Some(&s)).unwrap());
    drop(c); // the node dies (a ZooKeeper client would otherwise keep its session alive)
    let (_w, t) = b.watch(Duration::from_secs(30));
    wait_for("the dead node's entries", Duration::from_secs(5), || t.len() == 2);
    let start = Instant::now();
    // Consul invalidates a session between TTL and 2 x TTL after the last renewal;
    // etcd revokes a lease at its TTL; ZooKeeper expires a session its timeout after
    // the last contact.
    wait_for("TTL expiry", Duration::from_secs(25), || t.len() == 0);
    assert!(start.elapsed() >= Duration::from_secs(8), "gone before the TTL: {:?}", start.elapsed());
}

fn a_moved_mac_is_taken_over_and_not_claimed_back(b: Backend) {
    let node_b = advertiser(&b, 12, Duration::from_secs(10));
    let node_c = advertiser(&b, 13, Duration::from_secs(10));
    node_b.handle().seen(mac(5));
    wait_for("B owning the MAC", Duration::from_secs(5), || holder(&b, mac(5)) == Some((ip(12), true)));
    // The container moves: C sees it, takes the key over although B's session holds it.
    node_c.handle().seen(mac(5));
    wait_for("C owning the MAC", Duration::from_secs(5), || holder(&b, mac(5)) == Some((ip(13), true)));
    assert!(node_c.stats().takeovers.load(Ordering::Relaxed) >= 1);
    // B's watcher tells it the MAC is elsewhere now; B lets go and stays away.
    node_b.handle().disown(mac(5));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(holder(&b, mac(5)), Some((ip(13), true)));
    drop(node_b);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(holder(&b, mac(5)), Some((ip(13), true)), "B's exit removed C's key");
}

fn a_stale_sighting_does_not_take_a_key_over(b: Backend) {
    let node_c = advertiser(&b, 13, Duration::from_secs(10));
    node_c.handle().seen(mac(6));
    wait_for("C owning the MAC", Duration::from_secs(5), || holder(&b, mac(6)) == Some((ip(13), true)));
    // B's sightings are never fresh enough to take a key from another node (window 0),
    // like a node re-advertising from memory after a partition during which the MAC moved.
    let node_b = advertiser_with(&b, 12, Duration::from_secs(10), Duration::ZERO);
    node_b.handle().seen(mac(6));
    node_b.handle().seen(mac(7));
    wait_for("B publishing the free MAC", Duration::from_secs(5), || holder(&b, mac(7)) == Some((ip(12), true)));
    wait_for("B giving up the held MAC", Duration::from_secs(5), || {
        node_b.stats().withdrawn.load(Ordering::Relaxed) == 1
    });
    assert_eq!(holder(&b, mac(6)), Some((ip(13), true)), "a stale sighting took the key");
    assert_eq!(node_b.stats().takeovers.load(Ordering::Relaxed), 0);
    assert_eq!(node_b.stats().macs_owned.load(Ordering::Relaxed), 1);
}

/// A node's watcher as the daemon wires it: answers to the table, and which of this
/// node's keys each listing holds to the advertiser.
struct NodeSink {
    table: Table,
    advertiser: AdvertiserHandle,
}

impl Sink for NodeSink {
    fn apply(&mut self, changes: &[Change]) {
        self.table.apply(changes);
    }

    fn own(&mut self, macs: BTreeSet<Mac>, listed_at: Instant) {
        self.advertiser.present(macs, listed_at);
    }
}

fn keys_that_vanish_from_the_store_are_written_again(b: Backend) {
    let a = advertiser(&b, 11, Duration::from_secs(10));
    let mut cfg = WatchConfig::new(b.keys());
    cfg.local = Some(ip(11));
    let sink = NodeSink { table: Table::default(), advertiser: a.handle() };
    let _w = Watcher::spawn(b.store(), cfg, sink).expect("spawn watcher");
    a.handle().seen(mac(1));
    let vtep_held = || b.store().get(&b.keys().vtep(ip(11))).unwrap().is_some_and(|h| h.owner.is_some());
    wait_for("the keys published", Duration::from_secs(5), || {
        holder(&b, mac(1)) == Some((ip(11), true)) && vtep_held()
    });
    // An operator deletes them (or a snapshot restore predates them); the node lives on.
    b.delete(&b.keys().mac(mac(1)));
    b.delete(&b.keys().vtep(ip(11)));
    wait_for("both keys written again", Duration::from_secs(5), || {
        holder(&b, mac(1)) == Some((ip(11), true)) && vtep_held()
    });
    assert_eq!(a.stats().rewritten.load(Ordering::Relaxed), 2);
    assert_eq!(a.stats().sessions_created.load(Ordering::Relaxed), 1, "rewritten by a new session, not the same one");
}

/// A takeover deletes the old holder's key, then writes its own. The old holder's
/// watcher may list the key in between, as missing, and its "write vanished keys
/// again" must then not take the key back from the node that saw the MAC last (seen
/// in the three-host e2e test: B took the key back, C gave up, traffic went to B).
fn rewriting_a_vanished_key_never_takes_it_from_another_node(b: Backend) {
    let node_b = advertiser(&b, 12, Duration::from_secs(10));
    let node_c = advertiser(&b, 13, Duration::from_secs(10));
    let m = mac(9);
    node_b.handle().seen(m);
    wait_for("B owning the MAC", Duration::from_secs(5), || holder(&b, m) == Some((ip(12), true)));
    node_c.handle().seen(m); // the container moved: C takes the key over
    wait_for("C owning the MAC", Duration::from_secs(5), || holder(&b, m) == Some((ip(13), true)));
    // B's watcher listed the key during C's takeover, between delete and write (a
    // listing late enough after B's write that the store's answers reflect it).
    std::thread::sleep(b.store().read_lag());
    node_b.handle().present(BTreeSet::new(), Instant::now());
    wait_for("B giving up the MAC", Duration::from_secs(5), || node_b.stats().macs_owned.load(Ordering::Relaxed) == 0);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(holder(&b, m), Some((ip(13), true)), "B took the key back");
    assert_eq!(node_b.stats().takeovers.load(Ordering::Relaxed), 0);
}

// ---- etcd faults, against the real 3-member cluster ----

/// A watcher on only the first member (so a test controls which member it talks to).
fn watch_first_member(b: &Backend) -> (Watcher, Table) {
    let first = b.etcd_config().endpoints[0].clone();
    b.watch_with(EtcdStore::new(EtcdConfig::new(&[&first])).unwrap(), Duration::from_secs(30))
}

#[test]
fn etcd_unreachable_at_start_connects_later() {
    let Some(mut b) = Backend::etcd("etcd_unreachable_at_start_connects_later") else { return };
    b.put_mac(mac(1), 2);
    for i in 0..3 {
        b.cluster().stop(i);
    }
    let (w, t) = b.watch(Duration::from_secs(30));
    wait_for("failed attempts", Duration::from_secs(10), || w.stats().errors.load(Ordering::Relaxed) >= 2);
    assert!(!w.stats().connected.load(Ordering::Relaxed));
    assert_eq!(t.len(), 0);
    for i in 0..3 {
        b.cluster().restart(i);
    }
    b.cluster().wait_healthy(Duration::from_secs(20));
    wait_for("the entry after etcd came up", Duration::from_secs(10), || t.get(mac(1)).is_some());
    assert!(w.stats().connected.load(Ordering::Relaxed));
}

#[test]
fn etcd_dying_keeps_the_table_and_the_watch_resumes() {
    let Some(mut b) = Backend::etcd("etcd_dying_keeps_the_table_and_the_watch_resumes") else { return };
    for i in 1..=3 {
        b.put_mac(mac(i), 2);
    }
    let (w, t) = b.watch(Duration::from_secs(30));
    wait_for("3 entries", Duration::from_secs(5), || t.len() == 3);
    for i in 0..3 {
        b.cluster().kill(i);
    }
    // The stream breaks; reopening it fails on every member.
    wait_for("the loss noticed", Duration::from_secs(10), || !w.stats().connected.load(Ordering::Relaxed));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.len(), 3, "entries dropped while etcd was down");
    for i in 0..3 {
        b.cluster().restart(i);
    }
    b.cluster().wait_healthy(Duration::from_secs(20));
    b.delete(&b.keys().mac(mac(2)));
    b.put_mac(mac(7), 7);
    wait_for("changes after the restart", Duration::from_secs(10), || {
        t.get(mac(7)).is_some() && t.get(mac(2)).is_none()
    });
    assert_eq!(t.len(), 3);
    assert!(w.stats().connected.load(Ordering::Relaxed));
    // Resumed from the next revision: no second full listing was needed.
    assert_eq!(w.stats().resyncs.load(Ordering::Relaxed), 1);
}

#[test]
fn etcd_the_member_in_use_killed_fails_over() {
    let Some(mut b) = Backend::etcd("etcd_the_member_in_use_killed_fails_over") else { return };
    b.put_mac(mac(1), 2);
    // Clients start on the first member.
    let (w, t) = b.watch(Duration::from_secs(30));
    let a = advertiser(&b, 11, Duration::from_secs(10));
    a.handle().seen(mac(2));
    wait_for("the entry and the advertised MAC", Duration::from_secs(5), || {
        t.get(mac(1)).is_some() && t.get(mac(2)) == Some(vec![ip(11)])
    });
    b.cluster().kill(0);
    b.put_mac(mac(3), 3);
    a.handle().seen(mac(4));
    wait_for("changes through the other members", Duration::from_secs(10), || {
        t.get(mac(3)).is_some() && t.get(mac(4)) == Some(vec![ip(11)])
    });
    // The lease is kept alive through another member: the keys outlive the TTL.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(t.get(mac(2)), Some(vec![ip(11)]), "advertised key expired after the failover");
    assert!(a.stats().session_ok.load(Ordering::Relaxed));
    assert_eq!(a.stats().sessions_created.load(Ordering::Relaxed), 1);
    assert_eq!(w.stats().resyncs.load(Ordering::Relaxed), 1);
}

#[test]
fn etcd_leader_killed_changes_keep_flowing() {
    let Some(mut b) = Backend::etcd("etcd_leader_killed_changes_keep_flowing") else { return };
    let (w, t) = b.watch(Duration::from_secs(30));
    let a = advertiser(&b, 11, Duration::from_secs(10));
    a.handle().seen(mac(1));
    wait_for("the advertised MAC", Duration::from_secs(5), || t.get(mac(1)).is_some());
    let leader = b.cluster().leader().expect("a leader");
    b.cluster().kill(leader);
    let killed = Instant::now();
    // Writes fail until a new leader is elected, then go through; nothing is lost.
    b.cluster().wait_healthy(Duration::from_secs(20));
    eprintln!("new leader {:?} after {:?}", b.cluster().leader(), killed.elapsed());
    for i in 10..20 {
        b.put_mac(mac(i), 3);
    }
    a.handle().seen(mac(2));
    wait_for("every change after the election", Duration::from_secs(10), || {
        (10..20).all(|i| t.get(mac(i)).is_some()) && t.get(mac(2)).is_some()
    });
    assert_eq!(t.get(mac(1)), Some(vec![ip(11)]));
    assert!(w.stats().connected.load(Ordering::Relaxed));
}

#[test]
fn etcd_compaction_past_the_watchers_revision_resyncs() {
    let Some(mut b) = Backend::etcd("etcd_compaction_past_the_watchers_revision_resyncs") else { return };
    for i in 1..=3 {
        b.put_mac(mac(i), 2);
    }
    let (w, t) = watch_first_member(&b);
    wait_for("3 entries", Duration::from_secs(5), || t.len() == 3);
    b.cluster().kill(0);
    wait_for("the loss noticed", Duration::from_secs(10), || !w.stats().connected.load(Ordering::Relaxed));
    // While the watcher's member is down, the others change and compact the history
    // past the revision the watcher resumes from.
    b.delete(&b.keys().mac(mac(1)));
    b.put_mac(mac(7), 7);
    let rev = EtcdStore::new(b.etcd_config()).unwrap().compact().expect("compact");
    eprintln!("compacted up to revision {rev}");
    b.cluster().restart(0);
    wait_for("the resync after the compaction", Duration::from_secs(20), || {
        t.get(mac(7)).is_some() && t.get(mac(1)).is_none()
    });
    assert_eq!(t.len(), 3);
    assert!(w.stats().index_resets.load(Ordering::Relaxed) >= 1, "no compaction seen");
    assert_eq!(w.stats().resyncs.load(Ordering::Relaxed), 2);
}

// ---- etcd secured: TLS with client certificates, users and roles ----

/// The `--cluster-store-opt`s for a TLS cluster's CA, with or without the client
/// certificate.
fn tls_opts(b: &Backend, client_cert: bool) -> Vec<String> {
    let Server::Etcd(c) = &b.server else { panic!("not etcd") };
    let pki = c.pki().expect("a TLS cluster");
    let mut o = vec!["tls=on".to_string(), format!("ca={}", pki.ca.display())];
    if client_cert {
        o.push(format!("cert={}", pki.client_cert.display()));
        o.push(format!("key={}", pki.client_key.display()));
    }
    o
}

/// The error of a first request with these options (it must fail).
fn first_request_error(b: &Backend, opts: &[String]) -> String {
    let mut s = EtcdStore::new(b.etcd_config_with(opts)).expect("client");
    match s.put(&b.keys().vtep(ip(9)), br#"{"v":1}"#, None) {
        Ok(done) => panic!("a request with {opts:?} was answered ({done})"),
        Err(e) => e.to_string(),
    }
}

fn etcd_tls() -> Option<Backend> {
    let mut b = Backend::etcd_with("etcd_tls", EtcdOptions { tls: true, ..Default::default() })?;
    b.opts = tls_opts(&b, true);
    Some(b)
}

#[test]
fn etcd_tls_watcher_follows_adds_changes_and_deletes() {
    if let Some(b) = etcd_tls() {
        watcher_follows_adds_changes_and_deletes(b)
    }
}

#[test]
fn etcd_tls_advertiser_publishes_under_a_lease() {
    if let Some(b) = etcd_tls() {
        advertiser_publishes_under_a_session_and_withdraws_on_exit(b)
    }
}

#[test]
fn etcd_tls_without_a_client_certificate_or_with_another_ca_is_refused() {
    let Some(b) = etcd_tls() else { return };
    // The members require a client certificate (`--client-cert-auth`).
    let e = first_request_error(&b, &tls_opts(&b, false));
    eprintln!("without a client certificate: {e}");
    // A CA that did not sign the members' certificate: the client refuses them.
    let Server::Etcd(c) = &b.server else { unreachable!() };
    let mut other = tls_opts(&b, true);
    other[1] = format!("ca={}", c.pki().unwrap().other_ca.display());
    let e = first_request_error(&b, &other);
    assert!(e.contains("certificate") || e.contains("UnknownIssuer"), "not a certificate error: {e}");
    // Plain http to a TLS port is not answered either.
    let plain = c.endpoints()[0].replacen("https://", "http://", 1);
    let mut s = EtcdStore::new(EtcdConfig::new(&[plain.as_str()])).unwrap();
    assert!(s.put(&b.keys().vtep(ip(9)), br#"{"v":1}"#, None).is_err(), "plain http answered on a TLS port");
    // Nothing of the refused clients' got in.
    assert_eq!(b.store().get(&b.keys().vtep(ip(9))).unwrap(), None);
}

/// A cluster with auth on: user `vxdp` may read and write only under the test's
/// prefix; tokens live 2 s, so every test outlives several.
fn etcd_auth() -> Option<Backend> {
    let options = EtcdOptions { auth_token_ttl: Some(2), ..Default::default() };
    let mut b = Backend::etcd_with("etcd_auth", options)?;
    let prefix = b.prefix.clone();
    b.cluster().enable_auth("root-secret", "vxdp", "vxdp-secret", &prefix);
    b.opts = vec!["username=vxdp".into(), "password=vxdp-secret".into()];
    Some(b)
}

#[test]
fn etcd_auth_watcher_follows_adds_changes_and_deletes() {
    if let Some(b) = etcd_auth() {
        watcher_follows_adds_changes_and_deletes(b)
    }
}

#[test]
fn etcd_auth_advertiser_keeps_its_lease_across_token_expiry() {
    let Some(b) = etcd_auth() else { return };
    let a = advertiser(&b, 11, Duration::from_secs(4));
    a.handle().seen(mac(1));
    wait_for("the MAC published", Duration::from_secs(5), || holder(&b, mac(1)) == Some((ip(11), true)));
    let (w, t) = b.watch(Duration::from_secs(30));
    wait_for("the watcher", Duration::from_secs(5), || t.len() == 2);
    // Several token lifetimes (2 s) and lease lifetimes (4 s): the keep-alives and the
    // watch stream go on with renewed tokens, and nothing is lost.
    std::thread::sleep(Duration::from_secs(9));
    assert_eq!(holder(&b, mac(1)), Some((ip(11), true)), "the lease lapsed while tokens expired");
    b.put_mac(mac(2), 3);
    wait_for("a change after the tokens expired", Duration::from_secs(5), || t.get(mac(2)).is_some());
    assert_eq!(t.len(), 3);
    assert!(w.stats().connected.load(Ordering::Relaxed));
}

#[test]
fn etcd_auth_bad_password_no_credentials_and_other_prefixes_are_refused_by_name() {
    let Some(b) = etcd_auth() else { return };
    let bad = vec!["username=vxdp".to_string(), "password=wrong".to_string()];
    let e = first_request_error(&b, &bad);
    assert!(e.contains("authentication failed"), "{e}");
    let mut none = EtcdStore::new(EtcdConfig::new(&[b.etcd_config().endpoints[0].as_str()])).unwrap();
    let e = none.put(&b.keys().vtep(ip(9)), br#"{"v":1}"#, None).expect_err("answered without a user").to_string();
    assert!(e.contains("username") && e.contains("password"), "does not say what is missing: {e}");
    // The role allows only the prefix: a key elsewhere is refused, not silently lost.
    let mut s = EtcdStore::new(b.etcd_config()).unwrap();
    let e = s.put("elsewhere/key", b"x", None).expect_err("wrote outside the prefix").to_string();
    assert!(e.contains("permission denied"), "{e}");
    assert!(s.put(&b.keys().vtep(ip(9)), br#"{"v":1}"#, None).unwrap());
    // Idle past the token's 2 s: the next request is answered "invalid auth token",
    // and the client authenticates again and retries it.
    std::thread::sleep(Duration::from_secs(3));
    assert!(s.delete(&b.keys().vtep(ip(9)), None).expect("a request with an expired token"));
}

// ---- ZooKeeper faults, against the real 3-server ensemble ----

#[test]
fn zk_leader_killed_changes_keep_flowing() {
    let Some(mut b) = Backend::zk("zk_leader_killed_changes_keep_flowing") else { return };
    let (w, t) = b.watch(Duration::from_secs(30));
    let a = advertiser(&b, 11, Duration::from_secs(10));
    a.handle().seen(mac(1));
    wait_for("the advertised MAC", Duration::from_secs(5), || t.get(mac(1)).is_some());
    let leader = b.ensemble().leader().expect("a leader");
    b.ensemble().kill(leader);
    let killed = Instant::now();
    b.ensemble().wait_healthy(Duration::from_secs(20));
    eprintln!("new leader {:?} after {:?}", b.ensemble().leader(), killed.elapsed());
    for i in 10..20 {
        b.put_mac(mac(i), 3);
    }
    a.handle().seen(mac(2));
    wait_for("every change after the election", Duration::from_secs(10), || {
        (10..20).all(|i| t.get(mac(i)).is_some()) && t.get(mac(2)).is_some()
    });
    // The sessions moved to the other servers: the ephemeral keys outlive the TTL.
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(t.get(mac(1)), Some(vec![ip(11)]), "advertised key lost after the failover");
    assert_eq!(a.stats().sessions_created.load(Ordering::Relaxed), 1);
    assert!(w.stats().connected.load(Ordering::Relaxed));
}

#[test]
fn zk_the_server_in_use_killed_fails_over_keeping_the_session() {
    let Some(mut b) = Backend::zk("zk_the_server_in_use_killed_fails_over_keeping_the_session") else { return };
    let mut s = ZkStore::new(b.zk_config()).unwrap();
    let lease = s.lease_grant("failover", Duration::from_secs(10)).unwrap();
    assert!(s.put(&b.keys().mac(mac(1)), br#"{"v":1,"vtep":"192.0.2.11"}"#, Some(&lease)).unwrap());
    let first = s.server().expect("the server the session is on");
    let i = b.zk_config().endpoints.iter().position(|e| *e == first).expect("a listed server");
    b.ensemble().kill(i);
    // The next requests wait for (or time out during) the move to another server.
    wait_for("a request after the failover", Duration::from_secs(20), || {
        s.put(&b.keys().mac(mac(2)), br#"{"v":1,"vtep":"192.0.2.11"}"#, Some(&lease)).unwrap_or(false)
    });
    let now = s.server().expect("a server after the failover");
    assert_ne!(now, first, "still on the killed server");
    assert!(s.lease_renew(&lease).unwrap(), "the session did not survive the failover");
    assert_eq!(holder(&b, mac(1)), Some((ip(11), true)), "the ephemeral key was lost");
}

#[test]
fn zk_all_stopped_keeps_the_table_and_restart_resumes() {
    let Some(mut b) = Backend::zk("zk_all_stopped_keeps_the_table_and_restart_resumes") else { return };
    for i in 1..=3 {
        b.put_mac(mac(i), 2);
    }
    let (w, t) = b.watch(Duration::from_secs(30));
    let a = advertiser(&b, 11, Duration::from_secs(10));
    a.handle().seen(mac(5));
    // Three MACs, the advertised one and the advertiser's VTEP (the all-zeros MAC).
    wait_for("5 entries", Duration::from_secs(5), || t.len() == 5);
    for i in 0..3 {
        b.ensemble().stop(i);
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(t.len(), 5, "entries dropped while ZooKeeper was down");
    for i in 0..3 {
        b.ensemble().restart(i);
    }
    b.ensemble().wait_healthy(Duration::from_secs(30));
    b.delete(&b.keys().mac(mac(2)));
    b.put_mac(mac(7), 7);
    a.handle().seen(mac(6));
    wait_for("changes after the restart", Duration::from_secs(20), || {
        t.get(mac(7)).is_some() && t.get(mac(2)).is_none() && t.get(mac(6)) == Some(vec![ip(11)])
    });
    assert_eq!(t.get(mac(5)), Some(vec![ip(11)]), "advertised key lost across the restart");
    assert!(w.stats().connected.load(Ordering::Relaxed));
}

#[test]
fn zk_unreachable_at_start_connects_later() {
    let Some(mut b) = Backend::zk("zk_unreachable_at_start_connects_later") else { return };
    b.put_mac(mac(1), 2);
    for i in 0..3 {
        b.ensemble().stop(i);
    }
    let (w, t) = b.watch(Duration::from_secs(30));
    wait_for("failed attempts", Duration::from_secs(20), || w.stats().errors.load(Ordering::Relaxed) >= 2);
    assert!(!w.stats().connected.load(Ordering::Relaxed));
    assert_eq!(t.len(), 0);
    for i in 0..3 {
        b.ensemble().restart(i);
    }
    b.ensemble().wait_healthy(Duration::from_secs(30));
    wait_for("the entry after ZooKeeper came up", Duration::from_secs(20), || t.get(mac(1)).is_some());
    assert!(w.stats().connected.load(Ordering::Relaxed));
}

#[test]
fn zk_session_expiry_resyncs_and_recreates_the_ephemeral_entries() {
    let Some(b) = Backend::zk("zk_session_expiry_resyncs_and_recreates_the_ephemeral_entries") else { return };
    b.put_mac(mac(1), 2);
    let watch_store = ZkStore::new(b.zk_config()).unwrap();
    let watch_session = watch_store.session_cell();
    let (w, t) = b.watch_with(watch_store, Duration::from_secs(30));
    let adv_store = ZkStore::new(b.zk_config()).unwrap();
    let adv_session = adv_store.session_cell();
    let cfg = AdvertiseConfig {
        keys: b.keys(),
        local: ip(11),
        port: None,
        ttl: Duration::from_secs(10),
        mac_ageing: Duration::from_secs(300),
        takeover_window: Duration::from_secs(30),
        name: "vxdp-test expiry".into(),
    };
    let a = Advertiser::spawn(adv_store, cfg).unwrap();
    a.handle().seen(mac(3));
    wait_for("the entries", Duration::from_secs(5), || t.len() == 3);

    // The watcher's session ends under it: a new session and a full resync, which
    // also picks up what changed meanwhile.
    let s = watch_session.lock().unwrap().clone().expect("watcher session");
    ZkStore::end_session(&b.zk_config(), s).expect("end the watcher's session");
    b.put_mac(mac(4), 4);
    wait_for("the resync", Duration::from_secs(10), || w.stats().resyncs.load(Ordering::Relaxed) >= 2);
    wait_for("the change made meanwhile", Duration::from_secs(10), || t.get(mac(4)).is_some());
    assert!(w.stats().index_resets.load(Ordering::Relaxed) >= 1);

    // The advertiser's session ends: the ensemble deletes its ephemeral entries, the
    // advertiser opens a new session and creates them again.
    let s = adv_session.lock().unwrap().clone().expect("advertiser session");
    ZkStore::end_session(&b.zk_config(), s).expect("end the advertiser's session");
    wait_for("a new advertising session", Duration::from_secs(15), || {
        a.stats().sessions_created.load(Ordering::Relaxed) == 2
    });
    wait_for("the entries back", Duration::from_secs(10), || {
        t.get(mac(3)) == Some(vec![ip(11)]) && holder(&b, mac(3)) == Some((ip(11), true))
    });
    assert_eq!(t.get(Mac::ZERO), Some(vec![ip(11)]));
}
