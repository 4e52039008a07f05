//! The outer UDP source port: a hash of the inner flow mapped into the `srcport` range,
//! the way Linux's `udp_flow_src_port` does.

use vxdp_common::flow;

/// The inner flow's hash: [`vxdp_common::flow::flow_hash`], the one the XDP express
/// path computes too, so a flow keeps its outer source port whichever path takes it.
/// Never panics.
#[inline]
pub fn flow_hash(inner: &[u8]) -> u32 {
    flow::flow_hash(inner)
}

/// The outer UDP source port range, as `ip link ... srcport MIN MAX`.
///
/// Kernel semantics (`udp_flow_src_port`, called by `vxlan_xmit_one` with
/// `cfg.port_min`/`cfg.port_max`): the port is `((hash ^ hash << 16) * (max - min)) >> 32
/// + min`, so it lies in `min..max` — **MAX is exclusive**. If `min >= max` the kernel
/// uses `ip_local_port_range` instead (default 32768 60999, again with 60999 never
/// picked). `vxlan_nl2conf` rejects `max < min` ("Invalid source port range").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrcPortRange {
    pub min: u16,
    /// Exclusive.
    pub max: u16,
}

impl SrcPortRange {
    /// `ip_local_port_range`'s default, what the kernel uses without `srcport`.
    pub const KERNEL_DEFAULT: SrcPortRange = SrcPortRange { min: 32768, max: 60999 };

    /// `None` if `max < min` (the kernel refuses it). `min == max` (including
    /// `srcport 0 0`, which iproute2 does not even send) gives the default range, as
    /// in the kernel.
    pub fn new(min: u16, max: u16) -> Option<Self> {
        if max < min {
            None
        } else if min == max {
            Some(Self::KERNEL_DEFAULT)
        } else {
            Some(SrcPortRange { min, max })
        }
    }

    /// The source port for a flow hash: `udp_flow_src_port`'s formula exactly.
    #[inline]
    pub fn pick(&self, hash: u32) -> u16 {
        let r = if self.min >= self.max { Self::KERNEL_DEFAULT } else { *self };
        flow::pick_port(hash, r.min, r.max)
    }
}

