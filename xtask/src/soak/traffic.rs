//! The soak's traffic: one paced UDP sender and one receiver per overlay direction
//! (container A → container B and back), and the stream of malformed VXLAN frames to
//! vxdp's UDP/4789, sent from host B's underlay on a raw socket.
//!
//! Every datagram carries a tag, its direction and a sequence number; a receiver counts
//! each sequence number once (a second copy is a duplicate, counted apart). Senders
//! count what the kernel took (`send_to` returned the length); a refused send is an
//! error, not a sent frame. Every loop here ends when the soak's stop flag is set.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use vxdp_tests::raw::{vxlan_frame, RawSocket};

/// First bytes of every soak datagram.
const TAG: [u8; 4] = *b"VXSK";
/// Datagram payload sizes, cycled by sequence number (the inner frame is at most the
/// overlay MTU: 1450 − 28 bytes of IPv4 and UDP).
const SIZES: [usize; 4] = [64, 256, 576, 1400];
/// [`Sender::rate`] for "as fast as the sender can" (the capacity probe).
pub const BLAST: u64 = u64::MAX;
/// One malformed frame for this many legit frames of the B → A sender (both
/// directions at the same rate: 1 % of the total).
pub const MALFORMED_EVERY: u64 = 50;
/// The kinds of malformed frame, cycled; each must be dropped by vxdp and counted
/// under one of [`MALFORMED_REASONS`].
pub const MALFORMED_KINDS: [&str; 7] = [
    "vxlan header cut to 4 bytes",
    "inner frame of 8 bytes",
    "flags without the I bit",
    "reserved flag bits set",
    "UDP length 100 bytes too long",
    "UDP length shorter than the VXLAN header",
    "IPv4 total length 100 bytes too long",
];
/// The drop reasons malformed frames land in (and legit frames never do).
pub const MALFORMED_REASONS: [&str; 5] =
    ["drop_truncated", "drop_bad_header", "drop_bad_flags", "drop_not_vxlan", "drop_wrong_vni"];

/// The counters of one paced sender, shared with the orchestrator.
#[derive(Default)]
pub struct Sender {
    /// Frames per second (0: paused; [`BLAST`]: unpaced).
    pub rate: AtomicU64,
    /// Set by the sender while it is paused and has nothing in hand.
    pub idle: AtomicBool,
    pub sent: AtomicU64,
    pub errors: AtomicU64,
    /// Malformed frames sent (B → A sender only).
    pub malformed: AtomicU64,
    pub malformed_errors: AtomicU64,
}

/// The counters of one receiver.
#[derive(Default)]
pub struct Receiver {
    /// Distinct soak datagrams of this direction.
    pub delivered: AtomicU64,
    /// Second copies of a sequence number already received.
    pub duplicates: AtomicU64,
    /// Datagrams that are not this direction's soak frames.
    pub foreign: AtomicU64,
}

/// The malformed stream's socket and the frames it cycles through.
pub struct Malformed {
    pub sock: RawSocket,
    pub frames: Vec<Vec<u8>>,
}

/// One direction's sending side.
pub struct Flow {
    pub dir: u8,
    pub sock: UdpSocket,
    pub dst: SocketAddr,
    pub malformed: Option<Malformed>,
}

/// Raises a socket buffer past `rmem_max`/`wmem_max` (root: `SO_*BUFFORCE`), so a
/// burst is not lost in the receiver's socket before anything else sees it. The
/// namespace's own limits are left alone.
pub fn force_buffer(sock: &UdpSocket, bytes: i32, recv: bool) {
    let opt = if recv { libc::SO_RCVBUFFORCE } else { libc::SO_SNDBUFFORCE };
    // SAFETY: a valid socket fd and a pointer to an i32 of the size passed.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as u32,
        )
    };
    if r != 0 {
        eprintln!("soak: SO_{}BUFFORCE: {}", if recv { "RCV" } else { "SND" }, io::Error::last_os_error());
    }
}

fn payload(buf: &mut [u8; 1500], dir: u8, seq: u64) -> usize {
    let len = SIZES[(seq % SIZES.len() as u64) as usize];
    buf[..4].copy_from_slice(&TAG);
    buf[4] = dir;
    buf[8..16].copy_from_slice(&seq.to_be_bytes());
    len
}

