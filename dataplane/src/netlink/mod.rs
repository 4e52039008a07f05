//! Links, addresses, routes and neighbours through a small raw rtnetlink client.
//!
//! [`Netlink`] owns one NETLINK_ROUTE socket and does one request at a time: it builds
//! the message ([`wire::Request`]), sends it with a fresh sequence number, and reads
//! datagrams until the ACK, the error or the end of the dump ([`wire::feed`]).
//! [`resolve_next_hop`] turns a remote VTEP address into the underlay next hop the
//! encapsulation needs; [`ChangeMonitor`] says when the kernel's view changed.
//! (Turning offloads off is an ethtool ioctl, not netlink: see [`crate::ethtool`].)

mod monitor;
mod socket;
pub mod wire;

pub use monitor::ChangeMonitor;

use socket::NlSocket;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use wire::*;

/// How long one request waits for the kernel's reply before giving up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts at a dump the kernel marked interrupted (the table changed under it).
const DUMP_ATTEMPTS: usize = 3;
/// IFNAMSIZ - 1.
const IFNAME_MAX: usize = 15;

/// Errors of the netlink layer; each names the interface, address or request involved.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    Exists { what: String },
    #[error("{op}: {}{}", io::Error::from_raw_os_error(*errno), message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kernel { op: String, errno: i32, message: Option<String> },
    #[error("{op}: no reply from the kernel within {timeout:?}")]
    Timeout { op: String, timeout: Duration },
    #[error("{op}: malformed netlink reply: {reason}")]
    Malformed { op: String, reason: &'static str },
    #[error("{op}: the dump was interrupted {DUMP_ATTEMPTS} times by concurrent changes")]
    DumpInterrupted { op: String },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
}

impl NetlinkError {
    /// The kernel's errno (positive), if the kernel refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            NetlinkError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, NetlinkError::NotFound { .. })
    }

    /// Builds the error for a refused request; ENODEV/ENOENT become [`NotFound`] naming `what`.
    ///
    /// [`NotFound`]: NetlinkError::NotFound
    pub fn from_kernel(op: &str, what: &str, e: ErrorMsg) -> NetlinkError {
        let errno = -e.errno;
        if errno == libc::ENODEV || errno == libc::ENOENT {
            return NetlinkError::NotFound { what: what.to_owned() };
        }
        NetlinkError::Kernel { op: op.to_owned(), errno, message: e.message }
    }
}

/// A network interface as `ip link` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    /// All zero when the device has no 6-byte hardware address.
    pub mac: [u8; 6],
    /// Administratively up (IFF_UP).
    pub up: bool,
    pub num_rx_queues: u32,
    pub num_tx_queues: u32,
    /// `IFLA_LINK`: the interface this one is linked to (a veth's peer), if any.
    pub link: Option<u32>,
}

/// The kernel's answer to `ip route get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub oif: u32,
    pub gateway: Option<IpAddr>,
    pub prefsrc: Option<IpAddr>,
    /// The route's MTU metric: `ip route ... mtu N`, or a path MTU the kernel learned
    /// from an ICMP "fragmentation needed" (a cached exception `ip route get` shows).
    pub mtu: Option<u32>,
}

/// A neighbour (ARP/ND) entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub mac: Option<[u8; 6]>,
    /// NUD_* bits.
    pub state: u16,
}

impl Neighbour {
    pub const NUD_INCOMPLETE: u16 = NUD_INCOMPLETE;
    pub const NUD_REACHABLE: u16 = NUD_REACHABLE;
    pub const NUD_STALE: u16 = NUD_STALE;
    pub const NUD_DELAY: u16 = NUD_DELAY;
    pub const NUD_PROBE: u16 = NUD_PROBE;
    pub const NUD_FAILED: u16 = NUD_FAILED;
    pub const NUD_NOARP: u16 = NUD_NOARP;
    pub const NUD_PERMANENT: u16 = NUD_PERMANENT;

