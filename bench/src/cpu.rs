//! CPU placement and accounting: pinning threads, and busy time from `/proc/stat`
//! so every figure can be turned into CPU time per packet for the whole machine.

/// Pins the calling thread to `cpu` (ignored if the CPU does not exist).
pub fn pin_current_thread(cpu: usize) {
    if let Err(e) = vxdp::cpus::pin_current_thread(cpu) {
        log::warn!("cannot pin to CPU {cpu}: {e}");
    }
}

/// Online CPUs of the machine. Not `available_parallelism`, which counts only the
/// CPUs the calling thread may run on: after [`pin_current_thread`] that is 1, and
/// every placement decision based on it would put the DUT on the tester's CPU.
pub fn count() -> usize {
    vxdp::cpus::online()
}

/// Busy and total jiffies of every CPU, from `/proc/stat`.
#[derive(Clone, Debug, Default)]
pub struct CpuTimes {
    /// Per CPU: (busy, total).
    pub per_cpu: Vec<(u64, u64)>,
}

impl CpuTimes {
    pub fn read() -> CpuTimes {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let per_cpu = text
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .map(|l| {
                let v: Vec<u64> = l.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
                let total: u64 = v.iter().take(8).sum();
                let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
                (total - idle, total)
            })
            .collect();
        CpuTimes { per_cpu }
    }

    /// Busy fraction of each CPU since `earlier`.
    pub fn busy_since(&self, earlier: &CpuTimes) -> Vec<f64> {
        self.per_cpu
            .iter()
            .zip(&earlier.per_cpu)
            .map(|(now, then)| {
                let total = now.1.saturating_sub(then.1);
                if total == 0 {
                    0.0
                } else {
                    now.0.saturating_sub(then.0) as f64 / total as f64
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_ignores_this_threads_affinity() {
        let before = count();
        let pinned = std::thread::spawn(|| {
            pin_current_thread(0);
            (count(), std::thread::available_parallelism().map_or(1, |n| n.get()))
        })
        .join()
        .unwrap();
        assert_eq!(pinned.0, before, "count() changed when the thread was pinned");
        assert_eq!(pinned.1, 1, "available_parallelism should see the pin (else this test proves nothing)");
    }
}
