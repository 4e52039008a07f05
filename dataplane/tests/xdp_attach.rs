//! Root-only (skips otherwise, fails under `VXDP_REQUIRE_ROOT=1`): loads and attaches the
//! XDP programs on a veth between two throwaway network namespaces and checks verdicts,
//! counters, detach on drop and detach on SIGKILL.
//!
//! Traffic stays inside the namespaces created here, on 192.0.2.0/24 (TEST-NET-1).

use std::{
    fs::File,
    io::{BufRead as _, BufReader},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket},
    os::fd::AsRawFd as _,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use vxdp::xdp::{XdpMode, XdpPrograms};
use vxdp_common::{UnderlayConfig, XdpCounter};
use vxdp_testsupport::require_root;

const VTEP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const VTEP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const VXLAN_PORT: u16 = 4789;
const OTHER_PORT: u16 = 9999;
/// Environment variable that turns the `sigkill_child` test into the child process.
const CHILD_ENV: &str = "VXDP_XDP_ATTACH_CHILD";

/// Two namespaces joined by a veth; deletes them (and with them the veth) on drop.
struct Netns {
    /// Holds the VTEP end, where the programs are attached.
    vtep_ns: String,
    vtep_if: String,
    /// Holds the sender end.
    peer_ns: String,
    created: Vec<String>,
}

impl Netns {
    fn new(tag: &str) -> Self {
        let pid = std::process::id();
        let mut this = Netns {
            vtep_ns: format!("vxdp-{tag}{pid}-v"),
            vtep_if: format!("vx{tag}{pid}v"),
            peer_ns: format!("vxdp-{tag}{pid}-p"),
            created: Vec::new(),
        };
        let peer_if = format!("vx{tag}{pid}p");
        for ns in [this.vtep_ns.clone(), this.peer_ns.clone()] {
            ip(&["netns", "add", &ns]);
            this.created.push(ns);
        }
        ip(&[
            "-n",
            &this.vtep_ns,
            "link",
            "add",
            &this.vtep_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer_if,
            "netns",
            &this.peer_ns,
        ]);
        for (ns, dev, addr, addr6) in
            [(&this.vtep_ns, &this.vtep_if, VTEP, VTEP6), (&this.peer_ns, &peer_if, PEER, PEER6)]
        {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", ns, "addr", "add", &format!("{addr6}/64"), "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", "dev", dev, "up"]);
            ip(&["-n", ns, "link", "set", "dev", "lo", "up"]);
        }
        this
    }

