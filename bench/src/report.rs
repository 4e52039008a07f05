//! Results of a [`crate::suite`] run as a text table, JSON and a small hand-written SVG
//! bar chart (Mpps per row: medium, vxdp, kernel).

use crate::headline::{Headline, SWEEP};
use crate::suite::{Dut, Measurement, Row};
use std::fmt::Write as _;

fn lat(m: &Measurement) -> String {
    if m.error.is_some() || m.received == 0 {
        return "-".into();
    }
    format!("{:.0}/{:.0}/{:.0}", m.p50_us, m.p99_us, m.p999_us)
}

/// The table printed at the end of a run (Markdown, so it pastes into BENCHMARKS.md).
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("| dir | inner B | flows | wk | medium Mpps | vxdp Mpps | vxdp Gbit/s | vxdp loss | vxdp p50/p99/p99.9 µs | vxdp ns/pkt | kernel Mpps | kernel Gbit/s | kernel loss | kernel p50/p99/p99.9 µs | kernel ns/pkt | vxdp/kernel | vxdp/medium | port layout Mpps | port/kernel |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let medium = r.medium.as_ref().map_or("-".into(), |m| format!("{:.3}", m.mpps));
        let of_medium = r.of_medium().map_or("-".into(), |x| format!("{:.0}%", x * 100.0));
        let port = r.port.as_ref().map_or("-".into(), |m| format!("{:.3}", m.mpps));
        let port_ratio = r.port_ratio().map_or("-".into(), |x| format!("{x:.2}x"));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.3} | {:.2} | {:.1}% | {} | {:.0} | {:.3} | {:.2} | {:.1}% | {} | {:.0} | {:.2}x | {} | {} | {} |",
            r.direction,
            r.size,
            r.flows,
            r.workers,
            medium,
            r.vxdp.mpps,
            r.vxdp.gbps,
            r.vxdp.loss * 100.0,
            lat(&r.vxdp),
            r.vxdp.cpu_ns_per_pkt,
            r.kernel.mpps,
            r.kernel.gbps,
            r.kernel.loss * 100.0,
            lat(&r.kernel),
            r.kernel.cpu_ns_per_pkt,
            r.ratio(),
            of_medium,
            port,
            port_ratio
        );
    }
    s
}

fn measurement_json(m: &Measurement) -> serde_json::Value {
    serde_json::json!({
        "mpps": m.mpps,
        "gbps_inner": m.gbps,
        "loss": m.loss,
        "sent": m.sent,
        "received": m.received,
        "reordered": m.reordered,
        "cpu_busy": m.cpu_busy,
        "cpu_ns_per_pkt": m.cpu_ns_per_pkt,
        "dut_cpu_ns_per_pkt": m.dut_ns_per_pkt,
        "latency": {
            "offered_mpps": m.lat_rate_mpps,
            "loss": m.lat_loss,
            "p50_us": m.p50_us,
            "p99_us": m.p99_us,
            "p999_us": m.p999_us,
        },
        "error": m.error,
    })
}

/// The one-core tables: the rows, the overload sweep and the idle row, under a
/// header that states the placement.
pub fn headline_table(h: &Headline, placement: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "One DUT core. {placement}\n");
    s.push_str("| dir | inner B | DUT | Mpps | Gbit/s | loss | peak Mpps | p50/p99/p99.9 µs at 50% of peak | ns/frame on the DUT core | peak / kernel's |\n");
    s.push_str("|---|---:|---|---:|---:|---:|---:|---|---:|---:|\n");
    for r in &h.rows {
        let kernel = h.row(r.direction, r.size, Dut::Kernel).map(|k| k.peak_mpps).filter(|k| *k > 0.0);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} | {:.2} | {:.1}% | {:.3} | {} | {:.0} | {} |",
            r.direction,
            r.size,
            r.dut.label(),
            r.m.mpps,
            r.m.gbps,
            r.m.loss * 100.0,
            r.peak_mpps,
            lat(&r.m),
            r.m.dut_ns_per_pkt,
            kernel.map_or("-".into(), |k| format!("{:.2}x", r.peak_mpps / k)),
        );
    }
    if !h.sweeps.is_empty() {
        s.push_str("\nOverload sweep (64 B): goodput Mpps at an offered load of k x the DUT's own peak (what the generator sent, Mpps, in brackets; it sends no faster than its maximum).\n\n");
        s.push_str("| dir | DUT | peak Mpps |");
        for k in SWEEP {
            let _ = write!(s, " {k}x |");
        }
        s.push_str(" at 2x: % of peak | at 2x: ingress NAPI threads / workers, % of the DUT core |\n|---|---|---:|");
        for _ in SWEEP {
            s.push_str("---:|");
        }
        s.push_str("---:|---:|\n");
        for w in &h.sweeps {
            let _ = write!(s, "| {} | {} | {:.3} |", w.direction, w.dut.label(), w.peak_mpps);
            for k in SWEEP {
                match w.at(k) {
                    Some(p) => {
                        let _ = write!(s, " {:.3} ({:.3}) |", p.goodput_mpps, p.offered_mpps);
                    }
                    None => s.push_str(" - |"),
                }
            }
            let at2 = w.at(2.0).filter(|_| w.peak_mpps > 0.0).map(|p| p.goodput_mpps / w.peak_mpps);
            let _ = writeln!(
                s,
                " {} | {:.0}% / {:.0}% |",
                at2.map_or("-".into(), |x| format!("{:.0}%", x * 100.0)),
                w.napi_share_2x * 100.0,
                w.worker_share_2x * 100.0
            );
        }
    }
    if !h.idle.is_empty() {
        s.push_str("\nIdle (no traffic): busy fraction of the DUT's core, and of a core per vxdp worker thread.\n\n");
        s.push_str("| DUT | DUT core busy | per worker |\n|---|---:|---|\n");
        for i in &h.idle {
            let w = if i.workers.is_empty() {
                "-".to_string()
            } else {
                i.workers.iter().map(|w| format!("{:.2}%", w * 100.0)).collect::<Vec<_>>().join(", ")
            };
            let _ = writeln!(s, "| {} | {:.2}% | {} |", i.dut.label(), i.dut_core * 100.0, w);
        }
    }
    s
}

