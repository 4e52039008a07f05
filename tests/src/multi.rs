//! N hosts on one underlay segment, for control-plane scenarios (Consul).
//!
//! ```text
//!                       underlay namespace: bridge brU 192.0.2.254/24 (the test Consul listens here)
//!                        |              |              |
//!  host 1 eth0 192.0.2.1   host 2 eth0 192.0.2.2   host 3 eth0 192.0.2.3     (vx0 from vxdp, enslaved to br0)
//!  containers behind br0 on 198.51.100.0/24, MTU 1450, each its own namespace
//! ```
//!
//! Everything lives in namespaces created here and is deleted on drop (daemons are
//! stopped first), also when a test fails.

use crate::daemon::Daemon;
use crate::netns::Netns;
use crate::topology::CONTAINER_MTU;

/// One host of a [`Cluster`].
pub struct Node {
    pub ns: Netns,
    pub underlay_ip: String,
    pub daemon: Option<Daemon>,
}

impl Node {
    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("this node runs no vxdp")
    }

    /// `vxdp fdb show dev vx0` on this node.
    pub fn fdb_show(&self) -> String {
        self.daemon().ctl(&["fdb", "show", "dev", "vx0"]).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts vxdp (`vx0`) with `args` after `--dev eth0` and enslaves it to `br0`.
    pub fn start_vxdp(&mut self, args: &[&str]) {
        let mut all = vec!["--dev", "eth0"];
        all.extend_from_slice(args);
        self.daemon = Some(Daemon::start(&self.ns, "vx0", &all));
        self.ns.run("ip link set vx0 master br0 up");
    }
}

/// A container: its own namespace with `eth0` bridged into a host's `br0`.
pub struct Container {
    pub ns: Netns,
    pub ip: String,
    pub mac: String,
}

/// Hosts on a shared underlay bridge.
pub struct Cluster {
    // Field order is drop order: daemons (inside nodes) before the underlay.
    pub nodes: Vec<Node>,
    pub underlay: Netns,
}

/// Address of the underlay namespace on the bridge.
pub const UNDERLAY_SERVICE_IP: &str = "192.0.2.254";

impl Cluster {
    /// `n` hosts (1..=n → 192.0.2.i), each with a `br0`, no VTEPs yet.
    pub fn new(n: usize) -> Cluster {
        let underlay = Netns::new("u");
        underlay.run("ip link add brU type bridge");
        underlay.run(format!("ip addr add {UNDERLAY_SERVICE_IP}/24 dev brU"));
        underlay.run("ip link set brU up");
        let mut nodes = Vec::new();
        for i in 1..=n {
            let ns = Netns::new(&format!("h{i}"));
            let ip = format!("192.0.2.{i}");
            underlay.run(format!("ip link add p{i} type veth peer name eth0 netns {}", ns.name()));
            underlay.run(format!("ip link set p{i} master brU up"));
            // vxdp's express path redirects into the host's eth0, which a veth delivers
            // only if its peer has NAPI: GRO on p{i}, once up (see topology.rs).
            underlay.run(format!("ethtool -K p{i} gro on"));
            ns.run(format!("ip addr add {ip}/24 dev eth0"));
            // Finished checksums on the wire, as a NIC would (see topology.rs).
            ns.run("ethtool -K eth0 tx off");
            ns.run("ip link set eth0 up");
            ns.run("ip link add br0 type bridge");
            ns.run("ip link set br0 up");
            nodes.push(Node { ns, underlay_ip: ip, daemon: None });
        }
        Cluster { nodes, underlay }
    }

    /// A container on node `i` (0-based) with a fixed MAC and overlay IP.
    pub fn add_container(&self, i: usize, tag: &str, mac: &str, ip: &str) -> Container {
        let host = &self.nodes[i].ns;
        let ns = Netns::new(tag);
        let port = format!("c{tag}");
        ns.run(format!("ip link add eth0 type veth peer name {port} netns {}", host.name()));
        ns.run(format!("ip link set eth0 address {mac} mtu {CONTAINER_MTU}"));
        ns.run(format!("ip addr add {ip}/24 brd + dev eth0"));
        ns.run("ip link set eth0 up");
        host.run(format!("ip link set {port} mtu {CONTAINER_MTU}"));
        host.run(format!("ip link set {port} master br0 up"));
        Container { ns, ip: ip.to_string(), mac: mac.to_string() }
    }
}
