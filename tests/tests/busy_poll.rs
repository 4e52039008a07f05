//! `--busy-poll`: the workers' sockets in preferred busy-poll mode carry the overlay
//! (ping, 10 MB TCP each way with a kernel vxlan peer), the daemon sets
//! `napi_defer_hard_irqs` and `gro_flush_timeout` on `--dev` and its overlay device
//! while it runs, and puts `--dev`'s values back when it stops.

use vxdp_tests::traffic::check_overlay;
use vxdp_tests::{require_root, serial, Side, Topology, VtepKind};

fn sysfs(topo: &Topology, dev: &str, file: &str) -> String {
    topo.a.ns.run(format!("cat /sys/class/net/{dev}/{file}")).trim().to_string()
}

#[test]
fn busy_poll_carries_the_overlay_and_restores_the_device() {
    if !require_root("busy_poll_carries_the_overlay_and_restores_the_device") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep(Side::B, VtepKind::Kernel);
    let before = (sysfs(&topo, "eth0", "napi_defer_hard_irqs"), sysfs(&topo, "eth0", "gro_flush_timeout"));
    topo.add_vtep_with(Side::A, VtepKind::Vxdp, &["--busy-poll"]);
    for dev in ["eth0", "vxdp-vx0"] {
        assert_ne!(sysfs(&topo, dev, "napi_defer_hard_irqs"), "0", "{dev}: napi_defer_hard_irqs not set");
        assert_ne!(sysfs(&topo, dev, "gro_flush_timeout"), "0", "{dev}: gro_flush_timeout not set");
    }
    check_overlay(&topo);
    let mut d = topo.a.daemon.take().expect("daemon on A");
    let status = d.stop();
    assert!(status.is_some_and(|s| s.success()), "vxdp did not stop cleanly: {status:?}\n{}", d.log_text());
    let after = (sysfs(&topo, "eth0", "napi_defer_hard_irqs"), sysfs(&topo, "eth0", "gro_flush_timeout"));
    assert_eq!(after, before, "eth0's NAPI settings were not restored");
}
