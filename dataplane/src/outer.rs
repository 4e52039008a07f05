//! `--ttl`, `--tos` and `--df`: how the outer IPv4 header's TTL, TOS and DF bit are
//! set, with the kernel's spellings and defaults (`ttl auto`, `tos 0`, `df unset`).
//! Inherited fields are zero in the outer header template and come from each inner
//! packet ([`vxdp_common::outer`]).

use std::fmt;
use vxdp_common::outer::{Inherit, DEFAULT_TTL, INHERIT_DF, INHERIT_TOS, INHERIT_TTL};

/// `--ttl N|auto|inherit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// `auto`: 64 (the kernel's route hop limit, by default `ip_default_ttl`).
    Auto,
    /// `N`.
    Fixed(u8),
    /// The inner IPv4 TTL or IPv6 hop limit; 64 for a frame that is not IP.
    Inherit,
}

/// `--tos N|inherit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tos {
    /// The DSCP of `N` (its ECN bits are the inner packet's, as in the kernel).
    Fixed(u8),
    /// The inner IPv4 TOS or IPv6 traffic class's DSCP.
    Inherit,
}

/// `--df unset|set|inherit`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Df {
    /// DF clear: the underlay may fragment the outer packet (the kernel's default).
    #[default]
    Unset,
    /// DF on every outer packet.
    Set,
    /// DF as the inner IPv4 packet's, set for inner IPv6.
    Inherit,
}

/// The three knobs together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterKnobs {
    pub ttl: Ttl,
    pub tos: Tos,
    pub df: Df,
}

impl Default for OuterKnobs {
    fn default() -> Self {
        OuterKnobs { ttl: Ttl::Auto, tos: Tos::Fixed(0), df: Df::Unset }
    }
}

impl OuterKnobs {
    /// The template's TTL: zero when inherited.
    pub fn template_ttl(&self) -> u8 {
        match self.ttl {
            Ttl::Auto => DEFAULT_TTL,
            Ttl::Fixed(t) => t,
            Ttl::Inherit => 0,
        }
    }

    /// The template's TTL toward a multicast group (`--group`): `auto` is 1 there, as
    /// the kernel's `vxlan_xmit_one` keeps multicast on the local segment unless a TTL
    /// is given.
    pub fn template_ttl_multicast(&self) -> u8 {
        match self.ttl {
            Ttl::Auto => 1,
            _ => self.template_ttl(),
        }
    }

    /// The template's TOS: zero when inherited.
    pub fn template_tos(&self) -> u8 {
        match self.tos {
            Tos::Fixed(t) => t,
            Tos::Inherit => 0,
        }
    }

    /// The template's DF bit: only with `df set`.
    pub fn template_df(&self) -> bool {
        self.df == Df::Set
    }

    /// What each frame contributes, as `vxdp_common::outer::INHERIT_*` bits.
    pub fn inherit(&self) -> Inherit {
        (if self.tos == Tos::Inherit { INHERIT_TOS } else { 0 })
            | (if self.ttl == Ttl::Inherit { INHERIT_TTL } else { 0 })
            | (if self.df == Df::Inherit { INHERIT_DF } else { 0 })
    }
}

impl std::str::FromStr for Ttl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Ttl::Auto),
            "inherit" => Ok(Ttl::Inherit),
            _ => match s.parse::<u8>() {
                Ok(0) | Err(_) => Err(format!("'{s}' is not a TTL (1-255, auto or inherit)")),
                Ok(v) => Ok(Ttl::Fixed(v)),
            },
        }
    }
}

impl std::str::FromStr for Tos {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "inherit" {
            return Ok(Tos::Inherit);
        }
        let r = match s.strip_prefix("0x") {
            Some(h) => u8::from_str_radix(h, 16),
            None => s.parse::<u8>(),
        };
        // 1 is the kernel's own encoding of `inherit` (`ip link` prints it so); a TOS
        // of 1 sets only an ECN bit, which the inner packet's replace anyway.
        match r {
            Ok(1) => Ok(Tos::Inherit),
            Ok(v) => Ok(Tos::Fixed(v)),
            Err(_) => Err(format!("'{s}' is not a TOS value (0-255, 0x00-0xff or inherit)")),
        }
    }
}

impl std::str::FromStr for Df {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "unset" => Ok(Df::Unset),
            "set" => Ok(Df::Set),
            "inherit" => Ok(Df::Inherit),
            _ => Err(format!("'{s}' is not a DF setting (unset, set or inherit)")),
        }
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ttl::Auto => f.write_str("auto"),
            Ttl::Fixed(t) => write!(f, "{t}"),
            Ttl::Inherit => f.write_str("inherit"),
        }
    }
}

impl fmt::Display for Tos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tos::Fixed(t) => write!(f, "{t:#04x}"),
            Tos::Inherit => f.write_str("inherit"),
        }
    }
}

impl fmt::Display for Df {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Df::Unset => "unset",
            Df::Set => "set",
            Df::Inherit => "inherit",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_and_defaults_follow_ip_link() {
        assert_eq!("auto".parse::<Ttl>(), Ok(Ttl::Auto));
        assert_eq!("inherit".parse::<Ttl>(), Ok(Ttl::Inherit));
        assert_eq!("9".parse::<Ttl>(), Ok(Ttl::Fixed(9)));
        assert!("0".parse::<Ttl>().unwrap_err().contains("not a TTL"));
        assert_eq!("0xb8".parse::<Tos>(), Ok(Tos::Fixed(0xb8)));
        assert_eq!("inherit".parse::<Tos>(), Ok(Tos::Inherit));
        assert_eq!("1".parse::<Tos>(), Ok(Tos::Inherit));
        assert!("x".parse::<Tos>().unwrap_err().contains("not a TOS"));
        assert_eq!("set".parse::<Df>(), Ok(Df::Set));
        assert!("on".parse::<Df>().unwrap_err().contains("unset, set or inherit"));
        let d = OuterKnobs::default();
        assert_eq!((d.template_ttl(), d.template_tos(), d.template_df(), d.inherit()), (64, 0, false, 0));
    }

    #[test]
    fn inherited_fields_are_zero_in_the_template() {
        let k = OuterKnobs { ttl: Ttl::Inherit, tos: Tos::Inherit, df: Df::Inherit };
        assert_eq!((k.template_ttl(), k.template_tos(), k.template_df()), (0, 0, false));
        assert_eq!(k.inherit(), INHERIT_TTL | INHERIT_TOS | INHERIT_DF);
        let set = OuterKnobs { df: Df::Set, ..OuterKnobs::default() };
        assert!(set.template_df() && set.inherit() == 0);
    }

    #[test]
    fn a_multicast_group_gets_ttl_1_unless_one_is_given() {
        let auto = OuterKnobs::default();
        assert_eq!((auto.template_ttl(), auto.template_ttl_multicast()), (DEFAULT_TTL, 1));
        let fixed = OuterKnobs { ttl: Ttl::Fixed(9), ..auto };
        assert_eq!(fixed.template_ttl_multicast(), 9);
        assert_eq!(OuterKnobs { ttl: Ttl::Inherit, ..auto }.template_ttl_multicast(), 0);
    }
}
