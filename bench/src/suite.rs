//! The side-by-side run: vxdp, the kernel vxlan device and the medium's ceiling on
//! one [`BenchTopo`], every direction, size, flow count and worker count; results as
//! a table, JSON and an SVG chart ([`crate::report`]).
//!
//! Placement (2-core machine): the tester thread (generator + sink) is pinned to CPU 0,
//! the DUT to CPU 1 (vxdp's workers with `taskset`, the kernel's receive processing
//! with RPS on every DUT interface, the medium forwarder by affinity). With 2
//! workers the DUT gets CPUs 0-1 and shares CPU 0 with the tester.

use crate::cpu::{self, CpuTimes};
use crate::forwarder::{Forwarder, ForwarderXdp, QueuePair};
use crate::frame::{FrameSpec, L3Hop, Outer};
use crate::pktgen::{PhaseResult, RxPort, SinkXdp, Tester, TxPort};
use crate::topo::{fmt_mac, BenchHost, BenchTopo, VNI};
use std::ffi::CString;
use std::fmt;
use std::time::{Duration, Instant};
use vxdp::afxdp::xsk::retry_busy;
use vxdp_tests::{in_netns, Daemon};

/// What the DUT does to the generator's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// VXLAN in from the underlay, inner frames out of the overlay side.
    Decap,
    /// Inner frames in from the overlay side, VXLAN out of the underlay.
    Encap,
    /// Encap on A, decap on B.
    RoundTrip,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Decap => "decap",
            Direction::Encap => "encap",
            Direction::RoundTrip => "roundtrip",
        })
    }
}

/// Who forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dut {
    /// Plain AF_XDP forwarding between A's eth0 and vethc (no VXLAN): the ceiling of
    /// copy-mode AF_XDP on this medium (`forwarder.rs`).
    Medium,
    /// `vxdp run --datapath auto` in the bridge layout (`vx0` in `br0`).
    Vxdp,
    /// `vxdp run --datapath afxdp`: every frame through the AF_XDP workers.
    Afxdp,
    Kernel,
    /// vxdp (`--datapath auto`) in the port layout: A's `vethc` is vxdp's port, no
    /// bridge and no `vx0` hop (decap and encap only).
    VxdpPort,
}

impl Dut {
    /// The label of the DUT's row in the one-core tables.
    pub fn label(self) -> &'static str {
        match self {
            Dut::Medium => "medium (AF_XDP forwarder, no VXLAN)",
            Dut::Vxdp => "vxdp auto, bridge layout",
            Dut::Afxdp => "vxdp afxdp",
            Dut::Kernel => "kernel vxlan + bridge",
            Dut::VxdpPort => "vxdp auto, port layout",
        }
    }

    /// Whether a vxdp daemon is the DUT.
    pub fn is_vxdp(self) -> bool {
        matches!(self, Dut::Vxdp | Dut::Afxdp)
    }
}

impl fmt::Display for Dut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dut::Medium => "medium",
            Dut::Vxdp => "auto",
            Dut::Afxdp => "afxdp",
            Dut::Kernel => "kernel",
            Dut::VxdpPort => "vxdp-port",
        })
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub directions: Vec<Direction>,
    pub sizes: Vec<usize>,
    pub flows: Vec<usize>,
    pub workers: Vec<u32>,
    /// Length of the max-rate phase.
    pub max_phase: Duration,
    /// Length of the 50%-rate latency phase.
    pub lat_phase: Duration,
    /// Unmeasured traffic before each row.
    pub warmup: Duration,
    /// Receiving after the generator stops, so frames in flight count.
    pub drain: Duration,
    /// Where the DUT's kernel-side receive processing runs.
    pub placement: Placement,
    /// Run the one-core comparison ([`crate::headline`]: every DUT kind, the overload
    /// sweep, the idle row).
    pub headline: bool,
    /// Run the matrix (sizes x flows x workers; auto, kernel and medium).
    pub matrix: bool,
    /// DUT kinds of the one-core comparison.
    pub duts: Vec<Dut>,
    /// Length of each step of the peak search and the overload sweep.
    pub step_phase: Duration,
    /// Length of the idle measurement.
    pub idle_phase: Duration,
    /// Extra `vxdp run` arguments for every vxdp DUT (trying a flag against the same run).
    pub vxdp_args: Vec<String>,
    /// Offered rate of the full-load phase, frames/s; `None` = as fast as the generator can.
    pub rate: Option<f64>,
}

