//! Bounded learning: a remote spraying random source MACs, and sources that multiply,
//! cannot grow the FDB past `--max-fdb`, learn faster than `--learn-rate` per source,
//! or make learned entries point at more than `--max-learned-remotes` VTEPs. Each
//! refusal is counted (`vxdp stats`: `control` section), static entries still go in
//! when the table is full, and the kernel peer keeps working. The spray is crafted
//! VXLAN on a raw socket in host B.

use std::net::Ipv4Addr;
use std::time::Duration;

use vxdp_tests::raw::{inner_broadcast, mac, vxlan_frame, RawSocket};
use vxdp_tests::topology::{link_mac, VNI};
use vxdp_tests::traffic::ping;
use vxdp_tests::{require_root, serial, wait_until, Side, Topology, VtepKind};

const MAX_FDB: usize = 20;
const LEARN_RATE: u64 = 10;

fn learned(topo: &Topology) -> usize {
    let show = topo.a.daemon().ctl(&["fdb", "show"]).expect("vxdp fdb show");
    show.lines().filter(|l| l.contains("learned")).count()
}

fn entries(topo: &Topology) -> usize {
    let show = topo.a.daemon().ctl(&["fdb", "show"]).expect("vxdp fdb show");
    let mut macs: Vec<&str> = show.lines().filter_map(|l| l.split_whitespace().next()).collect();
    macs.dedup();
    macs.len()
}

#[test]
fn fdb_bounds() {
    if !require_root("fdb_bounds") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    let (max, rate) = (MAX_FDB.to_string(), LEARN_RATE.to_string());
    topo.add_vtep_with(
        Side::A,
        VtepKind::Vxdp,
        &["--max-fdb", &max, "--learn-rate", &rate, "--max-learned-remotes", "2"],
    );
    topo.add_vtep(Side::B, VtepKind::Kernel);
    ping(&topo.b.container, topo.a.overlay_ip);
    let sock = RawSocket::open(&topo.b.ns, "eth0", 0);
    let (a_mac, b_mac) = (mac(&link_mac(&topo.a.ns, "eth0")), mac(&link_mac(&topo.b.ns, "eth0")));
    let a_ip: Ipv4Addr = topo.a.underlay_ip.parse().unwrap();
    let spray = |src: &str, first: u32, n: u32| {
        for i in first..first + n {
            let inner = inner_broadcast([0x02, 0x77, 0, 0, (i >> 8) as u8, i as u8]);
            sock.send(&vxlan_frame(a_mac, b_mac, src.parse().unwrap(), a_ip, VNI, &inner), 1);
        }
    };
    let daemon = topo.a.daemon();
    let control = |k: &str| daemon.stats().control(k);

    // 50 new MACs from B in one burst: at most LEARN_RATE a second are learned.
    let before = learned(&topo);
    spray(topo.b.underlay_ip, 0, 50);
    assert!(
        wait_until(Duration::from_secs(3), || control("learn_rate_limited") >= 50 - 2 * LEARN_RATE),
        "a burst of 50 new MACs from one source must be rate-limited; stats: {}",
        daemon.stats().0
    );
    assert!(learned(&topo) - before <= 2 * LEARN_RATE as usize, "learned {} of the burst", learned(&topo) - before);

    // A second remote is learned behind; a third is one too many.
    spray("192.0.2.200", 1000, 1);
    assert!(wait_until(Duration::from_secs(3), || daemon.ctl(&["fdb", "show"]).unwrap().contains("dst 192.0.2.200")));
    spray("192.0.2.201", 1001, 1);
    assert!(
        wait_until(Duration::from_secs(3), || control("learn_remotes_capped") >= 1),
        "a third learned remote must be refused; stats: {}",
        daemon.stats().0
    );
    assert!(!daemon.ctl(&["fdb", "show"]).unwrap().contains("192.0.2.201"));

    // Keep spraying new MACs from B: the table stops at --max-fdb.
    let mut next = 100;
    assert!(
        wait_until(Duration::from_secs(10), || {
            spray(topo.b.underlay_ip, next, 5);
            next += 5;
            control("fdb_full") >= 1
        }),
        "the table never filled up; stats: {}",
        daemon.stats().0
    );
    assert!(entries(&topo) <= MAX_FDB, "{} entries with --max-fdb {MAX_FDB}", entries(&topo));
    // A static entry still goes in, past the limit.
    daemon.ctl(&["fdb", "add", "02:88:00:00:00:01", "dst", "192.0.2.2"]).expect("static add when full");
    assert_eq!(entries(&topo), MAX_FDB + 1);
    ping(&topo.b.container, topo.a.overlay_ip);
    ping(&topo.a.container, topo.b.overlay_ip);
    let log = topo.a.daemon().log_text();
    assert_eq!(log.matches("the --max-fdb limit").count(), 1, "warned once: {log}");
}
