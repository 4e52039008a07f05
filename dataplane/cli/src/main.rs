//! The `vxdp` command: the daemon (`run`) and its control client (`fdb`, `port`, `stats`).
#![forbid(unsafe_code)]

mod run_args;
mod stats;
mod store_args;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use run_args::RunArgs;
use stats::fmt_stats;
use vxdp::daemon;
use vxdp_control::ctl::{Client, Request, Response};
use vxdp_control::entry::FdbOp;

/// Userspace VXLAN (RFC 7348) data plane on AF_XDP: a drop-in for the kernel vxlan device.
#[derive(Parser, Debug)]
#[command(name = "vxdp", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a VXLAN tunnel endpoint (like `ip link add NAME type vxlan ...`) in the foreground.
    Run(Box<RunArgs>),
    /// Show or change the forwarding database of a running vxdp (like `bridge fdb`).
    ///
    /// vxdp fdb add|append|replace|del MAC dst IP [port PORT] [vni VNI] [dev NAME]
    /// vxdp fdb show [dev NAME]
    #[command(arg_required_else_help = true)]
    Fdb {
        /// add, append, replace, del or show.
        op: String,
        /// bridge-fdb style arguments: MAC dst IP [port PORT] [vni VNI] [dev NAME].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Show or change the proxy neighbour table of a running vxdp (like `ip neigh` on a
    /// vxlan device); with `vxdp run --proxy` it answers ARP and neighbour solicitations.
    ///
    /// vxdp neigh add|replace|del IP [lladdr MAC] [dev NAME]
    /// vxdp neigh show [dev NAME]
    #[command(arg_required_else_help = true)]
    Neigh {
        /// add, replace, del or show.
        op: String,
        /// ip-neigh style arguments: IP [lladdr MAC] [nud permanent] [dev NAME].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Show or change the ports of a running vxdp in the port layout (`--layout port`):
    /// container-side veths it switches between directly, without a bridge.
    ///
    /// vxdp port add IF [mac MAC] [dev NAME]
    ///
    /// vxdp port del IF [dev NAME]
    ///
    /// vxdp port show [dev NAME] [--json]
    #[command(arg_required_else_help = true)]
    Port {
        /// add, del or show.
        op: String,
        /// IF [mac MAC] [dev NAME]: the interface, a MAC to pin to it (others are
        /// learned), and which vxdp device (default vx0).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
        /// `show`: print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the overlay device of a running vxdp (like `ip link show`); with `-d` its
    /// settings, in the keywords and order of `ip -d link show` for a vxlan device.
    ///
    /// vxdp link show [dev NAME] [-d] [--json]
    #[command(arg_required_else_help = true)]
    Link {
        /// show.
        op: String,
        /// `dev NAME` (or just NAME): which vxdp device; default vx0.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Show the counters of a running vxdp: traffic per direction and drops by reason.
    Stats {
        /// `dev NAME` (or just NAME): which vxdp device; default vx0.
        args: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Picks `dev NAME` (or a bare NAME) out of a bridge-style argument tail.
fn dev_arg(args: &[String]) -> Result<String> {
    match args {
        [] => Ok("vx0".into()),
        [d, name] if d == "dev" => Ok(name.clone()),
        [name] if name != "dev" => Ok(name.clone()),
        _ => bail!("expected `dev NAME`, got `{}`", args.join(" ")),
    }
}

fn call(dev: &str, req: &Request) -> Result<Response> {
    let mut c = Client::connect(dev)?;
    Ok(c.call(req)?)
}

/// `vxdp port OP ARGS`.
fn port(op: &str, args: &[String], json: bool) -> Result<()> {
    // The trailing arguments take `--json` when it comes after them.
    let json = json || args.iter().any(|a| a == "--json");
    let args: Vec<String> = args.iter().filter(|a| *a != "--json").cloned().collect();
    let args = args.as_slice();
    let (req, dev) = match op {
        "add" => {
            let (add, dev) = vxdp_control::ports::parse_port_add(args).map_err(anyhow::Error::msg)?;
            (Request::PortAdd(add), dev)
        }
        "del" => match args {
            [ifname, rest @ ..] => (Request::PortDel(ifname.clone()), Some(dev_arg(rest)?)),
            [] => bail!("port del: expected an interface name (vxdp port del IF [dev NAME])"),
        },
        "show" => (Request::PortShow, Some(dev_arg(args)?)),
        other => bail!("port {other}: expected add, del or show"),
    };
    let dev = dev.unwrap_or_else(|| "vx0".into());
    match call(&dev, &req)? {
        Response::Ok => Ok(()),
        Response::Ports(p) if json => {
            println!("{}", serde_json::to_string_pretty(&p)?);
            Ok(())
        }
        Response::Ports(p) => {
            print!("{}", vxdp_control::ports::fmt_port_show(&p));
            Ok(())
        }
        Response::Error(e) => bail!("{e}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let cli = Cli::parse();
    if let Err(e) = dispatch(cli) {
        eprintln!("vxdp: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Run(args) => daemon::run(args.into_config()?),
        Cmd::Fdb { op, args } => {
            if op == "show" {
                let dev = dev_arg(&args)?;
                match call(&dev, &Request::FdbShow)? {
                    Response::Fdb(entries) => print!("{}", vxdp_control::ctl::fmt_fdb_show(&entries, Some(&dev))),
                    Response::Error(e) => bail!("{e}"),
                    other => bail!("unexpected answer from the daemon: {other:?}"),
                }
                return Ok(());
            }
            let op: FdbOp = op.parse()?;
            let parsed = vxdp_control::entry::parse_fdb_args(&args)?;
            let req = parsed.request(op)?;
            let dev = parsed.dev.unwrap_or_else(|| "vx0".into());
            match call(&dev, &Request::Fdb(req))? {
                Response::Ok => Ok(()),
                Response::Error(e) => bail!("{e}"),
                other => bail!("unexpected answer from the daemon: {other:?}"),
            }
        }
        Cmd::Neigh { op, args } => neigh(&op, &args),
        Cmd::Port { op, args, json } => port(&op, &args, json),
        Cmd::Link { op, args } => link(&op, &args),
        Cmd::Stats { args, json } => {
            let dev = dev_arg(&args)?;
            match call(&dev, &Request::Stats)? {
                Response::Stats(v) if json => println!("{}", serde_json::to_string_pretty(&v)?),
                Response::Stats(v) => print!("{}", fmt_stats(&v)),
                Response::Error(e) => bail!("{e}"),
                other => bail!("unexpected answer from the daemon: {other:?}"),
            }
            Ok(())
        }
    }
}

/// `vxdp link show [dev NAME] [-d|--details] [--json]`.
fn link(op: &str, args: &[String]) -> Result<()> {
    if op != "show" {
        bail!("link {op}: expected show (vxdp link show [dev NAME] [-d] [--json]; one device per daemon)");
    }
    let flag = |names: &[&str]| args.iter().any(|a| names.contains(&a.as_str()));
    let (details, json) = (flag(&["-d", "-details", "--details"]), flag(&["-j", "--json"]));
    let rest: Vec<String> = args.iter().filter(|a| !a.starts_with('-')).cloned().collect();
    let dev = dev_arg(&rest)?;
    match call(&dev, &Request::LinkShow)? {
        Response::Link(l) if json => println!("{}", serde_json::to_string_pretty(&l)?),
        Response::Link(l) => print!("{}", vxdp_control::link::fmt_link_show(&l, details)),
        Response::Error(e) => bail!("{e}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
    Ok(())
}

/// `vxdp neigh ...`: one request to the daemon, or `show`.
fn neigh(op: &str, args: &[String]) -> Result<()> {
    use vxdp_control::neigh::{fmt_neigh_show, parse_neigh_args, NeighOp};
    if op == "show" {
        let dev = dev_arg(args)?;
        match call(&dev, &Request::NeighShow)? {
            Response::Neigh(entries) => print!("{}", fmt_neigh_show(&entries, Some(&dev))),
            Response::Error(e) => bail!("{e}"),
            other => bail!("unexpected answer from the daemon: {other:?}"),
        }
        return Ok(());
    }
    let op: NeighOp = op.parse()?;
    let parsed = parse_neigh_args(args)?;
    let req = parsed.request(op)?;
    let dev = parsed.dev.unwrap_or_else(|| "vx0".into());
    match call(&dev, &Request::Neigh(req))? {
        Response::Ok => Ok(()),
        Response::Error(e) => bail!("{e}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}