    /// Runs `f` on a thread that has entered namespace `ns`; sockets it creates stay there.
    fn run_in<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{ns}");
        thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: `file` is an open netns fd; setns only changes this thread's namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread panicked")
    }

    /// `ip -d link show` of the VTEP end.
    fn link_details(&self) -> String {
        ip(&["-n", &self.vtep_ns, "-d", "link", "show", "dev", &self.vtep_if])
    }

    fn xdp_attached(&self) -> bool {
        let details = self.link_details();
        details.contains("prog/xdp") || details.contains(" xdp")
    }

    /// Polls until no XDP program is attached to the VTEP end, or panics after `limit`.
    fn wait_detached(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.xdp_attached() {
            assert!(Instant::now() < deadline, "XDP still attached:\n{}", self.link_details());
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in self.created.drain(..) {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The VNI of the test datagrams: their payload is the bytes 0, 1, 2, ..., so a VXLAN
/// header whose VNI field holds 4, 5, 6.
const PAYLOAD_VNI: u32 = 0x04_05_06;
/// The VNI of [`tagged_vxlan_frame`].
const FRAME_VNI: u32 = 4242;

/// The programs loaded with `cfg`, serving the test frames' VNIs.
fn load_serving(cfg: &UnderlayConfig) -> XdpPrograms {
    let mut progs = XdpPrograms::load(cfg).expect("load XDP programs");
    for vni in [PAYLOAD_VNI, FRAME_VNI] {
        progs.serve_vni(vni, 0).expect("serve VNI");
    }
    progs
}

fn underlay_config() -> UnderlayConfig {
    UnderlayConfig {
        port_be: VXLAN_PORT.to_be(),
        n_v4: 1,
        local_v4: [u32::from_ne_bytes(VTEP.octets()), 0, 0, 0],
        n_v6: 1,
        local_v6: [VTEP6.octets(), [0; 16], [0; 16], [0; 16]],
        ..Default::default()
    }
}

/// Sockets on both ends: receivers on the VTEP's ports, senders on the peer.
struct Sockets {
    vxlan_rx: UdpSocket,
    other_rx: UdpSocket,
    vxlan_rx6: UdpSocket,
    tx: UdpSocket,
    tx6: UdpSocket,
}

/// Where a test datagram goes.
#[derive(Clone, Copy)]
enum Dest {
    V4(u16),
    V6VxlanPort,
}

impl Sockets {
    fn new(net: &Netns) -> Self {
        let (vxlan_rx, other_rx, vxlan_rx6) = Netns::run_in(&net.vtep_ns, || {
            let bind = |addr: SocketAddr| {
                let s = UdpSocket::bind(addr).expect("bind receiver");
                s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
                s
            };
            (
                bind(SocketAddrV4::new(VTEP, VXLAN_PORT).into()),
                bind(SocketAddrV4::new(VTEP, OTHER_PORT).into()),
                bind(SocketAddrV6::new(VTEP6, VXLAN_PORT, 0, 0).into()),
            )
        });
        let (tx, tx6) = Netns::run_in(&net.peer_ns, || {
            (
                UdpSocket::bind(SocketAddrV4::new(PEER, 0)).expect("bind sender"),
                UdpSocket::bind(SocketAddrV6::new(PEER6, 0, 0, 0)).expect("bind sender6"),
            )
        });
        Sockets { vxlan_rx, other_rx, vxlan_rx6, tx, tx6 }
    }

    /// Sends a small datagram to `port` on the VTEP's IPv4 address until one arrives
    /// (at most 10 tries, ~3 s); returns how many were sent.
    fn deliver(&self, port: u16) -> u64 {
        self.deliver_to(Dest::V4(port), 8)
    }

    /// Sends `len`-byte datagrams to `dest` until one arrives (at most 10 tries, ~3 s);
    /// returns how many were sent.
    fn deliver_to(&self, dest: Dest, len: usize) -> u64 {
        let (tx, rx, to, from_ip): (_, _, SocketAddr, std::net::IpAddr) = match dest {
            Dest::V4(VXLAN_PORT) => (&self.tx, &self.vxlan_rx, SocketAddrV4::new(VTEP, VXLAN_PORT).into(), PEER.into()),
            Dest::V4(port) => {
                assert_eq!(port, OTHER_PORT, "no receiver bound on port {port}");
                (&self.tx, &self.other_rx, SocketAddrV4::new(VTEP, port).into(), PEER.into())
            }
            Dest::V6VxlanPort => {
                (&self.tx6, &self.vxlan_rx6, SocketAddrV6::new(VTEP6, VXLAN_PORT, 0, 0).into(), PEER6.into())
            }
        };
        send_until_received(tx, rx, to, from_ip, len)
    }
}

/// Sends `len`-byte datagrams from `tx` to `to` until one arrives on `rx` from `from_ip`
/// (at most 10 tries, ~3 s); returns how many were sent.
fn send_until_received(tx: &UdpSocket, rx: &UdpSocket, to: SocketAddr, from_ip: std::net::IpAddr, len: usize) -> u64 {
    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let mut buf = vec![0u8; len + 64];
    for sent in 1..=10u64 {
        tx.send_to(&payload, to).expect("send");
        if let Ok((n, from)) = rx.recv_from(&mut buf) {
            assert_eq!(&buf[..n], &payload[..]);
            assert_eq!(from.ip(), from_ip);
            // Drain duplicates of earlier tries that arrived late.
            while rx.recv_from(&mut buf).is_ok() {}
            return sent;
        }
    }
    panic!("no datagram to {to} arrived after 10 tries");
}

#[test]
fn underlay_counts_and_passes_then_detaches_on_drop() {
    if !require_root("underlay_counts_and_passes_then_detaches_on_drop") {
        return;
    }
    let net = Netns::new("a");
    let sockets = Sockets::new(&net);

    let ifname = net.vtep_if.clone();
    let progs = Netns::run_in(&net.vtep_ns, move || {
        let mut progs = XdpPrograms::load(&underlay_config()).expect("load XDP programs");
        progs.attach_underlay(&ifname, XdpMode::Native).expect("attach underlay in native mode");
        progs
    });
    let mut progs = progs;
    let details = net.link_details();
    assert!(details.contains("xdp"), "no XDP shown on the veth:\n{details}");

    // VXLAN for a VNI not served is the kernel's: passed, and the socket gets it.
    let before = progs.counters().expect("read counters");
    let sent = sockets.deliver(VXLAN_PORT);
    let after = progs.counters().expect("read counters");
    let delta = |c: XdpCounter| after[c as usize] - before[c as usize];
    assert!(
        delta(XdpCounter::PassOtherVni) >= 1 && delta(XdpCounter::PassOtherVni) <= sent,
        "PassOtherVni went up by {} for {sent} sent; counters {after:?}",
        delta(XdpCounter::PassOtherVni)
    );
    assert_eq!(delta(XdpCounter::UnderlayNoSocket), 0, "an unserved VNI was steered");

    // Served: steered (no socket is bound, so the helper passes it after all).
    progs.serve_vni(PAYLOAD_VNI, 0).expect("serve VNI");
    let before = progs.counters().expect("read counters");
    let sent = sockets.deliver(VXLAN_PORT);
    let after = progs.counters().expect("read counters");
    let delta = |c: XdpCounter| after[c as usize] - before[c as usize];
    assert!(
        delta(XdpCounter::UnderlayNoSocket) >= 1 && delta(XdpCounter::UnderlayNoSocket) <= sent,
        "UnderlayNoSocket went up by {} for {sent} sent; counters {after:?}",
        delta(XdpCounter::UnderlayNoSocket)
    );
    assert_eq!(delta(XdpCounter::UnderlaySteered), 0);
    assert_eq!(delta(XdpCounter::PassOtherVni), 0, "a served VNI was passed");

    let before = after;
    let sent = sockets.deliver(OTHER_PORT);
    let after = progs.counters().expect("read counters");
    let delta = |c: XdpCounter| after[c as usize] - before[c as usize];
    assert!(
        delta(XdpCounter::PassOtherPort) >= 1 && delta(XdpCounter::PassOtherPort) <= sent,
        "PassOtherPort went up by {} for {sent} sent; counters {after:?}",
        delta(XdpCounter::PassOtherPort)
    );
    assert_eq!(delta(XdpCounter::UnderlayNoSocket), 0);

    // IPv6 to the local VTEP address and port: same verdict as IPv4.
    let before = after;
    let sent = sockets.deliver_to(Dest::V6VxlanPort, 8);
    let after = progs.counters().expect("read counters");
    let delta = |c: XdpCounter| after[c as usize] - before[c as usize];
    assert!(
        delta(XdpCounter::UnderlayNoSocket) >= 1 && delta(XdpCounter::UnderlayNoSocket) <= sent,
        "IPv6: UnderlayNoSocket went up by {} for {sent} sent; counters {after:?}",
        delta(XdpCounter::UnderlayNoSocket)
    );

    // A datagram larger than the MTU goes as IPv4 fragments: passed, and reassembled.
    let before = after;
    let sent = sockets.deliver_to(Dest::V4(VXLAN_PORT), 3000);
    let after = progs.counters().expect("read counters");
    let delta = |c: XdpCounter| after[c as usize] - before[c as usize];
    assert!(
        delta(XdpCounter::PassFragment) >= 2,
        "PassFragment went up by {} for {sent} sent; counters {after:?}",
        delta(XdpCounter::PassFragment)
    );
    assert_eq!(delta(XdpCounter::UnderlayNoSocket), 0, "a fragment was taken for VXLAN");

    drop(progs);
    net.wait_detached(Duration::from_secs(2));
    // And traffic still flows with nothing attached.
    sockets.deliver(VXLAN_PORT);
}

/// A VXLAN frame from PEER to VTEP behind one tag with TPID `tpid`, as raw bytes.
fn tagged_vxlan_frame(tpid: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&[0x00, 0x64, 0x08, 0x00]); // VLAN 100, IPv4
    let udp_len: u16 = 8 + 8 + 14;
    let mut ip_hdr = [0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    ip_hdr[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
    ip_hdr[12..16].copy_from_slice(&PEER.octets());
    ip_hdr[16..20].copy_from_slice(&VTEP.octets());
    let mut sum: u32 = ip_hdr.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip_hdr[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip_hdr);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&VXLAN_PORT.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no UDP checksum
    f.extend_from_slice(&[0x08, 0, 0, 0, 0, 0x10, 0x92, 0]); // I flag, VNI 4242
    f.extend_from_slice(&[0x02, 0xaa, 0, 0, 0, 0x02, 0x02, 0xaa, 0, 0, 0, 0x01, 0x88, 0xb5]);
    f
}

/// Sends `frame` `n` times on `ifname` of namespace `ns` through an AF_PACKET socket.
fn send_raw(ns: &str, ifname: &str, frame: Vec<u8>, n: usize) {
    let ifname = std::ffi::CString::new(ifname).unwrap();
    Netns::run_in(ns, move || {
        // SAFETY: plain syscalls on a socket this closure owns; `addr` and `frame` outlive
        // the calls that borrow them.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = libc::if_nametoindex(ifname.as_ptr()) as i32;
            addr.sll_halen = 6;
            assert!(addr.sll_ifindex > 0, "no interface {ifname:?}");
            for _ in 0..n {
                let rc = libc::sendto(
                    fd,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&addr as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert_eq!(rc, frame.len() as isize, "sendto: {}", std::io::Error::last_os_error());
            }
            libc::close(fd);
        }
    });
}

/// VXLAN behind one 802.1Q or one 802.1ad tag, to a local VTEP address, is passed to
/// the kernel (`PassVlanTagged`), not steered: the kernel sees such a frame only
/// through a VLAN device on top of this one, and vxdp serves a VLAN when `--dev` is
/// that VLAN device (issue 11: the kernel vxlan device on `dev eth0` does not take
/// VLAN 100's traffic). The frames are written raw, so the tags are in the bytes as a
/// NIC receives them.
#[test]
fn underlay_passes_vlan_tagged_vxlan() {
    if !require_root("underlay_passes_vlan_tagged_vxlan") {
        return;
    }
    let net = Netns::new("t");
    let peer_if = format!("vxt{}p", std::process::id());
    let ifname = net.vtep_if.clone();
    let progs = Netns::run_in(&net.vtep_ns, move || {
        let mut progs = load_serving(&underlay_config());
        progs.attach_underlay(&ifname, XdpMode::Native).expect("attach underlay in native mode");
        progs
    });

    const FRAMES: u64 = 5;
    for (what, tpid) in [("802.1Q", 0x8100u16), ("802.1ad", 0x88a8)] {
        let before = progs.counters().expect("read counters");
        send_raw(&net.peer_ns, &peer_if, tagged_vxlan_frame(tpid), FRAMES as usize);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let after = progs.counters().expect("read counters");
            let delta = |c: XdpCounter| after[c as usize] - before[c as usize];
            if delta(XdpCounter::PassVlanTagged) >= FRAMES {
                assert_eq!(delta(XdpCounter::PassVlanTagged), FRAMES, "{what}: counters {after:?}");
                assert_eq!(delta(XdpCounter::UnderlayNoSocket), 0, "{what}: counters {after:?}");
                break;
            }
            assert!(Instant::now() < deadline, "{what}: {FRAMES} frames sent, counters {after:?}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The child half of `underlay_detaches_on_sigkill`: a no-op unless `CHILD_ENV` is set.
#[test]
fn sigkill_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (ns, ifname) = spec.split_once(':').expect("CHILD_ENV is ns:ifname");
    let ifname = ifname.to_owned();
    let progs = Netns::run_in(ns, move || {
        let mut progs = load_serving(&underlay_config());
        progs.attach_underlay(&ifname, XdpMode::Native).expect("child: attach");
        progs
    });
    println!("VXDP-CHILD-ATTACHED");
    // Wait to be killed; bounded so a lost parent cannot leave it running.
    thread::sleep(Duration::from_secs(30));
    drop(progs);
    panic!("child was not killed within 30 s");
}

#[test]
fn underlay_detaches_on_sigkill() {
    if !require_root("underlay_detaches_on_sigkill") {
        return;
    }
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let net = Netns::new("k");
    let sockets = Sockets::new(&net);

    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--exact", "sigkill_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{}:{}", net.vtep_ns, net.vtep_if))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("VXDP-CHILD-ATTACHED") {
                let _ = tx.send(());
            }
        }
    });
    let attached = rx.recv_timeout(Duration::from_secs(20));
    if attached.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("child did not attach within 20 s");
    }
    assert!(net.xdp_attached(), "child attached but no XDP shown:\n{}", net.link_details());
    sockets.deliver(VXLAN_PORT);

    child.kill().expect("SIGKILL child"); // Child::kill sends SIGKILL.
    let status = child.wait().expect("wait child");
    assert!(!status.success(), "child exited normally: {status}");

    net.wait_detached(Duration::from_secs(5));
    sockets.deliver(VXLAN_PORT);
}

/// A unicast VXLAN frame to another host's MAC (`PACKET_OTHERHOST`: a promiscuous NIC
/// or a mirrored port) is passed to the kernel, which drops it, and never steered; the
/// same frame to the device's own MAC, or to a multicast MAC, is steered (no socket is
/// bound: `UnderlayNoSocket`).
#[test]
fn underlay_passes_other_hosts_frames() {
    if !require_root("underlay_passes_other_hosts_frames") {
        return;
    }
    let net = Netns::new("o");
    let peer_if = format!("vxo{}p", std::process::id());
    let ifname = net.vtep_if.clone();
    let own_mac = [0x02, 0, 0, 0, 0, 0x01];
    let progs = Netns::run_in(&net.vtep_ns, move || {
        let cfg = UnderlayConfig { mac: own_mac, ..underlay_config() };
        let mut progs = load_serving(&cfg);
        progs.attach_underlay(&ifname, XdpMode::Native).expect("attach underlay in native mode");
        progs
    });
    // The tagged frame without its tag, to `dst`.
    let frame = |dst: [u8; 6]| {
        let mut f = tagged_vxlan_frame(0x8100);
        f.drain(12..16);
        f[..6].copy_from_slice(&dst);
        f
    };
    const FRAMES: u64 = 5;
    for (what, dst, counter) in [
        ("another host's MAC", [0x02, 0, 0, 0, 0, 0x99], XdpCounter::PassOtherHost),
        ("our MAC", own_mac, XdpCounter::UnderlayNoSocket),
        ("a multicast MAC", [0x01, 0, 0x5e, 0, 0, 1], XdpCounter::UnderlayNoSocket),
    ] {
        let before = progs.counters().expect("read counters");
        send_raw(&net.peer_ns, &peer_if, frame(dst), FRAMES as usize);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let after = progs.counters().expect("read counters");
            let delta = |c: XdpCounter| after[c as usize] - before[c as usize];
            if delta(counter) >= FRAMES {
                let other = if counter == XdpCounter::PassOtherHost {
                    XdpCounter::UnderlayNoSocket
                } else {
                    XdpCounter::PassOtherHost
                };
                assert_eq!((delta(counter), delta(other)), (FRAMES, 0), "{what}: counters {after:?}");
                break;
            }
            assert!(Instant::now() < deadline, "{what}: {FRAMES} frames sent, counters {after:?}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}
