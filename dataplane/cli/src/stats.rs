//! The text form of `vxdp stats`.

use vxdp_control::ctl::Stats;

/// Text form of `vxdp stats`: totals, then per-worker lines when there are several
/// workers. Drop and XDP counters are listed by name, in name order.
pub fn fmt_stats(s: &Stats) -> String {
    let mut out = String::new();
    out.push_str(&format!("{}:\n", s.name));
    let t = &s.total;
    out.push_str(&format!("    {:<18} {:>14} {:>18}\n", "", "frames", "bytes"));
    out.push_str(&format!("    {:<18} {:>14} {:>18}\n", "underlay rx", t.underlay_rx_frames, t.underlay_rx_bytes));
    out.push_str(&format!("    {:<18} {:>14} {:>18}\n", "decap -> overlay", t.decap_frames, t.decap_bytes));
    out.push_str(&format!("    {:<18} {:>14} {:>18}\n", "overlay rx", t.overlay_rx_frames, t.overlay_rx_bytes));
    out.push_str(&format!("    {:<18} {:>14} {:>18}\n", "encap -> underlay", t.encap_frames, t.encap_bytes));
    if t.port_tx_frames + t.port_flooded > 0 {
        // Port layout: frames between ports (XDP-switched ones included in the total).
        out.push_str(&format!("    {:<18} {:>14} {:>18}\n", "port -> port", t.port_tx_frames, t.port_tx_bytes));
        out.push_str(&format!("    port_flooded {}\n", t.port_flooded));
    }
    out.push_str(&format!(
        "    flooded {}  learned {}  learn_queue_full {}  csum_completed {}",
        t.flooded, t.learned, t.learn_queue_full, t.csum_completed
    ));
    if t.pmtu_replies > 0 {
        // Only on links whose path MTU is below the overlay's.
        out.push_str(&format!("  pmtu_replies {}", t.pmtu_replies));
    }
    if t.encap_fragments > 0 {
        // Only when inner packets without DF exceed a path's MTU.
        out.push_str(&format!("  encap_fragments {}", t.encap_fragments));
    }
    out.push('\n');
    out.push_str("    drops:");
    for (reason, n) in &t.drops.0 {
        out.push_str(&format!(" {reason}={n}"));
    }
    out.push('\n');
    out.push_str("    xdp:");
    for (name, n) in &s.xdp {
        out.push_str(&format!(" {}={n}", name.trim_start_matches("xdp_")));
    }
    out.push('\n');
    if !s.control.is_empty() {
        out.push_str("    control:");
        for (name, n) in &s.control {
            out.push_str(&format!(" {name}={n}"));
        }
        out.push('\n');
    }
    if s.workers.len() > 1 {
        for (i, w) in s.workers.iter().enumerate() {
            out.push_str(&format!(
                "    worker {i}: decap {} encap {} flooded {}\n",
                w.decap_frames, w.encap_frames, w.flooded
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vxdp_control::ctl::{Drops, Stats, WorkerStats};

    /// Two workers, every counter distinct, some drops and XDP counters non-zero.
    fn sample() -> Stats {
        let reasons = [
            "bad_flags",
            "bad_header",
            "mtu_exceeded",
            "no_fdb_entry",
            "no_frame",
            "no_neighbour",
            "not_vxlan",
            "overlay_no_rx_buffer",
            "overlay_rx_ring_full",
            "truncated",
            "tx_ring_full",
            "underlay_no_rx_buffer",
            "underlay_rx_ring_full",
            "wrong_vni",
        ];
        let worker = |base: u64| WorkerStats {
            csum_completed: base + 29,
            decap_bytes: base + 1,
            decap_frames: base + 2,
            drops: Drops(reasons.iter().zip(base + 3..).map(|(r, n)| (r.to_string(), n)).collect()),
            encap_bytes: base + 20,
            encap_frames: base + 21,
            flooded: base + 22,
            learn_queue_full: base + 28,
            learned: base + 23,
            overlay_rx_bytes: base + 24,
            overlay_rx_frames: base + 25,
            proxy_arp_replies: base + 30,
            proxy_nd_replies: base + 31,
            underlay_rx_bytes: base + 26,
            underlay_rx_frames: base + 27,
            ..Default::default()
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
    fn text_form_is_unchanged() {
        assert_eq!(
            fmt_stats(&sample()),
            "vx0:
                               frames              bytes
    underlay rx                  1027               1026
    decap -> overlay             1002               1001
    overlay rx                   1025               1024
    encap -> underlay            1021               1020
    flooded 1022  learned 1023  learn_queue_full 1028  csum_completed 1029
    drops: bad_flags=1003 bad_header=1004 mtu_exceeded=1005 no_fdb_entry=1006 no_frame=1007 no_neighbour=1008 \
not_vxlan=1009 overlay_no_rx_buffer=1010 overlay_rx_ring_full=1011 truncated=1012 tx_ring_full=1013 \
underlay_no_rx_buffer=1014 underlay_rx_ring_full=1015 wrong_vni=1016
    xdp: pass_not_udp=5 underlay_steered=9
    worker 0: decap 2 encap 21 flooded 22
    worker 1: decap 102 encap 121 flooded 122
"
        );
    }

    #[test]
    fn one_worker_and_unreadable_xdp_counters() {
        let mut one = sample();
        one.workers.truncate(1);
        one.xdp.clear();
        let text = fmt_stats(&one);
        assert!(text.ends_with(" wrong_vni=1016\n    xdp:\n"), "{text}");
        assert!(!text.contains("worker"), "{text}");
        assert!(!text.contains("pmtu_replies"), "{text}");
        one.total.pmtu_replies = 3;
        assert!(fmt_stats(&one).contains("csum_completed 1029  pmtu_replies 3\n"), "{}", fmt_stats(&one));
    }
}
