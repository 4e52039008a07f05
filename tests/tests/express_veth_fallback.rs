//! vxdp on host A, the kernel vxlan device on host B, and B's end of the underlay veth
//! without NAPI (GRO off): the kernel then drops every frame A's express path redirects
//! into its underlay veth, with no error XDP could see. The daemon must notice (the
//! veth's `xdp_xmit` statistics fall behind the express encap counter), turn express
//! encap off and let the workers encapsulate: the overlay works, and the log says why.
//! With `--datapath afxdp` nothing is redirected, so nothing is turned off.

use std::thread::sleep;
use std::time::{Duration, Instant};

use vxdp_tests::daemon::datapath;
use vxdp_tests::traffic::check_overlay;
use vxdp_tests::{require_root, serial, Topology, VtepKind};

const FALLBACK: &str = "express encap is off and the workers encapsulate";

/// How long the express path may take to give up: the control loop wants two windows
/// of at least 8 express-encapsulated frames in a row with most of them lost; a loaded
/// CI machine can take several rounds.
const FALLBACK_WITHIN: Duration = Duration::from_secs(20);

#[test]
fn express_encap_falls_back_when_the_underlay_peer_has_no_napi() {
    if !require_root("express_encap_falls_back_when_the_underlay_peer_has_no_napi") {
        return;
    }
    let _serial = serial();
    let topo = Topology::with_vteps(VtepKind::Vxdp, VtepKind::Kernel);
    topo.b.ns.run("ethtool -K eth0 gro off");
    if datapath().express() {
        // Until the fallback, the express path's frames are lost: feed it short
        // bursts of pings (their loss expected) until the daemon says it gave up,
        // then hold the overlay to the full check.
        let start = Instant::now();
        while !topo.a.daemon().log_text().contains(FALLBACK) {
            assert!(
                start.elapsed() < FALLBACK_WITHIN,
                "no express fallback within {FALLBACK_WITHIN:?}:\n{}",
                topo.a.daemon().log_text()
            );
            let _ = topo.a.container.try_run(format!("ping -c 4 -i 0.2 -W 1 {}", topo.b.overlay_ip));
            sleep(Duration::from_millis(100));
        }
    }
    check_overlay(&topo);
    let log = topo.a.daemon().log_text();
    match datapath().express() {
        false => assert!(!log.contains(FALLBACK), "afxdp redirects nothing, yet:\n{log}"),
        true => {
            assert!(log.contains(FALLBACK), "the express path never gave up on the dropping underlay:\n{log}");
            let s = topo.a.daemon().stats();
            assert!(s.total("encap_frames") > s.xdp("xdp_express_encap"), "the workers took over encap: {}", s.0);
        }
    }
}
