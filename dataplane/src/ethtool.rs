//! [`disable_offloads`]: TX checksum offload and every TX segmentation offload (TSO,
//! GSO, USO, tunnel GSO) off, through the ethtool ioctl; [`enable_gro`]: GRO on, which
//! gives a veth the NAPI instance an XDP redirect into its peer needs.
//!
//! Features are chosen by name from the kernel's ETH_SS_FEATURES string set and changed
//! with ETHTOOL_SFEATURES. The legacy per-feature commands are not enough: ETHTOOL_STSO
//! covers only the kernel's NETIF_F_ALL_TSO mask, which (on 6.18) leaves for example
//! `tx-tcp-accecn-segmentation` and `tx-udp-segmentation` on.

use crate::netlink::NetlinkError;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETHTOOL_SFEATURES: u32 = 0x3b;
const ETH_SS_FEATURES: u32 = 4;
const ETH_SS_STATS: u32 = 1;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETH_GSTRING_LEN: usize = 32;
/// Upper bound on feature names, so a bogus count cannot make us allocate without limit.
const MAX_FEATURES: usize = 1024;

/// `struct ifreq` with the `ifr_data` member of its union (40 bytes on 64-bit).
#[repr(C)]
struct IfReqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 24 - std::mem::size_of::<*mut libc::c_void>()],
}

/// Whether a feature (by its ethtool name) must be off on the overlay veth.
pub(crate) fn must_disable(name: &str) -> bool {
    name.starts_with("tx-checksum")
        || name.starts_with("tx-gso")
        || (name.starts_with("tx-") && name.ends_with("-segmentation"))
}

/// Disables TX checksum offload, TSO and GSO (all TX segmentation offloads) on a link,
/// so the stack hands that device complete checksums and MTU-sized frames. Needed on
/// vxdp's overlay veth end, whose frames go to AF_XDP with no checksum metadata.
/// Works in the calling thread's network namespace.
pub fn disable_offloads(name: &str) -> Result<(), NetlinkError> {
    set_features(name, must_disable, false)?;
    log::info!("disabled tx checksum and segmentation offloads on {name}");
    Ok(())
}

/// Turns GRO on. On a veth this also gives the device a NAPI instance, without which
/// frames an XDP program redirects into its peer are dropped (`veth_xdp_xmit`).
pub fn enable_gro(name: &str) -> Result<(), NetlinkError> {
    set_features(name, |n| n == "rx-gro", true)?;
    log::info!("enabled GRO on {name}");
    Ok(())
}

/// Frames the device has sent that an XDP program redirected to it (`ndo_xdp_xmit`),
/// summed over its queues: the `tx_queue_N_xdp_xmit` statistics a veth reports.
/// `None` when the device reports no such statistic (not a veth).
pub fn xdp_xmit_frames(name: &str) -> Result<Option<u64>, NetlinkError> {
    let (sock, err) = open(name)?;
    let names = string_set(&sock, name, ETH_SS_STATS).map_err(|e| err("reading the statistics names", e))?;
    let picked: Vec<usize> = (0..names.len()).filter(|i| is_xdp_xmit(&names[*i])).collect();
    if picked.is_empty() {
        return Ok(None);
    }
    // struct ethtool_stats { u32 cmd; u32 n_stats; u64 data[n_stats]; }
    let mut get = u32s(&[ETHTOOL_GSTATS, names.len() as u32]);
    get.resize(8 + names.len() * 8, 0);
    ethtool(&sock, name, &mut get).map_err(|e| err("reading the statistics", e))?;
    let at = |i: usize| u64::from_ne_bytes(get[8 + i * 8..16 + i * 8].try_into().expect("8 bytes"));
    Ok(Some(picked.into_iter().map(at).sum()))
}

/// `tx_queue_<N>_xdp_xmit`, not its `_errors` sibling.
fn is_xdp_xmit(stat: &str) -> bool {
    stat.strip_prefix("tx_queue_")
        .and_then(|s| s.strip_suffix("_xdp_xmit"))
        .is_some_and(|q| !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()))
}

type ErrFn = Box<dyn Fn(&str, io::Error) -> NetlinkError>;

/// An ethtool socket, and the error mapping that names the interface.
fn open(name: &str) -> Result<(OwnedFd, ErrFn), NetlinkError> {
    let what = format!("interface {name:?}");
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.as_bytes().contains(&0) {
        return Err(NetlinkError::Invalid { what, reason: "not a valid interface name".into() });
    }
    let err: ErrFn = Box::new(move |op: &str, source: io::Error| {
        if source.raw_os_error() == Some(libc::ENODEV) {
            NetlinkError::NotFound { what: what.clone() }
        } else {
            NetlinkError::Io { op: format!("{op} of {what}"), source }
        }
    });
    // SAFETY: plain socket(2) call with constant arguments; the result is checked.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(err("opening an ethtool socket", io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(raw) }, err))
}

