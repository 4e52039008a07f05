//! An in-process Consul HTTP API server for tests, written
//! against Consul's documented semantics, std only so it is easy to audit:
//!
//! - KV: `GET /v1/kv/<key>` with `recurse`, `keys`, `separator`, blocking `index` and
//!   `wait`; 404 with `X-Consul-Index` when nothing matches; values base64 in JSON with
//!   `CreateIndex`, `ModifyIndex`, `LockIndex`, `Flags`, `Session`. `PUT` with `cas`
//!   (0 = create only), `acquire`, `release`, `flags`, answering `true`/`false`.
//!   `DELETE` with `recurse` and `cas`.
//! - Indexes: one Raft-like counter bumped by every write; a listing's index is the
//!   highest `ModifyIndex` or delete (tombstone) index under its prefix, or the store's
//!   index when the prefix never had keys. A blocking query returns when that index
//!   passes the one given, or after `wait` (default 5 min, capped at 10).
//! - Sessions: `create` (`TTL` 10s–86400s, `Behavior` release|delete, `LockDelay`),
//!   `renew` (404 when gone), `destroy`, `info`, `list`; a session past its TTL is
//!   invalidated and its locks released or its keys deleted per its behaviour.
//!   Acquiring with an unknown session answers 500, like Consul. The lock delay
//!   (default 15 s, at most 60 s; a bare number below 1000 is seconds, otherwise
//!   nanoseconds) applies to every key an invalidated session held: acquiring it answers
//!   `false` until the delay has passed. Consul invalidates a session between TTL and
//!   2×TTL after its last renewal; this server does it at TTL, the earliest allowed.
//! - ACL: with [`TestConsul::require_token`], requests without that `X-Consul-Token`
//!   get 403. `dc` other than `dc1` gets 500 "No path to datacenter".
//!
//! Faults: [`TestConsul::set_down`] (the listener closes: connection refused, open
//! connections are dropped), [`TestConsul::fail_next`] (HTTP 500s),
//! [`TestConsul::set_hang`] (KV reads never answer), [`TestConsul::restore_backwards`]
//! (a snapshot restore: indexes go back to small numbers).
#![forbid(unsafe_code)]

use base64::Engine;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Consul's default and largest session lock delay.
const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);
const MAX_LOCK_DELAY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    flags: u64,
    create_index: u64,
    modify_index: u64,
    lock_index: u64,
    session: Option<String>,
}

#[derive(Debug, Clone)]
struct Session {
    name: String,
    ttl: Option<Duration>,
    delete: bool,
    lock_delay: Duration,
    expires: Option<Instant>,
    create_index: u64,
}

#[derive(Default)]
struct State {
    index: u64,
    kv: BTreeMap<String, Entry>,
    tombstones: BTreeMap<String, u64>,
    sessions: HashMap<String, Session>,
    next_session: u64,
    /// Key → until when `acquire` is refused (lock delay after an invalidation).
    lock_delays: HashMap<String, Instant>,
}

impl State {
    fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    fn prefix_index(&self, prefix: &str) -> u64 {
        let kv =
            self.kv.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix)).map(|(_, e)| e.modify_index);
        let tomb =
            self.tombstones.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix)).map(|(_, i)| *i);
        kv.chain(tomb).max().unwrap_or(self.index).max(1)
    }

    fn delete_key(&mut self, key: &str, at: u64) {
        if self.kv.remove(key).is_some() {
            self.tombstones.insert(key.to_string(), at);
        }
    }

    fn invalidate(&mut self, id: &str) {
        let Some(s) = self.sessions.remove(id) else { return };
        let at = self.bump();
        let held: Vec<String> =
            self.kv.iter().filter(|(_, e)| e.session.as_deref() == Some(id)).map(|(k, _)| k.clone()).collect();
        let until = Instant::now() + s.lock_delay.min(MAX_LOCK_DELAY);
        for k in held {
            if !s.lock_delay.is_zero() {
                self.lock_delays.insert(k.clone(), until);
            }
            if s.delete {
                self.delete_key(&k, at);
            } else if let Some(e) = self.kv.get_mut(&k) {
                e.session = None;
                e.modify_index = at;
            }
        }
    }
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
    down: AtomicBool,
    hang: AtomicBool,
    fail_next: AtomicU32,
    stop: AtomicBool,
    token: Mutex<Option<String>>,
    requests: AtomicU64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running test server; stops (and frees its port) on drop.
