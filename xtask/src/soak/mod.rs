//! `cargo xtask soak [--minutes N] [--datapath auto|afxdp] [--out DIR]`: vxdp under
//! sustained load and faults, in namespaces the soak creates, for N minutes (default
//! 10), then a report of whether every frame and every resource is accounted for.
//!
//! ```text
//!  container CA 198.51.100.1 -- br0 -- vx0 (vxdp, host A 192.0.2.1) === underlay === host B 192.0.2.2: vxlan0 (kernel) -- br0 -- CB 198.51.100.2
//!                                                                                     etcd, 3 members on 192.0.2.2 (vxdp's --cluster-store)
//! ```
//!
//! The topology is the integration tests' two-host [`Topology`]; vxdp runs on A with
//! `--remote 192.0.2.2 --cluster-store etcd://... --advertise`, the kernel vxlan device
//! on B, and a 3-member etcd ([`EtcdCluster`]) on B's underlay address. During the run:
//!
//! - UDP both ways between the containers at half of the capacity measured for 3 s
//!   before (unpaced senders, one thread per direction: what this machine carries);
//! - one malformed VXLAN frame per 50 B → A frames (1 % of the total) from B's
//!   underlay to vxdp's UDP/4789 on a raw socket: seven kinds, truncated, bad flags,
//!   wrong lengths;
//! - FDB churn: `vxdp fdb add|replace|del` every 100 ms, and etcd puts and deletes
//!   under vxdp's prefix every 50 ms;
//! - every store period (60 s, or a quarter of the run if shorter) every etcd member
//!   SIGKILLed and restarted on its data dir;
//! - every kill period (180 s, or a third of the run if shorter) vxdp SIGKILLed under
//!   traffic and started again under it.
//!
//! The run is cut into epochs, one per vxdp process. An epoch starts and ends with the
//! senders paused and the receivers quiet, so its counters are complete; a kill happens
//! between two epochs, 2 s after traffic resumed, and the window between them (what a
//! kill loses cannot be counted by the process that died) is reported, not balanced.
//! The new process must carry traffic both ways within 15 s. Each epoch is checked:
//!
//! - frames: sent (both senders and the malformed stream) = delivered (both receivers,
//!   each sequence number once) + counted drops (vxdp's `total.drop_*` and the XDP drops
//!   in [`probe::XDP_DROPS`], the kernel's per-link drops and errors on every namespace
//!   of the path, UDP `InErrors` of the receiving containers); the malformed frames are
//!   exactly the drops in [`traffic::MALFORMED_REASONS`]; no duplicates; inside vxdp,
//!   what XDP steered to each socket = what the worker took + what the socket dropped;
//! - resources: the daemon's RSS and open fds at the epoch's start and end (growth
//!   bounds [`RSS_GROWTH_KIB`], [`FD_GROWTH`]), and its UMEM frames in use at both
//!   quiet points (must not grow);
//! - the FDB: the static entries are what the CLI churner set, the store entries what
//!   etcd holds (within 10 s);
//! - the watchdog: a worker whose frame counters did not move for two samples in a row
//!   while XDP steered frames to the sockets is a stall.
//!
//! Any violation, a daemon that died on its own, or Ctrl-C makes the command fail after
//! the report is written (`DIR/soak-<unix time>.json`, default `target/soak/`) and
//! everything is removed: the namespaces, the daemons and etcd, also on a panic.

mod churn;
mod probe;
mod traffic;

use crate::Result;
use churn::Churn;
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use traffic::{Flow, Malformed, Receiver, Sender, BLAST};
use vxdp_tests::raw::{mac, RawSocket};
use vxdp_tests::topology::link_mac;
use vxdp_tests::{in_netns, in_netns_at, wait_until, Daemon, Side, Topology, VtepKind};
use vxdp_testsupport::etcd::{self, EtcdCluster};

const A_IP: &str = "192.0.2.1";
const B_IP: &str = "192.0.2.2";
const CA_IP: &str = "198.51.100.1";
const CB_IP: &str = "198.51.100.2";
const VNI: u32 = 42;
/// UDP port of the soak's receivers in the containers.
const PORT: u16 = 5400;
/// Direction tags: A → B and B → A.
const AB: u8 = 1;
const BA: u8 = 2;
/// Growth of the daemon's RSS within one process's life that fails the soak: the
/// UMEM (32 MiB per worker) is mapped pre-faulted at start, so what grows is the heap:
/// tables of a few hundred entries, the store client, the control socket's threads.
pub const RSS_GROWTH_KIB: u64 = 8 * 1024;
/// Growth of the daemon's open fds within one process's life that fails the soak.
pub const FD_GROWTH: u64 = 4;
/// How long the capacity probe runs each way (both at once), and how much of its
/// start is left out of the figure.
const PROBE: Duration = Duration::from_secs(3);
const PROBE_SKIP: Duration = Duration::from_secs(1);
/// Traffic before a kill, after the quiet point that closed the epoch.
const KILL_LEAD: Duration = Duration::from_secs(2);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

struct Args {
    minutes: f64,
    datapath: String,
    out: PathBuf,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut a = Args { minutes: 10.0, datapath: "auto".into(), out: crate::root().join("target/soak") };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("soak: {flag} needs a value"));
        match flag.as_str() {
            "--minutes" => {
                let v = value()?;
                a.minutes = v
                    .parse()
                    .ok()
                    .filter(|m: &f64| *m >= 1.0 && *m <= 24.0 * 60.0)
                    .ok_or(format!("soak: --minutes {v}: not a number of minutes from 1 to 1440"))?;
            }
            "--datapath" => {
                let v = value()?;
                if v != "auto" && v != "afxdp" {
                    return Err(format!("soak: --datapath {v}: expected auto or afxdp"));
                }
                a.datapath = v.clone();
            }
            "--out" => a.out = PathBuf::from(value()?),
            other => {
                return Err(format!("soak: unknown flag '{other}' (--minutes N, --datapath auto|afxdp, --out DIR)"))
            }
        }
    }
    Ok(a)
}

