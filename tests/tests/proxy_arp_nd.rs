//! ARP and IPv6 neighbour-discovery suppression (`vxdp run --proxy`, the kernel
//! device's `proxy`), with the kernel as the oracle: host A runs vxdp, host B the
//! kernel vxlan device, each with a neighbour entry for an address nobody has
//! (`vxdp neigh add` on A, `ip neigh add ... dev vxlan0` on B). With `proxy`, a
//! container's ARP request or neighbour solicitation for that address is answered
//! by its own host, with the same reply from vxdp as from the kernel, and never
//! reaches the other side (an `AF_PACKET` capture in the other container). Without
//! `proxy`, both flood it. The one difference, by intent: a request for an address
//! the table lacks is flooded by vxdp and dropped by the kernel.

use std::time::Duration;
use vxdp_tests::capture::{is_arp_request_for, is_solicitation_for, Capture};
use vxdp_tests::topology::VNI;
use vxdp_tests::vtep::kernel_vtep_opts;
use vxdp_tests::{require_root, serial, wait_until, Host, Side, Topology, VtepKind};

const GHOST_MAC: &str = "02:00:00:00:00:77";
const GHOST_MAC_BYTES: [u8; 6] = [2, 0, 0, 0, 0, 0x77];

/// The address each host's table answers for (nobody has it), IPv4 and IPv6.
fn ghost(side: Side) -> (&'static str, [u8; 4], &'static str, [u8; 16]) {
    match side {
        Side::A => ("198.51.100.77", [198, 51, 100, 77], "2001:db8:1::77", v6(0x77)),
        Side::B => ("198.51.100.66", [198, 51, 100, 66], "2001:db8:1::66", v6(0x66)),
    }
}

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1]);
    a[15] = last;
    a
}

/// vxdp on A (`--proxy` if asked), the kernel on B (`proxy` if asked), IPv6 on both
/// containers (2001:db8:1::1 and ::2), and each host's ghost entries.
fn topology(proxy: bool) -> Topology {
    let mut topo = Topology::new();
    let extra: &[&str] = if proxy { &["--proxy"] } else { &[] };
    topo.add_vtep_with(Side::A, VtepKind::Vxdp, extra);
    let b = &mut topo.b;
    kernel_vtep_opts(&b.ns, "vxlan0", VNI, b.underlay_ip, "eth0", &["192.0.2.1"], if proxy { "proxy" } else { "" });
    // The kernel answers solicitations only on a device with IPv6 on.
    b.ns.run("sysctl -qw net.ipv6.conf.vxlan0.disable_ipv6=0");
    b.ns.run("ip link set vxlan0 master br0 up");
    b.vtep = Some("vxlan0".into());
    for (i, h) in [&topo.a, &topo.b].into_iter().enumerate() {
        h.container.run("sysctl -qw net.ipv6.conf.all.disable_ipv6=0");
        h.container.run("sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0");
        h.container.run(format!("ip -6 addr add 2001:db8:1::{}/64 dev eth0 nodad", i + 1));
    }
    let (ip4, _, ip6, _) = ghost(Side::A);
    for ip in [ip4, ip6] {
        topo.a.daemon().ctl(&["neigh", "add", ip, "lladdr", GHOST_MAC, "dev", "vx0"]).expect("vxdp neigh add");
    }
    let shown = topo.a.daemon().ctl(&["neigh", "show", "dev", "vx0"]).expect("vxdp neigh show");
    assert!(shown.contains(&format!("{ip4} dev vx0 lladdr {GHOST_MAC} PERMANENT")), "{shown}");
    let (ip4, _, ip6, _) = ghost(Side::B);
    for ip in [ip4, ip6] {
        topo.b.ns.run(format!("ip neigh add {ip} lladdr {GHOST_MAC} dev vxlan0 nud permanent"));
    }
    topo
}

/// `ip [-6] neigh show IP dev eth0` in the container: the MAC, if resolved.
fn resolved(h: &Host, ip: &str) -> Option<String> {
    let out = h.container.run(format!("ip -j neigh show {ip} dev eth0"));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let e = &json[0];
    let failed = e["state"].as_array().is_some_and(|s| s.iter().any(|v| v == "FAILED" || v == "INCOMPLETE"));
    (!failed).then(|| e["lladdr"].as_str().map(str::to_lowercase)).flatten()
}

/// One ping from `side`'s container to `ip` (it has no answer: only the neighbour
/// resolution it triggers matters).
fn poke(topo: &Topology, side: Side, ip: &str) {
    let v = if ip.contains(':') { "-6" } else { "-4" };
    let _ = topo.host(side).container.try_run(format!("ping {v} -c 1 -W 1 {ip}"));
}

/// The ARP reply `side`'s container received for the ghost: the fields the kernel's
/// `arp_create` sets, as a tuple to compare vxdp with the kernel.
/// (Ethernet source, sender MAC, operation, target MAC, target IP) of an ARP reply.
type ArpFields = ([u8; 6], [u8; 6], u16, [u8; 6], [u8; 4]);

