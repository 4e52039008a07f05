//! A small blocking client for the parts of Consul's HTTP API vxdp uses: KV (with
//! blocking queries, `cas`, `acquire`) and sessions. One `ureq` agent per client; no
//! async runtime, so it runs on a plain control-plane thread.

use base64::Engine;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Consul's consistency modes for reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Reads go to the leader (Consul's default).
    #[default]
    Default,
    /// Any server may answer, possibly slightly stale (`?stale`): scales reads.
    Stale,
}

impl std::str::FromStr for Consistency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(Consistency::Default),
            "stale" => Ok(Consistency::Stale),
            _ => Err(format!("'{s}' is not a consistency mode (default or stale)")),
        }
    }
}

/// Where and how to reach Consul. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsulConfig {
    /// `http://host:port`, `https://host:port` or `host:port` (http).
    pub address: String,
    pub token: Option<String>,
    pub datacenter: Option<String>,
    /// PEM file of CAs that sign the Consul servers' certificates (https).
    pub ca_file: Option<PathBuf>,
    pub consistency: Consistency,
}

impl ConsulConfig {
    pub fn new(address: &str) -> ConsulConfig {
        ConsulConfig {
            address: address.to_string(),
            token: None,
            datacenter: None,
            ca_file: None,
            consistency: Consistency::Default,
        }
    }
}

impl std::fmt::Debug for ConsulConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulConfig")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("datacenter", &self.datacenter)
            .field("ca_file", &self.ca_file)
            .field("consistency", &self.consistency)
            .finish()
    }
}

/// What went wrong talking to Consul.
#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    #[error("consul address '{0}' is not http(s)://host:port or host:port")]
    Address(String),
    #[error("--consul-ca {path}: {msg}")]
    Ca { path: PathBuf, msg: String },
    #[error("{0}")]
    Transport(String),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unexpected answer: {0}")]
    Decode(String),
}

/// One KV pair as Consul returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvPair {
    pub key: String,
    #[serde(default, deserialize_with = "de_base64")]
    pub value: Vec<u8>,
    #[serde(default)]
    pub flags: u64,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
    #[serde(default)]
    pub lock_index: u64,
    #[serde(default)]
    pub session: Option<String>,
}

fn de_base64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s {
        None => Ok(Vec::new()),
        Some(s) => base64::engine::general_purpose::STANDARD.decode(s).map_err(serde::de::Error::custom),
    }
}

/// A KV listing and the index to block on next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// `X-Consul-Index` of the answer (0 if absent).
    pub index: u64,
    pub pairs: Vec<KvPair>,
}

/// A blocking Consul HTTP client.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    cfg: ConsulConfig,
}

