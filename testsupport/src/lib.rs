//! vxdp-testsupport: fixtures the tests and benchmarks share, kept out of the product
//! crates so their dependencies stay the product's.
//!
//! - [`consul`]: [`TestConsul`](consul::TestConsul), an in-process Consul HTTP API
//!   server (KV, blocking queries, sessions, ACL tokens, fault injection).
//! - [`root`]: [`require_root`], the one skip-or-fail check of root-only tests
//!   (`VXDP_REQUIRE_ROOT=1`, as CI sets it, makes a skip a failure).
//!
//! - [`etcd`]: [`EtcdCluster`](etcd::EtcdCluster), a real etcd cluster (Debian's
//!   `etcd-server`) run as the test's own processes.
//!
//! - [`zookeeper`]: [`ZkEnsemble`](zookeeper::ZkEnsemble), a real ZooKeeper ensemble
//!   (Debian's `zookeeper`) run as the test's own JVMs.

pub mod consul;
pub mod etcd;
pub mod root;
pub mod zookeeper;

pub use root::require_root;