impl Default for SrcPortRange {
    fn default() -> Self {
        Self::KERNEL_DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::testutil::*;

    fn inner_tcp(src: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(INNER_SRC, INNER_DST).ipv4(src, [10, 0, 0, 2], 64).tcp(sport, dport, 1, 1000);
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn flow_hash_stable_per_flow_and_sensitive_to_ports() {
        let a = flow_hash(&inner_tcp([10, 0, 0, 1], 1000, 2000, b"hello"));
        assert_eq!(a, flow_hash(&inner_tcp([10, 0, 0, 1], 1000, 2000, b"a different payload")));
        assert_ne!(a, flow_hash(&inner_tcp([10, 0, 0, 1], 2000, 1000, b"hello")), "swapped ports");
        assert_ne!(a, flow_hash(&inner_tcp([10, 0, 0, 1], 1000, 2001, b"hello")));
        assert_ne!(a, flow_hash(&inner_tcp([10, 0, 0, 3], 1000, 2000, b"hello")));
        assert_ne!(a, flow_hash(&inner_udp(1000, 2000, 5)), "TCP and UDP differ");
        let v6 = |sport: u16| {
            let b = PacketBuilder::ethernet2(INNER_SRC, INNER_DST).ipv6(REMOTE6, LOCAL6, 64).udp(sport, 53);
            let mut v = Vec::new();
            b.write(&mut v, b"x").unwrap();
            v
        };
        assert_eq!(flow_hash(&v6(1)), flow_hash(&v6(1)));
        assert_ne!(flow_hash(&v6(1)), flow_hash(&v6(2)));
    }

    #[test]
    fn flow_hash_ignores_ports_of_fragments_and_uses_macs_for_non_ip() {
        let mut f1 = inner_udp(1000, 2000, 30);
        let mut f2 = inner_udp(3000, 4000, 30);
        for f in [&mut f1, &mut f2] {
            f[ETH + 6] = 0x20; // MF
        }
        assert_eq!(flow_hash(&f1), flow_hash(&f2));
        let arp = |src: [u8; 6]| [INNER_DST.to_vec(), src.to_vec(), vec![0x08, 0x06], vec![0; 28]].concat();
        assert_eq!(flow_hash(&arp(INNER_SRC)), flow_hash(&arp(INNER_SRC)));
        assert_ne!(flow_hash(&arp(INNER_SRC)), flow_hash(&arp([2, 0, 0, 0, 0, 9])));
    }

    /// An inner frame with one tag of either kind hashes alike: VLAN id, addresses and
    /// ports, never the Ethernet fallback.
    #[test]
    fn flow_hash_treats_8021ad_like_8021q() {
        let tagged = |tpid: u16, vid: u16, sport: u16| {
            let mut f = inner_udp(sport, 2000, 20);
            f.splice(12..12, [0, 0, (vid >> 8) as u8, vid as u8]);
            f[12..14].copy_from_slice(&tpid.to_be_bytes());
            f
        };
        let ad = tagged(0x88a8, 100, 1000);
        assert_eq!(&ad[12..18], &[0x88, 0xa8, 0x00, 0x64, 0x08, 0x00]);
        assert_eq!(flow_hash(&ad), flow_hash(&tagged(0x8100, 100, 1000)));
        assert_ne!(flow_hash(&ad), flow_hash(&tagged(0x88a8, 100, 1001)), "ports are hashed");
        assert_ne!(flow_hash(&ad), flow_hash(&tagged(0x88a8, 101, 1000)), "the VLAN id is hashed");
        assert_ne!(flow_hash(&ad), flow_hash(&tagged(0x9100, 100, 1000)), "0x9100 is not a tag vxdp parses");
    }

    #[test]
    fn flow_hash_spreads_source_ports() {
        let range = SrcPortRange::default();
        let mut buckets = [0u32; 16];
        let n = 16_000;
        for i in 0..n {
            let f = inner_tcp([10, 0, (i >> 8) as u8, i as u8], 40000 + (i % 7) as u16, 443, b"");
            let port = range.pick(flow_hash(&f));
            assert!((range.min..range.max).contains(&port));
            buckets[(port - range.min) as usize * 16 / (range.max - range.min) as usize] += 1;
        }
        for b in buckets {
            assert!((n / 16 * 8 / 10..n / 16 * 12 / 10).contains(&b), "{buckets:?}");
        }
    }

    /// `udp_flow_src_port` transcribed from include/net/udp.h, with C integer types.
    fn kernel_udp_flow_src_port(hash: u32, mut min: i32, mut max: i32) -> u16 {
        if min >= max {
            (min, max) = (32768, 60999);
        }
        let mut hash = hash;
        hash ^= hash << 16;
        ((((hash as u64) * ((max - min) as u64)) >> 32) as u32 as i32 + min) as u16
    }

    #[test]
    fn src_port_range_mirrors_kernel() {
        assert_eq!(SrcPortRange::new(5000, 4999), None);
        assert_eq!(SrcPortRange::new(7000, 7000), Some(SrcPortRange::default()));
        assert_eq!(SrcPortRange::new(0, 0), Some(SrcPortRange { min: 32768, max: 60999 }));
        let d = SrcPortRange::default();
        assert_eq!(d.pick(0), 32768);
        assert_eq!(d.pick(0x8000_0000), 32768 + 28231 / 2);
        assert_eq!(d.pick(0xffff_0000), 60998, "max is exclusive");
        let mut rng = Rng(12345);
        for (min, max) in [(32768u16, 60999u16), (49152, 65535), (0, 1), (4789, 4790), (1, 65535), (10, 3)] {
            let r = SrcPortRange { min, max };
            for _ in 0..10_000 {
                let h = rng.next() as u32;
                let p = r.pick(h);
                assert_eq!(p, kernel_udp_flow_src_port(h, min as i32, max as i32));
                if min < max {
                    assert!(p >= min && p < max, "{p} not in {min}..{max}");
                }
            }
        }
        assert_eq!(SrcPortRange::new(4789, 4790).unwrap().pick(0xdead_beef), 4789);
    }
}