    /// The MAC can be used to send: a valid state and a link-layer address.
    pub fn is_usable(&self) -> bool {
        const VALID: u16 = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;
        self.state & VALID != 0 && self.mac.is_some()
    }
}

/// The underlay next hop of a remote VTEP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    pub ifindex: u32,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: IpAddr,
    /// The largest IP packet toward the remote: the route's MTU (or learned path MTU)
    /// when it is below the interface's, else the interface's.
    pub mtu: u32,
}

/// A request socket to the kernel's routing netlink.
#[derive(Debug)]
pub struct Netlink {
    sock: NlSocket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    pub fn open() -> Result<Self, NetlinkError> {
        let io_err = |source| NetlinkError::Io { op: "opening a NETLINK_ROUTE socket".into(), source };
        let sock = NlSocket::open(false).map_err(io_err)?;
        sock.set_recv_timeout(REPLY_TIMEOUT).map_err(io_err)?;
        // Start from the clock so replies meant for an earlier process cannot match.
        let seq =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(1);
        Ok(Netlink { sock, seq, buf: vec![0; 32 * 1024] })
    }

    pub fn link(&mut self, name: &str) -> Result<Link, NetlinkError> {
        check_ifname(name)?;
        let mut req = Request::new(RTM_GETLINK, NLM_F_ACK);
        req.fixed(&IfInfoMsg::default().encode())
            .attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
            .attr_str(IFLA_IFNAME, name);
        let what = iface(name);
        self.get_link(&mut req, &format!("looking up {what}"), &what)
    }

    pub fn link_by_index(&mut self, ifindex: u32) -> Result<Link, NetlinkError> {
        let mut req = Request::new(RTM_GETLINK, NLM_F_ACK);
        req.fixed(&IfInfoMsg { index: ifindex, ..Default::default() }.encode())
            .attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        let what = format!("interface index {ifindex}");
        self.get_link(&mut req, &format!("looking up {what}"), &what)
    }

    /// Creates a veth pair `name` <-> `peer` with `queues` TX and RX queues each, both
    /// ends MTU `mtu`. Error if either exists.
    pub fn create_veth(&mut self, name: &str, peer: &str, mtu: u32, queues: u32) -> Result<(), NetlinkError> {
        self.create_veth_mtus(name, peer, (mtu, mtu), queues)
    }

    /// [`Self::create_veth`] with MTU `mtus.0` on `name` and `mtus.1` on `peer`.
    pub fn create_veth_mtus(
        &mut self,
        name: &str,
        peer: &str,
        mtus: (u32, u32),
        queues: u32,
    ) -> Result<(), NetlinkError> {
        let (mtu, peer_mtu) = mtus;
        check_ifname(name)?;
        check_ifname(peer)?;
        let op = format!("creating veth pair {} <-> {}", iface(name), iface(peer));
        if name == peer {
            return Err(NetlinkError::Invalid { what: op, reason: "both ends have the same name".into() });
        }
        if queues == 0 {
            return Err(NetlinkError::Invalid { what: op, reason: "the queue count must be at least 1".into() });
        }
        let mut req = Request::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        req.fixed(&IfInfoMsg::default().encode())
            .attr_str(IFLA_IFNAME, name)
            .attr_u32(IFLA_MTU, mtu)
            .attr_u32(IFLA_NUM_TX_QUEUES, queues)
            .attr_u32(IFLA_NUM_RX_QUEUES, queues);
        let info = req.nest_begin(IFLA_LINKINFO);
        req.attr_str(IFLA_INFO_KIND, "veth");
        let data = req.nest_begin(IFLA_INFO_DATA);
        let peer_nest = req.nest_begin(VETH_INFO_PEER);
        // VETH_INFO_PEER holds a whole ifinfomsg, then the peer's own link attributes.
        req.fixed(&IfInfoMsg::default().encode())
            .attr_str(IFLA_IFNAME, peer)
            .attr_u32(IFLA_MTU, peer_mtu)
            .attr_u32(IFLA_NUM_TX_QUEUES, queues)
            .attr_u32(IFLA_NUM_RX_QUEUES, queues);
        req.nest_end(peer_nest).nest_end(data).nest_end(info);
        match self.exchange(&mut req, &op, &mut |_| Ok(())) {
            Ok(_) => {
                log::info!("created veth pair {name} <-> {peer} (mtu {mtu} / {peer_mtu}, {queues} queues)");
                Ok(())
            }
            Err(Failure::Kernel(e)) if e.errno == -libc::EEXIST => {
                // The kernel does not say which end clashed; find out, to name it.
                let which = if self.link(name).is_ok() { name } else { peer };
                Err(NetlinkError::Exists { what: iface(which) })
            }
            Err(f) => Err(f.into_error(&op, &op)),
        }
    }

