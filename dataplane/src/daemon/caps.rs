//! Least privilege once set up: the daemon keeps only the capabilities its running
//! life needs (netlink and the devices: CAP_NET_ADMIN; `vxdp port add` attaching XDP:
//! CAP_NET_ADMIN, CAP_BPF, CAP_PERFMON; the sockets: CAP_NET_RAW, CAP_IPC_LOCK; the
//! workers' negative nice: CAP_SYS_NICE; `--metrics` on a low port:
//! CAP_NET_BIND_SERVICE), drops the rest from its effective, permitted, inheritable,
//! ambient and bounding sets, and sets `PR_SET_NO_NEW_PRIVS`.
//!
//! Capabilities are per thread: this runs on the main thread before it starts any
//! other, so every thread the daemon has inherits the reduced sets.

use anyhow::{bail, Result};

const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_NICE: u32 = 23;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What the running daemon keeps, of what it holds.
pub const KEEP: [u32; 7] =
    [CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK, CAP_SYS_NICE, CAP_PERFMON, CAP_BPF];

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets as two 32-bit halves.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn mask(caps: &[u32]) -> u64 {
    caps.iter().fold(0, |m, c| m | (1u64 << c))
}

fn get() -> std::io::Result<(u64, u64)> {
    let mut h = Header { version: VERSION_3, pid: 0 };
    let mut d = [Data::default(); 2];
    // SAFETY: capget(2) with a version-3 header and room for its two data structs.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((join(d[0].effective, d[1].effective), join(d[0].permitted, d[1].permitted)))
}

fn set(keep: u64) -> std::io::Result<()> {
    let h = Header { version: VERSION_3, pid: 0 };
    let half = |m: u64, i: usize| (m >> (32 * i)) as u32;
    let d = [0, 1].map(|i| Data { effective: half(keep, i), permitted: half(keep, i), inheritable: 0 });
    // SAFETY: capset(2) on the calling thread with a version-3 header and two data structs.
    if unsafe { libc::syscall(libc::SYS_capset, &h as *const Header, d.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Drops every capability but [`KEEP`] (of those held), and sets no-new-privileges.
/// Returns the capabilities kept, as a mask.
pub fn drop_to_running() -> Result<u64> {
    let (_, permitted) = get()?;
    let keep = permitted & mask(&KEEP);
    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next. A
    // daemon started with only the kept capabilities (the systemd unit) has none of
    // the others in it to drop, or no CAP_SETPCAP; that is fine.
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    for cap in (0..=last).filter(|c| keep & (1 << c) == 0) {
        // SAFETY: prctl(2) with integer arguments only.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) };
    set(keep)?;
    // SAFETY: as above.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        bail!("PR_SET_NO_NEW_PRIVS: {}", std::io::Error::last_os_error());
    }
    let (effective, _) = get()?;
    if effective & !keep != 0 {
        bail!("capabilities {:#x} are still effective after dropping to {keep:#x}", effective & !keep);
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_set() {
        assert_eq!(mask(&KEEP), (1 << 10) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 23) | (1 << 38) | (1 << 39));
        let (effective, permitted) = get().expect("capget");
        assert_eq!(effective & !permitted, 0, "effective is a subset of permitted");
    }
}
