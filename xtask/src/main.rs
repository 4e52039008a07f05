//! Build orchestration for vxdp: everything beyond plain `cargo build`/`cargo test`.
//!
//! - `cargo xtask setup`: install what is missing (Debian packages, rustup components).
//! - `cargo xtask demo`:  setup, build, and show a vxdp host and a kernel-vxlan host
//!   talking across the overlay in throwaway namespaces, with counters.
//!   `--store etcd`: three vxdp hosts fed by a real etcd instead (`demo_store.rs`).
//! - `cargo xtask lint`:  the habits CI keeps: `cargo fmt --check`, clippy with warnings
//!   denied (the workspace and the eBPF crate for its target), rustdoc with warnings denied.
//! - `cargo xtask test`:  setup, build the daemon, run unit and integration tests, then
//!   the namespace scenarios again with `VXDP_DATAPATH=afxdp` (the workers alone).
//! - `cargo xtask bench [--quick|--micro]`: vxdp against the kernel vxlan device (see
//!   `bench.rs` and docs/BENCHMARKS.md).
//! - `cargo xtask fuzz [--secs N] [TARGET...]`: the cargo-fuzz targets in `fuzz/`, with
//!   nightly (see `fuzz.rs` and docs/FUZZING.md).
//! - `cargo xtask soak [--minutes N] [--datapath auto|afxdp] [--out DIR]`: vxdp for N
//!   minutes under traffic, FDB churn, store restarts, kills and malformed frames, in
//!   namespaces; fails on any frame or resource not accounted for (see `soak/mod.rs`
//!   and docs/SOAK.md).

mod bench;
mod demo;
mod demo_store;
mod fuzz;
mod soak;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T> = std::result::Result<T, String>;

const USAGE: &str =
    "usage: cargo xtask <setup|build|demo [--store etcd]|lint|test|bench|fuzz|soak> [-- extra cargo test args | bench flags | fuzz flags | soak flags]";

