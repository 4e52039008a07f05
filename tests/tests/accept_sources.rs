//! `--accept` and `--learning-from`: VXLAN from a source the allow-list does not take
//! (and from the host's own address, in every mode) is dropped in XDP and counted
//! `xdp_drop_source_rejected`, before any learning; a kernel vxlan peer that is a known
//! VTEP keeps working. The spoofed frames are crafted on a raw socket in host B (outer
//! sources B does not own), so they reach host A's `eth0` exactly as an attacker's
//! would. Without `--accept` (the default `any`), a stranger's VXLAN is taken and learned
//! as the kernel does, and only the host's own address is refused.

use std::net::Ipv4Addr;
use std::time::Duration;

use vxdp_tests::raw::{inner_broadcast, mac, vxlan_frame, RawSocket};
use vxdp_tests::topology::{link_mac, VNI};
use vxdp_tests::traffic::ping;
use vxdp_tests::{require_root, serial, wait_until, Side, Topology, VtepKind};

/// Frames of each kind.
const N: usize = 20;
/// A MAC nobody has, which a stranger's frames try to teach.
const STRANGER_MAC: &str = "02:66:00:00:00:01";

struct Sender {
    sock: RawSocket,
    a_mac: [u8; 6],
    b_mac: [u8; 6],
    a_ip: Ipv4Addr,
}

impl Sender {
    fn new(topo: &Topology) -> Sender {
        Sender {
            sock: RawSocket::open(&topo.b.ns, "eth0", 0),
            a_mac: mac(&link_mac(&topo.a.ns, "eth0")),
            b_mac: mac(&link_mac(&topo.b.ns, "eth0")),
            a_ip: topo.a.underlay_ip.parse().unwrap(),
        }
    }

    /// `N` VXLAN frames to A from `src`, carrying a broadcast from `inner_src`.
    fn send(&self, src: &str, inner_src: &str) {
        let frame =
            vxlan_frame(self.a_mac, self.b_mac, src.parse().unwrap(), self.a_ip, VNI, &inner_broadcast(mac(inner_src)));
        self.sock.send(&frame, N);
    }
}

fn fdb_line(topo: &Topology, mac: &str) -> Option<String> {
    let show = topo.a.daemon().ctl(&["fdb", "show"]).expect("vxdp fdb show");
    show.lines().find(|l| l.starts_with(mac)).map(str::to_string)
}

