//! Malformed VXLAN datagrams sent to vxdp are dropped, each counted under
//! its own reason, and the daemon keeps forwarding afterwards. VXLAN for a VNI
//! vxdp does not serve is not vxdp's to drop: it is passed to the kernel (whose
//! own vxlan device for that VNI would take it) and counted as passed.
//!
//! The datagrams come from a normal UDP socket in host B (the kernel adds
//! the outer Ethernet/IPv4/UDP headers); only the VXLAN header and inner
//! frame are crafted.

use std::net::UdpSocket;
use std::time::Duration;

use vxdp_tests::topology::VNI;
use vxdp_tests::traffic::ping;
use vxdp_tests::vtep::VXLAN_PORT;
use vxdp_tests::{in_netns, require_root, serial, wait_until, Side, Stats, Topology, VtepKind};

/// Datagrams of each kind.
const N: u64 = 5;
/// VXLAN header flags: the I (valid VNI) bit.
const FLAG_I: u8 = 0x08;
/// Length of the VXLAN header.
const VXLAN_HLEN: usize = 8;
/// Underlay MTU raised to after vxdp started, so an inner frame larger
/// than the overlay MTU (1450, fixed when vx0 was created) can arrive
/// unfragmented. Kept well below what a veth whose peer has a
/// non-frags XDP program accepts (about 3.5 KB).
const BIG_UNDERLAY_MTU: u32 = 2000;
/// Inner frame length above 1450 + 14 that fits [`BIG_UNDERLAY_MTU`].
const OVERSIZED_INNER: usize = 1700;

/// The drop counters this test looks at, and the XDP program's count of VXLAN
/// passed for an unserved VNI.
const DROPS: [&str; 5] = ["drop_wrong_vni", "drop_bad_flags", "drop_truncated", "drop_mtu_exceeded", PASSED_OTHER_VNI];
const PASSED_OTHER_VNI: &str = "xdp_pass_other_vni";

/// A VXLAN header: flags, 3 reserved bytes, 24-bit VNI, 1 reserved byte.
fn vxlan_header(flags: u8, vni: u32) -> [u8; VXLAN_HLEN] {
    let v = vni.to_be_bytes();
    [flags, 0, 0, 0, v[1], v[2], v[3], 0]
}

/// A broadcast Ethernet frame of `len` bytes with the local experimental
/// EtherType 0x88b5 and a locally administered source MAC.
fn inner_frame(len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(14)];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f.truncate(len);
    f
}

fn datagram(header: &[u8], inner: &[u8]) -> Vec<u8> {
    [header, inner].concat()
}

fn drops(stats: &Stats) -> Vec<(&'static str, u64)> {
    DROPS.iter().map(|k| (*k, if *k == PASSED_OTHER_VNI { stats.xdp(k) } else { stats.total(k) })).collect()
}

#[test]
fn bad_input_counted() {
    if !require_root("bad_input_counted") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep(Side::A, VtepKind::Vxdp);
    topo.add_vtep(Side::B, VtepKind::Kernel);
    ping(&topo.b.container, topo.a.overlay_ip);

    // Receiver side first: a veth drops frames above its own MTU.
    topo.a.ns.run(format!("ip link set eth0 mtu {BIG_UNDERLAY_MTU}"));
    topo.b.ns.run(format!("ip link set eth0 mtu {BIG_UNDERLAY_MTU}"));

    let target = (topo.a.underlay_ip, VXLAN_PORT);
    let sock = in_netns(&topo.b.ns, || UdpSocket::bind((topo.b.underlay_ip, 0))).expect("UDP socket in B");
    let valid = vxlan_header(FLAG_I, VNI);
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("another VNI", datagram(&vxlan_header(FLAG_I, VNI + 1), &inner_frame(60)), PASSED_OTHER_VNI),
        ("I flag clear", datagram(&vxlan_header(0, VNI), &inner_frame(60)), "drop_bad_flags"),
        ("4-byte VXLAN header", valid[..4].to_vec(), "drop_truncated"),
        ("10-byte inner frame", datagram(&valid, &inner_frame(10)), "drop_truncated"),
        ("inner frame over the overlay MTU", datagram(&valid, &inner_frame(OVERSIZED_INNER)), "drop_mtu_exceeded"),
    ];

    let daemon = topo.a.daemon();
    for (what, payload, counter) in &cases {
        let before = drops(&daemon.stats());
        for _ in 0..N {
            sock.send_to(payload, target).unwrap_or_else(|e| panic!("send {what}: {e}"));
        }
        let want: Vec<_> = before.iter().map(|&(k, v)| (k, if k == *counter { v + N } else { v })).collect();
        let mut got = before.clone();
        wait_until(Duration::from_secs(3), || {
            got = drops(&daemon.stats());
            got == want
        });
        assert_eq!(
            got,
            want,
            "{N} datagrams with {what}: expected only {counter} to rise by {N}; stats: {}",
            daemon.stats().0
        );
    }

    let daemon = topo.a.daemon.as_mut().expect("daemon");
    assert!(daemon.is_alive(), "vxdp died on bad input; log:\n{}", daemon.log_text());
    ping(&topo.b.container, topo.a.overlay_ip);
    ping(&topo.a.container, topo.b.overlay_ip);
}
