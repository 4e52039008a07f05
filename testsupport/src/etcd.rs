//! A real etcd cluster for tests: `n` members of Debian's `etcd-server` (`/usr/bin/etcd`)
//! as the test's own processes, on loopback or inside a network namespace the test
//! made (call [`EtcdCluster::start_on`] and the methods that talk to the members from a
//! thread inside it: the members inherit its namespace), each with its data dir under
//! a temporary directory and its own flags (never the system service). Members can be killed, stopped and restarted; everything is
//! killed and removed on drop, also when the test fails.
//!
//! `cargo xtask setup` (so `cargo xtask test` and CI) installs `etcd-server` when it is
//! missing. Each member preallocates a 64 MB WAL: plan ~130 MB of disk per member.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The etcd binary.
pub const ETCD: &str = "/usr/bin/etcd";

/// Whether etcd is installed. When not, says how to install it and returns false (the
/// test skips), or fails the test under `VXDP_REQUIRE_ROOT=1` (CI, where `cargo xtask
/// setup` installed it).
pub fn available(test: &str) -> bool {
    if std::path::Path::new(ETCD).exists() {
        return true;
    }
    let msg = format!("{test}: {ETCD} is missing (apt-get install etcd-server, or run `cargo xtask setup`)");
    if std::env::var("VXDP_REQUIRE_ROOT").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("{msg}; skipped");
    false
}

struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// A running etcd cluster.
pub struct EtcdCluster {
    members: Vec<Member>,
    host: String,
    dir: PathBuf,
    token: String,
}

/// Free TCP ports on `host`, found by binding to port 0 (the kernel's choice).
fn free_ports(host: Ipv4Addr, n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind(SocketAddrV4::new(host, 0)).expect("bind a free port")).collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

impl EtcdCluster {
    /// `n` members on 127.0.0.1, on free ports.
    pub fn start(n: usize) -> EtcdCluster {
        let ports = free_ports(Ipv4Addr::LOCALHOST, 2 * n);
        EtcdCluster::start_at("127.0.0.1", ports)
    }

    /// `n` members on `host` (an address of the calling thread's network namespace),
    /// client ports 2379N and peer ports 2380N for member N (1-based).
    pub fn start_on(host: &str, n: usize) -> EtcdCluster {
        let ports = (1..=n as u16).flat_map(|i| [23790 + i, 23800 + i]).collect();
        EtcdCluster::start_at(host, ports)
    }

    fn start_at(host: &str, ports: Vec<u16>) -> EtcdCluster {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = format!("vxdp-{}-{seq}", std::process::id());
        let dir = std::env::temp_dir().join(format!("vxdp-etcd-{token}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("etcd temp dir");
        let members = ports
            .chunks(2)
            .enumerate()
            .map(|(i, p)| Member { name: format!("m{}", i + 1), client: p[0], peer: p[1], child: None })
            .collect();
        let mut c = EtcdCluster { members, host: host.to_string(), dir, token };
        for i in 0..c.members.len() {
            c.spawn(i, "new");
        }
        c.wait_healthy(Duration::from_secs(20));
        c
    }

    fn spawn(&mut self, i: usize, state: &str) {
        let cluster: Vec<String> =
            self.members.iter().map(|m| format!("{}=http://{}:{}", m.name, self.host, m.peer)).collect();
        let m = &self.members[i];
        let client = format!("http://{}:{}", self.host, m.client);
        let peer = format!("http://{}:{}", self.host, m.peer);
        let log = std::fs::File::create(self.dir.join(format!("{}.log", m.name))).expect("etcd log file");
        let mut cmd = Command::new(ETCD);
        cmd.args(["--name", &m.name])
            .arg("--data-dir")
            .arg(self.dir.join(&m.name))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &cluster.join(","), "--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {ETCD}: {e}"));
        self.members[i].child = Some(child);
    }

    /// `http://host:port` of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| format!("http://{}:{}", self.host, m.client)).collect()
    }

    /// The `etcd://h1:p1,h2:p2,...` URL of the cluster.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.members.iter().map(|m| format!("{}:{}", self.host, m.client)).collect();
        format!("etcd://{}", hosts.join(","))
    }

    /// Kills member `i` (0-based) with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops member `i` with SIGTERM and waits for it.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            // SAFETY: kill(2) on our own child's pid, which it still is (not reaped yet).
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts member `i` on its data dir (from a thread in the cluster's namespace).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i, "existing");
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].child.is_some()
    }

    /// A POST to member `i`'s JSON gateway, answered within 2 s, or `None`.
    fn post(&self, i: usize, path: &str, body: &str) -> Option<serde_json::Value> {
        let m = &self.members[i];
        m.child.as_ref()?;
        let addr = format!("{}:{}", self.host, m.client).parse().ok()?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let req = format!(
            "POST /v3/{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        std::io::Write::write_all(&mut s, req.as_bytes()).ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let (head, body) = resp.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") {
            return None;
        }
        serde_json::from_str(body.trim()).ok()
    }

    /// The index of the leader, as the running members say.
    pub fn leader(&self) -> Option<usize> {
        for i in 0..self.members.len() {
            let Some(s) = self.post(i, "maintenance/status", "{}") else { continue };
            let leader = s["leader"].as_str()?.to_string();
            if leader == "0" {
                continue;
            }
            if s["header"]["member_id"].as_str() == Some(leader.as_str()) {
                return Some(i);
            }
            for j in 0..self.members.len() {
                let Some(o) = self.post(j, "maintenance/status", "{}") else { continue };
                if o["header"]["member_id"].as_str() == Some(leader.as_str()) {
                    return Some(j);
                }
            }
        }
        None
    }

    /// Waits until every running member answers and a leader is elected.
    pub fn wait_healthy(&self, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            let up = (0..self.members.len())
                .filter(|i| self.members[*i].child.is_some())
                .all(|i| self.post(i, "kv/range", r#"{"key":"AA=="}"#).is_some());
            if up && self.leader().is_some() {
                return;
            }
            if Instant::now() > end {
                let logs: Vec<String> = self
                    .members
                    .iter()
                    .map(|m| std::fs::read_to_string(self.dir.join(format!("{}.log", m.name))).unwrap_or_default())
                    .map(|l| l.lines().rev().take(5).collect::<Vec<_>>().join("\n"))
                    .collect();
                panic!("etcd cluster not healthy after {limit:?}; last log lines:\n{}", logs.join("\n--\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
