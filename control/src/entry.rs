//! FDB entries as requested, in `bridge fdb` terms (the table itself is the data
//! plane's, `vxdp::fdb`), and the two text forms they arrive in: the CLI
//! keyword tail (`MAC dst IP [port P] [vni V] [dev NAME]`) and `--fdb` files (one
//! such entry per line).
//!
//! Semantics follow `bridge fdb` on a Linux vxlan device (see [`FdbOp`]); the one
//! extension is [`Source`]: every source (static configuration, the cluster store, learning) keeps
//! its own layer of entries, and the highest-precedence layer that has a MAC decides
//! where that MAC goes.
#![forbid(unsafe_code)]

use crate::mac::{Mac, MacParseError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use vxdp_common::Vni;

/// Where an FDB entry came from. Precedence: `Static` > `Consul` > `Learned`.
///
/// Each source has its own layer: a lower source never overrides a higher one's entry
/// for the same MAC, and deleting the higher one reveals whatever the lower layer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `--fdb` files and the control socket (`vxdp fdb add ...`); never ages.
    Static,
    /// Entries from the cluster store (Consul, etcd, ZooKeeper); never ages, the store
    /// removes them. Spelled `store` (older answers said `consul`, still accepted).
    #[serde(alias = "consul")]
    Store,
    /// Learned from decapsulated traffic; ages out.
    Learned,
}

impl Source {
    /// All sources, highest precedence first.
    pub const BY_PRECEDENCE: [Source; 3] = [Source::Static, Source::Store, Source::Learned];

    /// Higher wins: Static 2, Store 1, Learned 0.
    pub const fn precedence(self) -> u8 {
        match self {
            Source::Static => 2,
            Source::Store => 1,
            Source::Learned => 0,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Static => "static",
            Source::Store => "store",
            Source::Learned => "learned",
        }
    }
}

impl PartialOrd for Source {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Ordered by precedence: `Static > Consul > Learned`.
impl Ord for Source {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.precedence().cmp(&other.precedence())
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A remote VTEP: where frames for a MAC are sent. `None` port/vni mean the device's
/// own (`dstport`, `id`), as with `bridge fdb` when `port`/`vni` are omitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Remote {
    pub ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
}

impl Remote {
    /// A remote with the device's default port and VNI.
    pub const fn new(ip: IpAddr) -> Self {
        Remote { ip, port: None, vni: None }
    }
}

/// `dst IP[ port P][ vni V]`, the `bridge fdb` spelling.
impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dst {}", self.ip)?;
        if let Some(port) = self.port {
            write!(f, " port {port}")?;
        }
        if let Some(vni) = self.vni {
            write!(f, " vni {vni}")?;
        }
        Ok(())
    }
}

/// A `bridge fdb` operation, with its meaning on a vxlan device (applied to the layer
/// of the request's [`Source`]):
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FdbOp {
    /// Create the entry `MAC -> remote`; fails with "exists" if the MAC already has one.
    Add,
    /// Add another remote to the MAC's entry (creating it if needed); a remote already
    /// present is left alone. Used with `00:00:00:00:00:00` for head-end replication;
    /// allowed for any MAC.
    Append,
    /// Set the MAC's entry to exactly this remote, creating it if missing.
    Replace,
    /// With a remote: remove that remote from the MAC's entry (the entry goes when its
    /// last remote does). Without: remove the MAC's entry. Fails if there is none.
    Del,
}

impl FdbOp {
    pub const fn as_str(self) -> &'static str {
        match self {
            FdbOp::Add => "add",
            FdbOp::Append => "append",
            FdbOp::Replace => "replace",
            FdbOp::Del => "del",
        }
    }

    /// Whether the operation needs a `dst`.
    pub const fn needs_remote(self) -> bool {
        !matches!(self, FdbOp::Del)
    }
}

impl fmt::Display for FdbOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Unknown `bridge fdb` command word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fdb operation {0:?}: expected add, append, replace or del")]
pub struct FdbOpParseError(pub String);

impl FromStr for FdbOp {
    type Err = FdbOpParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "add" => Ok(FdbOp::Add),
            "append" => Ok(FdbOp::Append),
            "replace" => Ok(FdbOp::Replace),
            "del" | "delete" => Ok(FdbOp::Del),
            _ => Err(FdbOpParseError(s.to_string())),
        }
    }
}

/// One `bridge fdb` change. The source is supplied by whoever applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbRequest {
    pub op: FdbOp,
    pub mac: Mac,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Remote>,
}

