//! Three hosts running vxdp with `--cluster-store zk://... --advertise`, fed only by a
//! real 3-server ZooKeeper 3.8 ensemble (Debian's `zookeeper`, run by the test inside
//! the underlay namespace on 192.0.2.254:2181{1,2,3}): the shared cluster-store
//! scenario of `vxdp_tests::store_e2e` (entries propagate and traffic follows, a deleted
//! registration comes back, a MAC moves from host B to C, a SIGKILLed host's entries
//! vanish after the session timeout), and the ZooKeeper leader SIGKILLed during
//! traffic: no ping is lost (the data path never waits for the store), the ensemble
//! elects a new leader, and a change written after the election reaches every host; a
//! malformed value is skipped and its key logged once while later changes apply; host 3
//! partitioned from the store for 3 s keeps its entries everywhere, for longer than the
//! session timeout loses them (the ensemble expires its session and deletes its
//! ephemeral znodes), and gets them back within a TTL of the heal under a new session.

use std::sync::Mutex;
use std::time::Duration;

use vxdp_control::store::zk::{ZkConfig, ZkStore};
use vxdp_control::store::Store;
use vxdp_tests::multi::{Cluster, UNDERLAY_SERVICE_IP};
use vxdp_tests::store_e2e::{has_line, ping_count, three_hosts, TestStore, PREFIX};
use vxdp_tests::traffic::ping;
use vxdp_tests::{in_netns, in_netns_at, require_root, serial, wait_until};
use vxdp_testsupport::zookeeper::{available, ZkEnsemble};

/// The ensemble, talked to from a thread inside the underlay namespace.
struct Zk {
    cluster: Mutex<ZkEnsemble>,
    /// The underlay namespace's path.
    ns: String,
}

impl Zk {
    fn with<T: Send>(&self, f: impl FnOnce(&mut ZkStore) -> T + Send) -> T {
        let eps = self.cluster.lock().unwrap().endpoints();
        in_netns_at(&self.ns, move || {
            let eps: Vec<&str> = eps.iter().map(String::as_str).collect();
            f(&mut ZkStore::new(ZkConfig::new(&eps)).expect("zk client"))
        })
    }

    fn on_cluster<T: Send>(&self, f: impl FnOnce(&mut ZkEnsemble) -> T + Send) -> T {
        in_netns_at(&self.ns, || f(&mut self.cluster.lock().unwrap()))
    }
}

impl TestStore for Zk {
    fn args(&self) -> Vec<String> {
        vec!["--cluster-store".into(), self.cluster.lock().unwrap().url()]
    }
    fn keys(&self, prefix: &str) -> Vec<String> {
        // The store lists a VNI's keys; narrower prefixes are filtered here.
        let all = self.with(|s| s.list(PREFIX).expect("list"));
        all.into_iter().map(|(k, _)| k).filter(|k| k.starts_with(prefix)).collect()
    }
    fn put(&self, key: &str, value: &[u8]) {
        assert!(self.with(|s| s.put(key, value, None)).expect("put"));
    }
    fn delete(&self, key: &str) {
        assert!(self.with(|s| s.delete(key, None)).expect("delete"));
    }
    fn get(&self, key: &str) -> Option<(Vec<u8>, bool)> {
        self.with(|s| s.get(key)).expect("get").map(|h| (h.value, h.owner.is_some()))
    }
}

/// Brings host 3's underlay port back (GRO toggled once it is up, so the express
/// path's redirects into it are delivered; see `multi.rs`).
fn heal(underlay: &vxdp_tests::Netns) {
    underlay.run("ip link set p3 up");
    underlay.run("ethtool -K p3 gro off");
    underlay.run("ethtool -K p3 gro on");
}