impl Client {
    pub fn new(cfg: ConsulConfig) -> Result<Client, ConsulError> {
        let base = normalize(&cfg.address)?;
        if cfg.token.is_some() && base.starts_with("http://") {
            log::warn!(
                "consul: the ACL token goes to {base} over plain http, readable on the path; use https (--consul-ca)"
            );
        }
        // No redirects: ureq would follow one carrying X-Consul-Token to wherever it points
        // (it strips only Authorization); a 3xx answer is an error instead.
        let mut builder =
            ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(3)).max_idle_connections(4).redirects(0);
        if let Some(path) = &cfg.ca_file {
            builder = builder.tls_config(tls_with_ca(path)?);
        }
        Ok(Client { agent: builder.build(), base, cfg })
    }

    pub fn config(&self) -> &ConsulConfig {
        &self.cfg
    }

    fn request(&self, method: &str, path: &str, timeout: Duration) -> ureq::Request {
        let mut req = self.agent.request(method, &format!("{}/v1/{}", self.base, path)).timeout(timeout);
        if let Some(t) = &self.cfg.token {
            req = req.set("X-Consul-Token", t);
        }
        if let Some(dc) = &self.cfg.datacenter {
            req = req.query("dc", dc);
        }
        req
    }

    /// Lists every pair under `prefix` (`?recurse`). With `index > 0` this is a blocking
    /// query: Consul answers when the prefix changes past `index` or after `wait`. A
    /// prefix with no keys is an empty listing (Consul answers 404 with an index).
    pub fn kv_list(&self, prefix: &str, index: u64, wait: Duration) -> Result<Listing, ConsulError> {
        // Consul adds up to wait/16 of jitter; give it that and a margin before giving up.
        let timeout = wait + wait / 16 + Duration::from_secs(5);
        let mut req = self.request("GET", &format!("kv/{prefix}"), timeout).query("recurse", "");
        if index > 0 {
            req = req.query("index", &index.to_string()).query("wait", &format!("{}ms", wait.as_millis()));
        }
        if self.cfg.consistency == Consistency::Stale {
            req = req.query("stale", "");
        }
        let (index, body) = match req.call() {
            Ok(resp) => (header_index(&resp), read_body(resp)?),
            Err(ureq::Error::Status(404, resp)) => {
                return Ok(Listing { index: header_index(&resp), pairs: Vec::new() })
            }
            Err(e) => return Err(error(e)),
        };
        let pairs = serde_json::from_str(&body).map_err(|e| ConsulError::Decode(format!("kv listing: {e}")))?;
        Ok(Listing { index, pairs })
    }

    /// One key, or `None`.
    pub fn kv_get(&self, key: &str) -> Result<Option<KvPair>, ConsulError> {
        match self.request("GET", &format!("kv/{key}"), Duration::from_secs(10)).call() {
            Ok(resp) => {
                let body = read_body(resp)?;
                let mut pairs: Vec<KvPair> =
                    serde_json::from_str(&body).map_err(|e| ConsulError::Decode(e.to_string()))?;
                Ok(pairs.pop())
            }
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(e) => Err(error(e)),
        }
    }

    /// `PUT /v1/kv/<key>`, optionally `?acquire=<session>` or `?cas=<index>`. Returns
    /// Consul's verdict (false: the lock is held elsewhere or the cas index is stale).
    pub fn kv_put(
        &self,
        key: &str,
        value: &[u8],
        acquire: Option<&str>,
        cas: Option<u64>,
    ) -> Result<bool, ConsulError> {
        let mut req = self.request("PUT", &format!("kv/{key}"), Duration::from_secs(10));
        if let Some(s) = acquire {
            req = req.query("acquire", s);
        }
        if let Some(c) = cas {
            req = req.query("cas", &c.to_string());
        }
        bool_answer(req.send_bytes(value))
    }

    /// `DELETE /v1/kv/<key>`, optionally `?cas=<index>`.
    pub fn kv_delete(&self, key: &str, cas: Option<u64>) -> Result<bool, ConsulError> {
        let mut req = self.request("DELETE", &format!("kv/{key}"), Duration::from_secs(10));
        if let Some(c) = cas {
            req = req.query("cas", &c.to_string());
        }
        bool_answer(req.call())
    }

    /// Creates a session that deletes its locked keys when it is invalidated, with a
    /// TTL and no lock delay. Returns its ID.
    pub fn session_create(&self, name: &str, ttl: Duration) -> Result<String, ConsulError> {
        let body = serde_json::json!({
            "Name": name,
            "TTL": format!("{}s", ttl.as_secs().max(10)),
            "Behavior": "delete",
            "LockDelay": "0s",
        });
        let resp = self
            .request("PUT", "session/create", Duration::from_secs(10))
            .send_string(&body.to_string())
            .map_err(error)?;
        #[derive(Deserialize)]
        struct Created {
            #[serde(rename = "ID")]
            id: String,
        }
        let c: Created = serde_json::from_str(&read_body(resp)?).map_err(|e| ConsulError::Decode(e.to_string()))?;
        Ok(c.id)
    }

    /// Renews a session's TTL. `Ok(false)`: the session no longer exists.
    pub fn session_renew(&self, id: &str) -> Result<bool, ConsulError> {
        match self.request("PUT", &format!("session/renew/{id}"), Duration::from_secs(10)).call() {
            Ok(resp) => read_body(resp).map(|_| true),
            Err(ureq::Error::Status(404, _)) => Ok(false),
            Err(e) => Err(error(e)),
        }
    }

    /// Destroys a session (its locked keys are deleted, per its behaviour).
    pub fn session_destroy(&self, id: &str) -> Result<bool, ConsulError> {
        bool_answer(self.request("PUT", &format!("session/destroy/{id}"), Duration::from_secs(10)).call())
    }
}

fn normalize(addr: &str) -> Result<String, ConsulError> {
    let bad = || ConsulError::Address(addr.to_string());
    let (scheme, host) = match addr.trim().split_once("://") {
        Some((s @ ("http" | "https"), h)) => (s, h),
        Some(_) => return Err(bad()),
        None => ("http", addr.trim()),
    };
    let host = host.trim_end_matches('/');
    if host.is_empty() || host.contains('/') || host.contains(' ') {
        return Err(bad());
    }
    Ok(format!("{scheme}://{host}"))
}

