//! The control socket: a root process without CAP_NET_ADMIN (a container sharing the
//! host's network namespace, say) may read (`vxdp fdb show`, `vxdp stats`, `vxdp neigh
//! show`, `vxdp link show`) but not change the FDB or the neighbour table, as `bridge
//! fdb` and `ip neigh` would refuse it. `setpriv --bounding-set
//! -net_admin` runs the client as root without the capability.

use vxdp_tests::daemon::vxdp_bin;
use vxdp_tests::netns::run_cmd;
use vxdp_tests::{require_root, serial, Topology, VtepKind};

#[test]
fn ctl_needs_net_admin() {
    if !require_root("ctl_needs_net_admin") {
        return;
    }
    let _serial = serial();
    let topo = Topology::with_vteps(VtepKind::Vxdp, VtepKind::Kernel);
    let bin = vxdp_bin();
    let bin = bin.to_str().expect("utf-8 path");
    let ns = topo.a.ns.name();
    let without_cap = |args: &[&str]| {
        let mut argv = vec!["ip", "netns", "exec", ns, "setpriv", "--bounding-set", "-net_admin", bin];
        argv.extend_from_slice(args);
        run_cmd(&argv)
    };
    let add = ["fdb", "add", "02:55:00:00:00:01", "dst", "192.0.2.2"];
    let e = without_cap(&add).expect_err("an FDB change without CAP_NET_ADMIN was accepted");
    assert!(format!("{e:#}").contains("CAP_NET_ADMIN"), "{e:#}");
    let show = without_cap(&["fdb", "show"]).expect("fdb show needs no capability");
    assert!(!show.contains("02:55:00:00:00:01"), "{show}");
    without_cap(&["stats"]).expect("stats needs no capability");
    let neigh = ["neigh", "add", "198.51.100.9", "lladdr", "02:55:00:00:00:09"];
    let e = without_cap(&neigh).expect_err("a neighbour change without CAP_NET_ADMIN was accepted");
    assert!(format!("{e:#}").contains("CAP_NET_ADMIN") && format!("{e:#}").contains("neighbour table"), "{e:#}");
    let shown = without_cap(&["neigh", "show"]).expect("neigh show needs no capability");
    assert!(!shown.contains("198.51.100.9"), "{shown}");
    without_cap(&["link", "show"]).expect("link show needs no capability");
    // With the capability (the harness's client), the same change goes through.
    topo.a.daemon().ctl(&add).expect("fdb add with CAP_NET_ADMIN");
    assert!(topo.a.daemon().ctl(&["fdb", "show"]).unwrap().contains("02:55:00:00:00:01"));
}