#[test]
fn zk_e2e() {
    if !require_root("zk_e2e") || !available("zk_e2e") {
        return;
    }
    let _serial = serial();
    let mut cluster = Cluster::new(3);
    let servers = in_netns(&cluster.underlay, || ZkEnsemble::start_on(UNDERLAY_SERVICE_IP, 3));
    let zk = Zk { cluster: Mutex::new(servers), ns: cluster.underlay.path() };
    three_hosts(&mut cluster, &zk, |cluster, c| {
        // The leader dies during traffic between containers on hosts 1 and 3.
        let leader = zk.on_cluster(|m| m.leader()).expect("a ZooKeeper leader");
        let (a, ip) = (&c.a.ns, c.mover.ip.clone());
        std::thread::scope(|s| {
            let pings = s.spawn(|| ping_count(a, &ip, 100, "0.05"));
            std::thread::sleep(Duration::from_secs(1));
            zk.on_cluster(|m| m.kill(leader));
            let (sent, got) = pings.join().unwrap();
            eprintln!("ZooKeeper leader (server {}) SIGKILLed during traffic: {got}/{sent} pings answered", leader + 1);
            assert_eq!((sent, got), (100, 100), "pings lost while the ZooKeeper leader died");
        });
        zk.on_cluster(|m| m.wait_healthy(Duration::from_secs(20)));
        zk.put(&format!("{PREFIX}mac/02:aa:00:00:00:02"), br#"{"v":1,"vtep":"192.0.2.2"}"#);
        for node in [&cluster.nodes[0], &cluster.nodes[2]] {
            assert!(
                wait_until(Duration::from_secs(10), || has_line(&node.fdb_show(), "02:aa:00:00:00:02", "192.0.2.2")),
                "a change after the leader's death missing on {}:\n{}",
                node.underlay_ip,
                node.fdb_show()
            );
        }
        // A malformed value is skipped and its key logged once, however many answers
        // follow while it stays bad; the rest still applies.
        let bad = format!("{PREFIX}mac/02:aa:00:00:00:03");
        zk.put(&bad, b"{not json");
        for i in 4..7 {
            zk.put(&format!("{PREFIX}mac/02:aa:00:00:00:0{i}"), br#"{"v":1,"vtep":"192.0.2.2"}"#);
        }
        let host1 = &cluster.nodes[0];
        assert!(
            wait_until(Duration::from_secs(10), || has_line(&host1.fdb_show(), "02:aa:00:00:00:06", "192.0.2.2")),
            "changes after a malformed value missing on host 1:\n{}",
            host1.fdb_show()
        );
        assert!(!host1.fdb_show().contains("02:aa:00:00:00:03"), "the malformed entry was installed");

        // Host 3 cut off from the store (and the segment) for less than the lease TTL:
        // nothing changes. For longer: the ensemble expires its session and its entries leave the
        // other hosts; when it heals, host 3 opens a new session and writes them again
        // within a TTL, and traffic to it resumes.
        let underlay = &cluster.underlay;
        let has3 = |t: &str| has_line(t, "00:00:00:00:00:00", "192.0.2.3") && has_line(t, &c.mover.mac, "192.0.2.3");
        underlay.run("ip link set p3 down");
        let cut = std::time::Instant::now();
        while cut.elapsed() < Duration::from_secs(3) {
            assert!(has3(&host1.fdb_show()), "host 3's entries left during a 3 s partition:\n{}", host1.fdb_show());
            std::thread::sleep(Duration::from_millis(200));
        }
        heal(underlay);
        ping(&c.a.ns, &c.mover.ip);
        underlay.run("ip link set p3 down");
        let cut = std::time::Instant::now();
        assert!(
            wait_until(Duration::from_secs(30), || !host1.fdb_show().contains("dst 192.0.2.3 ")),
            "host 3's entries still on host 1 30 s into a partition:\n{}",
            host1.fdb_show()
        );
        eprintln!("partitioned host 3's entries left host 1 after {:.1} s", cut.elapsed().as_secs_f64());
        heal(underlay);
        let healed = std::time::Instant::now();
        assert!(
            wait_until(Duration::from_secs(15), || has3(&host1.fdb_show())),
            "host 3's entries not back on host 1 15 s after the partition healed:\n{}",
            host1.fdb_show()
        );
        eprintln!("host 3's entries back on host 1 {:.1} s after the heal", healed.elapsed().as_secs_f64());
        ping(&c.a.ns, &c.mover.ip);

        let log = host1.daemon().log_text();
        let said = log.lines().filter(|l| l.contains(&format!("skipping key {bad}:"))).count();
        assert_eq!(said, 1, "the malformed key was not logged exactly once:\n{log}");
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("zk:") || l.contains("zookeeper_client")).collect();
        eprintln!("host 1's ZooKeeper log lines:\n{}", lines.join("\n"));
    });
}