fn arp_reply_fields(frames: &[Vec<u8>], ghost4: [u8; 4]) -> Option<ArpFields> {
    frames.iter().find(|f| f.len() >= 42 && f[12..14] == [8, 6] && f[20..22] == [0, 2] && f[28..32] == ghost4).map(
        |f| {
            (
                f[6..12].try_into().unwrap(),
                f[22..28].try_into().unwrap(),
                u16::from_be_bytes([f[20], f[21]]),
                f[32..38].try_into().unwrap(),
                f[38..42].try_into().unwrap(),
            )
        },
    )
}

/// The neighbour advertisement for the ghost: (Ethernet source, hop limit, flags,
/// target link-layer option).
fn na_fields(frames: &[Vec<u8>], ghost6: [u8; 16]) -> Option<([u8; 6], u8, u8, Vec<u8>)> {
    frames
        .iter()
        .find(|f| f.len() >= 86 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 136 && f[62..78] == ghost6)
        .map(|f| (f[6..12].try_into().unwrap(), f[21], f[58], f[78..86].to_vec()))
}

#[test]
fn proxy_answers_known_addresses_like_the_kernel() {
    if !require_root("proxy_answers_known_addresses_like_the_kernel") {
        return;
    }
    let _serial = serial();
    let topo = topology(true);
    for side in [Side::A, Side::B] {
        let (me, peer) = (topo.host(side), topo.host(side.peer()));
        let (ip4, ghost4, ip6, ghost6) = ghost(side);
        let here = Capture::start(&me.container, "eth0");
        let there = Capture::start(&peer.container, "eth0");
        poke(&topo, side, ip4);
        poke(&topo, side, ip6);
        for ip in [ip4, ip6] {
            let ok = wait_until(Duration::from_secs(3), || resolved(me, ip).as_deref() == Some(GHOST_MAC));
            assert!(ok, "{side:?}: {ip} did not resolve to {GHOST_MAC}: {:?}", resolved(me, ip));
        }
        let seen = there.drain();
        assert!(!seen.iter().any(|f| is_arp_request_for(f, ghost4)), "{side:?}: the ARP request for {ip4} was flooded");
        assert!(
            !seen.iter().any(|f| is_solicitation_for(f, ghost6)),
            "{side:?}: the solicitation for {ip6} was flooded"
        );
        // The reply is the kernel's: from the ghost's MAC to the asker, in both families.
        let got = here.drain();
        let mac = me.container_mac();
        let mac: [u8; 6] =
            mac.split(':').map(|x| u8::from_str_radix(x, 16).unwrap()).collect::<Vec<_>>().try_into().unwrap();
        let ip_me = match side {
            Side::A => [198, 51, 100, 1],
            Side::B => [198, 51, 100, 2],
        };
        assert_eq!(arp_reply_fields(&got, ghost4), Some((GHOST_MAC_BYTES, GHOST_MAC_BYTES, 2, mac, ip_me)), "{side:?}");
        let mut tll = vec![2, 1];
        tll.extend_from_slice(&GHOST_MAC_BYTES);
        assert_eq!(na_fields(&got, ghost6), Some((GHOST_MAC_BYTES, 255, 0x60, tll)), "{side:?}");
    }
    let stats = topo.a.daemon().stats();
    assert!(stats.total("proxy_arp_replies") >= 1 && stats.total("proxy_nd_replies") >= 1, "{}", stats.0);

    // An address neither table has: vxdp floods the request (the peer's container
    // sees it), the kernel drops it.
    let unknown = ("198.51.100.99", [198, 51, 100, 99]);
    for side in [Side::A, Side::B] {
        let there = Capture::start(&topo.host(side.peer()).container, "eth0");
        poke(&topo, side, unknown.0);
        let flooded = there.drain().iter().any(|f| is_arp_request_for(f, unknown.1));
        assert_eq!(flooded, side == Side::A, "{side:?}: ARP request for {} flooded: {flooded}", unknown.0);
    }
}

#[test]
fn without_proxy_requests_are_flooded() {
    if !require_root("without_proxy_requests_are_flooded") {
        return;
    }
    let _serial = serial();
    let topo = topology(false);
    for side in [Side::A, Side::B] {
        let (me, peer) = (topo.host(side), topo.host(side.peer()));
        let (ip4, ghost4, ip6, ghost6) = ghost(side);
        let there = Capture::start(&peer.container, "eth0");
        poke(&topo, side, ip4);
        poke(&topo, side, ip6);
        let seen = there.drain();
        assert!(
            seen.iter().any(|f| is_arp_request_for(f, ghost4)),
            "{side:?}: the ARP request for {ip4} did not cross"
        );
        assert!(
            seen.iter().any(|f| is_solicitation_for(f, ghost6)),
            "{side:?}: the solicitation for {ip6} did not cross"
        );
        assert_eq!(resolved(me, ip4), None, "{side:?}: {ip4} resolved without proxy");
    }
    let stats = topo.a.daemon().stats();
    assert_eq!((stats.total("proxy_arp_replies"), stats.total("proxy_nd_replies")), (0, 0), "{}", stats.0);
}
