//! vxdp-bench: criterion benchmarks for vxdp's hot-path structures.
//!
//! - `benches/fdb.rs`: FDB lookups in the RCU snapshot ([`vxdp::fdb::FdbSnapshot`])
//!   against `dashmap`, idle and under a concurrent writer, and the cost of a publish.
//!   Run with `cargo bench -p vxdp-bench --bench fdb`; results are recorded in
//!   `docs/FDB.md`.
