//! Three hosts running vxdp with `--consul --advertise`, no `--remote` and no
//! learning: every FDB entry comes from Consul (the in-process test server,
//! listening on the underlay). Entries written to the store reach every host and
//! traffic follows them; a container's MAC moves from host B to host C and
//! traffic follows; SIGKILLing host C's vxdp removes its entries everywhere after
//! the session TTL. A registration deleted from the store comes back.

use std::net::SocketAddr;
use std::time::Duration;

use vxdp_tests::multi::{Cluster, UNDERLAY_SERVICE_IP};
use vxdp_tests::traffic::ping;
use vxdp_tests::{in_netns, require_root, serial, wait_until};
use vxdp_testsupport::consul::TestConsul;

const PREFIX: &str = "vxdp/vni/42/";

fn has_line(table: &str, mac: &str, dst: &str) -> bool {
    table.lines().any(|l| l.starts_with(mac) && l.contains(&format!("dst {dst} ")) && l.contains("consul"))
}

#[test]
fn consul_e2e() {
    if !require_root("consul_e2e") {
        return;
    }
    let _serial = serial();
    let mut cluster = Cluster::new(3);
    let addr: SocketAddr = format!("{UNDERLAY_SERVICE_IP}:8500").parse().unwrap();
    let consul = in_netns(&cluster.underlay, || TestConsul::start_on(addr)).expect("test Consul on the underlay");
    let url = consul.url();
    for node in &mut cluster.nodes {
        node.start_vxdp(&["--vni", "42", "--nolearning", "--consul", &url, "--advertise"]);
    }
    let ips: Vec<String> = cluster.nodes.iter().map(|n| n.underlay_ip.clone()).collect();

    // Every node registers as a VTEP; every node floods to the two others.
    assert!(
        wait_until(Duration::from_secs(10), || consul.keys(&format!("{PREFIX}vtep/")).len() == 3),
        "VTEP registrations: {:?}",
        consul.keys(PREFIX)
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
    consul.put(&format!("{PREFIX}mac/02:aa:00:00:00:01"), br#"{"v":1,"vtep":"192.0.2.3"}"#);
    for node in &cluster.nodes[..2] {
        assert!(
            wait_until(Duration::from_secs(5), || has_line(&node.fdb_show(), "02:aa:00:00:00:01", "192.0.2.3")),
            "written entry missing on {}:\n{}",
            node.underlay_ip,
            node.fdb_show()
        );
    }
    consul.delete(&format!("{PREFIX}mac/02:aa:00:00:00:01"));

    // A registration deleted from the store (by hand, or lost in a restore) while its
    // node lives is written again by that node, and the flood lists recover.
    let vtep2 = format!("{PREFIX}vtep/192.0.2.2");
    consul.delete(&vtep2);
    assert!(
        wait_until(Duration::from_secs(5), || consul.get(&vtep2).is_some_and(|(_, session)| session.is_some())),
        "host 2 did not register again: {:?}",
        consul.keys(PREFIX)
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
        "host 1 did not get the mover's MAC behind host 2 from Consul:\n{}",
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
    let (value, session) = consul.get(&format!("{PREFIX}mac/{}", mover_c.mac)).expect("mover key");
    assert!(String::from_utf8_lossy(&value).contains("192.0.2.3") && session.is_some());
    // Host 2 does not claim it back.
    std::thread::sleep(Duration::from_millis(500));
    assert!(has_line(&host1.fdb_show(), &mover_c.mac, "192.0.2.3"));

    // Host 3 dies hard: its session expires after the TTL and its entries vanish.
    cluster.nodes[2].daemon.as_mut().unwrap().kill_hard();
    let killed = std::time::Instant::now();
    let host1 = &cluster.nodes[0];
    // Its session was renewed at most TTL/2 (5 s) ago: the entries are still there.
    assert!(has_line(&host1.fdb_show(), "00:00:00:00:00:00", "192.0.2.3"), "host 3 gone before its session TTL");
    assert!(
        wait_until(Duration::from_secs(30), || {
            let t = host1.fdb_show();
            !t.contains("dst 192.0.2.3 ")
        }),
        "host 3's entries still on host 1 30 s after SIGKILL:\n{}",
        host1.fdb_show()
    );
    eprintln!("host 3's entries left host 1 {:.1} s after SIGKILL", killed.elapsed().as_secs_f64());
    assert!(has_line(&host1.fdb_show(), "00:00:00:00:00:00", "192.0.2.2"), "host 2 vanished too");
}
