//! `cargo xtask bench`: vxdp side by side with the kernel vxlan device.
//!
//! - `cargo xtask bench`          first the one-core comparison (kernel, vxdp auto, vxdp
//!   afxdp, the medium on one DUT core: peak, latency, overload sweep, idle; see
//!   `bench/src/headline.rs`), then the full matrix (~10-15 min on 2 cores): decap, encap
//!   and round trip; inner sizes 64/512/1450; 1 and 1,000 flows; 1 and 2 workers; vxdp,
//!   the kernel vxlan device and the medium's AF_XDP ceiling, in throwaway namespaces.
//! - `cargo xtask bench --quick`  the same with short phases (~5 min).
//! - `cargo xtask bench --micro`  the criterion micro-benchmarks (`benches/vxlan.rs`,
//!   `benches/fdb.rs`) instead.
//!
//! Any other arguments go to `vxdp-netbench` (e.g. `--dir decap --sizes 64`). Results:
//! a Markdown table on stdout, `<target>/bench/vxlan.json` and `vxlan.svg`.
//! Method and the latest figures: docs/BENCHMARKS.md.

use crate::{is_root, root, run, Result};
use std::path::Path;
use std::process::Command;

pub fn bench(vxdp_bin: &Path, args: &[String]) -> Result<()> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root().join("target"));
    if args.iter().any(|a| a == "--micro") {
        return run(Command::new(env!("CARGO"))
            .args(["bench", "-p", "vxdp-bench", "--bench", "vxlan", "--bench", "fdb"])
            .current_dir(root()));
    }
    if !is_root() {
        return Err("cargo xtask bench needs root (it creates network namespaces); try sudo -E".into());
    }
    run(Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "vxdp-bench", "--bin", "vxdp-netbench"])
        .current_dir(root()))?;
    let netbench = target.join("release/vxdp-netbench");
    if !netbench.exists() {
        return Err(format!("{} was not built", netbench.display()));
    }
    run(Command::new(&netbench)
        .arg("--out")
        .arg(target.join("bench"))
        .args(args)
        .env("VXDP_BIN", vxdp_bin)
        .current_dir(root()))
}