/// When the faults happen.
#[derive(Debug)]
struct Plan {
    total: Duration,
    store_period: Duration,
    kill_period: Duration,
    /// Store restarts and vxdp kills, by time since the start of the soak traffic.
    events: Vec<(Duration, Event)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    StoreRestart,
    Kill,
}

impl Plan {
    /// A store restart every 60 s and a kill every 180 s, both shortened for short runs
    /// (a quarter and a third of the run) so each happens at least twice; kills are
    /// offset by half a store period, and nothing is scheduled in the last 10 s.
    fn new(total: Duration) -> Plan {
        let store_period = Duration::from_secs(60).min(total / 4);
        let kill_period = Duration::from_secs(180).min(total / 3);
        let last = total.saturating_sub(Duration::from_secs(10));
        let mut events = Vec::new();
        let mut t = store_period;
        while t < last {
            events.push((t, Event::StoreRestart));
            t += store_period;
        }
        let mut t = kill_period + store_period / 2;
        while t < last {
            events.push((t, Event::Kill));
            t += kill_period;
        }
        events.sort_by_key(|e| e.0);
        Plan { total, store_period, kill_period, events }
    }
}

/// Counters at one quiet point.
#[derive(Clone)]
struct Snap {
    at: Duration,
    sent: [u64; 2],
    send_errors: [u64; 2],
    malformed: u64,
    delivered: [u64; 2],
    duplicates: [u64; 2],
    vxdp: Value,
    kernel: probe::Kernel,
    /// The veths among the kernel counters' links (`TAG/name`).
    veths: Vec<String>,
}

/// One vxdp process's share of the run.
struct Epoch {
    pid: u32,
    start: Snap,
    rss_fds: (u64, u64),
    umem: Option<u64>,
}

/// Everything the orchestrator works with.
struct Soak<'a> {
    topo: Topology,
    etcd: EtcdCluster,
    daemon_args: Vec<String>,
    senders: &'a [Sender; 2],
    receivers: &'a [Receiver; 2],
    cli: &'a Churn,
    store: &'a Churn,
    t0: Instant,
    /// Where the report goes, and each vxdp process's log (`soak-<unix>-vxdp-<pid>.log`).
    out: PathBuf,
    tag: u64,
    violations: Vec<String>,
    epochs: Vec<Value>,
    events: Vec<Value>,
    watchdog: Watchdog,
}

/// Workers whose counters stopped moving while XDP steered frames to their sockets.
#[derive(Default)]
struct Watchdog {
    prev: Option<(Vec<u64>, u64)>,
    still: Vec<u32>,
    samples: u64,
    stalls: Vec<Value>,
}

impl Watchdog {
    fn reset(&mut self) {
        self.prev = None;
    }

    fn observe(&mut self, stats: &Value, at: Duration) {
        let rx = probe::worker_rx(stats);
        let steered = probe::steered(stats);
        self.samples += 1;
        if let Some((prx, psteered)) = &self.prev {
            if prx.len() == rx.len() {
                self.still.resize(rx.len(), 0);
                let queued = steered.saturating_sub(*psteered);
                for w in 0..rx.len() {
                    if queued > 0 && rx[w] == prx[w] {
                        self.still[w] += 1;
                        if self.still[w] == 2 {
                            self.stalls
                                .push(json!({"worker": w, "at_s": at.as_secs_f64(), "steered_meanwhile": queued}));
                        }
                    } else {
                        self.still[w] = 0;
                    }
                }
            }
        }
        self.prev = Some((rx, steered));
    }
}

