//! Integration test harness for vxdp.
//!
//! Everything a scenario needs to build a throw-away two-host VXLAN
//! topology out of network namespaces and tear it down again, even when
//! the test panics:
//!
//! - [`netns`]: the [`Netns`] guard, commands inside a namespace
//!   ([`Netns::run`], [`Netns::try_run`]) and [`in_netns`] to create the
//!   test's own sockets inside one.
//! - [`daemon`]: the [`Daemon`] guard around `vxdp run` and its [`Stats`].
//! - [`vtep`]: [`kernel_vtep`], a Linux kernel vxlan device as reference peer.
//! - [`topology`]: the two-host, two-container [`Topology`], and [`PortTopology`]
//!   (vxdp's port layout on one host).
//! - [`traffic`]: bounded traffic checks (ARP, ping, TCP, UDP broadcast).
//! - [`raw`]: crafted (spoofed) VXLAN frames on raw sockets, and counting arrivals.
//! - [`capture`]: an `AF_PACKET` capture, to see which frames reached a host.
//! - [`serial`](mod@serial): [`serial()`] so scenarios never overlap.
//! - [`store_e2e`]: the three-host cluster-store scenario every store runs.
//!
//! Scenarios live in `tests/tests/*.rs`; they need root (see
//! [`require_root`]) and skip otherwise.

pub mod capture;
pub mod daemon;
pub mod multi;
pub mod netns;
pub mod raw;
pub mod serial;
pub mod store_e2e;
pub mod topology;
pub mod traffic;
pub mod vtep;

pub use daemon::{datapath, Daemon, Datapath, Stats};
pub use netns::{in_netns, in_netns_at, spawn_in_netns, Netns};
pub use serial::serial;
pub use topology::{Host, PortTopology, Side, Topology, VtepKind};
pub use vtep::kernel_vtep;

/// `require_root("test name")`: true when the test can create namespaces; otherwise it
/// says why the test is skipped and returns false (the test returns early), or fails
/// the test under `VXDP_REQUIRE_ROOT=1` (CI).
pub use vxdp_testsupport::require_root;

/// Polls `cond` every 50 ms until it returns true or `timeout` passes;
/// returns whether it became true. Use instead of fixed sleeps.
pub fn wait_until(timeout: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
