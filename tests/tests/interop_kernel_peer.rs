//! vxdp on host A, the kernel vxlan device on host B: they must
//! interoperate in both directions (ARP, ping, TCP, broadcast flooding), and
//! the datapath `$VXDP_DATAPATH` names must be the one that carried it: with
//! the express path, at least half the frames each way went through XDP alone;
//! with `afxdp`, none did.

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
