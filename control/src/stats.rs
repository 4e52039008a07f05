//! `vxdp stats` as typed data: what the daemon answers [`Request::Stats`] with and the
//! client prints, so neither side reads counters by string key.
//!
//! [`Request::Stats`]: crate::ctl::Request::Stats
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The daemon's counters, the answer to [`Request::Stats`](crate::ctl::Request::Stats) (`vxdp stats`).
///
/// Fields are declared in name order, as are the named counter maps, so the JSON
/// (`vxdp stats --json`) lists keys in the same order as it always has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// The control plane's counters by name (`learn_refused_unknown_source`, ...): what
    /// the daemon refused outside the data path. Left out of the JSON when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub control: BTreeMap<String, u64>,
    /// The device the daemon serves.
    pub name: String,
    /// Remote VTEPs whose underlay next hop is resolved.
    pub resolved_remotes: u64,
    /// All workers summed.
    pub total: WorkerStats,
    /// The workers' UMEM frames, a gauge: `frames` (the UMEM size, summed over
    /// workers) and `in_use` (frames off the workers' free lists: in the fill, RX, TX
    /// and completion rings or in hand; refreshed about once a second). When idle,
    /// `in_use` is what the fill rings hold; growth between idle moments is a leak.
    /// Left out of the JSON when empty (older daemons).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub umem: BTreeMap<String, u64>,
    /// One entry per worker, in worker order.
    pub workers: Vec<WorkerStats>,
    /// The XDP programs' counters by name (`xdp_underlay_steered`, ...); empty when
    /// the daemon could not read them.
    pub xdp: BTreeMap<String, u64>,
}

/// One worker's data-path counters (or their sum). The field names are the counter
/// names the data plane uses (`vxdp::counters::Counter::name`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Decapsulated TCP/UDP segments whose checksum a sender's offload left unfinished
    /// (a kernel peer on a veth with `tx` checksum offload on), completed by the worker.
    #[serde(default)]
    pub csum_completed: u64,
    pub decap_bytes: u64,
    pub decap_frames: u64,
    /// In the JSON, one `drop_<reason>` key per reason, between `decap_frames` and
    /// `encap_bytes` (name order).
    #[serde(flatten)]
    pub drops: Drops,
    pub encap_bytes: u64,
    pub encap_frames: u64,
    pub flooded: u64,
    pub learn_queue_full: u64,
    pub learned: u64,
    pub overlay_rx_bytes: u64,
    pub overlay_rx_frames: u64,
    /// ARP requests answered from the proxy table (`--proxy`).
    #[serde(default)]
    pub proxy_arp_replies: u64,
    /// IPv6 neighbour solicitations answered from the proxy table (`--proxy`).
    #[serde(default)]
    pub proxy_nd_replies: u64,
    /// Port layout (absent from older daemons' answers: zero).
    #[serde(default)]
    pub port_flooded: u64,
    #[serde(default)]
    pub port_tx_bytes: u64,
    #[serde(default)]
    pub port_tx_frames: u64,
    /// ICMP/ICMPv6 "too big" answers to overlay frames the underlay cannot carry.
    #[serde(default)]
    pub pmtu_replies: u64,
    /// Underlay frames beyond the first of fragmented outer packets (each is also one
    /// of `encap_frames`).
    #[serde(default)]
    pub encap_fragments: u64,
    pub underlay_rx_bytes: u64,
    pub underlay_rx_frames: u64,
}

/// Drop counters by reason name (`wrong_vni`, ...; `vxdp::counters::DropReason::name`),
/// in name order. Serialized as `drop_<reason>` keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drops(pub BTreeMap<String, u64>);

/// The JSON key prefix of a drop counter.
const DROP_PREFIX: &str = "drop_";

impl Serialize for Drops {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (reason, n) in &self.0 {
            m.serialize_entry(&format!("{DROP_PREFIX}{reason}"), n)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Drops {
    /// Takes the `drop_*` keys and ignores any other key (as the derived structs of
    /// this protocol ignore unknown fields).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Drops;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("drop_<reason> counters")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Drops, A::Error> {
                let mut drops = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.strip_prefix(DROP_PREFIX) {
                        Some(reason) => {
                            drops.insert(reason.to_string(), map.next_value()?);
                        }
                        None => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(Drops(drops))
            }
        }
        d.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::Response;

