//! A real etcd cluster for tests: `n` members of Debian's `etcd-server` (`/usr/bin/etcd`)
//! as the test's own processes, on loopback or inside a network namespace the test
//! made (call [`EtcdCluster::start_on`] and the methods that talk to the members from a
//! thread inside it: the members inherit its namespace), each with its data dir under
//! a temporary directory and its own flags (never the system service). Members can be killed, stopped and restarted; everything is
//! killed and removed on drop, also when the test fails.
//!
//! [`EtcdCluster::start_with`] serves the clients over TLS with client certificates
//! (`--client-cert-auth`, from a throwaway CA made with `openssl`), and
//! [`EtcdCluster::enable_auth`] turns on etcd's users and roles, as an operator would
//! secure a production cluster. The fixture itself talks to the members on a second,
//! plain listener on the same host, so the code under test is the only TLS client.
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
    /// With TLS: the plain listener the fixture uses (`client` serves TLS only).
    plain: Option<u16>,
    child: Option<Child>,
}

/// How the members serve their clients.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// TLS on the client port, with client certificates required (`--client-cert-auth`).
    pub tls: bool,
    /// `--auth-token-ttl` in seconds (etcd's default is 300).
    pub auth_token_ttl: Option<u32>,
}

/// The certificates of a TLS cluster (PEM files).
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA that signed the members' and the client's certificates.
    pub ca: PathBuf,
    /// A client certificate and key the members accept.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing here: a client trusting only it must refuse the members.
    pub other_ca: PathBuf,
}

impl Pki {
    /// Makes a CA, a server certificate for `host` (an IP address) and a client
    /// certificate under `dir`, with `openssl`.
    fn make(dir: &std::path::Path, host: &str) -> Pki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(dir)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("openssl (apt-get install openssl): {e}"));
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        for ca in ["ca", "other-ca"] {
            let (key, pem, subj) = (format!("{ca}.key"), format!("{ca}.pem"), format!("/CN=vxdp-test-{ca}"));
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
            openssl(&a);
        }
        // clientAuth too: etcd's gRPC gateway dials its own gRPC server with the
        // member's certificate, which `--client-cert-auth` then checks (without it the
        // gateway answers every request "HTTP 503: connection closed").
        let san = format!("subjectAltName=IP:{host}\nextendedKeyUsage=serverAuth,clientAuth\n");
        std::fs::write(dir.join("server.ext"), san).expect("server.ext");
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("client.ext");
        for (who, cn) in [("server", "/CN=etcd"), ("client", "/CN=vxdp")] {
            let (key, csr, pem, ext) =
                (format!("{who}.key"), format!("{who}.csr"), format!("{who}.pem"), format!("{who}.ext"));
            let mut a = vec!["req"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &csr, "-subj", cn]);
            openssl(&a);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ]);
        }
        Pki {
            ca: dir.join("ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            other_ca: dir.join("other-ca.pem"),
        }
    }
}