pub struct TestConsul {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl TestConsul {
    /// Listens on 127.0.0.1, any free port.
    pub fn start() -> std::io::Result<TestConsul> {
        TestConsul::start_on("127.0.0.1:0".parse().expect("literal"))
    }

    /// Listens on `addr` (tests bind it inside a namespace through `in_netns`).
    pub fn start_on(addr: SocketAddr) -> std::io::Result<TestConsul> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State { index: 1, ..State::default() }),
            changed: Condvar::new(),
            down: AtomicBool::new(false),
            hang: AtomicBool::new(false),
            fail_next: AtomicU32::new(0),
            stop: AtomicBool::new(false),
            token: Mutex::new(None),
            requests: AtomicU64::new(0),
        });
        let i = inner.clone();
        std::thread::Builder::new().name("test-consul-accept".into()).spawn(move || accept_loop(listener, addr, i))?;
        let i = inner.clone();
        std::thread::Builder::new().name("test-consul-reaper".into()).spawn(move || reaper(i))?;
        Ok(TestConsul { addr, inner })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ip:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Down: the port refuses connections and open ones are dropped unanswered.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
        self.inner.changed.notify_all();
    }

    /// The next `n` requests answer HTTP 500.
    pub fn fail_next(&self, n: u32) {
        self.inner.fail_next.store(n, Ordering::SeqCst);
    }

    /// KV reads hang (no answer) while set.
    pub fn set_hang(&self, hang: bool) {
        self.inner.hang.store(hang, Ordering::SeqCst);
    }

    /// Requests must carry this ACL token.
    pub fn require_token(&self, token: Option<&str>) {
        *self.inner.token.lock().unwrap_or_else(|e| e.into_inner()) = token.map(str::to_string);
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// A snapshot restore: the store keeps its keys but the indexes restart at 1 and 2, so
    /// a watcher's next answer (at the latest when its `wait` runs out) carries an
    /// `X-Consul-Index` below the one it blocked on.
    pub fn restore_backwards(&self) {
        let mut st = self.inner.lock();
        for e in st.kv.values_mut() {
            e.create_index = 1;
            e.modify_index = 1;
        }
        st.tombstones.clear();
        st.index = 2;
        drop(st);
        self.inner.changed.notify_all();
    }

    /// Writes a key directly (like `consul kv put`).
    pub fn put(&self, key: &str, value: &[u8]) {
        let mut st = self.inner.lock();
        let at = st.bump();
        let e = st.kv.entry(key.to_string()).or_insert(Entry {
            value: Vec::new(),
            flags: 0,
            create_index: at,
            modify_index: at,
            lock_index: 0,
            session: None,
        });
        e.value = value.to_vec();
        e.modify_index = at;
        st.tombstones.remove(key);
        drop(st);
        self.inner.changed.notify_all();
    }

    /// Deletes a key directly.
    pub fn delete(&self, key: &str) {
        let mut st = self.inner.lock();
        let at = st.bump();
        st.delete_key(key, at);
        drop(st);
        self.inner.changed.notify_all();
    }

    /// The value and holding session of a key.
    pub fn get(&self, key: &str) -> Option<(Vec<u8>, Option<String>)> {
        self.inner.lock().kv.get(key).map(|e| (e.value.clone(), e.session.clone()))
    }

    /// Every key under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.inner.lock().kv.keys().filter(|k| k.starts_with(prefix)).cloned().collect()
    }

    /// Live sessions.
    pub fn sessions(&self) -> usize {
        self.inner.lock().sessions.len()
    }
}

