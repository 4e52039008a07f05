//! vxdp must not disturb non-VXLAN traffic on its underlay interface,
//! neither while it runs nor after it is SIGKILLed (no XDP program may be
//! left behind steering into dead sockets). A second vxdp with the same name
//! is refused while the first runs, and a restart after SIGKILL cleans up the
//! overlay device the killed one left behind and carries traffic again.

use std::time::Duration;

use vxdp_tests::daemon::vxdp_bin;
use vxdp_tests::traffic::{check_overlay, check_underlay, has_xdp};
use vxdp_tests::{require_root, serial, wait_until, Side, Topology, VtepKind};

#[test]
fn underlay_survives() {
    if !require_root("underlay_survives") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep(Side::A, VtepKind::Vxdp);
    assert!(has_xdp(&topo.a.ns, "eth0"), "vxdp running but no XDP program on eth0 in A");

    // Bounded by `timeout` in case the instance lock were broken and it kept running.
    let second = topo.a.ns.try_run(format!("timeout 10 {} run --name vx0 --dev eth0 --vni 7", vxdp_bin().display()));
    match second {
        Ok(out) => panic!("a second vxdp --name vx0 started next to the first: {out}"),
        Err(e) => {
            assert!(format!("{e:#}").contains("already running"), "second vxdp failed for the wrong reason: {e:#}")
        }
    }

    check_underlay(&topo);
    let stats = topo.a.daemon().stats();
    for key in ["xdp_pass_not_udp", "xdp_pass_other_port"] {
        assert!(stats.xdp(key) > 0, "xdp.{key} did not move for underlay traffic: {}", stats.0);
    }

    topo.a.daemon.as_mut().expect("daemon").kill_hard();
    assert!(
        wait_until(Duration::from_secs(5), || !has_xdp(&topo.a.ns, "eth0")),
        "XDP program still attached to eth0 in A 5 s after vxdp was SIGKILLed:\n{}",
        topo.a.ns.run("ip -d link show dev eth0")
    );
    check_underlay(&topo);

    // The killed daemon could not remove vx0; a restart replaces it and works.
    assert!(topo.a.ns.try_run("ip link show dev vx0").is_ok(), "expected the killed vxdp to leave vx0 behind");
    topo.add_vtep(Side::A, VtepKind::Vxdp);
    topo.add_vtep(Side::B, VtepKind::Kernel);
    check_overlay(&topo);
}
