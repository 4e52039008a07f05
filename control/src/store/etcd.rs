//! etcd v3 as a [`Store`], through etcd's own JSON mapping of its gRPC API (the
//! gRPC gateway every etcd member serves on its client port, `/v3/...`; see
//! docs/STORES.md for why this and not a gRPC client crate). Blocking HTTP with `ureq`,
//! as the Consul client: no async runtime, so it runs on the watcher's and the
//! advertiser's own threads, never near a worker.
//!
//! - **Listing:** `kv/range` over the prefix, in pages of [`PAGE`] keys pinned to the
//!   first page's revision (one consistent snapshot).
//! - **Watching:** a `watch` stream from the revision after the listing. A reader thread
//!   per stream turns its JSON lines into messages; a poll takes the first and every
//!   other one already there (coalescing bursts). A stream that ends (member killed)
//!   is reopened from the next revision on the next endpoint, losing nothing; a watch
//!   answered "compacted" (the revision it asked for is gone) starts a full resync from
//!   the current revision.
//! - **Leases:** `lease/grant`, `lease/keepalive` every TTL/2 (by the advertiser),
//!   `lease/revoke`. Keys are written under the lease in a transaction that succeeds
//!   only if the key is absent (create revision 0) or still at the version this node
//!   wrote under its own lease; deletes of one version compare the mod revision.
//! - **Endpoints:** every request goes to the current endpoint; one that does not
//!   answer (refused, timed out, no leader: HTTP 503/504) moves it to the next, and
//!   the first answer from another endpoint is logged once ("failed over to ...").
//! - **Auth:** with a user and password, `auth/authenticate` gives a token sent as
//!   `Authorization`, renewed when etcd says it is invalid.

use super::{Event, Held, Lease, Poll, Store, StoreError, Update};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// Key/value pairs as listed.
type Pairs = Vec<(String, Vec<u8>)>;

/// Keys per `kv/range` page.
pub const PAGE: u64 = 10_000;

/// How long a unary request may take. A write sent to a member while the cluster
/// elects a leader waits for etcd's own request timeout (~5 s) before failing; giving
/// up sooner and trying again (on the next member) lands it as soon as a leader is
/// there. Measured with a SIGKILLed leader: the first write after the kill was taken
/// after 5.0-5.2 s with a 5 s timeout (docs/STORES.md).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How long after a write a watch answer may still lack it (the stream delivers
/// within milliseconds; this is a margin).
const WATCH_LAG: Duration = Duration::from_millis(500);

/// A poll with nothing on the stream answers after this long anyway (an empty
/// update), so the advertiser hears which of its keys are there at least this often.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Where and how to reach etcd.
#[derive(Clone)]
pub struct EtcdConfig {
    /// Base URLs of the members, `http://host:port` (or `https://`).
    pub endpoints: Vec<String>,
    /// TLS settings for `https://` endpoints.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// User and password for etcd's auth.
    pub user: Option<(String, String)>,
}

impl std::fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("tls", &self.tls.is_some())
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl EtcdConfig {
    pub fn new(endpoints: &[&str]) -> EtcdConfig {
        EtcdConfig { endpoints: endpoints.iter().map(|e| e.to_string()).collect(), tls: None, user: None }
    }
}

/// What a watch stream's reader thread hands over.
enum StreamMsg {
    Response(Value),
    /// The stream ended: closed, broken, or idle past its read timeout.
    End(String),
}

struct WatchStream {
    rx: Receiver<StreamMsg>,
    prefix: String,
}

/// An etcd client over the members' JSON gateway, with the watch stream it reads.
pub struct EtcdStore {
    cfg: EtcdConfig,
    agent: ureq::Agent,
    current: usize,
    /// The endpoint that answered last, to log a failover once.
    answered: Option<usize>,
    token: Option<String>,
    watch: Option<WatchStream>,
    /// The revision the next watch starts from (0: list first).
    next_rev: i64,
}

