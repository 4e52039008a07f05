//! `vxdp run`: validate the configuration, build the overlay netdev, sockets and XDP
//! programs, start the workers, and run the control loop until a signal arrives.
//!
//! Nothing half-starts: every resource is owned by a guard that undoes it on drop, so
//! an error at any step (or a normal exit) removes what the earlier steps made. If the
//! process is killed, the kernel detaches the XDP programs with the process's link file
//! descriptors, and the underlay passes all traffic again.

mod busy_poll;
pub mod caps;
mod control;
mod control_loop;
mod group;
mod guard;
pub mod metrics;
mod overlay;
mod ports;
pub mod store;

use control::Control;
use control_loop::control_loop;
pub use overlay::peer_name;
use overlay::OverlayLink;

use crate::afxdp::worker::{Shared, Worker, WorkerConfig, FRAMES};
use crate::afxdp::xsk::{retry_busy, BindMode, RingSizes, Umem, XskSocket};
use crate::afxdp::zerocopy::ZeroCopy;
use crate::counters::WorkerCounters;
use crate::express::{Datapath, Express, ExpressSettings};
use crate::fdb::FdbTable;
use crate::netlink::Netlink;
use crate::nexthop::{EncapDefaults, NextHops};
use crate::ports::maps::PortMaps;
use crate::ports::{Layout, PortTable};
use crate::vxlan::{DecapConfig, SrcPortRange, Vni, OUTER_V4_LEN};
use crate::xdp::{XdpMode, XdpPrograms};
use anyhow::{bail, Context, Result};
use arc_swap::ArcSwap;
use ports::PortPlane;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vxdp_common::UnderlayConfig;
use vxdp_control::ctl::{self};
use vxdp_control::entry::{FdbOp, FdbRequest, Remote, Source};
use vxdp_control::mac::Mac;

/// A validated `vxdp run` configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub vni: Vni,
    pub dstport: u16,
    pub local: Option<Ipv4Addr>,
    pub dev: String,
    pub remotes: Vec<IpAddr>,
    /// `--group`: the multicast group that takes the flood list's place.
    pub group: Option<Ipv4Addr>,
    pub learning: bool,
    /// `--ttl`, `--tos`, `--df`: the outer IPv4 header's TTL, TOS and DF bit.
    pub outer: crate::outer::OuterKnobs,
    pub srcport: SrcPortRange,
    pub udpcsum: bool,
    pub ageing: Duration,
    pub fdb_file: Option<PathBuf>,
    pub workers: u32,
    /// CPU of worker i at index i (`--cpus`); empty: workers are not pinned.
    pub cpus: Vec<usize>,
    pub xdp_mode: XdpMode,
    /// `--datapath`: the XDP express path in front of the workers, or the workers alone.
    pub datapath: Datapath,
    /// A cluster store (Consul, etcd) as a source of entries (and the advertiser), if
    /// given.
    pub store: Option<store::StoreSettings>,
    /// `--accept`: the outer sources VXLAN is taken from.
    pub accept: crate::guard::AcceptPolicy,
    /// `--learning-from`: whose frames may teach the FDB.
    pub learning_from: crate::guard::LearningFrom,
    /// `--max-fdb`, `--learn-rate`, `--max-learned-remotes`: what learning may add.
    pub learn_limits: crate::fdb::LearnLimits,
    /// `--proxy`: answer ARP requests and neighbour solicitations from the `vxdp neigh`
    /// table instead of flooding them (the kernel device's `proxy`).
    pub proxy: bool,
    /// `--metrics ADDR:PORT`: serve Prometheus metrics on `/metrics`.
    pub metrics: Option<std::net::SocketAddr>,
    /// `--zerocopy`: how the underlay sockets bind (the overlay ones bind copy mode).
    pub zerocopy: ZeroCopy,
    /// `--busy-poll`: the workers drive the NAPI of their queues (preferred busy
    /// polling), so overload is shed at the device instead of starving them.
    pub busy_poll: bool,
    /// `--worker-nice`: the workers' nice value.
    pub worker_nice: i32,
    /// `--layout`: `vx0` for a bridge, or vxdp as the switch of its ports.
    pub layout: crate::ports::Layout,
    /// `--port`: the ports served from the start (port layout).
    pub ports: Vec<String>,
}

