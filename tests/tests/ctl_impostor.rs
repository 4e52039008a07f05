//! An impostor on the control socket's name: abstract Unix socket names belong to
//! whoever binds first, so an unprivileged process in the namespace can take
//! `@vxdp/vx0` before the daemon does. The client then refuses to send it anything,
//! naming its pid and uid (`SO_PEERCRED` of the server), and `vxdp run` refuses to
//! start, naming the pid holding the name, and leaves no device behind.

use std::process::{Command, Stdio};
use std::time::Duration;

use vxdp_tests::daemon::vxdp_bin;
use vxdp_tests::netns::run_cmd;
use vxdp_tests::{require_root, serial, wait_until, Netns};

/// Binds and listens on `@vxdp/vx0`, then sleeps (bounded; killed with the namespace).
const IMPOSTOR: &str = "import socket, time\n\
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
s.bind('\\0vxdp/vx0')\n\
s.listen(8)\n\
time.sleep(30)\n";

#[test]
fn impostor_on_the_control_socket_is_refused() {
    if !require_root("impostor_on_the_control_socket_is_refused") {
        return;
    }
    let _serial = serial();
    let ns = Netns::new("im");
    ns.run("ip link add eth0 type veth peer name eth1");
    ns.run("ip addr add 192.0.2.1/24 dev eth0");
    ns.run("ip link set eth0 up");
    ns.run("ip link set eth1 up");
    let mut impostor = Command::new("ip")
        .args(["netns", "exec", ns.name(), "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["/usr/bin/python3", "-c", IMPOSTOR])
        .stdin(Stdio::null())
        .spawn()
        .expect("start the impostor");
    let pid = impostor.id();
    let bound =
        wait_until(Duration::from_secs(5), || ns.run("cat /proc/net/unix").lines().any(|l| l.ends_with(" @vxdp/vx0")));
    assert!(bound, "the impostor never bound @vxdp/vx0");

    let bin = vxdp_bin();
    let bin = bin.to_str().expect("utf-8 path");
    let e = run_cmd(&["ip", "netns", "exec", ns.name(), bin, "stats"]).expect_err("stats talked to the impostor");
    let e = format!("{e:#}");
    assert!(e.contains("as uid 65534") && e.contains("refusing to talk to it"), "{e}");

    let e = run_cmd(&["ip", "netns", "exec", ns.name(), bin, "run", "--dev", "eth0", "--vni", "42"])
        .expect_err("vxdp run started beside the impostor");
    let e = format!("{e:#}");
    // The impostor runs as a child of setpriv's exec: the pid is python's own.
    assert!(e.contains("@vxdp/vx0 is held by pid") && e.contains("(python3)"), "{e}");
    assert!(e.contains(&format!("pid {pid} ")), "the holder is pid {pid}: {e}");
    assert!(ns.try_run("ip link show vx0").is_err(), "vx0 left behind");
    assert!(!ns.run("ip -d link show eth0").contains("xdp"), "XDP left on eth0");
    let _ = impostor.kill();
    let _ = impostor.wait();
}
