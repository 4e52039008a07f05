//! `vxdp run`'s options: parsed by clap, then validated into [`vxdp::daemon::Config`]
//! before anything is created. Every refused value names its option.

use crate::store_args::StoreArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;
use vxdp::afxdp::zerocopy::ZeroCopy;
use vxdp::daemon::Config;
use vxdp::express::Datapath;
use vxdp::guard::{AcceptPolicy, LearningFrom};
use vxdp::ports::Layout;
use vxdp::vxlan::{SrcPortRange, Vni};
use vxdp::xdp::XdpMode;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Name of the overlay device to create (like the kernel device's name); in the port
    /// layout it is vxdp's internal trunk to its workers, not to be bridged or addressed.
    #[arg(long, default_value = "vx0")]
    name: String,
    /// VXLAN Network Identifier (0-16777215).
    #[arg(long)]
    vni: Vni,
    /// UDP destination port of the remote VTEPs (and the one vxdp listens on).
    #[arg(long, default_value_t = 4789)]
    dstport: u16,
    /// Local VTEP IPv4 address (default: the first IPv4 address of --dev).
    #[arg(long)]
    local: Option<Ipv4Addr>,
    /// Underlay interface that carries the VXLAN traffic.
    #[arg(long)]
    dev: String,
    /// Remote VTEP for broadcast, multicast and unknown unicast: adds an all-zeros FDB
    /// entry (like `bridge fdb append 00:00:00:00:00:00 dst IP`). Repeatable.
    #[arg(long = "remote", value_name = "IP")]
    remotes: Vec<IpAddr>,
    /// Multicast group for broadcast, multicast and unknown unicast, instead of head-end
    /// replication (the kernel's `group`): adds the all-zeros FDB entry `dst GROUP`,
    /// joins the group on --dev (IGMP) and takes VXLAN sent to it. Outer TTL 1 unless
    /// --ttl gives one. Not with --remote.
    #[arg(long, value_name = "GROUP", conflicts_with = "remotes")]
    group: Option<IpAddr>,
    /// Learn inner source MACs behind remote VTEPs (the default).
    #[arg(long, overrides_with = "nolearning")]
    learning: bool,
    /// Do not learn inner source MACs.
    #[arg(long)]
    nolearning: bool,
    /// TTL of outer packets: 1-255, `auto` (64), or `inherit` (the inner IPv4 TTL or
    /// IPv6 hop limit; 64 for frames that are not IP).
    #[arg(long, default_value = "auto", value_name = "TTL")]
    ttl: vxdp::outer::Ttl,
    /// TOS of outer packets (0-255, decimal or 0x hex), or `inherit` (the inner
    /// packet's DSCP). The ECN bits always follow the inner packet (RFC 6040).
    #[arg(long, default_value = "0", value_name = "TOS")]
    tos: vxdp::outer::Tos,
    /// DF bit of outer packets: `unset` (the underlay may fragment them), `set`, or
    /// `inherit` (the inner IPv4 packet's DF; set for inner IPv6).
    #[arg(long, default_value = "unset", value_name = "unset|set|inherit")]
    df: vxdp::outer::Df,
    /// UDP source port range MIN MAX (MAX exclusive, as in the kernel); default: the
    /// kernel's local port range.
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"])]
    srcport: Option<Vec<u16>>,
    /// Compute the outer UDP checksum (vxdp sends zero by default).
    #[arg(long, overrides_with = "noudpcsum")]
    udpcsum: bool,
    /// Send a zero outer UDP checksum (the default).
    #[arg(long)]
    noudpcsum: bool,
    /// Seconds a learned entry lives without traffic from it.
    #[arg(long, default_value_t = 300)]
    ageing: u64,
    /// File of static FDB entries, one per line: `MAC dst IP [port PORT] [vni VNI]`.
    #[arg(long, value_name = "FILE")]
    fdb: Option<PathBuf>,
    /// Worker threads; each serves one RX queue of --dev and of the overlay device.
    #[arg(long, default_value_t = 1)]
    workers: u32,
    /// Pin worker i to the i-th CPU of LIST (e.g. `2,3` or `2-3`); one CPU per worker.
    /// Choose CPUs that RPS masks and IRQ affinity leave alone (see the README).
    /// Default: no pinning.
    #[arg(long, value_name = "LIST", value_parser = parse_cpu_list)]
    cpus: Option<CpuList>,
    /// Attach XDP in generic (skb) mode instead of native mode.
    #[arg(long)]
    xdp_generic: bool,
    /// Who moves frames: `auto` decapsulates and encapsulates known unicast in XDP (the
    /// express path) and leaves everything else to the AF_XDP workers; `afxdp` sends every
    /// frame to the workers (zero-copy NICs, benchmarking the workers).
    #[arg(long, value_name = "auto|afxdp", default_value = "auto")]
    datapath: Datapath,
    /// Outer sources VXLAN is taken from, enforced in XDP (which runs before the host
    /// firewall): `any` (the kernel's behaviour), or `known` (the VTEPs of static,
    /// flood-list and store entries) and/or IPv4 CIDR prefixes, comma-separated or
    /// repeated. The host's own addresses are refused in every mode.
    #[arg(long, value_name = "any|known|CIDR", num_args = 1.., default_value = "any")]
    accept: Vec<String>,
    /// Whose frames may teach the FDB where a MAC lives: `any` accepted source, or only
    /// `known` VTEPs (static, flood-list and store entries).
    #[arg(long, value_name = "known|any", default_value = "any")]
    learning_from: LearningFrom,
    /// Most MACs in the FDB before learning adds no new one (the kernel's `maxaddress`;
    /// 0: unlimited). Static and store entries count toward it but are never refused or
    /// evicted. The default is what the XDP express path's table holds.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_FDB)]
    max_fdb: usize,
    /// Most new or moved MACs learned from one remote VTEP per second (0: unlimited).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    learn_rate: u32,
    /// Most distinct remote VTEPs that learned entries may point at (0: unlimited); each
    /// one costs a route lookup and a neighbour entry.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_learned_remotes: usize,
    /// AF_XDP zero-copy on --dev: `auto` binds zero-copy where the NIC's driver
    /// supports it and copy mode elsewhere (veth); `on` fails where it cannot; `off`
    /// binds copy mode. The overlay side (a veth) always binds copy mode; both sockets
    /// register the same memory, so frames still change hands without a copy. The log
    /// names the mode each socket bound.
    #[arg(long, value_name = "auto|on|off", default_value = "auto")]
    zerocopy: ZeroCopy,
    /// Preferred busy polling: the workers run the NAPI of their queues themselves
    /// (SO_PREFER_BUSY_POLL on their sockets; napi_defer_hard_irqs and
    /// gro_flush_timeout set on --dev and the overlay device while vxdp runs), so the
    /// kernel's receive work is done at the workers' pace and overload is shed at the
    /// device. Linux >= 5.11.
    #[arg(long)]
    busy_poll: bool,
    /// Nice value of the worker threads (-20..=19). Below 0 a worker out-weighs the
    /// kernel's NAPI threads on a shared core, so overload is dropped before the kernel
    /// copies it into a socket the worker cannot drain (see docs/BENCHMARKS.md).
    #[arg(long, value_name = "N", default_value_t = -10, allow_hyphen_values = true,
          value_parser = clap::value_parser!(i32).range(-20..=19))]
    worker_nice: i32,
    /// How containers reach the overlay: `bridge` (the default) creates --name for a
    /// bridge, like a kernel vxlan device; `port` makes vxdp the switch itself, serving
    /// container-side veths as ports (--port, `vxdp port add`), with no bridge.
    #[arg(long, value_name = "bridge|port")]
    layout: Option<Layout>,
    /// Serve this interface (a container's host-side veth) as a port from the start;
    /// implies --layout port. Repeatable.
    #[arg(long = "port", value_name = "IF")]
    ports: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// ARP/ND suppression (the kernel's `proxy`): answer ARP requests and IPv6 neighbour
    /// solicitations for addresses in the `vxdp neigh` table locally instead of flooding
    /// them (unknown addresses are still flooded).
    #[arg(long)]
    proxy: bool,
    /// Serve Prometheus metrics (OpenMetrics text) on http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<std::net::SocketAddr>,
}

