//! Overlay peer names: a long `--name` gets a hashed peer name (two names that share
//! a 10-character prefix no longer share a peer), and vxdp never deletes a device it
//! did not create: a foreign device with the peer's name stops `vxdp run` with a
//! message naming it, and survives. A pair a killed vxdp left behind is still removed.

use vxdp_tests::daemon::{datapath, vxdp_bin};
use vxdp_tests::netns::run_cmd;
use vxdp_tests::{require_root, serial, Daemon, Topology};

#[test]
fn name_collisions() {
    if !require_root("name_collisions") {
        return;
    }
    let _serial = serial();
    let topo = Topology::new();
    let ns = &topo.a.ns;
    ns.run("ip link add vxdp-vx9 type bridge");
    let bin = vxdp_bin();
    let mut argv = vec!["ip", "netns", "exec", ns.name(), bin.to_str().unwrap(), "run", "--name", "vx9"];
    argv.extend_from_slice(&["--dev", "eth0", "--vni", "42"]);
    argv.extend_from_slice(datapath().args());
    let e = run_cmd(&argv).expect_err("vxdp run took over a foreign device");
    let e = format!("{e:#}");
    assert!(e.contains("vxdp-vx9") && e.contains("not the overlay pair"), "{e}");
    ns.run("ip link show vxdp-vx9"); // still there

    // A long name: its peer is hashed, not truncated.
    let mut d = Daemon::start(ns, "tenant-aaa1", &["--dev", "eth0", "--vni", "42"]);
    let links = ns.run("ip -o link show");
    assert!(!links.contains("vxdp-tenant-aa"), "{links}");
    let peer = links
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().split('@').next().unwrap_or("").to_string()))
        .find(|n| n.starts_with("vx-"))
        .unwrap_or_else(|| panic!("no hashed peer in {links}"));
    assert_eq!(peer.len(), 15, "{peer}");
    // Killed, it leaves its pair behind; the next run recognises it as ours and removes it.
    d.kill_hard();
    ns.run(format!("ip link show {peer}"));
    let d = Daemon::start(ns, "tenant-aaa1", &["--dev", "eth0", "--vni", "42"]);
    assert!(d.log_text().contains("left behind"), "{}", d.log_text());
}
