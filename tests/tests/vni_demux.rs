//! vxdp serves VNI 42 on host A; the kernel's own vxlan device serves VNI 43 on the
//! same host, address and UDP port, with a kernel peer for both VNIs on host B. vxdp's
//! XDP program sits on A's underlay in front of the kernel's socket, so it must steer
//! only the VNI it serves: VNI 43 is passed to the kernel untouched (and counted as
//! passed), and both overlays work side by side, in both directions.

use vxdp_tests::topology::VNI;
use vxdp_tests::traffic::{check_overlay, ping, random_bytes, tcp_transfer};
use vxdp_tests::{kernel_vtep, require_root, serial, Side, Topology, VtepKind};

/// The kernel's VNI beside vxdp's.
const OTHER_VNI: u32 = VNI + 1;
/// Its device on both hosts.
const OTHER_DEV: &str = "vxlan43";
/// The hosts' addresses on it (TEST-NET-3), A's then B's.
const OTHER_IPS: [&str; 2] = ["203.0.113.1", "203.0.113.2"];
/// Bulk transfer over the kernel's VNI: enough segments to see any steering.
const TRANSFER_LEN: usize = 2 * 1024 * 1024;
const TCP_PORT: u16 = 5443;

#[test]
fn another_vni_on_the_same_port_stays_with_the_kernel() {
    if !require_root("another_vni_on_the_same_port_stays_with_the_kernel") {
        return;
    }
    let _serial = serial();
    let topo = Topology::with_vteps(VtepKind::Vxdp, VtepKind::Kernel);
    for (side, ip) in [(Side::A, OTHER_IPS[0]), (Side::B, OTHER_IPS[1])] {
        let (h, peer) = (topo.host(side), topo.host(side.peer()));
        kernel_vtep(&h.ns, OTHER_DEV, OTHER_VNI, h.underlay_ip, "eth0", &[peer.underlay_ip]);
        h.ns.run(format!("ip addr add {ip}/24 dev {OTHER_DEV}"));
        h.ns.run(format!("ip link set {OTHER_DEV} up"));
    }

    // The kernel's VNI, through host A's XDP program, both ways.
    ping(&topo.a.ns, OTHER_IPS[1]);
    ping(&topo.b.ns, OTHER_IPS[0]);
    let data = random_bytes(TRANSFER_LEN);
    tcp_transfer(&topo.b.ns, &topo.a.ns, OTHER_IPS[0], TCP_PORT, &data);
    tcp_transfer(&topo.a.ns, &topo.b.ns, OTHER_IPS[1], TCP_PORT, &data);

    // vxdp's VNI beside it.
    check_overlay(&topo);

    let stats = topo.a.daemon().stats();
    let passed = stats.xdp("xdp_pass_other_vni");
    // At least the pings' requests and replies and the transfer's segments to A.
    assert!(passed >= 6 + (TRANSFER_LEN / 1500) as u64, "only {passed} VNI {OTHER_VNI} frames passed: {}", stats.0);
    assert_eq!(stats.total("drop_wrong_vni"), 0, "the workers saw another VNI: {}", stats.0);
    // Bytes, not packets: GRO on the underlay merges the segments before the device.
    let kernel_rx: u64 =
        topo.a.ns.run(format!("cat /sys/class/net/{OTHER_DEV}/statistics/rx_bytes")).trim().parse().expect("rx_bytes");
    assert!(
        kernel_rx >= TRANSFER_LEN as u64,
        "the kernel's {OTHER_DEV} received only {kernel_rx} bytes ({passed} frames passed)"
    );
}
