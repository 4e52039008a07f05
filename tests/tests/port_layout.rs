//! vxdp's port layout: two containers on host A whose veths vxdp serves as ports (no
//! bridge), one container behind a kernel-vxlan host B. Local (A↔A) and remote (A↔B)
//! ping and 10 MB TCP arrive byte-identical; a broadcast reaches every port and the
//! remote; `vxdp port del` while running stops serving a port (and `port add` brings it
//! back); a MAC moving from a local port to the remote is followed; a port whose
//! container end lost NAPI is named in the log; bad requests are refused; a port whose
//! container goes is removed. The datapath of the
//! run carried it: with the express path XDP switched and (de)capsulated most unicast,
//! with `afxdp` the workers did all of it.

use std::time::Duration;
use vxdp_tests::topology::{link_mac, A2_IP, A2_VETH};
use vxdp_tests::traffic::{has_xdp, ping, random_bytes, tcp_transfer, udp_broadcast, TCP_PORT, TRANSFER_LEN};
use vxdp_tests::{datapath, require_root, serial, wait_until, PortTopology};

#[test]
fn port_layout() {
    if !require_root("port_layout") {
        return;
    }
    let _serial = serial();
    let pt = PortTopology::new(&[]);
    let (a, b, a2) = (&pt.topo.a, &pt.topo.b, &pt.a2);
    let (a1, cb) = (&a.container, &b.container);
    let daemon = a.daemon();

    // Both ports are served: XDP on each, no bridge in between.
    for port in ["vethc", A2_VETH] {
        assert!(has_xdp(&a.ns, port), "{port} is a port but has no XDP program");
        let master = a.ns.run(format!("ip -j link show dev {port}"));
        assert!(!master.contains("\"master\""), "{port} is still in a bridge: {master}");
    }

    // Local and remote, both ways: ping, then 10 MB of TCP.
    for (from, to_ip) in [(a1, A2_IP), (a2, a.overlay_ip), (a1, b.overlay_ip), (cb, A2_IP), (a2, b.overlay_ip)] {
        ping(from, to_ip);
    }
    let data = random_bytes(TRANSFER_LEN);
    tcp_transfer(a1, a2, A2_IP, TCP_PORT, &data);
    tcp_transfer(a2, cb, b.overlay_ip, TCP_PORT, &data);
    tcp_transfer(cb, a1, a.overlay_ip, TCP_PORT, &data);

    // A broadcast from a port reaches the other port and the remote; one from the
    // remote reaches both ports.
    udp_broadcast(a1, a2, "198.51.100.255");
    udp_broadcast(a1, cb, "198.51.100.255");
    udp_broadcast(cb, a1, "198.51.100.255");
    udp_broadcast(cb, a2, "198.51.100.255");

    // Each container's MAC was learned on its port; every port moved frames both ways.
    let (mac1, mac2) = (link_mac(a1, "eth0"), link_mac(a2, "eth0"));
    assert!(pt.port_macs("vethc").contains(&mac1), "vethc lacks {mac1}: {}", pt.ports());
    assert!(pt.port_macs(A2_VETH).contains(&mac2), "{A2_VETH} lacks {mac2}: {}", pt.ports());
    for p in pt.ports().as_array().expect("port show is a list") {
        for key in ["rx_frames", "tx_frames"] {
            assert!(p[key].as_u64().unwrap_or(0) > 0, "port {}: {key} is 0: {p}", p["name"]);
        }
    }

    // The datapath of this run carried it, and the totals count every switched frame.
    let stats = daemon.stats();
    let switched_xdp = stats.xdp("xdp_port_switched");
    let switched = stats.total("port_tx_frames");
    // The 10 MB from CA to CA2 alone is more than TRANSFER_LEN / 1500 frames.
    assert!(switched >= TRANSFER_LEN as u64 / 1500, "10 MB A↔A took {switched} switched frames: {}", stats.0);
    assert!(stats.total("port_flooded") > 0, "no port flood counted: {}", stats.0);
    if datapath().express() {
        assert!(2 * switched_xdp >= switched, "XDP switched {switched_xdp} of {switched}: {}", stats.0);
        for x in ["xdp_express_decap", "xdp_express_encap"] {
            assert!(stats.xdp(x) > TRANSFER_LEN as u64 / 1500, "{x} with the express path: {}", stats.0);
        }
    } else {
        for x in ["xdp_port_switched", "xdp_express_decap", "xdp_express_encap"] {
            assert_eq!(stats.xdp(x), 0, "{x} with --datapath afxdp: {}", stats.0);
        }
        assert!(stats.xdp("xdp_trunk_delivered") >= switched, "afxdp: {}", stats.0);
    }

    // `port del` while running: the port is no longer served (no XDP, not listed, no
    // traffic), the others still are; `port add` serves it again.
    daemon.ctl(&["port", "del", A2_VETH, "dev", "vx0"]).expect("vxdp port del");
    assert!(!has_xdp(&a.ns, A2_VETH), "{A2_VETH} keeps XDP after port del");
    assert!(pt.port_macs(A2_VETH).is_empty() && pt.ports().as_array().unwrap().len() == 1, "{}", pt.ports());
    assert!(a1.try_run(format!("ping -c 2 -W 1 {A2_IP}")).is_err(), "{A2_IP} still answers after port del");
    ping(a1, b.overlay_ip);
    let e = daemon.ctl(&["port", "del", A2_VETH, "dev", "vx0"]).expect_err("deleting a deleted port");
    assert!(format!("{e:#}").contains("not a port"), "{e:#}");
    daemon.ctl(&["port", "add", A2_VETH, "dev", "vx0"]).expect("vxdp port add again");
    ping(a1, A2_IP);

    // A MAC moves from a local port to the remote: CA2 goes quiet and CB takes its MAC.
    // vxdp forgets it on the port, learns it behind B, and sends to it there.
    a2.run("ip link set eth0 down");
    cb.run(format!("ip link set dev eth0 address {mac2}"));
    ping(cb, a.overlay_ip);
    let moved = wait_until(Duration::from_secs(5), || !pt.port_macs(A2_VETH).contains(&mac2));
    assert!(moved, "{mac2} is still on {A2_VETH} after it moved behind B: {}", pt.ports());
    let fdb = daemon.ctl(&["fdb", "show", "dev", "vx0"]).expect("fdb show");
    assert!(
        fdb.lines().any(|l| l.to_lowercase().starts_with(&mac2) && l.contains(b.underlay_ip)),
        "{mac2} was not learned behind {}: {fdb}",
        b.underlay_ip
    );
    tcp_transfer(a1, cb, b.overlay_ip, TCP_PORT, &random_bytes(1024 * 1024));

    // A port whose container end has no NAPI drops what vxdp delivers into it, silently
    // for XDP: vxdp notices and names the port in its log.
    a1.run("ethtool -K eth0 gro off");
    let _ = cb.try_run(format!("ping -c 10 -i 0.2 -W 1 {}", a.overlay_ip));
    let warned = wait_until(Duration::from_secs(10), || daemon.log_text().contains("port vethc: it passed on"));
    assert!(warned, "no warning about vethc's peer without NAPI; log:\n{}", daemon.log_text());

    // Bad requests are refused naming the problem; a port whose interface is deleted
    // (its container went) is removed by vxdp itself.
    a.ns.run("ip link add br0-port type veth peer name br0-peer");
    a.ns.run("ip link set br0-port master br0");
    for (args, says) in [
        (&["port", "add", "nosuch0"][..], "nosuch0"),
        (&["port", "add", "eth0"], "vxdp's own interface"),
        (&["port", "add", "vethc"], "already a port"),
        (&["port", "add", "br0-port"], "is in br0"),
        (&["port", "frobnicate"], "expected add, del or show"),
    ] {
        let e = daemon.ctl(&[args, &["dev", "vx0"]].concat()).expect_err("a bad port request");
        assert!(format!("{e:#}").contains(says), "vxdp {args:?}: {e:#}");
    }
    a2.run("ip link del eth0");
    let gone = wait_until(Duration::from_secs(5), || pt.ports().as_array().is_some_and(|p| p.len() == 1));
    assert!(gone, "{A2_VETH} is still a port after its container went: {}", pt.ports());
}
