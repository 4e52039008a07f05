//! Three hosts running vxdp with `--consul --advertise`, fed only by Consul (the
//! in-process test server, listening on the underlay): the shared cluster-store
//! scenario of `vxdp_tests::store_e2e` (entries propagate and traffic follows, a
//! deleted registration comes back, a MAC moves from host B to C, a SIGKILLed host's
//! entries vanish after the session TTL).

use std::net::SocketAddr;

use vxdp_tests::multi::{Cluster, UNDERLAY_SERVICE_IP};
use vxdp_tests::store_e2e::{three_hosts, TestStore};
use vxdp_tests::{in_netns, require_root, serial};
use vxdp_testsupport::consul::TestConsul;

struct Consul(TestConsul);

impl TestStore for Consul {
    fn args(&self) -> Vec<String> {
        vec!["--consul".into(), self.0.url()]
    }
    fn keys(&self, prefix: &str) -> Vec<String> {
        self.0.keys(prefix)
    }
    fn put(&self, key: &str, value: &[u8]) {
        self.0.put(key, value)
    }
    fn delete(&self, key: &str) {
        self.0.delete(key)
    }
    fn get(&self, key: &str) -> Option<(Vec<u8>, bool)> {
        self.0.get(key).map(|(v, session)| (v, session.is_some()))
    }
}

#[test]
fn consul_e2e() {
    if !require_root("consul_e2e") {
        return;
    }
    let _serial = serial();
    let mut cluster = Cluster::new(3);
    let addr: SocketAddr = format!("{UNDERLAY_SERVICE_IP}:8500").parse().unwrap();
    let consul = in_netns(&cluster.underlay, || TestConsul::start_on(addr)).expect("test Consul on the underlay");
    three_hosts(&mut cluster, &Consul(consul), |_, _| {});
}
