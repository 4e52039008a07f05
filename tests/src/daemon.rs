//! The [`Daemon`] guard: one `vxdp run` inside a namespace.
//!
//! Started with `ip netns exec NS vxdp run --name NAME ...` (which execs,
//! so the child pid is the daemon's), stdout and stderr go to a log file,
//! and it counts as ready once `vxdp stats dev NAME --json` succeeds in
//! the same namespace (the control socket is namespace-scoped). Dropping
//! the guard sends SIGTERM, then SIGKILL after a deadline; if the test is
//! panicking the daemon's log is printed.
//!
//! The datapath comes from `$VXDP_DATAPATH` ([`datapath`]): every daemon the
//! harness starts gets `--datapath` from it, so one scenario runs in both.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::netns::{run_cmd, Netns};

/// How long the daemon may take to become ready (a debug build loading
/// its eBPF object is slow).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long SIGTERM may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_LOG: AtomicUsize = AtomicUsize::new(0);

/// Path of the vxdp binary: `$VXDP_BIN`, else `<target>/release/vxdp`,
/// else `<target>/debug/vxdp`, where `<target>` is found from this test
/// executable (`<target>/<profile>/deps/<test>`). Panics if none exists.
pub fn vxdp_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("VXDP_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "VXDP_BIN={} does not exist", bin.display());
        return bin;
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target
    let target = exe.ancestors().nth(3).map(PathBuf::from);
    let candidates: Vec<PathBuf> = target.iter().flat_map(|t| [t.join("release/vxdp"), t.join("debug/vxdp")]).collect();
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!(
            "vxdp binary not found (looked at {candidates:?}); run `cargo build -p vxdp-cli --release` \
             first or set VXDP_BIN"
        )
    })
}

/// The environment variable naming the datapath every `vxdp run` gets.
pub const DATAPATH_VAR: &str = "VXDP_DATAPATH";

/// `vxdp run --datapath` for this test run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datapath {
    /// `$VXDP_DATAPATH` unset: no flag, the daemon's default (`auto`).
    Default,
    /// `--datapath auto`: the XDP express path in front of the workers.
    Auto,
    /// `--datapath afxdp`: the AF_XDP workers alone.
    Afxdp,
}

impl Datapath {
    /// Whether the daemon runs the XDP express path (the default does).
    pub fn express(self) -> bool {
        self != Datapath::Afxdp
    }

    /// The `vxdp run` flags selecting it (none for the default).
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Datapath::Default => &[],
            Datapath::Auto => &["--datapath", "auto"],
            Datapath::Afxdp => &["--datapath", "afxdp"],
        }
    }
}

impl std::fmt::Display for Datapath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Datapath::Default => "default (auto)",
            Datapath::Auto => "auto",
            Datapath::Afxdp => "afxdp",
        })
    }
}

/// The datapath named by `$VXDP_DATAPATH` (`auto` or `afxdp`; unset or empty:
/// [`Datapath::Default`]). Panics naming the variable on any other value.
pub fn datapath() -> Datapath {
    match std::env::var(DATAPATH_VAR).as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("") => Datapath::Default,
        Ok("auto") => Datapath::Auto,
        Ok("afxdp") => Datapath::Afxdp,
        Ok(other) => panic!("{DATAPATH_VAR}={other} is not a datapath (auto or afxdp)"),
        Err(e) => panic!("{DATAPATH_VAR}: {e}"),
    }
}

/// A running `vxdp run` daemon; stopped on drop.
pub struct Daemon {
    ns: String,
    name: String,
    bin: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `vxdp run --name NAME ARGS...` in `ns` and waits until it
    /// answers `stats`. `args` are the remaining `run` flags, e.g.
    /// `["--dev", "eth0", "--vni", "42", "--remote", "192.0.2.2"]`; the
    /// [`datapath`] flags are added unless `args` has `--datapath`.
    /// Panics with the daemon's log if it exits or is not ready in time.
    pub fn start(ns: &Netns, name: &str, args: &[&str]) -> Daemon {
        Daemon::start_wrapped(ns, name, &[], args)
    }

