//! CPU placement: worker pinning (`vxdp run --cpus`) and the CPU counts it checks against
//! (the bench pins its threads with the same functions).

use std::io;
use std::os::unix::thread::JoinHandleExt;
use std::thread::JoinHandle;

/// CPUs the kernel was configured with (online or not): valid ids are `0..configured()`.
pub fn configured() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    if n > 0 {
        n as usize
    } else {
        1
    }
}

/// CPUs online now. Not `available_parallelism`, which counts only the CPUs the calling
/// thread may run on (1 once it is pinned).
pub fn online() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// The CPU set holding just `cpu`.
fn just(cpu: usize) -> io::Result<libc::cpu_set_t> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "CPU id beyond CPU_SETSIZE"));
    }
    // SAFETY: a zeroed cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes within the set: `cpu` is below CPU_SETSIZE (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    Ok(set)
}

/// Restricts the running thread `t` to `cpu`.
pub fn pin<T>(t: &JoinHandle<T>, cpu: usize) -> io::Result<()> {
    let set = just(cpu)?;
    // SAFETY: the handle's pthread is alive (not joined), `set` is a valid cpu_set_t of the
    // size passed.
    let r = unsafe { libc::pthread_setaffinity_np(t.as_pthread_t(), std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// Restricts the calling thread to `cpu`.
/// Sets the calling thread's nice value (`setpriority` on its thread id): below 0 it
/// gets a larger share of its CPU than ordinary threads there, NAPI threads included.
pub fn set_current_thread_nice(nice: i32) -> io::Result<()> {
    // SAFETY: gettid has no preconditions; setpriority reads only its integer arguments.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let set = just(cpu)?;
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// CPUs the calling thread may run on, from /proc (independent of this module).
    fn allowed_list(tid: i32) -> String {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_string()
    }

    #[test]
    fn pin_moves_a_running_thread_and_rejects_a_cpu_that_does_not_exist() {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            go_rx.recv().unwrap();
        });
        let tid = tid_rx.recv().unwrap();
        pin(&t, 0).unwrap();
        assert_eq!(allowed_list(tid), "0");
        assert!(pin(&t, libc::CPU_SETSIZE as usize).is_err());
        assert!(pin(&t, configured() + 1).is_err(), "a CPU that does not exist was accepted");
        go_tx.send(()).unwrap();
        t.join().unwrap();
    }
}
