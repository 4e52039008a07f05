//! vxlan_snoop parity: host A (the kernel's vxlan device, then vxdp) receives the same
//! crafted VXLAN frames from host B, and the same ones reach A's container. With
//! learning on, the kernel drops a frame whose inner source MAC a static entry pins
//! behind another VTEP ("don't migrate static entries, drop packets"), a frame from
//! the device's own MAC (a loop) and one from a multicast MAC; vxdp must do the same,
//! and count each (`drop_src_mac_pinned`, `drop_src_mac_own`, `drop_src_mac_invalid`).

use std::time::Duration;

use vxdp_tests::raw::{inner_broadcast, mac, vxlan_frame, RawSocket, TEST_ETHERTYPE};
use vxdp_tests::topology::{link_mac, VNI};
use vxdp_tests::traffic::ping;
use vxdp_tests::vtep::kernel_vtep_with_learning;
use vxdp_tests::{require_root, serial, wait_until, Side, Topology, VtepKind};

const N: u64 = 10;
/// Pinned by a static entry behind host B (192.0.2.2).
const PINNED: &str = "02:99:00:00:00:01";
/// Nobody's: a stranger may teach it (the kernel learns it too).
const FRESH: &str = "02:99:00:00:00:02";
const MULTICAST: &str = "01:00:5e:00:00:01";

/// (outer source, inner source, frames that reach A's container, vxdp's drop counter).
fn cases(own: &str) -> Vec<(&'static str, String, u64, Option<&'static str>)> {
    vec![
        ("192.0.2.2", PINNED.to_string(), N, None),
        ("192.0.2.200", PINNED.to_string(), 0, Some("drop_src_mac_pinned")),
        ("192.0.2.2", own.to_string(), 0, Some("drop_src_mac_own")),
        ("192.0.2.2", MULTICAST.to_string(), 0, Some("drop_src_mac_invalid")),
        ("192.0.2.200", FRESH.to_string(), N, None),
    ]
}

fn check(kind: VtepKind) {
    let mut topo = Topology::new();
    match kind {
        // With learning on, as vxdp's default (the harness's kernel VTEPs do not learn).
        VtepKind::Kernel => {
            kernel_vtep_with_learning(
                &topo.a.ns,
                "vxlan0",
                VNI,
                topo.a.underlay_ip,
                "eth0",
                &[topo.b.underlay_ip],
                true,
            );
            topo.a.ns.run("ip link set vxlan0 master br0 up");
            topo.a.vtep = Some("vxlan0".into());
        }
        VtepKind::Vxdp => topo.add_vtep(Side::A, kind),
    }
    topo.add_vtep(Side::B, VtepKind::Kernel);
    ping(&topo.b.container, topo.a.overlay_ip);
    let dev = topo.a.vtep.clone().expect("A has a VTEP");
    match kind {
        VtepKind::Kernel => {
            topo.a.ns.run(format!("bridge fdb add {PINNED} dev {dev} dst 192.0.2.2 self permanent"));
        }
        VtepKind::Vxdp => {
            topo.a.daemon().ctl(&["fdb", "add", PINNED, "dst", "192.0.2.2"]).expect("vxdp fdb add");
        }
    }
    let own = link_mac(&topo.a.ns, &dev);
    let sender = RawSocket::open(&topo.b.ns, "eth0", 0);
    let capture = RawSocket::open(&topo.a.container, "eth0", TEST_ETHERTYPE);
    let (a_mac, b_mac) = (mac(&link_mac(&topo.a.ns, "eth0")), mac(&link_mac(&topo.b.ns, "eth0")));
    let a_ip = topo.a.underlay_ip.parse().unwrap();
    for (src, inner_src, delivered, counter) in cases(&own) {
        let inner_mac = mac(&inner_src);
        let before = counter.map(|c| topo.a.daemon.as_ref().map_or(0, |d| d.stats().total(c)));
        let frame = vxlan_frame(a_mac, b_mac, src.parse().unwrap(), a_ip, VNI, &inner_broadcast(inner_mac));
        sender.send(&frame, N as usize);
        let got = capture.count(
            |f| f.len() >= 12 && f[6..12] == inner_mac,
            Duration::from_millis(500),
            Duration::from_secs(3),
        );
        assert_eq!(
            got, delivered,
            "{kind:?}: {N} frames from {src} with inner source {inner_src}: {got} reached the container"
        );
        if let (Some(d), Some(c), Some(before)) = (topo.a.daemon.as_ref(), counter, before) {
            assert!(
                wait_until(Duration::from_secs(3), || d.stats().total(c) == before + N),
                "{c} should count the {N} frames from {src} with inner source {inner_src}; stats: {}",
                d.stats().0
            );
        }
    }
    if let Some(d) = topo.a.daemon.as_ref() {
        let show = d.ctl(&["fdb", "show"]).unwrap();
        assert!(show.lines().any(|l| l.starts_with(PINNED) && l.contains("dst 192.0.2.2")), "{show}");
        assert!(show.lines().any(|l| l.starts_with(FRESH) && l.contains("dst 192.0.2.200")), "{show}");
    } else {
        let show = topo.a.ns.run(format!("bridge fdb show dev {dev}"));
        assert!(show.lines().any(|l| l.starts_with(PINNED) && l.contains("dst 192.0.2.2")), "{show}");
    }
    ping(&topo.b.container, topo.a.overlay_ip);
}

#[test]
fn snoop_parity() {
    if !require_root("snoop_parity") {
        return;
    }
    let _serial = serial();
    check(VtepKind::Kernel);
    check(VtepKind::Vxdp);
}