    pub fn delete_link(&mut self, name: &str) -> Result<(), NetlinkError> {
        check_ifname(name)?;
        let mut req = Request::new(RTM_DELLINK, NLM_F_ACK);
        req.fixed(&IfInfoMsg::default().encode()).attr_str(IFLA_IFNAME, name);
        let what = iface(name);
        self.exchange(&mut req, &format!("deleting {what}"), &mut |_| Ok(()))
            .map_err(|f| f.into_error(&format!("deleting {what}"), &what))?;
        log::info!("deleted interface {name}");
        Ok(())
    }

    pub fn set_up(&mut self, name: &str) -> Result<(), NetlinkError> {
        check_ifname(name)?;
        let mut req = Request::new(RTM_NEWLINK, NLM_F_ACK);
        req.fixed(&IfInfoMsg { flags: IFF_UP, change: IFF_UP, ..Default::default() }.encode())
            .attr_str(IFLA_IFNAME, name);
        let what = iface(name);
        let op = format!("setting {what} up");
        self.exchange(&mut req, &op, &mut |_| Ok(())).map_err(|f| f.into_error(&op, &what))?;
        Ok(())
    }

    /// The IPv4 addresses of `ifindex` (the local address, not a point-to-point peer),
    /// primary first, as the kernel lists them.
    pub fn ipv4_addrs(&mut self, ifindex: u32) -> Result<Vec<Ipv4Addr>, NetlinkError> {
        self.addrs_of(ifindex, AF_INET, |a| match a {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
    }

    /// The IPv6 addresses of `ifindex`, including link-local and tentative ones, but not
    /// those whose duplicate address detection failed.
    pub fn ipv6_addrs(&mut self, ifindex: u32) -> Result<Vec<Ipv6Addr>, NetlinkError> {
        self.addrs_of(ifindex, AF_INET6, |a| match a {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        })
    }

    /// The addresses of one family of `ifindex`, as that family's address type.
    fn addrs_of<A>(
        &mut self,
        ifindex: u32,
        family: u8,
        of_family: fn(IpAddr) -> Option<A>,
    ) -> Result<Vec<A>, NetlinkError> {
        Ok(self.addrs(ifindex, family)?.into_iter().filter_map(of_family).collect())
    }

    /// RTM_GETROUTE for dst (like `ip route get`): output interface, gateway if any,
    /// preferred source.
    pub fn route_get(&mut self, dst: IpAddr) -> Result<Route, NetlinkError> {
        self.route_lookup(dst).map(|(r, _)| r)
    }

    /// The neighbour entry of `ip` on `ifindex` if the kernel has one (any state).
    pub fn neigh_get(&mut self, ifindex: u32, ip: IpAddr) -> Result<Option<Neighbour>, NetlinkError> {
        let mut req = Request::new(RTM_GETNEIGH, NLM_F_ACK);
        req.fixed(&NdMsg { family: family_of(ip), index: ifindex, ..Default::default() }.encode()).attr_ip(NDA_DST, ip);
        let op = format!("looking up neighbour {ip} on interface index {ifindex}");
        let mut found = None;
        let res = self.exchange(&mut req, &op, &mut |msg| {
            if msg.ty == RTM_NEWNEIGH {
                found = Some(parse_neigh(msg)?);
            }
            Ok(())
        });
        match res {
            Ok(_) => Ok(found),
            // ENOENT: no entry. ENODEV would be the interface itself.
            Err(Failure::Kernel(e)) if e.errno == -libc::ENOENT => Ok(None),
            Err(f) => Err(f.into_error(&op, &format!("interface index {ifindex}"))),
        }
    }

    /// Asks the kernel to resolve `ip` on `ifindex` (ARP/ND) without sending traffic of
    /// our own: RTM_NEWNEIGH with NTF_USE and NLM_F_CREATE makes the kernel create the
    /// entry if needed and run `neigh_event_send()` on it, which starts a probe from
    /// NONE/FAILED (broadcast ARP / multicast NS) and moves STALE to DELAY (then a
    /// unicast probe). An entry already INCOMPLETE keeps its running probe.
    pub fn neigh_resolve(&mut self, ifindex: u32, ip: IpAddr) -> Result<(), NetlinkError> {
        let mut req = Request::new(RTM_NEWNEIGH, NLM_F_ACK | NLM_F_CREATE);
        req.fixed(&NdMsg { family: family_of(ip), index: ifindex, flags: NTF_USE, ..Default::default() }.encode())
            .attr_ip(NDA_DST, ip);
        let op = format!("resolving neighbour {ip} on interface index {ifindex}");
        self.exchange(&mut req, &op, &mut |_| Ok(()))
            .map_err(|f| f.into_error(&op, &format!("interface index {ifindex}")))?;
        Ok(())
    }

    fn get_link(&mut self, req: &mut Request, op: &str, what: &str) -> Result<Link, NetlinkError> {
        let mut found = None;
        self.exchange(req, op, &mut |msg| {
            if msg.ty == RTM_NEWLINK {
                found = Some(parse_link(msg)?);
            }
            Ok(())
        })
        .map_err(|f| f.into_error(op, what))?;
        found.ok_or_else(|| NetlinkError::Malformed { op: op.to_owned(), reason: "no RTM_NEWLINK in the reply" })
    }

    fn addrs(&mut self, ifindex: u32, family: u8) -> Result<Vec<IpAddr>, NetlinkError> {
        let out = self.addrs_where(Some(ifindex), family)?;
        if out.is_empty() {
            // Tell "no addresses" from "no such interface".
            self.link_by_index(ifindex)?;
        }
        Ok(out)
    }

    /// Every IPv4 address of every interface in this network namespace (loopback's
    /// included): the addresses the kernel treats as local, which a received packet may
    /// not come from.
    pub fn local_ipv4_addrs(&mut self) -> Result<Vec<Ipv4Addr>, NetlinkError> {
        Ok(self
            .addrs_where(None, AF_INET)?
            .into_iter()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })
            .collect())
    }

