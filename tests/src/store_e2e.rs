//! The three-host cluster-store scenario, once for every store: three vxdp hosts with
//! `--advertise`, no `--remote` and no learning, so every FDB entry comes from the
//! store (which listens on the underlay, 192.0.2.254). Entries written to the store
//! reach every host and traffic follows them; a registration deleted from the store
//! comes back; a container's MAC moves from host B to host C and traffic follows;
//! SIGKILLing host C's vxdp removes its entries everywhere after the lease TTL.
//! `tests/tests/consul_e2e.rs` and `etcd_e2e.rs` run it against their store.

use crate::multi::{Cluster, Container};
use crate::traffic::ping;
use crate::wait_until;
use std::time::{Duration, Instant};

/// The key prefix of VNI 42 under the default prefix.
pub const PREFIX: &str = "vxdp/vni/42/";

/// The store as the test sees it (reads and writes from the test process).
pub trait TestStore {
    /// The `vxdp run` arguments that point at the store.
    fn args(&self) -> Vec<String>;
    /// Keys under `prefix`.
    fn keys(&self, prefix: &str) -> Vec<String>;
    fn put(&self, key: &str, value: &[u8]);
    fn delete(&self, key: &str);
    /// A key's value and whether a lease (session) holds it.
    fn get(&self, key: &str) -> Option<(Vec<u8>, bool)>;
}

/// An entry from the store (source `store`) for `mac` at `dst`.
pub fn has_line(table: &str, mac: &str, dst: &str) -> bool {
    table.lines().any(|l| l.starts_with(mac) && l.contains(&format!("dst {dst} ")) && l.contains("source store"))
}

/// The scenario's containers, for steps a store's test adds.
pub struct Containers {
    pub a: Container,
    pub mover: Container,
}