impl EtcdStore {
    pub fn new(cfg: EtcdConfig) -> Result<EtcdStore, StoreError> {
        if cfg.endpoints.is_empty() {
            return Err(StoreError::Refused("no etcd endpoints".into()));
        }
        let mut b = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(2)).max_idle_connections(4);
        if let Some(tls) = &cfg.tls {
            b = b.tls_config(tls.clone());
        }
        Ok(EtcdStore { agent: b.build(), cfg, current: 0, answered: None, token: None, watch: None, next_rev: 0 })
    }

    /// Compacts the store's history up to its current revision (tests, operators).
    /// Returns that revision.
    pub fn compact(&mut self) -> Result<i64, StoreError> {
        let rev = self.revision()?;
        self.call("kv/compaction", &json!({ "revision": rev.to_string(), "physical": true }))?;
        Ok(rev)
    }

    /// Writes many keys, up to 100 per transaction (tests, tools).
    pub fn put_batch(&mut self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        for chunk in pairs.chunks(100) {
            let ops: Vec<Value> = chunk
                .iter()
                .map(|(k, v)| json!({ "request_put": { "key": b64(k), "value": B64.encode(v) } }))
                .collect();
            self.call("kv/txn", &json!({ "success": ops }))?;
        }
        Ok(())
    }

    /// The store's current revision.
    pub fn revision(&mut self) -> Result<i64, StoreError> {
        let r = self.call("kv/range", &json!({ "key": b64("\0"), "limit": "1" }))?;
        Ok(num(&r["header"]["revision"]))
    }

    /// Keys under `prefix` (for tests and tools).
    pub fn list(&mut self, prefix: &str) -> Result<Pairs, StoreError> {
        self.range_all(prefix).map(|(pairs, _)| pairs)
    }

    fn endpoint_at(&self, i: usize) -> &str {
        &self.cfg.endpoints[i % self.cfg.endpoints.len()]
    }

    /// Sends one request, moving to the next endpoint while one does not answer.
    fn send(&mut self, path: &str, body: &Value, agent: &ureq::Agent) -> Result<ureq::Response, StoreError> {
        let mut last = None;
        // Each endpoint once, plus one retry after authenticating again.
        let (mut tries, mut renewed) = (self.cfg.endpoints.len(), false);
        while tries > 0 {
            tries -= 1;
            if self.cfg.user.is_some() && self.token.is_none() {
                match self.authenticate() {
                    Ok(t) => self.token = Some(t),
                    Err(e @ StoreError::Unreachable(_)) => {
                        last = Some(e);
                        self.current = (self.current + 1) % self.cfg.endpoints.len();
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let url = format!("{}/v3/{path}", self.endpoint_at(self.current));
            let mut req = agent.post(&url);
            if !path.starts_with("watch") {
                req = req.timeout(REQUEST_TIMEOUT);
            }
            if let Some(t) = &self.token {
                req = req.set("Authorization", t);
            }
            match req.send_string(&body.to_string()).map_err(error) {
                Ok(resp) => {
                    if self.answered.is_some_and(|a| a != self.current) {
                        log::warn!("etcd: failed over to {}", self.endpoint_at(self.current));
                    }
                    self.answered = Some(self.current);
                    return Ok(resp);
                }
                Err(StoreError::Refused(m)) if m.contains("invalid auth token") && !renewed => {
                    // Expired (etcd drops an unused simple token after
                    // --auth-token-ttl): authenticate again and retry, on this endpoint.
                    log::debug!("etcd: {m}: authenticating again");
                    (self.token, renewed) = (None, true);
                    tries += 1;
                    last = Some(StoreError::Refused(m));
                }
                Err(e @ StoreError::Unreachable(_)) => {
                    log::debug!("etcd: {url}: {e}");
                    last = Some(e);
                    self.current = (self.current + 1) % self.cfg.endpoints.len();
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Unreachable("no endpoint answered".into())))
    }

    fn authenticate(&self) -> Result<String, StoreError> {
        let (name, password) = self.cfg.user.as_ref().expect("called with a user");
        let url = format!("{}/v3/auth/authenticate", self.endpoint_at(self.current));
        let resp = self
            .agent
            .post(&url)
            .timeout(REQUEST_TIMEOUT)
            .send_string(&json!({ "name": name, "password": password }).to_string())
            .map_err(error)?;
        let v = read_json(resp)?;
        v["token"].as_str().map(str::to_string).ok_or_else(|| StoreError::Decode(format!("auth answer: {v}")))
    }

    /// A unary call: one JSON answer.
    fn call(&mut self, path: &str, body: &Value) -> Result<Value, StoreError> {
        let agent = self.agent.clone();
        let resp = self.send(path, body, &agent)?;
        read_json(resp)
    }

    /// Every key under `prefix` and the revision of that snapshot.
    fn range_all(&mut self, prefix: &str) -> Result<(Pairs, i64), StoreError> {
        let end = prefix_end(prefix);
        let mut from = prefix.as_bytes().to_vec();
        let mut rev = 0i64;
        let mut pairs = Vec::new();
        loop {
            let mut body =
                json!({ "key": B64.encode(&from), "range_end": B64.encode(&end), "limit": PAGE.to_string() });
            if rev > 0 {
                body["revision"] = json!(rev.to_string());
            }
            let r = self.call("kv/range", &body)?;
            if rev == 0 {
                rev = num(&r["header"]["revision"]);
            }
            let kvs = r["kvs"].as_array().cloned().unwrap_or_default();
            for kv in &kvs {
                let (k, v) = (bytes(&kv["key"])?, bytes(&kv["value"])?);
                pairs.push((String::from_utf8_lossy(&k).into_owned(), v));
            }
            if !r["more"].as_bool().unwrap_or(false) || kvs.is_empty() {
                return Ok((pairs, rev));
            }
            from = bytes(&kvs[kvs.len() - 1]["key"])?;
            from.push(0);
        }
    }

    /// Opens a watch stream on `prefix` from [`EtcdStore::next_rev`].
    fn open_watch(&mut self, prefix: &str, wait: Duration) -> Result<(), StoreError> {
        let body = json!({ "create_request": {
            "key": b64(prefix), "range_end": B64.encode(prefix_end(prefix)),
            "start_revision": self.next_rev.to_string(), "progress_notify": true,
        }});
        // No overall deadline: the stream lives until it is idle for `wait` (then it is
        // reopened) or breaks.
        let mut b = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(2)).timeout_read(wait);
        if let Some(tls) = &self.cfg.tls {
            b = b.tls_config(tls.clone());
        }
        let resp = self.send("watch", &body, &b.build())?;
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("etcd-watch-stream".into())
            .spawn(move || {
                let mut r = BufReader::new(resp.into_reader().take(MAX_BODY));
                loop {
                    let mut line = String::new();
                    let msg = match r.read_line(&mut line) {
                        Ok(0) => StreamMsg::End("the stream ended".into()),
                        Ok(_) if line.trim().is_empty() => continue,
                        Ok(_) => match serde_json::from_str::<Value>(&line) {
                            Ok(v) => StreamMsg::Response(v),
                            Err(e) => StreamMsg::End(format!("unreadable watch answer: {e}")),
                        },
                        Err(e) => StreamMsg::End(e.to_string()),
                    };
                    let end = matches!(msg, StreamMsg::End(_));
                    if tx.send(msg).is_err() || end {
                        return;
                    }
                }
            })
            .map_err(|e| StoreError::Unreachable(format!("starting the watch reader: {e}")))?;
        self.watch = Some(WatchStream { rx, prefix: prefix.to_string() });
        Ok(())
    }

    /// A full listing and a watch from the revision after it.
    fn resync(&mut self, prefix: &str, wait: Duration, reset: Option<String>) -> Result<Poll, StoreError> {
        self.watch = None;
        self.next_rev = 0;
        let (pairs, rev) = self.range_all(prefix)?;
        self.next_rev = rev + 1;
        self.open_watch(prefix, wait)?;
        Ok(Poll { update: Update::Full(pairs), reset })
    }

    /// Turns one watch answer into events. `Err(Some(rev))`: compacted at `rev`.
    fn events(&mut self, v: &Value, out: &mut Vec<Event>) -> Result<(), Result<i64, StoreError>> {
        if let Some(e) = v.get("error") {
            return Err(Err(StoreError::Refused(format!("watch: {}", e["message"].as_str().unwrap_or("error")))));
        }
        let r = &v["result"];
        let compacted = num(&r["compact_revision"]);
        if compacted > 0 {
            return Err(Ok(compacted));
        }
        if r["canceled"].as_bool().unwrap_or(false) {
            let why = r["cancel_reason"].as_str().unwrap_or("canceled by the server").to_string();
            return Err(Err(StoreError::Refused(format!("watch: {why}"))));
        }
        for e in r["events"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let kv = &e["kv"];
            let key = String::from_utf8_lossy(&bytes(&kv["key"]).map_err(Err)?).into_owned();
            self.next_rev = self.next_rev.max(num(&kv["mod_revision"]) + 1);
            match e["type"].as_str() {
                Some("DELETE") => out.push(Event::Delete(key)),
                _ => out.push(Event::Put(key, bytes(&kv["value"]).map_err(Err)?)),
            }
        }
        // Progress notifications carry only the header: nothing changed up to there.
        if r["events"].as_array().is_none_or(|e| e.is_empty()) && !r["created"].as_bool().unwrap_or(false) {
            self.next_rev = self.next_rev.max(num(&r["header"]["revision"]) + 1);
        }
        Ok(())
    }

    /// Keys under `lease`: a transaction that writes only if the key is absent or was
    /// last written under this lease.
    fn put_leased(&mut self, key: &str, value: &[u8], lease: &Lease) -> Result<bool, StoreError> {
        let put = json!({ "request_put": { "key": b64(key), "value": B64.encode(value), "lease": lease.0 } });
        let absent = json!({ "key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0" });
        let r = self.call(
            "kv/txn",
            &json!({ "compare": [absent], "success": [put], "failure": [{ "request_range": { "key": b64(key) } }] }),
        )?;
        if r["succeeded"].as_bool().unwrap_or(false) {
            return Ok(true);
        }
        let kv = &r["responses"][0]["response_range"]["kvs"][0];
        if kv.is_null() {
            return Ok(false); // deleted in between: the caller retries
        }
        if kv["lease"].as_str().map(str::to_string).unwrap_or_else(|| num(&kv["lease"]).to_string()) != lease.0 {
            return Ok(false);
        }
        let same = json!({ "key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": num(&kv["mod_revision"]).to_string() });
        let r = self.call("kv/txn", &json!({ "compare": [same], "success": [put] }))?;
        Ok(r["succeeded"].as_bool().unwrap_or(false))
    }
}

impl Store for EtcdStore {
    fn kind(&self) -> &'static str {
        "etcd"
    }

    fn endpoint(&self) -> String {
        self.endpoint_at(self.current).to_string()
    }

    fn poll(&mut self, prefix: &str, resync: bool, wait: Duration) -> Result<Poll, StoreError> {
        if resync || self.next_rev == 0 || self.watch.as_ref().is_some_and(|w| w.prefix != prefix) {
            return self.resync(prefix, wait, None);
        }
        if self.watch.is_none() {
            self.open_watch(prefix, wait)?;
        }
        let first = match self.watch.as_ref().expect("opened").rx.recv_timeout(wait.min(HEARTBEAT)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => return Ok(Poll { update: Update::Events(Vec::new()), reset: None }),
            Err(RecvTimeoutError::Disconnected) => StreamMsg::End("the stream reader stopped".into()),
        };
        let mut msgs = vec![first];
        while let Ok(m) = self.watch.as_ref().expect("opened").rx.try_recv() {
            msgs.push(m);
        }
        let mut out = Vec::new();
        for m in msgs {
            match m {
                StreamMsg::Response(v) => match self.events(&v, &mut out) {
                    Ok(()) => {}
                    Err(Ok(compacted)) => {
                        let why = format!(
                            "watch from revision {} answered compacted (compacted up to {compacted}); resyncing",
                            self.next_rev
                        );
                        return self.resync(prefix, wait, Some(why));
                    }
                    Err(Err(e)) => {
                        self.watch = None;
                        return Err(e);
                    }
                },
                StreamMsg::End(why) => {
                    // Reopened on the next poll, from the next revision: nothing lost.
                    log::debug!("etcd: watch stream at {} ended ({why}); reopening", self.endpoint());
                    self.watch = None;
                    break;
                }
            }
        }
        if self.watch.is_none() && out.is_empty() {
            // Reopen now (on another endpoint if this one is gone), so an error surfaces.
            self.open_watch(prefix, wait)?;
        }
        Ok(Poll { update: Update::Events(out), reset: None })
    }

    fn get(&mut self, key: &str) -> Result<Option<Held>, StoreError> {
        let r = self.call("kv/range", &json!({ "key": b64(key) }))?;
        let kv = &r["kvs"][0];
        if kv.is_null() {
            return Ok(None);
        }
        let lease = num(&kv["lease"]);
        Ok(Some(Held {
            value: bytes(&kv["value"])?,
            owner: (lease != 0).then(|| Lease(lease.to_string())),
            version: num(&kv["mod_revision"]) as u64,
        }))
    }

    fn put(&mut self, key: &str, value: &[u8], lease: Option<&Lease>) -> Result<bool, StoreError> {
        match lease {
            Some(l) => self.put_leased(key, value, l),
            None => {
                self.call("kv/put", &json!({ "key": b64(key), "value": B64.encode(value) }))?;
                Ok(true)
            }
        }
    }

    fn delete(&mut self, key: &str, version: Option<u64>) -> Result<bool, StoreError> {
        match version {
            None => {
                let r = self.call("kv/deleterange", &json!({ "key": b64(key) }))?;
                Ok(num(&r["deleted"]) > 0)
            }
            Some(v) => {
                let same =
                    json!({ "key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": v.to_string() });
                let del = json!({ "request_delete_range": { "key": b64(key) } });
                let r = self.call("kv/txn", &json!({ "compare": [same], "success": [del] }))?;
                Ok(r["succeeded"].as_bool().unwrap_or(false))
            }
        }
    }

    fn lease_grant(&mut self, _name: &str, ttl: Duration) -> Result<Lease, StoreError> {
        let r = self.call("lease/grant", &json!({ "TTL": ttl.as_secs().max(1).to_string() }))?;
        let id = num(&r["ID"]);
        if id == 0 {
            return Err(StoreError::Decode(format!("lease grant answered {r}")));
        }
        Ok(Lease(id.to_string()))
    }

    fn lease_renew(&mut self, lease: &Lease) -> Result<bool, StoreError> {
        // A keep-alive stream with one request: one answer, then the stream ends.
        let r = self.call("lease/keepalive", &json!({ "ID": lease.0 }))?;
        Ok(num(&r["result"]["TTL"]) > 0)
    }

    fn lease_revoke(&mut self, lease: &Lease) -> Result<(), StoreError> {
        match self.call("lease/revoke", &json!({ "ID": lease.0 })) {
            Ok(_) | Err(StoreError::SessionLost(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn read_lag(&self) -> Duration {
        WATCH_LAG
    }
}

/// Largest answer accepted.
const MAX_BODY: u64 = 512 << 20;

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// The end of the key range of `prefix`: the prefix with its last byte incremented.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

/// An int64 field: the gateway writes them as JSON strings; absent means 0.
fn num(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn bytes(v: &Value) -> Result<Vec<u8>, StoreError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => B64.decode(s).map_err(|e| StoreError::Decode(format!("base64: {e}"))),
        other => Err(StoreError::Decode(format!("expected base64, got {other}"))),
    }
}

fn read_json(resp: ureq::Response) -> Result<Value, StoreError> {
    let mut body = String::new();
    resp.into_reader()
        .take(MAX_BODY)
        .read_to_string(&mut body)
        .map_err(|e| StoreError::Unreachable(format!("reading the answer: {e}")))?;
    // Streaming calls (keep-alive) answer JSON lines; the first is the answer.
    let first = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("{}");
    let v: Value = serde_json::from_str(first).map_err(|e| StoreError::Decode(format!("{e}: {first}")))?;
    if let Some(e) = v.get("error") {
        let msg = e.get("message").and_then(Value::as_str).or(e.as_str()).unwrap_or("error").to_string();
        return Err(classify(&msg, None));
    }
    Ok(v)
}

/// An etcd error message (and HTTP status) as a [`StoreError`].
fn classify(msg: &str, status: Option<u16>) -> StoreError {
    let m = msg.to_ascii_lowercase();
    if m.contains("lease not found") {
        StoreError::SessionLost(msg.to_string())
    } else if m.contains("user name is empty") {
        // etcd's answer to a request without a token when auth is on.
        StoreError::Refused(format!(
            "{msg}: etcd has authentication on; give --cluster-store-opt username=USER and password=PASS"
        ))
    } else if matches!(status, Some(502..=504))
        || ["no leader", "timed out", "unavailable", "leader changed", "not capable", "stopped"]
            .iter()
            .any(|s| m.contains(s))
    {
        StoreError::Unreachable(msg.to_string())
    } else {
        StoreError::Refused(msg.to_string())
    }
}

fn error(e: ureq::Error) -> StoreError {
    match e {
        ureq::Error::Status(status, resp) => {
            // Read what arrives even if the end does not parse: the gateway ends its
            // error bodies with HTTP trailers (`Grpc-Trailer-Content-Type`), and the
            // message before them is what names the problem.
            let mut raw = Vec::new();
            let _ = resp.into_reader().take(64 * 1024).read_to_end(&mut raw);
            let body = String::from_utf8_lossy(&raw);
            let msg = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| body.trim().chars().take(200).collect());
            classify(&format!("HTTP {status}: {msg}"), Some(status))
        }
        ureq::Error::Transport(t) => StoreError::Unreachable(t.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_and_numbers() {
        assert_eq!(prefix_end("vxdp/vni/1/"), b"vxdp/vni/10".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
        assert_eq!(num(&json!("42")), 42);
        assert_eq!(num(&json!(7)), 7);
        assert_eq!(num(&Value::Null), 0);
        assert_eq!(bytes(&json!("aGk=")).unwrap(), b"hi");
    }

    #[test]
    fn errors_are_classified() {
        assert!(matches!(classify("etcdserver: requested lease not found", None), StoreError::SessionLost(_)));
        assert!(matches!(classify("etcdserver: no leader", None), StoreError::Unreachable(_)));
        assert!(matches!(classify("HTTP 503: x", Some(503)), StoreError::Unreachable(_)));
        assert!(matches!(classify("etcdserver: permission denied", Some(403)), StoreError::Refused(_)));
        let anon = classify("HTTP 400: etcdserver: user name is empty", Some(400)).to_string();
        assert!(anon.contains("username=USER") && anon.contains("password=PASS"), "{anon}");
    }

    #[test]
    fn watch_answers_become_events_or_a_compaction() {
        let mut s = EtcdStore::new(EtcdConfig::new(&["http://127.0.0.1:1"])).unwrap();
        s.next_rev = 5;
        let mut out = Vec::new();
        let put = json!({"result":{"header":{"revision":"6"},"events":[
            {"kv":{"key":b64("p/a"),"value":B64.encode("x"),"mod_revision":"6"}},
            {"type":"DELETE","kv":{"key":b64("p/b"),"mod_revision":"6"}}]}});
        assert!(s.events(&put, &mut out).is_ok());
        assert_eq!(out, vec![Event::Put("p/a".into(), b"x".to_vec()), Event::Delete("p/b".into())]);
        assert_eq!(s.next_rev, 7);
        let compacted = json!({"result":{"header":{"revision":"9"},"compact_revision":"8","canceled":true}});
        assert!(matches!(s.events(&compacted, &mut out), Err(Ok(8))));
    }
}
