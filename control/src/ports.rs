//! `vxdp port` over the control socket: the requests' arguments and what `port show`
//! answers, and their text form.
#![forbid(unsafe_code)]

use crate::mac::Mac;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// `vxdp port add IF [mac MAC]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAdd {
    /// The interface to serve (a container's host-side veth).
    pub ifname: String,
    /// A MAC pinned to the port (learning does not move it); others are learned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
}

/// One MAC on a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMac {
    pub mac: Mac,
    /// Given with `port add ... mac`, not learned.
    pub given: bool,
}

/// One port, as `vxdp port show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortShowEntry {
    pub name: String,
    pub ifindex: u32,
    pub macs: Vec<PortMac>,
    /// Frames the port sent into vxdp.
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Frames vxdp delivered into the port.
    pub tx_frames: u64,
    pub tx_bytes: u64,
}

/// Parses `IF [mac MAC] [dev NAME]` (the `port add` arguments after `add`); returns the
/// request and the device, if named.
pub fn parse_port_add(args: &[String]) -> Result<(PortAdd, Option<String>), String> {
    let mut it = args.iter();
    let ifname = it.next().ok_or("port add: expected an interface name (vxdp port add IF [mac MAC] [dev NAME])")?;
    let mut mac = None;
    let mut dev = None;
    while let Some(word) = it.next() {
        let value = it.next().ok_or_else(|| format!("port add {ifname}: `{word}` needs a value"))?;
        match word.as_str() {
            "mac" => mac = Some(value.parse::<Mac>().map_err(|e| format!("port add {ifname}: mac {value}: {e}"))?),
            "dev" => dev = Some(value.clone()),
            _ => return Err(format!("port add {ifname}: unknown argument `{word}` (expected mac or dev)")),
        }
    }
    Ok((PortAdd { ifname: ifname.clone(), mac }, dev))
}

/// Text form of `vxdp port show`: one line per port, then its MACs.
pub fn fmt_port_show(ports: &[PortShowEntry]) -> String {
    let mut out = String::new();
    for p in ports {
        let _ = writeln!(
            out,
            "{} ifindex {} rx {} frames {} bytes tx {} frames {} bytes",
            p.name, p.ifindex, p.rx_frames, p.rx_bytes, p.tx_frames, p.tx_bytes
        );
        for m in &p.macs {
            let _ = writeln!(out, "    {} {}", m.mac, if m.given { "given" } else { "learned" });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn port_add_arguments_parse_and_errors_name_the_problem() {
        let (req, dev) = parse_port_add(&words("veth1 mac 02:00:00:00:00:01 dev vx1")).unwrap();
        assert_eq!(req, PortAdd { ifname: "veth1".into(), mac: Some("02:00:00:00:00:01".parse().unwrap()) });
        assert_eq!(dev.as_deref(), Some("vx1"));
        assert_eq!(parse_port_add(&words("veth1")).unwrap(), (PortAdd { ifname: "veth1".into(), mac: None }, None));
        assert!(parse_port_add(&[]).unwrap_err().contains("interface name"));
        assert!(parse_port_add(&words("veth1 mac")).unwrap_err().contains("`mac` needs a value"));
        assert!(parse_port_add(&words("veth1 mac zz")).unwrap_err().contains("mac zz"));
        assert!(parse_port_add(&words("veth1 colour red")).unwrap_err().contains("unknown argument `colour`"));
    }

    #[test]
    fn show_json_round_trips_and_text_lists_macs() {
        let p = PortShowEntry {
            name: "veth1".into(),
            ifindex: 7,
            macs: vec![PortMac { mac: "02:00:00:00:00:01".parse().unwrap(), given: true }],
            rx_frames: 1,
            rx_bytes: 2,
            tx_frames: 3,
            tx_bytes: 4,
        };
        let json = serde_json::to_string(&vec![p.clone()]).unwrap();
        assert_eq!(serde_json::from_str::<Vec<PortShowEntry>>(&json).unwrap(), vec![p.clone()]);
        assert_eq!(
            fmt_port_show(&[p]),
            "veth1 ifindex 7 rx 1 frames 2 bytes tx 3 frames 4 bytes\n    02:00:00:00:00:01 given\n"
        );
    }
}
