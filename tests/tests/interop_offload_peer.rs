//! vxdp on host A, the kernel vxlan device on host B, with the underlay veths'
//! transmit checksum offload left on (the kernel's default, unlike the other
//! topologies' `ethtool -K eth0 tx off`). Host B then sends inner TCP and UDP
//! segments whose checksums hold only the pseudo-header sum; the kernel vxlan
//! device would deliver them, and vxdp must too: it completes them, and counts
//! each (`csum_completed`). With the express path such frames go to the workers
//! (`xdp_to_workers_csum`).

use vxdp_tests::traffic::{check_overlay, ping, random_bytes, tcp_transfer, TRANSFER_LEN};
use vxdp_tests::{datapath, require_root, serial, PortTopology, Side, Topology, VtepKind};

#[test]
fn interop_offload_peer() {
    if !require_root("interop_offload_peer") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::with_offloads();
    topo.add_vtep(Side::A, VtepKind::Vxdp);
    topo.add_vtep(Side::B, VtepKind::Kernel);
    let offload = topo.b.ns.run("ethtool -k eth0");
    assert!(
        offload.lines().any(|l| l.trim() == "tx-checksumming: on"),
        "host B's eth0 must keep tx checksum offload on for this test: {offload}"
    );
    check_overlay(&topo);

    let stats = topo.a.daemon().stats();
    // B -> A: the 10 MB transfer's segments, A -> B's ACKs, the broadcast datagram.
    let completed = stats.total("csum_completed");
    assert!(completed > 1000, "vxdp completed {completed} inner checksums; stats: {}", stats.0);
    let to_workers = stats.xdp("xdp_to_workers_csum");
    match datapath().express() {
        true => assert!(to_workers >= completed, "express path handed {to_workers} to the workers: {}", stats.0),
        false => assert_eq!(to_workers, 0, "nothing reaches XDP's express path with afxdp: {}", stats.0),
    }
    eprintln!("csum_completed {completed}, xdp_to_workers_csum {to_workers}");
}

/// The same peer against the port layout: the frames host B sends go into a port's
/// container (by XDP or by a worker), and they too must arrive with finished checksums.
#[test]
fn interop_offload_peer_port_layout() {
    if !require_root("interop_offload_peer_port_layout") {
        return;
    }
    let _serial = serial();
    let pt = PortTopology::with_offloads(&[]);
    let topo = &pt.topo;
    ping(&topo.b.container, topo.a.overlay_ip);
    let data = random_bytes(TRANSFER_LEN);
    tcp_transfer(&topo.b.container, &topo.a.container, topo.a.overlay_ip, 5446, &data);
    tcp_transfer(&topo.a.container, &topo.b.container, topo.b.overlay_ip, 5447, &data);
    let stats = topo.a.daemon().stats();
    let completed = stats.total("csum_completed");
    assert!(completed > 1000, "vxdp completed {completed} inner checksums for its ports; stats: {}", stats.0);
}
