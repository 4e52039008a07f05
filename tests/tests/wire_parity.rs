//! Wire behaviour against the kernel vxlan device given the same crafted frames
//! (host A runs vxdp, host B the kernel; each case is sent to both and both must
//! answer alike):
//! - ECN on decap (RFC 6040): an outer CE over an ECT(0) inner packet arrives in the
//!   container marked CE (with a valid IPv4 checksum); over a not-ECT inner packet it
//!   is dropped (vxdp counts `drop_ecn_ce_not_ect`); an unmarked outer header leaves
//!   the inner ECN alone.
//! - ECN on encap: the outer TOS carries the inner ECT(0), and ECT(0) for an inner CE.
//! - A VLAN-tagged inner frame of full MTU size (1450 + 14 + 4 bytes) is delivered
//!   by both; 1473 tagged or 1469 untagged bytes by neither. (The kernel delivers
//!   tagged frames of 1469-1472 bytes too: it lifts the tag before measuring.)
//!
//! - A VXLAN frame to another host's MAC (`PACKET_OTHERHOST`), or under an outer
//!   802.1Q tag with no VLAN device for it, is ignored by both; to the device's own
//!   MAC it is delivered.
//!
//! Crafted VXLAN datagrams come from a UDP socket in the other host (the kernel adds
//! the outer headers; `IP_TOS` sets the outer ECN bits); an `AF_PACKET` capture in
//! the target container, or on host B's underlay, sees what arrived.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;
use vxdp_tests::capture::Capture;
use vxdp_tests::topology::VNI;
use vxdp_tests::traffic::ping;
use vxdp_tests::vtep::VXLAN_PORT;
use vxdp_tests::{in_netns, require_root, serial, Host, Side, Topology, VtepKind};

const PROBE_PORT: u16 = 5301;
const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x55];

fn topology() -> Topology {
    let topo = Topology::with_vteps(VtepKind::Vxdp, VtepKind::Kernel);
    for side in [Side::A, Side::B] {
        ping(&topo.host(side).container, topo.host(side.peer()).overlay_ip);
    }
    topo
}

fn mac_bytes(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s.split(':').map(|x| u8::from_str_radix(x, 16).unwrap()).collect();
    v.try_into().unwrap()
}

