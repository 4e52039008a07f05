//! `vxdp-netbench`: vxdp against the kernel vxlan device and the medium's ceiling, in
//! throwaway namespaces (root). Run through `cargo xtask bench [--quick]`, which builds
//! the daemon and sets `VXDP_BIN`. Prints a Markdown table; writes JSON and SVG.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::path::PathBuf;
use vxdp_bench::report;
use vxdp_bench::suite::{self, Direction, Dut, Options, Placement};

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
    /// Where the kernel's receive processing runs: `napi` (threaded NAPI on every
    /// receiving veth, the DUT hosts' threads pinned to the DUT's core, the tester's to
    /// its own: the DUT is charged for all of its receive work), `rps` (alias `dut`:
    /// RPS steers the DUT's backlog work to its core, the veth NAPI runs where the
    /// sender ran) or `off` (the kernel's default). `--rps` is an alias of this flag.
    #[arg(long, alias = "rps", value_enum, default_value_t = suite::Placement::Napi)]
    placement: suite::Placement,
    /// What to run: `headline` (the one-core comparison of every DUT kind: peak,
    /// latency at half of it, the overload sweep, the idle row), `matrix` (sizes x
    /// flows x workers for vxdp auto, the kernel and the medium) or `all`.
    #[arg(long, value_parser = ["all", "headline", "matrix"], default_value = "all")]
    part: String,
    /// An extra `vxdp run` argument for every vxdp DUT (repeatable), e.g.
    /// `--vxdp-arg=--busy-poll`.
    #[arg(long = "vxdp-arg", value_name = "ARG", allow_hyphen_values = true)]
    vxdp_args: Vec<String>,
    /// DUT kinds of the one-core comparison: kernel, auto, port (auto in the port layout), afxdp, medium; default all.
    #[arg(long, value_delimiter = ',')]
    duts: Vec<String>,
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
    opts.placement = args.placement;
    opts.vxdp_args = args.vxdp_args;
    opts.headline = args.part != "matrix";
    opts.matrix = args.part != "headline";
    if !args.duts.is_empty() {
        opts.duts = args
            .duts
            .iter()
            .map(|d| match d.as_str() {
                "kernel" => Ok(Dut::Kernel),
                "auto" => Ok(Dut::Vxdp),
                "port" => Ok(Dut::VxdpPort),
                "afxdp" => Ok(Dut::Afxdp),
                "medium" => Ok(Dut::Medium),
                _ => bail!("--duts {d}: expected kernel, auto, port, afxdp or medium"),
            })
            .collect::<Result<_>>()?;
    }
    if let Some(r) = args.rate {
        if !(r > 0.0 && r <= 100.0) {
            bail!("--rate {r}: Mpps, above 0 and at most 100");
        }
        opts.rate = Some(r * 1e6);
    }
    let started = std::time::Instant::now();
    let (headline, rows) = suite::run(&opts, |line| eprintln!("[{:6.1} s] {line}", started.elapsed().as_secs_f64()));
    let elapsed = started.elapsed();

    if let Some(h) = &headline {
        println!("{}", report::headline_table(h, &placement_text(opts.placement)));
    }
    if !rows.is_empty() {
        println!("{}", report::table(&rows));
    }
    let meta = serde_json::json!({
        "mode": if args.quick { "quick" } else { "full" },
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "cpus": vxdp_bench::cpu::count(),
        "cpu_model": cpu_model(),
        "placement": opts.placement.name(),
        "vxdp_args": opts.vxdp_args,
        "placement_text": placement_text(opts.placement),
        "offered_mpps": opts.rate.map(|r| r / 1e6),
        "max_phase_s": opts.max_phase.as_secs_f64(),
        "latency_phase_s": opts.lat_phase.as_secs_f64(),
        "elapsed_s": elapsed.as_secs_f64(),
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    });
    std::fs::create_dir_all(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let json_path = args.out.join("vxlan.json");
    let mut doc = report::json(&rows, meta);
    if let Some(h) = &headline {
        doc["one_core"] = report::headline_json(h);
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let svg_path = args.out.join("vxlan.svg");
    let title = format!("vxdp vs kernel vxlan, Mpps at full load ({} mode)", if args.quick { "quick" } else { "full" });
    std::fs::write(&svg_path, report::svg(&rows, &title)).with_context(|| format!("writing {}", svg_path.display()))?;
    eprintln!("wrote {} and {} ({:.0} s)", json_path.display(), svg_path.display(), elapsed.as_secs_f64());
    Ok(())
}

/// The placement, as the one-core table's header states it.
fn placement_text(p: Placement) -> String {
    let dut = "DUT: CPU 1 (the vxdp daemon and its workers by `taskset -a`, the medium forwarder by affinity)";
    let tester = "tester: CPU 0 (generator and sink in one thread)";
    match p {
        Placement::Napi => format!(
            "Placement `napi`: {dut}, with the threaded NAPI of the DUT host's ingress veths (A's `eth0` and `vethc`) pinned to it; {tester}, with the NAPI threads of its veths (the containers' `eth0`, B's `eth0` and `vethc`); no RPS. CPU ns per frame: all busy time of CPU 1 (/proc/stat) over the frames delivered."
        ),
        Placement::Rps => format!(
            "Placement `rps`: {dut}, RPS on A's `eth0`, `vethc`, `vx0` to CPU 1; {tester}; a veth's NAPI runs where its sender ran."
        ),
        Placement::Off => format!("Placement `off`: {dut}; {tester}; receive processing where the kernel puts it (no RPS, no threaded NAPI)."),
    }
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
