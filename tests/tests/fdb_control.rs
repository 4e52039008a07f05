//! `vxdp fdb` against a running daemon, with a kernel vxlan peer: learning
//! fills the table (shown with source `learned`), deleting the all-zeros
//! entry stops flooding (counted as `no_fdb_entry`), appending it back
//! restores it, a static entry overrides a learned one, and `add` of an
//! existing static entry fails like `bridge fdb add` does.

use std::time::Duration;

use vxdp_tests::traffic::{ping, udp_broadcast};
use vxdp_tests::{require_root, serial, wait_until, Side, Topology, VtepKind};

fn show(topo: &Topology) -> String {
    topo.a.daemon().ctl(&["fdb", "show", "dev", "vx0"]).expect("vxdp fdb show")
}

fn line_for<'a>(table: &'a str, mac: &str) -> Option<&'a str> {
    table.lines().find(|l| l.starts_with(mac))
}

#[test]
fn fdb_control() {
    if !require_root("fdb_control") {
        return;
    }
    let _serial = serial();
    let topo = Topology::with_vteps(VtepKind::Vxdp, VtepKind::Kernel);
    let d = topo.a.daemon();
    let b_mac = topo.b.container_mac();

    // Learning: B's container MAC arrives behind 192.0.2.2.
    ping(&topo.a.container, topo.b.overlay_ip);
    assert!(
        wait_until(Duration::from_secs(3), || line_for(&show(&topo), &b_mac)
            .is_some_and(|l| l.contains("dst 192.0.2.2") && l.contains("learned"))),
        "B's container MAC {b_mac} was not learned; fdb show:\n{}",
        show(&topo)
    );

    // A static entry for the same MAC takes over; deleting it reveals the learned one.
    d.ctl(&["fdb", "add", &b_mac, "dst", "192.0.2.2", "dev", "vx0"]).expect("fdb add");
    let line = show(&topo);
    assert!(
        line_for(&line, &b_mac).is_some_and(|l| l.contains("static")),
        "static add did not take precedence:\n{line}"
    );
    let again = d.ctl(&["fdb", "add", &b_mac, "dst", "192.0.2.2", "dev", "vx0"]);
    assert!(again.is_err(), "a second `fdb add` of the same MAC succeeded");
    ping(&topo.a.container, topo.b.overlay_ip);
    d.ctl(&["fdb", "del", &b_mac, "dev", "vx0"]).expect("fdb del");
    let line = show(&topo);
    assert!(
        line_for(&line, &b_mac).is_some_and(|l| l.contains("learned")),
        "deleting the static entry did not reveal the learned one:\n{line}"
    );

    // No flood entry: broadcasts from A's container are dropped and counted.
    d.ctl(&["fdb", "del", "00:00:00:00:00:00", "dst", "192.0.2.2", "dev", "vx0"]).expect("fdb del flood entry");
    assert!(
        line_for(&show(&topo), "00:00:00:00:00:00").is_none(),
        "flood entry still shown after del:\n{}",
        show(&topo)
    );
    let before = d.stats().total("drop_no_fdb_entry");
    let lost = std::panic::catch_unwind(|| udp_broadcast(&topo.a.container, &topo.b.container, "198.51.100.255"));
    assert!(lost.is_err(), "a broadcast crossed without a flood entry");
    assert!(
        d.stats().total("drop_no_fdb_entry") > before,
        "broadcasts without a flood entry were not counted as no_fdb_entry"
    );

    // Appending the flood entry back restores broadcast.
    d.ctl(&["fdb", "append", "00:00:00:00:00:00", "dst", "192.0.2.2", "dev", "vx0"]).expect("fdb append flood entry");
    udp_broadcast(&topo.a.container, &topo.b.container, "198.51.100.255");

    // Bad input names the problem and changes nothing.
    let bad = d.ctl(&["fdb", "add", "not-a-mac", "dst", "192.0.2.9", "dev", "vx0"]).expect_err("bad MAC accepted");
    assert!(format!("{bad:#}").contains("not-a-mac"), "error does not name the bad MAC: {bad:#}");
    assert!(!show(&topo).contains("192.0.2.9"));

    // The bridge layout (the default) serves no ports: `vxdp port` says how to get them.
    let port = d.ctl(&["port", "add", "vethc", "dev", "vx0"]).expect_err("port add in the bridge layout");
    assert!(format!("{port:#}").contains("--layout port"), "{port:#}");
}

#[test]
fn nolearning_floods_unknown_unicast() {
    if !require_root("nolearning_floods_unknown_unicast") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep_with(Side::A, VtepKind::Vxdp, &["--nolearning"]);
    topo.add_vtep(Side::B, VtepKind::Kernel);
    let b_mac = topo.b.container_mac();

    // Unicast to B's unknown MAC still arrives: it is flooded to the all-zeros list.
    ping(&topo.a.container, topo.b.overlay_ip);
    ping(&topo.b.container, topo.a.overlay_ip);
    let table = show(&topo);
    assert!(line_for(&table, &b_mac).is_none(), "--nolearning but {b_mac} was learned:\n{table}");
    let stats = topo.a.daemon().stats();
    assert_eq!(stats.total("learned"), 0, "learned counter moved: {}", stats.0);
    assert!(stats.total("flooded") > 0, "unknown unicast was not flooded: {}", stats.0);
}
