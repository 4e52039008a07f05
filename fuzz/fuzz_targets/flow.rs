//! The inner-flow hash the XDP express path and the workers share: never panics, and the
//! workers' `vxlan::flow_hash` agrees with `vxdp_common::flow` on every frame (so a flow
//! keeps its outer source port whichever path carries it).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert_eq!(vxdp::vxlan::flow_hash(data), vxdp_common::flow::flow_hash(data));
});