/// Placement of the kernel's receive processing (softirq or NAPI threads) of the DUT's
/// interfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Placement {
    /// Threaded NAPI on every receiving veth end: the DUT hosts' `eth0` and `vethc`
    /// threads pinned to the DUT's CPU(s), the tester's (container `eth0`s, and B's when
    /// B is not a DUT) to the tester's CPU, no RPS. As IRQ affinity does on a NIC: the
    /// DUT is charged for all of its receive work, the XDP programs and the copies into
    /// AF_XDP sockets included, and the tester runs alone on its core.
    Napi,
    /// RPS on the DUT host's `eth0`, `vethc` and `vx0` steers the backlog work to the
    /// DUT's CPUs; the veth NAPI (XDP, copy into the UMEM) of a frame still runs where
    /// its sender ran.
    #[value(alias = "dut")]
    Rps,
    /// No RPS, no threaded NAPI (the kernel's default): receive processing runs where
    /// the sender ran, much of it on the tester's CPU.
    Off,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Napi => "napi",
            Placement::Rps => "rps",
            Placement::Off => "off",
        }
    }
}

impl Options {
    /// The full matrix; ~2 s per phase.
    pub fn full() -> Options {
        Options {
            directions: vec![Direction::Decap, Direction::Encap, Direction::RoundTrip],
            sizes: vec![64, 512, 1450],
            flows: vec![1, 1000],
            workers: vec![1, 2],
            max_phase: Duration::from_secs(2),
            lat_phase: Duration::from_millis(1500),
            warmup: Duration::from_millis(300),
            drain: Duration::from_millis(100),
            placement: Placement::Napi,
            rate: None,
            headline: true,
            matrix: true,
            duts: vec![Dut::Kernel, Dut::Vxdp, Dut::VxdpPort, Dut::Afxdp, Dut::Medium],
            step_phase: Duration::from_millis(1000),
            idle_phase: Duration::from_secs(3),
            vxdp_args: Vec::new(),
        }
    }

    /// The full matrix with short phases (a few seconds per row).
    pub fn quick() -> Options {
        Options {
            max_phase: Duration::from_millis(500),
            lat_phase: Duration::from_millis(400),
            warmup: Duration::from_millis(100),
            drain: Duration::from_millis(50),
            step_phase: Duration::from_millis(300),
            idle_phase: Duration::from_secs(1),
            ..Options::full()
        }
    }
}

/// One DUT's figures for one row.
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    /// Frames delivered per second at full load, millions.
    pub mpps: f64,
    /// Inner-frame bits per second at full load (inner Ethernet frame, no FCS), G.
    pub gbps: f64,
    /// Fraction lost at full load (the generator offers more than anyone forwards).
    pub loss: f64,
    pub sent: u64,
    pub received: u64,
    pub reordered: u64,
    /// Busy fraction of each CPU during the full-load phase.
    pub cpu_busy: Vec<f64>,
    /// Busy CPU time of the whole machine per delivered frame, ns.
    pub cpu_ns_per_pkt: f64,
    /// Busy CPU time of the DUT's CPU(s) per delivered frame, ns: everything that ran
    /// there (softirq, NAPI threads, the daemon) is charged to the DUT. With 2 workers
    /// the DUT's CPUs include the tester's.
    pub dut_ns_per_pkt: f64,
    /// Offered rate of the latency phase (50% of `mpps`), Mpps.
    pub lat_rate_mpps: f64,
    pub lat_loss: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// Set when the row could not be measured.
    pub error: Option<String>,
}

/// One row: direction, size, flows, workers and every DUT's figures.
#[derive(Clone, Debug)]
pub struct Row {
    pub direction: Direction,
    pub size: usize,
    pub flows: usize,
    pub workers: u32,
    pub medium: Option<Measurement>,
    pub vxdp: Measurement,
    pub kernel: Measurement,
    /// vxdp in the port layout (decap and encap rows).
    pub port: Option<Measurement>,
}

impl Row {
    /// vxdp Mpps / kernel Mpps.
    pub fn ratio(&self) -> f64 {
        if self.kernel.mpps > 0.0 {
            self.vxdp.mpps / self.kernel.mpps
        } else {
            0.0
        }
    }

