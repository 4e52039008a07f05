//! vxdp-testsupport: fixtures the tests and benchmarks share, kept out of the product
//! crates so their dependencies stay the product's.
//!
//! - [`consul`]: [`TestConsul`](consul::TestConsul), an in-process Consul HTTP API
//!   server (KV, blocking queries, sessions, ACL tokens, fault injection).
//!
//! Real etcd and ZooKeeper runners are meant to sit beside it, one module each.

pub mod consul;
