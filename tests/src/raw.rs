//! Crafted frames on raw `AF_PACKET` sockets, for the hostile-input scenarios: VXLAN
//! with any outer source a test wants to spoof (one the sender does not own, or the
//! receiver's own), sent from inside a test namespace, and a counter of the frames of
//! one EtherType that arrive on an interface (did the inner frame get delivered?).

use crate::netns::{in_netns, Netns};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The local experimental EtherType the crafted inner frames carry.
pub const TEST_ETHERTYPE: u16 = 0x88b5;

/// A MAC from `aa:bb:cc:dd:ee:ff`.
pub fn mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s.split(':').map(|b| u8::from_str_radix(b, 16).expect("hex MAC byte")).collect();
    v.try_into().unwrap_or_else(|_| panic!("{s} is not a MAC"))
}

/// A broadcast inner frame from `src` with [`TEST_ETHERTYPE`], 60 bytes.
pub fn inner_broadcast(src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f[14..24].copy_from_slice(b"vxdp-probe");
    f
}

/// An Ethernet + IPv4 + UDP (port 4789, zero checksum) + VXLAN (I flag, `vni`) frame
/// around `inner`, with a correct IPv4 header checksum.
pub fn vxlan_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    vni: u32,
    inner: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + 8 + inner.len();
    let total = 20 + udp_len;
    let mut f = Vec::with_capacity(14 + total);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let mut sum: u32 = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&4789u16.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    let v = vni.to_be_bytes();
    f.extend_from_slice(&[0x08, 0, 0, 0, v[1], v[2], v[3], 0]);
    f.extend_from_slice(inner);
    f
}

/// A raw socket bound to one interface of a namespace.
pub struct RawSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl RawSocket {
    /// A socket on `ifname` in `ns` that receives frames of `ethertype` (0: none, a
    /// socket to send with).
    pub fn open(ns: &Netns, ifname: &str, ethertype: u16) -> RawSocket {
        let name = std::ffi::CString::new(ifname).expect("interface name");
        in_netns(ns, || {
            // SAFETY: plain syscalls with valid arguments; the fd is owned below.
            let fd = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                    i32::from(ethertype.to_be()),
                )
            };
            assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            // SAFETY: `fd` is a new socket nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: `name` is NUL-terminated and outlives the call.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
            assert!(ifindex > 0, "no interface {ifname} in {}", ns.name());
            let sll = sockaddr(ifindex, ethertype);
            // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
            let r = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(r, 0, "binding to {ifname}: {}", std::io::Error::last_os_error());
            RawSocket { fd, ifindex }
        })
    }

    /// Sends `frame` as it is, `n` times.
    pub fn send(&self, frame: &[u8], n: usize) {
        for _ in 0..n {
            self.try_send(frame).unwrap_or_else(|e| panic!("sendto: {e}"));
        }
    }

    /// Sends `frame` once, returning the error instead of panicking (a full device
    /// queue, for a sender that keeps going).
    pub fn try_send(&self, frame: &[u8]) -> std::io::Result<()> {
        let sll = sockaddr(self.ifindex, 0);
        // SAFETY: `frame` and `sll` are valid for the call's lengths.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r == frame.len() as isize {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Frames received (of the socket's EtherType, `filter` true) until `quiet` passes
    /// without one, or `limit` in all; what was queued before counts too.
    pub fn count(&self, filter: impl Fn(&[u8]) -> bool, quiet: Duration, limit: Duration) -> u64 {
        let start = Instant::now();
        let mut last = Instant::now();
        let mut n = 0;
        let mut buf = [0u8; 2048];
        while last.elapsed() < quiet && start.elapsed() < limit {
            // SAFETY: `buf` is valid for its length.
            let r = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if r > 0 {
                // Outgoing copies are seen too on a packet socket; only count arrivals.
                if filter(&buf[..r as usize]) {
                    n += 1;
                }
                last = Instant::now();
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        n
    }
}

fn sockaddr(ifindex: i32, ethertype: u16) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ethertype.to_be();
    sll.sll_ifindex = ifindex;
    sll.sll_halen = 6;
    sll
}
