//! Least privilege once running: vxdp started as root keeps only the capabilities its
//! running life needs (CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK,
//! CAP_SYS_NICE, CAP_PERFMON, CAP_BPF), in every thread, with no_new_privs set and the
//! bounding set reduced alike; it still carries the overlay to a kernel peer, changes
//! its FDB, and on SIGTERM removes `vx0` and its XDP programs.

use vxdp_tests::traffic::check_overlay;
use vxdp_tests::{require_root, serial, wait_until, Topology, VtepKind};

/// The capabilities kept (include/uapi/linux/capability.h numbers).
const KEPT: u64 = (1 << 10) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 23) | (1 << 38) | (1 << 39);

fn field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in:\n{status}"))
        .trim()
        .to_string()
}

#[test]
fn capabilities_dropped_after_setup() {
    if !require_root("capabilities_dropped_after_setup") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::with_vteps(VtepKind::Vxdp, VtepKind::Kernel);
    check_overlay(&topo);
    let pid = topo.a.daemon().pid().expect("daemon pid");
    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks").flatten().collect();
    assert!(tasks.len() >= 3, "the main thread, a worker and the control socket at least: {}", tasks.len());
    for task in tasks {
        let status = std::fs::read_to_string(task.path().join("status")).expect("status");
        let name = field(&status, "Name:");
        for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
            let caps = u64::from_str_radix(&field(&status, set), 16).expect("hex");
            assert_eq!(caps & !KEPT, 0, "thread {name}: {set} {caps:#x} holds more than {KEPT:#x}");
        }
        assert_eq!(u64::from_str_radix(&field(&status, "CapInh:"), 16), Ok(0), "thread {name}: inheritable");
        assert_eq!(field(&status, "NoNewPrivs:"), "1", "thread {name}: no_new_privs");
    }
    let eff =
        u64::from_str_radix(&field(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap(), "CapEff:"), 16);
    assert_eq!(eff.map(|e| e & (1 << 12)), Ok(1 << 12), "CAP_NET_ADMIN kept");
    assert!(topo.a.daemon().log_text().contains("capabilities reduced to"), "{}", topo.a.daemon().log_text());

    // Still able to change what it serves, and to tear down.
    topo.a.daemon().ctl(&["fdb", "add", "02:55:00:00:00:01", "dst", "192.0.2.2"]).expect("fdb add");
    let daemon = topo.a.daemon.as_mut().expect("daemon");
    let status = daemon.stop().expect("exit status");
    assert!(status.success(), "vxdp exited {status}: {}", daemon.log_text());
    let gone = wait_until(std::time::Duration::from_secs(3), || topo.a.ns.try_run("ip link show vx0").is_err());
    assert!(gone, "vx0 left behind");
    assert!(!topo.a.ns.run("ip -d link show eth0").contains("prog/xdp"), "XDP left on eth0");
}
