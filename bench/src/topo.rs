//! The benchmark topology: two hosts and their containers, every link a veth with
//! two queues, built once per run and shared by every DUT.
//!
//! ```text
//!  CA eth0 198.51.100.1 -- vethc-br0-[VTEP]  A eth0 192.0.2.1 === B eth0 192.0.2.2  [VTEP]-br0-vethc -- CB eth0 198.51.100.2
//! ```
//!
//! Host A is the device under test (DUT). Decap: the generator sends VXLAN from B's
//! eth0 to A, the sink reads inner frames on CA's eth0. Encap: the generator sends
//! inner frames from CA, the sink reads VXLAN on B's eth0. Round trip: B runs a VTEP
//! of the same kind as A, generator in CA, sink in CB. Neighbours and bridge entries
//! are static, so no ARP or flooding runs while measuring.

use crate::napi::NapiDev;
use vxdp_tests::topology::link_mac;
use vxdp_tests::Netns;

/// The VNI of both VTEPs.
pub const VNI: u32 = 42;
/// Queues of every veth (the most workers a run uses).
pub const QUEUES: u32 = 2;
/// MTU of the container links: 1500, not the 1450 a deployment uses, so that the
/// medium baseline can carry whole VXLAN frames; the generator never sends inner
/// frames over 1450 bytes, so neither DUT sees a difference.
pub const CONTAINER_MTU: u32 = 1500;

/// A host with its container and addresses.
pub struct BenchHost {
    pub ns: Netns,
    pub container: Netns,
    pub underlay_ip: &'static str,
    pub overlay_ip: &'static str,
    pub eth_mac: [u8; 6],
    pub container_mac: [u8; 6],
}

/// Both hosts; every namespace is deleted on drop (the guards in [`Netns`]).
pub struct BenchTopo {
    pub a: BenchHost,
    pub b: BenchHost,
    /// The receiving veth ends' NAPI threads, when the run places receive work by
    /// threaded NAPI (`--placement napi`).
    pub napi: Option<TopoNapi>,
}

/// The NAPI threads of every veth end that receives in some direction.
pub struct TopoNapi {
    pub a_eth0: NapiDev,
    pub a_vethc: NapiDev,
    pub b_eth0: NapiDev,
    pub b_vethc: NapiDev,
    pub ca_eth0: NapiDev,
    pub cb_eth0: NapiDev,
}

