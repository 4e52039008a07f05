//! vxdp: a userspace VXLAN (RFC 7348) data plane on AF_XDP.
//!
//! The modules follow a frame, from the wire up:
//! - [`wire`]: zero-copy typed views over Ethernet, IPv4, IPv6, UDP and VXLAN headers.
//! - [`vxlan`]: pure decap, encap and source-port selection on caller-owned buffers,
//!   returning what to do next; no I/O.
//! - [`fdb`], [`nexthop`]: the MAC-to-VTEP table and the per-remote outer headers; RCU
//!   snapshots the hot path reads without blocking.
//! - [`afxdp`]: the UMEM, rings and sockets (the one place with ring `unsafe`), and the
//!   per-queue workers that move frames between underlay and overlay.
//! - [`xdp`]: loading and attaching the embedded eBPF programs that steer frames to the
//!   workers; [`express`]: mirroring the tables into the maps of their express path,
//!   which decapsulates and encapsulates known unicast in XDP.
//! - [`guard`]: `--accept`, the source allow-list the underlay program enforces.
//! - [`ports`]: the port layout's table (ports and the MACs on them) and its XDP mirror.
//! - [`counters`]: drop reasons and per-worker counters.
//! - [`netlink`], [`ethtool`], [`cpus`]: the kernel interfaces the daemon configures.
//! - [`daemon`]: `vxdp run`, wiring everything together: setup, the control loop, the
//!   control socket and the Consul glue.

pub mod afxdp;
pub mod counters;
pub mod cpus;
pub mod daemon;
pub mod ethtool;
pub mod express;
pub mod fdb;
pub mod guard;
pub mod neigh;
pub mod netlink;
pub mod nexthop;
pub mod outer;
pub mod ports;
pub mod vxlan;
pub mod wire;
pub mod xdp;
