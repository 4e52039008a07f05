//! vxdp must not disturb non-VXLAN traffic on its underlay interface,
//! neither while it runs nor after it is SIGKILLed (no XDP program may be
//! left behind steering into dead sockets or, with the express path,
//! redirecting into a dead overlay device). A second vxdp with the same name
//! is refused while the first runs, and a restart after SIGKILL cleans up the
//! overlay device the killed one left behind and carries traffic again. With
//! the express path (`$VXDP_DATAPATH` auto or unset) it must have been on, and
//! carrying overlay traffic, when the daemon is killed.

use std::time::Duration;

use vxdp_tests::daemon::vxdp_bin;
use vxdp_tests::traffic::{check_overlay, check_underlay, has_xdp, ping};
use vxdp_tests::{datapath, require_root, serial, wait_until, Side, Topology, VtepKind};

/// vxdp's end of the overlay veth pair of `vx0` (the other XDP attach point).
const OVERLAY_PEER: &str = "vxdp-vx0";

#[test]
fn underlay_survives() {
    if !require_root("underlay_survives") {
        return;
    }
    let _serial = serial();
    let dp = datapath();
    let mut topo = Topology::new();
    topo.add_vtep(Side::A, VtepKind::Vxdp);
    topo.add_vtep(Side::B, VtepKind::Kernel);
    assert!(has_xdp(&topo.a.ns, "eth0"), "vxdp running but no XDP program on eth0 in A");

    // Bounded by `timeout` in case the instance lock were broken and it kept running.
    let second = topo.a.ns.try_run(format!(
        "timeout 10 {} run --name vx0 --dev eth0 --vni 7 {}",
        vxdp_bin().display(),
        dp.args().join(" ")
    ));
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

    // The datapath is the one asked for and, with the express path, it carries the
    // overlay's known unicast (the first echo teaches both ends the MACs).
    ping(&topo.a.container, topo.b.overlay_ip);
    ping(&topo.a.container, topo.b.overlay_ip);
    let d = topo.a.daemon();
    let (want, other) = if dp.express() {
        ("XDP express path and AF_XDP workers", "AF_XDP workers only")
    } else {
        ("AF_XDP workers only", "XDP express path")
    };
    let log = d.log_text();
    assert!(
        log.contains(want) && !log.contains(other),
        "datapath {dp}: the daemon's log does not say \"{want}\":\n{log}"
    );
    let stats = d.stats();
    for key in ["xdp_express_encap", "xdp_express_decap"] {
        assert_eq!(
            stats.xdp(key) > 0,
            dp.express(),
            "datapath {dp}: xdp.{key} is {} after overlay pings; stats: {}",
            stats.xdp(key),
            stats.0
        );
    }

    topo.a.daemon.as_mut().expect("daemon").kill_hard();
    for dev in ["eth0", OVERLAY_PEER] {
        assert!(
            wait_until(Duration::from_secs(5), || !has_xdp(&topo.a.ns, dev)),
            "XDP program still attached to {dev} in A 5 s after vxdp was SIGKILLed:\n{}",
            topo.a.ns.run(format!("ip -d link show dev {dev}"))
        );
    }
    let link = topo.a.ns.run("ip -d link show dev eth0");
    assert!(!link.contains("xdp"), "eth0 in A still shows XDP after vxdp was SIGKILLed:\n{link}");
    check_underlay(&topo);

    // The killed daemon could not remove vx0; a restart replaces it and works.
    assert!(topo.a.ns.try_run("ip link show dev vx0").is_ok(), "expected the killed vxdp to leave vx0 behind");
    topo.add_vtep(Side::A, VtepKind::Vxdp);
    check_overlay(&topo);
}