    /// vxdp port layout Mpps / kernel Mpps.
    pub fn port_ratio(&self) -> Option<f64> {
        self.port.as_ref().filter(|_| self.kernel.mpps > 0.0).map(|p| p.mpps / self.kernel.mpps)
    }

    /// vxdp Mpps / medium Mpps.
    pub fn of_medium(&self) -> Option<f64> {
        self.medium.as_ref().filter(|m| m.mpps > 0.0).map(|m| self.vxdp.mpps / m.mpps)
    }
}

/// CPUs the DUT may use with `workers` workers: CPU 1 alone, or all of them; as a
/// `taskset -c` list, a mask and the CPU numbers.
pub(crate) fn dut_cpus(workers: u32) -> (String, u32, Vec<usize>) {
    let n = cpu::count();
    if n < 2 {
        return ("0".into(), 1, vec![0]);
    }
    if workers == 1 {
        ("1".into(), 0b10, vec![1])
    } else {
        (format!("0-{}", n - 1), (1u32 << n.min(31)) - 1, (0..n).collect())
    }
}

/// The tester's CPU, as a `taskset -c` list.
pub(crate) const TESTER_CPU: &str = "0";

/// The running DUT of one configuration; dropping it removes the VTEPs.
pub(crate) enum DutGuard {
    /// Forwarder threads stop before the XDP programs detach (field order).
    Medium {
        _threads: Forwarder,
        _xdp: Box<ForwarderXdp>,
    },
    Vxdp {
        daemons: Vec<Daemon>,
    },
    /// Namespaces holding a kernel `vxlan0`.
    Kernel {
        namespaces: Vec<String>,
    },
    /// The daemon stops first (field order), then `vethc` goes back into `br0`.
    VxdpPort {
        _daemon: Daemon,
        ns: String,
        container_mac: String,
    },
}

impl Drop for DutGuard {
    fn drop(&mut self) {
        if let DutGuard::Kernel { namespaces } = self {
            for ns in namespaces.iter() {
                let _ = vxdp_tests::netns::run_cmd(&["ip", "netns", "exec", ns, "ip", "link", "del", "vxlan0"]);
            }
        }
        if let DutGuard::VxdpPort { ns, container_mac, .. } = self {
            let exec = |args: &[&str]| {
                let mut argv = vec!["ip", "netns", "exec", ns.as_str()];
                argv.extend_from_slice(args);
                let _ = vxdp_tests::netns::run_cmd(&argv);
            };
            exec(&["ip", "link", "set", "vethc", "master", "br0"]);
            exec(&["bridge", "fdb", "replace", container_mac, "dev", "vethc", "master", "static"]);
        }
    }
}

fn ifindex(name: &str) -> u32 {
    let c = CString::new(name).expect("interface name");
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert!(i != 0, "no interface {name} in this namespace");
    i
}

/// Adds a VTEP of `dut` kind on `h` towards `peer`, enslaved to br0, with the peer
/// container's MAC pointing at the remote. Returns the vxdp daemon if one started.
fn add_vtep(h: &BenchHost, peer: &BenchHost, dut: Dut, workers: u32, extra: &[String]) -> Option<Daemon> {
    let pmac = fmt_mac(&peer.container_mac);
    let (dev, daemon) = match dut {
        Dut::Kernel => {
            h.ns.run(format!(
                "ip link add vxlan0 type vxlan id {VNI} dstport 4789 local {} dev eth0 nolearning",
                h.underlay_ip
            ));
            h.ns.run(format!("bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst {}", peer.underlay_ip));
            h.ns.run(format!("bridge fdb append {pmac} dev vxlan0 dst {}", peer.underlay_ip));
            ("vxlan0", None)
        }
        Dut::Vxdp | Dut::Afxdp => {
            let w = workers.to_string();
            let vni = VNI.to_string();
            let datapath = if dut == Dut::Afxdp { "afxdp" } else { "auto" };
            let mut args =
                vec!["--dev", "eth0", "--vni", &vni, "--remote", peer.underlay_ip, "--nolearning", "--workers", &w];
            args.extend(["--datapath", datapath]);
            args.extend(extra.iter().map(String::as_str));
            let d = Daemon::start(&h.ns, "vx0", &args);
            d.ctl(&["fdb", "append", &pmac, "dst", peer.underlay_ip, "dev", "vx0"]).expect("vxdp fdb append");
            let resolved = vxdp_tests::wait_until(Duration::from_secs(5), || {
                d.try_stats().map(|s| s.0["resolved_remotes"].as_u64().unwrap_or(0) >= 1).unwrap_or(false)
            });
            assert!(resolved, "vxdp on {} did not resolve {}", h.ns.name(), peer.underlay_ip);
            let (cpus, _, _) = dut_cpus(workers);
            let pid = d.pid().expect("daemon pid").to_string();
            vxdp_tests::netns::run_cmd(&["taskset", "-a", "-p", "-c", &cpus, &pid]).expect("taskset");
            ("vx0", Some(d))
        }
        Dut::Medium | Dut::VxdpPort => unreachable!("{dut} has no VTEP in br0"),
    };
    h.ns.run(format!("ip link set {dev} master br0 up"));
    h.ns.run(format!("bridge fdb replace {pmac} dev {dev} master static"));
    daemon
}

