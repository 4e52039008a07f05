//! What the soak reads to account for frames and resources: vxdp's counters (`vxdp
//! stats --json`), the kernel's per-link drop and error counters and UDP statistics of
//! each namespace on the path, and the daemon's RSS and open fds from `/proc`.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use vxdp_tests::Netns;

/// Kernel counters of one namespace: `link:rx_dropped`-style keys, plus `udp:InErrors`.
pub type Kernel = BTreeMap<String, u64>;

/// The per-link counters read: the receive and transmit drops and errors of
/// `ip -s link` (stats64), and for a veth its receive queues' own drops (`ethtool -S`
/// `rx_queue_N_drops`, as `rx_queue_drops`).
const LINK_FIELDS: [(&str, &str); 4] = [("rx", "dropped"), ("rx", "errors"), ("tx", "dropped"), ("tx", "errors")];

/// Whether a kernel counter is summed as a drop of soak frames. Every frame dropped
/// on a link is counted once in the sum, and a veth counts some drops at both ends:
///
/// - a veth's `rx_dropped` is never summed: it repeats what its peer counts as
///   `tx_dropped` (a full backlog or ring, a failed XDP transmit into it), and adds
///   frames for no protocol (not soak frames) and its queues' own drops, which
///   `rx_queue_drops` has alone;
/// - `rx_queue_drops` of A's `eth0` and `vxdp-vx0` is not summed: those are the
///   redirects of vxdp's XDP programs that failed, which for its AF_XDP sockets are the
///   sockets' `rx_ring_full`/`rx_dropped`, reported by vxdp as `drop_*_rx_ring_full` and
///   `drop_*_no_rx_buffer`;
/// - UDP `InErrors` counts only in the receiving containers (CA, CB).
///
/// Everything else (every `tx_dropped`, `tx_errors`, `rx_errors`, the `rx_dropped` of
/// the bridges and of `vxlan0`) is summed.
pub fn summed(key: &str, veths: &[String]) -> bool {
    if key.contains("/udp:") {
        return key == "CA/udp:InErrors" || key == "CB/udp:InErrors";
    }
    let link = key.split(':').next().unwrap_or("");
    if key.ends_with(":rx_dropped") {
        return !veths.iter().any(|v| v == link);
    }
    if key.ends_with(":rx_queue_drops") {
        return link != "A/eth0" && link != "A/vxdp-vx0";
    }
    true
}

/// Drop and error counters of every link in `ns` (keys `TAG/link:rx_dropped`), the
/// namespace's UDP `InErrors` and `NoPorts` (keys `TAG/udp:InErrors`), and the names
/// (`TAG/link`) of its veths.
pub fn kernel(ns: &Netns, tag: &str, veths: &mut Vec<String>) -> Kernel {
    let mut out = Kernel::new();
    let links = ns.try_run("ip -s -d -j link show").unwrap_or_default();
    let links: Value = serde_json::from_str(&links).unwrap_or(Value::Null);
    for link in links.as_array().into_iter().flatten() {
        let Some(name) = link["ifname"].as_str() else { continue };
        if name == "lo" {
            continue;
        }
        for (dir, field) in LINK_FIELDS {
            let v = link["stats64"][dir][field].as_u64().unwrap_or(0);
            out.insert(format!("{tag}/{name}:{dir}_{field}"), v);
        }
        if link["linkinfo"]["info_kind"].as_str() == Some("veth") {
            veths.push(format!("{tag}/{name}"));
            let stats = ns.try_run(format!("ethtool -S {name}")).unwrap_or_default();
            let drops: u64 = stats
                .lines()
                .filter_map(|l| l.trim().strip_prefix("rx_queue_"))
                .filter_map(|l| l.split_once("_drops:"))
                .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
                .sum();
            out.insert(format!("{tag}/{name}:rx_queue_drops"), drops);
        }
    }
    let snmp = ns.try_run("cat /proc/net/snmp").unwrap_or_default();
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    if let [names, values] = udp.as_slice() {
        for (k, v) in names.split_whitespace().zip(values.split_whitespace()).skip(1) {
            if k == "InErrors" || k == "NoPorts" {
                out.insert(format!("{tag}/udp:{k}"), v.parse().unwrap_or(0));
            }
        }
    }
    out
}

/// `b - a` per key (keys of `b`; a key new in `b` counts from 0).
pub fn delta(a: &Kernel, b: &Kernel) -> Kernel {
    b.iter().map(|(k, v)| (k.clone(), v.saturating_sub(a.get(k).copied().unwrap_or(0)))).collect()
}

/// A counter of `vxdp stats --json`: `total.KEY`, or `xdp.KEY` for `xdp_*` keys.
pub fn vx(stats: &Value, key: &str) -> u64 {
    let section = if key.starts_with("xdp_") { "xdp" } else { "total" };
    stats[section][key].as_u64().unwrap_or(0)
}

/// Every `total.drop_*` key of a stats answer.
pub fn drop_keys(stats: &Value) -> Vec<String> {
    stats["total"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .filter(|k| k.starts_with("drop_"))
        .collect()
}

/// The XDP counters that are drops of frames steered to vxdp (beside `total.drop_*`):
/// refused sources, and frames for a socket not bound (passed to a kernel that has no
/// socket for them).
pub const XDP_DROPS: [&str; 3] = ["xdp_drop_source_rejected", "xdp_underlay_no_socket", "xdp_overlay_no_socket"];

/// Per-worker frames taken from both sockets.
pub fn worker_rx(stats: &Value) -> Vec<u64> {
    stats["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| w["underlay_rx_frames"].as_u64().unwrap_or(0) + w["overlay_rx_frames"].as_u64().unwrap_or(0))
        .collect()
}

/// Frames the XDP programs handed to the workers' sockets (taken, or lost at a full
/// socket: the sockets' own drop counters, which vxdp refreshes about once a second).
pub fn steered(stats: &Value) -> u64 {
    vx(stats, "xdp_underlay_steered") + vx(stats, "xdp_overlay_steered")
}

/// UMEM frames the workers hold outside their free lists (fill, RX, TX and completion
/// rings, and in hand), summed over workers: `umem.in_use` of `vxdp stats --json`.
pub fn umem_in_use(stats: &Value) -> Option<u64> {
    stats["umem"]["in_use"].as_u64()
}

/// RSS (KiB) and open fds of process `pid`.
pub fn rss_fds(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

/// The non-zero entries of a counter map, as a JSON object.
pub fn nonzero(m: &BTreeMap<String, u64>) -> Value {
    let o: Map<String, Value> = m.iter().filter(|(_, v)| **v > 0).map(|(k, v)| (k.clone(), json!(v))).collect();
    Value::Object(o)
}
