//! `vxlan::encap` of any inner frame at any offset: never panics, writes inside the
//! buffer, and what it writes decapsulates back to the same inner frame (a round trip
//! through the workers' own decap).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxdp::vxlan::{decap, encap, Decap, DecapConfig, EncapParams, OuterTemplate, Vni};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (ctl, inner) = data.split_at(4);
    let headroom = usize::from(ctl[0]);
    let udp_csum = ctl[1] & 1 != 0;
    let src_port = u16::from_be_bytes([ctl[2], ctl[3]]) | 0x8000;
    let p = EncapParams {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        src_ip: "192.0.2.2".parse().unwrap(),
        dst_ip: "192.0.2.1".parse().unwrap(),
        ttl: 64,
        tos: ctl[1] & 0xfc,
        df: true,
        dst_port: 4789,
        vni: Vni::new(42).unwrap(),
        udp_csum,
        path_mtu: 1500,
    };
    let tpl = OuterTemplate::new(&p);
    let mut buf = vec![0u8; headroom + inner.len()];
    buf[headroom..].copy_from_slice(inner);
    let Ok(out) = encap(&mut buf, headroom, inner.len(), &tpl, src_port, 7) else { return };
    assert!(out + 50 + inner.len() <= buf.len());
    let cfg =
        DecapConfig { vni: p.vni, port: 4789, local_v4: vec![p.dst_ip], local_v6: vec![], max_inner_len: usize::MAX };
    match decap(&buf[out..out + 50 + inner.len()], &cfg) {
        Decap::Deliver { inner_start, inner_len, .. } => {
            assert_eq!(&buf[out + inner_start..out + inner_start + inner_len], inner);
        }
        Decap::Drop(r) => assert!(inner.len() < 14, "encap wrote a frame decap drops ({r:?})"),
    }
});
