//! vxdp on both hosts: the same end-to-end checks as against the kernel. Host B's
//! worker is pinned with `--cpus`, and the pin is checked from /proc.

use vxdp_tests::traffic::{check_overlay, check_vxdp_counters};
use vxdp_tests::{require_root, serial, Side, Topology, VtepKind};

/// `Cpus_allowed_list` of the thread named `name` in process `pid`.
fn allowed_cpus(pid: u32, name: &str) -> Option<String> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let dir = task.ok()?.path();
        if std::fs::read_to_string(dir.join("comm")).ok()?.trim() == name {
            let status = std::fs::read_to_string(dir.join("status")).ok()?;
            return status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(|v| v.trim().to_string());
        }
    }
    None
}

#[test]
fn vxdp_both_ends() {
    if !require_root("vxdp_both_ends") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep(Side::A, VtepKind::Vxdp);
    topo.add_vtep_with(Side::B, VtepKind::Vxdp, &["--cpus", "0"]);
    let pid = topo.b.daemon.as_ref().and_then(|d| d.pid()).expect("B's daemon pid");
    assert_eq!(allowed_cpus(pid, "vxdp-w0").as_deref(), Some("0"), "--cpus 0 did not pin B's worker");
    check_overlay(&topo);
    check_vxdp_counters(&topo.a);
    check_vxdp_counters(&topo.b);
}