/// Debian packages the build, demo and tests use, with a command that proves each is there.
const PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "ip"),
    ("iputils-ping", "ping"),
    ("ethtool", "ethtool"),
    ("procps", "pkill"),
    ("gcc", "cc"),
    ("etcd-server", "etcd"),
    // The secured-etcd tests make their CA and certificates with it.
    ("openssl", "openssl"),
    // ZooKeeper 3.8 (and Java); the tests run QuorumPeerMain from its jar, not this script.
    ("zookeeper", "/usr/share/zookeeper/bin/zkServer.sh"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r.to_vec()),
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let r = match cmd {
        "setup" => setup(),
        "build" => setup().and_then(|_| build_daemon()).map(|_| ()),
        "demo" => match rest.as_slice() {
            [] => setup().and_then(|_| build_daemon()).and_then(|bin| demo::run(&bin)),
            [flag, store] if flag == "--store" && store == "etcd" => {
                setup().and_then(|_| build_daemon()).and_then(|bin| demo_store::run(&bin))
            }
            _ => Err(format!("demo: expected no arguments or `--store etcd`, got `{}`", rest.join(" "))),
        },
        "lint" => setup().and_then(|_| lint()),
        "test" => setup().and_then(|_| build_daemon()).and_then(|bin| test(&bin, &rest)),
        "bench" => setup().and_then(|_| build_daemon()).and_then(|bin| bench::bench(&bin, &rest)),
        "fuzz" => fuzz::fuzz(&rest),
        "soak" => setup().and_then(|_| build_daemon()).and_then(|bin| soak::soak(&bin, &rest)),
        _ => Err(format!("unknown command '{cmd}'\n{USAGE}")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {cmd:?}");
    let st = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !st.success() {
        return Err(format!("{cmd:?} failed: {st}"));
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Installs missing Debian packages and rustup components. Idempotent and quiet when
/// everything is present.
fn setup() -> Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().filter(|(_, c)| !have(c)).map(|(p, _)| *p).collect();
    if !missing.is_empty() {
        if !is_root() {
            return Err(format!("missing packages {missing:?}; run as root or install them with apt-get"));
        }
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    // The eBPF object is built with the active toolchain's rust-src (build-std) and
    // llvm-tools (llvm-link, opt, llc); see dataplane/build.rs. `lint` needs rustfmt and
    // clippy.
    let out = Command::new("rustup")
        .args(["component", "list", "--installed"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("rustup not found ({e}); install Rust with rustup first"))?;
    let installed = String::from_utf8_lossy(&out.stdout);
    let need: Vec<&str> = ["rust-src", "llvm-tools", "rustfmt", "clippy"]
        .into_iter()
        .filter(|c| !installed.lines().any(|l| l.starts_with(c)))
        .collect();
    if !need.is_empty() {
        run(Command::new("rustup").args(["component", "add"]).args(&need).current_dir(root()))?;
    }
    Ok(())
}

/// Formatting, clippy (warnings denied) for the workspace and for the eBPF crate on its
/// own target, and rustdoc (warnings denied). Each step stops the run on its first
/// complaint, naming the step.
fn lint() -> Result<()> {
    let cargo = env!("CARGO");
    run(Command::new(cargo).args(["fmt", "--all", "--check"]).current_dir(root()))
        .map_err(|e| format!("{e}\n(formatting differs: run `cargo fmt --all`)"))?;
    run(Command::new(cargo)
        .args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])
        .current_dir(root()))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    run(Command::new(cargo).args(["fmt", "--check"]).current_dir(root().join("ebpf")))
        .map_err(|e| format!("{e}\n(formatting differs in ebpf/: run `cargo fmt` there)"))?;
    // Like dataplane/build.rs: build-std and the BPF target need unstable features.
    run(Command::new(cargo)
        .args(["clippy", "--release", "--target", "bpfel-unknown-none", "-Zbuild-std=core", "--target-dir"])
        .arg(target.join("ebpf-clippy"))
        .args(["--", "-D", "warnings"])
        .env("RUSTC_BOOTSTRAP", "1")
        .current_dir(root().join("ebpf")))?;
    run(Command::new(cargo)
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .current_dir(root()))
}

/// Builds the daemon in release mode and returns the binary's path.
fn build_daemon() -> Result<PathBuf> {
    run(Command::new(env!("CARGO")).args(["build", "--release", "-p", "vxdp-cli"]).current_dir(root()))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let bin = target.join("release/vxdp");
    if !bin.exists() {
        return Err(format!("{} was not built", bin.display()));
    }
    Ok(bin)
}

/// Unit tests of every crate, then the namespace integration tests (root only; they
/// skip with a message otherwise), serially because they share the machine's 2 cores.
/// The namespace scenarios (the vxdp-tests crate) run twice: with the XDP express path
/// (`VXDP_DATAPATH=auto`, in the workspace run) and with the AF_XDP workers alone
/// (`VXDP_DATAPATH=afxdp`); the harness passes it to every `vxdp run` as `--datapath`.
fn test(bin: &Path, extra: &[String]) -> Result<()> {
    if !is_root() {
        eprintln!("xtask: not root: the namespace integration tests will skip themselves");
    }
    eprintln!("xtask: unit and integration tests, datapath auto (XDP express path and AF_XDP workers)");
    run(Command::new(env!("CARGO"))
        .args(["test", "--workspace", "--exclude", "xtask"])
        .args(extra)
        .env("VXDP_BIN", bin)
        .env("VXDP_DATAPATH", "auto")
        .current_dir(root()))?;
    if !is_root() {
        eprintln!("xtask: not root: skipping the second run of the namespace scenarios (datapath afxdp)");
        return Ok(());
    }
    eprintln!("xtask: namespace scenarios again, datapath afxdp (AF_XDP workers only)");
    run(Command::new(env!("CARGO"))
        .args(["test", "-p", "vxdp-tests"])
        .args(extra)
        .env("VXDP_BIN", bin)
        .env("VXDP_DATAPATH", "afxdp")
        .current_dir(root()))
}