impl Soak<'_> {
    fn daemon(&self) -> &Daemon {
        self.topo.a.daemon()
    }

    fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }

    fn set_rate(&self, pps: [u64; 2]) {
        for (s, r) in self.senders.iter().zip(pps) {
            s.rate.store(r, Ordering::Relaxed);
        }
    }

    fn delivered(&self) -> [u64; 2] {
        [0, 1].map(|i| self.receivers[i].delivered.load(Ordering::Relaxed))
    }

    /// Starts vxdp on A and puts `vx0` into A's bridge.
    fn start_daemon(&mut self) {
        let args: Vec<&str> = self.daemon_args.iter().map(String::as_str).collect();
        let d = Daemon::start(&self.topo.a.ns, "vx0", &args);
        self.topo.a.ns.run("ip link set vx0 master br0 up");
        self.topo.a.daemon = Some(d);
    }

    /// Pauses the senders and waits until nothing more arrives, then until vxdp has
    /// refreshed its sockets' drop counters (about once a second) and published.
    fn quiesce(&self) {
        self.set_rate([0, 0]);
        wait_until(Duration::from_secs(2), || self.senders.iter().all(|s| s.idle.load(Ordering::Acquire)));
        let mut last = self.delivered();
        let mut quiet_since = Instant::now();
        let limit = Instant::now() + Duration::from_secs(10);
        while quiet_since.elapsed() < Duration::from_millis(400) && Instant::now() < limit {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.delivered();
            if now != last {
                (last, quiet_since) = (now, Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(1500));
    }

    fn snap(&self) -> std::result::Result<Snap, String> {
        let vxdp = self.daemon().try_stats().map_err(|e| format!("vxdp stats: {e:#}"))?.0;
        let mut veths = Vec::new();
        let mut kernel = probe::kernel(&self.topo.a.container, "CA", &mut veths);
        kernel.extend(probe::kernel(&self.topo.a.ns, "A", &mut veths));
        kernel.extend(probe::kernel(&self.topo.b.ns, "B", &mut veths));
        kernel.extend(probe::kernel(&self.topo.b.container, "CB", &mut veths));
        let l = |i: usize| &self.senders[i];
        Ok(Snap {
            at: self.elapsed(),
            sent: [0, 1].map(|i| l(i).sent.load(Ordering::Relaxed)),
            send_errors: [0, 1].map(|i| l(i).errors.load(Ordering::Relaxed)),
            malformed: l(1).malformed.load(Ordering::Relaxed),
            delivered: self.delivered(),
            duplicates: [0, 1].map(|i| self.receivers[i].duplicates.load(Ordering::Relaxed)),
            vxdp,
            kernel,
            veths,
        })
    }

    /// Keeps the daemon's log beside the report (the harness deletes it on drop).
    fn save_log(&self, pid: u32) {
        let path = self.out.join(format!("soak-{}-vxdp-{pid}.log", self.tag));
        if let Err(e) = std::fs::write(&path, self.daemon().log_text()) {
            eprintln!("soak: {}: {e}", path.display());
        }
    }

    fn pid(&self) -> u32 {
        self.daemon().pid().unwrap_or(0)
    }

    /// Low-rate frames both ways until each receiver got some (the daemon is up, `vx0`
    /// bridged, the path learned), then quiet. Not part of any epoch.
    fn warm_up(&mut self) -> bool {
        let before = self.delivered();
        self.set_rate([200, 200]);
        let ok = wait_until(Duration::from_secs(15), || {
            let now = self.delivered();
            now[0] >= before[0] + 20 && now[1] >= before[1] + 20
        });
        self.quiesce();
        if !ok {
            self.violations.push(format!(
                "warm-up: the overlay did not carry frames both ways within 15 s (at {:?})",
                self.elapsed()
            ));
        }
        ok
    }

    fn begin_epoch(&mut self) -> std::result::Result<Epoch, String> {
        self.store.paused.store(true, Ordering::Release);
        self.cli.paused.store(true, Ordering::Release);
        let start = self.snap()?;
        let pid = self.pid();
        let rss_fds = probe::rss_fds(pid).unwrap_or((0, 0));
        let umem = probe::umem_in_use(&start.vxdp);
        self.watchdog.reset();
        self.cli.paused.store(false, Ordering::Release);
        self.store.paused.store(false, Ordering::Release);
        Ok(Epoch { pid, start, rss_fds, umem })
    }

    /// Pauses traffic and churn, takes the closing counters and checks the epoch.
    fn end_epoch(&mut self, e: Epoch, ended_by: &str) {
        self.quiesce();
        self.cli.paused.store(true, Ordering::Release);
        self.store.paused.store(true, Ordering::Release);
        let end = match self.snap() {
            Ok(s) => s,
            Err(err) => {
                self.violations.push(format!(
                    "epoch {} (pid {}): no closing counters: {err}",
                    self.epochs.len(),
                    e.pid
                ));
                self.epochs.push(json!({"pid": e.pid, "ended_by": ended_by, "error": err}));
                return;
            }
        };
        let (mut report, mut v) = account(&e.start, &end);
        let rss_fds = probe::rss_fds(e.pid).unwrap_or((0, 0));
        let umem = probe::umem_in_use(&end.vxdp);
        if rss_fds.0 > e.rss_fds.0 + RSS_GROWTH_KIB {
            v.push(format!("RSS grew from {} KiB to {} KiB (bound +{RSS_GROWTH_KIB} KiB)", e.rss_fds.0, rss_fds.0));
        }
        if rss_fds.1 > e.rss_fds.1 + FD_GROWTH {
            v.push(format!("open fds grew from {} to {} (bound +{FD_GROWTH})", e.rss_fds.1, rss_fds.1));
        }
        match (e.umem, umem) {
            (Some(a), Some(b)) if b > a => {
                v.push(format!("UMEM frames in use grew from {a} to {b} between quiet points"))
            }
            (None, _) | (_, None) => v.push("the daemon reports no umem_frames_in_use".into()),
            _ => {}
        }
        let fdb = self.check_fdb(&mut v);
        let o = report.as_object_mut().expect("object");
        o.insert("pid".into(), json!(e.pid));
        o.insert("ended_by".into(), json!(ended_by));
        o.insert("rss_kib".into(), json!([e.rss_fds.0, rss_fds.0]));
        o.insert("open_fds".into(), json!([e.rss_fds.1, rss_fds.1]));
        o.insert("umem_frames_in_use".into(), json!([e.umem, umem]));
        o.insert("fdb".into(), fdb);
        o.insert("violations".into(), json!(v));
        let n = self.epochs.len();
        self.violations.extend(v.into_iter().map(|s| format!("epoch {n} (pid {}): {s}", e.pid)));
        print_epoch(n, &report);
        self.epochs.push(report);
    }

    /// The daemon's static entries against the CLI churner's model, its store entries
    /// against etcd's listing (given 10 s to converge).
    fn check_fdb(&self, v: &mut Vec<String>) -> Value {
        let show = || self.daemon().ctl(&["fdb", "show", "dev", "vx0"]).unwrap_or_default();
        let flood = ("00:00:00:00:00:00".to_string(), B_IP.to_string());
        // Held while the daemon is asked: an operation the churner began before the pause
        // waits, so the model and the table are compared at one point.
        let model = self.cli.model.lock().unwrap();
        let cli_want: std::collections::BTreeSet<(String, String)> =
            model.iter().map(|(m, d)| (m.clone(), d.clone())).collect();
        let mut by = churn::fdb_by_source(&show());
        drop(model);
        let mut cli_got = by.remove("static").unwrap_or_default();
        let has_flood = cli_got.remove(&flood);
        if !has_flood {
            v.push("the --remote flood entry is missing from vxdp fdb show".into());
        }
        let cli_ok = cli_got == cli_want;
        if !cli_ok {
            v.push(format!(
                "static FDB differs from what the CLI set: missing {:?}, extra {:?}",
                cli_want.difference(&cli_got).collect::<Vec<_>>(),
                cli_got.difference(&cli_want).collect::<Vec<_>>()
            ));
        }
        let eps = self.etcd.endpoints();
        let list = || {
            let eps = eps.clone();
            in_netns_at(&self.topo.b.ns.path(), move || {
                let eps: Vec<&str> = eps.iter().map(String::as_str).collect();
                vxdp_control::store::etcd::EtcdStore::new(vxdp_control::store::etcd::EtcdConfig::new(&eps))
                    .and_then(|mut s| s.list(vxdp_tests::store_e2e::PREFIX))
                    .map_err(|e| e.to_string())
            })
        };
        let (mut want, mut got) = Default::default();
        let started = Instant::now();
        let store_ok = wait_until(Duration::from_secs(10), || {
            let Ok(pairs) = list() else { return false };
            want = churn::store_expected(&pairs, A_IP);
            got = churn::fdb_by_source(&show()).remove("store").unwrap_or_default();
            want == got
        });
        if !store_ok {
            v.push(format!(
                "store FDB entries differ from etcd after 10 s: missing {:?}, extra {:?}",
                want.difference(&got).collect::<Vec<_>>(),
                got.difference(&want).collect::<Vec<_>>()
            ));
        }
        json!({
            "cli_entries": cli_want.len(), "cli_match": cli_ok,
            "store_entries": want.len(), "store_match": store_ok,
            "store_converged_s": started.elapsed().as_secs_f64(),
        })
    }

    fn restart_store(&mut self) {
        let at = self.elapsed();
        let started = Instant::now();
        let etcd = &mut self.etcd;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            in_netns(&self.topo.b.ns, || {
                for i in 0..3 {
                    etcd.kill(i);
                }
                for i in 0..3 {
                    etcd.restart(i);
                }
                etcd.wait_healthy(Duration::from_secs(30));
            })
        }));
        let secs = started.elapsed().as_secs_f64();
        if r.is_err() {
            self.violations.push(format!("store restart at {at:?}: etcd not healthy again within 30 s"));
        }
        println!(
            "soak {:>6.1}s: etcd: every member SIGKILLed and restarted, healthy after {secs:.2} s",
            at.as_secs_f64()
        );
        self.events.push(json!({"event": "store_restart", "at_s": at.as_secs_f64(), "healthy_after_s": secs}));
    }

    /// Closes the epoch at a quiet point, then with traffic flowing again at `rate`
    /// SIGKILLs vxdp and starts it again, and opens the next epoch once the new
    /// process carries frames both ways. The frames of the kill window (between the two
    /// epochs) cannot all be accounted for: the killed process's counters die with it,
    /// and frames arriving while no XDP program is attached go to the kernel, which has
    /// no socket for them. The window's sent and delivered figures are reported.
    fn kill_and_restart(&mut self, epoch: Epoch, rate: [u64; 2]) -> Option<Epoch> {
        self.end_epoch(epoch, "kill -9");
        let (s0, d0) = ([0, 1].map(|i| self.senders[i].sent.load(Ordering::Relaxed)), self.delivered());
        self.cli.paused.store(false, Ordering::Release);
        self.store.paused.store(false, Ordering::Release);
        self.set_rate(rate);
        std::thread::sleep(KILL_LEAD);
        let at = self.elapsed();
        let pid = self.pid();
        self.cli.paused.store(true, Ordering::Release);
        // The churner finishes an operation it began before the pause.
        drop(self.cli.model.lock().unwrap());
        self.topo.a.daemon.as_mut().expect("daemon").kill_hard();
        self.save_log(pid);
        let restarted = Instant::now();
        self.start_daemon();
        self.cli.model.lock().unwrap().clear();
        let secs = restarted.elapsed().as_secs_f64();
        // The new process carries the overlay both ways under the load it started in.
        let d1 = self.delivered();
        let carries = wait_until(Duration::from_secs(15), || {
            let d = self.delivered();
            d[0] > d1[0] + 1000 && d[1] > d1[1] + 1000
        });
        let carried_after = restarted.elapsed().as_secs_f64();
        self.quiesce();
        let (s1, d2) = ([0, 1].map(|i| self.senders[i].sent.load(Ordering::Relaxed)), self.delivered());
        let sent = [s1[0] - s0[0], s1[1] - s0[1]];
        let delivered = [d2[0] - d0[0], d2[1] - d0[1]];
        println!(
            "soak {:>6.1}s: vxdp SIGKILLed under traffic, answering again after {secs:.2} s, carrying both ways after \
             {carried_after:.2} s; kill window: sent {} / {}, delivered {} / {}",
            at.as_secs_f64(),
            sent[0],
            sent[1],
            delivered[0],
            delivered[1]
        );
        self.events.push(json!({
            "event": "vxdp_kill", "at_s": at.as_secs_f64(), "ready_after_s": secs, "carrying_after_s": carried_after,
            "window": {"sent": {"a_to_b": sent[0], "b_to_a": sent[1]},
                       "delivered": {"a_to_b": delivered[0], "b_to_a": delivered[1]}},
        }));
        if !carries {
            self.violations
                .push(format!("vxdp restarted at {at:?} did not carry 1000 frames each way within 15 s under load"));
            return None;
        }
        match self.begin_epoch() {
            Ok(e) => {
                self.set_rate(rate);
                Some(e)
            }
            Err(e) => {
                self.violations.push(format!("epoch after the kill: {e}"));
                None
            }
        }
    }

    /// One sample: the daemon is alive and answers, and the watchdog's view.
    fn sample(&mut self) -> bool {
        let alive = self.topo.a.daemon.as_mut().is_some_and(|d| d.is_alive());
        if !alive {
            self.violations.push(format!("vxdp exited on its own at {:?}", self.elapsed()));
            return false;
        }
        match self.daemon().try_stats() {
            Ok(s) => {
                let at = self.elapsed();
                self.watchdog.observe(&s.0, at);
                true
            }
            Err(e) => {
                self.violations.push(format!("vxdp stats failed at {:?}: {e:#}", self.elapsed()));
                true
            }
        }
    }
}

