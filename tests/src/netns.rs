//! Network namespace guard and ways to act inside a namespace.
//!
//! A [`Netns`] is created with `ip netns add <prefix>-<pid>-<n>` (unique per
//! test process) and deleted on drop, after killing whatever still runs in
//! it. Commands run through `ip netns exec`; the test's own sockets are
//! created on a thread that has `setns`'d into the namespace
//! ([`in_netns`]), and keep that namespace after the thread ends.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use anyhow::{bail, Context, Result};

/// Counter making namespace names unique within this process.
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// Every namespace prefix starts with this, so stale namespaces of
/// crashed earlier runs can be recognised and removed.
const NAME_TAG: &str = "vxt";

/// A named network namespace, deleted (with everything in it) on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `vxt<role>-<pid>-<n>`, e.g. `vxtha-4242-0`. `role` is a
    /// short tag (`ha`, `cb`, ...) that makes `ip netns list` readable.
    pub fn new(role: &str) -> Netns {
        sweep_stale();
        let name = format!("{NAME_TAG}{role}-{}-{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed));
        run_cmd(&["ip", "netns", "add", &name]).unwrap_or_else(|e| panic!("{e:#}"));
        let ns = Netns { name };
        // Bring up loopback and keep IPv6 quiet: no DAD, router
        // solicitations or MLD reports to muddy counters.
        ns.run("ip link set lo up");
        ns.run("sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
        ns.run("sysctl -qw net.ipv6.conf.default.disable_ipv6=1");
        ns
    }

    /// The namespace's name as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path of the namespace's bind mount, usable with `setns`.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs a whitespace-separated command inside the namespace and
    /// returns its stdout; panics with the command and its stderr on
    /// failure.
    pub fn run(&self, cmd: impl AsRef<str>) -> String {
        self.try_run(cmd).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Like [`Netns::run`] but returns the failure (with stderr) instead
    /// of panicking.
    pub fn try_run(&self, cmd: impl AsRef<str>) -> Result<String> {
        let mut argv = vec!["ip", "netns", "exec", &self.name];
        argv.extend(cmd.as_ref().split_whitespace());
        run_cmd(&argv)
    }

    /// Like [`Netns::run`] for arguments that may contain spaces.
    pub fn run_args(&self, args: &[&str]) -> String {
        let mut argv = vec!["ip", "netns", "exec", &self.name];
        argv.extend_from_slice(args);
        run_cmd(&argv).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Pids of the processes running in the namespace.
    pub fn pids(&self) -> Vec<i32> {
        run_cmd(&["ip", "netns", "pids", &self.name])
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// SIGKILLs every process still in the namespace.
    pub fn kill_all(&self) {
        for pid in self.pids() {
            // SAFETY: kill(2) only sends a signal; a stale pid yields ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        if let Err(e) = run_cmd(&["ip", "netns", "del", &self.name]) {
            eprintln!("warning: could not delete netns {}: {e:#}", self.name);
        }
    }
}

/// Runs `argv` and returns stdout, or an error naming the command with
/// its exit status and stderr.
pub fn run_cmd(argv: &[&str]) -> Result<String> {
    let out: Output = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .with_context(|| format!("cannot start `{}`", argv.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}{}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Deletes namespaces named by [`Netns::new`] whose creating process is
/// gone (a test run that was SIGKILLed never ran its guards).
fn sweep_stale() {
    let Ok(list) = run_cmd(&["ip", "netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(NAME_TAG) else {
            continue;
        };
        let mut parts = rest.split('-');
        let (_role, Some(pid), Some(_n), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the pid exists.
        let alive =
            unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let stale = Netns { name: name.to_string() };
            drop(stale);
        }
    }
}

/// Moves the calling thread into `ns`'s network namespace.
fn enter(ns_path: &str) {
    let file = File::open(ns_path).unwrap_or_else(|e| panic!("cannot open {ns_path}: {e}"));
    // SAFETY: the fd is valid while `file` lives; CLONE_NEWNET changes
    // only this thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        panic!("setns({ns_path}): {}", std::io::Error::last_os_error());
    }
}

/// Runs `f` on a fresh thread inside `ns` and returns its result (a panic
/// in `f` is re-raised here). Sockets created in `f` stay in `ns` and can
/// be used from any thread afterwards.
pub fn in_netns<T: Send, F: FnOnce() -> T + Send>(ns: &Netns, f: F) -> T {
    in_netns_at(&ns.path(), f)
}

/// [`in_netns`] for a namespace named by its path ([`Netns::path`]), for code that
/// cannot hold a borrow of the [`Netns`].
pub fn in_netns_at<T: Send, F: FnOnce() -> T + Send>(path: &str, f: F) -> T {
    let path = path.to_string();
    thread::scope(|s| {
        s.spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Like [`in_netns`] but does not wait: the closure runs in the
/// background inside `ns`; join the handle for its result.
pub fn spawn_in_netns<T, F>(ns: &Netns, f: F) -> thread::JoinHandle<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = ns.path();
    thread::spawn(move || {
        enter(&path);
        f()
    })
}