    /// The addresses of one family, of `ifindex` or (None) of every interface.
    fn addrs_where(&mut self, ifindex: Option<u32>, family: u8) -> Result<Vec<IpAddr>, NetlinkError> {
        let op = match ifindex {
            Some(i) => format!("listing the addresses of interface index {i}"),
            None => "listing the addresses of every interface".to_string(),
        };
        let mut out = Vec::new();
        self.dump(
            RTM_GETADDR,
            &op,
            &mut out,
            |msg, out| {
                if msg.ty != RTM_NEWADDR {
                    return Ok(());
                }
                let (fixed, attrs) = split_fixed(msg.payload, IFADDRMSG_LEN)?;
                let h = IfAddrMsg::decode(fixed);
                if ifindex.is_some_and(|i| h.index != i) || h.family != family {
                    return Ok(());
                }
                let flags = attrs.u32(IFA_FLAGS)?.unwrap_or(u32::from(h.flags));
                if flags & IFA_F_DADFAILED != 0 {
                    return Ok(());
                }
                // IFA_LOCAL is the local end; IFA_ADDRESS is the peer on point-to-point links.
                if let Some(a) = attrs.ip(IFA_LOCAL, family)?.or(attrs.ip(IFA_ADDRESS, family)?) {
                    out.push(a);
                }
                Ok(())
            },
            |req| {
                req.fixed(&IfAddrMsg { family, ..Default::default() }.encode());
            },
        )?;
        Ok(out)
    }

