//! Ethernet MAC addresses as the control plane reads and writes them.
#![forbid(unsafe_code)]

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An Ethernet MAC address (EUI-48), written `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `00:00:00:00:00:00`: the head-end replication (flood) entry of a vxlan FDB.
    pub const ZERO: Mac = Mac([0; 6]);
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// The I/G bit is set: group (multicast) addresses, broadcast included.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }
}

impl From<[u8; 6]> for Mac {
    fn from(octets: [u8; 6]) -> Self {
        Mac(octets)
    }
}

impl From<Mac> for [u8; 6] {
    fn from(mac: Mac) -> Self {
        mac.0
    }
}

/// A text that is not a MAC address; carries the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex bytes separated by ':', like aa:bb:cc:dd:ee:ff")]
pub struct MacParseError(pub String);

impl FromStr for Mac {
    type Err = MacParseError;

    /// Six groups of one or two hex digits separated by `:` (as `ether_aton` accepts).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_string());
        let mut octets = [0u8; 6];
        let mut groups = s.split(':');
        for octet in octets.iter_mut() {
            let group = groups.next().ok_or_else(err)?;
            if group.is_empty() || group.len() > 2 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            *octet = u8::from_str_radix(group, 16).map_err(|_| err())?;
        }
        if groups.next().is_some() {
            return Err(err());
        }
        Ok(Mac(octets))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_lowercase() {
        let mac: Mac = "AA:bb:0c:d:EE:ff".parse().unwrap();
        assert_eq!(mac, Mac([0xaa, 0xbb, 0x0c, 0x0d, 0xee, 0xff]));
        assert_eq!(mac.to_string(), "aa:bb:0c:0d:ee:ff");
        assert_eq!("00:00:00:00:00:00".parse::<Mac>().unwrap(), Mac::ZERO);
    }

    #[test]
    fn rejects_bad_text_and_names_it() {
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb:cc:dd:ee:fg",
            "aaa:bb:cc:dd:ee:ff",
            "aa-bb-cc-dd-ee-ff",
            "aa:bb::dd:ee:ff",
            "+a:bb:cc:dd:ee:ff",
        ] {
            let err = bad.parse::<Mac>().unwrap_err();
            assert_eq!(err.0, bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn classifies() {
        assert!(Mac::ZERO.is_zero());
        assert!(!Mac::ZERO.is_multicast());
        assert!(Mac::BROADCAST.is_multicast());
        assert!(Mac::BROADCAST.is_broadcast());
        assert!("01:00:5e:00:00:01".parse::<Mac>().unwrap().is_multicast());
        assert!("33:33:00:00:00:01".parse::<Mac>().unwrap().is_multicast());
        assert!(!"02:00:00:00:00:01".parse::<Mac>().unwrap().is_multicast());
    }

    #[test]
    fn serde_uses_the_string_form() {
        let mac: Mac = "02:00:00:00:00:01".parse().unwrap();
        let json = serde_json::to_string(&mac).unwrap();
        assert_eq!(json, "\"02:00:00:00:00:01\"");
        assert_eq!(serde_json::from_str::<Mac>(&json).unwrap(), mac);
        let err = serde_json::from_str::<Mac>("\"nope\"").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