impl TopoNapi {
    /// Pins the threads of the DUT hosts' ingress veths (`eth0`, `vethc` of A, and of
    /// B when `b_is_dut`) to `dut` as ordinary threads (the kernel's default policy),
    /// and every other one (the tester's) to `tester` as `SCHED_FIFO` threads, so that
    /// the sink's receive work pre-empts the busy tester thread as softirq would
    /// instead of waiting for a CFS time slice (which showed as p99 of ~4 ms).
    pub fn place(&self, b_is_dut: bool, dut: &str, tester: &str) {
        self.a_eth0.pin(dut, false);
        self.a_vethc.pin(dut, false);
        let (b, fifo) = if b_is_dut { (dut, false) } else { (tester, true) };
        self.b_eth0.pin(b, fifo);
        self.b_vethc.pin(b, fifo);
        self.ca_eth0.pin(tester, true);
        self.cb_eth0.pin(tester, true);
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, p) in s.split(':').enumerate().take(6) {
        m[i] = u8::from_str_radix(p, 16).unwrap_or_else(|_| panic!("bad MAC {s}"));
    }
    m
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

impl BenchTopo {
    /// Builds the namespaces; with `threaded_napi`, every receiving veth end gets GRO
    /// and a NAPI thread (pinned later, per DUT, by [`TopoNapi::place`]).
    pub fn new(threaded_napi: bool) -> BenchTopo {
        let (ha, ca, hb, cb) = (Netns::new("bha"), Netns::new("bca"), Netns::new("bhb"), Netns::new("bcb"));
        let q = format!("numtxqueues {QUEUES} numrxqueues {QUEUES}");
        ha.run(format!("ip link add eth0 {q} type veth peer name eth0 {q} netns {}", hb.name()));
        for (h, c, ip, cip) in [(&ha, &ca, "192.0.2.1", "198.51.100.1"), (&hb, &cb, "192.0.2.2", "198.51.100.2")] {
            h.run(format!("ip addr add {ip}/24 dev eth0"));
            // As in the integration tests: finish checksums before the "wire".
            h.run("ethtool -K eth0 tx off");
            h.run("ip link set eth0 up");
            // Bridged frames skip iptables (br_netfilter may be loaded on the host):
            // neither DUT should pay for a firewall the benchmark does not configure.
            for t in ["iptables", "ip6tables", "arptables"] {
                let _ = h.try_run(format!("sysctl -qw net.bridge.bridge-nf-call-{t}=0"));
            }
            h.run("ip link add br0 type bridge");
            h.run("ip link set br0 up");
            c.run(format!("ip link add eth0 {q} type veth peer name vethc {q} netns {}", h.name()));
            c.run(format!("ip link set eth0 mtu {CONTAINER_MTU}"));
            c.run(format!("ip addr add {cip}/24 dev eth0"));
            c.run("ip link set eth0 up");
            h.run(format!("ip link set vethc mtu {CONTAINER_MTU}"));
            h.run("ip link set vethc master br0 up");
        }
        let host = |ns: Netns, container: Netns, underlay_ip, overlay_ip| {
            let eth_mac = parse_mac(&link_mac(&ns, "eth0"));
            let container_mac = parse_mac(&link_mac(&container, "eth0"));
            BenchHost { ns, container, underlay_ip, overlay_ip, eth_mac, container_mac }
        };
        let a = host(ha, ca, "192.0.2.1", "198.51.100.1");
        let b = host(hb, cb, "192.0.2.2", "198.51.100.2");
        for (h, peer) in [(&a, &b), (&b, &a)] {
            h.ns.run(format!(
                "ip neigh replace {} lladdr {} dev eth0 nud permanent",
                peer.underlay_ip,
                fmt_mac(&peer.eth_mac)
            ));
            // The own container's MAC is behind vethc.
            h.ns.run(format!("bridge fdb replace {} dev vethc master static", fmt_mac(&h.container_mac)));
        }
        let napi = threaded_napi.then(|| {
            // A veth hands a frame to its peer's NAPI only if the sender has no TSO
            // (`veth_skb_is_eligible_for_gro`); otherwise the frame goes through the
            // backlog of the sender's CPU and its receive work is charged to the sender.
            for (ns, dev) in [(&a.container, "eth0"), (&b.container, "eth0"), (&a.ns, "vethc"), (&b.ns, "vethc")] {
                ns.run(format!("ethtool -K {dev} tx off"));
            }
            let t = |ns: &Netns, dev: &str| NapiDev::thread(ns, dev).unwrap_or_else(|e| panic!("{e:#}"));
            TopoNapi {
                a_eth0: t(&a.ns, "eth0"),
                a_vethc: t(&a.ns, "vethc"),
                b_eth0: t(&b.ns, "eth0"),
                b_vethc: t(&b.ns, "vethc"),
                ca_eth0: t(&a.container, "eth0"),
                cb_eth0: t(&b.container, "eth0"),
            }
        });
        BenchTopo { a, b, napi }
    }

    /// Sets RPS on every RX queue of `dev` in `ns` to `mask`.
    pub fn set_rps(ns: &Netns, dev: &str, mask: u32) {
        for q in 0..QUEUES {
            let path = format!("/sys/class/net/{dev}/queues/rx-{q}/rps_cpus");
            let _ = ns.try_run_args(&["sh", "-c", &format!("[ -e {path} ] && echo {mask:x} > {path} || true")]);
        }
    }
}

/// `Netns::run_args` that returns the error instead of panicking.
pub(crate) trait TryRunArgs {
    fn try_run_args(&self, args: &[&str]) -> anyhow::Result<String>;
}

impl TryRunArgs for Netns {
    fn try_run_args(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut argv = vec!["ip", "netns", "exec", self.name()];
        argv.extend_from_slice(args);
        vxdp_tests::netns::run_cmd(&argv)
    }
}
