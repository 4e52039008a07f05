//! Builds the XDP programs in `ebpf/` into `$OUT_DIR/vxdp.bpf.o`, which `src/xdp.rs` embeds.
//!
//! No bpf-linker is needed. The route:
//! 1. `cargo build` of `ebpf/` (a `staticlib`, so no linker runs) for `bpfel-unknown-none`
//!    with `-Zbuild-std=core` and fat LTO, in its own target dir so it never waits on the
//!    outer cargo's lock. On BPF rustc's object files are LLVM bitcode, and fat LTO merges
//!    the crate, aya-ebpf and core into one module.
//! 2. rustup's llvm-tools (the same LLVM as rustc): `llvm-ar` extracts the bitcode,
//!    `llvm-link` joins the members, `opt` internalizes everything but the programs and
//!    maps and drops what is unused, and `llc` compiles it into a BPF ELF object.
//!
//! Maps are legacy `maps`-section definitions and there is no debug info, so the object
//! needs no BTF.
//!
//! The names kept global come from `vxdp_common::{programs, maps}`, the constants the
//! loader (`src/xdp.rs`) opens them by; the finished object is checked to define each.

use std::{
    env,
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::{self, Command},
};

use vxdp_common::{maps, programs};

/// The symbols that must stay global in the object: the programs and the maps.
fn exported() -> impl Iterator<Item = &'static str> {
    programs::ALL.into_iter().chain(maps::ALL)
}

const BPF_TARGET: &str = "bpfel-unknown-none";
const SETUP_HINT: &str = "run `rustup component add rust-src llvm-tools` (or `cargo xtask setup`) and build again";

fn main() {
    if let Err(message) = run() {
        eprintln!("error: building the vxdp eBPF object failed: {message}");
        process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.parent().ok_or("dataplane/ has no parent directory")?.to_path_buf();
    let ebpf_dir = root.join("ebpf");
    let out_dir = PathBuf::from(env_var("OUT_DIR")?);

    for path in ["ebpf/src", "ebpf/Cargo.toml", "ebpf/Cargo.lock", "common/src", "common/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }

    // The fuzz targets (`fuzz/`, built by `cargo xtask fuzz` with nightly and sanitizer
    // flags) test pure code and never load XDP: they build no eBPF object. A daemon
    // built this way fails to load its programs, saying so.
    println!("cargo:rerun-if-env-changed=VXDP_FUZZ_NO_EBPF");
    if env::var_os("VXDP_FUZZ_NO_EBPF").is_some() {
        return fs::write(out_dir.join("vxdp.bpf.o"), b"").map_err(|e| format!("cannot write an empty object: {e}"));
    }

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let tools = Tools::find(&rustc)?;

    // Honour a user's CARGO_TARGET_DIR as the base, but never pass it to the inner build.
    let target_base = env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let target_dir = target_base.join("ebpf");

    build_staticlib(&ebpf_dir, &target_dir, &rustc)?;
    let archive = target_dir.join(BPF_TARGET).join("release").join("libvxdp_ebpf.a");
    let object = out_dir.join("vxdp.bpf.o");
    compile_object(&tools, &archive, &out_dir.join("bpf-work"), &object)?;
    check_symbols(&object)
}

/// Checks that the object names every program and map the loader looks up: a name in
/// `vxdp_common` that the eBPF source does not define (or that `opt` dropped) fails the
/// build here rather than the load at run time. Symbol names sit NUL-terminated in the
/// ELF string table, so a byte search is enough.
fn check_symbols(object: &Path) -> Result<(), String> {
    let bytes = fs::read(object).map_err(|e| format!("cannot read {}: {e}", object.display()))?;
    let missing: Vec<&str> = exported()
        .filter(|name| {
            let needle = [&b"\0"[..], name.as_bytes(), b"\0"].concat();
            !bytes.windows(needle.len()).any(|w| w == needle.as_slice())
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{} does not define {}", object.display(), missing.join(", ")))
    }
}

fn env_var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| format!("cargo did not set {name}"))
}

/// The LLVM tools shipped with the rustc that builds the bitcode (same LLVM version).
struct Tools {
    llvm_ar: PathBuf,
    llvm_link: PathBuf,
    opt: PathBuf,
    llc: PathBuf,
}

impl Tools {
    fn find(rustc: &str) -> Result<Self, String> {
        let output = Command::new(rustc)
            .args(["--print", "sysroot"])
            .output()
            .map_err(|e| format!("cannot run `{rustc} --print sysroot`: {e}"))?;
        if !output.status.success() {
            return Err(format!("`{rustc} --print sysroot` failed"));
        }
        let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());

        let core_src = sysroot.join("lib/rustlib/src/rust/library/core");
        if !core_src.is_dir() {
            return Err(format!("the rust-src component is missing ({} not found): {SETUP_HINT}", core_src.display()));
        }

        let host = env_var("HOST")?;
        let bin = sysroot.join("lib/rustlib").join(host).join("bin");
        let tool = |name: &str| -> Result<PathBuf, String> {
            let path = bin.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("the llvm-tools component is missing ({} not found): {SETUP_HINT}", path.display()))
            }
        };
        Ok(Self { llvm_ar: tool("llvm-ar")?, llvm_link: tool("llvm-link")?, opt: tool("opt")?, llc: tool("llc")? })
    }
}

