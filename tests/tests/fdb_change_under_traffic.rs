//! `vxdp fdb replace` and `vxdp fdb del` under a steady stream: once the
//! command returns, no frame leaves toward the old remote (after a drain of
//! [`DRAIN`] for frames already in flight), and traffic follows the new one.
//!
//! ```text
//!  container ca -- host 1: vxdp vx0      192.0.2.1 \
//!                   host 2: kernel vxlan0 192.0.2.2 -- underlay bridge
//!                   host 3: kernel vxlan0 192.0.2.3 /
//! ```
//!
//! The container sends UDP at about [`RATE_HZ`] to a MAC (a static neighbour
//! entry, nobody answers) that `vxdp fdb replace` points at host 2, then
//! alternately at host 3 and back. The frames arriving at a host are its
//! `vxlan0`'s RX packets. The daemon mirrors an FDB change into the XDP maps
//! before it answers; a mirror that waited for the control loop's tick (up to
//! 50 ms) would send frames to the old remote after the drain: at this rate
//! tens of them, on most of the [`SWITCHES`] switches.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vxdp_tests::multi::Cluster;
use vxdp_tests::traffic::{rx_packets, UDP_PORT};
use vxdp_tests::{datapath, in_netns, kernel_vtep, require_root, serial, wait_until, Netns};

/// The MAC the stream is sent to, and the overlay address it answers to.
const TARGET_MAC: &str = "02:00:00:00:02:09";
const TARGET_IP: &str = "198.51.100.9";
/// A MAC kept behind host 3 from the start, so its next hop is resolved
/// before the first switch (the switch, not resolution, is under test).
const PARKED_MAC: &str = "02:00:00:00:03:01";
/// Time allowed for frames already in flight when the command returns.
/// Shorter than the control loop's 50 ms tick, which a lazy mirror would wait for.
const DRAIN: Duration = Duration::from_millis(20);
/// How long the old remote must then stay silent while the new one receives.
const HOLD: Duration = Duration::from_millis(150);
/// Send rate: one frame every 0.5 ms, so a 30 ms lazy window holds ~60 frames.
const RATE_HZ: u64 = 2000;
/// Replace switches (2 -> 3 -> 2 ...); each alone would miss a lazy mirror whose
/// tick happened to fall inside the drain (2 in 5), all of them ~1 in 250.
const SWITCHES: usize = 6;
/// Bounds of the stream, whatever happens to the test.
const MAX_FRAMES: u64 = 40_000;
const MAX_STREAM: Duration = Duration::from_secs(20);

fn vxlan_rx(host: &Netns) -> u64 {
    rx_packets(host, "vxlan0")
}

