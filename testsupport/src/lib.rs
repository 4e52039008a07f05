//! vxdp-testsupport: fixtures the tests and benchmarks share, kept out of the product
//! crates so their dependencies stay the product's.
//!
//! - [`consul`]: [`TestConsul`](consul::TestConsul), an in-process Consul HTTP API
//!   server (KV, blocking queries, sessions, ACL tokens, fault injection).
//! - [`root`]: [`require_root`], the one skip-or-fail check of root-only tests
//!   (`VXDP_REQUIRE_ROOT=1`, as CI sets it, makes a skip a failure).
//!
//! Real etcd and ZooKeeper runners are meant to sit beside it, one module each.

pub mod consul;
pub mod root;

pub use root::require_root;
