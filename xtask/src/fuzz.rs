//! `cargo xtask fuzz [--secs N] [TARGET...]`: runs the cargo-fuzz targets in `fuzz/`
//! (every one by default), each for `N` seconds (default 60), with the nightly
//! toolchain, and prints how many inputs each ran. The fuzz crate is its own workspace,
//! outside the main one, so the default build and CI never compile it.
//!
//! Each target reads its committed seed corpus `fuzz/corpus/TARGET` (real frames from
//! kernel vxlan devices, real control messages, Consul listings, netlink replies) and
//! writes what it finds to `fuzz/target/corpus/TARGET`, so the committed seeds stay
//! small. A crash fails the command, naming the target and the input libFuzzer saved.

use crate::{root, run, Result};
use std::process::Command;

/// Every target, as `fuzz/Cargo.toml` names them.
pub const TARGETS: [&str; 7] = ["decap", "encap", "flow", "fdb_file", "ctl", "store", "netlink"];

pub fn fuzz(args: &[String]) -> Result<()> {
    let mut secs = 60u64;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => {
                let v = it.next().ok_or("--secs needs a number of seconds")?;
                secs = v.parse().ok().filter(|s| *s > 0).ok_or(format!("--secs {v}: not a number of seconds"))?;
            }
            t if TARGETS.contains(&t) => targets.push(t),
            other => return Err(format!("fuzz: unknown target or flag '{other}' (targets: {})", TARGETS.join(", "))),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    let ok = |c: &mut Command| c.output().map(|o| o.status.success()).unwrap_or(false);
    if !ok(Command::new("cargo").args(["+nightly", "--version"])) {
        return Err("fuzz: needs the nightly toolchain (rustup toolchain install nightly)".into());
    }
    if !ok(Command::new("cargo").args(["+nightly", "fuzz", "--version"])) {
        run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let dir = root().join("fuzz");
    let mut summary = Vec::new();
    for t in targets {
        let work = dir.join("target").join("corpus").join(t);
        std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&dir)
            .env("VXDP_FUZZ_NO_EBPF", "1")
            .args(["+nightly", "fuzz", "run", t])
            .arg(&work)
            .arg(dir.join("corpus").join(t))
            .args(["--", &format!("-max_total_time={secs}"), "-print_final_stats=1"]);
        eprintln!("+ {cmd:?}");
        let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!("fuzz target {t} failed ({}):\n{}", out.status, tail.join("\n")));
        }
        let execs = log
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|| "?".into());
        eprintln!("fuzz {t}: {execs} inputs in {secs} s, no crash");
        summary.push(format!("{t}={execs}"));
    }
    println!("fuzz: no crash; inputs run: {}", summary.join(" "));
    Ok(())
}
