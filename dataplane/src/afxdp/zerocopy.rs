//! `--zerocopy auto|on|off`: how the underlay socket binds.
#![forbid(unsafe_code)]
//!
//! Each worker registers its UMEM's memory twice: once on the underlay socket and once
//! on the overlay socket, each a UMEM of its own in the kernel with its own fill and
//! completion rings (the way the AF_XDP maintainers suggest to mix modes). The overlay
//! socket is on a veth, which has no zero-copy mode, so it binds copy mode; the
//! underlay socket binds as `--zerocopy` says, and a frame still crosses from one
//! socket to the other by address, with no userspace copy.

use super::xsk::BindMode;
use std::fmt;
use std::str::FromStr;

/// `--zerocopy`: the underlay socket's bind mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Zero-copy where the NIC's driver supports it, copy mode elsewhere (the kernel's
    /// own choice, made at bind).
    #[default]
    Auto,
    /// Zero-copy or fail: `vxdp run` stops with an error naming the device.
    On,
    /// Copy mode.
    Off,
}

impl ZeroCopy {
    /// The underlay socket's [`BindMode`].
    pub fn underlay_bind(self) -> BindMode {
        match self {
            ZeroCopy::Auto => BindMode::Auto,
            ZeroCopy::On => BindMode::ZeroCopy,
            ZeroCopy::Off => BindMode::Copy,
        }
    }

    /// The error `vxdp run` reports when the underlay socket of `dev` queue `queue`
    /// could not bind as asked.
    pub fn bind_error(self, dev: &str, queue: u32, e: &std::io::Error) -> String {
        match (self, e.raw_os_error()) {
            (ZeroCopy::On, Some(libc::EOPNOTSUPP)) => format!(
                "--zerocopy on: {dev} queue {queue} cannot bind AF_XDP in zero-copy mode: its driver has no \
                 zero-copy support ({e}); use --zerocopy auto or off"
            ),
            (ZeroCopy::On, _) => format!("--zerocopy on: {dev} queue {queue}: zero-copy AF_XDP bind failed: {e}"),
            _ => format!("AF_XDP socket on {dev} queue {queue}: {e}"),
        }
    }
}

impl FromStr for ZeroCopy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ZeroCopy::Auto),
            "on" => Ok(ZeroCopy::On),
            "off" => Ok(ZeroCopy::Off),
            _ => Err(format!("'{s}' is not a zero-copy setting (auto, on or off)")),
        }
    }
}

impl fmt::Display for ZeroCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ZeroCopy::Auto => "auto",
            ZeroCopy::On => "on",
            ZeroCopy::Off => "off",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_setting() {
        for z in [ZeroCopy::Auto, ZeroCopy::On, ZeroCopy::Off] {
            assert_eq!(z.to_string().parse::<ZeroCopy>(), Ok(z));
        }
        assert_eq!(ZeroCopy::default(), ZeroCopy::Auto);
        let e = "yes".parse::<ZeroCopy>().unwrap_err();
        assert!(e.contains("'yes'") && e.contains("auto, on or off"), "{e}");
    }

    #[test]
    fn each_setting_binds_the_underlay_its_way() {
        assert_eq!(ZeroCopy::Auto.underlay_bind(), BindMode::Auto);
        assert_eq!(ZeroCopy::On.underlay_bind(), BindMode::ZeroCopy);
        assert_eq!(ZeroCopy::Off.underlay_bind(), BindMode::Copy);
    }

    #[test]
    fn on_names_the_device_and_the_way_out_when_the_driver_cannot() {
        let e = std::io::Error::from_raw_os_error(libc::EOPNOTSUPP);
        let msg = ZeroCopy::On.bind_error("eth0", 1, &e);
        assert!(msg.starts_with("--zerocopy on: eth0 queue 1"), "{msg}");
        assert!(msg.contains("no zero-copy support") && msg.contains("--zerocopy auto or off"), "{msg}");
        let busy = std::io::Error::from_raw_os_error(libc::EBUSY);
        assert!(ZeroCopy::On.bind_error("eth0", 0, &busy).starts_with("--zerocopy on: eth0 queue 0"));
        assert!(ZeroCopy::Auto.bind_error("eth0", 0, &busy).starts_with("AF_XDP socket on eth0 queue 0"));
    }
}
