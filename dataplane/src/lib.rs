//! vxdp: a userspace VXLAN (RFC 7348) data plane on AF_XDP.
//!
//! Layers, from the wire up:
//! - [`wire`]: zero-copy typed views over Ethernet, IPv4, IPv6, UDP and VXLAN headers.
//! - [`vxlan`]: pure encap/decap on caller-owned buffers, returning what to do next.
//! - [`fdb`]: the MAC-to-VTEP table; hot-path reads never block.
//! - [`xsk`]: AF_XDP sockets and UMEM (the one place with ring `unsafe`).
//! - [`xdp`]: loading and attaching the embedded eBPF programs.
//! - [`netlink`]: links, addresses, routes and neighbours via rtnetlink.
//! - [`worker`]: the per-queue threads that move frames between underlay and overlay.
//! - [`localmac`], [`consul`]: the MACs behind the overlay, and the Consul control plane.
//! - [`daemon`]: `vxdp run`, wiring everything together.

pub mod consul;
pub mod counters;
pub mod cpus;
pub mod daemon;
pub mod fdb;
pub mod localmac;
pub mod netlink;
pub mod nexthop;
pub mod vxlan;
pub mod wire;
pub mod worker;
pub mod xdp;
pub mod xsk;
