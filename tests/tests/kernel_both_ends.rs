//! Baseline: kernel vxlan on both hosts. Validates the harness, the
//! topology and the checks themselves without vxdp.

use vxdp_tests::traffic::{check_overlay, check_underlay, ping, TRANSFER_LEN};
use vxdp_tests::{require_root, serial, Netns, Topology, VtepKind};

/// Bytes counted by `dev`'s netdev stats as (rx, tx). (Bytes, not
/// packets: vxlan0 counts a TSO super-frame as one tx packet, since the
/// kernel segments only below it, on the underlay device.)
fn link_bytes(ns: &Netns, dev: &str) -> (u64, u64) {
    let out = ns.run(format!("ip -s -j link show dev {dev}"));
    let json: serde_json::Value = serde_json::from_str(&out).expect("ip -j is JSON");
    let s = &json[0]["stats64"];
    (s["rx"]["bytes"].as_u64().unwrap_or(0), s["tx"]["bytes"].as_u64().unwrap_or(0))
}

#[test]
fn kernel_both_ends() {
    if !require_root("kernel_both_ends") {
        return;
    }
    let _serial = serial();
    let topo = Topology::with_vteps(VtepKind::Kernel, VtepKind::Kernel);
    check_overlay(&topo);
    check_underlay(&topo);
    // The traffic really went through the VTEPs, not around them.
    for h in [&topo.a, &topo.b] {
        let (rx, tx) = link_bytes(&h.ns, "vxlan0");
        let min = TRANSFER_LEN as u64;
        assert!(rx > min && tx > min, "vxlan0 in {} carried rx={rx} tx={tx}", h.ns.name());
    }
}

/// Negative control: with different VNIs the overlay must not connect,
/// so the checks above cannot pass by accident.
#[test]
fn kernel_vni_mismatch_isolates() {
    if !require_root("kernel_vni_mismatch_isolates") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep(vxdp_tests::Side::A, VtepKind::Kernel);
    vxdp_tests::kernel_vtep(&topo.b.ns, "vxlan0", 43, topo.b.underlay_ip, "eth0", &[topo.a.underlay_ip]);
    topo.b.ns.run("ip link set vxlan0 master br0 up");
    let r = topo.a.container.try_run(format!("ping -c 2 -W 1 {}", topo.b.overlay_ip));
    assert!(r.is_err(), "ping crossed VNI 42 -> 43: {r:?}");
    // ...and fixing the VNI connects it (the failure was the VNI).
    topo.b.ns.run("ip link del vxlan0");
    topo.add_vtep(vxdp_tests::Side::B, VtepKind::Kernel);
    ping(&topo.a.container, topo.b.overlay_ip);
}