pub(crate) fn start_dut(topo: &BenchTopo, dir: Direction, dut: Dut, workers: u32, opts: &Options) -> DutGuard {
    let (list, mask, _) = dut_cpus(workers);
    let hosts: Vec<&BenchHost> = if dir == Direction::RoundTrip { vec![&topo.a, &topo.b] } else { vec![&topo.a] };
    let guard = match dut {
        Dut::Medium => {
            let (pairs, xdp) = in_netns(&topo.a.ns, || {
                let (e, v) = (ifindex("eth0"), ifindex("vethc"));
                let pairs: Vec<QueuePair> =
                    (0..workers).map(|q| QueuePair::bind(e, v, q).expect("forwarder sockets")).collect();
                let xdp = ForwarderXdp::attach("eth0", "vethc", &pairs).expect("forwarder XDP");
                (pairs, xdp)
            });
            let cpus: Vec<usize> = if workers == 1 { vec![1] } else { (0..cpu::count()).rev().collect() };
            DutGuard::Medium { _threads: Forwarder::start(pairs, &cpus), _xdp: Box::new(xdp) }
        }
        Dut::Vxdp | Dut::Afxdp => {
            let mut daemons = vec![add_vtep(&topo.a, &topo.b, dut, workers, &opts.vxdp_args).expect("daemon")];
            if dir == Direction::RoundTrip {
                daemons.push(add_vtep(&topo.b, &topo.a, dut, workers, &opts.vxdp_args).expect("daemon"));
            }
            DutGuard::Vxdp { daemons }
        }
        Dut::VxdpPort => {
            let (a, b) = (&topo.a, &topo.b);
            a.ns.run("ip link set vethc nomaster");
            let (w, vni) = (workers.to_string(), VNI.to_string());
            let args = ["--dev", "eth0", "--vni", &vni, "--remote", b.underlay_ip, "--nolearning", "--workers", &w];
            let d = Daemon::start(&a.ns, "vx0", &[&args[..], &["--layout", "port", "--datapath", "auto"]].concat());
            let container_mac = fmt_mac(&a.container_mac);
            d.ctl(&["port", "add", "vethc", "mac", &container_mac, "dev", "vx0"]).expect("vxdp port add");
            let pmac = fmt_mac(&b.container_mac);
            d.ctl(&["fdb", "append", &pmac, "dst", b.underlay_ip, "dev", "vx0"]).expect("vxdp fdb append");
            let resolved = vxdp_tests::wait_until(Duration::from_secs(5), || {
                d.try_stats().map(|s| s.0["resolved_remotes"].as_u64().unwrap_or(0) >= 1).unwrap_or(false)
            });
            assert!(resolved, "vxdp on {} did not resolve {}", a.ns.name(), b.underlay_ip);
            let (cpus, _, _) = dut_cpus(workers);
            let pid = d.pid().expect("daemon pid").to_string();
            vxdp_tests::netns::run_cmd(&["taskset", "-a", "-p", "-c", &cpus, &pid]).expect("taskset");
            DutGuard::VxdpPort { _daemon: d, ns: a.ns.name().to_string(), container_mac }
        }
        Dut::Kernel => {
            add_vtep(&topo.a, &topo.b, dut, workers, &opts.vxdp_args);
            let mut names = vec![topo.a.ns.name().to_string()];
            if dir == Direction::RoundTrip {
                add_vtep(&topo.b, &topo.a, dut, workers, &opts.vxdp_args);
                names.push(topo.b.ns.name().to_string());
            }
            DutGuard::Kernel { namespaces: names }
        }
    };
    // Receive processing of the DUT's interfaces runs on the DUT's CPUs (or, with
    // `Placement::Off`, where the kernel puts it by default).
    if let (Placement::Napi, Some(napi)) = (opts.placement, &topo.napi) {
        napi.place(dir == Direction::RoundTrip, &list, TESTER_CPU);
    }
    let mask = if opts.placement == Placement::Rps { mask } else { 0 };
    for h in hosts {
        for dev in ["eth0", "vethc", "vx0"] {
            BenchTopo::set_rps(&h.ns, dev, mask);
        }
    }
    guard
}

