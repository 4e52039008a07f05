//! A jumbo underlay: host A's `eth0` has MTU 9000. The kernel would give the overlay
//! 8950, but vxdp's overlay pair carries XDP and takes frames of one page at most, so
//! vxdp must start (it used to fail attaching XDP to its own veth), cap `vx0` at 3506,
//! say so in the log, and carry the overlay: pings of the full MTU with DF and 10 MB
//! of TCP, both ways, with a kernel vxlan peer. (Host B's `eth0`, the peer of A's underlay veth, stays at 3506 so that
//! A's native XDP on that veth can attach; the containers use 3456, which that leaves.)

use vxdp_tests::traffic::{random_bytes, tcp_transfer, TRANSFER_LEN};
use vxdp_tests::{require_root, serial, Side, Topology, VtepKind};

const CAPPED: u32 = 3506;
/// What B's 3506-byte underlay leaves inside the tunnel.
const INNER: u32 = CAPPED - 50;
const TCP_PORT: u16 = 5445;

#[test]
fn jumbo_underlay_caps_the_overlay_mtu() {
    if !require_root("jumbo_underlay_caps_the_overlay_mtu") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.a.ns.run("ip link set eth0 mtu 9000");
    topo.b.ns.run(format!("ip link set eth0 mtu {CAPPED}"));
    topo.add_vtep(Side::A, VtepKind::Vxdp);
    topo.add_vtep(Side::B, VtepKind::Kernel);
    topo.b.ns.run(format!("ip link set vxlan0 mtu {INNER}"));
    for h in [&topo.a, &topo.b] {
        h.ns.run(format!("ip link set vethc mtu {INNER}"));
        h.container.run(format!("ip link set eth0 mtu {INNER}"));
    }
    let vx0 = topo.a.ns.run("ip -o link show vx0");
    assert!(vx0.contains(&format!(" mtu {CAPPED} ")), "vx0 not capped: {vx0}");
    let log = topo.a.daemon().log_text();
    assert!(log.contains(&format!("leaves 8950 for the overlay, but vx0 takes at most {CAPPED}")), "{log}");

    for side in [Side::A, Side::B] {
        let (h, peer) = (topo.host(side), topo.host(side.peer()));
        h.container.run(format!("ping -c 3 -W 2 -M do -s {} {}", INNER - 28, peer.overlay_ip));
    }
    let data = random_bytes(TRANSFER_LEN);
    for side in [Side::A, Side::B] {
        let (h, peer) = (topo.host(side), topo.host(side.peer()));
        tcp_transfer(&h.container, &peer.container, peer.overlay_ip, TCP_PORT, &data);
    }
}
