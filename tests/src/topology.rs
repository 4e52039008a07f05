//! The two-host test topology.
//!
//! ```text
//!  container CA                host A                      host B                container CB
//!  eth0 198.51.100.1/24 -- vethc-br0-VTEP  eth0 192.0.2.1 === eth0 192.0.2.2  VTEP-br0-vethc -- eth0 198.51.100.2/24
//!  (MTU 1450)                  (vx0 or vxlan0)   underlay veth    (vx0 or vxlan0)              (MTU 1450)
//! ```
//!
//! Each box is a namespace. A host's VTEP is either the vxdp daemon's
//! `vx0` or a kernel vxlan device `vxlan0`, VNI [`VNI`], UDP port 4789,
//! with an all-zeros flood entry towards the other host, enslaved to the
//! host's `br0`. Dropping the [`Topology`] stops daemons, then deletes
//! every namespace (and with them every device, including an overlay
//! veth a SIGKILLed daemon left behind).

use crate::daemon::Daemon;
use crate::netns::Netns;
use crate::vtep::kernel_vtep;

/// The VNI every VTEP in the topology uses.
pub const VNI: u32 = 42;
/// MTU of the container interfaces (underlay 1500 - 50 VXLAN overhead).
pub const CONTAINER_MTU: u32 = 1450;

/// Which host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    /// The other host.
    pub fn peer(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// What terminates VXLAN on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VtepKind {
    /// Linux kernel vxlan device `vxlan0`.
    Kernel,
    /// vxdp daemon with overlay device `vx0`.
    Vxdp,
}

/// One host: its namespace, the container behind it, and its VTEP.
pub struct Host {
    /// The host namespace (underlay `eth0`, `br0`, the VTEP).
    pub ns: Netns,
    /// The container namespace (`eth0` with [`Host::overlay_ip`]).
    pub container: Netns,
    /// The host's underlay address on `eth0`.
    pub underlay_ip: &'static str,
    /// The container's overlay address.
    pub overlay_ip: &'static str,
    /// Name of the VTEP device once added (`vx0` or `vxlan0`).
    pub vtep: Option<String>,
    /// The vxdp daemon, when the VTEP is vxdp.
    pub daemon: Option<Daemon>,
}

impl Host {
    /// The vxdp daemon; panics if this host's VTEP is not vxdp.
    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("this host runs no vxdp daemon")
    }

    /// MAC address of the container's `eth0`.
    pub fn container_mac(&self) -> String {
        link_mac(&self.container, "eth0")
    }
}

/// MAC address of `dev` in `ns`, lower-case `aa:bb:..`.
pub fn link_mac(ns: &Netns, dev: &str) -> String {
    let out = ns.run(format!("ip -j link show dev {dev}"));
    let json: serde_json::Value = serde_json::from_str(&out).expect("ip -j link is JSON");
    json[0]["address"].as_str().unwrap_or_else(|| panic!("no address for {dev} in {}: {out}", ns.name())).to_lowercase()
}

/// Both hosts and containers; everything is removed on drop.
pub struct Topology {
    pub a: Host,
    pub b: Host,
}

impl Topology {
    /// Builds namespaces, the underlay link, bridges and containers, but
    /// no VTEPs (see [`Topology::add_vtep`]).
    pub fn new() -> Topology {
        Topology::build(true)
    }

    /// [`Topology::new`] with the underlay veths' transmit checksum offload left on
    /// (the kernel's default): a kernel VTEP then sends inner TCP/UDP segments whose
    /// checksums only hold the pseudo-header sum, as in a lab or CI on veth.
    pub fn with_offloads() -> Topology {
        Topology::build(false)
    }