    /// [`Daemon::start`] with `wrapper` (e.g. `setpriv ...`) run in front of the binary,
    /// inside the namespace.
    pub fn start_wrapped(ns: &Netns, name: &str, wrapper: &[&str], args: &[&str]) -> Daemon {
        let bin = vxdp_bin();
        let dp = datapath();
        let mut args = args.to_vec();
        if !args.contains(&"--datapath") {
            args.extend_from_slice(dp.args());
        }
        eprintln!("vxdp run --name {name} in {} (datapath {dp}): {args:?}", ns.name());
        let log = std::env::temp_dir().join(format!(
            "vxdp-{}-{}-{}.log",
            ns.name(),
            name,
            NEXT_LOG.fetch_add(1, Ordering::Relaxed)
        ));
        let out = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("dup log fd");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .args(wrapper)
            .arg(&bin)
            .args(["run", "--name", name])
            .args(&args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut daemon = Daemon { ns: ns.name().to_string(), name: name.to_string(), bin, child: Some(child), log };
        daemon.wait_ready(&args);
        daemon
    }

    fn wait_ready(&mut self, args: &[&str]) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("vxdp run {args:?} in {} exited before ready ({status}); log:\n{}", self.ns, self.log_text());
            }
            if self.try_stats().is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                panic!("vxdp run {args:?} in {} not ready after {READY_TIMEOUT:?}; log:\n{}", self.ns, self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The overlay device's name (`--name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The daemon's pid (it is the `ip netns exec` child, which execs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the daemon process has not exited.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Runs a control command (`vxdp ARGS...`) in the daemon's namespace.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        let bin = self.bin.to_string_lossy();
        let mut argv = vec!["ip", "netns", "exec", &self.ns, &bin];
        argv.extend_from_slice(args);
        run_cmd(&argv)
    }

    /// `vxdp stats dev NAME --json`, parsed.
    pub fn try_stats(&self) -> Result<Stats> {
        let out = self.ctl(&["stats", "dev", &self.name, "--json"])?;
        let json = serde_json::from_str(&out).with_context(|| format!("stats is not JSON: {out}"))?;
        Ok(Stats(json))
    }

    /// Like [`Daemon::try_stats`], panicking with the daemon log on error.
    pub fn stats(&self) -> Stats {
        self.try_stats().unwrap_or_else(|e| panic!("{e:#}; daemon log:\n{}", self.log_text()))
    }

    /// The daemon's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<{}: {e}>", self.log.display()))
    }

    /// SIGKILLs the daemon (no chance to clean up) and reaps it.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, wait up to `STOP_TIMEOUT` (5 s), then SIGKILL. Returns the
    /// exit status if the daemon was still running.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        // SAFETY: kill(2) only sends a signal to our own, unreaped child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("vxdp in {} ignored SIGTERM for {STOP_TIMEOUT:?}; killing", self.ns);
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- vxdp log ({} in {}, kept at {}) ----\n{}",
                self.name,
                self.ns,
                self.log.display(),
                self.log_text()
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Parsed `vxdp stats --json`; accessors panic naming a missing key.
#[derive(Debug, Clone)]
pub struct Stats(pub serde_json::Value);

impl Stats {
    /// A counter from `total`, e.g. `decap_frames`.
    pub fn total(&self, key: &str) -> u64 {
        self.get("total", key)
    }

    /// A counter from `xdp`, e.g. `xdp_pass_other_port`.
    pub fn xdp(&self, key: &str) -> u64 {
        self.get("xdp", key)
    }

    /// A counter from `control`, e.g. `learn_refused_unknown_source` (0 when the
    /// section or the key is absent: the daemon leaves an empty section out).
    pub fn control(&self, key: &str) -> u64 {
        self.0["control"][key].as_u64().unwrap_or(0)
    }

    /// Number of per-worker entries.
    pub fn workers(&self) -> usize {
        self.0["workers"].as_array().map_or(0, Vec::len)
    }

    fn get(&self, section: &str, key: &str) -> u64 {
        self.0[section][key].as_u64().unwrap_or_else(|| panic!("stats has no integer {section}.{key}: {}", self.0))
    }
}
