//! `--cluster-store URL` and `--cluster-store-opt KEY=VALUE`, in the shapes Docker's
//! libkv takes:
//!
//! ```text
//! consul://HOST[:PORT][/PREFIX]                  (port 8500)
//! etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]   (port 2379)
//! zk://HOST[:PORT][,HOST[:PORT]...][/PREFIX]     (port 2181)
//! ```
//!
//! The path, if any, is the key prefix (default `vxdp/`). Options: `tls=on|off`,
//! `ca=FILE`, `cert=FILE`, `key=FILE` (etcd client certificates), `token=TOKEN` or
//! `token-file=FILE` (Consul ACL token), `username=USER`, `password=PASS` (etcd auth),
//! `dc=DC` and `consistency=default|stale` (Consul). ZooKeeper takes none of them (no
//! TLS or auth in this vxdp yet). Everything is checked here, before
//! the daemon creates anything; every error names the URL part or option at fault.

use super::consul::ConsulStore;
use super::etcd::{EtcdConfig, EtcdStore};
use super::zk::{ZkConfig, ZkStore};
use super::{Store, StoreError};
use crate::consul::{Client, Consistency, ConsulConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Consul,
    Etcd,
    Zookeeper,
}

impl StoreKind {
    fn default_port(self) -> u16 {
        match self {
            StoreKind::Consul => 8500,
            StoreKind::Etcd => 2379,
            StoreKind::Zookeeper => 2181,
        }
    }

    /// The options this store takes.
    fn options(self) -> &'static [&'static str] {
        match self {
            StoreKind::Consul => &["tls", "ca", "token", "token-file", "dc", "consistency"],
            StoreKind::Etcd => &["tls", "ca", "cert", "key", "username", "password"],
            StoreKind::Zookeeper => &[],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Consul => "consul",
            StoreKind::Etcd => "etcd",
            StoreKind::Zookeeper => "zk",
        }
    }
}

/// Every option any store takes.
const KNOWN: &[&str] =
    &["tls", "ca", "cert", "key", "token", "token-file", "username", "password", "dc", "consistency"];

/// A parsed `--cluster-store` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    pub kind: StoreKind,
    /// `host:port` of each endpoint, in the order given.
    pub endpoints: Vec<String>,
    /// The key prefix from the URL's path, if it has one.
    pub prefix: Option<String>,
}

impl std::str::FromStr for StoreUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<StoreUrl, String> {
        let bad = |why: &str| format!("--cluster-store '{url}': {why}");
        let (scheme, rest) =
            url.split_once("://").ok_or_else(|| bad("not SCHEME://HOST:PORT (consul://, etcd:// or zk://)"))?;
        let kind = match scheme {
            "consul" => StoreKind::Consul,
            "etcd" => StoreKind::Etcd,
            "zk" | "zookeeper" => StoreKind::Zookeeper,
            other => return Err(bad(&format!("unknown store '{other}' (consul, etcd or zk)"))),
        };
        let (hosts, path) = match rest.split_once('/') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        if hosts.is_empty() {
            return Err(bad("no HOST:PORT"));
        }
        let mut endpoints = Vec::new();
        for h in hosts.split(',') {
            endpoints.push(endpoint(h, kind.default_port()).map_err(|e| bad(&e))?);
        }
        if kind == StoreKind::Consul && endpoints.len() > 1 {
            return Err(bad("consul takes one address (the local agent's)"));
        }
        let prefix = match path.map(|p| p.trim_matches('/')) {
            None | Some("") => None,
            Some(p) => {
                check_prefix(p).map_err(|e| bad(&e))?;
                Some(format!("{p}/"))
            }
        };
        Ok(StoreUrl { kind, endpoints, prefix })
    }
}

