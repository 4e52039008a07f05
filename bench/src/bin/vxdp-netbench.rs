//! `vxdp-netbench`: vxdp against the kernel vxlan device and the medium's ceiling, in
//! throwaway namespaces (root). Run through `cargo xtask bench [--quick]`, which builds
//! the daemon and sets `VXDP_BIN`. Prints a Markdown table; writes JSON and SVG.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::path::PathBuf;
use vxdp_bench::report;
use vxdp_bench::suite::{self, Direction, Options};

#[derive(Parser)]
#[command(name = "vxdp-netbench", about = "vxdp vs kernel vxlan, side by side, in network namespaces")]
struct Args {
    /// Short phases (0.5 s) instead of 2 s: a few seconds per row.
    #[arg(long)]
    quick: bool,
    /// Directory for vxlan.json and vxlan.svg.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Only these directions (decap, encap, roundtrip); default all.
    #[arg(long, value_delimiter = ',')]
    dir: Vec<String>,
    /// Only these inner frame sizes; default 64,512,1450.
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Only these flow counts; default 1,1000.
    #[arg(long, value_delimiter = ',')]
    flows: Vec<usize>,
    /// Only these worker counts; default 1,2.
    #[arg(long, value_delimiter = ',')]
    workers: Vec<u32>,
    /// Where the DUT's kernel receive processing runs: `dut` (RPS to the DUT's CPUs:
    /// the DUT gets its core and nothing else) or `off` (the kernel's default: where
    /// the sender ran, largely on the tester's core).
    #[arg(long, value_enum, default_value_t = suite::Rps::Dut)]
    rps: suite::Rps,
    /// Offer this rate in the full-load phase (Mpps) instead of as fast as the
    /// generator can; for finding where a DUT stops keeping up.
    #[arg(long, value_name = "MPPS")]
    rate: Option<f64>,
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("vxdp-netbench needs root to create network namespaces");
    }
    let mut opts = if args.quick { Options::quick() } else { Options::full() };
    if !args.dir.is_empty() {
        opts.directions = args
            .dir
            .iter()
            .map(|d| match d.as_str() {
                "decap" => Ok(Direction::Decap),
                "encap" => Ok(Direction::Encap),
                "roundtrip" => Ok(Direction::RoundTrip),
                _ => bail!("--dir {d}: expected decap, encap or roundtrip"),
            })
            .collect::<Result<_>>()?;
    }
    if !args.sizes.is_empty() {
        if let Some(s) = args.sizes.iter().find(|s| **s < vxdp_bench::frame::MIN_INNER_LEN || **s > 1464) {
            bail!("--sizes {s}: inner frames are {}..=1464 bytes", vxdp_bench::frame::MIN_INNER_LEN);
        }
        opts.sizes = args.sizes;
    }
    if !args.flows.is_empty() {
        if let Some(f) = args.flows.iter().find(|f| **f == 0 || **f > 2048) {
            bail!("--flows {f}: 1..=2048");
        }
        opts.flows = args.flows;
    }
    if !args.workers.is_empty() {
        if let Some(w) = args.workers.iter().find(|w| !(1..=2).contains(*w)) {
            bail!("--workers {w}: 1 or 2");
        }
        opts.workers = args.workers;
    }
    opts.rps = args.rps;
    if let Some(r) = args.rate {
        if !(r > 0.0 && r <= 100.0) {
            bail!("--rate {r}: Mpps, above 0 and at most 100");
        }
        opts.rate = Some(r * 1e6);
    }
    let started = std::time::Instant::now();
    let rows = suite::run(&opts, |line| eprintln!("{line}"));
    let elapsed = started.elapsed();

    let table = report::table(&rows);
    println!("{table}");
    let meta = serde_json::json!({
        "mode": if args.quick { "quick" } else { "full" },
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "cpus": vxdp_bench::cpu::count(),
        "cpu_model": cpu_model(),
        "rps": opts.rps.name(),
        "offered_mpps": opts.rate.map(|r| r / 1e6),
        "max_phase_s": opts.max_phase.as_secs_f64(),
        "latency_phase_s": opts.lat_phase.as_secs_f64(),
        "elapsed_s": elapsed.as_secs_f64(),
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    });
    std::fs::create_dir_all(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let json_path = args.out.join("vxlan.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report::json(&rows, meta))?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let svg_path = args.out.join("vxlan.svg");
    let title = format!("vxdp vs kernel vxlan, Mpps at full load ({} mode)", if args.quick { "quick" } else { "full" });
    std::fs::write(&svg_path, report::svg(&rows, &title)).with_context(|| format!("writing {}", svg_path.display()))?;
    eprintln!("wrote {} and {} ({:.0} s)", json_path.display(), svg_path.display(), elapsed.as_secs_f64());
    Ok(())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string()
}
