//! `vxlan::decap` on any frame: never panics, and a frame it delivers lies inside the
//! input, is at least an Ethernet header and within the configured MTU.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxdp::vxlan::{decap, Decap, DecapConfig, Vni};

fuzz_target!(|data: &[u8]| {
    let cfg = DecapConfig {
        vni: Vni::new(42).unwrap(),
        port: 4789,
        local_v4: vec!["192.0.2.1".parse().unwrap()],
        local_v6: vec!["2001:db8::1".parse().unwrap()],
        max_inner_len: DecapConfig::max_inner_len_for_mtu(1450, true),
    };
    if let Decap::Deliver { inner_start, inner_len, .. } = decap(data, &cfg) {
        assert!(inner_start.checked_add(inner_len).is_some_and(|end| end <= data.len()));
        assert!(inner_len >= 14 && inner_len <= cfg.max_inner_len);
    }
});
