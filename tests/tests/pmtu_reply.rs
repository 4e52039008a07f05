//! Path MTU across the overlay, against the kernel vxlan device. The route from each
//! host to the other's VTEP carries only 1400 bytes (`ip route add ... mtu 1400`, as a
//! path MTU learned from an underlay router would), while the containers and the
//! overlay devices keep their 1450: a packet with DF that the path cannot carry is
//! answered with ICMP "fragmentation needed" carrying 1350, from the destination's
//! address and MAC, by vxdp as by the kernel (the two replies' fields compared); the
//! sender's stack caches the smaller path MTU, and a 10 MB TCP transfer crosses both
//! ways instead of black-holing. And with `vx0` itself raised to 1500 over the
//! 1500-byte underlay (which the kernel refuses for `vxlan0` on `dev eth0`), vxdp
//! answers what the underlay cannot carry the same way. A datagram without DF is not
//! answered but sent as outer IPv4 fragments, split as the kernel splits its own.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;

use vxdp_tests::capture::Capture;
use vxdp_tests::traffic::{ping, random_bytes, tcp_transfer, TRANSFER_LEN};
use vxdp_tests::{in_netns, require_root, serial, wait_until, Host, Side, Topology, VtepKind};

const TCP_PORT: u16 = 5444;
/// The underlay route's MTU toward the other VTEP, and what it leaves inside.
const PATH_MTU: u16 = 1400;
const INNER_MTU: u16 = PATH_MTU - 50;

/// The fields of an ICMP "fragmentation needed" frame that must match the kernel's:
/// (Ethernet source is the destination container's MAC, IP source, IP destination,
/// IP total length, TTL, ICMP type, code, next-hop MTU).
type Reply = (bool, [u8; 4], [u8; 4], u16, u8, u8, u8, u16);

fn ip4(s: &str) -> [u8; 4] {
    s.parse::<std::net::Ipv4Addr>().expect("IPv4").octets()
}

/// Sends one ping of `ip_len` bytes with DF from `from`'s container to `to`'s and
/// returns the ICMP error its container received.
fn frag_needed(from: &Host, to: &Host, ip_len: usize) -> Reply {
    let cap = Capture::start(&from.container, "eth0");
    // The reply is an error, so ping itself fails; its output is not the oracle.
    let _ = from.container.try_run(format!("ping -c 1 -W 2 -M do -s {} -t 61 {}", ip_len - 28, to.overlay_ip));
    let to_mac: Vec<u8> = to.container_mac().split(':').map(|x| u8::from_str_radix(x, 16).expect("MAC")).collect();
    let mut found = None;
    let ok = wait_until(Duration::from_secs(3), || {
        found = cap.drain().into_iter().find(|f| f.len() >= 42 && f[12..14] == [8, 0] && f[23] == 1 && f[34] == 3);
        found.is_some()
    });
    assert!(ok, "{}: no ICMP destination unreachable for the {ip_len}-byte ping", from.container.name());
    let f = found.expect("frame");
    (
        f[6..12] == to_mac[..],
        f[26..30].try_into().expect("4"),
        f[30..34].try_into().expect("4"),
        u16::from_be_bytes([f[16], f[17]]),
        f[22],
        f[34],
        f[35],
        u16::from_be_bytes([f[40], f[41]]),
    )
}

/// vxdp on A, the kernel on B, the route from each host to the other's VTEP carrying
/// [`PATH_MTU`] bytes (set before the VTEPs start, so both resolve it from the start).
fn narrow_path_topology() -> Topology {
    let mut topo = Topology::new();
    for side in [Side::A, Side::B] {
        let peer = topo.host(side.peer()).underlay_ip;
        topo.host(side).ns.run(format!("ip route add {peer}/32 dev eth0 mtu {PATH_MTU}"));
    }
    topo.add_vtep(Side::A, VtepKind::Vxdp);
    topo.add_vtep(Side::B, VtepKind::Kernel);
    topo
}