/// A running etcd cluster.
pub struct EtcdCluster {
    members: Vec<Member>,
    host: String,
    dir: PathBuf,
    token: String,
    options: Options,
    pki: Option<Pki>,
    /// After [`EtcdCluster::enable_auth`]: the root user the fixture authenticates as.
    root: Option<(String, String)>,
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
        EtcdCluster::start_with(n, Options::default())
    }

    /// `n` members on 127.0.0.1, on free ports, served as `options` say.
    pub fn start_with(n: usize, options: Options) -> EtcdCluster {
        let per = if options.tls { 3 } else { 2 };
        let ports = free_ports(Ipv4Addr::LOCALHOST, per * n);
        EtcdCluster::start_at("127.0.0.1", ports, options)
    }

    /// `n` members on `host` (an address of the calling thread's network namespace),
    /// client ports 2379N and peer ports 2380N for member N (1-based).
    pub fn start_on(host: &str, n: usize) -> EtcdCluster {
        let ports = (1..=n as u16).flat_map(|i| [23790 + i, 23800 + i]).collect();
        EtcdCluster::start_at(host, ports, Options::default())
    }

    fn start_at(host: &str, ports: Vec<u16>, options: Options) -> EtcdCluster {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = format!("vxdp-{}-{seq}", std::process::id());
        let dir = std::env::temp_dir().join(format!("vxdp-etcd-{token}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("etcd temp dir");
        let per = if options.tls { 3 } else { 2 };
        let members = ports
            .chunks(per)
            .enumerate()
            .map(|(i, p)| Member {
                name: format!("m{}", i + 1),
                client: p[0],
                peer: p[1],
                plain: p.get(2).copied(),
                child: None,
            })
            .collect();
        let pki = options.tls.then(|| Pki::make(&dir.join("pki"), host));
        let mut c = EtcdCluster { members, host: host.to_string(), dir, token, options, pki, root: None };
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
        let client = format!("{}://{}:{}", self.scheme(), self.host, m.client);
        let listen = match m.plain {
            Some(p) => format!("{client},http://{}:{p}", self.host),
            None => client.clone(),
        };
        let peer = format!("http://{}:{}", self.host, m.peer);
        let log = std::fs::File::create(self.dir.join(format!("{}.log", m.name))).expect("etcd log file");
        let mut cmd = Command::new(ETCD);
        cmd.args(["--name", &m.name])
            .arg("--data-dir")
            .arg(self.dir.join(&m.name))
            .args(["--listen-client-urls", &listen, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &cluster.join(","), "--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token]);
        if let Some(pki) = &self.pki {
            let dir = pki.ca.parent().expect("pki dir");
            cmd.arg("--cert-file").arg(dir.join("server.pem"));
            cmd.arg("--key-file").arg(dir.join("server.key"));
            cmd.arg("--trusted-ca-file").arg(&pki.ca).arg("--client-cert-auth");
        }
        if let Some(ttl) = self.options.auth_token_ttl {
            cmd.args(["--auth-token-ttl", &ttl.to_string()]);
        }
        cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("log")).stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {ETCD}: {e}"));
        self.members[i].child = Some(child);
    }

    fn scheme(&self) -> &'static str {
        if self.pki.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// `http://host:port` (`https://` with TLS) of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| format!("{}://{}:{}", self.scheme(), self.host, m.client)).collect()
    }

    /// The certificates, for a cluster started with TLS.
    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_ref()
    }

    /// Turns on etcd's authentication: a `root` user (password `root_password`), and
    /// `user`/`password` with a role that may read and write only the keys under
    /// `prefix`. The fixture goes on as root.
    pub fn enable_auth(&mut self, root_password: &str, user: &str, password: &str, prefix: &str) {
        let b64 = |s: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
        let mut end = prefix.as_bytes().to_vec();
        *end.last_mut().expect("a prefix") += 1;
        let steps = [
            ("auth/role/add", serde_json::json!({ "name": "root" })),
            ("auth/user/add", serde_json::json!({ "name": "root", "password": root_password })),
            ("auth/user/grant", serde_json::json!({ "user": "root", "role": "root" })),
            ("auth/role/add", serde_json::json!({ "name": user })),
            (
                "auth/role/grant",
                serde_json::json!({ "name": user, "perm": {
                    "permType": "READWRITE", "key": b64(prefix.as_bytes()), "range_end": b64(&end) } }),
            ),
            ("auth/user/add", serde_json::json!({ "name": user, "password": password })),
            ("auth/user/grant", serde_json::json!({ "user": user, "role": user })),
            ("auth/enable", serde_json::json!({})),
        ];
        for (path, body) in steps {
            let ok = (0..self.members.len()).any(|i| self.post(i, path, &body.to_string()).is_some());
            assert!(ok, "etcd {path} {body}: no member took it");
        }
        self.root = Some(("root".into(), root_password.into()));
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
        let auth = match &self.root {
            Some((name, password)) if path != "auth/authenticate" => {
                let body = serde_json::json!({ "name": name, "password": password }).to_string();
                let token = self.post(i, "auth/authenticate", &body)?["token"].as_str()?.to_string();
                format!("Authorization: {token}\r\n")
            }
            _ => String::new(),
        };
        let m = &self.members[i];
        m.child.as_ref()?;
        let addr = format!("{}:{}", self.host, m.plain.unwrap_or(m.client)).parse().ok()?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let req = format!(
            "POST /v3/{path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