    fn build(tx_off: bool) -> Topology {
        let a = Host {
            ns: Netns::new("ha"),
            container: Netns::new("ca"),
            underlay_ip: "192.0.2.1",
            overlay_ip: "198.51.100.1",
            vtep: None,
            daemon: None,
        };
        let b = Host {
            ns: Netns::new("hb"),
            container: Netns::new("cb"),
            underlay_ip: "192.0.2.2",
            overlay_ip: "198.51.100.2",
            vtep: None,
            daemon: None,
        };
        a.ns.run(format!("ip link add eth0 type veth peer name eth0 netns {}", b.ns.name()));
        for h in [&a, &b] {
            let ns = &h.ns;
            ns.run(format!("ip addr add {}/24 dev eth0", h.underlay_ip));
            // A real NIC completes checksums before the wire; a veth hands
            // the peer CHECKSUM_PARTIAL skbs whose checksums are unfinished,
            // and XDP/AF_XDP on the receiving side would see them that way.
            // Turning tx checksum offload off makes the kernel finish them
            // (and segment GSO in software), as a NIC would.
            if tx_off {
                ns.run("ethtool -K eth0 tx off");
            }
            ns.run("ip link set eth0 up");
            // A NIC has its own receive path; a veth takes frames an XDP program
            // redirects into it (vxdp's express path sends on eth0) only when its
            // peer has NAPI, which GRO gives it (turned on once the link is up: set
            // while down, the kernel does not tell the peer).
            ns.run("ethtool -K eth0 gro on");
            ns.run("ip link add br0 type bridge");
            ns.run("ip link set br0 up");

            let c = &h.container;
            c.run(format!("ip link add eth0 type veth peer name vethc netns {}", ns.name()));
            c.run(format!("ip link set eth0 mtu {CONTAINER_MTU}"));
            c.run(format!("ip addr add {}/24 brd + dev eth0", h.overlay_ip));
            c.run("ip link set eth0 up");
            ns.run(format!("ip link set vethc mtu {CONTAINER_MTU}"));
            ns.run("ip link set vethc master br0 up");
        }
        Topology { a, b }
    }

    /// [`Topology::new`] plus a VTEP of the given kind on each host.
    pub fn with_vteps(a: VtepKind, b: VtepKind) -> Topology {
        let mut t = Topology::new();
        t.add_vtep(Side::A, a);
        t.add_vtep(Side::B, b);
        t
    }

