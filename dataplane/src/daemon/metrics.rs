//! `vxdp run --metrics ADDR:PORT`: the counters of `vxdp stats` and the control plane's
//! state as Prometheus metrics (OpenMetrics text, encoded by `prometheus-client`) on
//! `GET /metrics`.
//!
//! Every scrape takes one [`Sample`] (the same `Stats` the control socket answers
//! `vxdp stats` with, so a scrape and `vxdp stats --json` agree by construction) and
//! renders it; nothing is kept between scrapes. One small HTTP/1.1 responder thread,
//! one connection at a time, each bounded in size and time.
#![forbid(unsafe_code)]

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use vxdp_control::ctl::Stats;

/// The state of a store the daemon follows (Consul today).
#[derive(Clone, Debug, PartialEq)]
pub struct StoreStatus {
    /// `consul`, ...
    pub store: &'static str,
    pub connected: bool,
    /// Seconds since the store's last answer; `None` before the first.
    pub last_sync_age_secs: Option<f64>,
}

/// What one scrape reports.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// As `vxdp stats` reports them.
    pub stats: Stats,
    /// FDB entries (MACs, the flood entry included) by the source that decides them.
    pub fdb_entries: Vec<(&'static str, u64)>,
    /// Distinct remote VTEP addresses in the FDB, and how many have no next hop yet.
    pub remotes: u64,
    pub unresolved: u64,
    pub stores: Vec<StoreStatus>,
}

