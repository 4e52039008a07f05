//! The Consul watcher and advertiser against a Consul HTTP API.
//!
//! By default every test runs against the in-process test server
//! (`vxdp_testsupport::consul`). With `CONSUL_HTTP_ADDR` set (and
//! `CONSUL_HTTP_TOKEN` if ACLs are on), the same tests run against that real Consul,
//! each under its own key prefix, removed afterwards; the fault-injection tests, which
//! need to make the server misbehave, then skip with a message.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vxdp_common::Vni;
use vxdp_control::consul::advertise::AdvertiseConfig;
use vxdp_control::consul::{
    Advertiser, AdvertiserHandle, Change, Client, ConsulConfig, Keys, Sink, WatchConfig, Watcher,
};
use vxdp_control::entry::Remote;
use vxdp_control::Mac;
use vxdp_testsupport::consul::TestConsul;

static NEXT: AtomicU64 = AtomicU64::new(0);
const VNI: u32 = 42;

/// The Consul under test: ours, or a real one from `CONSUL_HTTP_ADDR`.
struct Backend {
    server: Option<TestConsul>,
    url: String,
    token: Option<String>,
    prefix: String,
}

impl Backend {
    fn new() -> Backend {
        let prefix = format!("vxdp-test-{}-{}/", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        match std::env::var("CONSUL_HTTP_ADDR") {
            Ok(url) if !url.is_empty() => {
                Backend { server: None, url, token: std::env::var("CONSUL_HTTP_TOKEN").ok(), prefix }
            }
            _ => {
                let server = TestConsul::start().expect("start the test Consul");
                Backend { url: server.url(), server: Some(server), token: None, prefix }
            }
        }
    }

    /// The test server, for fault injection; `None` (and a message) on a real Consul.
    fn faults(&self, test: &str) -> Option<&TestConsul> {
        if self.server.is_none() {
            eprintln!("{test}: skipped against a real Consul (needs fault injection)");
        }
        self.server.as_ref()
    }

    fn config(&self) -> ConsulConfig {
        let mut c = ConsulConfig::new(&self.url);
        c.token = self.token.clone();
        c
    }

    fn client(&self) -> Client {
        Client::new(self.config()).expect("client")
    }

    fn keys(&self) -> Keys {
        Keys::new(&self.prefix, Vni::new(VNI).unwrap())
    }

    fn put_mac(&self, mac: Mac, vtep: u8) {
        let v = format!(r#"{{"v":1,"vtep":"{}"}}"#, ip(vtep));
        assert!(self.client().kv_put(&self.keys().mac(mac), v.as_bytes(), None, None).expect("put"));
    }

    fn put_vtep(&self, vtep: u8) {
        assert!(self.client().kv_put(&self.keys().vtep(ip(vtep)), br#"{"v":1}"#, None, None).expect("put"));
    }

    fn delete(&self, key: &str) {
        assert!(self.client().kv_delete(key, None).expect("delete"));
    }

    fn watch(&self, wait: Duration) -> (Watcher, Table) {
        let table = Table::default();
        let mut cfg = WatchConfig::new(self.keys());
        cfg.wait = wait;
        cfg.max_backoff = Duration::from_millis(500);
        let t = table.clone();
        let w = Watcher::spawn(self.client(), cfg, move |c: &[Change]| t.apply(c)).expect("spawn watcher");
        (w, table)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if self.server.is_none() {
            // Best effort: leave a real Consul as we found it.
            let _ = delete_prefix(&self.config(), &self.prefix);
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

#[test]
fn watcher_follows_adds_changes_and_deletes() {
    let b = Backend::new();
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

#[test]
fn entries_of_this_node_are_not_installed() {
    let b = Backend::new();
    b.put_vtep(1);
    b.put_vtep(2);
    b.put_mac(mac(1), 1);
    b.put_mac(mac(2), 2);
    let table = Table::default();
    let mut cfg = WatchConfig::new(b.keys());
    cfg.local = Some(ip(1));
    let t = table.clone();
    let w = Watcher::spawn(b.client(), cfg, move |c: &[Change]| t.apply(c)).unwrap();
    wait_for("the listing", Duration::from_secs(5), || w.stats().answers.load(Ordering::Relaxed) > 0);
    assert_eq!(table.get(Mac::ZERO), Some(vec![ip(2)]), "own VTEP in the flood list");
    assert_eq!(table.get(mac(1)), None, "own MAC installed as remote");
    assert_eq!(table.get(mac(2)), Some(vec![ip(2)]));
}

#[test]
fn malformed_values_are_skipped_and_counted() {
    let b = Backend::new();
    let c = b.client();
    b.put_mac(mac(1), 2);
    let k = b.keys();
    assert!(c.kv_put(&k.mac(mac(2)), b"{not json", None, None).unwrap());
    assert!(c.kv_put(&format!("{}mac/zz:zz", k.vni_prefix()), br#"{"v":1,"vtep":"192.0.2.9"}"#, None, None).unwrap());
    assert!(c.kv_put(&k.mac(mac(3)), br#"{"v":9,"vtep":"192.0.2.9"}"#, None, None).unwrap());
    let (w, t) = b.watch(Duration::from_secs(30));
    wait_for("the listing", Duration::from_secs(5), || t.len() == 1);
    assert_eq!(w.stats().skipped.load(Ordering::Relaxed), 3);
    assert_eq!(t.get(mac(1)), Some(vec![ip(2)]));
    // Fixing a bad key makes it apply.
    b.put_mac(mac(2), 5);
    wait_for("the fixed key", Duration::from_secs(5), || t.get(mac(2)) == Some(vec![ip(5)]));
    assert_eq!(w.stats().skipped.load(Ordering::Relaxed), 2);
}

#[test]
fn invalid_store_values_are_skipped_counted_and_the_answer_capped() {
    let b = Backend::new();
    let c = b.client();
    let k = b.keys();
    let put = |key: String, v: &str| assert!(c.kv_put(&key, v.as_bytes(), None, None).unwrap());
    put(k.mac(mac(1)), r#"{"v":1,"vtep":"224.0.0.9"}"#);
    put(k.mac(mac(2)), r#"{"v":1,"vtep":"127.0.0.1"}"#);
    put(k.mac(mac(3)), r#"{"v":1,"vtep":"2001:db8::3"}"#);
    put(k.mac(mac(4)), r#"{"v":1,"vtep":"192.0.2.4","port":0}"#);
    put(k.mac(mac(5)), r#"{"v":1,"vtep":"198.51.100.77"}"#); // one of "our" addresses
    put(format!("{}vtep/255.255.255.255", k.vni_prefix()), r#"{"v":1}"#);
    for i in 10..15 {
        b.put_mac(mac(i), 20 + i as u8);
    }
    let table = Table::default();
    let mut cfg = WatchConfig::new(b.keys());
    cfg.wait = Duration::from_secs(30);
    cfg.rules.own = ["198.51.100.77".parse().unwrap()].into();
    cfg.rules.max_entries = 3;
    let t = table.clone();
    let w = Watcher::spawn(b.client(), cfg, move |ch: &[Change]| t.apply(ch)).expect("spawn watcher");
    wait_for("the listing", Duration::from_secs(5), || table.len() == 3);
    assert_eq!(w.stats().skipped.load(Ordering::Relaxed), 6);
    assert_eq!(w.stats().capped.load(Ordering::Relaxed), 2);
    for i in 1..6 {
        assert_eq!(table.get(mac(i)), None, "invalid entry {i} installed");
    }
    // Within the cap, what was accepted stays while the rest keep arriving.
    b.put_mac(mac(16), 36);
    wait_for("the next answer", Duration::from_secs(5), || w.stats().capped.load(Ordering::Relaxed) == 3);
    assert_eq!(table.len(), 3);
}

#[test]
fn a_burst_of_10000_changes_arrives_whole_in_few_batches() {
    let b = Backend::new();
    let (w, t) = b.watch(Duration::from_secs(30));
    wait_for("connected", Duration::from_secs(5), || w.stats().connected.load(Ordering::Relaxed));
    let c = b.client();
    let k = b.keys();
    for i in 0..10_000 {
        let v = format!(r#"{{"v":1,"vtep":"10.{}.{}.{}"}}"#, i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff);
        assert!(c.kv_put(&k.mac(mac(i)), v.as_bytes(), None, None).unwrap());
    }
    wait_for("10,000 entries", Duration::from_secs(30), || t.len() == 10_000);
    let applies = t.applies.load(Ordering::Relaxed);
    let answers = w.stats().answers.load(Ordering::Relaxed);
    eprintln!("10,000 changes arrived in {applies} batches ({answers} answers)");
    assert!(applies <= answers);
    assert_eq!(t.get(mac(9_999)), Some(vec!["10.0.39.15".parse().unwrap()]));
}

#[test]
fn unreachable_at_start_connects_later() {
    let b = Backend::new();
    let Some(s) = b.faults("unreachable_at_start_connects_later") else { return };
    s.set_down(true);
    b.server.as_ref().unwrap().put(&b.keys().mac(mac(1)), br#"{"v":1,"vtep":"192.0.2.2"}"#);
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
    let b = Backend::new();
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
fn http_500s_and_a_hang_past_wait_are_survived() {
    let b = Backend::new();
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
fn an_index_going_backwards_resets_the_watch() {
    let b = Backend::new();
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
fn acl_token_is_sent() {
    let b = Backend::new();
    let Some(s) = b.faults("acl_token_is_sent") else { return };
    s.require_token(Some("s3cret"));
    s.put(&b.keys().mac(mac(1)), br#"{"v":1,"vtep":"192.0.2.2"}"#);
    let mut cfg = b.config();
    let (_w, t) = b.watch(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.len(), 0, "a request without the token was answered");
    cfg.token = Some("s3cret".into());
    let table = Table::default();
    let tt = table.clone();
    let _w2 =
        Watcher::spawn(Client::new(cfg).unwrap(), WatchConfig::new(b.keys()), move |c: &[Change]| tt.apply(c)).unwrap();
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
    Advertiser::spawn(b.client(), cfg).expect("spawn advertiser")
}

fn holder(b: &Backend, m: Mac) -> Option<(IpAddr, bool)> {
    let p = b.client().kv_get(&b.keys().mac(m)).unwrap()?;
    let v: serde_json::Value = serde_json::from_slice(&p.value).unwrap();
    Some((v["vtep"].as_str().unwrap().parse().unwrap(), p.session.is_some()))
}

#[test]
fn advertiser_publishes_under_a_session_and_withdraws_on_exit() {
    let b = Backend::new();
    let a = advertiser(&b, 11, Duration::from_secs(10));
    a.handle().seen(mac(1));
    a.handle().seen(mac(2));
    wait_for("both MACs published", Duration::from_secs(5), || {
        holder(&b, mac(1)) == Some((ip(11), true)) && holder(&b, mac(2)) == Some((ip(11), true))
    });
    let vtep = b.client().kv_get(&b.keys().vtep(ip(11))).unwrap().expect("vtep registered");
    assert!(vtep.session.is_some(), "vtep key not held by a session");
    // A watcher elsewhere sees them.
    let (_w, t) = b.watch(Duration::from_secs(30));
    wait_for("the watcher", Duration::from_secs(5), || t.len() == 3);
    drop(a);
    wait_for("the keys gone after the session was destroyed", Duration::from_secs(5), || t.len() == 0);
}

#[test]
fn a_dead_nodes_keys_vanish_after_the_session_ttl() {
    let b = Backend::new();
    let c = b.client();
    // A node that registered and died: its session is never renewed.
    let s = c.session_create("dead node", Duration::from_secs(10)).unwrap();
    assert!(c.kv_put(&b.keys().vtep(ip(13)), br#"{"v":1}"#, Some(&s), None).unwrap());
    assert!(c.kv_put(&b.keys().mac(mac(1)), br#"{"v":1,"vtep":"192.0.2.13"}"#, Some(&s), None).unwrap());
    let (_w, t) = b.watch(Duration::from_secs(30));
    wait_for("the dead node's entries", Duration::from_secs(5), || t.len() == 2);
    let start = Instant::now();
    // Consul invalidates a session between TTL and 2 x TTL after the last renewal.
    wait_for("TTL expiry", Duration::from_secs(25), || t.len() == 0);
    assert!(start.elapsed() >= Duration::from_secs(8), "gone before the TTL: {:?}", start.elapsed());
}

#[test]
fn a_moved_mac_is_taken_over_and_not_claimed_back() {
    let b = Backend::new();
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

#[test]
fn a_stale_sighting_does_not_take_a_key_over() {
    let b = Backend::new();
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

#[test]
fn keys_that_vanish_from_consul_are_written_again() {
    let b = Backend::new();
    let a = advertiser(&b, 11, Duration::from_secs(10));
    let mut cfg = WatchConfig::new(b.keys());
    cfg.local = Some(ip(11));
    let sink = NodeSink { table: Table::default(), advertiser: a.handle() };
    let _w = Watcher::spawn(b.client(), cfg, sink).expect("spawn watcher");
    a.handle().seen(mac(1));
    let vtep_held = || b.client().kv_get(&b.keys().vtep(ip(11))).unwrap().is_some_and(|p| p.session.is_some());
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
#[test]
fn rewriting_a_vanished_key_never_takes_it_from_another_node() {
    let b = Backend::new();
    let node_b = advertiser(&b, 12, Duration::from_secs(10));
    let node_c = advertiser(&b, 13, Duration::from_secs(10));
    let m = mac(9);
    node_b.handle().seen(m);
    wait_for("B owning the MAC", Duration::from_secs(5), || holder(&b, m) == Some((ip(12), true)));
    node_c.handle().seen(m); // the container moved: C takes the key over
    wait_for("C owning the MAC", Duration::from_secs(5), || holder(&b, m) == Some((ip(13), true)));
    // B's watcher listed the key during C's takeover, between delete and write.
    node_b.handle().present(BTreeSet::new(), Instant::now());
    wait_for("B giving up the MAC", Duration::from_secs(5), || node_b.stats().macs_owned.load(Ordering::Relaxed) == 0);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(holder(&b, m), Some((ip(13), true)), "B took the key back");
    assert_eq!(node_b.stats().takeovers.load(Ordering::Relaxed), 0);
}