impl Drop for TestConsul {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.changed.notify_all();
    }
}

fn accept_loop(listener: TcpListener, addr: SocketAddr, inner: Arc<Inner>) {
    let mut listener = Some(listener);
    while !inner.stop.load(Ordering::SeqCst) {
        if inner.down.load(Ordering::SeqCst) {
            listener = None; // closed: connection refused
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(addr) {
                Ok(l) => listener.insert(l),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        let _ = l.set_nonblocking(true);
        match l.accept() {
            Ok((stream, _)) => {
                let i = inner.clone();
                let _ = std::thread::Builder::new().name("test-consul-conn".into()).spawn(move || serve(stream, &i));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn reaper(inner: Arc<Inner>) {
    while !inner.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        let mut st = inner.lock();
        let now = Instant::now();
        let dead: Vec<String> =
            st.sessions.iter().filter(|(_, s)| s.expires.is_some_and(|e| e <= now)).map(|(id, _)| id.clone()).collect();
        if dead.is_empty() {
            continue;
        }
        for id in dead {
            st.invalidate(&id);
        }
        drop(st);
        inner.changed.notify_all();
    }
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    token: Option<String>,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    body: String,
    index: Option<u64>,
}

impl Response {
    fn json(body: String, index: Option<u64>) -> Response {
        Response { status: 200, body, index }
    }
    fn status(status: u16, body: &str) -> Response {
        Response { status, body: body.to_string(), index: None }
    }
}

fn serve(stream: TcpStream, inner: &Inner) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut out = stream;
    loop {
        let Some(req) = read_request(&mut reader) else { return };
        inner.requests.fetch_add(1, Ordering::Relaxed);
        let Some(resp) = handle(inner, &req) else { return }; // dropped unanswered
        if inner.down.load(Ordering::SeqCst) {
            return;
        }
        let reason = match resp.status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Internal Server Error",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Consul-KnownLeader: true\r\nX-Consul-LastContact: 0\r\n",
            resp.status,
            resp.body.len()
        );
        if let Some(i) = resp.index {
            head.push_str(&format!("X-Consul-Index: {i}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(&resp.body); // one write: no Nagle/delayed-ACK stall between parts
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut len = 0usize;
    let mut token = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = value.trim().parse().ok()?,
                "x-consul-token" => token = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Some(Request { method, path: percent_decode(path), query, token, body })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_wait(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return None,
    })
}

fn handle(inner: &Inner, req: &Request) -> Option<Response> {
    if let Some(t) = inner.token.lock().unwrap_or_else(|e| e.into_inner()).as_deref() {
        if req.token.as_deref() != Some(t) {
            return Some(Response::status(403, "Permission denied: token not found"));
        }
    }
    if inner.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        return Some(Response::status(500, "rpc error: injected failure"));
    }
    if req.query.get("dc").is_some_and(|dc| dc != "dc1") {
        return Some(Response::status(500, "No path to datacenter"));
    }
    let path = req.path.strip_prefix("/v1/")?;
    if let Some(key) = path.strip_prefix("kv/") {
        return kv(inner, req, key);
    }
    if let Some(rest) = path.strip_prefix("session/") {
        return Some(session(inner, req, rest));
    }
    if path == "status/leader" {
        return Some(Response::json("\"127.0.0.1:8300\"".into(), None));
    }
    Some(Response::status(404, "unknown endpoint"))
}

fn entry_json(key: &str, e: &Entry) -> serde_json::Value {
    let value = if e.value.is_empty() {
        serde_json::Value::Null
    } else {
        base64::engine::general_purpose::STANDARD.encode(&e.value).into()
    };
    let mut j = serde_json::json!({
        "Key": key, "Value": value, "Flags": e.flags,
        "CreateIndex": e.create_index, "ModifyIndex": e.modify_index, "LockIndex": e.lock_index,
    });
    if let Some(s) = &e.session {
        j["Session"] = s.clone().into();
    }
    j
}

fn kv(inner: &Inner, req: &Request, key: &str) -> Option<Response> {
    let q = &req.query;
    match req.method.as_str() {
        "GET" => {
            if inner.hang.load(Ordering::SeqCst) {
                let until = Instant::now() + Duration::from_secs(120);
                while inner.hang.load(Ordering::SeqCst) && Instant::now() < until && !inner.stop.load(Ordering::SeqCst)
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return None;
            }
            let recurse = q.contains_key("recurse") || q.contains_key("keys");
            let scope = |st: &State| {
                if recurse {
                    st.prefix_index(key)
                } else {
                    st.kv.get(key).map_or(st.index, |e| e.modify_index).max(1)
                }
            };
            let mut st = inner.lock();
            if let Some(want) = q.get("index").and_then(|i| i.parse::<u64>().ok()) {
                let wait = q
                    .get("wait")
                    .and_then(|w| parse_wait(w))
                    .unwrap_or(Duration::from_secs(300))
                    .min(Duration::from_secs(600));
                let end = Instant::now() + wait;
                while scope(&st) <= want {
                    if inner.stop.load(Ordering::SeqCst) || inner.down.load(Ordering::SeqCst) {
                        return None;
                    }
                    let Some(left) = end.checked_duration_since(Instant::now()) else { break };
                    st = inner
                        .changed
                        .wait_timeout(st, left.min(Duration::from_millis(50)))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
            let index = scope(&st);
            let matching: Vec<(&String, &Entry)> = if recurse {
                st.kv.range(key.to_string()..).take_while(|(k, _)| k.starts_with(key)).collect()
            } else {
                st.kv.get_key_value(key).into_iter().collect()
            };
            if matching.is_empty() {
                return Some(Response { status: 404, body: String::new(), index: Some(index) });
            }
            let body = if q.contains_key("keys") {
                let sep = q.get("separator").filter(|s| !s.is_empty());
                let mut keys: Vec<String> = matching
                    .iter()
                    .map(|(k, _)| match sep.and_then(|s| k[key.len()..].find(s.as_str()).map(|i| (i, s.len()))) {
                        Some((i, l)) => k[..key.len() + i + l].to_string(),
                        None => (*k).clone(),
                    })
                    .collect();
                keys.dedup();
                serde_json::to_string(&keys).ok()?
            } else {
                serde_json::Value::Array(matching.iter().map(|(k, e)| entry_json(k, e)).collect()).to_string()
            };
            Some(Response::json(body, Some(index)))
        }
        "PUT" => {
            let mut st = inner.lock();
            let cas = q.get("cas").and_then(|c| c.parse::<u64>().ok());
            let existing = st.kv.get(key).cloned();
            if let Some(c) = cas {
                let ok = match &existing {
                    None => c == 0,
                    Some(e) => e.modify_index == c,
                };
                if !ok {
                    return Some(Response::json("false".into(), None));
                }
            }
            let mut session = existing.as_ref().and_then(|e| e.session.clone());
            let mut lock_index = existing.as_ref().map_or(0, |e| e.lock_index);
            if let Some(s) = q.get("acquire") {
                if !st.sessions.contains_key(s) {
                    return Some(Response::status(500, &format!("invalid session \"{s}\"")));
                }
                if st.lock_delays.get(key).is_some_and(|until| *until > Instant::now()) {
                    return Some(Response::json("false".into(), None));
                }
                match &session {
                    Some(holder) if holder != s => return Some(Response::json("false".into(), None)),
                    Some(_) => {}
                    None => {
                        lock_index += 1;
                        session = Some(s.clone());
                    }
                }
            }
            if let Some(s) = q.get("release") {
                if session.as_deref() != Some(s.as_str()) {
                    return Some(Response::json("false".into(), None));
                }
                session = None;
            }
            let at = st.bump();
            let flags = q.get("flags").and_then(|f| f.parse().ok()).unwrap_or(existing.as_ref().map_or(0, |e| e.flags));
            let create_index = existing.as_ref().map_or(at, |e| e.create_index);
            st.kv.insert(
                key.to_string(),
                Entry { value: req.body.clone(), flags, create_index, modify_index: at, lock_index, session },
            );
            st.tombstones.remove(key);
            drop(st);
            inner.changed.notify_all();
            Some(Response::json("true".into(), None))
        }
        "DELETE" => {
            let mut st = inner.lock();
            if let Some(c) = q.get("cas").and_then(|c| c.parse::<u64>().ok()) {
                if st.kv.get(key).map(|e| e.modify_index) != Some(c) {
                    return Some(Response::json("false".into(), None));
                }
            }
            let at = st.bump();
            let keys: Vec<String> = if q.contains_key("recurse") {
                st.kv.range(key.to_string()..).take_while(|(k, _)| k.starts_with(key)).map(|(k, _)| k.clone()).collect()
            } else {
                vec![key.to_string()]
            };
            for k in keys {
                st.delete_key(&k, at);
            }
            drop(st);
            inner.changed.notify_all();
            Some(Response::json("true".into(), None))
        }
        _ => Some(Response::status(405, "method not allowed")),
    }
}

fn session_json(id: &str, s: &Session) -> serde_json::Value {
    serde_json::json!({
        "ID": id, "Name": s.name, "Node": "test-consul", "LockDelay": s.lock_delay.as_nanos() as u64,
        "Behavior": if s.delete { "delete" } else { "release" },
        "TTL": s.ttl.map_or(String::new(), |t| format!("{}s", t.as_secs())),
        "CreateIndex": s.create_index, "ModifyIndex": s.create_index,
    })
}

fn session(inner: &Inner, req: &Request, rest: &str) -> Response {
    let mut st = inner.lock();
    let (op, id) = rest.split_once('/').unwrap_or((rest, ""));
    match (req.method.as_str(), op) {
        ("PUT", "create") => {
            let body: serde_json::Value = if req.body.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_slice(&req.body).unwrap_or_default()
            };
            let ttl = match body.get("TTL").and_then(|t| t.as_str()).filter(|t| !t.is_empty()) {
                None => None,
                Some(t) => match parse_wait(t) {
                    Some(d) if d >= Duration::from_secs(10) && d <= Duration::from_secs(86400) => Some(d),
                    _ => {
                        return Response::status(
                            400,
                            &format!("Invalid Session TTL '{t}', must be between [10s=24h0m0s]"),
                        )
                    }
                },
            };
            let delete = match body.get("Behavior").and_then(|b| b.as_str()).unwrap_or("release") {
                "release" => false,
                "delete" => true,
                b => return Response::status(400, &format!("Invalid Behavior setting '{b}'")),
            };
            let lock_delay = match body.get("LockDelay") {
                None | Some(serde_json::Value::Null) => DEFAULT_LOCK_DELAY,
                Some(serde_json::Value::Number(n)) => match n.as_u64() {
                    Some(n) if n < 1000 => Duration::from_secs(n),
                    Some(n) => Duration::from_nanos(n),
                    None => return Response::status(400, &format!("Invalid LockDelay {n}")),
                },
                Some(serde_json::Value::String(t)) => match parse_wait(t) {
                    Some(d) => d,
                    None => return Response::status(400, &format!("Invalid LockDelay '{t}'")),
                },
                Some(v) => return Response::status(400, &format!("Invalid LockDelay {v}")),
            };
            st.next_session += 1;
            let id = format!("00000000-0000-4000-8000-{:012x}", st.next_session);
            let at = st.bump();
            let name = body.get("Name").and_then(|n| n.as_str()).unwrap_or("").to_string();
            let expires = ttl.map(|t| Instant::now() + t);
            st.sessions.insert(id.clone(), Session { name, ttl, delete, lock_delay, expires, create_index: at });
            Response::json(serde_json::json!({ "ID": id }).to_string(), Some(at))
        }
        ("PUT", "renew") => match st.sessions.get_mut(id) {
            Some(s) => {
                s.expires = s.ttl.map(|t| Instant::now() + t);
                let j = session_json(id, s);
                Response::json(serde_json::Value::Array(vec![j]).to_string(), Some(st.index))
            }
            None => Response::status(404, &format!("Session id '{id}' not found")),
        },
        ("PUT", "destroy") => {
            st.invalidate(id);
            drop(st);
            inner.changed.notify_all();
            Response::json("true".into(), None)
        }
        ("GET", "info") => {
            let v: Vec<_> = st.sessions.get(id).map(|s| session_json(id, s)).into_iter().collect();
            Response::json(serde_json::Value::Array(v).to_string(), Some(st.index))
        }
        ("GET", "list") => {
            let v: Vec<_> = st.sessions.iter().map(|(id, s)| session_json(id, s)).collect();
            Response::json(serde_json::Value::Array(v).to_string(), Some(st.index))
        }
        _ => Response::status(405, "method not allowed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_and_percent_decoding() {
        assert_eq!(parse_wait("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_wait("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_wait("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_wait("x"), None);
        assert_eq!(percent_decode("a%3Ab%2F"), "a:b/");
        assert_eq!(percent_decode("%"), "%");
    }

    /// One raw HTTP/1.1 exchange: (status, X-Consul-Index, body).
    fn call(server: &TestConsul, method: &str, target: &str, body: &str) -> (u16, Option<u64>, String) {
        let mut s = TcpStream::connect(server.addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let req = format!("{method} {target} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        s.write_all(req.as_bytes()).expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("read");
        let (head, body) = resp.split_once("\r\n\r\n").expect("a complete answer");
        let status = head[9..12].parse().expect("status");
        let index =
            head.lines().find_map(|l| l.strip_prefix("X-Consul-Index: ")).map(|i| i.trim().parse().expect("index"));
        (status, index, body.to_string())
    }

    fn session(server: &TestConsul, body: &str) -> String {
        let (status, _, b) = call(server, "PUT", "/v1/session/create", body);
        assert_eq!(status, 200, "{b}");
        let v: serde_json::Value = serde_json::from_str(&b).expect("json");
        v["ID"].as_str().expect("ID").to_string()
    }

    #[test]
    fn missing_keys_are_404_with_an_index_and_listings_carry_the_highest_modify_index() {
        let c = TestConsul::start().unwrap();
        let (status, index, body) = call(&c, "GET", "/v1/kv/a/?recurse", "");
        assert_eq!((status, body.as_str()), (404, ""));
        assert!(index.is_some_and(|i| i >= 1));
        assert_eq!(call(&c, "PUT", "/v1/kv/a/x", "1").2, "true");
        assert_eq!(call(&c, "PUT", "/v1/kv/b", "2").2, "true");
        assert_eq!(call(&c, "PUT", "/v1/kv/a/y/z", "3").2, "true");
        let (status, index, body) = call(&c, "GET", "/v1/kv/a/?recurse", "");
        assert_eq!(status, 200);
        let pairs: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0]["Value"], "MQ=="); // base64 of "1"
        assert_eq!(Some(pairs[1]["ModifyIndex"].as_u64().unwrap()), index);
        let (_, _, keys) = call(&c, "GET", "/v1/kv/a/?keys&separator=/", "");
        assert_eq!(keys, r#"["a/x","a/y/"]"#);
        // A delete under the prefix moves the listing's index on (a tombstone).
        assert_eq!(call(&c, "DELETE", "/v1/kv/a/x", "").2, "true");
        assert!(call(&c, "GET", "/v1/kv/a/?recurse", "").1 > index);
    }

    #[test]
    fn cas_acquire_and_release() {
        let c = TestConsul::start().unwrap();
        assert_eq!(call(&c, "PUT", "/v1/kv/k?cas=0", "a").2, "true");
        assert_eq!(call(&c, "PUT", "/v1/kv/k?cas=0", "b").2, "false", "cas=0 on an existing key");
        let (_, index, _) = call(&c, "GET", "/v1/kv/k", "");
        assert_eq!(call(&c, "PUT", &format!("/v1/kv/k?cas={}", index.unwrap() + 7), "c").2, "false");
        assert_eq!(call(&c, "PUT", &format!("/v1/kv/k?cas={}", index.unwrap()), "c").2, "true");
        let s1 = session(&c, r#"{"LockDelay":"0s"}"#);
        let s2 = session(&c, r#"{"LockDelay":"0s"}"#);
        assert_eq!(call(&c, "PUT", &format!("/v1/kv/k?acquire={s1}"), "d").2, "true");
        assert_eq!(call(&c, "PUT", &format!("/v1/kv/k?acquire={s2}"), "e").2, "false", "acquired a held lock");
        assert_eq!(call(&c, "PUT", &format!("/v1/kv/k?release={s2}"), "e").2, "false", "released another's lock");
        // A plain write keeps the holder.
        assert_eq!(call(&c, "PUT", "/v1/kv/k", "f").2, "true");
        assert_eq!(c.get("k"), Some((b"f".to_vec(), Some(s1.clone()))));
        assert_eq!(call(&c, "PUT", &format!("/v1/kv/k?release={s1}"), "g").2, "true");
        assert_eq!(call(&c, "PUT", &format!("/v1/kv/k?acquire={s2}"), "h").2, "true");
        let (_, _, body) = call(&c, "GET", "/v1/kv/k", "");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!((v[0]["LockIndex"].as_u64(), v[0]["Session"].as_str()), (Some(2), Some(s2.as_str())));
        assert_eq!(call(&c, "PUT", "/v1/kv/k?acquire=nope", "i").0, 500, "unknown session");
    }

    #[test]
    fn sessions_validate_ttl_and_apply_behavior_and_lock_delay() {
        let c = TestConsul::start().unwrap();
        assert_eq!(call(&c, "PUT", "/v1/session/create", r#"{"TTL":"5s"}"#).0, 400);
        assert_eq!(call(&c, "PUT", "/v1/session/create", r#"{"Behavior":"explode"}"#).0, 400);
        assert_eq!(call(&c, "PUT", "/v1/session/renew/nope", "").0, 404);
        // Release behaviour with the default lock delay (15 s): the key stays, unlocked,
        // and cannot be acquired again at once.
        let held = session(&c, "");
        let other = session(&c, r#"{"LockDelay":0}"#);
        assert_eq!(call(&c, "PUT", &format!("/v1/kv/r?acquire={held}"), "x").2, "true");
        assert_eq!(call(&c, "PUT", &format!("/v1/session/destroy/{held}"), "").2, "true");
        assert_eq!(c.get("r"), Some((b"x".to_vec(), None)));
        assert_eq!(call(&c, "PUT", &format!("/v1/kv/r?acquire={other}"), "y").2, "false", "lock delay ignored");
        assert_eq!(call(&c, "GET", &format!("/v1/session/info/{held}"), "").2, "[]");
        // Delete behaviour without a lock delay: the key goes and is free at once.
        let gone = session(&c, r#"{"Behavior":"delete","LockDelay":"0s"}"#);
        assert_eq!(call(&c, "PUT", &format!("/v1/kv/d?acquire={gone}"), "x").2, "true");
        assert_eq!(call(&c, "PUT", &format!("/v1/session/destroy/{gone}"), "").2, "true");
        assert_eq!(c.get("d"), None);
        assert_eq!(call(&c, "PUT", &format!("/v1/kv/d?acquire={other}"), "y").2, "true");
    }
}