/// Runs the scenario on a three-host `cluster`; `before_kill` runs after the MAC moved
/// and before host 3 is killed (a store's own fault steps).
pub fn three_hosts(cluster: &mut Cluster, store: &dyn TestStore, before_kill: impl FnOnce(&Cluster, &Containers)) {
    let mut args: Vec<String> = ["--vni", "42", "--nolearning", "--advertise"].map(String::from).to_vec();
    args.extend(store.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for node in &mut cluster.nodes {
        node.start_vxdp(&args);
    }
    let ips: Vec<String> = cluster.nodes.iter().map(|n| n.underlay_ip.clone()).collect();

    // Every node registers as a VTEP; every node floods to the two others.
    assert!(
        wait_until(Duration::from_secs(10), || store.keys(&format!("{PREFIX}vtep/")).len() == 3),
        "VTEP registrations: {:?}",
        store.keys(PREFIX)
    );
    for (i, node) in cluster.nodes.iter().enumerate() {
        assert!(
            wait_until(Duration::from_secs(5), || {
                let t = node.fdb_show();
                ips.iter().enumerate().all(|(j, ip)| (i == j) != has_line(&t, "00:00:00:00:00:00", ip))
            }),
            "node {} flood list wrong:\n{}",
            i + 1,
            node.fdb_show()
        );
    }

    // An entry written to the store reaches every other node.
    store.put(&format!("{PREFIX}mac/02:aa:00:00:00:01"), br#"{"v":1,"vtep":"192.0.2.3"}"#);
    for node in &cluster.nodes[..2] {
        assert!(
            wait_until(Duration::from_secs(5), || has_line(&node.fdb_show(), "02:aa:00:00:00:01", "192.0.2.3")),
            "written entry missing on {}:\n{}",
            node.underlay_ip,
            node.fdb_show()
        );
    }
    store.delete(&format!("{PREFIX}mac/02:aa:00:00:00:01"));

    // A registration deleted from the store (by hand, or lost in a restore) while its
    // node lives is written again by that node, and the flood lists recover.
    let vtep2 = format!("{PREFIX}vtep/192.0.2.2");
    store.delete(&vtep2);
    assert!(
        wait_until(Duration::from_secs(5), || store.get(&vtep2).is_some_and(|(_, leased)| leased)),
        "host 2 did not register again: {:?}",
        store.keys(PREFIX)
    );
    let host1 = &cluster.nodes[0];
    assert!(
        wait_until(Duration::from_secs(5), || has_line(&host1.fdb_show(), "00:00:00:00:00:00", "192.0.2.2")),
        "host 1 flood list lacks host 2 after it registered again:\n{}",
        host1.fdb_show()
    );

    // Containers: A on host 1, the mover on host 2. Their MACs get advertised by the
    // host they send from, and traffic follows.
    let a = cluster.add_container(0, "ca", "02:00:00:00:01:01", "198.51.100.1");
    let mover_b = cluster.add_container(1, "mb", "02:00:00:00:0a:0a", "198.51.100.10");
    ping(&a.ns, &mover_b.ip);
    ping(&mover_b.ns, &a.ip);
    let host1 = &cluster.nodes[0];
    assert!(
        wait_until(Duration::from_secs(5), || has_line(&host1.fdb_show(), &mover_b.mac, "192.0.2.2")),
        "host 1 did not get the mover's MAC behind host 2 from the store:\n{}",
        host1.fdb_show()
    );

    // The container moves to host 3 (same MAC and IP) and says hello from there.
    drop(mover_b);
    let mover_c = cluster.add_container(2, "mc", "02:00:00:00:0a:0a", "198.51.100.10");
    ping(&mover_c.ns, &a.ip);
    assert!(
        wait_until(Duration::from_secs(5), || has_line(&host1.fdb_show(), &mover_c.mac, "192.0.2.3")),
        "host 1 did not follow the move to host 3:\n{}",
        host1.fdb_show()
    );
    ping(&a.ns, &mover_c.ip);
    let (value, leased) = store.get(&format!("{PREFIX}mac/{}", mover_c.mac)).expect("mover key");
    assert!(String::from_utf8_lossy(&value).contains("192.0.2.3") && leased);
    // Host 2 does not claim it back.
    std::thread::sleep(Duration::from_millis(500));
    assert!(has_line(&host1.fdb_show(), &mover_c.mac, "192.0.2.3"));

    let containers = Containers { a, mover: mover_c };
    before_kill(cluster, &containers);

    // Host 3 dies hard: its lease expires after the TTL and its entries vanish.
    cluster.nodes[2].daemon.as_mut().unwrap().kill_hard();
    let killed = Instant::now();
    let host1 = &cluster.nodes[0];
    // Its lease was renewed at most TTL/2 (5 s) ago: the entries are still there.
    assert!(has_line(&host1.fdb_show(), "00:00:00:00:00:00", "192.0.2.3"), "host 3 gone before its lease TTL");
    assert!(
        wait_until(Duration::from_secs(30), || !host1.fdb_show().contains("dst 192.0.2.3 ")),
        "host 3's entries still on host 1 30 s after SIGKILL:\n{}",
        host1.fdb_show()
    );
    eprintln!("host 3's entries left host 1 {:.1} s after SIGKILL", killed.elapsed().as_secs_f64());
    assert!(has_line(&host1.fdb_show(), "00:00:00:00:00:00", "192.0.2.2"), "host 2 vanished too");
}

/// `ping -c COUNT -i INTERVAL` from `ns` to `ip`: (transmitted, received).
pub fn ping_count(ns: &crate::Netns, ip: &str, count: u32, interval: &str) -> (u32, u32) {
    let out = ns.try_run(format!("ping -c {count} -i {interval} -W 1 {ip}")).unwrap_or_else(|e| format!("{e:#}"));
    let line = out.lines().find(|l| l.contains("packets transmitted")).unwrap_or_else(|| panic!("ping said:\n{out}"));
    let num = |word: &str| -> u32 {
        let before = line.split(word).next().unwrap_or("");
        before.split([',', ' ']).rfind(|s| !s.is_empty()).and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    (num(" packets transmitted"), num(" received"))
}
