//! `--ttl`, `--tos` and `--df` against the kernel's `ttl`, `tos` and `df`: vxdp on
//! host A and a kernel vxlan device on host B get the same knobs, the same probes are
//! sent from the container behind each, and the outer IPv4 headers both VTEPs put on
//! them (captured on B's underlay) must carry the same TTL, TOS and DF bit, each the
//! value the knob documents. The probes are unicast IPv4 (the express path's encap in
//! `auto`), broadcast IPv4, IPv6 multicast and a frame that is not IP (all three the
//! workers' flood path), with different TTLs, TOS values and DF bits inside.

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use vxdp_tests::capture::Capture;
use vxdp_tests::topology::VNI;
use vxdp_tests::traffic::ping;
use vxdp_tests::vtep::{kernel_vtep_opts, VXLAN_PORT};
use vxdp_tests::{in_netns, require_root, serial, wait_until, Host, Side, Topology, VtepKind};

const PROBE_PORT: u16 = 5302;
/// Ethertype of the non-IP probe (local experimental).
const NON_IP: u16 = 0x88b5;

/// One probe: how the inner packet is sent.
#[derive(Clone, Copy, Debug)]
enum Probe {
    /// UDP to the peer container: TTL, TOS, DF.
    Unicast(u8, u8, bool),
    /// UDP to the overlay broadcast address: TTL, TOS, DF.
    Broadcast(u8, u8, bool),
    /// UDP to ff02::1: hop limit, traffic class.
    Multicast6(u8, u8),
    /// A broadcast Ethernet frame of another ethertype.
    NonIp,
}

const PROBES: [Probe; 5] = [
    Probe::Unicast(7, 0xba, true),
    Probe::Unicast(200, 0x00, false),
    Probe::Broadcast(33, 0x28, true),
    Probe::Multicast6(9, 0x48),
    Probe::NonIp,
];

/// The outer (TTL, TOS, DF) of one probe's VXLAN frame.
type Outer = (u8, u8, bool);

fn setsockopt(sock: &UdpSocket, level: i32, name: i32, value: i32) {
    // SAFETY: a valid socket and a pointer to an int of the size given.
    let rc = unsafe { libc::setsockopt(sock.as_raw_fd(), level, name, (&value as *const i32).cast(), 4) };
    assert_eq!(rc, 0, "setsockopt({level}, {name}): {}", std::io::Error::last_os_error());
}

/// Sends `probe` carrying `marker` from `from`'s container toward `to`'s.
fn send(from: &Host, to: &Host, probe: Probe, marker: &[u8]) {
    let c = &from.container;
    match probe {
        Probe::Unicast(ttl, tos, df) | Probe::Broadcast(ttl, tos, df) => {
            let sock = in_netns(c, || UdpSocket::bind("0.0.0.0:0")).expect("UDP socket");
            setsockopt(&sock, libc::IPPROTO_IP, libc::IP_TTL, ttl.into());
            setsockopt(&sock, libc::IPPROTO_IP, libc::IP_TOS, tos.into());
            let pmtu = if df { libc::IP_PMTUDISC_DO } else { libc::IP_PMTUDISC_DONT };
            setsockopt(&sock, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, pmtu);
            let dst = match probe {
                Probe::Unicast(..) => to.overlay_ip,
                _ => {
                    sock.set_broadcast(true).expect("SO_BROADCAST");
                    "198.51.100.255"
                }
            };
            sock.send_to(marker, (dst, PROBE_PORT)).expect("send");
        }
        Probe::Multicast6(hops, tclass) => {
            let ifindex: u32 = c.run("cat /sys/class/net/eth0/ifindex").trim().parse().expect("ifindex");
            let sock = in_netns(c, || UdpSocket::bind("[::]:0")).expect("UDP6 socket");
            setsockopt(&sock, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, hops.into());
            setsockopt(&sock, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, tclass.into());
            let dst = SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), PROBE_PORT, 0, ifindex);
            sock.send_to(marker, dst).expect("send6");
        }
        Probe::NonIp => {
            let src: Vec<u8> =
                from.container_mac().split(':').map(|x| u8::from_str_radix(x, 16).expect("MAC")).collect();
            let mut frame = vec![0xff; 6];
            frame.extend_from_slice(&src);
            frame.extend_from_slice(&NON_IP.to_be_bytes());
            // Padded to the minimum frame size in front of the marker, which stays last.
            frame.resize(60usize.saturating_sub(marker.len()).max(frame.len()), 0);
            frame.extend_from_slice(marker);
            Capture::start(c, "eth0").send(&frame);
        }
    }
}

