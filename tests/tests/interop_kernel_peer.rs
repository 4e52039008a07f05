//! vxdp on host A, the kernel vxlan device on host B: they must
//! interoperate in both directions (ARP, ping, TCP, broadcast flooding).

use vxdp_tests::traffic::{check_overlay, check_vxdp_counters};
use vxdp_tests::{require_root, serial, Topology, VtepKind};

#[test]
fn interop_kernel_peer() {
    if !require_root("interop_kernel_peer") {
        return;
    }
    let _serial = serial();
    let topo = Topology::with_vteps(VtepKind::Vxdp, VtepKind::Kernel);
    check_overlay(&topo);
    check_vxdp_counters(&topo.a);
}