/// Sums one epoch: frames in, frames out, the checks (see the module doc).
fn account(s0: &Snap, s1: &Snap) -> (Value, Vec<String>) {
    let mut v = Vec::new();
    let d2 = |a: [u64; 2], b: [u64; 2]| [b[0] - a[0], b[1] - a[1]];
    let sent = d2(s0.sent, s1.sent);
    let delivered = d2(s0.delivered, s1.delivered);
    let dups = d2(s0.duplicates, s1.duplicates);
    let errors = d2(s0.send_errors, s1.send_errors);
    let malformed = s1.malformed - s0.malformed;
    let dv = |k: &str| probe::vx(&s1.vxdp, k).saturating_sub(probe::vx(&s0.vxdp, k));
    let mut vxdp_drops = std::collections::BTreeMap::new();
    for k in probe::drop_keys(&s1.vxdp).iter().map(String::as_str).chain(probe::XDP_DROPS) {
        vxdp_drops.insert(k.to_string(), dv(k));
    }
    let vxdp_sum: u64 = vxdp_drops.values().sum();
    let malformed_counted: u64 = traffic::MALFORMED_REASONS.iter().map(|k| dv(k)).sum();
    let kd = probe::delta(&s0.kernel, &s1.kernel);
    let (summed, not_summed): (probe::Kernel, probe::Kernel) =
        kd.into_iter().partition(|(k, _)| probe::summed(k, &s1.veths));
    let kernel_sum: u64 = summed.values().sum();
    let frames_in = sent[0] + sent[1] + malformed;
    let frames_out = delivered[0] + delivered[1] + vxdp_sum + kernel_sum;
    let unaccounted = frames_in as i128 - frames_out as i128;
    if unaccounted != 0 {
        v.push(format!(
            "{frames_in} frames sent, {frames_out} delivered or counted as dropped ({unaccounted:+} unaccounted)"
        ));
    }
    if malformed_counted != malformed {
        v.push(format!(
            "{malformed} malformed frames sent, {malformed_counted} counted under {:?}",
            traffic::MALFORMED_REASONS
        ));
    }
    if dups != [0, 0] {
        v.push(format!("duplicates delivered: A→B {}, B→A {}", dups[0], dups[1]));
    }
    // Inside vxdp: XDP steered = the worker took + the socket dropped, per socket.
    let mut internal = serde_json::Map::new();
    for side in ["underlay", "overlay"] {
        let steered = dv(&format!("xdp_{side}_steered"));
        let taken = dv(&format!("{side}_rx_frames"));
        let lost = dv(&format!("drop_{side}_rx_ring_full")) + dv(&format!("drop_{side}_no_rx_buffer"));
        internal.insert(side.into(), json!({"steered": steered, "taken": taken, "socket_drops": lost}));
        if steered != taken + lost {
            v.push(format!(
                "{side} socket: XDP steered {steered}, the worker took {taken} and the socket dropped {lost}"
            ));
        }
    }
    let secs = (s1.at - s0.at).as_secs_f64();
    let report = json!({
        "from_s": s0.at.as_secs_f64(), "to_s": s1.at.as_secs_f64(),
        "sent": {"a_to_b": sent[0], "b_to_a": sent[1], "malformed": malformed},
        "send_errors": {"a_to_b": errors[0], "b_to_a": errors[1]},
        "delivered": {"a_to_b": delivered[0], "b_to_a": delivered[1]},
        "mean_pps": {"a_to_b": sent[0] as f64 / secs, "b_to_a": sent[1] as f64 / secs},
        "duplicates": {"a_to_b": dups[0], "b_to_a": dups[1]},
        "drops_vxdp": probe::nonzero(&vxdp_drops),
        "drops_kernel": probe::nonzero(&summed),
        "kernel_not_summed": probe::nonzero(&not_summed),
        "malformed_counted": malformed_counted,
        "express": {"decap": dv("xdp_express_decap"), "encap": dv("xdp_express_encap")},
        "workers": {"decap": dv("decap_frames").saturating_sub(dv("xdp_express_decap")),
                    "encap": dv("encap_frames").saturating_sub(dv("xdp_express_encap"))},
        "xdp_sockets": Value::Object(internal),
        "frames_in": frames_in, "frames_out": frames_out, "unaccounted": unaccounted as i64,
    });
    (report, v)
}

