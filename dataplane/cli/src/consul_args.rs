//! The Consul options of `vxdp run`, checked into [`ConsulSettings`] without contacting
//! Consul.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;
use vxdp::daemon::consul::ConsulSettings;
use vxdp_control::consul::{Client, Consistency, ConsulConfig};

/// The Consul options of `vxdp run`. `Debug` never shows the token.
#[derive(clap::Args, Clone)]
pub struct ConsulArgs {
    /// Consul HTTP address (http://host:port, https://host:port or host:port): watch it for FDB entries.
    #[arg(long = "consul", value_name = "URL", env = "CONSUL_HTTP_ADDR")]
    pub consul_address: Option<String>,
    /// Consul ACL token.
    #[arg(long = "consul-token", value_name = "TOKEN", env = "CONSUL_HTTP_TOKEN", hide_env_values = true)]
    pub consul_token: Option<String>,
    /// File holding the Consul ACL token (first line; a token on the command line shows
    /// in /proc/PID/cmdline to every local user).
    #[arg(long = "consul-token-file", value_name = "FILE", conflicts_with = "consul_token")]
    pub consul_token_file: Option<PathBuf>,
    /// Consul datacenter to query (default: the agent's).
    #[arg(long = "consul-dc", value_name = "DC")]
    pub consul_dc: Option<String>,
    /// PEM file of the CA(s) that sign the Consul servers' certificates (https).
    #[arg(long = "consul-ca", value_name = "FILE")]
    pub consul_ca: Option<PathBuf>,
    /// Read consistency: default (leader) or stale (any server).
    #[arg(long = "consul-consistency", value_name = "MODE", default_value = "default", value_parser = parse_consistency)]
    pub consul_consistency: Consistency,
    /// Key prefix of vxdp's entries in Consul's KV store.
    #[arg(long = "consul-prefix", value_name = "PREFIX", default_value = vxdp_control::consul::schema::DEFAULT_PREFIX)]
    pub consul_prefix: String,
    /// Publish this node as a VTEP of the VNI and the MACs seen behind the overlay device.
    #[arg(long, requires = "consul_address")]
    pub advertise: bool,
    /// Take a MAC key from Consul only if a session holds it (as every key `--advertise`
    /// writes is): a key written without one is skipped, counted and logged.
    #[arg(long, requires = "consul_address")]
    pub consul_require_session: bool,
    /// TTL of the advertising session in seconds (10-86400): how long a dead node's entries stay.
    #[arg(long = "consul-ttl", value_name = "SECS", default_value = "10", value_parser = clap::value_parser!(u64).range(10..=86400))]
    pub consul_ttl: u64,
}

fn parse_consistency(s: &str) -> Result<Consistency, String> {
    s.parse()
}

impl std::fmt::Debug for ConsulArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulArgs")
            .field("consul_address", &self.consul_address)
            .field("consul_token", &self.consul_token.as_ref().map(|_| "<redacted>"))
            .field("consul_token_file", &self.consul_token_file)
            .field("consul_dc", &self.consul_dc)
            .field("consul_ca", &self.consul_ca)
            .field("consul_prefix", &self.consul_prefix)
            .field("advertise", &self.advertise)
            .finish_non_exhaustive()
    }
}

impl ConsulArgs {
    /// Checks the options (address, CA file) without contacting Consul. `None`
    /// without `--consul`.
    pub fn settings(&self) -> Result<Option<ConsulSettings>> {
        let Some(address) = &self.consul_address else { return Ok(None) };
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
            token: match &self.consul_token_file {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("--consul-token-file {}: cannot read", path.display()))?;
                    let token = text.lines().next().unwrap_or("").trim().to_string();
                    if token.is_empty() {
                        bail!("--consul-token-file {}: the file holds no token", path.display());
                    }
                    Some(token)
                }
                None => self.consul_token.clone().filter(|t| !t.is_empty()),
            },
            datacenter: self.consul_dc.clone(),
            ca_file: self.consul_ca.clone(),
            consistency: self.consul_consistency,
        };
        Client::new(cfg.clone()).with_context(|| format!("--consul {address}"))?;
        Ok(Some(ConsulSettings {
            client: cfg,
            prefix: self.consul_prefix.clone(),
            advertise: self.advertise,
            ttl: Duration::from_secs(self.consul_ttl),
            require_session: self.consul_require_session,
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
        consul: ConsulArgs,
    }

    fn parse(args: &[&str]) -> Result<ConsulArgs, String> {
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
        assert_eq!(c.client.consistency, Consistency::Stale);
        assert_eq!(c.client.datacenter.as_deref(), Some("dc2"));
        assert_eq!((c.ttl, c.prefix.as_str(), c.advertise), (Duration::from_secs(10), "vxdp/", true));
        assert!(!c.require_session);
        let r = parse(&["--consul", "10.0.0.1:8500", "--consul-require-session"]).unwrap();
        assert!(r.settings().unwrap().unwrap().require_session);

        let e = parse(&["--consul", "x:1", "--consul-consistency", "strong"]).unwrap_err();
        assert!(e.contains("--consul-consistency") && e.contains("strong"), "{e}");
        let e = parse(&["--consul", "x:1", "--consul-ttl", "5"]).unwrap_err();
        assert!(e.contains("--consul-ttl"), "{e}");
        let dir = std::env::temp_dir().join(format!("vxdp-token-test-{}", std::process::id()));
        std::fs::write(&dir, "tok-from-file\n").unwrap();
        let f = parse(&["--consul", "10.0.0.1:8500", "--consul-token-file", dir.to_str().unwrap()]).unwrap();
        assert_eq!(f.settings().unwrap().unwrap().client.token.as_deref(), Some("tok-from-file"));
        std::fs::write(&dir, "\n").unwrap();
        let e = format!("{:#}", f.settings().unwrap_err());
        assert!(e.contains("--consul-token-file") && e.contains("no token"), "{e}");
        std::fs::remove_file(&dir).unwrap();
        let e = parse(&["--consul", "x:1", "--consul-token", "a", "--consul-token-file", "/x"]).unwrap_err();
        assert!(e.contains("--consul-token-file"), "{e}");
        let t = parse(&["--consul", "10.0.0.1:8500", "--consul-token", "s3cr3t"]).unwrap();
        let debug = format!("{t:?} {:?}", t.settings().unwrap().unwrap());
        assert!(!debug.contains("s3cr3t"), "{debug}");
        let e = parse(&["--advertise"]).unwrap_err();
        assert!(e.contains("--consul"), "{e}");
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
}
