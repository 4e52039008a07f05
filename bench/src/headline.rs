//! The one-core comparison: every DUT kind on one core, the tester alone on the other.
//!
//! For decap and encap, 1 worker, 64 B and 1450 B inner frames and [`FLOWS`] flows,
//! each DUT kind of [`Options::duts`] gets a full-load phase (Mpps, Gbit/s, loss, CPU
//! time per frame on the DUT's core), a search for its own peak goodput (offered
//! rates on a ladder up to what the generator reaches), a latency phase at 50% of
//! that peak, and (64 B) an overload sweep from 0.5x to 3x of the peak with the
//! goodput of each step. Before any traffic, the idle row: the DUT core's busy
//! fraction and each vxdp worker thread's CPU time with no traffic at all.

use crate::cpu::CpuTimes;
use crate::suite::{self, Direction, Dut, DutGuard, Measurement, Options};
use crate::topo::BenchTopo;
use std::time::Duration;

/// Flows of every one-core row (inner UDP source ports; outer ones for decap).
pub const FLOWS: usize = 256;
/// Inner frame sizes of the one-core rows; the sweep runs on the first.
pub const SIZES: [usize; 2] = [64, 1450];
/// Offered load of each peak-search step, as a fraction of the generator's own
/// maximum against this DUT.
const LADDER: [f64; 9] = [0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0];
/// Overload sweep: offered load as a multiple of the DUT's peak.
pub const SWEEP: [f64; 6] = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0];

/// One DUT kind, one direction, one size.
#[derive(Clone, Debug)]
pub struct HeadRow {
    pub direction: Direction,
    pub size: usize,
    pub dut: Dut,
    /// The full-load phase; its latency figures are at 50% of `peak_mpps`.
    pub m: Measurement,
    /// Highest goodput seen at any offered rate (the full-load phase included), Mpps.
    pub peak_mpps: f64,
    /// What the generator offered at full load against this DUT, Mpps.
    pub gen_mpps: f64,
}

/// One step of an overload sweep.
#[derive(Clone, Debug)]
pub struct SweepPoint {
    /// Offered load as a multiple of the peak, as asked.
    pub factor: f64,
    /// What the generator sent, Mpps (below `factor * peak` when it could not go faster).
    pub offered_mpps: f64,
    pub goodput_mpps: f64,
}

/// The overload sweep of one DUT kind and direction (64 B).
#[derive(Clone, Debug)]
pub struct Sweep {
    pub direction: Direction,
    pub dut: Dut,
    pub peak_mpps: f64,
    pub points: Vec<SweepPoint>,
    /// At 2x the peak: fraction of the DUT's core the NAPI threads of its ingress veths
    /// (A's `eth0` and `vethc`) ran, and the vxdp workers (0 for other DUTs).
    pub napi_share_2x: f64,
    pub worker_share_2x: f64,
}

impl Sweep {
    /// Goodput at `factor` x the peak as a fraction of the peak.
    pub fn at(&self, factor: f64) -> Option<&SweepPoint> {
        self.points.iter().find(|p| (p.factor - factor).abs() < 1e-9)
    }
}

/// CPU used with no traffic.
#[derive(Clone, Debug)]
pub struct Idle {
    pub dut: Dut,
    /// Busy fraction of the DUT's core (everything on it: the daemon, kernel threads).
    pub dut_core: f64,
    /// Fraction of a core each vxdp worker thread used (from its schedstat).
    pub workers: Vec<f64>,
}

/// Everything the one-core comparison measured.
#[derive(Clone, Debug, Default)]
pub struct Headline {
    pub rows: Vec<HeadRow>,
    pub sweeps: Vec<Sweep>,
    pub idle: Vec<Idle>,
}

impl Headline {
    /// The row of `dut` for `dir` and `size`.
    pub fn row(&self, dir: Direction, size: usize, dut: Dut) -> Option<&HeadRow> {
        self.rows.iter().find(|r| r.direction == dir && r.size == size && r.dut == dut)
    }
}