/// Generator and sink for one row.
pub(crate) fn build_tester(
    topo: &BenchTopo,
    dir: Direction,
    size: usize,
    flows: usize,
    workers: u32,
) -> (Tester, SinkXdp) {
    let (a, b) = (&topo.a, &topo.b);
    let ip = |s: &str| s.parse().expect("IPv4 address");
    let (gen_ns, sink_ns, spec) = match dir {
        Direction::Decap => (
            &b.ns,
            &a.container,
            FrameSpec {
                inner: L3Hop {
                    src_mac: b.container_mac,
                    dst_mac: a.container_mac,
                    src_ip: ip(b.overlay_ip),
                    dst_ip: ip(a.overlay_ip),
                },
                inner_len: size,
                outer: Some(Outer {
                    hop: L3Hop {
                        src_mac: b.eth_mac,
                        dst_mac: a.eth_mac,
                        src_ip: ip(b.underlay_ip),
                        dst_ip: ip(a.underlay_ip),
                    },
                    vni: VNI,
                }),
            },
        ),
        Direction::Encap | Direction::RoundTrip => (
            &a.container,
            if dir == Direction::Encap { &b.ns } else { &b.container },
            FrameSpec {
                inner: L3Hop {
                    src_mac: a.container_mac,
                    dst_mac: b.container_mac,
                    src_ip: ip(a.overlay_ip),
                    dst_ip: ip(b.overlay_ip),
                },
                inner_len: size,
                outer: None,
            },
        ),
    };
    let n_tx = (workers as usize).min(flows);
    let tx = in_netns(gen_ns, || {
        let idx = ifindex("eth0");
        (0..n_tx)
            .map(|p| {
                let fl: Vec<u16> = (0..flows).filter(|f| f % n_tx == p).map(|f| f as u16).collect();
                retry_busy(|| TxPort::new(idx, p as u32, &spec, fl.clone())).expect("generator socket")
            })
            .collect::<Vec<_>>()
    });
    let (rx, xdp) = in_netns(sink_ns, || {
        let idx = ifindex("eth0");
        let rx: Vec<RxPort> =
            (0..crate::topo::QUEUES).map(|q| retry_busy(|| RxPort::new(idx, q)).expect("sink socket")).collect();
        let xdp = SinkXdp::attach("eth0", &rx).expect("sink XDP");
        (rx, xdp)
    });
    (Tester { tx, rx, flows }, xdp)
}

/// Busy CPU time per delivered frame, ns, over `cpus` (all CPUs if `None`).
pub(crate) fn ns_per_frame(busy: &[f64], cpus: Option<&[usize]>, wall: Duration, frames: u64) -> f64 {
    if frames == 0 {
        return 0.0;
    }
    let sum: f64 = match cpus {
        None => busy.iter().sum(),
        Some(c) => c.iter().filter_map(|i| busy.get(*i)).sum(),
    };
    sum * wall.as_secs_f64() * 1e9 / frames as f64
}