fn tls_with_ca(path: &PathBuf) -> Result<Arc<rustls::ClientConfig>, ConsulError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let err = |msg: String| ConsulError::Ca { path: path.clone(), msg };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
    for cert in certs {
        roots.add(cert.map_err(|e| err(e.to_string()))?).map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no certificates in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

fn header_index(resp: &ureq::Response) -> u64 {
    resp.header("X-Consul-Index").and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn read_body(resp: ureq::Response) -> Result<String, ConsulError> {
    if (300..400).contains(&resp.status()) {
        let to = resp.header("Location").unwrap_or("?").to_string();
        return Err(ConsulError::Status {
            status: resp.status(),
            body: format!("redirect to {to} not followed (the ACL token would go along)"),
        });
    }
    // Not `into_string`: it stops at 10 MB, less than a listing of 100,000 entries.
    read_capped(resp.into_reader(), crate::validate::MAX_ANSWER_BYTES)
}

/// Reads at most `cap` bytes; a longer answer is refused whole (not truncated into
/// something that might still parse), so the last good state stays.
fn read_capped(reader: impl std::io::Read, cap: u64) -> Result<String, ConsulError> {
    use std::io::Read;
    let mut body = String::new();
    reader
        .take(cap + 1)
        .read_to_string(&mut body)
        .map_err(|e| ConsulError::Transport(format!("reading the answer: {e}")))?;
    if body.len() as u64 > cap {
        return Err(ConsulError::Decode(format!("the answer is larger than {} MiB; refused", cap >> 20)));
    }
    Ok(body)
}

fn bool_answer(r: Result<ureq::Response, ureq::Error>) -> Result<bool, ConsulError> {
    let body = read_body(r.map_err(error)?)?;
    match body.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(ConsulError::Decode(format!("expected true or false, got '{other}'"))),
    }
}

fn error(e: ureq::Error) -> ConsulError {
    match e {
        ureq::Error::Status(status, resp) => {
            let body = resp.into_string().unwrap_or_default();
            ConsulError::Status { status, body: body.trim().chars().take(200).collect() }
        }
        ureq::Error::Transport(t) => ConsulError::Transport(t.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_not_followed_and_the_token_stays_home() {
        use std::io::{Read, Write};
        use std::net::TcpListener;
        // The redirect target records whether a request (and a token) reached it.
        let target = TcpListener::bind("127.0.0.1:0").unwrap();
        target.set_nonblocking(true).unwrap();
        let to = target.local_addr().unwrap();
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{to}/v1/kv/x\r\nContent-Length: 0\r\n\r\n"
            );
            s.write_all(answer.as_bytes()).unwrap();
        });
        let mut cfg = ConsulConfig::new(&format!("http://{addr}"));
        cfg.token = Some("s3cr3t-token".into());
        let c = Client::new(cfg.clone()).unwrap();
        let e = c.kv_get("x").unwrap_err();
        t.join().unwrap();
        assert!(e.to_string().contains("redirect") && e.to_string().contains("not followed"), "{e}");
        assert!(target.accept().is_err(), "the client followed the redirect");
        let debug = format!("{cfg:?} {:?}", c.config());
        assert!(!debug.contains("s3cr3t") && debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn answers_past_the_cap_are_refused_whole() {
        let body = "x".repeat(100);
        assert_eq!(read_capped(body.as_bytes(), 100).unwrap().len(), 100);
        let e = read_capped(body.as_bytes(), 99).unwrap_err();
        assert!(matches!(e, ConsulError::Decode(ref m) if m.contains("larger than")), "{e}");
        assert_eq!(crate::validate::MAX_ANSWER_BYTES, 64 << 20);
    }

    #[test]
    fn addresses_normalize_like_consul_http_addr() {
        assert_eq!(normalize("127.0.0.1:8500").unwrap(), "http://127.0.0.1:8500");
        assert_eq!(normalize("https://c.example:8501/").unwrap(), "https://c.example:8501");
        assert!(normalize("ftp://x").is_err());
        assert!(normalize("http://").is_err());
        assert!(normalize("a b").is_err());
    }

    #[test]
    fn kv_pairs_decode_base64_and_null_values() {
        let j = r#"[{"Key":"a","Value":"aGk=","Flags":0,"CreateIndex":3,"ModifyIndex":5,"LockIndex":1,"Session":"s"},
                    {"Key":"b","Value":null,"CreateIndex":4,"ModifyIndex":4,"LockIndex":0}]"#;
        let p: Vec<KvPair> = serde_json::from_str(j).unwrap();
        assert_eq!(p[0].value, b"hi");
        assert_eq!(p[0].session.as_deref(), Some("s"));
        assert!(p[1].value.is_empty());
        assert_eq!(p[1].session, None);
    }
}
