//! vxdp-bench: benchmarks for vxdp, micro and end to end.
//!
//! - `benches/fdb.rs`: FDB lookups in the RCU snapshot ([`vxdp::fdb::FdbSnapshot`])
//!   against `dashmap`, idle and under a concurrent writer, and the cost of a publish.
//!   Run with `cargo bench -p vxdp-bench --bench fdb`; results are recorded in
//!   `docs/FDB.md`.
//! - `benches/vxlan.rs`: encap and decap per packet and per batch of 64.
//! - The end-to-end comparison with the kernel vxlan device (`cargo xtask bench`, the
//!   `vxdp-netbench` binary): [`frame`] builds and recognises test frames, [`pktgen`]
//!   is an AF_XDP generator and sink, [`forwarder`] the medium's ceiling, [`topo`] the
//!   namespaces, [`suite`] the matrix of runs and [`report`] its table, JSON and SVG.
//!   Results and method: `docs/BENCHMARKS.md`.

pub mod cpu;
pub mod forwarder;
pub mod frame;
pub mod headline;
pub mod napi;
pub mod pktgen;
pub mod report;
pub mod storebench;
pub mod suite;
pub mod topo;
