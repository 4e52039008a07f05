//! `cargo xtask demo`: a vxdp host and a kernel-vxlan host talking across the overlay.
//!
//! Builds throwaway namespaces with the integration tests' harness (two hosts joined by
//! an underlay veth, a container behind each host's bridge), runs vxdp on host A with
//! the embedded static FDB (`demo.fdb`) and the kernel vxlan device on host B, sends
//! ping and a TCP transfer both ways, and prints both VTEPs' tables and counters.
//! Everything is removed on exit, also on error.

use std::path::Path;
use std::time::Instant;
use vxdp_tests::topology::{Side, VtepKind};
use vxdp_tests::{traffic, Topology};

const DEMO_FDB: &str = include_str!("demo.fdb");
const MAC_A: &str = "02:76:78:64:70:01";
const MAC_B: &str = "02:76:78:64:70:02";

fn section(title: &str) {
    println!("\n=== {title} ===");
}

pub fn run(bin: &Path) -> crate::Result<()> {
    if !crate::is_root() {
        return Err("the demo creates network namespaces: run it as root".into());
    }
    // The harness finds the daemon through VXDP_BIN.
    std::env::set_var("VXDP_BIN", bin);
    let fdb_path = std::env::temp_dir().join(format!("vxdp-demo-{}.fdb", std::process::id()));
    std::fs::write(&fdb_path, DEMO_FDB).map_err(|e| format!("{}: {e}", fdb_path.display()))?;
    let fdb_arg = fdb_path.to_string_lossy().into_owned();

    let result = std::panic::catch_unwind(|| {
        section("topology");
        println!("container A 198.51.100.1 ({MAC_A}) - br0 - vx0 [vxdp]   host A 192.0.2.1");
        println!("                                                       | underlay veth");
        println!("container B 198.51.100.2 ({MAC_B}) - br0 - vxlan0 [kernel] host B 192.0.2.2");
        let mut topo = Topology::new();
        topo.a.container.run(format!("ip link set eth0 address {MAC_A}"));
        topo.b.container.run(format!("ip link set eth0 address {MAC_B}"));
        topo.add_vtep_with(Side::A, VtepKind::Vxdp, &["--fdb", &fdb_arg, "--nolearning"]);
        topo.add_vtep(Side::B, VtepKind::Kernel);
        // The kernel side gets the mirror-image static entry, as a KV store would write it.
        topo.b.ns.run(format!("bridge fdb append {MAC_A} dev vxlan0 dst 192.0.2.1"));

        section("ping A -> B and B -> A across the overlay");
        print!("{}", topo.a.container.run("ping -c 3 -i 0.2 -W 2 198.51.100.2"));
        print!("{}", topo.b.container.run("ping -c 3 -i 0.2 -W 2 198.51.100.1"));

        section("10 MB TCP each way (byte-identical, checked by hash)");
        let data = traffic::random_bytes(10 << 20);
        for (name, src, dst, ip) in [
            ("A -> B", &topo.a.container, &topo.b.container, "198.51.100.2"),
            ("B -> A", &topo.b.container, &topo.a.container, "198.51.100.1"),
        ] {
            let t = Instant::now();
            traffic::tcp_transfer(src, dst, ip, 5201, &data);
            let s = t.elapsed().as_secs_f64();
            println!(
                "{name}: {} bytes in {:.2} s ({:.0} Mbit/s, demo-grade, not a benchmark)",
                data.len(),
                s,
                data.len() as f64 * 8.0 / s / 1e6
            );
        }

        section("host A: vxdp fdb show dev vx0");
        print!("{}", topo.a.daemon().ctl(&["fdb", "show", "dev", "vx0"]).unwrap_or_else(|e| format!("{e}\n")));
        section("host A: vxdp stats dev vx0");
        print!("{}", topo.a.daemon().ctl(&["stats", "dev", "vx0"]).unwrap_or_else(|e| format!("{e}\n")));
        section("host B: bridge fdb show dev vxlan0 (kernel)");
        print!("{}", topo.b.ns.run("bridge fdb show dev vxlan0"));
        section("host B: ip -s link show vxlan0 (kernel)");
        print!("{}", topo.b.ns.run("ip -s link show vxlan0"));
        section("done: tearing down the namespaces");
    });
    let _ = std::fs::remove_file(&fdb_path);
    result.map_err(|_| "the demo failed (see the panic message above)".to_string())
}
