//! Bounded traffic checks across the topology. Every loop here is
//! bounded both in count and in time; traffic only uses the namespaces
//! and addresses of the [`Topology`].

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::daemon::datapath;
use crate::netns::{in_netns, Netns};
use crate::topology::{link_mac, Host, Side, Topology};
use crate::wait_until;

/// TCP port for transfers (inside the containers / on the underlay).
pub const TCP_PORT: u16 = 5201;
/// UDP port for broadcast and probe datagrams.
pub const UDP_PORT: u16 = 5300;
/// Size of the bulk TCP transfer.
pub const TRANSFER_LEN: usize = 10 * 1024 * 1024;
/// Socket timeout for a stalled read or write.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// `ping -c 3 -W 2 IP` from `ns`; panics with ping's output on failure.
pub fn ping(ns: &Netns, ip: &str) {
    ns.run(format!("ping -c 3 -W 2 {ip}"));
}

/// Bytes from `/dev/urandom`.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("read /dev/urandom");
    buf
}

/// A 64-bit digest for comparing large buffers in assertion messages.
pub fn digest(data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(data);
    h.finish()
}

/// Polls until `from`'s container has a reachable neighbour entry for
/// `to`'s container address whose MAC is `to`'s real `eth0` MAC.
pub fn assert_arp_resolved(from: &Host, to: &Host) {
    let want = to.container_mac();
    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(5), || {
        last = from.container.run(format!("ip -j neigh show {} dev eth0", to.overlay_ip));
        let json: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
        let entry = &json[0];
        let state_ok = entry["state"].as_array().is_some_and(|s| !s.iter().any(|v| v == "FAILED" || v == "INCOMPLETE"));
        entry["lladdr"].as_str().map(str::to_lowercase).as_deref() == Some(want.as_str()) && state_ok
    });
    assert!(
        ok,
        "{} ({}) has no resolved neighbour {} with MAC {want}; `ip neigh`: {last}",
        from.container.name(),
        from.overlay_ip,
        to.overlay_ip
    );
}

/// Sends `data` over TCP from `src` to a listener on `dst_ip` in `dst`
/// (both sockets are this process's own, created via [`in_netns`]) and
/// asserts the receiver got exactly the same bytes.
pub fn tcp_transfer(src: &Netns, dst: &Netns, dst_ip: &str, port: u16, data: &[u8]) {
    let addr: SocketAddr = format!("{dst_ip}:{port}").parse().expect("socket address");
    let listener =
        in_netns(dst, || TcpListener::bind(addr)).unwrap_or_else(|e| panic!("bind {addr} in {}: {e}", dst.name()));
    let mut stream = in_netns(src, || TcpStream::connect_timeout(&addr, IO_TIMEOUT))
        .unwrap_or_else(|e| panic!("connect to {addr} from {}: {e}", src.name()));
    let started = Instant::now();
    let received = std::thread::scope(|s| {
        let rx = s.spawn(|| {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(IO_TIMEOUT)).expect("set_read_timeout");
            let mut got = Vec::with_capacity(data.len());
            conn.read_to_end(&mut got).map(|_| got)
        });
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("set_write_timeout");
        stream.write_all(data).unwrap_or_else(|e| panic!("TCP send {} -> {addr}: {e}", src.name()));
        stream.shutdown(Shutdown::Write).expect("shutdown");
        rx.join().expect("receiver thread")
    });
    let received = received.unwrap_or_else(|e| panic!("TCP receive on {addr} in {}: {e}", dst.name()));
    assert_eq!(
        (received.len(), digest(&received)),
        (data.len(), digest(data)),
        "TCP stream {} -> {addr} arrived altered (len, digest)",
        src.name()
    );
    eprintln!("tcp {} -> {addr}: {} bytes in {:?}", src.name(), data.len(), started.elapsed());
}

