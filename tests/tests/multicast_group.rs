//! `--group`: the kernel's `group`, with kernel vxlan peers as the oracle. Three hosts
//! on one underlay bridge that snoops IGMP and is its querier, so the group's traffic
//! reaches only the hosts that joined it:
//!
//! ```text
//!   underlay brU (IGMP snooping, querier)
//!    |                          |                          |
//!  host 1: vxdp --group       host 2: kernel vxlan0       host 3: kernel vxlan0
//!          239.1.1.1                  group 239.1.1.1             group 239.1.1.1
//!  container 198.51.100.1     container 198.51.100.2      container 198.51.100.3
//! ```
//!
//! No host has a flood list of unicast VTEPs: broadcast (ARP) reaches the others only
//! through the group, and the unicast answers are learned. vxdp must join the group
//! (the bridge's group table names its port), send one frame per broadcast to the
//! group with the outer header the kernel uses (group MAC, TTL 1), take the group's
//! VXLAN, and carry ping and TCP both ways.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use vxdp_tests::capture::Capture;
use vxdp_tests::multi::{Cluster, Container};
use vxdp_tests::raw::{inner_broadcast, mac, RawSocket, TEST_ETHERTYPE};
use vxdp_tests::topology::VNI;
use vxdp_tests::traffic::{ping, random_bytes, tcp_transfer};
use vxdp_tests::{require_root, serial, wait_until};

const GROUP: &str = "239.1.1.1";
const GROUP_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x01, 0x01, 0x01];
/// Broadcast probes sent from vxdp's container, each to leave host 1 once.
const PROBES: usize = 20;
const TCP_PORT: u16 = 5446;

/// An outer IPv4/UDP/VXLAN frame's source, destination, destination MAC and TTL, if
/// it is VXLAN to port 4789 around one of the probes ([`TEST_ETHERTYPE`]).
fn outer(f: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, [u8; 6], u8)> {
    let vxlan = f.len() >= 64 && f[12..14] == [0x08, 0x00] && f[23] == 17 && f[36..38] == 4789u16.to_be_bytes();
    if !vxlan || f[62..64] != TEST_ETHERTYPE.to_be_bytes() {
        return None;
    }
    let ip = |o: usize| Ipv4Addr::new(f[o], f[o + 1], f[o + 2], f[o + 3]);
    Some((ip(26), ip(30), f[0..6].try_into().unwrap(), f[22]))
}

#[test]
fn broadcast_goes_to_the_group_and_the_group_is_served() {
    if !require_root("broadcast_goes_to_the_group_and_the_group_is_served") {
        return;
    }
    let _serial = serial();
    let mut cluster = Cluster::new(3);
    cluster.underlay.run("ip link set brU type bridge mcast_snooping 1 mcast_querier 1");
    for n in &cluster.nodes[1..] {
        n.ns.run(format!(
            "ip link add vxlan0 type vxlan id {VNI} group {GROUP} dev eth0 local {} dstport 4789",
            n.underlay_ip
        ));
        n.ns.run("ip link set vxlan0 master br0 up");
    }
    let vni = VNI.to_string();
    cluster.nodes[0].start_vxdp(&["--vni", &vni, "--group", GROUP]);
    let c: Vec<Container> = (0..3)
        .map(|i| {
            let n = i + 1;
            cluster.add_container(i, &format!("g{n}"), &format!("02:00:00:00:07:0{n}"), &format!("198.51.100.{n}"))
        })
        .collect();
    let ip = |i: usize| c[i].ip.clone();

    // Joined: the host holds the membership, and its IGMP report reached the bridge,
    // whose group table now sends the group's traffic to host 1's port.
    let maddr = cluster.nodes[0].ns.run("ip maddr show dev eth0");
    assert!(maddr.contains(&format!("inet  {GROUP}")), "vxdp did not join {GROUP} on eth0:\n{maddr}");
    let joined = wait_until(Duration::from_secs(10), || {
        cluster.underlay.run("bridge mdb show dev brU").lines().any(|l| l.contains("port p1") && l.contains(GROUP))
    });
    assert!(joined, "no IGMP report from host 1 reached the bridge:\n{}", cluster.underlay.run("bridge mdb show"));
    let fdb = cluster.nodes[0].fdb_show();
    let default_entry = format!("dst {GROUP} self permanent");
    assert!(fdb.lines().any(|l| l.starts_with("00:00:00:00:00:00 ") && l.contains(&default_entry)), "{fdb}");
    let link = cluster.nodes[0].daemon().ctl(&["link", "show", "-d"]).unwrap();
    assert!(link.contains(&format!("vxlan id {VNI} group {GROUP} local 192.0.2.1 dev eth0")), "{link}");

    // Ping both ways with every kernel host: ARP only crosses through the group.
    for i in [1, 2] {
        ping(&c[0].ns, &ip(i));
        ping(&c[i].ns, &ip(0));
    }
    let data = random_bytes(4 * 1024 * 1024);
    tcp_transfer(&c[0].ns, &c[1].ns, &ip(1), TCP_PORT, &data);
    tcp_transfer(&c[2].ns, &c[0].ns, &ip(0), TCP_PORT, &data);

    // One frame per broadcast, to the group, with the kernel's outer header: compare
    // with host 2's broadcast, seen on host 3's port.
    let from_vxdp = Capture::start(&cluster.underlay, "p1");
    let to_host3 = Capture::start(&cluster.underlay, "p3");
    let sock = RawSocket::open(&c[0].ns, "eth0", TEST_ETHERTYPE);
    sock.send(&inner_broadcast(mac(&c[0].mac)), PROBES);
    let kernel_sock = RawSocket::open(&c[1].ns, "eth0", TEST_ETHERTYPE);
    kernel_sock.send(&inner_broadcast(mac(&c[1].mac)), 1);
    let end = Instant::now() + Duration::from_secs(5);
    let (mut sent, mut kernel) = (Vec::new(), Vec::new());
    while Instant::now() < end && (sent.len() < PROBES || kernel.is_empty()) {
        std::thread::sleep(Duration::from_millis(100));
        sent.extend(from_vxdp.drain().iter().filter_map(|f| outer(f)));
        kernel.extend(to_host3.drain_all().iter().filter_map(|f| outer(f)).filter(|o| o.0.octets()[3] == 2));
    }
    std::thread::sleep(Duration::from_millis(300));
    sent.extend(from_vxdp.drain().iter().filter_map(|f| outer(f)));
    let group: Ipv4Addr = GROUP.parse().unwrap();
    let to_group = sent.iter().filter(|o| o.1 == group).count();
    let unicast: Vec<_> = sent.iter().filter(|o| o.1 != group).collect();
    assert_eq!(to_group, PROBES, "vxdp sent {to_group} frames to the group for {PROBES} broadcasts: {sent:?}");
    assert!(unicast.is_empty(), "broadcast was replicated to unicast VTEPs: {unicast:?}");
    let k = kernel.first().copied().unwrap_or_else(|| panic!("no broadcast from the kernel host 2 seen"));
    for o in &sent {
        assert_eq!((o.1, o.2, o.3), (k.1, k.2, k.3), "vxdp's outer (dst, MAC, TTL) differs from the kernel's");
    }
    assert_eq!((k.2, k.3), (GROUP_MAC, 1), "the kernel's own group frame");

    let stats = cluster.nodes[0].daemon().stats();
    assert!(stats.total("decap_frames") > 0, "nothing decapsulated: {}", stats.0);
}
