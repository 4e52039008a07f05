//! rtnetlink client against a real kernel, inside throwaway network namespaces.
//!
//! Root only (skips with a message otherwise, fails under `VXDP_REQUIRE_ROOT=1`). Each test builds two namespaces joined
//! by a veth pair, `va` (192.0.2.1/24) <-> `vb` (192.0.2.2/24), plus a route
//! 198.51.100.0/25 via 192.0.2.2 in the first; a guard deletes both namespaces on drop,
//! also when the test panics. Netlink calls run on a thread that has `setns()` into
//! the namespace; `ip` is used for setup and for cross-checks only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::time::{Duration, Instant};
use vxdp::netlink::{self, ChangeMonitor, Neighbour, Netlink, NetlinkError};
use vxdp_testsupport::require_root;

const A_IP: &str = "192.0.2.1";
const B_IP: &str = "192.0.2.2";
const DEADLINE: Duration = Duration::from_secs(10);

/// Two namespaces and a veth pair between them; deleted on drop.
struct Topology {
    a: String,
    b: String,
}

impl Topology {
    /// None (after printing why) when not root.
    fn new(tag: &str, ipv6: bool) -> Option<Topology> {
        if !require_root(&format!("netlink integration test {tag}")) {
            return None;
        }
        let pid = std::process::id();
        // The guard exists before anything is created, so a failing step still cleans up.
        let t = Topology { a: format!("vxnl-{tag}-{pid}-a"), b: format!("vxnl-{tag}-{pid}-b") };
        run("ip", &["netns", "add", &t.a]);
        run("ip", &["netns", "add", &t.b]);
        if !ipv6 {
            for ns in [&t.a, &t.b] {
                for key in ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"] {
                    run("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", key]);
                }
            }
        }
        run("ip", &["-n", &t.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &t.b]);
        run("ip", &["-n", &t.a, "addr", "add", &format!("{A_IP}/24"), "dev", "va"]);
        run("ip", &["-n", &t.b, "addr", "add", &format!("{B_IP}/24"), "dev", "vb"]);
        for (ns, dev) in [(&t.a, "va"), (&t.b, "vb")] {
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
            run("ip", &["-n", ns, "link", "set", dev, "up"]);
        }
        run("ip", &["-n", &t.a, "route", "add", "198.51.100.0/25", "via", B_IP]);
        Some(t)
    }

    /// Runs `f` on a thread inside namespace `ns`.
    fn in_ns<T: Send + 'static>(&self, ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{ns}");
        let handle = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
            // SAFETY: `file` is an open netns file; setns only changes this thread's netns.
            let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns into {path}: {}", std::io::Error::last_os_error());
            f()
        });
        handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    fn mac_of(&self, ns: &str, dev: &str) -> [u8; 6] {
        let out = run("ip", &["-n", ns, "link", "show", dev]);
        let at = out.find("link/ether ").expect("link/ether in ip link output") + "link/ether ".len();
        parse_mac(&out[at..at + 17])
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn parse_mac(s: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (m, part) in mac.iter_mut().zip(s.split(':')) {
        *m = u8::from_str_radix(part, 16).expect("hex MAC byte");
    }
    mac
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Polls `f` every 20 ms until it returns Some or `DEADLINE` passes.
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "{what}: not within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn veth_create_up_lookup_delete() {
    let Some(t) = Topology::new("veth", false) else { return };
    t.in_ns(&t.a, || {
        let mut nl = Netlink::open().unwrap();
        nl.create_veth("vxt0", "vxt0p", 1400, 4).unwrap();
        for name in ["vxt0", "vxt0p"] {
            let l = nl.link(name).unwrap();
            assert_eq!((l.name.as_str(), l.mtu, l.num_rx_queues, l.num_tx_queues, l.up), (name, 1400, 4, 4, false));
            assert_ne!(l.mac, [0; 6]);
        }
        // Either end existing is an error naming it.
        let e = nl.create_veth("vxt0", "vxt1p", 1400, 4).unwrap_err();
        assert!(matches!(e, NetlinkError::Exists { .. }) && e.to_string().contains("\"vxt0\""), "{e}");
        let e = nl.create_veth("vxt1", "vxt0p", 1400, 4).unwrap_err();
        assert!(e.to_string().contains("\"vxt0p\""), "{e}");
        assert!(nl.link("vxt1").unwrap_err().is_not_found(), "failed create left vxt1 behind");

        nl.set_up("vxt0").unwrap();
        let l = nl.link("vxt0").unwrap();
        assert!(l.up);
        assert_eq!(nl.link_by_index(l.index).unwrap(), l);

        nl.delete_link("vxt0").unwrap();
        let e = nl.link("vxt0").unwrap_err();
        assert!(e.is_not_found() && e.to_string() == "interface \"vxt0\" not found", "{e}");
        assert!(nl.link("vxt0p").unwrap_err().is_not_found(), "deleting one end removes the pair");
        assert!(nl.delete_link("vxt0").unwrap_err().to_string().contains("vxt0"));
        assert!(nl.set_up("vxt0").unwrap_err().is_not_found());
        assert!(nl.link_by_index(999_999).unwrap_err().to_string().contains("999999"));
    });
}

#[test]
fn addresses_and_routes() {
    let Some(t) = Topology::new("route", true) else { return };
    run("ip", &["-n", &t.a, "addr", "add", "192.0.2.5/24", "dev", "va"]);
    run("ip", &["-n", &t.a, "addr", "add", "2001:db8::1/64", "dev", "va", "nodad"]);
    run("ip", &["-n", &t.a, "route", "add", "203.0.113.0/24", "dev", "va", "mtu", "1400"]);
    t.in_ns(&t.a, || {
        let mut nl = Netlink::open().unwrap();
        let va = nl.link("va").unwrap();
        let lo = nl.link("lo").unwrap();
        assert_eq!(nl.ipv4_addrs(va.index).unwrap(), vec![Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 5)]);
        assert_eq!(nl.ipv4_addrs(lo.index).unwrap(), vec![Ipv4Addr::LOCALHOST]);
        let v6 = nl.ipv6_addrs(va.index).unwrap();
        assert!(v6.contains(&"2001:db8::1".parse::<Ipv6Addr>().unwrap()), "{v6:?}");
        assert!(nl.ipv4_addrs(999_999).unwrap_err().is_not_found());

        let direct = nl.route_get(ip(B_IP)).unwrap();
        assert_eq!(direct, netlink::Route { oif: va.index, gateway: None, prefsrc: Some(ip(A_IP)), mtu: None });
        let routed = nl.route_get(ip("198.51.100.7")).unwrap();
        assert_eq!(
            routed,
            netlink::Route { oif: va.index, gateway: Some(ip(B_IP)), prefsrc: Some(ip(A_IP)), mtu: None }
        );
        // A route's MTU metric (`ip route ... mtu N`) is the path's.
        assert_eq!(nl.route_get(ip("203.0.113.9")).unwrap().mtu, Some(1400));
        let v6route = nl.route_get(ip("2001:db8::2")).unwrap();
        assert_eq!((v6route.oif, v6route.gateway), (va.index, None));
        assert_eq!(v6route.prefsrc, Some(ip("2001:db8::1")));
        let e = nl.route_get(ip("198.51.100.200")).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENETUNREACH), "{e}");
        assert!(e.to_string().contains("198.51.100.200"), "{e}");
    });
}