/// Sets every feature `pick` names to `on`, and checks that it took.
fn set_features(name: &str, pick: impl Fn(&str) -> bool, on: bool) -> Result<(), NetlinkError> {
    let what = format!("interface {name:?}");
    let (sock, err) = open(name)?;
    let names = string_set(&sock, name, ETH_SS_FEATURES).map_err(|e| err("reading the feature names", e))?;
    let words = names.len().div_ceil(32);
    let mut mask = vec![0u32; words];
    for (i, n) in names.iter().enumerate() {
        if pick(n) {
            mask[i / 32] |= 1 << (i % 32);
        }
    }

    // struct ethtool_sfeatures { u32 cmd; u32 size; { u32 valid; u32 requested; }[size] }
    let mut set = u32s(&[ETHTOOL_SFEATURES, words as u32]);
    for w in &mask {
        set.extend(u32s(&[*w, if on { *w } else { 0 }]));
    }
    // A positive result only flags that some bits are fixed (checked below).
    let verb = if on { "enable" } else { "disable" };
    ethtool(&sock, name, &mut set).map_err(|e| err(&format!("{verb} features"), e))?;

    let active = features(&sock, name, words).map_err(|e| err("reading the features", e))?;
    let wrong: Vec<&str> = (0..names.len())
        .filter(|i| mask[i / 32] & (1 << (i % 32)) != 0 && (active[i / 32] & (1 << (i % 32)) != 0) != on)
        .map(|i| names[i].as_str())
        .collect();
    if !wrong.is_empty() {
        return Err(NetlinkError::Invalid { what, reason: format!("cannot {verb} {}", wrong.join(", ")) });
    }
    Ok(())
}

/// The names of string set `set` (features, statistics), in index order.
fn string_set(sock: &OwnedFd, dev: &str, set: u32) -> io::Result<Vec<String>> {
    // struct ethtool_sset_info { u32 cmd; u32 reserved; u64 sset_mask; u32 data[]; }
    let mut info = u32s(&[ETHTOOL_GSSET_INFO, 0]);
    info.extend((1u64 << set).to_ne_bytes());
    info.extend(u32s(&[0]));
    ethtool(sock, dev, &mut info)?;
    let count = u32_at(&info, 16) as usize;
    if count == 0 || count > MAX_FEATURES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("implausible feature count {count}")));
    }
    // struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[len * 32]; }
    let mut strings = u32s(&[ETHTOOL_GSTRINGS, set, count as u32]);
    strings.resize(12 + count * ETH_GSTRING_LEN, 0);
    ethtool(sock, dev, &mut strings)?;
    Ok(strings[12..]
        .chunks(ETH_GSTRING_LEN)
        .map(|c| String::from_utf8_lossy(&c[..c.iter().position(|&b| b == 0).unwrap_or(c.len())]).into_owned())
        .collect())
}

/// The active feature bits.
fn features(sock: &OwnedFd, dev: &str, words: usize) -> io::Result<Vec<u32>> {
    // struct ethtool_gfeatures { u32 cmd; u32 size; { available, requested, active, never_changed }[size] }
    let mut get = u32s(&[ETHTOOL_GFEATURES, words as u32]);
    get.resize(8 + words * 16, 0);
    ethtool(sock, dev, &mut get)?;
    Ok((0..words).map(|w| u32_at(&get, 8 + w * 16 + 8)).collect())
}

/// One SIOCETHTOOL call with `buf` as the command structure, read and written in place.
fn ethtool(sock: &OwnedFd, dev: &str, buf: &mut [u8]) -> io::Result<libc::c_int> {
    let mut ifr = IfReqData {
        name: [0; libc::IFNAMSIZ],
        data: buf.as_mut_ptr().cast(),
        _pad: [0; 24 - std::mem::size_of::<*mut libc::c_void>()],
    };
    for (d, s) in ifr.name.iter_mut().zip(dev.bytes().take(libc::IFNAMSIZ - 1)) {
        *d = s as libc::c_char;
    }
    // SAFETY: `ifr` is a properly laid out ifreq with a NUL-terminated name whose data
    // pointer refers to `buf`; both outlive the call. Each command's buffer is built
    // with the size its header announces (string count, feature words), so the kernel
    // reads and writes only within `buf`.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut ifr as *mut IfReqData) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[cfg(test)]
mod tests {
    use super::{is_xdp_xmit, must_disable};

    #[test]
    fn xdp_xmit_statistics_are_picked_by_name() {
        for yes in ["tx_queue_0_xdp_xmit", "tx_queue_17_xdp_xmit"] {
            assert!(is_xdp_xmit(yes), "{yes}");
        }
        for no in ["tx_queue_0_xdp_xmit_errors", "rx_queue_0_xdp_redirect", "tx_queue__xdp_xmit", "xdp_xmit"] {
            assert!(!is_xdp_xmit(no), "{no}");
        }
    }

    #[test]
    fn offload_features_to_disable_are_chosen_by_name() {
        for on in [
            "tx-checksum-ipv4",
            "tx-checksum-ip-generic",
            "tx-checksum-sctp",
            "tx-tcp-segmentation",
            "tx-tcp-accecn-segmentation",
            "tx-udp-segmentation",
            "tx-generic-segmentation",
            "tx-udp_tnl-csum-segmentation",
            "tx-gso-list",
            "tx-gso-partial",
        ] {
            assert!(must_disable(on), "{on}");
        }
        for keep in ["tx-scatter-gather", "rx-checksum", "rx-gro", "tx-vlan-hw-insert", "highdma", "tx-lockless"] {
            assert!(!must_disable(keep), "{keep}");
        }
    }
}
