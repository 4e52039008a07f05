//! The internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Partial sums are `u16` ones'-complement sums of big-endian 16-bit words, not yet
//! complemented; [`finish`] turns one into the value stored in a header. Sums of
//! pieces combine with [`combine`] as long as every piece but the last has even length
//! (all the headers vxdp sums do).

/// Folds a wide accumulator of 16-bit (or 32-bit) words into a 16-bit ones'-complement sum.
#[inline(always)]
pub const fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Ones'-complement sum of `data` as big-endian 16-bit words, an odd last byte padded
/// with zero.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    // Sum native-endian 32-bit words into a 64-bit accumulator (cannot overflow below
    // 2^32 words), then fold. The ones'-complement sum is byte-order independent
    // (RFC 1071 §2(B)), so the native result only needs a byte swap to big-endian.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 4];
        last[..rest.len()].copy_from_slice(rest);
        acc += u32::from_ne_bytes(last) as u64;
    }
    u16::from_be(fold(acc))
}

/// Ones'-complement sum of two partial sums.
#[inline(always)]
pub const fn combine(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The value stored in a checksum field for a partial sum.
#[inline(always)]
pub const fn finish(sum: u16) -> u16 {
    !sum
}

/// Whether `data` (a header including its checksum field) sums to all ones.
#[inline]
pub fn verify(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

/// Partial sum of the IPv4 pseudo-header (RFC 768) for an upper-layer packet.
#[inline]
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, len: u16) -> u16 {
    let mut acc = 0u64;
    acc += u16::from_be_bytes([src[0], src[1]]) as u64;
    acc += u16::from_be_bytes([src[2], src[3]]) as u64;
    acc += u16::from_be_bytes([dst[0], dst[1]]) as u64;
    acc += u16::from_be_bytes([dst[2], dst[3]]) as u64;
    acc += protocol as u64;
    acc += len as u64;
    fold(acc)
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1).
#[inline]
pub fn pseudo_header_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, len: u32) -> u16 {
    let s = combine(sum(src), sum(dst));
    let acc = s as u64 + (len >> 16) as u64 + (len & 0xffff) as u64 + next_header as u64;
    fold(acc)
}

/// RFC 1624 eqn. 3: the new checksum field after a 16-bit word covered by `check`
/// changed from `old` to `new`: HC' = ~(~HC + ~m + m').
#[inline(always)]
pub const fn update(check: u16, old: u16, new: u16) -> u16 {
    !combine(combine(!check, !old), new)
}

/// [`update`] for a 32-bit field (two adjacent 16-bit words), e.g. an IPv4 address.
#[inline(always)]
pub const fn update32(check: u16, old: u32, new: u32) -> u16 {
    let c = update(check, (old >> 16) as u16, (new >> 16) as u16);
    update(c, old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte-at-a-time reference implementation (RFC 1071 §4.1).
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let w = if pair.len() == 2 { u16::from_be_bytes([pair[0], pair[1]]) } else { (pair[0] as u16) << 8 };
            acc += w as u32;
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn sum_matches_reference_for_all_lengths() {
        let data: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(151) ^ 0xa5) as u8).collect();
        for n in 0..data.len() {
            assert_eq!(sum(&data[..n]), reference(&data[..n]), "len {n}");
        }
        assert_eq!(sum(&[0xff; 64]), 0xffff);
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        assert_eq!(sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A real IPv4 header (Wikipedia's example): checksum b861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert!(verify(&hdr));
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(finish(sum(&zeroed)), 0xb861);
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        for (old, new) in [(0x4011u16, 0x3f11u16), (0x3f11, 0x0011), (0x0011, 0xff11)] {
            let check = u16::from_be_bytes([hdr[10], hdr[11]]);
            hdr[8..10].copy_from_slice(&new.to_be_bytes());
            let updated = update(check, old, new);
            hdr[10..12].copy_from_slice(&[0, 0]);
            assert_eq!(updated, finish(sum(&hdr)));
            hdr[10..12].copy_from_slice(&updated.to_be_bytes());
        }
        let check = u16::from_be_bytes([hdr[10], hdr[11]]);
        let updated = update32(check, 0xc0a8_00c7, 0x0a00_0002);
        hdr[16..20].copy_from_slice(&[10, 0, 0, 2]);
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(updated, finish(sum(&hdr)));
    }

    #[test]
    fn combine_of_pieces_equals_whole() {
        let data: Vec<u8> = (0..101u8).collect();
        for split in (0..100).step_by(2) {
            assert_eq!(combine(sum(&data[..split]), sum(&data[split..])), sum(&data));
        }
    }
}