fn ip4(s: &str) -> [u8; 4] {
    s.parse::<std::net::Ipv4Addr>().unwrap().octets()
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet/IPv4/UDP frame to `to`'s container, `tos` in the IPv4 header, the
/// marker as payload, UDP checksum 0.
fn inner_to(to: &Host, tos: u8, marker: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&mac_bytes(&to.container_mac()));
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + marker.len()) as u16;
    let mut ip = vec![0x45, tos];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&[198, 51, 100, 55]);
    ip.extend_from_slice(&ip4(to.overlay_ip));
    let c = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&PROBE_PORT.to_be_bytes());
    f.extend_from_slice(&(8 + marker.len() as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(marker);
    f
}

/// Sends `inner` in VXLAN from the other host's underlay to `to`'s, outer TOS `tos`.
fn send_vxlan(topo: &Topology, to: Side, tos: u8, inner: &[u8]) {
    let (from, dst) = (topo.host(to.peer()), topo.host(to));
    let sock = in_netns(&from.ns, || UdpSocket::bind((from.underlay_ip, 0))).expect("UDP socket");
    let tos = i32::from(tos);
    // SAFETY: a valid socket and a pointer to an int of the size given.
    let rc =
        unsafe { libc::setsockopt(sock.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TOS, (&tos as *const i32).cast(), 4) };
    assert_eq!(rc, 0, "IP_TOS");
    let v = VNI.to_be_bytes();
    let mut d = vec![0x08, 0, 0, 0, v[1], v[2], v[3], 0];
    d.extend_from_slice(inner);
    sock.send_to(&d, (dst.underlay_ip, VXLAN_PORT)).expect("send VXLAN");
}

/// The IPv4 TOS of the frame carrying `marker` the capture saw (and whether its
/// header checksum is valid).
fn seen_tos(frames: &[Vec<u8>], marker: &[u8]) -> Option<(u8, bool)> {
    frames.iter().find(|f| f.len() >= 42 + marker.len() && f.ends_with(marker) && f[12..14] == [8, 0]).map(|f| {
        let h = &f[14..34];
        (h[1], ipv4_checksum(h) == 0)
    })
}

#[test]
fn ecn_decap_like_the_kernel() {
    if !require_root("ecn_decap_like_the_kernel") {
        return;
    }
    let _serial = serial();
    let topo = topology();
    // (outer TOS, inner TOS, what the container must see: Some(inner TOS) or dropped).
    let cases = [(0x03, 0x02, Some(0x03)), (0x03, 0x00, None), (0x00, 0x02, Some(0x02)), (0x01, 0x02, Some(0x01))];
    for side in [Side::A, Side::B] {
        let cap = Capture::start(&topo.host(side).container, "eth0");
        for (i, (outer, inner, want)) in cases.into_iter().enumerate() {
            let marker = format!("ecn-decap-{side:?}-{i}");
            send_vxlan(&topo, side, outer, &inner_to(topo.host(side), inner, marker.as_bytes()));
            std::thread::sleep(Duration::from_millis(300));
            let got = seen_tos(&cap.drain(), marker.as_bytes());
            let vtep = if side == Side::A { "vxdp" } else { "kernel" };
            assert_eq!(
                got.map(|(t, _)| t),
                want,
                "{vtep}: outer TOS {outer:#04x} over inner {inner:#04x}: the container saw TOS {got:?}"
            );
            if let Some((_, valid)) = got {
                assert!(valid, "{vtep}: the inner IPv4 checksum is wrong after the ECN step");
            }
        }
    }
    let stats = topo.a.daemon().stats();
    assert_eq!(stats.total("drop_ecn_ce_not_ect"), 1, "{}", stats.0);
}

#[test]
fn ecn_encap_like_the_kernel() {
    if !require_root("ecn_encap_like_the_kernel") {
        return;
    }
    let _serial = serial();
    let topo = topology();
    // Host B's underlay sees what vxdp sends (incoming) and what the kernel sends.
    let cap = Capture::start(&topo.b.ns, "eth0");
    for side in [Side::A, Side::B] {
        let (from, to) = (topo.host(side), topo.host(side.peer()));
        for (inner, want) in [(0x02u8, 0x02u8), (0x03, 0x02), (0x00, 0x00), (0x01, 0x01)] {
            let marker = format!("ecn-encap-{side:?}-{inner}");
            let sock = in_netns(&from.container, || UdpSocket::bind("0.0.0.0:0")).expect("UDP");
            let tos = i32::from(0x20 | inner);
            // SAFETY: a valid socket and a pointer to an int of the size given.
            let rc = unsafe {
                libc::setsockopt(sock.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TOS, (&tos as *const i32).cast(), 4)
            };
            assert_eq!(rc, 0, "IP_TOS");
            sock.send_to(marker.as_bytes(), (to.overlay_ip, PROBE_PORT)).expect("send");
            std::thread::sleep(Duration::from_millis(300));
            let frames = cap.drain_all();
            let outer = frames
                .iter()
                .find(|f| f.len() > 50 && f[36..38] == VXLAN_PORT.to_be_bytes() && f.ends_with(marker.as_bytes()))
                .unwrap_or_else(|| panic!("{side:?}: no VXLAN frame carrying {marker} on B's underlay"));
            let vtep = if side == Side::A { "vxdp" } else { "kernel" };
            assert_eq!(outer[15] & 3, want, "{vtep}: inner ECN {inner} gave outer TOS {:#04x}", outer[15]);
            assert_eq!(ipv4_checksum(&outer[14..34]), 0, "{vtep}: outer IPv4 checksum");
        }
    }
}

#[test]
fn tagged_full_mtu_inner_frame_delivered() {
    if !require_root("tagged_full_mtu_inner_frame_delivered") {
        return;
    }
    let _serial = serial();
    let topo = topology();
    // Room on the underlay for 1468 + 50 bytes (receiver first).
    for ns in [&topo.a.ns, &topo.b.ns] {
        ns.run("ip link set eth0 mtu 2000");
    }
    for side in [Side::A, Side::B] {
        let h = topo.host(side);
        let cap = Capture::start(&h.container, "eth0");
        // The kernel's limit is the MTU + 14 + 4 after the tag is lifted out of the frame,
        // so it delivers tagged frames up to 1472 bytes; vxdp up to 1468, tagged or not
        // (a longer one would not pass its own overlay veth): 1469-1472 differ.
        let cases = [(true, 1468, true), (true, 1473, false), (false, 1468, true), (false, 1469, false)];
        for (tagged, len, delivered) in cases {
            let mut f = Vec::new();
            f.extend_from_slice(&mac_bytes(&h.container_mac()));
            f.extend_from_slice(&SRC_MAC);
            f.extend_from_slice(if tagged { &[0x81, 0x00, 0x00, 100, 0x88, 0xb5][..] } else { &[0x88, 0xb5][..] });
            f.resize(len, 0x5a);
            send_vxlan(&topo, side, 0, &f);
            std::thread::sleep(Duration::from_millis(300));
            // The tag may be lifted into metadata before the capture sees the frame.
            let seen = cap.drain().iter().any(|g| g[6..12] == SRC_MAC && g.len() >= len - 4);
            let vtep = if side == Side::A { "vxdp" } else { "kernel" };
            assert_eq!(seen, delivered, "{vtep}: an inner frame (tagged: {tagged}) of {len} bytes delivered: {seen}");
        }
    }
    let stats = topo.a.daemon().stats();
    assert_eq!(stats.total("drop_mtu_exceeded"), 2, "{}", stats.0);
}

/// A whole VXLAN frame as a NIC receives it: outer Ethernet to `dst_mac` (with an
/// 802.1Q tag if `vlan`), IPv4 from the other host to `to`'s underlay address, UDP to
/// 4789 (checksum 0), VXLAN, `inner`.
fn raw_vxlan(topo: &Topology, to: Side, dst_mac: [u8; 6], vlan: Option<u16>, inner: &[u8]) -> Vec<u8> {
    let (from, dst) = (topo.host(to.peer()), topo.host(to));
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&mac_bytes(&vxdp_tests::traffic::underlay_mac(from)));
    if let Some(id) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&id.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let udp_len = (8 + 8 + inner.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&(20 + udp_len).to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&ip4(from.underlay_ip));
    ip.extend_from_slice(&ip4(dst.underlay_ip));
    let c = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&40001u16.to_be_bytes());
    f.extend_from_slice(&VXLAN_PORT.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    let v = VNI.to_be_bytes();
    f.extend_from_slice(&[0x08, 0, 0, 0, v[1], v[2], v[3], 0]);
    f.extend_from_slice(inner);
    f
}

