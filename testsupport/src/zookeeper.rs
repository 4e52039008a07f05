//! A real ZooKeeper ensemble for tests: `n` servers of Debian's `zookeeper` package
//! (ZooKeeper 3.8, `/usr/share/java/zookeeper.jar`) run as the test's own JVMs
//! (`QuorumPeerMain` with its own `zoo.cfg`, never the system service or `zkServer.sh`,
//! whose environment is wired to `/etc/zookeeper`), on loopback, each with its data
//! dir under a temporary directory; or inside a network namespace the test made
//! ([`ZkEnsemble::start_on`]). A 3-server ensemble fits this machine (2 cores,
//! ~75 MB RSS per server with `-Xmx128m -XX:+UseSerialGC`; leader elected ~1.6 s after
//! launch). Servers can be SIGKILLed, stopped and restarted; everything is killed and
//! removed on drop, also when the test fails.
//!
//! Pitfalls handled here: the admin server (Jetty on 0.0.0.0:8080 by default) is off;
//! the classpath carries a log4j binding and a `log4j.properties`, or ZooKeeper logs
//! nothing; `tickTime` is 500 ms so sessions may be as short as 1 s (tests of expiry).
//!
//! `cargo xtask setup` (so `cargo xtask test` and CI) installs `zookeeper` when it is
//! missing.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// ZooKeeper's jar, from the `zookeeper` package (its manifest names the other jars).
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const LOG4J: [&str; 2] = ["/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar"];

/// Whether ZooKeeper and Java are installed. When not, says how to install them and
/// returns false (the test skips), or fails the test under `VXDP_REQUIRE_ROOT=1` (CI,
/// where `cargo xtask setup` installed them).
pub fn available(test: &str) -> bool {
    let java = Command::new("java").arg("-version").stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if java && std::path::Path::new(ZOOKEEPER_JAR).exists() && LOG4J.iter().all(|j| std::path::Path::new(j).exists()) {
        return true;
    }
    let msg = format!("{test}: ZooKeeper is missing (apt-get install zookeeper, or run `cargo xtask setup`)");
    if std::env::var("VXDP_REQUIRE_ROOT").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("{msg}; skipped");
    false
}

struct Server {
    client: u16,
    quorum: u16,
    election: u16,
    child: Option<Child>,
}

/// A running ZooKeeper ensemble (or one standalone server).
pub struct ZkEnsemble {
    servers: Vec<Server>,
    host: Ipv4Addr,
    dir: PathBuf,
}

fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).expect("bind a free port"))
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

impl ZkEnsemble {
    /// `n` servers on 127.0.0.1, on free ports (`n == 1`: standalone), with a leader
    /// elected and every server answering.
    pub fn start(n: usize) -> ZkEnsemble {
        ZkEnsemble::start_at(Ipv4Addr::LOCALHOST, free_ports(3 * n))
    }

    /// `n` servers on `host` (an address of the calling thread's network namespace;
    /// call the methods that talk to the servers from a thread inside it), client ports
    /// 2181N, quorum ports 2888N and election ports 3888N for server N (1-based).
    pub fn start_on(host: &str, n: usize) -> ZkEnsemble {
        let host = host.parse().expect("an IPv4 address");
        let ports = (1..=n as u16).flat_map(|i| [21810 + i, 28880 + i, 38880 + i]).collect();
        ZkEnsemble::start_at(host, ports)
    }

    fn start_at(host: Ipv4Addr, ports: Vec<u16>) -> ZkEnsemble {
        let n = ports.len() / 3;
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vxdp-zk-{}-{seq}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("zk temp dir");
        std::fs::write(
            dir.join("log4j.properties"),
            "log4j.rootLogger=INFO, CONSOLE\n\
             log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n\
             log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n\
             log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n\n",
        )
        .expect("log4j.properties");
        let servers: Vec<Server> =
            ports.chunks(3).map(|p| Server { client: p[0], quorum: p[1], election: p[2], child: None }).collect();
        let mut z = ZkEnsemble { servers, host, dir };
        for i in 0..n {
            z.write_config(i);
        }
        for i in 0..n {
            z.spawn(i);
        }
        z.wait_healthy(Duration::from_secs(30));
        z
    }

