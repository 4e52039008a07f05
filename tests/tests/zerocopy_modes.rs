//! `--zerocopy`: each worker registers its memory twice, once per socket, so the
//! underlay socket can bind zero-copy beside the overlay veth's copy-mode socket. On a
//! veth underlay (no zero-copy driver), `on` must fail clearly and leave nothing behind;
//! `auto` (the default) must bind both sockets in copy mode through the same path and
//! carry the overlay, with the log naming each socket's mode.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vxdp_tests::daemon::{datapath, vxdp_bin};
use vxdp_tests::traffic::check_overlay;
use vxdp_tests::{require_root, serial, Side, Topology, VtepKind};

/// Runs `vxdp run ARGS` in `ns` and returns its exit status and output; kills it if it
/// is still running after 15 s (it was expected to fail at start).
fn run_to_exit(ns: &str, args: &[&str]) -> (Option<i32>, String) {
    let log = std::env::temp_dir().join(format!("vxdp-zerocopy-on-{}.log", std::process::id()));
    let out = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(vxdp_bin())
        .arg("run")
        .args(args)
        .args(datapath().args())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .spawn()
        .expect("start vxdp");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    (status, text)
}

#[test]
fn zerocopy_on_fails_clearly_on_veth_and_auto_binds_copy_mode() {
    if !require_root("zerocopy_on_fails_clearly_on_veth_and_auto_binds_copy_mode") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep(Side::B, VtepKind::Kernel);

    let (status, out) = run_to_exit(
        topo.a.ns.name(),
        &["--name", "vx0", "--dev", "eth0", "--vni", "42", "--remote", "192.0.2.2", "--zerocopy", "on"],
    );
    assert!(status.is_some_and(|c| c != 0), "--zerocopy on on a veth did not fail (status {status:?}):\n{out}");
    assert!(
        out.contains("--zerocopy on: eth0 queue 0 cannot bind AF_XDP in zero-copy mode"),
        "the error does not name the flag, the device and the reason:\n{out}"
    );
    // Nothing half-started: the overlay device is gone again.
    assert!(topo.a.ns.try_run("ip link show vx0").is_err(), "vx0 left behind after the failed start");

    topo.add_vtep_with(Side::A, VtepKind::Vxdp, &["--zerocopy", "auto"]);
    check_overlay(&topo);
    let log = topo.a.daemon().log_text();
    assert!(
        log.contains("AF_XDP on eth0 queue 0 bound in copy mode (--zerocopy auto), on vxdp-vx0 queue 0 in copy mode"),
        "the log does not name both sockets' modes:\n{log}"
    );
}