    /// `route_get` plus the route type (RTN_*).
    fn route_lookup(&mut self, dst: IpAddr) -> Result<(Route, u8), NetlinkError> {
        let family = family_of(dst);
        let mut req = Request::new(RTM_GETROUTE, NLM_F_ACK);
        req.fixed(&RtMsg { family, dst_len: if dst.is_ipv4() { 32 } else { 128 }, ..Default::default() }.encode())
            .attr_ip(RTA_DST, dst);
        let op = format!("route lookup for {dst}");
        let mut found = None;
        self.exchange(&mut req, &op, &mut |msg| {
            if msg.ty == RTM_NEWROUTE {
                found = Some(parse_route(msg)?);
            }
            Ok(())
        })
        // A missing route is ENETUNREACH, kept as a kernel error naming the address.
        .map_err(|f| f.into_error(&op, &format!("route to {dst}")))?;
        found.ok_or(NetlinkError::Malformed { op, reason: "no RTM_NEWROUTE in the reply" })
    }

    /// Sends `req` and feeds the reply's messages to `on_msg` until it completes.
    /// Returns whether a dump was marked interrupted.
    fn exchange(
        &mut self,
        req: &mut Request,
        op: &str,
        on_msg: &mut dyn FnMut(&Message<'_>) -> Result<(), WireError>,
    ) -> Result<bool, Failure> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let seq = self.seq;
        self.sock.send(req.finish(seq)).map_err(Failure::Io)?;
        let mut interrupted = false;
        // Bounded: each receive waits at most REPLY_TIMEOUT, and a reply that keeps
        // streaming unrelated messages for this long is treated as lost.
        let deadline = std::time::Instant::now() + REPLY_TIMEOUT * 2;
        loop {
            let (n, from_kernel) = match self.sock.recv(&mut self.buf, 0) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(Failure::Timeout),
                Err(e) => return Err(Failure::Io(e)),
            };
            if from_kernel {
                match feed(&self.buf[..n], seq, &mut interrupted, on_msg).map_err(Failure::Wire)? {
                    Progress::More => {}
                    Progress::Done { interrupted } => return Ok(interrupted),
                    Progress::Failed(e) => return Err(Failure::Kernel(e)),
                }
            } else {
                log::debug!("{op}: ignoring a netlink datagram not sent by the kernel");
            }
            if std::time::Instant::now() > deadline {
                return Err(Failure::Timeout);
            }
        }
    }

    /// A dump request (`NLM_F_DUMP`), retried when the kernel marks it interrupted.
    fn dump<T>(
        &mut self,
        ty: u16,
        op: &str,
        out: &mut Vec<T>,
        mut on_msg: impl FnMut(&Message<'_>, &mut Vec<T>) -> Result<(), WireError>,
        fill: impl Fn(&mut Request),
    ) -> Result<(), NetlinkError> {
        for _ in 0..DUMP_ATTEMPTS {
            out.clear();
            let mut req = Request::new(ty, NLM_F_DUMP);
            fill(&mut req);
            let interrupted = self.exchange(&mut req, op, &mut |m| on_msg(m, out)).map_err(|f| f.into_error(op, op))?;
            if !interrupted {
                return Ok(());
            }
            log::debug!("{op}: dump interrupted, retrying");
        }
        Err(NetlinkError::DumpInterrupted { op: op.to_owned() })
    }
}