/// The full-load phase (after a warm-up), then, unless `lat_rate` says otherwise, the
/// latency phase at half the delivered rate.
pub(crate) fn measure(
    tester: &mut Tester,
    size: usize,
    opts: &Options,
    dut_cpus: &[usize],
    lat_rate: Option<f64>,
) -> Measurement {
    let _ = tester.run(opts.warmup, None, opts.drain);
    let before = CpuTimes::read();
    let max: PhaseResult = tester.run(opts.max_phase, opts.rate, opts.drain);
    let busy = CpuTimes::read().busy_since(&before);
    let wall = opts.max_phase + opts.drain;
    let mut m = Measurement {
        mpps: max.rx_mpps(),
        gbps: max.rx_mpps() * 1e6 * size as f64 * 8.0 / 1e9,
        loss: max.loss(),
        sent: max.sent,
        received: max.received,
        reordered: max.reordered,
        cpu_ns_per_pkt: ns_per_frame(&busy, None, wall, max.received),
        dut_ns_per_pkt: ns_per_frame(&busy, Some(dut_cpus), wall, max.received),
        cpu_busy: busy,
        ..Default::default()
    };
    if max.received == 0 {
        m.error = Some(format!("nothing arrived ({} sent)", max.sent));
        return m;
    }
    let rate = lat_rate.unwrap_or(max.rx_mpps() * 1e6 * 0.5);
    let lat = tester.run(opts.lat_phase, Some(rate), opts.drain);
    m.lat_rate_mpps = rate / 1e6;
    m.lat_loss = lat.loss();
    m.p50_us = lat.latency_us(0.5);
    m.p99_us = lat.latency_us(0.99);
    m.p999_us = lat.latency_us(0.999);
    m
}

/// Runs everything in `opts` on a fresh topology and returns the rows. Holds the
/// namespace-test lock so it never overlaps an integration test.
pub fn run(opts: &Options, mut progress: impl FnMut(&str)) -> (Option<crate::headline::Headline>, Vec<Row>) {
    let _serial = vxdp_tests::serial();
    cpu::pin_current_thread(0);
    let topo = BenchTopo::new(opts.placement == Placement::Napi);
    let headline = opts.headline.then(|| crate::headline::run(&topo, opts, &mut progress));
    if !opts.matrix {
        return (headline, Vec::new());
    }
    let mut results: Vec<(Direction, Dut, u32, usize, usize, Measurement)> = Vec::new();
    for &dir in &opts.directions {
        for &workers in &opts.workers {
            let duts: &[Dut] = if dir == Direction::RoundTrip {
                &[Dut::Vxdp, Dut::Kernel]
            } else {
                &[Dut::Medium, Dut::Vxdp, Dut::Kernel, Dut::VxdpPort]
            };
            for &dut in duts {
                let t0 = Instant::now();
                let guard = start_dut(&topo, dir, dut, workers, opts);
                for &size in &opts.sizes {
                    for &flows in &opts.flows {
                        let (mut tester, xdp) = build_tester(&topo, dir, size, flows, workers);
                        let m = measure(&mut tester, size, opts, &dut_cpus(workers).2, None);
                        drop(xdp);
                        drop(tester);
                        progress(&format!(
                            "{dir:>9} {dut:>6} w{workers} {size:>4}B {flows:>4} flows: {:6.3} Mpps loss {:5.1}% p99 {:7.1} us{}",
                            m.mpps,
                            m.loss * 100.0,
                            m.p99_us,
                            m.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
                        ));
                        results.push((dir, dut, workers, size, flows, m));
                    }
                }
                drop(guard);
                progress(&format!("{dir} {dut} w{workers}: {:.1} s", t0.elapsed().as_secs_f64()));
            }
        }
    }
    let take = |dir, dut, w, s, f| {
        results.iter().find(|r| r.0 == dir && r.1 == dut && r.2 == w && r.3 == s && r.4 == f).map(|r| r.5.clone())
    };
    let mut rows = Vec::new();
    for &dir in &opts.directions {
        for &size in &opts.sizes {
            for &flows in &opts.flows {
                for &workers in &opts.workers {
                    rows.push(Row {
                        direction: dir,
                        size,
                        flows,
                        workers,
                        medium: take(dir, Dut::Medium, workers, size, flows),
                        vxdp: take(dir, Dut::Vxdp, workers, size, flows).unwrap_or_default(),
                        kernel: take(dir, Dut::Kernel, workers, size, flows).unwrap_or_default(),
                        port: take(dir, Dut::VxdpPort, workers, size, flows),
                    });
                }
            }
        }
    }
    (headline, rows)
}