/// Builds `ebpf/` into `<target_dir>/bpfel-unknown-none/release/libvxdp_ebpf.a`.
fn build_staticlib(ebpf_dir: &Path, target_dir: &Path, rustc: &str) -> Result<(), String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(ebpf_dir)
        .args(["build", "--release", "--target", BPF_TARGET, "-Zbuild-std=core"])
        .arg("--target-dir")
        .arg(target_dir);
    scrub_env(&mut cmd);
    // build-std and the BPF target's asm need unstable features on a stable toolchain.
    cmd.env("RUSTC_BOOTSTRAP", "1").env("RUSTC", rustc);

    let output = cmd.output().map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo build` of {} for {BPF_TARGET} failed:\n{}\n(if it says rust-src is missing: {SETUP_HINT})",
            ebpf_dir.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// Removes what cargo sets for build scripts (or a user set for the host build) that would
/// leak into the inner BPF build: flags, wrappers, target and profile settings, cfgs.
fn scrub_env(cmd: &mut Command) {
    const KEEP_PREFIXES: &[&str] = &[
        "CARGO_HOME",
        "CARGO_MAKEFLAGS", // the outer jobserver: keeps the total job count in bounds
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
        "CARGO_TERM_",
    ];
    const REMOVE: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_LINKER",
        "RUSTC_BOOTSTRAP",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "NUM_JOBS",
        "OPT_LEVEL",
        "DEBUG",
        "PROFILE",
    ];
    for (name, _) in env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let cargo_var = (name.starts_with("CARGO") || name.starts_with("__CARGO"))
            && !KEEP_PREFIXES.iter().any(|keep| name.starts_with(keep));
        if cargo_var || REMOVE.contains(&name) || name.starts_with("DEP_") {
            cmd.env_remove(name);
        }
    }
}

/// Turns the staticlib's bitcode into the BPF ELF object at `object`.
fn compile_object(tools: &Tools, archive: &Path, work: &Path, object: &Path) -> Result<(), String> {
    if work.exists() {
        fs::remove_dir_all(work).map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
    }
    let members = work.join("members");
    fs::create_dir_all(&members).map_err(|e| format!("cannot create {}: {e}", members.display()))?;

    run_tool(Command::new(&tools.llvm_ar).arg("x").arg(archive).current_dir(&members), "llvm-ar x")?;
    let mut inputs: Vec<PathBuf> = fs::read_dir(&members)
        .map_err(|e| format!("cannot read {}: {e}", members.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension() == Some(OsStr::new("o")))
        .collect();
    inputs.sort();
    if inputs.is_empty() {
        return Err(format!("{} holds no bitcode members", archive.display()));
    }

    let linked = work.join("linked.bc");
    run_tool(Command::new(&tools.llvm_link).args(&inputs).arg("-o").arg(&linked), "llvm-link")?;

    let internalized = work.join("internalized.bc");
    run_tool(
        Command::new(&tools.opt)
            .arg(format!("--internalize-public-api-list={}", exported().collect::<Vec<_>>().join(",")))
            .arg("-passes=internalize,globaldce")
            .arg(&linked)
            .arg("-o")
            .arg(&internalized),
        "opt (internalize)",
    )?;

    run_tool(
        Command::new(&tools.llc)
            .args(["-march=bpfel", "-mcpu=v3", "-O2", "-filetype=obj"])
            .arg(&internalized)
            .arg("-o")
            .arg(object),
        "llc",
    )
}

fn run_tool(cmd: &mut Command, what: &str) -> Result<(), String> {
    let output = cmd.output().map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {}", String::from_utf8_lossy(&output.stderr)))
    }
}