/// Why an exchange failed, before the caller adds its context.
#[derive(Debug)]
enum Failure {
    Io(io::Error),
    Timeout,
    Wire(WireError),
    Kernel(ErrorMsg),
}

impl Failure {
    fn into_error(self, op: &str, what: &str) -> NetlinkError {
        match self {
            Failure::Io(source) => NetlinkError::Io { op: op.to_owned(), source },
            Failure::Timeout => NetlinkError::Timeout { op: op.to_owned(), timeout: REPLY_TIMEOUT },
            Failure::Wire(WireError(reason)) => NetlinkError::Malformed { op: op.to_owned(), reason },
            Failure::Kernel(e) => NetlinkError::from_kernel(op, what, e),
        }
    }
}

/// Resolves the underlay next hop (route + neighbour) for a VTEP address.
///
/// Returns Ok(Some) when resolved; Ok(None) when the neighbour is not (yet) usable,
/// after triggering resolution. Because vxdp's own traffic bypasses the kernel, the
/// kernel never confirms the entry; a STALE entry is therefore still used but also
/// re-probed (NTF_USE), so it returns to REACHABLE, or fails, and the change monitor
/// reports it either way.
pub fn resolve_next_hop(nl: &mut Netlink, dst: IpAddr) -> Result<Option<NextHop>, NetlinkError> {
    let (route, ty) = nl.route_lookup(dst)?;
    if ty != RTN_UNICAST {
        let reason = if ty == RTN_LOCAL {
            "is a local address".into()
        } else {
            format!("has a route of type {ty}, not unicast")
        };
        return Err(NetlinkError::Invalid { what: format!("remote VTEP {dst}"), reason });
    }
    let link = nl.link_by_index(route.oif)?;
    let src_ip = match route.prefsrc {
        Some(a) => a,
        None => first_addr(nl, route.oif, dst)?.ok_or_else(|| NetlinkError::Invalid {
            what: format!("remote VTEP {dst}"),
            reason: format!("interface {} has no address of that family to send from", link.name),
        })?,
    };
    let via = route.gateway.unwrap_or(dst);
    match nl.neigh_get(route.oif, via)? {
        Some(n @ Neighbour { mac: Some(dst_mac), state }) if n.is_usable() => {
            if state & NUD_STALE != 0 {
                nl.neigh_resolve(route.oif, via)?;
            }
            let mtu = route.mtu.map_or(link.mtu, |m| m.min(link.mtu));
            Ok(Some(NextHop { ifindex: route.oif, src_mac: link.mac, dst_mac, src_ip, mtu }))
        }
        _ => {
            nl.neigh_resolve(route.oif, via)?;
            Ok(None)
        }
    }
}

/// The next hop toward the multicast `group` out of `ifindex`, sent from `src_ip`: no
/// route and no neighbour, as the kernel's vxlan device sends to its `group` on `dev`;
/// the destination MAC is the group's (`ip_mc_map`).
pub fn multicast_next_hop(
    nl: &mut Netlink,
    ifindex: u32,
    group: Ipv4Addr,
    src_ip: IpAddr,
) -> Result<NextHop, NetlinkError> {
    let link = nl.link_by_index(ifindex)?;
    Ok(NextHop { ifindex, src_mac: link.mac, dst_mac: ipv4_multicast_mac(group), src_ip, mtu: link.mtu })
}