fn print_epoch(n: usize, r: &Value) {
    println!(
        "soak epoch {n} (pid {}, {:.0}-{:.0} s, ended by {}): sent A→B {} B→A {} malformed {}; delivered {} / {}; \
         drops vxdp {} kernel {}; unaccounted {}; RSS {} KiB, fds {}, UMEM in use {}; fdb {}",
        r["pid"],
        r["from_s"].as_f64().unwrap_or(0.0),
        r["to_s"].as_f64().unwrap_or(0.0),
        r["ended_by"].as_str().unwrap_or("?"),
        r["sent"]["a_to_b"],
        r["sent"]["b_to_a"],
        r["sent"]["malformed"],
        r["delivered"]["a_to_b"],
        r["delivered"]["b_to_a"],
        r["drops_vxdp"],
        r["drops_kernel"],
        r["unaccounted"],
        r["rss_kib"],
        r["open_fds"],
        r["umem_frames_in_use"],
        r["fdb"],
    );
    for v in r["violations"].as_array().into_iter().flatten() {
        println!("  VIOLATION: {}", v.as_str().unwrap_or("?"));
    }
}

pub fn soak(bin: &Path, args: &[String]) -> Result<()> {
    let a = parse(args)?;
    if !crate::is_root() {
        return Err("soak: creates network namespaces: run it as root".into());
    }
    if !etcd::available("soak") {
        return Err("soak: needs etcd-server (cargo xtask setup installs it)".into());
    }
    std::fs::create_dir_all(&a.out).map_err(|e| format!("soak: {}: {e}", a.out.display()))?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    std::env::set_var("VXDP_BIN", bin);
    // The harness names it when it starts a daemon (the flag is passed as well).
    std::env::set_var("VXDP_DATAPATH", &a.datapath);
    let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(bin, &a, started)));
    let mut report = match result {
        Ok(r) => r,
        Err(_) => return Err("soak: failed (see the panic above); everything it created is removed".into()),
    };
    let violations = report["violations"].as_array().map_or(0, Vec::len);
    let o = report.as_object_mut().expect("object");
    o.insert("started_unix".into(), json!(started));
    o.insert("interrupted".into(), json!(interrupted()));
    let path = a.out.join(format!("soak-{started}.json"));
    let text = serde_json::to_string_pretty(&report).expect("JSON");
    std::fs::write(&path, text + "\n").map_err(|e| format!("soak: {}: {e}", path.display()))?;
    println!("soak: report written to {}", path.display());
    if interrupted() {
        return Err("soak: interrupted".into());
    }
    if violations > 0 {
        for v in report["violations"].as_array().into_iter().flatten() {
            eprintln!("soak: VIOLATION: {}", v.as_str().unwrap_or("?"));
        }
        return Err(format!("soak: {violations} violation(s)"));
    }
    println!("soak: no violation");
    Ok(())
}

