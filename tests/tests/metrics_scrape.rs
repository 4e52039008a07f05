//! `vxdp run --metrics`: after overlay traffic to a kernel vxlan peer, a scrape of
//! `/metrics` (from inside the daemon's namespace) reports what `vxdp stats --json`
//! reports: every worker counter and drop reason per worker, every XDP counter; and
//! the control plane's state: FDB entries by source, and a remote whose next hop
//! cannot resolve (192.0.2.99 is nobody) as `vxdp_nexthops_unresolved 1`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use vxdp_tests::traffic::{ping, random_bytes, tcp_transfer, TCP_PORT};
use vxdp_tests::{in_netns, require_root, serial, Side, Topology, VtepKind};

const METRICS: &str = "127.0.0.1:9477";

/// `GET /metrics` from inside `ns`: the samples, by series (`name{labels}`).
fn scrape(ns: &vxdp_tests::Netns) -> BTreeMap<String, f64> {
    let text = in_netns(ns, || {
        let mut c = TcpStream::connect_timeout(&METRICS.parse().unwrap(), Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: vxdp\r\n\r\n")?;
        let mut out = String::new();
        c.read_to_string(&mut out)?;
        Ok::<_, std::io::Error>(out)
    })
    .expect("scrape /metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let body = text.split_once("\r\n\r\n").expect("HTTP body").1;
    assert!(body.trim_end().ends_with("# EOF"), "OpenMetrics ends with # EOF: {body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, v) = l.rsplit_once(' ').expect("series value");
            (series.to_string(), v.parse().unwrap_or_else(|_| panic!("value of {l}")))
        })
        .collect()
}

/// The series a `vxdp stats --json` worker key becomes (see `daemon::metrics::render`).
fn series(worker: usize, key: &str) -> String {
    let base = format!("device=\"vx0\",worker=\"{worker}\"");
    if let Some(reason) = key.strip_prefix("drop_") {
        return format!("vxdp_drops_total{{{base},reason=\"{reason}\"}}");
    }
    for dir in ["underlay_rx", "decap", "overlay_rx", "encap"] {
        for unit in ["frames", "bytes"] {
            if key == format!("{dir}_{unit}") {
                return format!("vxdp_{unit}_total{{{base},direction=\"{dir}\"}}");
            }
        }
    }
    format!("vxdp_{key}_total{{{base}}}")
}

#[test]
fn metrics_scrape() {
    if !require_root("metrics_scrape") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep_with(Side::A, VtepKind::Vxdp, &["--metrics", METRICS, "--remote", "192.0.2.99"]);
    topo.add_vtep(Side::B, VtepKind::Kernel);
    ping(&topo.a.container, topo.b.overlay_ip);
    tcp_transfer(&topo.a.container, &topo.b.container, topo.b.overlay_ip, TCP_PORT, &random_bytes(1 << 20));
    tcp_transfer(&topo.b.container, &topo.a.container, topo.a.overlay_ip, TCP_PORT, &random_bytes(1 << 20));

    // Counters may still move a little: each metric lies between two reads of stats.
    let before = topo.a.daemon().stats();
    let m = scrape(&topo.a.ns);
    let after = topo.a.daemon().stats();
    let workers = before.0["workers"].as_array().expect("workers").len();
    assert!(workers >= 1);
    let mut compared = 0;
    for w in 0..workers {
        for (key, v0) in before.0["workers"][w].as_object().expect("worker object") {
            let (v0, v1) = (v0.as_u64().unwrap() as f64, after.0["workers"][w][key].as_u64().unwrap() as f64);
            let s = series(w, key);
            let got = *m.get(&s).unwrap_or_else(|| panic!("no {s} in the scrape: {m:?}"));
            assert!(v0 <= got && got <= v1, "{s} = {got}, vxdp stats says {v0}..{v1}");
            compared += 1;
        }
    }
    for (key, v0) in before.0["xdp"].as_object().expect("xdp object") {
        let (v0, v1) = (v0.as_u64().unwrap() as f64, after.0["xdp"][key].as_u64().unwrap() as f64);
        let s = format!("vxdp_xdp_total{{device=\"vx0\",counter=\"{key}\"}}");
        let got = *m.get(&s).unwrap_or_else(|| panic!("no {s} in the scrape"));
        assert!(v0 <= got && got <= v1, "{s} = {got}, vxdp stats says {v0}..{v1}");
        compared += 1;
    }
    assert!(compared > 40, "compared only {compared} series");
    assert!(m[&series(0, "decap_frames")] + m[&series(0, "encap_frames")] > 0.0, "no traffic counted: {m:?}");

    // The flood entry (static) and the peer container's MAC (learned).
    assert_eq!(m["vxdp_fdb_entries{device=\"vx0\",source=\"static\"}"], 1.0);
    assert!(m["vxdp_fdb_entries{device=\"vx0\",source=\"learned\"}"] >= 1.0, "{m:?}");
    assert_eq!(m["vxdp_remotes{device=\"vx0\"}"], 2.0);
    assert_eq!(m["vxdp_nexthops_unresolved{device=\"vx0\"}"], 1.0, "192.0.2.99 has no neighbour");
}
