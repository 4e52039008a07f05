//! The rtnetlink reply parser on any bytes: message framing, attributes, error
//! messages and the reply state machine never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxdp::netlink::wire::{feed, messages, parse_error, split_fixed, Attrs};

fuzz_target!(|data: &[u8]| {
    for msg in messages(data).take(64) {
        let Ok(msg) = msg else { break };
        let _ = parse_error(&msg);
        if let Ok(attrs) = Attrs::parse(msg.payload) {
            for ty in [1u16, 2, 3, 4, 8] {
                let _ = attrs.u32(ty);
                let _ = attrs.ip(ty, 2);
                let _ = attrs.ip(ty, 10);
            }
        }
        for fixed in [8usize, 12, 16] {
            let _ = split_fixed(msg.payload, fixed);
        }
    }
    let mut interrupted = false;
    let _ = feed(data, 1, &mut interrupted, &mut |m| Attrs::parse(m.payload).map(|_| ()));
});