fn endpoint(h: &str, default_port: u16) -> Result<String, String> {
    let h = h.trim();
    if h.is_empty() {
        return Err("an empty address in the list".into());
    }
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') || host.starts_with('[') => {
            (host, port.parse::<u16>().map_err(|_| format!("'{port}' in '{h}' is not a port"))?)
        }
        _ => (h, default_port),
    };
    if host.is_empty()
        || port == 0
        || !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'))
    {
        return Err(format!("'{h}' is not HOST:PORT"));
    }
    Ok(format!("{host}:{port}"))
}

/// A key prefix: no spaces, control characters, `?`, `#`, `%` or `//`.
pub fn check_prefix(p: &str) -> Result<(), String> {
    if p.contains(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%')) || p.contains("//") {
        return Err(format!("key prefix '{p}': no spaces, control characters, '?', '#', '%' or '//'"));
    }
    Ok(())
}

/// How to reach the store: checked, ready to [`StoreConfig::open`].
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Consul(ConsulConfig),
    Etcd(EtcdConfig),
    Zookeeper(ZkConfig),
}

impl StoreConfig {
    /// Builds the configuration from a URL and `KEY=VALUE` options, reading the files
    /// they name (CA, certificate, key, token file) now.
    pub fn new(url: &StoreUrl, opts: &[String]) -> Result<StoreConfig, String> {
        let mut map: Vec<(String, String)> = Vec::new();
        for o in opts {
            let (k, v) = o.split_once('=').ok_or_else(|| format!("--cluster-store-opt '{o}': not KEY=VALUE"))?;
            if !KNOWN.contains(&k) {
                return Err(format!("--cluster-store-opt '{o}': unknown option '{k}' (known: {})", KNOWN.join(", ")));
            }
            if !url.kind.options().contains(&k) {
                let takes = match url.kind.options() {
                    [] => "no options".to_string(),
                    o => o.join(", "),
                };
                return Err(format!(
                    "--cluster-store-opt '{o}': {} takes no '{k}' (it takes {takes})",
                    url.kind.name()
                ));
            }
            if map.iter().any(|(kk, _)| kk == k) {
                return Err(format!("--cluster-store-opt '{o}': '{k}' given twice"));
            }
            map.push((k.to_string(), v.to_string()));
        }
        let get = |k: &str| map.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
        let tls = match get("tls") {
            None => get("ca").is_some(),
            Some("on" | "true" | "1") => true,
            Some("off" | "false" | "0") => false,
            Some(v) => return Err(format!("--cluster-store-opt tls={v}: tls is on or off")),
        };
        let scheme = if tls { "https" } else { "http" };
        match url.kind {
            StoreKind::Consul => {
                let mut c = ConsulConfig::new(&format!("{scheme}://{}", url.endpoints[0]));
                c.ca_file = get("ca").map(PathBuf::from);
                c.token = match (get("token"), get("token-file")) {
                    (Some(_), Some(_)) => return Err("--cluster-store-opt: token and token-file both given".into()),
                    (Some(t), None) => Some(t.to_string()),
                    (None, Some(f)) => Some(read_token(Path::new(f))?),
                    (None, None) => None,
                };
                c.datacenter = get("dc").map(str::to_string);
                if let Some(dc) = &c.datacenter {
                    if dc.is_empty() || !dc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                        return Err(format!("--cluster-store-opt dc={dc}: a datacenter is letters, digits, '-', '_'"));
                    }
                }
                if let Some(m) = get("consistency") {
                    c.consistency =
                        m.parse::<Consistency>().map_err(|e| format!("--cluster-store-opt consistency={m}: {e}"))?;
                }
                Client::new(c.clone()).map_err(|e| format!("--cluster-store consul://{}: {e}", url.endpoints[0]))?;
                Ok(StoreConfig::Consul(c))
            }
            StoreKind::Etcd => {
                let mut c = EtcdConfig::new(&[]);
                c.endpoints = url.endpoints.iter().map(|e| format!("{scheme}://{e}")).collect();
                if tls {
                    let ca = get("ca").ok_or("--cluster-store-opt tls=on: etcd over TLS needs ca=FILE")?;
                    c.tls = Some(tls_config(Path::new(ca), get("cert").map(Path::new), get("key").map(Path::new))?);
                } else if get("cert").is_some() || get("key").is_some() {
                    return Err("--cluster-store-opt cert/key: client certificates need tls=on and ca=FILE".into());
                }
                c.user = match (get("username"), get("password")) {
                    (Some(u), Some(p)) => Some((u.to_string(), p.to_string())),
                    (None, None) => None,
                    _ => return Err("--cluster-store-opt: username and password go together".into()),
                };
                Ok(StoreConfig::Etcd(c))
            }
            StoreKind::Zookeeper => {
                Ok(StoreConfig::Zookeeper(ZkConfig { endpoints: url.endpoints.clone(), ..ZkConfig::new(&[]) }))
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            StoreConfig::Consul(_) => "consul",
            StoreConfig::Etcd(_) => "etcd",
            StoreConfig::Zookeeper(_) => "zk",
        }
    }