type Labels = Vec<(&'static str, String)>;

/// The four directions, as (JSON key prefix, `direction` label).
const DIRECTIONS: [(&str, &str); 4] =
    [("underlay_rx", "underlay_rx"), ("decap", "decap"), ("overlay_rx", "overlay_rx"), ("encap", "encap")];

/// The sample in the OpenMetrics text format:
/// - `vxdp_frames_total` / `vxdp_bytes_total` {device, worker, direction}
/// - `vxdp_drops_total` {device, worker, reason}: every drop reason
/// - `vxdp_<counter>_total` {device, worker}: every other worker counter
///   (`flooded`, `learned`, `csum_completed`, ...)
/// - `vxdp_xdp_total` {device, counter}: the XDP programs' counters, express path included
/// - `vxdp_control_refused_total` {device, counter}: what the control plane refused
///   (learning bounds, store values; `vxdp stats`' `control` section)
/// - `vxdp_fdb_entries` {device, source}, `vxdp_remotes`, `vxdp_nexthops_unresolved`
/// - `vxdp_store_connected`, `vxdp_store_last_sync_age_seconds` {device, store}
///
/// Worker counters come from the JSON form of `vxdp stats`, key by key, so a counter
/// added there appears here without a change.
pub fn render(s: &Sample) -> String {
    let dev = s.stats.name.clone();
    let mut reg = Registry::default();
    let frames = Family::<Labels, Counter>::default();
    let bytes = Family::<Labels, Counter>::default();
    let drops = Family::<Labels, Counter>::default();
    reg.register("vxdp_frames", "Frames per direction and worker", frames.clone());
    reg.register("vxdp_bytes", "Bytes per direction and worker", bytes.clone());
    reg.register("vxdp_drops", "Frames dropped, by reason and worker", drops.clone());
    let mut others: std::collections::BTreeMap<String, Family<Labels, Counter>> = Default::default();

    for (i, w) in s.stats.workers.iter().enumerate() {
        let base = |extra: Option<(&'static str, &str)>| {
            let mut l: Labels = vec![("device", dev.clone()), ("worker", i.to_string())];
            l.extend(extra.map(|(k, v)| (k, v.to_string())));
            l
        };
        let Ok(serde_json::Value::Object(m)) = serde_json::to_value(w) else { continue };
        for (key, v) in m {
            let Some(v) = v.as_u64() else { continue };
            if let Some(reason) = key.strip_prefix("drop_") {
                drops.get_or_create(&base(Some(("reason", reason)))).inc_by(v);
                continue;
            }
            let dir = DIRECTIONS.iter().find_map(|(p, label)| {
                let rest = key.strip_prefix(p)?.strip_prefix('_')?;
                Some((rest, *label))
            });
            match dir {
                Some(("frames", label)) => {
                    frames.get_or_create(&base(Some(("direction", label)))).inc_by(v);
                }
                Some(("bytes", label)) => {
                    bytes.get_or_create(&base(Some(("direction", label)))).inc_by(v);
                }
                _ => {
                    others.entry(key).or_default().get_or_create(&base(None)).inc_by(v);
                }
            }
        }
    }
    for (key, fam) in others {
        reg.register(format!("vxdp_{key}"), format!("Worker counter {key}"), fam);
    }

    let xdp = Family::<Labels, Counter>::default();
    reg.register("vxdp_xdp", "XDP program counters (steering and the express path), all CPUs", xdp.clone());
    for (name, v) in &s.stats.xdp {
        xdp.get_or_create(&vec![("device", dev.clone()), ("counter", name.clone())]).inc_by(*v);
    }

    let control = Family::<Labels, Counter>::default();
    reg.register(
        "vxdp_control_refused",
        "What the control plane refused outside the data path (learning bounds, store values)",
        control.clone(),
    );
    for (name, v) in &s.stats.control {
        control.get_or_create(&vec![("device", dev.clone()), ("counter", name.clone())]).inc_by(*v);
    }

    let fdb = Family::<Labels, Gauge>::default();
    reg.register("vxdp_fdb_entries", "FDB entries by the source that decides them", fdb.clone());
    for (source, n) in &s.fdb_entries {
        fdb.get_or_create(&vec![("device", dev.clone()), ("source", source.to_string())]).set(*n as i64);
    }
    let gauge = |reg: &mut Registry, name: &str, help: &str, v: u64| {
        let g = Family::<Labels, Gauge>::default();
        g.get_or_create(&vec![("device", dev.clone())]).set(v as i64);
        reg.register(name, help, g);
    };
    gauge(&mut reg, "vxdp_remotes", "Distinct remote VTEP addresses in the FDB", s.remotes);
    gauge(&mut reg, "vxdp_nexthops_unresolved", "Remote VTEPs without a resolved next hop", s.unresolved);

    let connected = Family::<Labels, Gauge>::default();
    let age = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    reg.register("vxdp_store_connected", "1 while the store answers", connected.clone());
    reg.register("vxdp_store_last_sync_age_seconds", "Seconds since the store's last answer", age.clone());
    for st in &s.stores {
        let l = vec![("device", dev.clone()), ("store", st.store.to_string())];
        connected.get_or_create(&l).set(i64::from(st.connected));
        if let Some(a) = st.last_sync_age_secs {
            age.get_or_create(&l).set(a);
        }
    }

    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

/// The running `/metrics` server; dropping it stops the thread.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `sample()` rendered on `GET /metrics` until dropped.
    pub fn spawn(addr: SocketAddr, sample: Box<dyn Fn() -> Sample + Send>) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new().name("vxdp-metrics".into()).spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        if let Err(e) = serve(conn, &*sample) {
                            log::debug!("metrics: {e}");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => {
                        log::warn!("metrics: accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        })?;
        log::info!("metrics on http://{addr}/metrics");
        Ok(MetricsServer { addr, stop, thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Longest request head read.
const MAX_HEAD: usize = 8192;

/// Answers one request: `GET /metrics` (any query string) with the sample, anything
/// else with 404 or 405.
fn serve(mut conn: TcpStream, sample: &dyn Fn() -> Sample) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => {
            ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", render(&sample()))
        }
        ("GET", _) => ("404 Not Found", "text/plain", "try /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "GET /metrics only\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use vxdp_control::ctl::{Drops, WorkerStats};

    fn sample() -> Sample {
        let w = |n: u64| WorkerStats {
            decap_frames: n,
            decap_bytes: n * 100,
            encap_frames: n + 1,
            flooded: 7,
            csum_completed: 3,
            drops: Drops(BTreeMap::from([("wrong_vni".to_string(), n + 2)])),
            ..Default::default()
        };
        Sample {
            stats: Stats {
                name: "vx0".into(),
                resolved_remotes: 1,
                total: w(30),
                workers: vec![w(10), w(20)],
                xdp: BTreeMap::from([("xdp_express_decap".to_string(), 42)]),
                control: BTreeMap::from([("fdb_full".to_string(), 3)]),
                ..Default::default()
            },
            fdb_entries: vec![("static", 2), ("store", 0), ("learned", 5)],
            remotes: 2,
            unresolved: 1,
            stores: vec![StoreStatus { store: "consul", connected: true, last_sync_age_secs: Some(1.5) }],
        }
    }

    #[test]
    fn renders_every_family_with_device_and_worker() {
        let text = render(&sample());
        for line in [
            r#"vxdp_frames_total{device="vx0",worker="0",direction="decap"} 10"#,
            r#"vxdp_frames_total{device="vx0",worker="1",direction="encap"} 21"#,
            r#"vxdp_bytes_total{device="vx0",worker="1",direction="decap"} 2000"#,
            r#"vxdp_drops_total{device="vx0",worker="1",reason="wrong_vni"} 22"#,
            r#"vxdp_flooded_total{device="vx0",worker="0"} 7"#,
            r#"vxdp_csum_completed_total{device="vx0",worker="1"} 3"#,
            r#"vxdp_xdp_total{device="vx0",counter="xdp_express_decap"} 42"#,
            r#"vxdp_control_refused_total{device="vx0",counter="fdb_full"} 3"#,
            r#"vxdp_fdb_entries{device="vx0",source="learned"} 5"#,
            r#"vxdp_nexthops_unresolved{device="vx0"} 1"#,
            r#"vxdp_store_connected{device="vx0",store="consul"} 1"#,
            r#"vxdp_store_last_sync_age_seconds{device="vx0",store="consul"} 1.5"#,
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        assert!(text.contains("# TYPE vxdp_drops counter"), "{text}");
    }

    #[test]
    fn serves_metrics_and_refuses_other_paths() {
        let server = MetricsServer::spawn("127.0.0.1:0".parse().unwrap(), Box::new(sample)).unwrap();
        let get = |req: &str| {
            let mut c = TcpStream::connect(server.addr()).unwrap();
            c.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        };
        let ok = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.contains("vxdp_frames_total"), "{ok}");
        assert!(get("GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    }
}
