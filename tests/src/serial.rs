//! Keeps scenarios from overlapping: a process-wide mutex plus an `flock`
//! on a lock file, so separate test binaries (or a parallel runner) also
//! take turns.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard};

static IN_PROCESS: Mutex<()> = Mutex::new(());

/// Held for the duration of one scenario; released on drop.
pub struct SerialGuard {
    _file: File,
    _guard: MutexGuard<'static, ()>,
}

/// Blocks until no other scenario (in this or another process) runs.
pub fn serial() -> SerialGuard {
    // A panicking earlier test poisons the mutex; the lock is still fine.
    let guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let path = std::env::temp_dir().join("vxdp-tests.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open lock file {}: {e}", path.display()));
    // SAFETY: the fd is valid while `file` lives; the lock is released
    // when it is closed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}: {}", path.display(), std::io::Error::last_os_error());
    SerialGuard { _file: file, _guard: guard }
}
