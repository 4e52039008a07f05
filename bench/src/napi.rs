//! Threaded NAPI on the topology's veths, so each device's receive work runs in a
//! kernel thread that can be pinned, as IRQ affinity places it on a NIC.
//!
//! A veth has NAPI only while GRO is on or an XDP program is attached; the bench turns
//! GRO on (and keeps it on, so the NAPI instances and their threads live as long as the
//! topology) and then writes `threaded`. The kernel names the threads
//! `napi/<dev>-<id>` with the name the device had then, which is `eth0` in several
//! namespaces, so the threads of one device are found as the `napi/` threads that
//! appeared when its `threaded` was set.

use crate::topo::TryRunArgs;
use std::collections::BTreeSet;
use vxdp_tests::Netns;

/// Pids of every `napi/...` kernel thread.
fn napi_threads() -> BTreeSet<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("napi/")))
        .collect()
}

/// One device's NAPI threads.
#[derive(Clone, Debug)]
pub struct NapiDev {
    /// `namespace/device`, for messages.
    pub name: String,
    pub pids: Vec<i32>,
}

impl NapiDev {
    /// Turns GRO and threaded NAPI on for `dev` in `ns` and returns its threads.
    pub fn thread(ns: &Netns, dev: &str) -> anyhow::Result<NapiDev> {
        let before = napi_threads();
        ns.try_run_args(&["ethtool", "-K", dev, "gro", "on"])?;
        ns.try_run_args(&["sh", "-c", &format!("echo 1 > /sys/class/net/{dev}/threaded")])?;
        let pids: Vec<i32> = napi_threads().difference(&before).copied().collect();
        let name = format!("{}/{dev}", ns.name());
        anyhow::ensure!(!pids.is_empty(), "{name}: no NAPI thread appeared after setting threaded");
        Ok(NapiDev { name, pids })
    }

    /// Pins every thread of this device to the CPUs of `list` (`taskset -c` syntax),
    /// as a `SCHED_FIFO` thread if `fifo` (it then pre-empts ordinary threads on its
    /// CPU, as softirq does), else as an ordinary one (the kernel's default).
    pub fn pin(&self, list: &str, fifo: bool) {
        for pid in &self.pids {
            let pid = pid.to_string();
            let policy: &[&str] =
                if fifo { &["chrt", "-f", "-p", "10", &pid] } else { &["chrt", "-o", "-p", "0", &pid] };
            for cmd in [&["taskset", "-p", "-c", list, &pid][..], policy] {
                if let Err(e) = vxdp_tests::netns::run_cmd(cmd) {
                    log::warn!("{}: NAPI thread {pid}: {e:#}", self.name);
                }
            }
        }
    }
}