impl FdbRequest {
    pub fn new(op: FdbOp, mac: Mac, remote: Option<Remote>) -> Self {
        FdbRequest { op, mac, remote }
    }
}

/// What is wrong with an FDB entry's text (CLI arguments or one line of a file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FdbParseError {
    #[error("missing MAC address")]
    MissingMac,
    #[error(transparent)]
    BadMac(#[from] MacParseError),
    #[error("{0:?} needs a value")]
    MissingValue(&'static str),
    #[error("invalid dst {0:?}: expected an IPv4 or IPv6 address")]
    BadIp(String),
    #[error("invalid port {0:?}: expected 1-65535")]
    BadPort(String),
    #[error("invalid vni {0:?}: expected 0-16777215")]
    BadVni(String),
    #[error("{0:?} given twice")]
    Repeated(&'static str),
    #[error("missing \"dst IP\"")]
    MissingDst,
    #[error("\"dev\" is not allowed here: an FDB file belongs to one device")]
    DevNotAllowed,
    #[error("unsupported option {0:?}: expected dst, port, vni or dev")]
    UnknownKeyword(String),
    #[error("unexpected {0:?} after the MAC address")]
    Unexpected(String),
    #[error("empty entry")]
    Empty,
    #[error("{op} needs \"dst IP\"")]
    OpNeedsDst { op: FdbOp },
}

/// A parsed CLI keyword tail: `MAC [dst IP [port P] [vni V]] [dev NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbArgs {
    pub mac: Mac,
    pub remote: Option<Remote>,
    pub dev: Option<String>,
}

impl FdbArgs {
    /// The request for `op`, checking that add/append/replace carry a `dst`.
    pub fn request(&self, op: FdbOp) -> Result<FdbRequest, FdbParseError> {
        if op.needs_remote() && self.remote.is_none() {
            return Err(FdbParseError::OpNeedsDst { op });
        }
        Ok(FdbRequest { op, mac: self.mac, remote: self.remote })
    }
}

/// Parse the keyword tail of `bridge fdb {add,append,replace,del}`:
/// `MAC [dst IP] [port P] [vni V] [dev NAME]`, keywords in any order after the MAC
/// (the MAC may also come after keywords, as `bridge` allows). `self`, `permanent`
/// and `static` are accepted and ignored, so copied `bridge` commands work. `port`
/// or `vni` without `dst` is an error. Whether `dst` is required depends on the
/// operation: see [`FdbArgs::request`].
pub fn parse_fdb_args<S: AsRef<str>>(args: &[S]) -> Result<FdbArgs, FdbParseError> {
    parse_words(args.iter().map(AsRef::as_ref), true)
}

fn parse_words<'a>(words: impl Iterator<Item = &'a str>, allow_dev: bool) -> Result<FdbArgs, FdbParseError> {
    let mut words = words.peekable();
    if words.peek().is_none() {
        return Err(FdbParseError::Empty);
    }
    let mut mac = None;
    let (mut ip, mut port, mut vni, mut dev) = (None, None, None, None);
    fn value<'a>(key: &'static str, words: &mut impl Iterator<Item = &'a str>) -> Result<&'a str, FdbParseError> {
        words.next().ok_or(FdbParseError::MissingValue(key))
    }
    fn once<T>(slot: &mut Option<T>, key: &'static str, v: T) -> Result<(), FdbParseError> {
        if slot.replace(v).is_some() {
            return Err(FdbParseError::Repeated(key));
        }
        Ok(())
    }
    while let Some(word) = words.next() {
        match word {
            "dst" => {
                let text = value("dst", &mut words)?;
                let addr: IpAddr = text.parse().map_err(|_| FdbParseError::BadIp(text.to_string()))?;
                once(&mut ip, "dst", addr)?;
            }
            "port" | "dst_port" => {
                let text = value("port", &mut words)?;
                let p: u16 =
                    text.parse().ok().filter(|p| *p != 0).ok_or_else(|| FdbParseError::BadPort(text.to_string()))?;
                once(&mut port, "port", p)?;
            }
            "vni" => {
                let text = value("vni", &mut words)?;
                let v: Vni = text.parse().map_err(|_| FdbParseError::BadVni(text.to_string()))?;
                once(&mut vni, "vni", v.get())?;
            }
            "dev" => {
                if !allow_dev {
                    return Err(FdbParseError::DevNotAllowed);
                }
                let name = value("dev", &mut words)?;
                once(&mut dev, "dev", name.to_string())?;
            }
            "self" | "permanent" | "static" => {}
            "master" | "router" | "use" | "dynamic" | "extern_learn" | "sticky" | "via" | "src_vni" | "nhid"
            | "vlan" => return Err(FdbParseError::UnknownKeyword(word.to_string())),
            other if mac.is_none() => mac = Some(other.parse::<Mac>()?),
            other => {
                return Err(if other.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    FdbParseError::UnknownKeyword(other.to_string())
                } else {
                    FdbParseError::Unexpected(other.to_string())
                })
            }
        }
    }
    let mac = mac.ok_or(FdbParseError::MissingMac)?;
    let remote = match ip {
        Some(ip) => Some(Remote { ip, port, vni }),
        None if port.is_some() || vni.is_some() => return Err(FdbParseError::MissingDst),
        None => None,
    };
    Ok(FdbArgs { mac, remote, dev })
}