#[test]
fn fdb_change_under_traffic() {
    if !require_root("fdb_change_under_traffic") {
        return;
    }
    let _serial = serial();
    let dp = datapath();
    let mut cluster = Cluster::new(3);
    cluster.nodes[0].start_vxdp(&["--vni", "42", "--nolearning"]);
    for node in &cluster.nodes[1..] {
        kernel_vtep(&node.ns, "vxlan0", 42, &node.underlay_ip, "eth0", &[]);
        node.ns.run("ip link set vxlan0 up");
    }
    let ca = cluster.add_container(0, "ca", "02:00:00:00:01:01", "198.51.100.1");
    ca.ns.run(format!("ip neigh replace {TARGET_IP} lladdr {TARGET_MAC} dev eth0 nud permanent"));
    let (h2, h3) = (&cluster.nodes[1], &cluster.nodes[2]);
    let d = cluster.nodes[0].daemon();
    let fdb = |args: &[&str]| {
        let mut argv = vec!["fdb"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["dev", "vx0"]);
        d.ctl(&argv).unwrap_or_else(|e| panic!("vxdp {argv:?}: {e:#}"))
    };
    fdb(&["replace", TARGET_MAC, "dst", &h2.underlay_ip]);
    fdb(&["replace", PARKED_MAC, "dst", &h3.underlay_ip]);
    assert!(
        wait_until(Duration::from_secs(5), || d.stats().0["resolved_remotes"].as_u64() == Some(2)),
        "vxdp did not resolve both remotes: {}",
        d.stats().0
    );

    let tx = in_netns(&ca.ns, || std::net::UdpSocket::bind("0.0.0.0:0")).expect("UDP sender in the container");
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    std::thread::scope(|s| {
        let sender = s.spawn(|| {
            let started = Instant::now();
            let gap = Duration::from_micros(1_000_000 / RATE_HZ);
            while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < MAX_FRAMES {
                if started.elapsed() > MAX_STREAM {
                    break;
                }
                tx.send_to(b"vxdp-fdb-change", (TARGET_IP, UDP_PORT)).expect("send UDP");
                sent.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(gap);
            }
        });
        // Stop the sender whatever the checks do.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let min = vxlan_rx(&h2.ns) + 20;
            assert!(
                wait_until(Duration::from_secs(5), || vxlan_rx(&h2.ns) >= min),
                "the stream does not reach host 2 (datapath {dp}): vxlan0 RX {}, sent {}",
                vxlan_rx(&h2.ns),
                sent.load(Ordering::Relaxed)
            );
            let (mut old, mut new) = (h2, h3);
            for round in 1..=SWITCHES {
                fdb(&["replace", TARGET_MAC, "dst", &new.underlay_ip]);
                // The measurement window itself, not a wait for a condition.
                std::thread::sleep(DRAIN);
                let (old0, new0) = (vxlan_rx(&old.ns), vxlan_rx(&new.ns));
                std::thread::sleep(HOLD);
                let (old1, new1) = (vxlan_rx(&old.ns), vxlan_rx(&new.ns));
                eprintln!(
                    "switch {round} ({dp}): {} -> {}: old RX {old0} -> {old1}, new RX {new0} -> {new1}",
                    old.underlay_ip, new.underlay_ip
                );
                assert_eq!(
                    old1,
                    old0,
                    "switch {round} (datapath {dp}): {} frames reached the old remote {} more than {DRAIN:?} \
                     after `vxdp fdb replace {TARGET_MAC} dst {}` returned",
                    old1 - old0,
                    old.underlay_ip,
                    new.underlay_ip
                );
                assert!(
                    new1 > new0,
                    "switch {round} (datapath {dp}): traffic did not follow to {} (vxlan0 RX stayed {new0})",
                    new.underlay_ip
                );
                (old, new) = (new, old);
            }

            // Deleting the entry: with no flood entry the frames are dropped, counted.
            let drops0 = d.stats().total("drop_no_fdb_entry");
            fdb(&["del", TARGET_MAC]);
            std::thread::sleep(DRAIN);
            let (a0, b0) = (vxlan_rx(&h2.ns), vxlan_rx(&h3.ns));
            std::thread::sleep(HOLD);
            let (a1, b1) = (vxlan_rx(&h2.ns), vxlan_rx(&h3.ns));
            eprintln!("del ({dp}): host 2 RX {a0} -> {a1}, host 3 RX {b0} -> {b1}");
            assert_eq!(
                (a1, b1),
                (a0, b0),
                "datapath {dp}: frames still left {DRAIN:?} after `vxdp fdb del {TARGET_MAC}` returned \
                 (host 2 RX {a0} -> {a1}, host 3 RX {b0} -> {b1})"
            );
            let stats = d.stats();
            assert!(
                stats.total("drop_no_fdb_entry") > drops0,
                "datapath {dp}: frames to the deleted {TARGET_MAC} were not counted as no_fdb_entry: {}",
                stats.0
            );
            if dp.express() {
                assert!(
                    stats.xdp("xdp_express_encap") > 0,
                    "datapath {dp}: the express path encapsulated nothing: {}",
                    stats.0
                );
            } else {
                assert_eq!(
                    stats.xdp("xdp_express_encap"),
                    0,
                    "datapath {dp}: the express path moved frames: {}",
                    stats.0
                );
            }
        }));
        stop.store(true, Ordering::Relaxed);
        sender.join().expect("sender thread");
        eprintln!("sent {} frames", sent.load(Ordering::Relaxed));
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}