#[test]
fn neigh_resolve_sends_arp_and_learns_the_peer_mac() {
    let Some(t) = Topology::new("neigh", true) else { return };
    run("ip", &["-n", &t.a, "addr", "add", "2001:db8::1/64", "dev", "va", "nodad"]);
    run("ip", &["-n", &t.b, "addr", "add", "2001:db8::2/64", "dev", "vb", "nodad"]);
    let vb_mac = t.mac_of(&t.b, "vb");
    let va_mac = t.mac_of(&t.a, "va");
    let (state_after_resolve, v4, v6) = t.in_ns(&t.a, move || {
        let mut nl = Netlink::open().unwrap();
        let va = nl.link("va").unwrap().index;
        assert_eq!(nl.neigh_get(va, ip(B_IP)).unwrap(), None);
        nl.neigh_resolve(va, ip(B_IP)).unwrap();
        let first = nl.neigh_get(va, ip(B_IP)).unwrap().expect("NTF_USE creates the entry");
        let v4 =
            poll("IPv4 neighbour becomes usable", || nl.neigh_get(va, ip(B_IP)).unwrap().filter(Neighbour::is_usable));
        nl.neigh_resolve(va, ip("2001:db8::2")).unwrap();
        let v6 = poll("IPv6 neighbour becomes usable", || {
            nl.neigh_get(va, ip("2001:db8::2")).unwrap().filter(Neighbour::is_usable)
        });
        (first.state, v4, v6)
    });
    eprintln!("state right after neigh_resolve: {state_after_resolve:#x}; after: v4 {v4:?} v6 {v6:?}");
    assert_eq!(v4.mac, Some(vb_mac));
    assert_eq!(v4.state, Neighbour::NUD_REACHABLE);
    assert_eq!(v6.mac, Some(vb_mac));
    // Proof that an ARP request went out: the peer learned our address from it.
    let peer_view = run("ip", &["-n", &t.b, "neigh", "show", A_IP, "dev", "vb"]);
    let mac_text = va_mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    assert!(peer_view.contains(&mac_text), "peer has no entry for {A_IP} from our ARP: {peer_view:?}");
}

