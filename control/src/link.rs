//! `vxdp link show [-d]`: the overlay device and its settings, printed the way
//! `ip [-d] link show` prints a kernel vxlan device.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::IpAddr;

/// The overlay device's settings, as the daemon runs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub name: String,
    pub ifindex: u32,
    pub mtu: u32,
    /// The overlay device's MAC, `aa:bb:cc:dd:ee:ff`.
    pub address: String,
    pub vni: u32,
    /// `--group`: the multicast group of the flood list (absent from older daemons'
    /// answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IpAddr>,
    pub local: IpAddr,
    /// The underlay device (`--dev`).
    pub dev: String,
    /// Outer UDP source ports, `min..max` (max exclusive, as the kernel's `srcport`).
    pub srcport: (u16, u16),
    pub dstport: u16,
    pub learning: bool,
    pub proxy: bool,
    /// `--ttl`, `--tos`, `--df` as given: `auto`/`N`/`inherit`, `0xNN`/`inherit`,
    /// `unset`/`set`/`inherit`.
    pub ttl: String,
    pub tos: String,
    pub df: String,
    pub ageing_secs: u64,
    pub udpcsum: bool,
    /// vxdp's own: `--datapath`, `--layout`, `--workers`, the remotes in the flood list.
    pub datapath: String,
    pub layout: String,
    pub workers: u32,
}

/// `ip link show`'s two lines, and with `details` the `vxlan` line of `ip -d link
/// show` (its keywords, values and order, so a script reading either finds the same
/// fields) followed by a `vxdp` line with vxdp's own settings:
///
/// ```text
/// 7: vx0: mtu 1450
///     link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff
///     vxlan id 42 local 192.0.2.1 dev eth0 srcport 32768 60999 dstport 4789 ttl auto ageing 300 noudpcsum
///     vxdp datapath auto layout bridge workers 1
/// ```
///
/// As in iproute2: `nolearning` and `proxy` appear only when they differ from the
/// default, `tos` only when not 0, `df` only when not `unset`.
pub fn fmt_link_show(l: &LinkInfo, details: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}: mtu {}", l.ifindex, l.name, l.mtu);
    let _ = writeln!(out, "    link/ether {} brd ff:ff:ff:ff:ff:ff", l.address);
    if !details {
        return out;
    }
    let _ = write!(out, "    vxlan id {}", l.vni);
    if let Some(g) = l.group {
        let _ = write!(out, " group {g}");
    }
    let _ =
        write!(out, " local {} dev {} srcport {} {} dstport {}", l.local, l.dev, l.srcport.0, l.srcport.1, l.dstport);
    if !l.learning {
        out.push_str(" nolearning");
    }
    if l.proxy {
        out.push_str(" proxy");
    }
    if l.tos != "0x00" && l.tos != "0" {
        let _ = write!(out, " tos {}", l.tos);
    }
    let _ = write!(out, " ttl {}", l.ttl);
    if l.df != "unset" {
        let _ = write!(out, " df {}", l.df);
    }
    let _ = writeln!(out, " ageing {} {}", l.ageing_secs, if l.udpcsum { "udpcsum" } else { "noudpcsum" });
    let _ = writeln!(out, "    vxdp datapath {} layout {} workers {}", l.datapath, l.layout, l.workers);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> LinkInfo {
        LinkInfo {
            name: "vx0".into(),
            ifindex: 7,
            mtu: 1450,
            address: "02:00:00:00:00:01".into(),
            vni: 42,
            group: None,
            local: "192.0.2.1".parse().unwrap(),
            dev: "eth0".into(),
            srcport: (32768, 60999),
            dstport: 4789,
            learning: true,
            proxy: false,
            ttl: "auto".into(),
            tos: "0x00".into(),
            df: "unset".into(),
            ageing_secs: 300,
            udpcsum: false,
            datapath: "auto".into(),
            layout: "bridge".into(),
            workers: 1,
        }
    }

    #[test]
    fn prints_like_ip_link_show() {
        let l = info();
        assert_eq!(
            fmt_link_show(&l, false),
            "7: vx0: mtu 1450\n    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff\n"
        );
        let d = fmt_link_show(&l, true);
        assert!(
            d.contains(
                "\n    vxlan id 42 local 192.0.2.1 dev eth0 srcport 32768 60999 dstport 4789 ttl auto ageing 300 \
                 noudpcsum\n    vxdp datapath auto layout bridge workers 1\n"
            ),
            "{d}"
        );
        let k = LinkInfo {
            learning: false,
            proxy: true,
            ttl: "inherit".into(),
            tos: "inherit".into(),
            df: "set".into(),
            udpcsum: true,
            group: Some("239.1.1.1".parse().unwrap()),
            ..l
        };
        assert!(fmt_link_show(&k, true).contains("vxlan id 42 group 239.1.1.1 local 192.0.2.1 dev eth0 "));
        assert!(
            fmt_link_show(&k, true)
                .contains("dstport 4789 nolearning proxy tos inherit ttl inherit df set ageing 300 udpcsum\n"),
            "{}",
            fmt_link_show(&k, true)
        );
    }
}