fn run(bin: &Path, a: &Args, tag: u64) -> Value {
    let plan = Plan::new(Duration::from_secs_f64(a.minutes * 60.0));
    println!(
        "soak: {:.1} min, datapath {}, store restart every {:?}, vxdp kill every {:?}; events: {:?}",
        a.minutes, a.datapath, plan.store_period, plan.kill_period, plan.events
    );
    let mut topo = Topology::new();
    topo.add_vtep(Side::B, VtepKind::Kernel);
    let etcd = in_netns(&topo.b.ns, || EtcdCluster::start_on(B_IP, 3));
    let url = etcd.url();
    let daemon_args: Vec<String> = [
        "--dev",
        "eth0",
        "--vni",
        "42",
        "--remote",
        B_IP,
        "--cluster-store",
        &url,
        "--advertise",
        "--datapath",
        &a.datapath,
    ]
    .map(String::from)
    .to_vec();
    // No ARP in the overlay: every overlay frame is a soak frame.
    let (ca_mac, cb_mac) = (link_mac(&topo.a.container, "eth0"), link_mac(&topo.b.container, "eth0"));
    topo.a.container.run(format!("ip neigh replace {CB_IP} lladdr {cb_mac} dev eth0 nud permanent"));
    topo.b.container.run(format!("ip neigh replace {CA_IP} lladdr {ca_mac} dev eth0 nud permanent"));

    let udp = |ns: &vxdp_tests::Netns, ip: &str, port: u16, recv: bool| {
        let s = in_netns(ns, || UdpSocket::bind((ip, port))).unwrap_or_else(|e| panic!("bind {ip}:{port}: {e}"));
        traffic::force_buffer(&s, 8 << 20, recv);
        s
    };
    let rx_b = udp(&topo.b.container, CB_IP, PORT, true);
    let rx_a = udp(&topo.a.container, CA_IP, PORT, true);
    let tx_a = udp(&topo.a.container, CA_IP, 0, false);
    let tx_b = udp(&topo.b.container, CB_IP, 0, false);
    let raw = RawSocket::open(&topo.b.ns, "eth0", 0);
    let frames = traffic::malformed_frames(
        mac(&link_mac(&topo.a.ns, "eth0")),
        mac(&link_mac(&topo.b.ns, "eth0")),
        B_IP.parse::<Ipv4Addr>().expect("IPv4"),
        A_IP.parse::<Ipv4Addr>().expect("IPv4"),
        VNI,
    );
    let flows = [
        Flow {
            dir: AB,
            sock: tx_a,
            dst: SocketAddr::from((CB_IP.parse::<Ipv4Addr>().expect("IPv4"), PORT)),
            malformed: None,
        },
        Flow {
            dir: BA,
            sock: tx_b,
            dst: SocketAddr::from((CA_IP.parse::<Ipv4Addr>().expect("IPv4"), PORT)),
            malformed: Some(Malformed { sock: raw, frames }),
        },
    ];
    let senders: [Sender; 2] = Default::default();
    let receivers: [Receiver; 2] = Default::default();
    let (cli, store) = (Churn::default(), Churn::default());
    let stop = AtomicBool::new(false);
    let endpoints = etcd.endpoints();
    let b_path = topo.b.ns.path();
    let a_ns = topo.a.ns.name().to_string();
    let mut soak = Soak {
        topo,
        etcd,
        daemon_args,
        senders: &senders,
        receivers: &receivers,
        cli: &cli,
        store: &store,
        t0: Instant::now(),
        out: a.out.clone(),
        tag,
        violations: Vec::new(),
        epochs: Vec::new(),
        events: Vec::new(),
        watchdog: Watchdog::default(),
    };
    let mut capacity = [0u64; 2];
    let mut rate = [0u64; 2];
    std::thread::scope(|s| {
        // Set on the way out, a panic included: every thread ends, the scope joins them.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let _stop = StopOnDrop(&stop);
        cli.paused.store(true, Ordering::Release);
        store.paused.store(true, Ordering::Release);
        let [fa, fb] = flows;
        let [ra, rb] = [rx_b, rx_a];
        let (stop, senders, receivers, cli, store) = (&stop, &senders, &receivers, &cli, &store);
        s.spawn(move || traffic::send(fa, &senders[0], stop));
        s.spawn(move || traffic::send(fb, &senders[1], stop));
        s.spawn(move || traffic::receive(ra, AB, &receivers[0], stop));
        s.spawn(move || traffic::receive(rb, BA, &receivers[1], stop));
        let a_ns = a_ns.as_str();
        s.spawn(move || churn::cli(bin, a_ns, cli, stop));
        let (eps, b_path) = (&endpoints, b_path.as_str());
        s.spawn(move || in_netns_at(b_path, || churn::store(eps, store, stop)));

        soak.start_daemon();
        if !soak.warm_up() {
            return;
        }
        // Capacity: both senders unpaced; what arrives per second once running.
        soak.set_rate([BLAST, BLAST]);
        std::thread::sleep(PROBE_SKIP);
        let (d0, t) = (soak.delivered(), Instant::now());
        std::thread::sleep(PROBE - PROBE_SKIP);
        let (d1, secs) = (soak.delivered(), t.elapsed().as_secs_f64());
        soak.quiesce();
        capacity = [0, 1].map(|i| ((d1[i] - d0[i]) as f64 / secs) as u64);
        rate = capacity.map(|c| (c / 2).max(100));
        println!(
            "soak: capacity A→B {} pps, B→A {} pps (both at once, unpaced); soak rate {} / {} pps",
            capacity[0], capacity[1], rate[0], rate[1]
        );

        soak.t0 = Instant::now();
        let mut epoch = match soak.begin_epoch() {
            Ok(e) => e,
            Err(e) => {
                soak.violations.push(format!("first epoch: {e}"));
                return;
            }
        };
        soak.set_rate(rate);
        let mut next = 0;
        let mut alive = true;
        println!("soak: traffic, churn and faults for {:?}", plan.total);
        while soak.elapsed() < plan.total && !interrupted() && alive {
            let tick = Instant::now();
            alive = soak.sample();
            if let Some(&(at, ev)) = plan.events.get(next) {
                if soak.elapsed() >= at && alive {
                    next += 1;
                    match ev {
                        Event::StoreRestart => soak.restart_store(),
                        Event::Kill => {
                            let Some(next) = soak.kill_and_restart(epoch, rate) else { return };
                            epoch = next;
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
        }
        if alive {
            soak.end_epoch(epoch, if interrupted() { "Ctrl-C" } else { "end" });
        }
        soak.set_rate([0, 0]);
        soak.save_log(soak.pid());
    });
    let wd = &soak.watchdog;
    if !wd.stalls.is_empty() {
        soak.violations.push(format!("worker stalls: {}", Value::Array(wd.stalls.clone())));
    }
    for (name, c) in [("cli", &cli), ("store", &store)] {
        if name == "cli" && c.errors.load(Ordering::Relaxed) > 0 {
            soak.violations.push(format!(
                "vxdp fdb commands failed {} times; last: {:?}",
                c.errors.load(Ordering::Relaxed),
                c.last_error.lock().unwrap()
            ));
        }
    }
    let churn_json = |c: &Churn| {
        json!({"ops": c.ops.load(Ordering::Relaxed), "errors": c.errors.load(Ordering::Relaxed),
               "last_error": *c.last_error.lock().unwrap()})
    };
    let report = json!({
        "minutes": a.minutes,
        "datapath": a.datapath,
        "plan": {"store_restart_period_s": plan.store_period.as_secs_f64(), "vxdp_kill_period_s": plan.kill_period.as_secs_f64(),
                 "events": plan.events.iter().map(|(t, e)| json!({"at_s": t.as_secs_f64(), "event": format!("{e:?}")})).collect::<Vec<_>>()},
        "bounds": {"rss_growth_kib": RSS_GROWTH_KIB, "fd_growth": FD_GROWTH, "umem_in_use_growth": 0, "watchdog_still_samples": 2},
        "capacity_pps": {"a_to_b": capacity[0], "b_to_a": capacity[1]},
        "rate_pps": {"a_to_b": rate[0], "b_to_a": rate[1], "malformed_every": traffic::MALFORMED_EVERY},
        "malformed_kinds": traffic::MALFORMED_KINDS,
        "epochs": soak.epochs,
        "events": soak.events,
        "churn": {"cli": churn_json(&cli), "store": churn_json(&store)},
        "watchdog": {"samples": wd.samples, "stalls": wd.stalls},
        "violations": soak.violations,
    });
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(sent: u64, malformed: u64, delivered: u64, vxdp: Value, kernel: &[(&str, u64)]) -> Snap {
        Snap {
            at: Duration::from_secs(sent),
            sent: [sent, sent],
            send_errors: [0, 0],
            malformed,
            delivered: [delivered, delivered],
            duplicates: [0, 0],
            vxdp,
            kernel: kernel.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            veths: vec!["CB/eth0".into()],
        }
    }

    fn stats(truncated: u64, steered: u64, taken: u64) -> Value {
        json!({"total": {"drop_truncated": truncated, "drop_no_fdb_entry": 0, "underlay_rx_frames": taken,
                         "overlay_rx_frames": 0},
               "xdp": {"xdp_underlay_steered": steered, "xdp_overlay_steered": 0}, "workers": []})
    }

    #[test]
    fn plan_runs_every_fault_at_least_twice_and_nothing_at_the_end() {
        let count = |p: &Plan, e: Event| p.events.iter().filter(|x| x.1 == e).count();
        let short = Plan::new(Duration::from_secs(120));
        assert_eq!((count(&short, Event::StoreRestart), count(&short, Event::Kill)), (3, 2));
        let long = Plan::new(Duration::from_secs(600));
        assert_eq!((long.store_period, long.kill_period), (Duration::from_secs(60), Duration::from_secs(180)));
        assert_eq!((count(&long, Event::StoreRestart), count(&long, Event::Kill)), (9, 3));
        for p in [short, long] {
            assert!(p.events.iter().all(|(t, _)| *t + Duration::from_secs(10) <= p.total));
            assert!(p.events.windows(2).all(|w| w[0].0 < w[1].0), "{:?}", p.events);
        }
    }

    #[test]
    fn accounting_balances_and_catches_what_no_counter_saw() {
        let s0 = snap(0, 0, 0, stats(0, 0, 0), &[("B/eth0:tx_dropped", 0)]);
        // 2 × 100 sent and 10 malformed; 2 × 95 delivered; 10 malformed counted, 4 dropped
        // at B's eth0, 6 at CB's UDP socket.
        let s1 = snap(100, 10, 95, stats(10, 10, 10), &[("B/eth0:tx_dropped", 4), ("CB/udp:InErrors", 6)]);
        let (r, v) = account(&s0, &s1);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(r["unaccounted"], 0);
        // One frame lost where nothing counts it.
        let s1 = snap(100, 10, 95, stats(10, 10, 10), &[("B/eth0:tx_dropped", 3), ("CB/udp:InErrors", 6)]);
        let (r, v) = account(&s0, &s1);
        assert_eq!(r["unaccounted"], 1);
        assert!(v.iter().any(|s| s.contains("+1 unaccounted")), "{v:?}");
        // A veth's rx_dropped repeats its peer's tx_dropped: not summed.
        let s1 = snap(100, 10, 95, stats(10, 10, 10), &[("B/eth0:tx_dropped", 4), ("CB/eth0:rx_dropped", 6)]);
        let (r, _) = account(&s0, &s1);
        assert_eq!(
            (r["unaccounted"].as_i64(), r["kernel_not_summed"]["CB/eth0:rx_dropped"].as_u64()),
            (Some(6), Some(6))
        );
        // Malformed frames counted under another reason, a socket that lost frames.
        let mut st = stats(9, 10, 9);
        st["total"]["drop_no_fdb_entry"] = json!(1);
        let s1 = snap(100, 10, 95, st, &[("B/eth0:tx_dropped", 4), ("CB/udp:InErrors", 6)]);
        let (_, v) = account(&s0, &s1);
        assert!(v.iter().any(|s| s.contains("10 malformed frames sent, 9 counted")), "{v:?}");
        assert!(v.iter().any(|s| s.contains("underlay socket: XDP steered 10, the worker took 9")), "{v:?}");
    }

    #[test]
    fn watchdog_flags_a_worker_that_stops_while_frames_are_steered() {
        let at = |rx: u64, steered: u64| {
            json!({"workers": [{"underlay_rx_frames": rx, "overlay_rx_frames": 0}],
                   "xdp": {"xdp_underlay_steered": steered, "xdp_overlay_steered": 0}})
        };
        let mut w = Watchdog::default();
        // Moving, then idle with nothing steered: no stall.
        for (i, (rx, st)) in [(0, 0), (10, 10), (20, 20), (20, 20), (20, 20), (20, 20)].into_iter().enumerate() {
            w.observe(&at(rx, st), Duration::from_secs(i as u64));
        }
        assert!(w.stalls.is_empty());
        // Steered frames, the worker still: one stall after two samples, counted once.
        for (i, st) in [30, 40, 50, 60].into_iter().enumerate() {
            w.observe(&at(20, st), Duration::from_secs(10 + i as u64));
        }
        assert_eq!(w.stalls.len(), 1, "{:?}", w.stalls);
        // A restarted daemon's counters start again from 0: reset, no false stall.
        w.reset();
        w.observe(&at(0, 0), Duration::from_secs(20));
        w.observe(&at(5, 5), Duration::from_secs(21));
        assert_eq!(w.stalls.len(), 1);
    }

    #[test]
    fn kernel_counters_summed_once() {
        let veths = ["A/eth0".to_string(), "A/vxdp-vx0".into(), "CB/eth0".into()];
        assert!(probe::summed("A/eth0:tx_dropped", &veths));
        assert!(!probe::summed("A/eth0:rx_dropped", &veths));
        assert!(!probe::summed("A/eth0:rx_queue_drops", &veths));
        assert!(!probe::summed("A/vxdp-vx0:rx_queue_drops", &veths));
        assert!(probe::summed("CB/eth0:rx_queue_drops", &veths));
        assert!(probe::summed("B/vxlan0:rx_dropped", &veths));
        assert!(probe::summed("CB/udp:InErrors", &veths));
        assert!(!probe::summed("A/udp:NoPorts", &veths));
    }

    #[test]
    fn malformed_frames_are_each_broken_one_way() {
        let fs =
            traffic::malformed_frames([2; 6], [4; 6], Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::new(192, 0, 2, 1), VNI);
        let ip_len = |f: &[u8]| usize::from(u16::from_be_bytes([f[16], f[17]]));
        let udp_len = |f: &[u8]| usize::from(u16::from_be_bytes([f[38], f[39]]));
        assert_eq!(fs[0].len(), 14 + 20 + 8 + 4);
        assert_eq!((ip_len(&fs[0]), udp_len(&fs[0])), (fs[0].len() - 14, 12));
        assert_eq!(fs[1].len(), 14 + 20 + 8 + 8 + 8);
        assert_eq!((fs[2][42], fs[3][42]), (0x00, 0x88));
        assert_eq!(udp_len(&fs[4]), fs[4].len() - 34 + 100);
        assert_eq!(udp_len(&fs[5]), 12);
        assert_eq!(ip_len(&fs[6]), fs[6].len() - 14 + 100);
        for f in &fs {
            // Every IPv4 header checksum still holds: only the intended field is wrong.
            let mut sum: u32 = f[14..34].chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            assert_eq!(sum, 0xffff);
        }
    }
}