    fn server_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("s{}", i + 1))
    }

    fn write_config(&self, i: usize) {
        let d = self.server_dir(i);
        std::fs::create_dir_all(d.join("data")).expect("zk data dir");
        let mut cfg = format!(
            "tickTime=500\ninitLimit=20\nsyncLimit=10\nminSessionTimeout=1000\nmaxSessionTimeout=60000\n\
             dataDir={}\nclientPortAddress={}\nclientPort={}\nadmin.enableServer=false\n\
             4lw.commands.whitelist=ruok,srvr,mntr\nznode.container.checkIntervalMs=1000\n",
            d.join("data").display(),
            self.host,
            self.servers[i].client
        );
        if self.servers.len() > 1 {
            std::fs::write(d.join("data/myid"), format!("{}\n", i + 1)).expect("myid");
            for (j, s) in self.servers.iter().enumerate() {
                cfg.push_str(&format!("server.{}={}:{}:{}\n", j + 1, self.host, s.quorum, s.election));
            }
        }
        std::fs::write(d.join("zoo.cfg"), cfg).expect("zoo.cfg");
    }

    fn spawn(&mut self, i: usize) {
        let d = self.server_dir(i);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(d.join("zk.log")).expect("zk log");
        let cp = format!("{}:{ZOOKEEPER_JAR}:{}", self.dir.display(), LOG4J.join(":"));
        let child = Command::new("java")
            .args(["-Xmx128m", "-XX:+UseSerialGC", "-cp", &cp])
            .arg(format!("-Dzookeeper.log.dir={}", d.display()))
            .arg(format!("-Dlog4j.configuration=file:{}", self.dir.join("log4j.properties").display()))
            .arg("-Dzookeeper.jmx.log4j.disable=true")
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(d.join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting ZooKeeper (java): {e}"));
        self.servers[i].child = Some(child);
    }

    /// `host:port` of every server's client port.
    pub fn endpoints(&self) -> Vec<String> {
        self.servers.iter().map(|s| format!("{}:{}", self.host, s.client)).collect()
    }

    /// The `zk://h1:p1,h2:p2,...` URL of the ensemble.
    pub fn url(&self) -> String {
        format!("zk://{}", self.endpoints().join(","))
    }

    /// Kills server `i` (0-based) with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops server `i` with SIGTERM and waits for it.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].child.take() {
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

    /// Starts server `i` again on its data dir (killing it first if it runs).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.servers[i].child.is_some()
    }

    /// A four-letter word's answer from server `i`, or `None`.
    fn four(&self, i: usize, word: &str) -> Option<String> {
        self.servers[i].child.as_ref()?;
        let addr = SocketAddrV4::new(self.host, self.servers[i].client).into();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(word.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// `leader`, `follower` or `standalone`, as server `i` says (`srvr`).
    pub fn mode(&self, i: usize) -> Option<String> {
        let srvr = self.four(i, "srvr")?;
        srvr.lines().find_map(|l| l.strip_prefix("Mode: ")).map(|m| m.trim().to_string())
    }

    /// The index of the leader (the standalone server of a one-server ensemble).
    pub fn leader(&self) -> Option<usize> {
        (0..self.servers.len()).find(|i| matches!(self.mode(*i).as_deref(), Some("leader" | "standalone")))
    }

    /// Waits until every running server serves (leader or follower) and one leads.
    pub fn wait_healthy(&self, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            let up = (0..self.servers.len()).filter(|i| self.is_running(*i)).all(|i| self.mode(i).is_some());
            if up && self.leader().is_some() {
                return;
            }
            if Instant::now() > end {
                let logs: Vec<String> = (0..self.servers.len())
                    .map(|i| std::fs::read_to_string(self.server_dir(i).join("zk.log")).unwrap_or_default())
                    .map(|l| l.lines().rev().take(5).collect::<Vec<_>>().join("\n"))
                    .collect();
                panic!("ZooKeeper ensemble not healthy after {limit:?}; last log lines:\n{}", logs.join("\n--\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