/// The Ethernet address of an IPv4 multicast group (RFC 1112 §6.4): 01:00:5e, then the
/// group's low 23 bits.
pub fn ipv4_multicast_mac(group: Ipv4Addr) -> [u8; 6] {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

fn first_addr(nl: &mut Netlink, ifindex: u32, like: IpAddr) -> Result<Option<IpAddr>, NetlinkError> {
    Ok(match like {
        IpAddr::V4(_) => nl.ipv4_addrs(ifindex)?.first().copied().map(IpAddr::V4),
        IpAddr::V6(_) => nl.ipv6_addrs(ifindex)?.into_iter().find(|a| !is_link_local(a)).map(IpAddr::V6),
    })
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

fn iface(name: &str) -> String {
    format!("interface {name:?}")
}

fn check_ifname(name: &str) -> Result<(), NetlinkError> {
    let reason = if name.is_empty() {
        "is empty"
    } else if name.len() > IFNAME_MAX {
        "is longer than 15 bytes"
    } else if name == "."
        || name == ".."
        || name.bytes().any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace() || b == b':')
    {
        "contains a character not allowed in interface names"
    } else {
        return Ok(());
    };
    Err(NetlinkError::Invalid { what: iface(name), reason: format!("the name {reason}") })
}

pub(crate) fn parse_link(msg: &Message<'_>) -> Result<Link, WireError> {
    let (fixed, attrs) = split_fixed(msg.payload, IFINFOMSG_LEN)?;
    let h = IfInfoMsg::decode(fixed);
    let mac = match attrs.get(IFLA_ADDRESS) {
        Some(d) if d.len() == 6 => <[u8; 6]>::try_from(d).expect("length checked"),
        _ => [0; 6],
    };
    Ok(Link {
        index: h.index,
        name: attrs.str(IFLA_IFNAME)?.ok_or(WireError("link without IFLA_IFNAME"))?.to_owned(),
        mtu: attrs.u32(IFLA_MTU)?.unwrap_or(0),
        mac,
        up: h.flags & IFF_UP != 0,
        num_rx_queues: attrs.u32(IFLA_NUM_RX_QUEUES)?.unwrap_or(1),
        num_tx_queues: attrs.u32(IFLA_NUM_TX_QUEUES)?.unwrap_or(1),
        link: attrs.u32(IFLA_LINK)?.filter(|i| *i != 0 && *i != h.index),
    })
}

pub(crate) fn parse_route(msg: &Message<'_>) -> Result<(Route, u8), WireError> {
    let (fixed, attrs) = split_fixed(msg.payload, RTMSG_LEN)?;
    let h = RtMsg::decode(fixed);
    let gateway = match attrs.ip(RTA_GATEWAY, h.family)? {
        Some(g) => Some(g),
        // RTA_VIA: struct rtvia { __kernel_sa_family_t family; u8 addr[]; } (e.g. IPv4 over an IPv6 next hop).
        None => match attrs.get(RTA_VIA) {
            Some(d) if d.len() >= 2 => Some(ip_from(u16::from_ne_bytes([d[0], d[1]]) as u8, &d[2..])?),
            Some(_) => return Err(WireError("RTA_VIA too short")),
            None => None,
        },
    };
    let route = Route {
        oif: attrs.u32(RTA_OIF)?.ok_or(WireError("route without RTA_OIF"))?,
        gateway,
        prefsrc: attrs.ip(RTA_PREFSRC, h.family)?,
        mtu: match attrs.get(RTA_METRICS) {
            Some(m) => Attrs::parse(m)?.u32(RTAX_MTU)?.filter(|m| *m != 0),
            None => None,
        },
    };
    Ok((route, h.ty))
}

pub(crate) fn parse_neigh(msg: &Message<'_>) -> Result<Neighbour, WireError> {
    let (fixed, attrs) = split_fixed(msg.payload, NDMSG_LEN)?;
    let h = NdMsg::decode(fixed);
    let mac = match attrs.get(NDA_LLADDR) {
        Some(d) if d.len() == 6 => Some(<[u8; 6]>::try_from(d).expect("length checked")),
        _ => None,
    };
    Ok(Neighbour { mac, state: h.state })
}

#[cfg(test)]
mod tests;
