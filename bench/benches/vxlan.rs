//! Encap and decap on one packet and on a batch of 64 (a worker's RX batch), with
//! the generator's real frames (64-byte and 1450-byte inner frames).
//!
//! - `encap`: what the worker does per frame: inner flow hash, source port pick, and
//!   the outer header written from the precomputed template into the headroom.
//! - `decap`: validation of every outer header and location of the inner frame.
//!
//! Report ns/packet = time per iteration / packets per iteration (criterion prints
//! element throughput). Results are recorded in `docs/BENCHMARKS.md`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::net::Ipv4Addr;
use vxdp::vxlan::{self, DecapConfig, EncapParams, OuterTemplate, SrcPortRange, Vni, OUTER_V4_LEN};
use vxdp_bench::frame::{FrameSpec, L3Hop, Outer, Stamp};

const BATCH: usize = 64;
/// Where inner frames start in a buffer (the UMEM's RX headroom).
const HEADROOM: usize = 256;

fn spec(inner_len: usize, vxlan: bool) -> FrameSpec {
    FrameSpec {
        inner: L3Hop {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: Ipv4Addr::new(198, 51, 100, 1),
            dst_ip: Ipv4Addr::new(198, 51, 100, 2),
        },
        inner_len,
        outer: vxlan.then_some(Outer {
            hop: L3Hop {
                src_mac: [2, 0, 0, 0, 1, 2],
                dst_mac: [2, 0, 0, 0, 1, 1],
                src_ip: Ipv4Addr::new(192, 0, 2, 2),
                dst_ip: Ipv4Addr::new(192, 0, 2, 1),
            },
            vni: 42,
        }),
    }
}

/// `n` buffers of 4 KiB, each with the frame of flow `i` at HEADROOM.
fn buffers(spec: &FrameSpec, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut b = vec![0u8; 4096];
            spec.write(&mut b[HEADROOM..], i as u16);
            Stamp { flow: i as u16, seq: i as u64, sent_ns: 0 }.write_at(&mut b, HEADROOM + spec.stamp_offset());
            b
        })
        .collect()
}

fn template() -> OuterTemplate {
    OuterTemplate::new(&EncapParams {
        src_mac: [2, 0, 0, 0, 1, 1],
        dst_mac: [2, 0, 0, 0, 1, 2],
        src_ip: Ipv4Addr::new(192, 0, 2, 1),
        dst_ip: Ipv4Addr::new(192, 0, 2, 2),
        ttl: 64,
        tos: 0,
        df: false,
        dst_port: 4789,
        vni: Vni::new(42).expect("VNI"),
        udp_csum: false,
        path_mtu: 1500,
    })
}

#[inline(always)]
fn encap_one(buf: &mut [u8], len: usize, tpl: &OuterTemplate, ports: &SrcPortRange, id: u16) -> usize {
    let hash = vxlan::flow_hash(&buf[HEADROOM..HEADROOM + len]);
    let port = ports.pick(hash);
    vxlan::encap(buf, HEADROOM, len, tpl, port, id).expect("encap")
}

fn bench_encap(c: &mut Criterion) {
    let tpl = template();
    let ports = SrcPortRange::KERNEL_DEFAULT;
    let mut g = c.benchmark_group("encap");
    for len in [64usize, 1450] {
        let mut bufs = buffers(&spec(len, false), BATCH);
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("one", len), &len, |b, &len| {
            let mut id = 0u16;
            b.iter(|| {
                id = id.wrapping_add(1);
                black_box(encap_one(black_box(&mut bufs[0]), len, &tpl, &ports, id))
            })
        });
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_with_input(BenchmarkId::new("batch64", len), &len, |b, &len| {
            let mut id = 0u16;
            b.iter(|| {
                for buf in bufs.iter_mut() {
                    id = id.wrapping_add(1);
                    black_box(encap_one(buf, len, &tpl, &ports, id));
                }
            })
        });
    }
    g.finish();
}

/// The decap settings both decap benchmarks use: VNI 42 to 192.0.2.1:4789.
fn decap_config() -> DecapConfig {
    DecapConfig {
        vni: Vni::new(42).expect("VNI"),
        port: 4789,
        local_v4: vec![Ipv4Addr::new(192, 0, 2, 1)],
        local_v6: vec![],
        max_inner_len: 1464,
    }
}

fn bench_decap(c: &mut Criterion) {
    let cfg = decap_config();
    let mut g = c.benchmark_group("decap");
    for len in [64usize, 1450] {
        let frame_len = len + OUTER_V4_LEN;
        let bufs = buffers(&spec(len, true), BATCH);
        let deliver = |b: &[u8]| match vxlan::decap(&b[HEADROOM..HEADROOM + frame_len], &cfg) {
            vxlan::Decap::Deliver { inner_start, .. } => inner_start,
            other => panic!("frame not delivered: {other:?}"),
        };
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("one", len), &len, |b, _| {
            b.iter(|| black_box(deliver(black_box(&bufs[0]))))
        });
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_with_input(BenchmarkId::new("batch64", len), &len, |b, _| {
            b.iter(|| {
                for buf in &bufs {
                    black_box(deliver(buf));
                }
            })
        });
    }
    g.finish();
}

/// Decap plus the worker's inner-checksum step (`complete_inner_csum`), on 1450-byte
/// inner UDP frames: `decap` alone (the worker before the step), `decap+check` with a
/// finished checksum (what every frame pays now), `decap+complete` with the field
/// holding only the pseudo-header sum, as a kernel peer with `tx` offload on sends it.
fn bench_decap_csum(c: &mut Criterion) {
    use vxdp::wire::checksum::pseudo_header_v4;
    let cfg = decap_config();
    let len = 1450usize;
    let frame_len = len + OUTER_V4_LEN;
    // The inner UDP checksum field: Ethernet 14 + IPv4 20 + 6 into the UDP header.
    let field = HEADROOM + OUTER_V4_LEN + 14 + 20 + 6;
    let pseudo = pseudo_header_v4([198, 51, 100, 1], [198, 51, 100, 2], 17, (len - 34) as u16).to_be_bytes();
    let mut g = c.benchmark_group("decap_csum");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut bufs = buffers(&spec(len, true), BATCH);
    let deliver = |b: &mut [u8]| match vxlan::decap(&b[HEADROOM..HEADROOM + frame_len], &cfg) {
        vxlan::Decap::Deliver { inner_start, inner_len, .. } => {
            let at = HEADROOM + inner_start;
            vxlan::complete_inner_csum(&mut b[at..at + inner_len])
        }
        other => panic!("frame not delivered: {other:?}"),
    };
    g.bench_function("decap", |b| {
        b.iter(|| {
            for buf in &bufs {
                black_box(matches!(
                    vxlan::decap(&buf[HEADROOM..HEADROOM + frame_len], &cfg),
                    vxlan::Decap::Deliver { .. }
                ));
            }
        })
    });
    for buf in bufs.iter_mut() {
        buf[field..field + 2].copy_from_slice(&0x1234u16.to_be_bytes());
    }
    g.bench_function("decap+check", |b| {
        b.iter(|| {
            for buf in bufs.iter_mut() {
                assert!(!black_box(deliver(buf)));
            }
        })
    });
    g.bench_function("decap+complete", |b| {
        b.iter(|| {
            for buf in bufs.iter_mut() {
                buf[field..field + 2].copy_from_slice(&pseudo);
                assert!(black_box(deliver(buf)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_encap, bench_decap, bench_decap_csum);
criterion_main!(benches);
