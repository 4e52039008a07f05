//! The cluster-store options of `vxdp run` (`--cluster-store URL`, its options, and the
//! older `--consul` spelling), checked into [`StoreSettings`] without contacting the
//! store.

use anyhow::{anyhow, bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;
use vxdp::daemon::store::StoreSettings;
use vxdp_control::consul::{Client, Consistency, ConsulConfig};
use vxdp_control::store::url::{check_prefix, StoreConfig, StoreUrl};

/// The cluster-store options of `vxdp run`.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Cluster store to watch for FDB entries: consul://HOST:PORT, etcd://HOST:PORT[,HOST:PORT...]
    /// or zk://HOST:PORT[,HOST:PORT...]; an optional /PATH is the key prefix.
    #[arg(long = "cluster-store", value_name = "URL")]
    pub cluster_store: Option<String>,
    /// Option of the cluster store, repeatable: tls=on|off, ca=FILE, cert=FILE, key=FILE,
    /// username=USER, password=PASS (etcd); token=TOKEN, token-file=FILE, dc=DC,
    /// consistency=default|stale (consul); zk takes none.
    #[arg(long = "cluster-store-opt", value_name = "KEY=VALUE", requires = "cluster_store")]
    pub cluster_store_opt: Vec<String>,
    /// Consul HTTP address (http://host:port, https://host:port or host:port): watch it for FDB
    /// entries (the same as --cluster-store consul://host:port with the --consul-* options).
    #[arg(long = "consul", value_name = "URL", env = "CONSUL_HTTP_ADDR")]
    pub consul_address: Option<String>,
    /// Consul ACL token.
    #[arg(long = "consul-token", value_name = "TOKEN", env = "CONSUL_HTTP_TOKEN", hide_env_values = true)]
    pub consul_token: Option<String>,
    /// Consul datacenter to query (default: the agent's).
    #[arg(long = "consul-dc", value_name = "DC")]
    pub consul_dc: Option<String>,
    /// PEM file of the CA(s) that sign the Consul servers' certificates (https).
    #[arg(long = "consul-ca", value_name = "FILE")]
    pub consul_ca: Option<PathBuf>,
    /// Read consistency: default (leader) or stale (any server).
    #[arg(long = "consul-consistency", value_name = "MODE", default_value = "default", value_parser = parse_consistency)]
    pub consul_consistency: Consistency,
    /// Key prefix of vxdp's entries in the store (a --cluster-store URL's path overrides it).
    #[arg(long = "consul-prefix", value_name = "PREFIX", default_value = vxdp_control::store::schema::DEFAULT_PREFIX)]
    pub consul_prefix: String,
    /// Publish this node as a VTEP of the VNI and the MACs seen behind the overlay device.
    #[arg(long)]
    pub advertise: bool,
    /// TTL of the advertising lease (Consul session, etcd lease, ZooKeeper session timeout) in seconds (10-86400): how long a dead node's entries stay.
    #[arg(long = "cluster-store-ttl", alias = "consul-ttl", value_name = "SECS", default_value = "10", value_parser = clap::value_parser!(u64).range(10..=86400))]
    pub consul_ttl: u64,
}

fn parse_consistency(s: &str) -> Result<Consistency, String> {
    s.parse()
}

