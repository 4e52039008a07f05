//! rtnetlink message format: constants, a request builder and reply parsers.
//!
//! Pure byte handling, no I/O: the builder produces one request message with aligned
//! `nlmsghdr`/`rtattr` framing, the parsers walk reply buffers and check every length
//! once. Netlink uses host byte order throughout (except where noted).
#![forbid(unsafe_code)]

use std::net::IpAddr;

/// Messages and their alignment (include/uapi/linux/netlink.h).
pub const NLMSG_ALIGNTO: usize = 4;
pub const NLMSG_HDRLEN: usize = 16;
pub const NLA_HDRLEN: usize = 4;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// On NLMSG_ERROR: the echoed request was cut to its header / extended-ack TLVs follow.
pub const NLM_F_CAPPED: u16 = 0x100;
pub const NLM_F_ACK_TLVS: u16 = 0x200;
pub const NLMSGERR_ATTR_MSG: u16 = 1;

/// NLA type bits that are flags, not part of the type.
const NLA_TYPE_MASK: u16 = !(0x8000 | 0x4000);
pub const NLA_F_NESTED: u16 = 0x8000;

/// rtnetlink message types (include/uapi/linux/rtnetlink.h).
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWNEIGH: u16 = 28;
pub const RTM_GETNEIGH: u16 = 30;

/// Multicast groups (enum rtnetlink_groups).
pub const RTNLGRP_LINK: u32 = 1;
pub const RTNLGRP_NEIGH: u32 = 3;
pub const RTNLGRP_IPV4_ROUTE: u32 = 7;
pub const RTNLGRP_IPV6_ROUTE: u32 = 11;

/// Link attributes (include/uapi/linux/if_link.h, veth.h).
pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
/// The interface this one is linked to (a veth's peer, by index).
pub const IFLA_LINK: u16 = 5;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_EXT_MASK: u16 = 29;
pub const IFLA_NUM_TX_QUEUES: u16 = 31;
pub const IFLA_NUM_RX_QUEUES: u16 = 32;
pub const IFLA_INFO_KIND: u16 = 1;
pub const IFLA_INFO_DATA: u16 = 2;
pub const VETH_INFO_PEER: u16 = 1;
pub const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;

/// Address attributes (if_addr.h).
pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_FLAGS: u16 = 8;
pub const IFA_F_DADFAILED: u32 = 0x08;

/// Route attributes and types.
pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PREFSRC: u16 = 7;
pub const RTA_VIA: u16 = 18;
/// Nested route metrics (`RTAX_*`), e.g. a route's `mtu` or a cached path MTU.
pub const RTA_METRICS: u16 = 8;
pub const RTAX_MTU: u16 = 2;
pub const RTN_UNICAST: u8 = 1;
pub const RTN_LOCAL: u8 = 2;

/// Neighbour attributes, states and flags (neighbour.h).
pub const NDA_DST: u16 = 1;
pub const NDA_LLADDR: u16 = 2;
pub const NUD_INCOMPLETE: u16 = 0x01;
pub const NUD_REACHABLE: u16 = 0x02;
pub const NUD_STALE: u16 = 0x04;
pub const NUD_DELAY: u16 = 0x08;
pub const NUD_PROBE: u16 = 0x10;
pub const NUD_FAILED: u16 = 0x20;
pub const NUD_NOARP: u16 = 0x40;
pub const NUD_PERMANENT: u16 = 0x80;
pub const NTF_USE: u8 = 0x01;

pub const AF_UNSPEC: u8 = 0;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

/// Sizes of the fixed headers that follow `nlmsghdr`.
pub const IFINFOMSG_LEN: usize = 16;
pub const IFADDRMSG_LEN: usize = 8;
pub const RTMSG_LEN: usize = 12;
pub const NDMSG_LEN: usize = 12;
pub const NLMSGERR_LEN: usize = 4 + NLMSG_HDRLEN;

/// Rounds up to the netlink alignment (NLMSG_ALIGN and NLA_ALIGN are both 4).
pub const fn align(len: usize) -> usize {
    (len + NLMSG_ALIGNTO - 1) & !(NLMSG_ALIGNTO - 1)
}

/// A malformed netlink buffer; the caller adds which request it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError(pub &'static str);

/// Builds one request message: header, one fixed family header, then attributes.
pub struct Request {
    buf: Vec<u8>,
}

impl Request {
    pub fn new(ty: u16, flags: u16) -> Request {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        Request { buf }
    }

    /// Appends a fixed header (ifinfomsg, rtmsg, ...) given as its bytes, padded.
    pub fn fixed(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = u16::try_from(NLA_HDRLEN + data.len()).expect("netlink attribute larger than 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// A NUL-terminated string attribute (IFLA_IFNAME, IFLA_INFO_KIND).
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v)
    }

    /// An address attribute in network byte order (RTA_DST, NDA_DST).
    pub fn attr_ip(&mut self, ty: u16, ip: IpAddr) -> &mut Self {
        match ip {
            IpAddr::V4(a) => self.attr(ty, &a.octets()),
            IpAddr::V6(a) => self.attr(ty, &a.octets()),
        }
    }

