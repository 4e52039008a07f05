//! Until vxdp has an IPv6 underlay, an IPv6 remote VTEP is refused the same way from
//! every input, with an error naming it (before this, `vxdp fdb` and `--fdb` accepted
//! one, which then blackholed its frames and was re-resolved every second): `vxdp fdb`
//! on a running daemon, a `--fdb` file (the daemon does not start), `--remote`.

use vxdp_tests::daemon::vxdp_bin;
use vxdp_tests::{require_root, serial, Side, Topology, VtepKind};

#[test]
fn ipv6_refused() {
    if !require_root("ipv6_refused") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep(Side::A, VtepKind::Vxdp);
    let d = topo.a.daemon();
    for op in ["add", "append", "replace"] {
        let e = d.ctl(&["fdb", op, "02:00:00:00:00:07", "dst", "2001:db8::7", "dev", "vx0"]).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("dst 2001:db8::7: IPv6 underlay is not supported yet"), "fdb {op}: {e}");
    }
    let shown = d.ctl(&["fdb", "show", "dev", "vx0"]).expect("fdb show");
    assert!(!shown.contains("2001:db8"), "{shown}");
    assert_eq!(d.stats().0["resolved_remotes"], 1, "only the IPv4 remote");

    let bin = vxdp_bin();
    let bin = bin.to_string_lossy();
    let file = std::env::temp_dir().join(format!("vxdp-ipv6-{}.fdb", std::process::id()));
    std::fs::write(&file, "02:00:00:00:00:08 dst 2001:db8::8\n").expect("write fdb file");
    let ns = &topo.b.ns;
    let run = |extra: &str| {
        ns.try_run(format!("{bin} run --name vx9 --dev eth0 --vni 42 {extra}")).expect_err("vxdp run must refuse")
    };
    let e = format!("{:#}", run(&format!("--fdb {}", file.display())));
    let _ = std::fs::remove_file(&file);
    assert!(e.contains("dst 2001:db8::8: IPv6 underlay is not supported yet"), "--fdb: {e}");
    let e = format!("{:#}", run("--remote 2001:db8::9"));
    assert!(e.contains("--remote 2001:db8::9") && e.contains("IPv6"), "--remote: {e}");
    assert!(ns.try_run("ip link show vx9").is_err(), "a refused run leaves no device");
}