#[test]
fn resolve_next_hop_direct_and_via_gateway() {
    let Some(t) = Topology::new("nhop", false) else { return };
    let vb_mac = t.mac_of(&t.b, "vb");
    let va_mac = t.mac_of(&t.a, "va");
    t.in_ns(&t.a, move || {
        let mut nl = Netlink::open().unwrap();
        let va = nl.link("va").unwrap();
        // Via the gateway: unresolved first (resolution triggered), then resolved.
        let first = netlink::resolve_next_hop(&mut nl, ip("198.51.100.7")).unwrap();
        assert_eq!(first, None, "gateway neighbour cannot be known yet");
        let hop = poll("next hop via gateway", || netlink::resolve_next_hop(&mut nl, ip("198.51.100.7")).unwrap());
        let want =
            netlink::NextHop { ifindex: va.index, src_mac: va_mac, dst_mac: vb_mac, src_ip: ip(A_IP), mtu: 1500 };
        assert_eq!(hop, want);
        // Direct: the neighbour is the gateway itself, already resolved.
        assert_eq!(netlink::resolve_next_hop(&mut nl, ip(B_IP)).unwrap(), Some(want));
        let e = netlink::resolve_next_hop(&mut nl, ip(A_IP)).unwrap_err();
        assert!(e.to_string().contains(A_IP) && e.to_string().contains("local"), "{e}");
        let e = netlink::resolve_next_hop(&mut nl, ip("198.51.100.200")).unwrap_err();
        assert!(e.to_string().contains("198.51.100.200"), "{e}");
    });
    // STALE still counts as resolved: make the entry stale by hand.
    run("ip", &["-n", &t.a, "neigh", "change", B_IP, "lladdr", &fmt_mac(vb_mac), "dev", "va", "nud", "stale"]);
    let state = t.in_ns(&t.a, move || {
        let mut nl = Netlink::open().unwrap();
        let hop = netlink::resolve_next_hop(&mut nl, ip(B_IP)).unwrap().expect("stale entry is usable");
        assert_eq!(hop.dst_mac, vb_mac);
        let va = nl.link("va").unwrap().index;
        nl.neigh_get(va, ip(B_IP)).unwrap().unwrap().state
    });
    assert_ne!(state, Neighbour::NUD_STALE, "resolve_next_hop re-probes a stale entry");
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[test]
fn change_monitor_sees_link_and_neighbour_changes() {
    let Some(t) = Topology::new("mon", false) else { return };
    let a = t.a.clone();
    t.in_ns(&t.a, move || {
        let mut mon = ChangeMonitor::open().unwrap();
        assert!(mon.fd() >= 0);
        // Quiet namespace (IPv6 off, no neighbours): drains, then times out.
        mon.wait(Duration::from_millis(50)).unwrap();
        let start = Instant::now();
        assert!(!mon.wait(Duration::from_millis(200)).unwrap(), "no change expected");
        assert!(start.elapsed() >= Duration::from_millis(190));

        run("ip", &["-n", &a, "link", "set", "va", "mtu", "1400"]);
        assert!(mon.wait(Duration::from_secs(2)).unwrap(), "link change seen");
        assert!(!mon.wait(Duration::from_millis(100)).unwrap(), "drained");

        run(
            "ip",
            &["-n", &a, "neigh", "add", "192.0.2.50", "lladdr", "02:00:00:00:00:50", "dev", "va", "nud", "stale"],
        );
        assert!(mon.wait(Duration::from_secs(2)).unwrap(), "neighbour add seen");
        run("ip", &["-n", &a, "neigh", "flush", "dev", "va"]);
        assert!(mon.wait(Duration::from_secs(2)).unwrap(), "neighbour flush seen");

        run("ip", &["-n", &a, "route", "add", "198.51.100.128/25", "via", B_IP]);
        assert!(mon.wait(Duration::from_secs(2)).unwrap(), "route add seen");
    });
}

#[test]
fn disable_offloads_turns_tx_checksum_tso_gso_off() {
    let Some(t) = Topology::new("ethtool", false) else { return };
    let before = run("ip", &["netns", "exec", &t.a, "ethtool", "-k", "va"]);
    assert!(before.contains("tx-checksumming: on"), "veth starts with tx checksum offload: {before}");
    t.in_ns(&t.a, || {
        vxdp::ethtool::disable_offloads("va").unwrap();
        let e = vxdp::ethtool::disable_offloads("nope0").unwrap_err();
        assert!(e.is_not_found() && e.to_string().contains("nope0"), "{e}");
    });
    let after = run("ip", &["netns", "exec", &t.a, "ethtool", "-k", "va"]);
    for want in ["tx-checksumming: off", "tcp-segmentation-offload: off", "generic-segmentation-offload: off"] {
        assert!(after.contains(want), "{want} missing in: {after}");
    }
    eprintln!(
        "after disable_offloads: {}",
        after.lines().filter(|l| l.contains("segmentation") || l.contains("scatter")).collect::<Vec<_>>().join(" | ")
    );
}