/// Sends `flow`'s datagrams at `ctl.rate` until `stop`; numbers them from 0.
pub fn send(flow: Flow, ctl: &Sender, stop: &AtomicBool) {
    let mut buf = [0u8; 1500];
    let mut seq = 0u64;
    let mut mal_i = 0usize;
    let mut since_mal = 0u64;
    // Pacing: frames due since `phase` began at `phase_rate`.
    let (mut phase, mut phase_rate, mut phase_sent) = (Instant::now(), 0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let rate = ctl.rate.load(Ordering::Relaxed);
        if rate != phase_rate {
            (phase, phase_rate, phase_sent) = (Instant::now(), rate, 0);
        }
        if rate == 0 {
            ctl.idle.store(true, Ordering::Release);
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        ctl.idle.store(false, Ordering::Release);
        let due = if rate == BLAST {
            phase_sent + 64
        } else {
            (rate as u128 * phase.elapsed().as_nanos() / 1_000_000_000) as u64
        };
        if due <= phase_sent {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        // At most 256 in one go: a late wake-up does not turn into one long burst.
        let burst = (due - phase_sent).min(256);
        for _ in 0..burst {
            let len = payload(&mut buf, flow.dir, seq);
            match flow.sock.send_to(&buf[..len], flow.dst) {
                Ok(n) if n == len => {
                    ctl.sent.fetch_add(1, Ordering::Relaxed);
                    seq += 1;
                }
                _ => {
                    ctl.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            phase_sent += 1;
            if let Some(m) = &flow.malformed {
                since_mal += 1;
                if since_mal >= MALFORMED_EVERY {
                    since_mal = 0;
                    let f = &m.frames[mal_i % m.frames.len()];
                    mal_i += 1;
                    match m.sock.try_send(f) {
                        Ok(()) => ctl.malformed.fetch_add(1, Ordering::Relaxed),
                        Err(_) => ctl.malformed_errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        }
    }
}

/// Counts `dir`'s datagrams arriving on `sock` until `stop`.
pub fn receive(sock: UdpSocket, dir: u8, ctl: &Receiver, stop: &AtomicBool) {
    sock.set_read_timeout(Some(Duration::from_millis(50))).expect("read timeout");
    let mut seen: Vec<u64> = Vec::new();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok(n) = sock.recv(&mut buf) else { continue };
        if n < 16 || buf[..4] != TAG || buf[4] != dir {
            ctl.foreign.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let seq = u64::from_be_bytes(buf[8..16].try_into().expect("8 bytes"));
        // A sender at 1 Mpps for a day stays below this; anything above is not ours.
        if seq >= 1 << 37 {
            ctl.foreign.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= seen.len() {
            seen.resize((word + 1).next_power_of_two(), 0);
        }
        if seen[word] & (1 << bit) != 0 {
            ctl.duplicates.fetch_add(1, Ordering::Relaxed);
        } else {
            seen[word] |= 1 << bit;
            ctl.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn fix_ipv4_checksum(f: &mut [u8]) {
    let ip = &mut f[14..34];
    ip[10] = 0;
    ip[11] = 0;
    let mut sum: u32 = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// Sets the IPv4 total and UDP lengths from the frame's real length.
fn fix_lengths(f: &mut [u8]) {
    let total = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[38..40].copy_from_slice(&(total - 20).to_be_bytes());
    fix_ipv4_checksum(f);
}

/// One frame of each of [`MALFORMED_KINDS`], VXLAN from `src` to `dst` (vxdp's VTEP)
/// for `vni`, with a correct IPv4 checksum: the XDP program steers every one to the
/// workers, which must drop it and count it.
pub fn malformed_frames(dst_mac: [u8; 6], src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, vni: u32) -> Vec<Vec<u8>> {
    // A unicast inner frame to a MAC nobody has, 60 bytes.
    let mut inner = vec![0u8; 60];
    inner[..6].copy_from_slice(&[0x02, 0x5a, 0, 0, 0, 0x01]);
    inner[6..12].copy_from_slice(&[0x02, 0x5a, 0, 0, 0, 0x02]);
    inner[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    let good = vxlan_frame(dst_mac, src_mac, src, dst, vni, &inner);
    const VXLAN: usize = 14 + 20 + 8;
    let mut out = Vec::new();
    // The VXLAN header cut to 4 bytes.
    let mut f = good[..VXLAN + 4].to_vec();
    fix_lengths(&mut f);
    out.push(f);
    // An inner frame shorter than an Ethernet header.
    let mut f = good[..VXLAN + 8 + 8].to_vec();
    fix_lengths(&mut f);
    out.push(f);
    // No I flag.
    let mut f = good.clone();
    f[VXLAN] = 0;
    out.push(f);
    // Reserved flag bits.
    let mut f = good.clone();
    f[VXLAN] = 0x08 | 0x80;
    out.push(f);
    // UDP length longer than the datagram.
    let mut f = good.clone();
    let udp = u16::from_be_bytes([f[38], f[39]]) + 100;
    f[38..40].copy_from_slice(&udp.to_be_bytes());
    out.push(f);
    // UDP length shorter than UDP + VXLAN headers.
    let mut f = good.clone();
    f[38..40].copy_from_slice(&12u16.to_be_bytes());
    out.push(f);
    // IPv4 total length longer than the frame.
    let mut f = good;
    let total = u16::from_be_bytes([f[16], f[17]]) + 100;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ipv4_checksum(&mut f);
    out.push(f);
    assert_eq!(out.len(), MALFORMED_KINDS.len());
    out
}