    /// Opens a nested attribute; close it with [`Request::nest_end`].
    pub fn nest_begin(&mut self, ty: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        start
    }

    pub fn nest_end(&mut self, start: usize) -> &mut Self {
        let len = u16::try_from(self.buf.len() - start).expect("nested netlink attribute larger than 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    pub fn flags(&self) -> u16 {
        u16::from_ne_bytes([self.buf[6], self.buf[7]])
    }

    /// Sets length and sequence number and returns the bytes to send (nlmsg_pid 0: the kernel).
    pub fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }
}

/// One message of a reply buffer.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Splits a received datagram into messages, checking each `nlmsg_len`.
pub fn messages(mut buf: &[u8]) -> impl Iterator<Item = Result<Message<'_>, WireError>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        if buf.len() < NLMSG_HDRLEN {
            buf = &[];
            return Some(Err(WireError("truncated message header")));
        }
        let len = u32_at(buf, 0) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            buf = &[];
            return Some(Err(WireError("message length out of bounds")));
        }
        let msg = Message {
            ty: u16_at(buf, 4),
            flags: u16_at(buf, 6),
            seq: u32_at(buf, 8),
            payload: &buf[NLMSG_HDRLEN..len],
        };
        buf = &buf[align(len).min(buf.len())..];
        Some(Ok(msg))
    })
}

/// The attributes of one message or nest, in order.
#[derive(Clone, Debug, Default)]
pub struct Attrs<'a>(Vec<(u16, &'a [u8])>);

impl<'a> Attrs<'a> {
    pub fn parse(mut buf: &'a [u8]) -> Result<Attrs<'a>, WireError> {
        let mut out = Vec::new();
        while buf.len() >= NLA_HDRLEN {
            let len = u16_at(buf, 0) as usize;
            if len < NLA_HDRLEN || len > buf.len() {
                return Err(WireError("attribute length out of bounds"));
            }
            out.push((u16_at(buf, 2) & NLA_TYPE_MASK, &buf[NLA_HDRLEN..len]));
            buf = &buf[align(len).min(buf.len())..];
        }
        Ok(Attrs(out))
    }

    pub fn get(&self, ty: u16) -> Option<&'a [u8]> {
        self.0.iter().find(|(t, _)| *t == ty).map(|(_, d)| *d)
    }

    pub fn u32(&self, ty: u16) -> Result<Option<u32>, WireError> {
        match self.get(ty) {
            None => Ok(None),
            Some(d) if d.len() >= 4 => Ok(Some(u32_at(d, 0))),
            Some(_) => Err(WireError("u32 attribute too short")),
        }
    }

    /// A string attribute, up to its NUL.
    pub fn str(&self, ty: u16) -> Result<Option<&'a str>, WireError> {
        let Some(d) = self.get(ty) else { return Ok(None) };
        let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
        std::str::from_utf8(&d[..end]).map(Some).map_err(|_| WireError("string attribute is not UTF-8"))
    }

    /// An address attribute of `family` (4 or 16 bytes, network order).
    pub fn ip(&self, ty: u16, family: u8) -> Result<Option<IpAddr>, WireError> {
        self.get(ty).map(|d| ip_from(family, d)).transpose()
    }
}

/// An address given its address family and network-order bytes.
pub fn ip_from(family: u8, d: &[u8]) -> Result<IpAddr, WireError> {
    match family {
        AF_INET => <[u8; 4]>::try_from(d).map(IpAddr::from).map_err(|_| WireError("IPv4 address is not 4 bytes")),
        AF_INET6 => <[u8; 16]>::try_from(d).map(IpAddr::from).map_err(|_| WireError("IPv6 address is not 16 bytes")),
        _ => Err(WireError("unknown address family")),
    }
}

pub fn family_of(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

/// Splits `payload` into its fixed header of `len` bytes and the attributes after it.
pub fn split_fixed(payload: &[u8], len: usize) -> Result<(&[u8], Attrs<'_>), WireError> {
    if payload.len() < len {
        return Err(WireError("fixed header truncated"));
    }
    Ok((&payload[..len], Attrs::parse(&payload[align(len).min(payload.len())..])?))
}

/// `struct ifinfomsg`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfInfoMsg {
    pub family: u8,
    pub ty: u16,
    pub index: u32,
    pub flags: u32,
    pub change: u32,
}

