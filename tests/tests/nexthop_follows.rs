//! The outer destination MAC comes from the kernel's neighbour table, never
//! from a cache that can go stale: when the peer VTEP's underlay MAC changes
//! and host A's neighbour entry is flushed, vxdp itself triggers resolution
//! (nothing else on A talks to the peer) and the overlay works again.

use std::time::Duration;

use vxdp_tests::topology::link_mac;
use vxdp_tests::traffic::ping;
use vxdp_tests::{require_root, serial, wait_until, Topology, VtepKind};

const NEW_MAC: &str = "02:00:00:00:0b:0b";

#[test]
fn nexthop_follows_neighbour_changes() {
    if !require_root("nexthop_follows_neighbour_changes") {
        return;
    }
    let _serial = serial();
    let topo = Topology::with_vteps(VtepKind::Vxdp, VtepKind::Kernel);
    ping(&topo.a.container, topo.b.overlay_ip);
    assert_ne!(link_mac(&topo.b.ns, "eth0"), NEW_MAC);

    topo.b.ns.run(format!("ip link set dev eth0 address {NEW_MAC}"));
    topo.a.ns.run("ip neigh flush dev eth0");
    let neigh = || topo.a.ns.run("ip neigh show 192.0.2.2 dev eth0");
    assert!(
        wait_until(Duration::from_secs(5), || neigh().contains(NEW_MAC)),
        "vxdp did not trigger resolution of 192.0.2.2 after the flush: {:?}",
        neigh()
    );
    ping(&topo.a.container, topo.b.overlay_ip);
    ping(&topo.b.container, topo.a.overlay_ip);
}