    pub fn host(&self, side: Side) -> &Host {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    pub fn host_mut(&mut self, side: Side) -> &mut Host {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Adds a VTEP (VNI [`VNI`], flood entry to the other host) on
    /// `side`, enslaved to `br0` and up.
    pub fn add_vtep(&mut self, side: Side, kind: VtepKind) {
        self.add_vtep_with(side, kind, &[]);
    }

    /// [`Topology::add_vtep`] with extra `vxdp run` flags (ignored for a
    /// kernel VTEP).
    pub fn add_vtep_with(&mut self, side: Side, kind: VtepKind, extra: &[&str]) {
        let remote = self.host(side.peer()).underlay_ip;
        let h = self.host_mut(side);
        let dev = match kind {
            VtepKind::Kernel => {
                kernel_vtep(&h.ns, "vxlan0", VNI, h.underlay_ip, "eth0", &[remote]);
                "vxlan0"
            }
            VtepKind::Vxdp => {
                let vni = VNI.to_string();
                let mut args = vec!["--dev", "eth0", "--vni", &vni, "--remote", remote];
                args.extend_from_slice(extra);
                h.daemon = Some(Daemon::start(&h.ns, "vx0", &args));
                "vx0"
            }
        };
        h.ns.run(format!("ip link set {dev} master br0 up"));
        h.vtep = Some(dev.to_string());
    }
}

impl Default for Topology {
    fn default() -> Self {
        Topology::new()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Daemons first (graceful SIGTERM); the namespaces' own guards then
        // SIGKILL anything left and delete them.
        for h in [&mut self.a, &mut self.b] {
            drop(h.daemon.take());
        }
    }
}

/// Name of the second container's host-side veth on host A in a [`PortTopology`].
pub const A2_VETH: &str = "vethc2";
/// Overlay address of the second container on host A in a [`PortTopology`].
pub const A2_IP: &str = "198.51.100.3";

/// vxdp's port layout on host A, a kernel VTEP on host B:
///
/// ```text
///  container CA  eth0 198.51.100.1 -- vethc  (port) ┐
///                                                   ├ vxdp on A ═══ eth0 ═══ B: vxlan0 in br0 -- CB 198.51.100.2
///  container CA2 eth0 198.51.100.3 -- vethc2 (port) ┘
/// ```
///
/// A's containers' veths are vxdp's ports, in no bridge (`vethc` from `--port` at start,
/// `vethc2` added with `vxdp port add`). Their container ends are set up as the port
/// layout needs (see the README): GRO on, so frames XDP redirects into the host ends are
/// delivered (a veth needs NAPI on its peer for that), and TX checksum offload off, so
/// the frames they send carry finished checksums and are at most MTU-sized (XDP sees
/// bytes, not the skb's "checksum later" or segmentation metadata).
pub struct PortTopology {
    pub topo: Topology,
    /// The second container on host A.
    pub a2: Netns,
}

impl PortTopology {
    /// Builds the topology and starts vxdp on A with `extra` `vxdp run` flags.
    pub fn new(extra: &[&str]) -> PortTopology {
        PortTopology::build(Topology::new(), extra)
    }

    /// [`PortTopology::new`] on [`Topology::with_offloads`]: host B's kernel VTEP sends
    /// inner segments with unfinished checksums.
    pub fn with_offloads(extra: &[&str]) -> PortTopology {
        PortTopology::build(Topology::with_offloads(), extra)
    }

    fn build(mut topo: Topology, extra: &[&str]) -> PortTopology {
        topo.add_vtep(Side::B, VtepKind::Kernel);
        let a2 = Netns::new("ca2");
        let a = &mut topo.a;
        a.ns.run("ip link set vethc nomaster");
        a2.run(format!("ip link add eth0 type veth peer name {A2_VETH} netns {}", a.ns.name()));
        a2.run(format!("ip link set eth0 mtu {CONTAINER_MTU}"));
        a2.run(format!("ip addr add {A2_IP}/24 brd + dev eth0"));
        a2.run("ip link set eth0 up");
        a.ns.run(format!("ip link set {A2_VETH} mtu {CONTAINER_MTU} up"));
        for c in [&a.container, &a2] {
            c.run("ethtool -K eth0 gro on tx off");
        }
        let vni = VNI.to_string();
        let remote = topo.b.underlay_ip;
        let mut args = vec!["--dev", "eth0", "--vni", &vni, "--remote", remote, "--port", "vethc"];
        args.extend_from_slice(extra);
        let daemon = Daemon::start(&a.ns, "vx0", &args);
        daemon
            .ctl(&["port", "add", A2_VETH, "dev", "vx0"])
            .unwrap_or_else(|e| panic!("vxdp port add {A2_VETH}: {e:#}"));
        a.daemon = Some(daemon);
        a.vtep = Some("vx0".into());
        PortTopology { topo, a2 }
    }

    /// `vxdp port show --json` on A, parsed.
    pub fn ports(&self) -> serde_json::Value {
        let out = self.topo.a.daemon().ctl(&["port", "show", "dev", "vx0", "--json"]).expect("vxdp port show");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("port show is not JSON ({e}): {out}"))
    }

    /// The MACs `port show` lists on port `ifname` (empty if it is not a port).
    pub fn port_macs(&self, ifname: &str) -> Vec<String> {
        let ports = self.ports();
        let port = ports.as_array().into_iter().flatten().find(|p| p["name"] == ifname);
        port.and_then(|p| p["macs"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|m| m["mac"].as_str().map(str::to_lowercase))
            .collect()
    }
}