#[test]
fn other_hosts_and_tagged_outer_frames_ignored_like_the_kernel() {
    if !require_root("other_hosts_and_tagged_outer_frames_ignored_like_the_kernel") {
        return;
    }
    let _serial = serial();
    let topo = topology();
    for side in [Side::A, Side::B] {
        let h = topo.host(side);
        let own = mac_bytes(&vxdp_tests::traffic::underlay_mac(h));
        let tx = Capture::start(&topo.host(side.peer()).ns, "eth0");
        let cap = Capture::start(&h.container, "eth0");
        // (what, outer destination MAC, outer tag, delivered)
        let cases = [
            ("our MAC", own, None, true),
            ("another host's MAC", [0x02, 0, 0, 0, 0, 0x99], None, false),
            ("a VLAN 100 tag, no VLAN device", own, Some(100u16), false),
        ];
        for (i, (what, dst, vlan, delivered)) in cases.into_iter().enumerate() {
            let marker = format!("outer-{side:?}-{i}");
            tx.send(&raw_vxlan(&topo, side, dst, vlan, &inner_to(h, 0, marker.as_bytes())));
            std::thread::sleep(Duration::from_millis(300));
            let seen = seen_tos(&cap.drain(), marker.as_bytes()).is_some();
            let vtep = if side == Side::A { "vxdp" } else { "kernel" };
            assert_eq!(seen, delivered, "{vtep}: VXLAN with {what} delivered: {seen}");
        }
    }
    let stats = topo.a.daemon().stats();
    assert_eq!((stats.xdp("xdp_pass_other_host"), stats.xdp("xdp_pass_vlan_tagged")), (1, 1), "{}", stats.0);
}
