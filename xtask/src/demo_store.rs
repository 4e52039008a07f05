//! `cargo xtask demo --store etcd`: three vxdp hosts fed only by a real etcd.
//!
//! Starts Debian's etcd-server (installed by `setup`) as the demo's own process inside
//! the underlay namespace of a three-host harness cluster, runs vxdp on every host with
//! `--cluster-store etcd://... --advertise` and neither `--remote` nor learning, and
//! shows, step by step: the hosts registering and every flood list filling from the
//! store; a container's MAC advertised and traffic following it; the container moving
//! from host 2 to host 3 (same MAC and IP) and the entry following; host 3's vxdp
//! killed with SIGKILL and its entries leaving every host when its lease expires.
//! Everything is removed on exit, also on error.

use std::path::Path;
use std::time::{Duration, Instant};
use vxdp_control::store::etcd::{EtcdConfig, EtcdStore};
use vxdp_tests::multi::{Cluster, UNDERLAY_SERVICE_IP};
use vxdp_tests::store_e2e::{has_line, PREFIX};
use vxdp_tests::{in_netns, in_netns_at, wait_until};
use vxdp_testsupport::etcd::EtcdCluster;

fn section(title: &str) {
    println!("\n=== {title} ===");
}

/// The keys under the demo's prefix and their values, as etcd holds them.
fn show_store(ns: &str, endpoints: &[String]) {
    let eps = endpoints.to_vec();
    let pairs = in_netns_at(ns, move || {
        let eps: Vec<&str> = eps.iter().map(String::as_str).collect();
        EtcdStore::new(EtcdConfig::new(&eps)).and_then(|mut s| s.list(PREFIX))
    });
    match pairs {
        Ok(pairs) => {
            for (k, v) in pairs {
                println!("{k} = {}", String::from_utf8_lossy(&v));
            }
        }
        Err(e) => println!("(cannot list the store: {e})"),
    }
}

fn show_fdbs(cluster: &Cluster) {
    for (i, node) in cluster.nodes.iter().enumerate() {
        println!("--- host {} ({}): vxdp fdb show", i + 1, node.underlay_ip);
        print!("{}", node.fdb_show());
    }
}

pub fn run(bin: &Path) -> crate::Result<()> {
    if !crate::is_root() {
        return Err("the demo creates network namespaces: run it as root".into());
    }
    std::env::set_var("VXDP_BIN", bin);
    let result = std::panic::catch_unwind(|| {
        section("three hosts on one underlay, etcd on 192.0.2.254");
        let mut cluster = Cluster::new(3);
        let etcd = in_netns(&cluster.underlay, || EtcdCluster::start_on(UNDERLAY_SERVICE_IP, 1));
        let ns = cluster.underlay.path();
        let url = etcd.url();
        let endpoints = etcd.endpoints();
        println!("etcd: {url} (a real etcd-server, the demo's own process)");
        let args = ["--vni", "42", "--nolearning", "--advertise", "--cluster-store", url.as_str()];
        for node in &mut cluster.nodes {
            node.start_vxdp(&args);
            println!("host {}: vxdp run {}", node.underlay_ip, args.join(" "));
        }

        section("every host registers; every flood list fills from the store");
        let ready = wait_until(Duration::from_secs(10), || {
            cluster.nodes.iter().all(|n| n.fdb_show().matches("00:00:00:00:00:00").count() == 2)
        });
        show_store(&ns, &endpoints);
        show_fdbs(&cluster);
        assert!(ready, "the flood lists did not fill from the store");

        section("a container on host 1 and one on host 2: MACs advertised, traffic follows");
        let a = cluster.add_container(0, "ca", "02:00:00:00:01:01", "198.51.100.1");
        let mover = cluster.add_container(1, "mb", "02:00:00:00:0a:0a", "198.51.100.10");
        print!("{}", a.ns.run(format!("ping -c 3 -i 0.2 -W 2 {}", mover.ip)));
        let host1 = &cluster.nodes[0];
        wait_until(Duration::from_secs(5), || has_line(&host1.fdb_show(), "02:00:00:00:0a:0a", "192.0.2.2"));
        show_store(&ns, &endpoints);
        println!("--- host 1: vxdp fdb show");
        print!("{}", host1.fdb_show());

        section("the container moves from host 2 to host 3 (same MAC and IP)");
        drop(mover);
        let moved = cluster.add_container(2, "mc", "02:00:00:00:0a:0a", "198.51.100.10");
        print!("{}", moved.ns.run(format!("ping -c 3 -i 0.2 -W 2 {}", a.ip)));
        let followed =
            wait_until(Duration::from_secs(5), || has_line(&host1.fdb_show(), "02:00:00:00:0a:0a", "192.0.2.3"));
        println!("--- host 1: vxdp fdb show");
        print!("{}", host1.fdb_show());
        assert!(followed, "host 1 did not follow the move");

        section("host 3's vxdp is killed (SIGKILL): its lease expires and its entries leave");
        cluster.nodes[2].daemon.as_mut().expect("host 3's vxdp").kill_hard();
        let killed = Instant::now();
        let host1 = &cluster.nodes[0];
        let gone = wait_until(Duration::from_secs(30), || !host1.fdb_show().contains("dst 192.0.2.3 "));
        println!("host 3's entries left host 1 {:.1} s after the kill", killed.elapsed().as_secs_f64());
        show_store(&ns, &endpoints);
        println!("--- host 1: vxdp fdb show");
        print!("{}", host1.fdb_show());
        assert!(gone, "host 3's entries stayed");
        section("done: stopping etcd and tearing down the namespaces");
        drop(etcd);
    });
    result.map_err(|_| "the store demo failed (see the panic message above)".to_string())
}
