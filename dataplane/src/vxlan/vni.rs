//! The VXLAN Network Identifier: 24 bits, parsed and printed as `ip link ... id` does.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vni(u32);

impl Vni {
    /// The largest VNI, 2^24 - 1.
    pub const MAX: u32 = 0xff_ffff;

    /// `None` above [`Vni::MAX`]. 0 is valid, as for `ip link add ... type vxlan id 0`.
    pub const fn new(v: u32) -> Option<Vni> {
        if v <= Self::MAX {
            Some(Vni(v))
        } else {
            None
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a string is not a VNI.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseVniError {
    #[error("invalid VNI {0:?}: expected a decimal (or 0x-prefixed hex) number from 0 to 16777215")]
    NotANumber(String),
    #[error("invalid VNI {0}: a VNI has 24 bits, so it must be at most 16777215")]
    OutOfRange(u64),
}

impl FromStr for Vni {
    type Err = ParseVniError;

    /// Decimal, or hex with a `0x` prefix (like iproute2's `get_u32(.., 0)`, but
    /// without its octal reading of a leading zero).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => t.parse::<u64>(),
        };
        let v = parsed.map_err(|_| ParseVniError::NotANumber(s.to_string()))?;
        u32::try_from(v).ok().and_then(Vni::new).ok_or(ParseVniError::OutOfRange(v))
    }
}

// ---------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::testutil::*;

    #[test]
    fn vni_bounds_display_and_parse() {
        assert_eq!(Vni::new(0).map(Vni::get), Some(0));
        assert_eq!(Vni::new(0xff_ffff).map(Vni::get), Some(16_777_215));
        assert_eq!(Vni::new(0x100_0000), None);
        assert_eq!(vni().to_string(), "4242");
        assert_eq!("4242".parse::<Vni>(), Ok(vni()));
        assert_eq!(" 0x1092 ".parse::<Vni>(), Ok(vni()));
        assert_eq!("16777216".parse::<Vni>(), Err(ParseVniError::OutOfRange(16_777_216)));
        let e = "blue".parse::<Vni>().unwrap_err().to_string();
        assert!(e.contains("\"blue\"") && e.contains("16777215"), "{e}");
        let e = "99999999999".parse::<Vni>().unwrap_err().to_string();
        assert!(e.contains("99999999999") && e.contains("24 bits"), "{e}");
        assert!("-1".parse::<Vni>().is_err());
        assert!("".parse::<Vni>().is_err());
    }
}
