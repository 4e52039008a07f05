//! The control loop's cost per tick against the FDB's size (issue 12: it must not grow
//! with the table). Each tick does what `dataplane/src/daemon/control_loop.rs` does
//! between two waits, with the netlink and BPF-map I/O left out (those are per remote
//! or per changed entry, not per table entry): `FdbTable::maintain` (learning, ageing,
//! one publish), and, when the FDB changed, [`vxdp::fdb::FdbFollower::update`] (the
//! remotes to resolve and the known VTEPs) and the express mirror's sync
//! (`vxdp::express::mirror::Mirror`).
//!
//! Tables of 1,000, 10,000 and 100,000 store entries behind 1,000 remotes; for each:
//! - **quiet:** no change (the table clock moves 50 ms a tick, so the once-a-second
//!   ageing scan is in it);
//! - **one learned MAC:** a new MAC from a known remote every tick;
//! - **one store change:** one entry moved to another remote every tick.
//!
//! Median, p99 and max of 400 ticks. `cargo bench -p vxdp-bench --bench control`;
//! results go in docs/FDB.md.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use vxdp::express::mirror::Mirror;
use vxdp::fdb::{FdbFollower, FdbTable, Remote, DEFAULT_AGEING};
use vxdp::nexthop::{EncapDefaults, NextHops};
use vxdp::vxlan::Vni;
use vxdp_control::entry::{FdbOp, FdbRequest, Source};
use vxdp_control::mac::Mac;

const REMOTES: u32 = 1000;
const TICKS: usize = 400;

fn mac(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([0x02, 0x42, b[0], b[1], b[2], b[3]])
}

fn remote_ip(i: u32) -> IpAddr {
    let r = i % REMOTES;
    IpAddr::V4(Ipv4Addr::new(10, 1, (r >> 8) as u8, r as u8))
}

/// Every remote resolved, as the control loop's next-hop pass leaves it.
fn next_hops() -> NextHops {
    let mut h = NextHops::new(EncapDefaults::new(Ipv4Addr::new(10, 0, 0, 1), Vni::new(42).unwrap()));
    for r in 0..REMOTES {
        let key = h.key(&Remote::new(remote_ip(r))).unwrap();
        h.insert(key, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 1500);
    }
    h
}

struct Tables {
    fdb: FdbTable,
    hops: NextHops,
    follower: FdbFollower,
    mirror: Mirror,
    epoch: Instant,
    tick: u32,
    /// `PHASES=1`: print where a changing tick's time goes, every 100th tick.
    phases: bool,
}

impl Tables {
    fn new(n: u32) -> Tables {
        let epoch = Instant::now();
        let fdb = FdbTable::with_epoch(true, DEFAULT_AGEING, epoch);
        let reqs: Vec<_> = (0..n)
            .map(|i| (FdbRequest::new(FdbOp::Add, mac(i), Some(Remote::new(remote_ip(i)))), Source::Store))
            .collect();
        fdb.apply_batch(&reqs).unwrap();
        let mut t = Tables {
            fdb,
            hops: next_hops(),
            follower: FdbFollower::default(),
            mirror: Mirror::new(42),
            epoch,
            tick: 0,
            phases: std::env::var_os("PHASES").is_some(),
        };
        t.run_tick(true);
        t
    }

    /// One control-loop tick, 50 ms of table clock after the last.
    fn run_tick(&mut self, fdb_changed: bool) -> Duration {
        self.tick += 1;
        let now = self.epoch + Duration::from_millis(50 * u64::from(self.tick));
        let start = Instant::now();
        let changed = self.fdb.maintain(now);
        let t1 = start.elapsed();
        if fdb_changed || changed > 0 {
            let f = self.follower.update(&self.fdb, &self.hops);
            std::hint::black_box(f);
            let t2 = start.elapsed();
            let (snap, log) = self.fdb.take_changes();
            let c = self.mirror.sync_changes(&snap, &self.hops, self.fdb.coarse_now_secs(), &log.macs, log.overflow);
            self.mirror.recycle(&c.freed);
            std::hint::black_box(c);
            if self.phases && self.tick.is_multiple_of(100) {
                eprintln!("maintain {t1:?} follower {:?} mirror {:?}", t2 - t1, start.elapsed() - t2);
            }
        }
        start.elapsed()
    }
}

fn report(name: &str, n: u32, mut d: Vec<Duration>) {
    d.sort();
    let at = |q: f64| d[((d.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<18} {n:>7} entries: median {:>9.1} µs  p99 {:>9.1} µs  max {:>9.1} µs",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        d[d.len() - 1].as_secs_f64() * 1e6
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    for n in [1_000u32, 10_000, 100_000] {
        let mut t = Tables::new(n);
        let quiet: Vec<Duration> = (0..TICKS).map(|_| t.run_tick(false)).collect();
        report("quiet", n, quiet);

        let mut t = Tables::new(n);
        let learned: Vec<Duration> = (0..TICKS as u32)
            .map(|i| {
                let m = mac(n + 1 + i);
                assert!(t.fdb.learn(m.0, remote_ip(i)));
                t.run_tick(false)
            })
            .collect();
        report("one learned MAC", n, learned);

        let mut t = Tables::new(n);
        let moved: Vec<Duration> = (0..TICKS as u32)
            .map(|i| {
                let req = FdbRequest::new(FdbOp::Replace, mac(i % n), Some(Remote::new(remote_ip(i + 1))));
                t.fdb.apply_batch(&[(req, Source::Store)]).unwrap();
                t.run_tick(true)
            })
            .collect();
        report("one store change", n, moved);
    }
}
