//! vxdp must not disturb non-VXLAN traffic on its underlay interface,
//! neither while it runs nor after it is SIGKILLed (no XDP program may be
//! left behind steering into dead sockets).

use std::time::Duration;

use vxdp_tests::traffic::{check_underlay, has_xdp};
use vxdp_tests::{require_root, serial, wait_until, Side, Topology, VtepKind};

#[test]
fn underlay_survives() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep(Side::A, VtepKind::Vxdp);
    assert!(
        has_xdp(&topo.a.ns, "eth0"),
        "vxdp running but no XDP program on eth0 in A"
    );

    check_underlay(&topo);
    let stats = topo.a.daemon().stats();
    for key in ["xdp_pass_not_udp", "xdp_pass_other_port"] {
        assert!(
            stats.xdp(key) > 0,
            "xdp.{key} did not move for underlay traffic: {}",
            stats.0
        );
    }

    topo.a.daemon.as_mut().expect("daemon").kill_hard();
    assert!(
        wait_until(Duration::from_secs(5), || !has_xdp(&topo.a.ns, "eth0")),
        "XDP program still attached to eth0 in A 5 s after vxdp was SIGKILLed:\n{}",
        topo.a.ns.run("ip -d link show dev eth0")
    );
    check_underlay(&topo);
}