use vxdp::fdb::DEFAULT_MAX_FDB;

/// `--cpus`: CPU ids in the order given.
#[derive(Clone, Debug)]
struct CpuList(Vec<usize>);

/// A CPU list as `taskset -c` and sysfs write them: `2`, `0,2`, `2-5`, `0,2-3`.
fn parse_cpu_list(s: &str) -> Result<CpuList, String> {
    let configured = vxdp::cpus::configured();
    let mut out = Vec::new();
    for part in s.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let num = |t: &str| t.trim().parse::<usize>().map_err(|_| format!("'{part}' is not a CPU number or range"));
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(format!("'{part}': range runs backwards"));
        }
        for c in lo..=hi {
            if c >= configured {
                return Err(format!("CPU {c} does not exist (this machine has CPUs 0-{})", configured - 1));
            }
            if out.contains(&c) {
                return Err(format!("CPU {c} is listed twice"));
            }
            out.push(c);
        }
    }
    Ok(CpuList(out))
}

impl RunArgs {
    pub fn into_config(self) -> Result<Config> {
        let srcport = match self.srcport.as_deref() {
            None => SrcPortRange::default(),
            Some([min, max]) => SrcPortRange::new(*min, *max)
                .with_context(|| format!("--srcport {min} {max}: MIN must be below MAX"))?,
            Some(_) => bail!("--srcport takes two values, MIN and MAX"),
        };
        let store = self.store.settings()?; // a bad --cluster-store, --consul or CA file stops us before anything is created
        if self.name.is_empty() || self.name.len() > 15 || self.name.contains(['/', ' ']) {
            bail!("--name '{}': not a valid interface name (1-15 characters, no '/' or spaces)", self.name);
        }
        if let Some(CpuList(cpus)) = &self.cpus {
            if cpus.len() < self.workers as usize {
                bail!(
                    "--cpus {}: {} CPU(s) for {} workers; give one CPU per worker",
                    cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
                    cpus.len(),
                    self.workers
                );
            }
        }
        let layout = match (self.layout, self.ports.first()) {
            (Some(Layout::Bridge), Some(p)) => bail!("--port {p}: ports need --layout port, not bridge"),
            (Some(l), _) => l,
            (None, Some(_)) => Layout::Port,
            (None, None) => Layout::Bridge,
        };
        for p in &self.ports {
            if p.is_empty() || p.len() > 15 || p.contains(['/', ' ']) {
                bail!("--port '{p}': not a valid interface name");
            }
            if *p == self.dev || *p == self.name {
                bail!("--port {p}: that is vxdp's own interface (--dev or --name)");
            }
        }
        for r in &self.remotes {
            if r.is_unspecified() || r.is_multicast() {
                bail!("--remote {r}: must be a unicast VTEP address");
            }
            if r.is_ipv6() {
                bail!("--remote {r}: IPv6 underlay is not supported yet");
            }
        }
        let group = match self.group {
            None => None,
            Some(IpAddr::V4(g)) if g.is_multicast() => Some(g),
            Some(IpAddr::V6(g)) if g.is_multicast() => bail!("--group {g}: IPv6 underlay is not supported yet"),
            Some(g) => bail!("--group {g}: not a multicast address (224.0.0.0/4); a unicast VTEP is --remote"),
        };
        let accept = AcceptPolicy::parse(&self.accept).map_err(|e| anyhow::anyhow!("--accept: {e}"))?;
        Ok(Config {
            accept,
            learning_from: self.learning_from,
            learn_limits: vxdp::fdb::LearnLimits {
                max_entries: self.max_fdb,
                per_source_per_sec: self.learn_rate,
                max_learned_remotes: self.max_learned_remotes,
            },
            name: self.name,
            vni: self.vni,
            dstport: self.dstport,
            local: self.local,
            dev: self.dev,
            remotes: self.remotes,
            group,
            learning: !self.nolearning,
            outer: vxdp::outer::OuterKnobs { ttl: self.ttl, tos: self.tos, df: self.df },
            srcport,
            udpcsum: self.udpcsum && !self.noudpcsum,
            ageing: Duration::from_secs(self.ageing),
            fdb_file: self.fdb,
            workers: self.workers,
            cpus: self.cpus.map(|c| c.0).unwrap_or_default(),
            xdp_mode: if self.xdp_generic { XdpMode::Generic } else { XdpMode::Native },
            datapath: self.datapath,
            store,
            proxy: self.proxy,
            metrics: self.metrics,
            busy_poll: self.busy_poll,
            worker_nice: self.worker_nice,
            zerocopy: self.zerocopy,
            layout,
            ports: self.ports,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `vxdp run ARGS` through clap and `into_config`: the config, or the error text.
    fn run(args: &[&str]) -> Result<Config, String> {
        let vni: &[&str] = if args.contains(&"--vni") { &[] } else { &["--vni", "42"] };
        let argv = ["vxdp", "run", "--dev", "eth0"].iter().chain(vni).chain(args);
        let cli = crate::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let crate::Cmd::Run(r) = cli.cmd else { unreachable!("parsed `run`") };
        r.into_config().map_err(|e| format!("{e:#}"))
    }

    fn err(args: &[&str]) -> String {
        run(args).err().unwrap_or_else(|| panic!("{args:?} was accepted"))
    }

    #[test]
    fn defaults_are_the_kernel_devices() {
        let c = run(&[]).unwrap();
        assert_eq!((c.name.as_str(), c.dstport, c.outer), ("vx0", 4789, vxdp::outer::OuterKnobs::default()));
        let i = run(&["--ttl", "inherit", "--tos", "inherit", "--df", "inherit"]).unwrap().outer;
        assert_eq!(i.inherit(), 0b111);
        assert!(c.learning && !c.udpcsum && c.cpus.is_empty());
        assert_eq!(c.datapath, Datapath::Auto);
        assert_eq!(run(&["--datapath", "afxdp"]).unwrap().datapath, Datapath::Afxdp);
        assert_eq!((c.workers, c.ageing), (1, Duration::from_secs(300)));
        assert_eq!((c.accept, c.learning_from), (AcceptPolicy::default(), LearningFrom::Any));
        let k = run(&["--accept", "known", "10.0.0.0/8", "--learning-from", "known"]).unwrap();
        assert_eq!(k.accept.to_string(), "known,10.0.0.0/8");
        assert_eq!(k.learning_from, LearningFrom::Known);
        let l = c.learn_limits;
        assert_eq!((l.max_entries, l.per_source_per_sec, l.max_learned_remotes), (65_536, 1000, 1024));
        let u = run(&["--max-fdb", "0", "--learn-rate", "0", "--max-learned-remotes", "0"]).unwrap().learn_limits;
        assert_eq!(u, vxdp::fdb::LearnLimits::default(), "0 is unlimited");
        assert_eq!((c.zerocopy, c.busy_poll, c.worker_nice), (ZeroCopy::Auto, false, -10));
        let c = run(&["--zerocopy", "off", "--busy-poll", "--worker-nice", "0"]).unwrap();
        assert_eq!((c.zerocopy, c.busy_poll, c.worker_nice), (ZeroCopy::Off, true, 0));
        assert_eq!((c.layout, c.ports.len()), (Layout::Bridge, 0));
        let p = run(&["--port", "veth1", "--port", "veth2"]).unwrap();
        assert_eq!((p.layout, p.ports), (Layout::Port, vec!["veth1".to_string(), "veth2".to_string()]));
        assert_eq!(run(&["--layout", "port"]).unwrap().layout, Layout::Port);
        assert_eq!(c.group, None);
        assert_eq!(run(&["--group", "239.1.1.1"]).unwrap().group, Some(Ipv4Addr::new(239, 1, 1, 1)));
    }

    #[test]
    fn bad_values_are_refused_naming_the_option() {
        for (args, option, says) in [
            (&["--vni", "16777216"][..], "--vni", "out of range"),
            (&["--vni", "blue"], "--vni", "\"blue\""),
            (&["--ttl", "0"], "--ttl", "not a TTL"),
            (&["--df", "on"], "--df", "unset, set or inherit"),
            (&["--tos", "0x100"], "--tos", "not a TOS"),
            (&["--srcport", "5000", "4000"], "--srcport 5000 4000", "MIN must be below MAX"),
            (&["--remote", "224.0.0.1"], "--remote 224.0.0.1", "unicast"),
            (&["--remote", "2001:db8::1"], "--remote 2001:db8::1", "IPv6"),
            (&["--group", "192.0.2.1"], "--group 192.0.2.1", "not a multicast address"),
            (&["--group", "ff05::1"], "--group ff05::1", "IPv6"),
            (&["--group", "239.1.1.1", "--remote", "192.0.2.2"], "--group", "cannot be used with"),
            (&["--name", "a-name-longer-than-15"], "--name", "not a valid interface name"),
            (&["--cpus", "1-0"], "--cpus", "backwards"),
            (&["--cpus", "x"], "--cpus", "not a CPU number"),
            (&["--cpus", "0,0"], "--cpus", "listed twice"),
            (&["--cpus", "100000"], "--cpus", "does not exist"),
            (&["--cpus", "0", "--workers", "2"], "--cpus 0", "one CPU per worker"),
            (&["--datapath", "fast"], "--datapath", "not a datapath"),
            (&["--accept", "any,known"], "--accept", "cannot be combined"),
            (&["--accept", "10.0.0.0/40"], "--accept", "prefix length"),
            (&["--accept", "fd00::/8"], "--accept", "IPv6"),
            (&["--learning-from", "friends"], "--learning-from", "not known or any"),
            (&["--zerocopy", "yes"], "--zerocopy", "not a zero-copy setting"),
            (&["--worker-nice", "-21"], "--worker-nice", "-21"),
            (&["--layout", "star"], "--layout", "not a layout"),
            (&["--layout", "bridge", "--port", "veth1"], "--port veth1", "--layout port"),
            (&["--port", "eth0"], "--port eth0", "own interface"),
        ] {
            let e = err(args);
            assert!(e.contains(option) && e.contains(says), "{args:?}: {e}");
        }
    }

    #[test]
    fn cpu_lists_read_like_taskset() {
        let c = run(&["--cpus", "0", "--workers", "1"]).unwrap();
        assert_eq!(c.cpus, vec![0]);
        if vxdp::cpus::configured() >= 4 {
            assert_eq!(run(&["--cpus", "0,2-3", "--workers", "3"]).unwrap().cpus, vec![0, 2, 3]);
        }
    }
}