/// The outer header of the VXLAN frame on B's underlay whose inner frame carries `marker`.
fn outer_of(frames: &[Vec<u8>], marker: &[u8], vtep: &str, probe: Probe) -> Outer {
    let outer = frames
        .iter()
        .find(|f| f.len() > 50 && f[36..38] == VXLAN_PORT.to_be_bytes() && f.ends_with(marker))
        .unwrap_or_else(|| panic!("{vtep}: no VXLAN frame carrying {probe:?} on B's underlay"));
    let mut sum: u32 = outer[14..34].chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    assert_eq!(sum, 0xffff, "{vtep}: outer IPv4 checksum of {probe:?} is wrong");
    (outer[22], outer[15], outer[20] & 0x40 != 0)
}

/// vxdp on A with `vxdp_args`, the kernel on B with `kernel_opts`; every probe both
/// ways; returns, per probe, (vxdp's outer, the kernel's outer).
fn run(vxdp_args: &[&str], kernel_opts: &str) -> Vec<(Probe, Outer, Outer)> {
    let mut topo = Topology::new();
    topo.add_vtep_with(Side::A, VtepKind::Vxdp, vxdp_args);
    let b = &mut topo.b;
    kernel_vtep_opts(&b.ns, "vxlan0", VNI, b.underlay_ip, "eth0", &["192.0.2.1"], kernel_opts);
    b.ns.run("ip link set vxlan0 master br0 up");
    b.vtep = Some("vxlan0".into());
    for (side, ip6) in [(Side::A, "fd00:5302::1"), (Side::B, "fd00:5302::2")] {
        let h = topo.host(side);
        // An IPv6 source for the multicast probe, usable at once (the harness's
        // namespaces start with IPv6 off).
        h.container.run("sysctl -qw net.ipv6.conf.all.disable_ipv6=0");
        h.container.run("sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0");
        h.container.run(format!("ip -6 addr add {ip6}/64 dev eth0 nodad"));
        ping(&h.container, topo.host(side.peer()).overlay_ip);
        let settled = wait_until(Duration::from_secs(5), || {
            h.container.run("ip -6 addr show dev eth0 tentative").trim().is_empty()
        });
        assert!(settled, "{}: an IPv6 address is still tentative", h.container.name());
    }
    let cap = Capture::start(&topo.b.ns, "eth0");
    let mut out = Vec::new();
    for (i, probe) in PROBES.into_iter().enumerate() {
        let mut seen = [(0, 0, false); 2];
        for (j, side) in [Side::A, Side::B].into_iter().enumerate() {
            let marker = format!("outer-knobs-{i}-{side:?}");
            send(topo.host(side), topo.host(side.peer()), probe, marker.as_bytes());
            std::thread::sleep(Duration::from_millis(300));
            let vtep = if side == Side::A { "vxdp" } else { "kernel" };
            seen[j] = outer_of(&cap.drain_all(), marker.as_bytes(), vtep, probe);
        }
        eprintln!("{probe:?}: vxdp {:?}, kernel {:?}", seen[0], seen[1]);
        out.push((probe, seen[0], seen[1]));
    }
    out
}

/// Runs the probes and checks vxdp against the kernel, and both against `want`.
fn check(vxdp_args: &[&str], kernel_opts: &str, want: [Outer; 5]) {
    let seen = run(vxdp_args, kernel_opts);
    for ((probe, vxdp, kernel), want) in seen.into_iter().zip(want) {
        assert_eq!(vxdp, kernel, "{probe:?} with {vxdp_args:?}: vxdp's outer (TTL, TOS, DF) differs from the kernel's");
        assert_eq!(kernel, want, "{probe:?} with `{kernel_opts}`: the kernel's outer (TTL, TOS, DF)");
    }
}

#[test]
fn inherited_ttl_tos_and_df_like_the_kernel() {
    if !require_root("inherited_ttl_tos_and_df_like_the_kernel") {
        return;
    }
    let _serial = serial();
    check(
        &["--ttl", "inherit", "--tos", "inherit", "--df", "inherit"],
        "ttl inherit tos inherit df inherit",
        // The inner TTL/hop limit, DSCP and ECN, DF; IPv6 sets DF; not IP: 64, 0, no DF.
        [(7, 0xba, true), (200, 0x00, false), (33, 0x28, true), (9, 0x48, true), (64, 0x00, false)],
    );
}

#[test]
fn fixed_ttl_tos_and_df_set_like_the_kernel() {
    if !require_root("fixed_ttl_tos_and_df_set_like_the_kernel") {
        return;
    }
    let _serial = serial();
    check(
        &["--ttl", "10", "--tos", "0x28", "--df", "set"],
        "ttl 10 tos 0x28 df set",
        // The configured values; only the ECN bits come from inside (ECT(0) of 0xba).
        [(10, 0x2a, true), (10, 0x28, true), (10, 0x28, true), (10, 0x28, true), (10, 0x28, true)],
    );
}

#[test]
fn default_outer_header_like_the_kernel() {
    if !require_root("default_outer_header_like_the_kernel") {
        return;
    }
    let _serial = serial();
    // ttl auto (64), tos 0, df unset.
    check(&[], "", [(64, 0x02, false), (64, 0x00, false), (64, 0x00, false), (64, 0x00, false), (64, 0x00, false)]);
}
