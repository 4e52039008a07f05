//! The control socket's messages (one JSON line each way) on any bytes: never panic,
//! and a request or response that parses serializes back to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxdp_control::ctl::{Request, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<Request>(data) {
        let again: Request = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        assert_eq!(again, req);
    }
    if let Ok(resp) = serde_json::from_slice::<Response>(data) {
        let again: Response = serde_json::from_str(&serde_json::to_string(&resp).unwrap()).unwrap();
        assert_eq!(again, resp);
    }
});