/// The largest MTU of a veth whose peer runs an XDP program in native mode (without
/// multi-buffer support): one 4 KiB page, less the XDP headroom (256), the skb's shared
/// info (320) and the Ethernet header (`veth_xdp_set`'s `max_mtu`). The overlay pair's
/// ends are capped at it; an AF_XDP frame (4 KiB) holds such a frame with its headroom.
pub const MAX_VETH_XDP_MTU: u32 = 3506;

pub(super) static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// Claims `--name` in this network namespace for the daemon's lifetime. Abstract Unix
/// socket names are exclusive per namespace and the kernel releases them when the
/// process dies, even by SIGKILL, so holding one is a lock that can never go stale.
fn instance_lock(name: &str) -> Result<std::os::unix::net::UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let addr = SocketAddr::from_abstract_name(format!("vxdp-lock/{name}"))?;
    UnixListener::bind_addr(&addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("--name {name}: another vxdp is already running with this name in this network namespace")
        } else {
            anyhow::Error::new(e).context(format!("--name {name}: cannot take the instance lock"))
        }
    })
}

/// Runs the daemon until SIGINT/SIGTERM.
pub fn run(cfg: Config) -> Result<()> {
    install_signal_handlers();
    let _instance = instance_lock(&cfg.name)?;
    let mut nl = Netlink::open().context("opening rtnetlink")?;

    // Underlay: the device, its MTU and queues, and the local VTEP address.
    let under = nl.link(&cfg.dev).with_context(|| format!("--dev {}: no such interface", cfg.dev))?;
    let local = match cfg.local {
        Some(a) => a,
        None => *nl
            .ipv4_addrs(under.index)?
            .first()
            .with_context(|| format!("--local not given and --dev {} has no IPv4 address", cfg.dev))?,
    };
    if cfg.workers == 0 || cfg.workers > under.num_rx_queues.max(1) {
        bail!(
            "--workers {}: {} has {} RX queue(s); use 1..={}",
            cfg.workers,
            cfg.dev,
            under.num_rx_queues,
            under.num_rx_queues.max(1)
        );
    }
    let overlay_mtu = under
        .mtu
        .checked_sub(OUTER_V4_LEN as u32)
        .filter(|m| *m >= 68)
        .with_context(|| format!("--dev {}: MTU {} is too small for VXLAN", cfg.dev, under.mtu))?;
    // The overlay pair is a veth with XDP on it, whose frames must fit one page: on a
    // jumbo underlay the overlay takes the most that does, not what the underlay leaves.
    let trunk_extra = if cfg.layout == Layout::Port { vxdp_common::ports::TRUNK_LEN as u32 } else { 0 };
    let overlay_mtu = match MAX_VETH_XDP_MTU - trunk_extra {
        cap if overlay_mtu > cap => {
            log::warn!(
                "--dev {}: MTU {} leaves {overlay_mtu} for the overlay, but {} takes at most {cap} (an XDP program on \
                 a veth takes frames of one page); set the other VTEPs' overlay MTU to {cap} as well",
                cfg.dev,
                under.mtu,
                cfg.name
            );
            cap
        }
        _ => overlay_mtu,
    };

    // Static entries first, so a bad --fdb file stops us before anything is created.
    let fdb = Arc::new(FdbTable::new(cfg.learning, cfg.ageing));
    fdb.set_limits(cfg.learn_limits);
    // `--group` is the flood list's one remote, as the kernel's `group` makes its
    // default entry (`00:00:00:00:00:00 dst GROUP self permanent`).
    let mut statics: Vec<(FdbRequest, Source)> = cfg
        .remotes
        .iter()
        .copied()
        .chain(cfg.group.map(IpAddr::V4))
        .map(|ip| {
            let req =
                FdbRequest { op: FdbOp::Append, mac: Mac::ZERO, remote: Some(Remote { ip, port: None, vni: None }) };
            (req, Source::Static)
        })
        .collect();
    if let Some(path) = &cfg.fdb_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("--fdb {}: cannot read", path.display()))?;
        let entries =
            vxdp_control::entry::parse_fdb_file(&text).with_context(|| format!("--fdb {}", path.display()))?;
        for (mac, remote) in entries {
            statics.push((FdbRequest { op: FdbOp::Append, mac, remote: Some(remote) }, Source::Static));
        }
    }
    fdb.apply_batch(&statics).context("applying static FDB entries")?;

    // Overlay netdev: a veth pair; the user sees `name`, vxdp attaches to the peer.
    let peer = peer_name(&cfg.name);
    if let Ok(existing) = nl.link(&peer) {
        // We hold the instance lock, so no live vxdp owns this pair: a previous run was
        // killed before it could clean up. Only a veth pair of exactly these two names
        // is ours; anything else is left alone.
        if !overlay::is_our_pair(&mut nl, &cfg.name, &existing) {
            bail!(
                "--name {}: a device named {peer} exists and is not the overlay pair of {}; vxdp deletes only \
                 devices it created, so rename or remove it",
                cfg.name,
                cfg.name
            );
        }
        log::warn!("removing {} / {peer} left behind by a vxdp that did not exit cleanly", cfg.name);
        nl.delete_link(&peer).with_context(|| format!("removing the stale overlay device {peer}"))?;
    }
    // In the port layout the pair is the trunk, whose frames carry a trunk header in
    // front of MTU-sized frames (`trunk_extra`): a veth drops what exceeds its peer's MTU.
    // In the bridge layout the peer takes what the underlay can carry: the veth drops
    // frames above the receiving end's MTU, and `vx0`'s MTU is the user's to raise
    // as a vxlan device's is (the workers answer what the underlay cannot carry with
    // ICMP "fragmentation needed", `vxlan::pmtu`).
    let peer_mtu =
        if trunk_extra == 0 { under.mtu.clamp(overlay_mtu, MAX_VETH_XDP_MTU) } else { overlay_mtu + trunk_extra };
    nl.create_veth_mtus(&cfg.name, &peer, (overlay_mtu + trunk_extra, peer_mtu), cfg.workers)
        .with_context(|| format!("--name {}: creating the overlay device", cfg.name))?;
    let _overlay_guard = OverlayLink { name: cfg.name.clone() };
    // Frames leave the stack through `name` with complete checksums and at most MTU size,
    // because AF_XDP on the peer sees bytes only, no offload metadata.
    crate::ethtool::disable_offloads(&cfg.name).with_context(|| format!("disabling offloads on {}", cfg.name))?;
    crate::ethtool::disable_offloads(&peer).with_context(|| format!("disabling offloads on {peer}"))?;
    let peer_link = nl.link(&peer)?;
    nl.set_up(&peer)?;
    nl.set_up(&cfg.name)?;
    let port_layout = cfg.layout == Layout::Port;
    if port_layout {
        // The pair is the trunk between the ports and the workers: nothing of the host's
        // own (IPv6 router solicitations, MLD) belongs on it.
        for end in [&cfg.name, &peer] {
            let knob = format!("/proc/sys/net/ipv6/conf/{end}/disable_ipv6");
            if let Err(e) = std::fs::write(&knob, "1") {
                log::debug!("{knob}: {e}");
            }
        }
    }
    if cfg.datapath == Datapath::Auto {
        // The express path redirects decapsulated frames into the peer, which the veth
        // delivers only if this end has NAPI: GRO gives it one. Set once both ends are
        // up; set while down, the kernel does not tell the peer.
        crate::ethtool::enable_gro(&cfg.name).with_context(|| format!("enabling GRO on {}", cfg.name))?;
    }

    // XDP programs and sockets.
    // The addresses VXLAN is taken on: the local VTEP's, and `--group`'s.
    let vtep_addrs: Vec<Ipv4Addr> = std::iter::once(local).chain(cfg.group).collect();
    let mut ucfg = UnderlayConfig { port_be: cfg.dstport.to_be(), n_v4: vtep_addrs.len() as u8, ..Default::default() };
    for (slot, a) in ucfg.local_v4.iter_mut().zip(&vtep_addrs) {
        *slot = u32::from_ne_bytes(a.octets());
    }
    ucfg.mac = under.mac;
    let mut xdp = XdpPrograms::load(&ucfg).context("loading the XDP programs")?;
    // Only this VNI is ours: VXLAN for any other goes to the kernel, where a vxlan
    // device of its own may serve it on the same address and port.
    xdp.serve_vni(cfg.vni.get(), 0).with_context(|| format!("serving VNI {}", cfg.vni))?;

    let stop = Arc::new(AtomicBool::new(false));
    let defaults = EncapDefaults {
        local,
        port: cfg.dstport,
        vni: cfg.vni,
        ttl: cfg.outer.template_ttl(),
        ttl_multicast: cfg.outer.template_ttl_multicast(),
        tos: cfg.outer.template_tos(),
        df: cfg.outer.template_df(),
        udp_csum: cfg.udpcsum,
    };
    let nexthops = Arc::new(ArcSwap::from_pointee(NextHops::new(defaults)));
    let local_macs = cfg
        .store
        .as_ref()
        .is_some_and(|c| c.advertise)
        .then(|| Arc::new(crate::afxdp::localmac::LocalMacQueue::new(4096)));
    let own_mac = Arc::new(AtomicU64::new(crate::afxdp::worker::NO_OWN_MAC));
    let neigh = Arc::new(crate::neigh::NeighTable::new());
    let port_table = Arc::new(PortTable::new());
    let shared = Shared {
        fdb: fdb.clone(),
        nexthops: nexthops.clone(),
        stop: stop.clone(),
        local_macs: local_macs.clone(),
        own_mac: own_mac.clone(),
        neigh: neigh.clone(),
        ports: port_table.clone(),
    };
    // The source filter is complete before the underlay program is attached: no frame
    // from a refused source is ever taken.
    if cfg.learning_from == crate::guard::LearningFrom::Known {
        fdb.set_learn_sources(Some(Default::default()));
    }
    let mut guard = guard::GuardDuty::new(
        crate::guard::Guard::new(&mut xdp, cfg.accept.clone()).context("setting up the --accept list")?,
        cfg.learning_from,
        cfg.name.clone(),
        own_mac,
    );
    guard.fdb_changed(&crate::guard::known_vteps(&fdb.show()), &fdb);
    guard.tick(&mut nl, true)?;
    log::info!("--accept {} --learning-from {}", cfg.accept, cfg.learning_from);
    let wcfg = WorkerConfig {
        decap: DecapConfig {
            vni: cfg.vni,
            port: cfg.dstport,
            local_v4: vtep_addrs.clone(),
            local_v6: vec![],
            // A VLAN-tagged inner frame of full MTU size is delivered, as the kernel's
            // `is_skb_forwardable` allows a tag beyond the MTU.
            max_inner_len: DecapConfig::max_inner_len_for_mtu(overlay_mtu as u16, true),
        },
        srcport: cfg.srcport,
        underlay_mtu: under.mtu,
        proxy: cfg.proxy,
        busy_poll: cfg.busy_poll,
        nice: cfg.worker_nice,
        ports: port_layout,
        inherit: cfg.outer.inherit(),
    };
    // The devices leave their NAPI to a busy-polling worker only with these set.
    let _napi_defer = if cfg.busy_poll {
        vec![
            busy_poll::NapiDefer::set(&cfg.dev).with_context(|| format!("--busy-poll on --dev {}", cfg.dev))?,
            busy_poll::NapiDefer::set(&peer).with_context(|| format!("--busy-poll on {peer}"))?,
        ]
    } else {
        Vec::new()
    };

    let mut workers = Vec::new();
    let mut counters = Vec::new();
    for q in 0..cfg.workers {
        let umem = Umem::new(FRAMES).context("allocating UMEM")?;
        // The same memory registered twice, once per socket: each is a UMEM of its own
        // with its own mode, so the underlay can bind zero-copy beside the veth.
        let zc = cfg.zerocopy;
        let us = retry_busy(|| XskSocket::bind_with(&umem, under.index, q, zc.underlay_bind(), RingSizes::default()))
            .map_err(|e| anyhow::anyhow!(zc.bind_error(&cfg.dev, q, &e)))?;
        let os = retry_busy(|| XskSocket::bind_with(&umem, peer_link.index, q, BindMode::Copy, RingSizes::default()))
            .with_context(|| format!("AF_XDP socket on {peer} queue {q}"))?;
        let mode = |s: &XskSocket| s.bound_mode().map_or_else(|e| format!("unknown ({e})"), |m| m.to_string());
        log::info!(
            "worker {q}: AF_XDP on {} queue {q} bound in {} mode (--zerocopy {zc}), on {peer} queue {q} in {} mode",
            cfg.dev,
            mode(&us),
            mode(&os)
        );
        if cfg.busy_poll {
            for (s, dev) in [(&us, &cfg.dev), (&os, &peer)] {
                s.set_busy_poll(busy_poll::BUSY_POLL_USECS, busy_poll::BUSY_POLL_BUDGET)
                    .with_context(|| format!("--busy-poll: AF_XDP socket on {dev} queue {q}"))?;
            }
        }
        xdp.register_underlay_socket(q, us.fd())?;
        xdp.register_overlay_socket(q, os.fd())?;
        let c = Arc::new(WorkerCounters::default());
        counters.push(c.clone());
        workers.push(Worker::new(q as usize, wcfg.clone(), shared.clone(), c, umem, us, os));
    }
    let mut express = Express::new(
        &mut xdp,
        &ExpressSettings {
            datapath: cfg.datapath,
            vni: cfg.vni.get(),
            learning: cfg.learning,
            report_local: local_macs.is_some(),
            // Decap takes a tagged full-MTU inner frame (see `wcfg`); encap's frames are
            // bounded by the underlay MTU below as well.
            max_inner_len: DecapConfig::max_inner_len_for_mtu(overlay_mtu as u16, true) as u32,
            underlay_mtu: under.mtu,
            srcport: (cfg.srcport.min, cfg.srcport.max),
            overlay_ifindex: peer_link.index,
            underlay_ifindex: under.index,
            proxy: cfg.proxy,
            trunk_ifindex: port_layout.then(|| nl.link(&cfg.name).map(|l| l.index)).transpose()?,
            inherit: cfg.outer.inherit(),
        },
    )
    .context("setting up the XDP express path")?;
    express.sync(&fdb, &nexthops.load(), fdb.coarse_now_secs()).context("mirroring the FDB into XDP")?;
    express.enable().context("turning the XDP express path on")?;
    log::info!(
        "datapath {}: {}",
        cfg.datapath,
        if express.active() { "XDP express path and AF_XDP workers" } else { "AF_XDP workers only" }
    );
    let express = Arc::new(Mutex::new(express));
    let port_maps = if port_layout { Some(Mutex::new(PortMaps::new(&mut xdp)?)) } else { None };
    xdp.attach_overlay(&peer, cfg.xdp_mode).with_context(|| format!("attaching XDP to {peer}"))?;
    if port_layout {
        xdp.attach_trunk(&cfg.name, cfg.xdp_mode)
            .with_context(|| format!("attaching XDP to the trunk {}", cfg.name))?;
    }
    xdp.attach_underlay(&cfg.dev, cfg.xdp_mode).with_context(|| format!("attaching XDP to --dev {}", cfg.dev))?;
    // Joined once the underlay program takes the group's VXLAN: from the first report
    // on, the group's frames are ours.
    let _membership = match cfg.group {
        Some(g) => {
            let m = group::Membership::join(g, local, under.index)
                .with_context(|| format!("--group {g}: cannot join it on --dev {}", cfg.dev))?;
            log::info!("--group {g}: joined on {}", cfg.dev);
            Some(m)
        }
        None => None,
    };
    let xdp = Arc::new(Mutex::new(xdp));
    let ports = Arc::new(PortPlane {
        table: port_table,
        maps: port_maps,
        xdp: xdp.clone(),
        mode: cfg.xdp_mode,
        reserved: vec![cfg.dev.clone(), cfg.name.clone(), peer.clone()],
    });
    for p in &cfg.ports {
        ports.add(p, None).map_err(|e| anyhow::anyhow!("--port {p}: {e}"))?;
    }

    // Setup is done: take the control socket's name while the holder of a taken one
    // can still be looked up, then keep only what the running daemon needs, before
    // any other thread exists (every thread inherits the reduced sets).
    let bound = ctl::Server::bind(&cfg.name).context("starting the control socket")?;
    let kept = caps::drop_to_running().context("dropping capabilities")?;
    log::info!("capabilities reduced to {kept:#x} with no_new_privs");
    let threads: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(i, w)| std::thread::Builder::new().name(format!("vxdp-w{i}")).spawn(move || w.run()))
        .collect::<std::io::Result<_>>()
        .context("starting workers")?;
    for (i, (t, cpu)) in threads.iter().zip(&cfg.cpus).enumerate() {
        if let Err(e) = crate::cpus::pin(t, *cpu) {
            shared.stop.store(true, Ordering::Relaxed);
            for t in threads {
                let _ = t.join();
            }
            bail!("--cpus: cannot pin worker {i} to CPU {cpu}: {e}");
        }
        log::info!("worker {i} pinned to CPU {cpu}");
    }

    let fdb_changed = Arc::new(AtomicBool::new(true));
    let store_stats = Arc::new(std::sync::OnceLock::new());
    let control = Arc::new(Control {
        store_stats: store_stats.clone(),
        name: cfg.name.clone(),
        fdb: fdb.clone(),
        counters,
        xdp: xdp.clone(),
        nexthops: nexthops.clone(),
        fdb_changed: fdb_changed.clone(),
        express: express.clone(),
        neigh,
        ports: ports.clone(),
        link: vxdp_control::link::LinkInfo {
            name: cfg.name.clone(),
            ifindex: 0,
            mtu: overlay_mtu,
            address: String::new(),
            vni: cfg.vni.get(),
            group: cfg.group.map(IpAddr::V4),
            local: IpAddr::V4(local),
            dev: cfg.dev.clone(),
            srcport: (cfg.srcport.min, cfg.srcport.max),
            dstport: cfg.dstport,
            learning: cfg.learning,
            proxy: cfg.proxy,
            ttl: cfg.outer.ttl.to_string(),
            tos: cfg.outer.tos.to_string(),
            df: cfg.outer.df.to_string(),
            ageing_secs: cfg.ageing.as_secs(),
            udpcsum: cfg.udpcsum,
            datapath: cfg.datapath.to_string(),
            layout: cfg.layout.to_string(),
            workers: cfg.workers,
        },
    });
    let server = bound.serve(control.clone()).context("starting the control socket")?;
    let store = store::start(
        cfg.store.as_ref(),
        store::Plumbing {
            fdb: fdb.clone(),
            fdb_changed: fdb_changed.clone(),
            vni: cfg.vni,
            local: IpAddr::V4(local),
            dstport: cfg.dstport,
            ageing: cfg.ageing,
            local_macs,
            own_addrs: nl
                .local_ipv4_addrs()
                .context("reading the host's addresses")?
                .into_iter()
                .map(IpAddr::V4)
                .collect(),
            store_stats: store_stats.clone(),
        },
    )?;

    let _metrics = match cfg.metrics {
        Some(addr) => {
            let status = store.as_ref().map(store::StorePlane::status);
            let control = control.clone();
            let sample = move || control.sample(status.iter().map(store::StoreStatus::get).collect());
            Some(
                metrics::MetricsServer::spawn(addr, Box::new(sample))
                    .with_context(|| format!("--metrics {addr}: cannot listen"))?,
            )
        }
        None => None,
    };

    log::info!(
        "{}: vni {} dstport {} local {} dev {} mtu {} workers {} layout {} ready",
        cfg.name,
        cfg.vni,
        cfg.dstport,
        local,
        cfg.dev,
        overlay_mtu,
        cfg.workers,
        cfg.layout
    );

    let result = control_loop(&mut nl, &control, &mut guard, defaults, under.index, &cfg.dev);

    // Teardown: stop the workers, then the control socket, then XDP, then the device.
    drop(store); // withdraws our advertised keys while the data path still runs
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    drop(server);
    drop(control);
    drop(xdp);
    log::info!("{}: stopped", cfg.name);
    result
}