impl IfInfoMsg {
    pub fn encode(&self) -> [u8; IFINFOMSG_LEN] {
        let mut b = [0u8; IFINFOMSG_LEN];
        b[0] = self.family;
        b[2..4].copy_from_slice(&self.ty.to_ne_bytes());
        b[4..8].copy_from_slice(&self.index.to_ne_bytes());
        b[8..12].copy_from_slice(&self.flags.to_ne_bytes());
        b[12..16].copy_from_slice(&self.change.to_ne_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> IfInfoMsg {
        IfInfoMsg { family: b[0], ty: u16_at(b, 2), index: u32_at(b, 4), flags: u32_at(b, 8), change: u32_at(b, 12) }
    }
}

/// `struct ifaddrmsg` (the fields we read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfAddrMsg {
    pub family: u8,
    pub prefixlen: u8,
    pub flags: u8,
    pub index: u32,
}

impl IfAddrMsg {
    pub fn encode(&self) -> [u8; IFADDRMSG_LEN] {
        let mut b = [0u8; IFADDRMSG_LEN];
        b[0] = self.family;
        b[1] = self.prefixlen;
        b[2] = self.flags;
        b[4..8].copy_from_slice(&self.index.to_ne_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> IfAddrMsg {
        IfAddrMsg { family: b[0], prefixlen: b[1], flags: b[2], index: u32_at(b, 4) }
    }
}

/// `struct rtmsg`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtMsg {
    pub family: u8,
    pub dst_len: u8,
    pub table: u8,
    pub ty: u8,
    pub flags: u32,
}

impl RtMsg {
    pub fn encode(&self) -> [u8; RTMSG_LEN] {
        let mut b = [0u8; RTMSG_LEN];
        b[0] = self.family;
        b[1] = self.dst_len;
        b[4] = self.table;
        b[7] = self.ty;
        b[8..12].copy_from_slice(&self.flags.to_ne_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> RtMsg {
        RtMsg { family: b[0], dst_len: b[1], table: b[4], ty: b[7], flags: u32_at(b, 8) }
    }
}

/// `struct ndmsg`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NdMsg {
    pub family: u8,
    pub index: u32,
    pub state: u16,
    pub flags: u8,
    pub ty: u8,
}

impl NdMsg {
    pub fn encode(&self) -> [u8; NDMSG_LEN] {
        let mut b = [0u8; NDMSG_LEN];
        b[0] = self.family;
        b[4..8].copy_from_slice(&self.index.to_ne_bytes());
        b[8..10].copy_from_slice(&self.state.to_ne_bytes());
        b[10] = self.flags;
        b[11] = self.ty;
        b
    }

    pub fn decode(b: &[u8]) -> NdMsg {
        NdMsg { family: b[0], index: u32_at(b, 4), state: u16_at(b, 8), flags: b[10], ty: b[11] }
    }
}

/// What an NLMSG_ERROR message says: `errno` 0 is an ACK, negative is a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorMsg {
    pub errno: i32,
    /// The kernel's extended-ack text (NLMSGERR_ATTR_MSG), when it gave one.
    pub message: Option<String>,
}

pub fn parse_error(msg: &Message<'_>) -> Result<ErrorMsg, WireError> {
    let p = msg.payload;
    if p.len() < 4 {
        return Err(WireError("NLMSG_ERROR truncated"));
    }
    let errno = u32_at(p, 0) as i32;
    let mut message = None;
    if msg.flags & NLM_F_ACK_TLVS != 0 && p.len() >= NLMSGERR_LEN {
        // The echoed request: its header only when capped, else the whole request.
        let echoed = if msg.flags & NLM_F_CAPPED != 0 { NLMSG_HDRLEN } else { u32_at(p, 4) as usize };
        let off = align(4 + echoed);
        if off <= p.len() {
            let attrs = Attrs::parse(&p[off..])?;
            message = attrs.str(NLMSGERR_ATTR_MSG)?.filter(|s| !s.is_empty()).map(str::to_owned);
        }
    }
    Ok(ErrorMsg { errno, message })
}

/// How one received datagram advances a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// More datagrams belong to this reply.
    More,
    /// The reply is complete (ACK or NLMSG_DONE); `interrupted` if a dump saw NLM_F_DUMP_INTR.
    Done { interrupted: bool },
    /// The kernel refused the request.
    Failed(ErrorMsg),
}

/// Feeds one received datagram of the reply to request `seq` into `on_msg`.
///
/// Messages with another sequence number (late replies to an earlier request) are
/// skipped. Data messages go to `on_msg`; NLMSG_ERROR ends the reply (ACK or failure),
/// NLMSG_DONE ends a dump (a negative value in it is a failure too).
pub fn feed(
    buf: &[u8],
    seq: u32,
    interrupted: &mut bool,
    on_msg: &mut dyn FnMut(&Message<'_>) -> Result<(), WireError>,
) -> Result<Progress, WireError> {
    for msg in messages(buf) {
        let msg = msg?;
        if msg.seq != seq {
            continue;
        }
        if msg.flags & NLM_F_DUMP_INTR != 0 {
            *interrupted = true;
        }
        match msg.ty {
            NLMSG_NOOP => {}
            NLMSG_OVERRUN => return Err(WireError("NLMSG_OVERRUN")),
            NLMSG_ERROR => {
                let e = parse_error(&msg)?;
                return Ok(if e.errno == 0 {
                    Progress::Done { interrupted: *interrupted }
                } else {
                    Progress::Failed(e)
                });
            }
            NLMSG_DONE => {
                if msg.payload.len() >= 4 && (u32_at(msg.payload, 0) as i32) < 0 {
                    return Ok(Progress::Failed(ErrorMsg { errno: u32_at(msg.payload, 0) as i32, message: None }));
                }
                return Ok(Progress::Done { interrupted: *interrupted });
            }
            _ => on_msg(&msg)?,
        }
    }
    Ok(Progress::More)
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