impl StoreArgs {
    /// Checks the options (URL, address, CA and key files) without contacting the
    /// store. `None` without `--cluster-store` or `--consul`.
    pub fn settings(&self) -> Result<Option<StoreSettings>> {
        let ttl = Duration::from_secs(self.consul_ttl);
        if let Some(url) = &self.cluster_store {
            if let Some(c) = &self.consul_address {
                bail!("--cluster-store {url} and --consul {c} (or CONSUL_HTTP_ADDR) both given: use one");
            }
            let parsed: StoreUrl = url.parse().map_err(|e: String| anyhow!(e))?;
            let store = StoreConfig::new(&parsed, &self.cluster_store_opt).map_err(|e| anyhow!(e))?;
            let prefix = parsed.prefix.clone().unwrap_or_else(|| self.consul_prefix.clone());
            check_prefix(&prefix).map_err(|e| anyhow!("--consul-prefix: {e}"))?;
            return Ok(Some(StoreSettings { store, prefix, advertise: self.advertise, ttl }));
        }
        let Some(address) = &self.consul_address else {
            if self.advertise {
                bail!("--advertise needs a store to advertise in: give --cluster-store URL (or --consul URL)");
            }
            return Ok(None);
        };
        if let Some(dc) = &self.consul_dc {
            if dc.is_empty() || !dc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                bail!("--consul-dc '{dc}': a datacenter name is letters, digits, '-' and '_'");
            }
        }
        let p = &self.consul_prefix;
        if p.contains(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%')) || p.contains("//")
        {
            bail!("--consul-prefix '{p}': no spaces, control characters, '?', '#', '%' or '//' in a key prefix");
        }
        let cfg = ConsulConfig {
            address: address.clone(),
            token: self.consul_token.clone().filter(|t| !t.is_empty()),
            datacenter: self.consul_dc.clone(),
            ca_file: self.consul_ca.clone(),
            consistency: self.consul_consistency,
        };
        Client::new(cfg.clone()).with_context(|| format!("--consul {address}"))?;
        Ok(Some(StoreSettings {
            store: StoreConfig::Consul(cfg),
            prefix: self.consul_prefix.clone(),
            advertise: self.advertise,
            ttl,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        consul: StoreArgs,
    }

    fn parse(args: &[&str]) -> Result<StoreArgs, String> {
        Cli::try_parse_from(std::iter::once("vxdp").chain(args.iter().copied()))
            .map(|c| c.consul)
            .map_err(|e| e.to_string())
    }

    /// The options read CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN: with them set, the
    /// expectations below do not hold.
    fn env_is_clean(test: &str) -> bool {
        let set = ["CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN"].iter().any(|v| std::env::var_os(v).is_some());
        if set {
            eprintln!("{test}: skipped, CONSUL_HTTP_ADDR or CONSUL_HTTP_TOKEN is set");
        }
        !set
    }

    #[test]
    fn options_validate_and_errors_name_the_option() {
        if !env_is_clean("options_validate_and_errors_name_the_option") {
            return;
        }
        let none = parse(&[]).unwrap();
        assert!(none.settings().unwrap().is_none(), "no --consul must mean no Consul");
        let a =
            parse(&["--consul", "10.0.0.1:8500", "--consul-consistency", "stale", "--consul-dc", "dc2", "--advertise"])
                .unwrap();
        let c = a.settings().unwrap().expect("settings");
        let StoreConfig::Consul(client) = &c.store else { panic!("--consul is not Consul") };
        assert_eq!(client.consistency, Consistency::Stale);
        assert_eq!(client.datacenter.as_deref(), Some("dc2"));
        assert_eq!((c.ttl, c.prefix.as_str(), c.advertise), (Duration::from_secs(10), "vxdp/", true));

        let e = parse(&["--consul", "x:1", "--consul-consistency", "strong"]).unwrap_err();
        assert!(e.contains("--consul-consistency") && e.contains("strong"), "{e}");
        let e = parse(&["--consul", "x:1", "--consul-ttl", "5"]).unwrap_err();
        assert!(e.contains("--cluster-store-ttl") && e.contains("'5'"), "{e}");
        let e = format!("{:#}", parse(&["--advertise"]).unwrap().settings().expect_err("advertise without a store"));
        assert!(e.contains("--cluster-store"), "{e}");
        let e =
            format!("{:#}", parse(&["--consul", "ftp://x:1"]).unwrap().settings().expect_err("bad scheme accepted"));
        assert!(e.contains("--consul ftp://x:1"), "{e}");
        for (flag, value) in [("--consul-dc", "dc 1"), ("--consul-dc", ""), ("--consul-prefix", "vx?dp/")] {
            let e = format!("{:#}", parse(&["--consul", "x:1", flag, value]).unwrap().settings().expect_err(value));
            assert!(e.contains(&format!("{flag} '{value}'")), "{e}");
        }
        let bad_ca = parse(&["--consul", "https://x:8501", "--consul-ca", "/nonexistent/ca.pem"]).unwrap();
        let e = format!("{:#}", bad_ca.settings().expect_err("missing CA file accepted"));
        assert!(e.contains("--consul-ca /nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn cluster_store_urls_and_options() {
        if !env_is_clean("cluster_store_urls_and_options") {
            return;
        }
        let a = parse(&["--cluster-store", "etcd://10.0.0.1:2379,10.0.0.2:2379/net", "--advertise"]).unwrap();
        let s = a.settings().unwrap().expect("settings");
        let StoreConfig::Etcd(e) = &s.store else { panic!("not etcd") };
        assert_eq!(e.endpoints, ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
        assert_eq!((s.prefix.as_str(), s.advertise, s.ttl), ("net/", true, Duration::from_secs(10)));
        let s =
            parse(&["--cluster-store", "consul://c", "--cluster-store-opt", "token=t", "--cluster-store-ttl", "30"])
                .unwrap()
                .settings()
                .unwrap()
                .unwrap();
        let StoreConfig::Consul(c) = &s.store else { panic!("not consul") };
        assert_eq!((c.address.as_str(), c.token.as_deref(), s.prefix.as_str()), ("http://c:8500", Some("t"), "vxdp/"));
        assert_eq!(s.ttl, Duration::from_secs(30));

        let err = |args: &[&str]| format!("{:#}", parse(args).unwrap().settings().expect_err(args[1]));
        let e = err(&["--cluster-store", "etcd//a:1"]);
        assert!(e.contains("--cluster-store 'etcd//a:1'"), "{e}");
        let e = err(&["--cluster-store", "etcd://a:1", "--cluster-store-opt", "flavour=mint"]);
        assert!(e.contains("'flavour=mint'") && e.contains("unknown option 'flavour'"), "{e}");
        let e = err(&["--cluster-store", "etcd://a:1", "--consul", "c:8500"]);
        assert!(e.contains("--cluster-store etcd://a:1 and --consul c:8500"), "{e}");
        let e = parse(&["--cluster-store-opt", "tls=on"]).unwrap_err();
        assert!(e.contains("--cluster-store"), "{e}");
    }
}