/// An `--fdb` file error: the 1-based line and what is wrong on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FdbFileError {
    #[error("line {line}: {error}")]
    Line { line: usize, error: FdbParseError },
    #[error("line {line}: duplicate entry {mac} {remote}, first given on line {first}")]
    Duplicate { line: usize, first: usize, mac: Mac, remote: Remote },
}

impl FdbFileError {
    /// The 1-based line number the error is on.
    pub fn line(&self) -> usize {
        match self {
            FdbFileError::Line { line, .. } | FdbFileError::Duplicate { line, .. } => *line,
        }
    }
}

/// Parse an `--fdb` file: one entry per line, `[append|add] MAC dst IP [port P] [vni V]`.
///
/// `#` starts a comment (to the end of the line); blank lines are skipped. Several
/// lines for one MAC append remotes to it (so `00:00:00:00:00:00` lines build the
/// flood list); repeating an identical entry is an error. `dev` is rejected: the file
/// is given per device.
pub fn parse_fdb_file(text: &str) -> Result<Vec<(Mac, Remote)>, FdbFileError> {
    let mut entries: Vec<(Mac, Remote)> = Vec::new();
    let mut first_seen = std::collections::HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or("");
        let mut words = content.split_whitespace().peekable();
        if words.peek().is_none() {
            continue;
        }
        if matches!(words.peek(), Some(&"add") | Some(&"append")) {
            words.next();
        }
        let args = parse_words(words, false).map_err(|error| FdbFileError::Line { line, error })?;
        let remote = args.remote.ok_or(FdbFileError::Line { line, error: FdbParseError::MissingDst })?;
        if let Some(&first) = first_seen.get(&(args.mac, remote)) {
            return Err(FdbFileError::Duplicate { line, first, mac: args.mac, remote });
        }
        first_seen.insert((args.mac, remote), line);
        entries.push((args.mac, remote));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn precedence_orders_sources() {
        assert!(Source::Static > Source::Store && Source::Store > Source::Learned);
        let mut all = vec![Source::Learned, Source::Static, Source::Store];
        all.sort_by(|a, b| b.cmp(a));
        assert_eq!(all, Source::BY_PRECEDENCE);
    }

    #[test]
    fn parses_cli_tail_like_bridge() {
        let args = parse_fdb_args(&words("00:11:22:33:44:55 dst 192.0.2.2 port 4790 vni 100 dev vx0")).unwrap();
        assert_eq!(args.mac, mac("00:11:22:33:44:55"));
        assert_eq!(
            args.remote,
            Some(Remote { ip: Ipv4Addr::new(192, 0, 2, 2).into(), port: Some(4790), vni: Some(100) })
        );
        assert_eq!(args.dev.as_deref(), Some("vx0"));
        // Keywords before the MAC, `self permanent` ignored, IPv6.
        let args =
            parse_fdb_args(&["dev", "vx0", "00:00:00:00:00:00", "dst", "2001:db8::1", "self", "permanent"]).unwrap();
        assert_eq!(args.remote, Some(Remote::new(IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap()))));
        let req = args.request(FdbOp::Append).unwrap();
        assert_eq!(req.op, FdbOp::Append);
        // del without dst.
        let args = parse_fdb_args(&words("00:11:22:33:44:55 dev vx0")).unwrap();
        assert_eq!(args.remote, None);
        assert!(args.request(FdbOp::Del).is_ok());
        assert_eq!(args.request(FdbOp::Add).unwrap_err(), FdbParseError::OpNeedsDst { op: FdbOp::Add });
    }

    #[test]
    fn cli_errors_name_the_problem() {
        let cases: &[(&str, FdbParseError)] = &[
            ("", FdbParseError::Empty),
            ("dst 192.0.2.1", FdbParseError::MissingMac),
            ("00:11:22:33:44:55 dst", FdbParseError::MissingValue("dst")),
            ("00:11:22:33:44:55 dst 300.1.1.1", FdbParseError::BadIp("300.1.1.1".into())),
            ("00:11:22:33:44:55 dst 192.0.2.1 port 0", FdbParseError::BadPort("0".into())),
            ("00:11:22:33:44:55 dst 192.0.2.1 port 70000", FdbParseError::BadPort("70000".into())),
            ("00:11:22:33:44:55 dst 192.0.2.1 vni 16777216", FdbParseError::BadVni("16777216".into())),
            ("00:11:22:33:44:55 dst 192.0.2.1 dst 192.0.2.2", FdbParseError::Repeated("dst")),
            ("00:11:22:33:44:55 vni 5", FdbParseError::MissingDst),
            ("00:11:22:33:44:55 dst 192.0.2.1 master", FdbParseError::UnknownKeyword("master".into())),
            ("00:11:22:33:44:55 dst 192.0.2.1 bogus", FdbParseError::UnknownKeyword("bogus".into())),
            ("00:11:22:33:44:55 00:11:22:33:44:66", FdbParseError::Unexpected("00:11:22:33:44:66".into())),
            ("zz:11:22:33:44:55", FdbParseError::BadMac(MacParseError("zz:11:22:33:44:55".into()))),
        ];
        for (text, want) in cases {
            assert_eq!(&parse_fdb_args(&words(text)).unwrap_err(), want, "{text}");
        }
        assert!(FdbParseError::BadIp("x".into()).to_string().contains("\"x\""));
    }

    #[test]
    fn parses_files_with_comments_and_blank_lines() {
        let text = "# flood list\n\
                    00:00:00:00:00:00 dst 192.0.2.2\n\
                    \n\
                    append 00:00:00:00:00:00 dst 192.0.2.3 # second VTEP\n\
                    add 02:00:00:00:00:01 dst 2001:db8::1 port 4790 vni 42\n\
                    \t  \n";
        let entries = parse_fdb_file(text).unwrap();
        assert_eq!(
            entries,
            vec![
                (Mac::ZERO, Remote::new(Ipv4Addr::new(192, 0, 2, 2).into())),
                (Mac::ZERO, Remote::new(Ipv4Addr::new(192, 0, 2, 3).into())),
                (
                    mac("02:00:00:00:00:01"),
                    Remote { ip: "2001:db8::1".parse().unwrap(), port: Some(4790), vni: Some(42) }
                ),
            ]
        );
        assert_eq!(parse_fdb_file("# nothing\n\n").unwrap(), vec![]);
    }

    #[test]
    fn file_errors_carry_line_numbers() {
        let err = parse_fdb_file("# ok\n00:00:00:00:00:00 dst 192.0.2.2\n02:00:00:00:00:01 dst nope\n").unwrap_err();
        assert_eq!(err.line(), 3);
        assert_eq!(err.to_string(), "line 3: invalid dst \"nope\": expected an IPv4 or IPv6 address");

        let err = parse_fdb_file("\n02:00:00:00:00:01\n").unwrap_err();
        assert_eq!(err, FdbFileError::Line { line: 2, error: FdbParseError::MissingDst });

        let err = parse_fdb_file("02:00:00:00:00:01 dst 192.0.2.1 dev vx0\n").unwrap_err();
        assert_eq!(err, FdbFileError::Line { line: 1, error: FdbParseError::DevNotAllowed });

        let err = parse_fdb_file("append\n").unwrap_err();
        assert_eq!(err, FdbFileError::Line { line: 1, error: FdbParseError::Empty });

        let err = parse_fdb_file("0:0:0:0:0:0 dst 192.0.2.1\n\n00:00:00:00:00:00 dst 192.0.2.1\n").unwrap_err();
        assert_eq!(err.line(), 3);
        assert!(err.to_string().contains("first given on line 1"), "{err}");
    }

    #[test]
    fn requests_round_trip_through_json() {
        let req = FdbRequest::new(
            FdbOp::Replace,
            mac("02:00:00:00:00:01"),
            Some(Remote { ip: "192.0.2.9".parse().unwrap(), port: None, vni: Some(7) }),
        );
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(json, r#"{"op":"replace","mac":"02:00:00:00:00:01","remote":{"ip":"192.0.2.9","vni":7}}"#);
        assert_eq!(serde_json::from_str::<FdbRequest>(&json).unwrap(), req);
        assert_eq!("delete".parse::<FdbOp>().unwrap(), FdbOp::Del);
        assert!("flush".parse::<FdbOp>().is_err());
    }
}