#[test]
fn too_big_for_the_path_answered_like_the_kernel() {
    if !require_root("too_big_for_the_path_answered_like_the_kernel") {
        return;
    }
    let _serial = serial();
    let topo = narrow_path_topology();
    for side in [Side::A, Side::B] {
        ping(&topo.host(side).container, topo.host(side.peer()).overlay_ip);
    }

    let vxdp = frag_needed(&topo.a, &topo.b, 1450);
    let kernel = frag_needed(&topo.b, &topo.a, 1450);
    eprintln!("vxdp's reply {vxdp:?}, the kernel's {kernel:?}");
    let (a, b) = (ip4(topo.a.overlay_ip), ip4(topo.b.overlay_ip));
    assert_eq!(kernel, (true, a, b, 576, 61, 3, 4, INNER_MTU), "the kernel's reply");
    assert_eq!(vxdp, (true, b, a, 576, 61, 3, 4, INNER_MTU), "vxdp's reply, beside the kernel's {kernel:?}");
    for side in [Side::A, Side::B] {
        let (h, peer) = (topo.host(side), topo.host(side.peer()));
        let route = h.container.run(format!("ip route get {}", peer.overlay_ip));
        assert!(route.contains(&format!("mtu {INNER_MTU}")), "{}: no cached path MTU: {route}", h.container.name());
    }
    let stats = topo.a.daemon().stats();
    assert!(stats.total("pmtu_replies") >= 1, "{}", stats.0);

    // TCP from 1450-byte containers over the 1400-byte path: its first full segments
    // are answered, and the transfer completes at the smaller MTU. A learned path MTU
    // goes with the route it hangs on (and lowers the MSS a host advertises):
    // replacing both containers' subnet routes forgets it, so each transfer
    // discovers it again.
    let data = random_bytes(TRANSFER_LEN);
    for side in [Side::A, Side::B] {
        for h in [&topo.a, &topo.b] {
            h.container.run("ip route del 198.51.100.0/24 dev eth0");
            h.container.run(format!("ip route add 198.51.100.0/24 dev eth0 src {}", h.overlay_ip));
        }
        let (h, peer) = (topo.host(side), topo.host(side.peer()));
        let route = h.container.run(format!("ip route get {}", peer.overlay_ip));
        assert!(!route.contains("mtu"), "{}: the path MTU is still cached: {route}", h.container.name());
        tcp_transfer(&h.container, &peer.container, peer.overlay_ip, TCP_PORT, &data);
        let route = h.container.run(format!("ip route get {}", peer.overlay_ip));
        assert!(
            route.contains(&format!("mtu {INNER_MTU}")),
            "{}: TCP learned no path MTU: {route}",
            h.container.name()
        );
    }
    let after = topo.a.daemon().stats();
    assert!(after.total("pmtu_replies") > stats.total("pmtu_replies"), "TCP got no answer from vxdp: {}", after.0);
}

/// The ICMPv6 "packet too big" a 1450-byte ping6 from `from`'s container to `to`'s
/// (at `to_ip`) brings back: (Ethernet source is `to`'s container MAC, IPv6 source,
/// payload length, hop limit, type, code, MTU).
fn packet_too_big(from: &Host, to: &Host, to_ip: &str) -> (bool, [u8; 16], u16, u8, u8, u8, u32) {
    let cap = Capture::start(&from.container, "eth0");
    let _ = from.container.try_run(format!("ping -6 -c 1 -W 2 -M do -s 1402 -t 61 {to_ip}"));
    let to_mac: Vec<u8> = to.container_mac().split(':').map(|x| u8::from_str_radix(x, 16).expect("MAC")).collect();
    let mut found = None;
    let ok = wait_until(Duration::from_secs(3), || {
        found =
            cap.drain().into_iter().find(|f| f.len() >= 62 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 2);
        found.is_some()
    });
    assert!(ok, "{}: no ICMPv6 packet too big for the 1450-byte ping6", from.container.name());
    let f = found.expect("frame");
    (
        f[6..12] == to_mac[..],
        f[22..38].try_into().expect("16"),
        u16::from_be_bytes([f[18], f[19]]),
        f[21],
        f[54],
        f[55],
        u32::from_be_bytes([f[58], f[59], f[60], f[61]]),
    )
}

#[test]
fn ipv6_too_big_for_the_path_answered_like_the_kernel() {
    if !require_root("ipv6_too_big_for_the_path_answered_like_the_kernel") {
        return;
    }
    let _serial = serial();
    let topo = narrow_path_topology();
    let ips = ["fd00:5444::1", "fd00:5444::2"];
    for (h, ip) in [(&topo.a, ips[0]), (&topo.b, ips[1])] {
        h.container.run("sysctl -qw net.ipv6.conf.all.disable_ipv6=0");
        h.container.run("sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0");
        h.container.run(format!("ip -6 addr add {ip}/64 dev eth0 nodad"));
    }
    topo.a.container.run(format!("ping -6 -c 3 -W 2 {}", ips[1]));
    let vxdp = packet_too_big(&topo.a, &topo.b, ips[1]);
    let kernel = packet_too_big(&topo.b, &topo.a, ips[0]);
    eprintln!("vxdp's reply {vxdp:?}, the kernel's {kernel:?}");
    let ip6 = |s: &str| s.parse::<std::net::Ipv6Addr>().expect("IPv6").octets();
    // 1280 bytes in all: 40 of IPv6 header, 1240 of ICMPv6 (8 + 1232 quoted).
    assert_eq!(kernel, (true, ip6(ips[0]), 1240, 61, 2, 0, u32::from(INNER_MTU)), "the kernel's reply");
    assert_eq!(
        vxdp,
        (true, ip6(ips[1]), 1240, 61, 2, 0, u32::from(INNER_MTU)),
        "vxdp's, beside the kernel's {kernel:?}"
    );
}