    /// The endpoints, for messages.
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Consul(c) => c.address.clone(),
            StoreConfig::Etcd(c) => c.endpoints.join(","),
            StoreConfig::Zookeeper(c) => c.endpoints.join(","),
        }
    }

    /// A client. Nothing is contacted yet.
    pub fn open(&self) -> Result<Box<dyn Store>, StoreError> {
        match self {
            StoreConfig::Consul(c) => {
                Ok(Box::new(ConsulStore::new(c.clone()).map_err(|e| StoreError::Refused(e.to_string()))?))
            }
            StoreConfig::Etcd(c) => Ok(Box::new(EtcdStore::new(c.clone())?)),
            StoreConfig::Zookeeper(c) => Ok(Box::new(ZkStore::new(c.clone())?)),
        }
    }
}

fn read_token(path: &Path) -> Result<String, String> {
    let t =
        std::fs::read_to_string(path).map_err(|e| format!("--cluster-store-opt token-file={}: {e}", path.display()))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(format!("--cluster-store-opt token-file={}: the file is empty", path.display()));
    }
    Ok(t.to_string())
}

/// A rustls configuration trusting the CAs in `ca`, with a client certificate if given.
pub fn tls_config(ca: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let opt =
        |name: &str, p: &Path, e: &dyn std::fmt::Display| format!("--cluster-store-opt {name}={}: {e}", p.display());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| opt("ca", ca, &e))? {
        roots.add(c.map_err(|e| opt("ca", ca, &e))?).map_err(|e| opt("ca", ca, &e))?;
    }
    if roots.is_empty() {
        return Err(opt("ca", ca, &"no certificates in the file"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| opt("ca", ca, &e))?
        .with_root_certificates(roots);
    let cfg = match (cert, key) {
        (None, None) => b.with_no_client_auth(),
        (Some(c), Some(k)) => {
            let chain: Result<Vec<_>, _> = CertificateDer::pem_file_iter(c).map_err(|e| opt("cert", c, &e))?.collect();
            let chain = chain.map_err(|e| opt("cert", c, &e))?;
            let key = PrivateKeyDer::from_pem_file(k).map_err(|e| opt("key", k, &e))?;
            b.with_client_auth_cert(chain, key).map_err(|e| opt("cert", c, &e))?
        }
        _ => return Err("--cluster-store-opt: cert and key go together".into()),
    };
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Result<StoreUrl, String> {
        s.parse()
    }

    #[test]
    fn urls_in_libkv_shapes() {
        let u = url("etcd://10.0.0.1:2379,10.0.0.2,etcd3.example:32379/net/vxdp").unwrap();
        assert_eq!(u.kind, StoreKind::Etcd);
        assert_eq!(u.endpoints, ["10.0.0.1:2379", "10.0.0.2:2379", "etcd3.example:32379"]);
        assert_eq!(u.prefix.as_deref(), Some("net/vxdp/"));
        let u = url("consul://127.0.0.1").unwrap();
        assert_eq!((u.kind, u.endpoints[0].as_str(), u.prefix), (StoreKind::Consul, "127.0.0.1:8500", None));
        assert_eq!(url("etcd://[::1]:2379/").unwrap().endpoints, ["[::1]:2379"]);
    }

    #[test]
    fn malformed_urls_are_refused_naming_the_part() {
        for (u, says) in [
            ("etcd:/x:1", "not SCHEME://"),
            ("redis://x:1", "unknown store 'redis'"),
            ("etcd://", "no HOST:PORT"),
            ("etcd://a:1,,b:2", "empty address"),
            ("etcd://a:http", "'http' in 'a:http' is not a port"),
            ("etcd://a:0", "'a:0' is not HOST:PORT"),
            ("etcd://a b:1", "'a b:1' is not HOST:PORT"),
            ("consul://a:1,b:2", "consul takes one address"),
            ("etcd://a:1/x?y", "key prefix 'x?y'"),
            ("zk://a:2181,,b", "empty address"),
            ("zk://a:2181/x y", "key prefix 'x y'"),
        ] {
            let e = url(u).expect_err(u);
            assert!(e.contains(says) && e.contains(&format!("'{u}'")), "{u}: {e}");
        }
    }

    #[test]
    fn options_are_checked_against_the_store() {
        let etcd = url("etcd://a:1,b:2").unwrap();
        let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let StoreConfig::Etcd(c) = StoreConfig::new(&etcd, &opts(&["username=u", "password=p"])).unwrap() else {
            panic!("not etcd")
        };
        assert_eq!(c.endpoints, ["http://a:1", "http://b:2"]);
        assert_eq!(c.user, Some(("u".into(), "p".into())));
        for (o, says) in [
            (&["colour=red"][..], "unknown option 'colour'"),
            (&["token=x"][..], "etcd takes no 'token'"),
            (&["tls"][..], "'tls': not KEY=VALUE"),
            (&["tls=maybe"][..], "tls is on or off"),
            (&["tls=on"][..], "needs ca=FILE"),
            (&["ca=/nonexistent/ca.pem"][..], "ca=/nonexistent/ca.pem"),
            (&["username=u"][..], "username and password go together"),
            (&["username=u", "username=v"][..], "'username' given twice"),
        ] {
            let e = StoreConfig::new(&etcd, &opts(o)).expect_err(o[0]);
            assert!(e.contains(says), "{o:?}: {e}");
        }
        let consul = url("consul://c:8500").unwrap();
        let StoreConfig::Consul(c) =
            StoreConfig::new(&consul, &opts(&["token=t", "dc=dc2", "consistency=stale"])).unwrap()
        else {
            panic!("not consul")
        };
        assert_eq!((c.address.as_str(), c.token.as_deref()), ("http://c:8500", Some("t")));
        assert_eq!(c.consistency, Consistency::Stale);
        let e = StoreConfig::new(&consul, &opts(&["username=u"])).unwrap_err();
        assert!(e.contains("consul takes no 'username'"), "{e}");
        let e = StoreConfig::new(&consul, &opts(&["token-file=/nonexistent/t"])).unwrap_err();
        assert!(e.contains("token-file=/nonexistent/t"), "{e}");
        let zk = url("zk://z1,z2:2182/net").unwrap();
        assert_eq!((zk.kind, zk.prefix.as_deref()), (StoreKind::Zookeeper, Some("net/")));
        let StoreConfig::Zookeeper(c) = StoreConfig::new(&zk, &[]).unwrap() else { panic!("not zk") };
        assert_eq!(c.endpoints, ["z1:2181", "z2:2182"]);
        for o in ["tls=on", "ca=/x", "token=t", "username=u", "dc=d"] {
            let e = StoreConfig::new(&zk, &opts(&[o])).unwrap_err();
            let k = o.split('=').next().unwrap();
            assert!(e.contains(&format!("zk takes no '{k}' (it takes no options)")), "{o}: {e}");
        }
    }
}
