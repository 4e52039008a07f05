//! vxdp on both hosts: the same end-to-end checks as against the kernel.

use vxdp_tests::traffic::{check_overlay, check_vxdp_counters};
use vxdp_tests::{require_root, serial, Topology, VtepKind};

#[test]
fn vxdp_both_ends() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    let topo = Topology::with_vteps(VtepKind::Vxdp, VtepKind::Vxdp);
    check_overlay(&topo);
    check_vxdp_counters(&topo.a);
    check_vxdp_counters(&topo.b);
}