/// The one-core figures as JSON.
pub fn headline_json(h: &Headline) -> serde_json::Value {
    let rows: Vec<_> = h
        .rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "direction": r.direction.to_string(),
                "inner_size": r.size,
                "flows": crate::headline::FLOWS,
                "dut": r.dut.to_string(),
                "label": r.dut.label(),
                "peak_mpps": r.peak_mpps,
                "generator_mpps": r.gen_mpps,
                "full_load": measurement_json(&r.m),
            })
        })
        .collect();
    let sweeps: Vec<_> = h
        .sweeps
        .iter()
        .map(|w| {
            serde_json::json!({
                "direction": w.direction.to_string(),
                "dut": w.dut.to_string(),
                "peak_mpps": w.peak_mpps,
                "napi_threads_share_at_2x": w.napi_share_2x,
                "workers_share_at_2x": w.worker_share_2x,
                "points": w.points.iter().map(|p| serde_json::json!({
                    "factor": p.factor, "offered_mpps": p.offered_mpps, "goodput_mpps": p.goodput_mpps,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let idle: Vec<_> = h
        .idle
        .iter()
        .map(
            |i| serde_json::json!({ "dut": i.dut.to_string(), "dut_core_busy": i.dut_core, "workers_busy": i.workers }),
        )
        .collect();
    serde_json::json!({ "rows": rows, "sweeps": sweeps, "idle": idle })
}

/// Every figure of every row, plus a description of the machine and the run.
pub fn json(rows: &[Row], meta: serde_json::Value) -> serde_json::Value {
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "direction": r.direction.to_string(),
                "inner_size": r.size,
                "flows": r.flows,
                "workers": r.workers,
                "medium": r.medium.as_ref().map(measurement_json),
                "vxdp": measurement_json(&r.vxdp),
                "kernel": measurement_json(&r.kernel),
                "vxdp_over_kernel": r.ratio(),
                "vxdp_over_medium": r.of_medium(),
                "vxdp_port_layout": r.port.as_ref().map(measurement_json),
                "vxdp_port_layout_over_kernel": r.port_ratio(),
            })
        })
        .collect();
    serde_json::json!({ "meta": meta, "rows": rows })
}

/// A grouped bar chart: one group per row, bars for medium (grey), vxdp (blue) and
/// kernel (orange), height in Mpps.
pub fn svg(rows: &[Row], title: &str) -> String {
    const BAR: f64 = 9.0;
    const GAP: f64 = 8.0;
    const H: f64 = 260.0;
    const TOP: f64 = 40.0;
    const LEFT: f64 = 50.0;
    let group = 3.0 * BAR + GAP;
    let width = LEFT + rows.len() as f64 * group + 20.0;
    let height = TOP + H + 110.0;
    let max = rows
        .iter()
        .flat_map(|r| [r.medium.as_ref().map_or(0.0, |m| m.mpps), r.vxdp.mpps, r.kernel.mpps])
        .fold(0.0f64, f64::max)
        .max(0.001);
    let scale = H / max;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="10">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{LEFT}" y="16" font-size="13">{}</text>"#, escape(title));
    for (i, (name, color)) in
        [("medium (AF_XDP, no VXLAN)", "#999"), ("vxdp", "#1f77b4"), ("kernel vxlan", "#ff7f0e")].iter().enumerate()
    {
        let x = LEFT + i as f64 * 170.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="24" width="10" height="10" fill="{color}"/><text x="{}" y="33">{name}</text>"#,
            x + 14.0
        );
    }
    // Y axis with 4 ticks.
    for t in 0..=4 {
        let v = max * t as f64 / 4.0;
        let y = TOP + H - v * scale;
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{:.0}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.2}</text>"##,
            width - 20.0,
            LEFT - 4.0,
            y + 3.0
        );
    }
    let _ =
        writeln!(s, r#"<text x="12" y="{}" transform="rotate(-90 12 {})">Mpps</text>"#, TOP + H / 2.0, TOP + H / 2.0);
    for (i, r) in rows.iter().enumerate() {
        let x0 = LEFT + i as f64 * group + GAP / 2.0;
        for (j, (v, color)) in
            [(r.medium.as_ref().map_or(0.0, |m| m.mpps), "#999"), (r.vxdp.mpps, "#1f77b4"), (r.kernel.mpps, "#ff7f0e")]
                .iter()
                .enumerate()
        {
            let h = v * scale;
            let _ = writeln!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{BAR}" height="{h:.1}" fill="{color}"><title>{v:.3} Mpps</title></rect>"#,
                x0 + j as f64 * BAR,
                TOP + H - h
            );
        }
        let label = format!("{} {}B {}f w{}", r.direction, r.size, r.flows, r.workers);
        let lx = x0 + 1.5 * BAR;
        let ly = TOP + H + 6.0;
        let _ = writeln!(
            s,
            r#"<text x="{lx:.1}" y="{ly:.1}" transform="rotate(60 {lx:.1} {ly:.1})">{}</text>"#,
            escape(&label)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