#[test]
fn accept_known_refuses_strangers_and_own_addresses() {
    if !require_root("accept_known_refuses_strangers_and_own_addresses") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep_with(Side::A, VtepKind::Vxdp, &["--accept", "known", "192.0.2.64/26", "--learning-from", "known"]);
    topo.add_vtep(Side::B, VtepKind::Kernel);
    // The kernel peer is known (the flood list names it): the overlay works both ways,
    // and its container's MAC is learned behind it.
    ping(&topo.b.container, topo.a.overlay_ip);
    ping(&topo.a.container, topo.b.overlay_ip);
    let victim = topo.b.container_mac();
    assert!(fdb_line(&topo, &victim).is_some_and(|l| l.contains("dst 192.0.2.2")), "{victim} learned behind B");

    let daemon = topo.a.daemon();
    let rejected = |d: &vxdp_tests::Daemon| d.stats().xdp("xdp_drop_source_rejected");
    let sender = Sender::new(&topo);
    let before = rejected(daemon);

    // A stranger outside the list claims the victim's MAC: dropped in XDP, nothing moves.
    sender.send("192.0.2.200", &victim);
    assert!(
        wait_until(Duration::from_secs(3), || rejected(daemon) == before + N as u64),
        "{N} frames from 192.0.2.200 should be rejected; stats: {}",
        daemon.stats().0
    );
    // Our own address as the source (fib_validate_source would refuse it too).
    sender.send(topo.a.underlay_ip, STRANGER_MAC);
    assert!(
        wait_until(Duration::from_secs(3), || rejected(daemon) == before + 2 * N as u64),
        "{N} frames from our own address should be rejected; stats: {}",
        daemon.stats().0
    );
    assert!(fdb_line(&topo, &victim).is_some_and(|l| l.contains("dst 192.0.2.2")), "the victim's MAC did not move");
    assert_eq!(fdb_line(&topo, STRANGER_MAC), None);

    // Inside the accepted prefix but not a known VTEP: taken, but not learned from.
    let steered_before = daemon.stats().xdp("xdp_underlay_steered") + daemon.stats().xdp("xdp_express_decap");
    sender.send("192.0.2.66", STRANGER_MAC);
    assert!(
        wait_until(Duration::from_secs(3), || daemon.stats().control("learn_refused_unknown_source") >= 1),
        "a frame from 192.0.2.66 (accepted, unknown) must not teach the FDB; stats: {}",
        daemon.stats().0
    );
    let s = daemon.stats();
    assert_eq!(s.xdp("xdp_drop_source_rejected"), before + 2 * N as u64, "192.0.2.66 is in --accept: {}", s.0);
    assert!(s.xdp("xdp_underlay_steered") + s.xdp("xdp_express_decap") >= steered_before + N as u64, "{}", s.0);
    assert_eq!(fdb_line(&topo, STRANGER_MAC), None, "learned from an unknown VTEP");

    // A VTEP becomes known through the FDB: its frames are taken from then on.
    daemon.ctl(&["fdb", "append", "00:00:00:00:00:00", "dst", "192.0.2.200"]).expect("fdb append");
    // The control loop brings the list up to date within a tick or two: send until taken.
    assert!(
        wait_until(Duration::from_secs(3), || {
            sender.send("192.0.2.200", STRANGER_MAC);
            fdb_line(&topo, STRANGER_MAC).is_some_and(|l| l.contains("192.0.2.200"))
        }),
        "frames from the now-known 192.0.2.200 are taken and learned; fdb: {:?}",
        topo.a.daemon().ctl(&["fdb", "show"])
    );
    let before = rejected(daemon);
    sender.send("192.0.2.200", STRANGER_MAC);
    ping(&topo.b.container, topo.a.overlay_ip);
    assert_eq!(rejected(daemon), before, "a known VTEP's frames are not rejected");

    ping(&topo.b.container, topo.a.overlay_ip);
    let daemon = topo.a.daemon.as_mut().expect("daemon");
    assert!(daemon.is_alive(), "vxdp died; log:\n{}", daemon.log_text());
    assert!(daemon.log_text().contains("--accept known,192.0.2.64/26"), "{}", daemon.log_text());
}

#[test]
fn accept_any_takes_strangers_but_not_our_own_address() {
    if !require_root("accept_any_takes_strangers_but_not_our_own_address") {
        return;
    }
    let _serial = serial();
    let topo = Topology::with_vteps(VtepKind::Vxdp, VtepKind::Kernel);
    ping(&topo.b.container, topo.a.overlay_ip);
    let daemon = topo.a.daemon();
    let sender = Sender::new(&topo);
    let before = daemon.stats().xdp("xdp_drop_source_rejected");
    sender.send(topo.a.underlay_ip, STRANGER_MAC);
    assert!(
        wait_until(Duration::from_secs(3), || daemon.stats().xdp("xdp_drop_source_rejected") == before + N as u64),
        "our own address as the source is refused even with --accept any; stats: {}",
        daemon.stats().0
    );
    assert_eq!(fdb_line(&topo, STRANGER_MAC), None);
    // Any other source is the kernel's behaviour: taken and learned.
    sender.send("192.0.2.200", STRANGER_MAC);
    assert!(
        wait_until(Duration::from_secs(3), || fdb_line(&topo, STRANGER_MAC).is_some_and(|l| l.contains("192.0.2.200"))),
        "--accept any learns from anyone, as the kernel; fdb: {:?}",
        daemon.ctl(&["fdb", "show"])
    );
    assert_eq!(daemon.stats().xdp("xdp_drop_source_rejected"), before + N as u64);
    ping(&topo.b.container, topo.a.overlay_ip);
}
