//! The VXLAN Network Identifier: 24 bits, parsed and printed as `ip link ... id` does.
//!
//! One definition for every side: the data plane, the CLI (`--vni`), the FDB entry
//! parsers (`vni V`) and the Consul key schema. `no_std`: a parse error carries the
//! offending text inline (up to [`BadText::CAPACITY`] bytes), not in a `String`.
#![forbid(unsafe_code)]

use core::fmt;
use core::str::FromStr;

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

/// Why a string is not a VNI. Both variants name the offending value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseVniError {
    /// Not a decimal or `0x` hex number.
    NotANumber(BadText),
    /// A number, but wider than 24 bits.
    OutOfRange(u64),
}

impl fmt::Display for ParseVniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseVniError::NotANumber(text) => {
                write!(f, "invalid VNI {text:?}: expected a decimal (or 0x-prefixed hex) number from 0 to 16777215")
            }
            ParseVniError::OutOfRange(v) => {
                write!(f, "invalid VNI {v}: out of range, a VNI has 24 bits, so it must be at most 16777215")
            }
        }
    }
}

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
impl std::error::Error for ParseVniError {}

/// The text that failed to parse, kept inline; longer text keeps its first
/// [`BadText::CAPACITY`] bytes (cut at a character boundary) and prints with `...`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BadText {
    buf: [u8; BadText::CAPACITY],
    len: u8,
    truncated: bool,
}

impl BadText {
    pub const CAPACITY: usize = 32;

    fn new(s: &str) -> BadText {
        let mut len = s.len().min(Self::CAPACITY);
        while !s.is_char_boundary(len) {
            len -= 1;
        }
        let mut buf = [0; Self::CAPACITY];
        buf[..len].copy_from_slice(&s.as_bytes()[..len]);
        BadText { buf, len: len as u8, truncated: len < s.len() }
    }

    /// The kept text (all of it unless [`BadText::is_truncated`]).
    pub fn as_str(&self) -> &str {
        // `buf[..len]` was copied from a `&str` and cut at a character boundary.
        core::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }

    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

/// Quoted, like `str`'s `Debug`, with `...` after the quote when truncated.
impl fmt::Debug for BadText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
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
        let v = parsed.map_err(|_| ParseVniError::NotANumber(BadText::new(s)))?;
        u32::try_from(v).ok().and_then(Vni::new).ok_or(ParseVniError::OutOfRange(v))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    fn vni() -> Vni {
        Vni::new(4242).unwrap()
    }

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

    #[test]
    fn out_of_range_says_so() {
        let e = "16777216".parse::<Vni>().unwrap_err().to_string();
        assert!(e.contains("16777216") && e.contains("out of range"), "{e}");
    }

    #[test]
    fn long_bad_text_is_kept_in_part_at_a_char_boundary() {
        let long = "é".repeat(40);
        let Err(ParseVniError::NotANumber(text)) = long.parse::<Vni>() else { panic!("parsed {long}") };
        assert!(text.is_truncated());
        assert_eq!(text.as_str(), "é".repeat(16));
        let e = ParseVniError::NotANumber(text).to_string();
        assert!(e.starts_with(&std::format!("invalid VNI \"{}\"...: ", "é".repeat(16))), "{e}");
        let Err(ParseVniError::NotANumber(short)) = "blue".parse::<Vni>() else { panic!() };
        assert!(!short.is_truncated() && short.as_str() == "blue");
    }
}