    /// Every counter key of a worker object in `vxdp stats --json`, in today's order.
    const WORKER_KEYS: [&str; 35] = [
        "csum_completed",
        "decap_bytes",
        "decap_frames",
        "drop_bad_descriptor",
        "drop_bad_flags",
        "drop_bad_header",
        "drop_ecn_ce_not_ect",
        "drop_mtu_exceeded",
        "drop_no_fdb_entry",
        "drop_no_frame",
        "drop_no_neighbour",
        "drop_not_vxlan",
        "drop_overlay_no_rx_buffer",
        "drop_overlay_rx_ring_full",
        "drop_truncated",
        "drop_tx_ring_full",
        "drop_underlay_no_rx_buffer",
        "drop_underlay_rx_ring_full",
        "drop_wrong_vni",
        "encap_bytes",
        "encap_fragments",
        "encap_frames",
        "flooded",
        "learn_queue_full",
        "learned",
        "overlay_rx_bytes",
        "overlay_rx_frames",
        "pmtu_replies",
        "port_flooded",
        "port_tx_bytes",
        "port_tx_frames",
        "proxy_arp_replies",
        "proxy_nd_replies",
        "underlay_rx_bytes",
        "underlay_rx_frames",
    ];

    /// Stats as a daemon with two workers reports them, every counter distinct.
    fn two_worker_stats() -> Stats {
        let worker = |base: u64| {
            let drops = WORKER_KEYS.iter().filter_map(|k| k.strip_prefix("drop_"));
            WorkerStats {
                csum_completed: base + 29,
                decap_bytes: base + 1,
                decap_frames: base + 2,
                drops: Drops(drops.zip(base + 3..).map(|(r, n)| (r.to_string(), n)).collect()),
                encap_bytes: base + 20,
                encap_frames: base + 21,
                flooded: base + 22,
                learn_queue_full: base + 28,
                learned: base + 23,
                overlay_rx_bytes: base + 24,
                overlay_rx_frames: base + 25,
                proxy_arp_replies: base + 30,
                proxy_nd_replies: base + 31,
                port_flooded: base + 32,
                port_tx_bytes: base + 33,
                port_tx_frames: base + 34,
                pmtu_replies: base + 35,
                encap_fragments: base + 36,
                underlay_rx_bytes: base + 26,
                underlay_rx_frames: base + 27,
            }
        };
        Stats {
            name: "vx0".into(),
            resolved_remotes: 2,
            total: worker(1000),
            workers: vec![worker(0), worker(100)],
            xdp: [("xdp_pass_not_udp".to_string(), 5), ("xdp_underlay_steered".to_string(), 9)].into(),
            ..Default::default()
        }
    }

    #[test]
    fn stats_json_round_trips() {
        let stats = two_worker_stats();
        let json = serde_json::to_string(&stats).unwrap();
        assert_eq!(serde_json::from_str::<Stats>(&json).unwrap(), stats);
        let resp = Response::Stats(Box::new(stats));
        assert_eq!(serde_json::from_str::<Response>(&serde_json::to_string(&resp).unwrap()).unwrap(), resp);
        // An empty xdp object (counters unreadable) stays one.
        let bare = Stats { name: "vx1".into(), ..Default::default() };
        assert_eq!(serde_json::from_str::<Stats>(&serde_json::to_string(&bare).unwrap()).unwrap(), bare);
        // Control counters, when there are some, come back too.
        let control = Stats { control: [("learn_refused_unknown_source".to_string(), 3)].into(), ..bare };
        assert_eq!(serde_json::from_str::<Stats>(&serde_json::to_string(&control).unwrap()).unwrap(), control);
        // The UMEM gauge, when the daemon reports it, sits between `total` and `workers`.
        let umem = Stats { umem: [("frames".to_string(), 8192), ("in_use".to_string(), 4096)].into(), ..control };
        let v = serde_json::to_value(&umem).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["control", "name", "resolved_remotes", "total", "umem", "workers", "xdp"]);
        assert_eq!(serde_json::from_value::<Stats>(v).unwrap(), umem);
    }

    #[test]
    fn stats_json_keeps_todays_keys_and_shape() {
        let v = serde_json::to_value(two_worker_stats()).unwrap();
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&v), ["name", "resolved_remotes", "total", "workers", "xdp"]);
        assert_eq!((v["name"].as_str(), v["resolved_remotes"].as_u64()), (Some("vx0"), Some(2)));
        for w in std::iter::once(&v["total"]).chain(v["workers"].as_array().unwrap()) {
            assert_eq!(keys(w), WORKER_KEYS);
            assert!(w.as_object().unwrap().values().all(|n| n.is_u64()), "{w}");
        }
        assert_eq!(v["workers"].as_array().unwrap().len(), 2);
        assert_eq!(v["total"]["drop_wrong_vni"].as_u64(), Some(1018));
        assert_eq!(v["xdp"], serde_json::json!({ "xdp_pass_not_udp": 5, "xdp_underlay_steered": 9 }));
        // The pretty text `--json` prints lists the keys in that order, too.
        let pretty = serde_json::to_string_pretty(&two_worker_stats()).unwrap();
        let at = |k: &str| pretty.find(&format!("\"{k}\"")).unwrap();
        assert!(at("decap_frames") < at("drop_bad_flags") && at("drop_wrong_vni") < at("encap_bytes"));
    }
}