/// CPU nanoseconds every thread named `vxdp-w*` of process `pid` has run, by name.
fn worker_cpu_ns(pid: u32) -> Vec<(String, u64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<(String, u64)> = dir
        .filter_map(|e| {
            let path = e.ok()?.path();
            let comm = std::fs::read_to_string(path.join("comm")).ok()?.trim().to_string();
            if !comm.starts_with("vxdp-w") {
                return None;
            }
            let ns = std::fs::read_to_string(path.join("schedstat")).ok()?.split_whitespace().next()?.parse().ok()?;
            Some((comm, ns))
        })
        .collect();
    out.sort();
    out
}

/// CPU nanoseconds thread `tid` has run (its schedstat).
fn thread_cpu_ns(tid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU nanoseconds of the DUT host's ingress NAPI threads and of the vxdp workers.
fn dut_thread_ns(topo: &BenchTopo, guard: &DutGuard) -> (u64, u64) {
    let napi =
        topo.napi.as_ref().map_or(0, |n| n.a_eth0.pids.iter().chain(&n.a_vethc.pids).map(|p| thread_cpu_ns(*p)).sum());
    let workers = match guard {
        DutGuard::Vxdp { daemons } => {
            daemons.iter().take(1).filter_map(|d| d.pid()).flat_map(worker_cpu_ns).map(|(_, ns)| ns).sum()
        }
        _ => 0,
    };
    (napi, workers)
}

fn measure_idle(guard: &DutGuard, dut: Dut, opts: &Options) -> Idle {
    // Let the start-up settle (fill rings stocked, first control-loop ticks).
    std::thread::sleep(Duration::from_millis(500));
    let pids: Vec<u32> = match guard {
        DutGuard::Vxdp { daemons } => daemons.iter().filter_map(|d| d.pid()).collect(),
        _ => Vec::new(),
    };
    let before: Vec<Vec<(String, u64)>> = pids.iter().map(|p| worker_cpu_ns(*p)).collect();
    let t0 = CpuTimes::read();
    let start = std::time::Instant::now();
    std::thread::sleep(opts.idle_phase);
    let busy = CpuTimes::read().busy_since(&t0);
    let wall = start.elapsed().as_nanos() as f64;
    let mut workers = Vec::new();
    for (pid, then) in pids.iter().zip(&before) {
        for (name, now) in worker_cpu_ns(*pid) {
            let was = then.iter().find(|(n, _)| *n == name).map_or(now, |(_, v)| *v);
            workers.push(now.saturating_sub(was) as f64 / wall);
        }
    }
    let (_, _, cpus) = suite::dut_cpus(1);
    Idle { dut, dut_core: cpus.iter().filter_map(|c| busy.get(*c)).sum(), workers }
}

/// Measures one row: full load, the peak search, latency at half the peak, and (if
/// `sweep`) the overload sweep.
fn measure_row(
    topo: &BenchTopo,
    guard: &DutGuard,
    dir: Direction,
    dut: Dut,
    size: usize,
    opts: &Options,
    sweep: bool,
) -> (HeadRow, Option<Sweep>) {
    let (_, _, cpus) = suite::dut_cpus(1);
    let (mut tester, xdp) = suite::build_tester(topo, dir, size, FLOWS, 1);
    // Full load first (its latency phase is replaced below, once the peak is known).
    let no_lat = Options { lat_phase: Duration::ZERO, ..opts.clone() };
    let mut m = suite::measure(&mut tester, size, &no_lat, &cpus, None);
    let gen = m.sent as f64 / opts.max_phase.as_secs_f64();
    let mut peak = m.mpps * 1e6;
    let mut below = 0;
    for f in LADDER {
        let offered = gen * f;
        let r = tester.run(opts.step_phase, Some(offered), opts.drain);
        let good = r.received as f64 / opts.step_phase.as_secs_f64();
        peak = peak.max(good);
        // Past the knee twice in a row: higher steps only show the overload, which the
        // sweep measures.
        below = if good < 0.7 * offered { below + 1 } else { 0 };
        if below >= 2 {
            break;
        }
    }
    if peak > 0.0 {
        let lat = tester.run(opts.lat_phase, Some(peak * 0.5), opts.drain);
        m.lat_rate_mpps = peak * 0.5 / 1e6;
        m.lat_loss = lat.loss();
        m.p50_us = lat.latency_us(0.5);
        m.p99_us = lat.latency_us(0.99);
        m.p999_us = lat.latency_us(0.999);
    }
    let sweep = (sweep && peak > 0.0).then(|| {
        let (mut napi_share_2x, mut worker_share_2x) = (0.0, 0.0);
        let points = SWEEP
            .iter()
            .map(|&k| {
                let target = k * peak;
                let rate = (target < gen * 0.98).then_some(target);
                let before = dut_thread_ns(topo, guard);
                let t0 = std::time::Instant::now();
                let r = tester.run(opts.step_phase, rate, opts.drain);
                if k == 2.0 {
                    let after = dut_thread_ns(topo, guard);
                    let wall = t0.elapsed().as_nanos() as f64;
                    napi_share_2x = after.0.saturating_sub(before.0) as f64 / wall;
                    worker_share_2x = after.1.saturating_sub(before.1) as f64 / wall;
                }
                let secs = opts.step_phase.as_secs_f64();
                SweepPoint {
                    factor: k,
                    offered_mpps: r.sent as f64 / secs / 1e6,
                    goodput_mpps: r.received as f64 / secs / 1e6,
                }
            })
            .collect();
        Sweep { direction: dir, dut, peak_mpps: peak / 1e6, points, napi_share_2x, worker_share_2x }
    });
    drop(xdp);
    drop(tester);
    (HeadRow { direction: dir, size, dut, m, peak_mpps: peak / 1e6, gen_mpps: gen / 1e6 }, sweep)
}

/// Runs the one-core comparison on `topo` for every DUT kind of `opts`.
pub fn run(topo: &BenchTopo, opts: &Options, progress: &mut impl FnMut(&str)) -> Headline {
    let mut h = Headline::default();
    for &dut in &opts.duts {
        for dir in [Direction::Decap, Direction::Encap] {
            if !opts.directions.contains(&dir) {
                continue;
            }
            let guard = suite::start_dut(topo, dir, dut, 1, opts);
            if h.idle.iter().all(|x| x.dut != dut) {
                let idle = measure_idle(&guard, dut, opts);
                progress(&format!(
                    "idle {dut:>6}: DUT core {:.2}% busy, workers {:?}",
                    idle.dut_core * 100.0,
                    idle.workers.iter().map(|w| format!("{:.2}%", w * 100.0)).collect::<Vec<_>>()
                ));
                h.idle.push(idle);
            }
            for size in SIZES.into_iter().filter(|s| opts.sizes.contains(s)) {
                let (row, sweep) = measure_row(topo, &guard, dir, dut, size, opts, size == SIZES[0]);
                progress(&format!(
                    "one core {dir:>5} {dut:>6} {size:>4}B: {:.3} Mpps (peak {:.3}, gen {:.3}) loss {:.1}% {:.0} ns/frame on the DUT core, p99 {:.0} us{}",
                    row.m.mpps,
                    row.peak_mpps,
                    row.gen_mpps,
                    row.m.loss * 100.0,
                    row.m.dut_ns_per_pkt,
                    row.m.p99_us,
                    sweep.as_ref().map(|s| format!(
                        "; sweep {}; at 2x NAPI threads {:.0}%, workers {:.0}% of the core",
                        s.points.iter().map(|p| format!("{}x:{:.3}", p.factor, p.goodput_mpps)).collect::<Vec<_>>().join(" "),
                        s.napi_share_2x * 100.0,
                        s.worker_share_2x * 100.0
                    )).unwrap_or_default()
                ));
                h.rows.push(row);
                h.sweeps.extend(sweep);
            }
            drop(guard);
        }
    }
    h
}