/// Sends a UDP datagram to `bcast:UDP_PORT` from `src` (SO_BROADCAST)
/// and asserts a socket bound to `0.0.0.0:UDP_PORT` in `dst` receives it.
/// Up to 5 attempts, 1 s each.
pub fn udp_broadcast(src: &Netns, dst: &Netns, bcast: &str) {
    let rx = in_netns(dst, || UdpSocket::bind(("0.0.0.0", UDP_PORT))).expect("bind broadcast receiver");
    let tx = in_netns(src, || {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.set_broadcast(true)?;
        Ok::<_, std::io::Error>(s)
    })
    .expect("broadcast sender");
    let payload = format!("vxdp-bcast-{}-{}", src.name(), digest(&random_bytes(8)));
    let mut buf = [0u8; 2048];
    for _ in 0..5 {
        tx.send_to(payload.as_bytes(), (bcast, UDP_PORT)).expect("send broadcast");
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            rx.set_read_timeout(Some(left.max(Duration::from_millis(1)))).expect("timeout");
            match rx.recv_from(&mut buf) {
                Ok((n, _)) if &buf[..n] == payload.as_bytes() => return,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    panic!("UDP broadcast to {bcast}:{UDP_PORT} from {} never reached {}", src.name(), dst.name());
}

/// The overlay checks of every end-to-end scenario, in both directions:
/// ping (which also drives ARP), the neighbour entry holds the peer's
/// real MAC, a 10 MB TCP transfer arrives intact, and a UDP broadcast to
/// 198.51.100.255 crosses (via the all-zeros flood entry).
pub fn check_overlay(topo: &Topology) {
    for side in [Side::A, Side::B] {
        let (from, to) = (topo.host(side), topo.host(side.peer()));
        ping(&from.container, to.overlay_ip);
        assert_arp_resolved(from, to);
    }
    for side in [Side::A, Side::B] {
        let (from, to) = (topo.host(side), topo.host(side.peer()));
        let data = random_bytes(TRANSFER_LEN);
        tcp_transfer(&from.container, &to.container, to.overlay_ip, TCP_PORT, &data);
    }
    for side in [Side::A, Side::B] {
        let (from, to) = (topo.host(side), topo.host(side.peer()));
        udp_broadcast(&from.container, &to.container, "198.51.100.255");
    }
}

/// After [`check_overlay`]: a vxdp host's counters show it decapsulated,
/// encapsulated and flooded, and that the datapath of this run carried the
/// unicast: with the express path ([`Datapath::express`](crate::daemon::Datapath::express))
/// at least half of the decapsulated and of the encapsulated frames, with
/// `afxdp` none.
pub fn check_vxdp_counters(host: &Host) {
    let stats = host.daemon().stats();
    for key in ["decap_frames", "encap_frames", "flooded"] {
        assert!(
            stats.total(key) > 0,
            "vxdp in {}: total.{key} is 0 after overlay traffic; stats: {}",
            host.ns.name(),
            stats.0
        );
    }
    // After the 10 MB transfers, the express path carried most unicast in `auto`, and
    // nothing in `afxdp`. The totals count the express frames too.
    for (express, total) in [("xdp_express_decap", "decap_frames"), ("xdp_express_encap", "encap_frames")] {
        let (x, t) = (stats.xdp(express), stats.total(total));
        match datapath().express() {
            false => assert_eq!(x, 0, "vxdp in {}: {express} with --datapath afxdp: {}", host.ns.name(), stats.0),
            true => assert!(
                2 * x >= t && x > 0,
                "vxdp in {}: the express path carried {x} of {t} ({express} of total.{total}); stats: {}",
                host.ns.name(),
                stats.0
            ),
        }
    }
}

/// RX packets of `dev` in `ns`, read from `/proc/thread-self/net/dev` on a
/// thread inside `ns`: no process is started, so it can be sampled within a
/// millisecond (for timing-sensitive checks). Panics if `dev` is not there.
pub fn rx_packets(ns: &Netns, dev: &str) -> u64 {
    let table = in_netns(ns, || std::fs::read_to_string("/proc/thread-self/net/dev"))
        .unwrap_or_else(|e| panic!("read /proc/net/dev in {}: {e}", ns.name()));
    // "  vxlan0: rx_bytes rx_packets ..."
    table
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(dev)?.strip_prefix(':').map(str::to_string))
        .and_then(|rest| rest.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no {dev} in /proc/net/dev of {}:\n{table}", ns.name()))
}

/// True if `dev` in `ns` has an XDP program attached (any mode).
pub fn has_xdp(ns: &Netns, dev: &str) -> bool {
    let out = ns.run(format!("ip -d -j link show dev {dev}"));
    let json: serde_json::Value = serde_json::from_str(&out).expect("ip -j link is JSON");
    !json[0]["xdp"].is_null()
}

/// MAC of a host's underlay `eth0` (for crafting frames).
pub fn underlay_mac(host: &Host) -> String {
    link_mac(&host.ns, "eth0")
}

/// Sends one UDP datagram from `src` to `dst_ip:port` and asserts a
/// socket bound there in `dst` receives it. Up to 5 attempts, 1 s each.
pub fn udp_unicast(src: &Netns, dst: &Netns, dst_ip: &str, port: u16) {
    let rx = in_netns(dst, || UdpSocket::bind((dst_ip, port)))
        .unwrap_or_else(|e| panic!("bind {dst_ip}:{port} in {}: {e}", dst.name()));
    let tx = in_netns(src, || UdpSocket::bind("0.0.0.0:0")).expect("UDP sender");
    let payload = format!("vxdp-probe-{}", digest(&random_bytes(8)));
    let mut buf = [0u8; 2048];
    for _ in 0..5 {
        tx.send_to(payload.as_bytes(), (dst_ip, port)).expect("send UDP");
        rx.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
        if let Ok((n, _)) = rx.recv_from(&mut buf) {
            if &buf[..n] == payload.as_bytes() {
                return;
            }
        }
    }
    panic!("UDP {dst_ip}:{port} from {} never received in {}", src.name(), dst.name());
}

/// A UDP port on the underlay that is not VXLAN's.
pub const OTHER_UDP_PORT: u16 = 5999;

/// Non-VXLAN underlay traffic from B to A's underlay address, all of
/// which the kernel on A must answer: ping, a 256 KB TCP transfer and a
/// UDP datagram to [`OTHER_UDP_PORT`].
pub fn check_underlay(topo: &Topology) {
    let (a, b) = (&topo.a, &topo.b);
    ping(&b.ns, a.underlay_ip);
    tcp_transfer(&b.ns, &a.ns, a.underlay_ip, TCP_PORT, &random_bytes(256 * 1024));
    udp_unicast(&b.ns, &a.ns, a.underlay_ip, OTHER_UDP_PORT);
}
