//! The text form of `vxdp stats`.

/// Text form of `vxdp stats`: totals, then per-worker lines for non-zero counters.
pub fn fmt_stats(v: &serde_json::Value) -> String {
    let mut out = String::new();
    let name = v["name"].as_str().unwrap_or("?");
    out.push_str(&format!("{name}:\n"));
    let t = &v["total"];
    let g = |k: &str| t[k].as_u64().unwrap_or(0);
    out.push_str(&format!("    {:<18} {:>14} {:>18}\n", "", "frames", "bytes"));
    out.push_str(&format!(
        "    {:<18} {:>14} {:>18}\n",
        "underlay rx",
        g("underlay_rx_frames"),
        g("underlay_rx_bytes")
    ));
    out.push_str(&format!("    {:<18} {:>14} {:>18}\n", "decap -> overlay", g("decap_frames"), g("decap_bytes")));
    out.push_str(&format!("    {:<18} {:>14} {:>18}\n", "overlay rx", g("overlay_rx_frames"), g("overlay_rx_bytes")));
    out.push_str(&format!("    {:<18} {:>14} {:>18}\n", "encap -> underlay", g("encap_frames"), g("encap_bytes")));
    out.push_str(&format!(
        "    flooded {}  learned {}  learn_queue_full {}\n",
        g("flooded"),
        g("learned"),
        g("learn_queue_full")
    ));
    out.push_str("    drops:");
    if let Some(m) = t.as_object() {
        for (k, val) in m.iter().filter(|(k, _)| k.starts_with("drop_")) {
            out.push_str(&format!(" {}={}", &k[5..], val));
        }
    }
    out.push('\n');
    if let Some(x) = v["xdp"].as_object() {
        out.push_str("    xdp:");
        for (k, val) in x {
            out.push_str(&format!(" {}={}", k.trim_start_matches("xdp_"), val));
        }
        out.push('\n');
    }
    if let Some(ws) = v["workers"].as_array() {
        if ws.len() > 1 {
            for (i, w) in ws.iter().enumerate() {
                let f = |k: &str| w[k].as_u64().unwrap_or(0);
                out.push_str(&format!(
                    "    worker {i}: decap {} encap {} flooded {}\n",
                    f("decap_frames"),
                    f("encap_frames"),
                    f("flooded")
                ));
            }
        }
    }
    out
}
