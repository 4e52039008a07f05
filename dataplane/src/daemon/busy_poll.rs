//! Preferred busy polling (`--busy-poll`): the device side.
#![forbid(unsafe_code)]
//!
//! A worker that busy-polls its sockets runs the NAPI of their queues itself, so the
//! kernel's receive work for those queues happens when the worker asks for it and at
//! its pace, instead of in softirq or a NAPI thread that pre-empts or out-competes it
//! (the receive livelock in docs/BENCHMARKS.md). For the kernel to leave a NAPI to the
//! busy poller, the device needs `napi_defer_hard_irqs` (how many times the NAPI is
//! not re-armed after a poll) and `gro_flush_timeout` (the fallback timer, in ns,
//! after which the kernel polls it itself if the worker did not). [`NapiDefer`] sets
//! both on a device and puts the old values back on drop.

use std::path::PathBuf;

/// `SO_BUSY_POLL` of the workers' sockets, µs: how long one blocking call may spin.
pub const BUSY_POLL_USECS: u32 = 20;
/// `SO_BUSY_POLL_BUDGET`: frames one busy poll may take from the device (the batch).
pub const BUSY_POLL_BUDGET: u16 = crate::afxdp::worker::BATCH as u16;
/// `napi_defer_hard_irqs` set on every busy-polled device.
pub const DEFER_HARD_IRQS: u32 = 2;
/// `gro_flush_timeout` set on every busy-polled device, ns: the longest a frame waits
/// when the worker stops polling (it then sleeps in `poll()` and the kernel takes over).
pub const GRO_FLUSH_TIMEOUT_NS: u32 = 200_000;

/// The two sysfs settings of one device, restored on drop.
pub struct NapiDefer {
    dev: String,
    restore: Vec<(PathBuf, String)>,
}

impl NapiDefer {
    /// Sets `napi_defer_hard_irqs` and `gro_flush_timeout` on `dev` (in this network
    /// namespace's `/sys`).
    pub fn set(dev: &str) -> std::io::Result<NapiDefer> {
        let mut guard = NapiDefer { dev: dev.to_string(), restore: Vec::new() };
        for (file, value) in [
            ("napi_defer_hard_irqs", DEFER_HARD_IRQS.to_string()),
            ("gro_flush_timeout", GRO_FLUSH_TIMEOUT_NS.to_string()),
        ] {
            let path = PathBuf::from(format!("/sys/class/net/{dev}/{file}"));
            let old = std::fs::read_to_string(&path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            std::fs::write(&path, &value)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            guard.restore.push((path, old.trim().to_string()));
        }
        log::info!(
            "{dev}: napi_defer_hard_irqs {DEFER_HARD_IRQS}, gro_flush_timeout {GRO_FLUSH_TIMEOUT_NS} ns (busy polling)"
        );
        Ok(guard)
    }
}

impl Drop for NapiDefer {
    fn drop(&mut self) {
        for (path, old) in self.restore.drain(..).rev() {
            if let Err(e) = std::fs::write(&path, &old) {
                log::warn!("{}: could not restore {}: {e}", self.dev, path.display());
            }
        }
    }
}
