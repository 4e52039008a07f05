//! vxdp runs as a non-root user holding only the capabilities it needs
//! (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW, CAP_IPC_LOCK, CAP_PERFMON, as ambient
//! capabilities, as `contrib/vxdp.service` grants them), and the overlay works against
//! a kernel vxlan peer. `setpriv` starts it as uid/gid 65534 inside the test namespace.

use vxdp_tests::traffic::{ping, tcp_transfer};
use vxdp_tests::{require_root, serial, Daemon, Side, Topology, VtepKind};

/// The capabilities `contrib/vxdp.service` grants.
const CAPS: &str = "+net_admin,+bpf,+net_raw,+ipc_lock,+perfmon";

#[test]
fn runs_unprivileged() {
    if !require_root("runs_unprivileged") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    let wrapper = [
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--inh-caps",
        CAPS,
        "--ambient-caps",
        CAPS,
    ];
    let remote = topo.b.underlay_ip;
    let d = Daemon::start_wrapped(&topo.a.ns, "vx0", &wrapper, &["--dev", "eth0", "--vni", "42", "--remote", remote]);
    topo.a.daemon = Some(d);
    topo.a.ns.run("ip link set vx0 master br0 up");
    topo.a.vtep = Some("vx0".into());
    topo.add_vtep(Side::B, VtepKind::Kernel);
    let pid = topo.a.daemon().pid().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap().to_string();
    assert!(uid.split_whitespace().nth(2) == Some("65534"), "not unprivileged: {uid}");
    ping(&topo.b.container, topo.a.overlay_ip);
    ping(&topo.a.container, topo.b.overlay_ip);
    tcp_transfer(&topo.a.container, &topo.b.container, topo.b.overlay_ip, 5201, &vec![7u8; 1 << 20]);
    let d = topo.a.daemon.as_mut().unwrap();
    assert!(d.is_alive(), "{}", d.log_text());
}