#[test]
fn raised_overlay_mtu_answered_for_the_underlay() {
    if !require_root("raised_overlay_mtu_answered_for_the_underlay") {
        return;
    }
    let _serial = serial();
    let topo = Topology::with_vteps(VtepKind::Vxdp, VtepKind::Kernel);
    // The kernel refuses this for vxlan0 (dev eth0 leaves 1450); vx0 is a veth.
    topo.a.ns.run("ip link set vx0 mtu 1500");
    topo.a.ns.run("ip link set vethc mtu 1500");
    topo.a.container.run("ip link set eth0 mtu 1500");
    ping(&topo.a.container, topo.b.overlay_ip);
    let reply = frag_needed(&topo.a, &topo.b, 1500);
    let (a, b) = (ip4(topo.a.overlay_ip), ip4(topo.b.overlay_ip));
    assert_eq!(reply, (true, b, a, 576, 61, 3, 4, 1450), "vxdp's reply for the 1500-byte underlay");
}

const UDP_PORT: u16 = 5445;

/// The outer IPv4 fragments of VXLAN from `src` seen in `frames`: (total length, MF,
/// offset in bytes), in arrival order.
fn outer_fragments(frames: &[Vec<u8>], src: &str) -> Vec<(u16, bool, u16)> {
    let src = ip4(src);
    frames
        .iter()
        .filter(|f| f.len() >= 34 && f[12..14] == [8, 0] && f[23] == 17 && f[26..30] == src)
        .filter_map(|f| {
            let word = u16::from_be_bytes([f[20], f[21]]);
            let (mf, offset) = (word & 0x2000 != 0, (word & 0x1fff) * 8);
            (mf || offset > 0).then(|| (u16::from_be_bytes([f[16], f[17]]), mf, offset))
        })
        .collect()
}

/// Sends one UDP datagram of `ip_len` bytes without DF (`IP_PMTUDISC_DONT`) from
/// `from`'s container to `to`'s, captures `to`'s underlay meanwhile, and returns
/// whether `to`'s container received it whole, and the outer fragments `to` saw.
fn udp_without_df(from: &Host, to: &Host, ip_len: usize) -> (bool, Vec<(u16, bool, u16)>) {
    let cap = Capture::start(&to.ns, "eth0");
    let rx = in_netns(&to.container, || UdpSocket::bind((to.overlay_ip, UDP_PORT))).expect("bind the receiver");
    rx.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let tx = in_netns(&from.container, || UdpSocket::bind((from.overlay_ip, 0))).expect("bind the sender");
    let dont: libc::c_int = libc::IP_PMTUDISC_DONT;
    // SAFETY: a valid int option of the size passed, on an open socket.
    let rc = unsafe {
        libc::setsockopt(
            tx.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&dont as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "IP_MTU_DISCOVER: {}", std::io::Error::last_os_error());
    let payload: Vec<u8> = (0..ip_len - 28).map(|i| (i * 13) as u8).collect();
    tx.send_to(&payload, (to.overlay_ip, UDP_PORT)).expect("send");
    let mut buf = vec![0u8; 2048];
    let got = matches!(rx.recv_from(&mut buf), Ok((n, _)) if buf[..n] == payload[..]);
    std::thread::sleep(Duration::from_millis(200));
    (got, outer_fragments(&cap.drain(), from.underlay_ip))
}

#[test]
fn without_df_sent_as_outer_fragments_like_the_kernel() {
    if !require_root("without_df_sent_as_outer_fragments_like_the_kernel") {
        return;
    }
    let _serial = serial();
    let topo = narrow_path_topology();
    for side in [Side::A, Side::B] {
        ping(&topo.host(side).container, topo.host(side.peer()).overlay_ip);
    }
    let (delivered, vxdp) = udp_without_df(&topo.a, &topo.b, 1450);
    // The kernel's own split of the same packet, seen arriving at vxdp's host (which
    // passes outer fragments to its kernel: vxdp does not reassemble them).
    let (_, kernel) = udp_without_df(&topo.b, &topo.a, 1450);
    eprintln!("vxdp's fragments {vxdp:?}, the kernel's {kernel:?}");
    // 1450 + 14 + 8 + 8 = 1480 payload bytes over a 1400-byte path: 1376 + 104.
    assert_eq!(kernel, vec![(1396, true, 0), (124, false, 1376)], "the kernel's fragments");
    assert_eq!(vxdp, kernel, "vxdp's fragments, beside the kernel's");
    assert!(delivered, "the datagram from vxdp's side did not reach the kernel's container whole");
    let stats = topo.a.daemon().stats();
    assert_eq!(stats.total("encap_fragments"), 1, "{}", stats.0);
    assert_eq!(stats.total("pmtu_replies"), 0, "a datagram without DF was answered: {}", stats.0);
}
