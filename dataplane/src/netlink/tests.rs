//! Encoding and decoding of hand-built rtnetlink buffers (no sockets, no root).

use super::wire::*;
use super::*;

/// One netlink message, framed by hand (little-endian hosts: the test bytes are host order).
fn msg(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize(align(v.len()), 0);
    v
}

fn attr(ty: u16, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(data);
    v.resize(align(v.len()), 0);
    v
}

fn collect(buf: &[u8], seq: u32) -> (Result<Progress, WireError>, Vec<u16>, bool) {
    let mut seen = Vec::new();
    let mut interrupted = false;
    let r = feed(buf, seq, &mut interrupted, &mut |m| {
        seen.push(m.ty);
        Ok(())
    });
    (r, seen, interrupted)
}

#[test]
fn request_pads_attributes_to_four_bytes() {
    let mut req = Request::new(RTM_GETLINK, NLM_F_ACK);
    req.fixed(&IfInfoMsg::default().encode()).attr_str(IFLA_IFNAME, "eth0").attr_u32(IFLA_MTU, 1500);
    let b = req.finish(7).to_vec();
    // 16 header + 16 ifinfomsg + (4 + "eth0\0" = 9 -> 12) + 8.
    assert_eq!(b.len(), 52);
    assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 52);
    assert_eq!(u16::from_ne_bytes([b[4], b[5]]), RTM_GETLINK);
    assert_eq!(u16::from_ne_bytes([b[6], b[7]]), NLM_F_REQUEST | NLM_F_ACK);
    assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 7);
    let name_attr = &b[32..44];
    assert_eq!(u16::from_ne_bytes([name_attr[0], name_attr[1]]), 9, "rta_len excludes padding");
    assert_eq!(u16::from_ne_bytes([name_attr[2], name_attr[3]]), IFLA_IFNAME);
    assert_eq!(&name_attr[4..], b"eth0\0\0\0\0");
    assert_eq!(u16::from_ne_bytes([b[44], b[45]]), 8);
    assert_eq!(u32::from_ne_bytes(b[48..52].try_into().unwrap()), 1500);
}

#[test]
fn veth_request_nests_peer_ifinfomsg_and_attributes() {
    let mut req = Request::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    req.fixed(&IfInfoMsg::default().encode()).attr_str(IFLA_IFNAME, "vx0");
    let info = req.nest_begin(IFLA_LINKINFO);
    req.attr_str(IFLA_INFO_KIND, "veth");
    let data = req.nest_begin(IFLA_INFO_DATA);
    let peer = req.nest_begin(VETH_INFO_PEER);
    req.fixed(&IfInfoMsg::default().encode()).attr_str(IFLA_IFNAME, "vx0-peer").attr_u32(IFLA_NUM_RX_QUEUES, 4);
    req.nest_end(peer).nest_end(data).nest_end(info);
    let b = req.finish(1).to_vec();
    assert_eq!(b.len() % 4, 0);

    let m = messages(&b).next().unwrap().unwrap();
    let (_, top) = split_fixed(m.payload, IFINFOMSG_LEN).unwrap();
    assert_eq!(top.str(IFLA_IFNAME).unwrap(), Some("vx0"));
    let linkinfo = Attrs::parse(top.get(IFLA_LINKINFO).expect("nested flag is masked off")).unwrap();
    assert_eq!(linkinfo.str(IFLA_INFO_KIND).unwrap(), Some("veth"));
    let data = Attrs::parse(linkinfo.get(IFLA_INFO_DATA).unwrap()).unwrap();
    let (peer_hdr, peer) = split_fixed(data.get(VETH_INFO_PEER).unwrap(), IFINFOMSG_LEN).unwrap();
    assert_eq!(IfInfoMsg::decode(peer_hdr), IfInfoMsg::default());
    assert_eq!(peer.str(IFLA_IFNAME).unwrap(), Some("vx0-peer"));
    assert_eq!(peer.u32(IFLA_NUM_RX_QUEUES).unwrap(), Some(4));
}

fn addr_msg(seq: u32, flags: u16, index: u32, ip: [u8; 4]) -> Vec<u8> {
    let mut p = IfAddrMsg { family: AF_INET, prefixlen: 24, flags: 0, index }.encode().to_vec();
    p.extend(attr(IFA_ADDRESS, &ip));
    p.extend(attr(IFA_LOCAL, &ip));
    msg(RTM_NEWADDR, flags, seq, &p)
}

#[test]
fn multipart_dump_runs_until_done() {
    let mut first = addr_msg(5, NLM_F_MULTI, 2, [192, 0, 2, 1]);
    first.extend(addr_msg(5, NLM_F_MULTI, 3, [192, 0, 2, 9]));
    let (r, seen, _) = collect(&first, 5);
    assert_eq!(r, Ok(Progress::More));
    assert_eq!(seen, vec![RTM_NEWADDR, RTM_NEWADDR]);

    let done = msg(NLMSG_DONE, NLM_F_MULTI, 5, &0i32.to_ne_bytes());
    let (r, seen, _) = collect(&done, 5);
    assert_eq!(r, Ok(Progress::Done { interrupted: false }));
    assert!(seen.is_empty());
}

#[test]
fn dump_interrupted_flag_is_reported() {
    let mut b = addr_msg(5, NLM_F_MULTI | NLM_F_DUMP_INTR, 2, [192, 0, 2, 1]);
    b.extend(msg(NLMSG_DONE, NLM_F_MULTI | NLM_F_DUMP_INTR, 5, &0i32.to_ne_bytes()));
    let (r, _, _) = collect(&b, 5);
    assert_eq!(r, Ok(Progress::Done { interrupted: true }));
}

#[test]
fn replies_to_other_sequence_numbers_are_skipped() {
    let mut b = addr_msg(4, NLM_F_MULTI, 2, [192, 0, 2, 1]);
    b.extend(msg(NLMSG_DONE, NLM_F_MULTI, 4, &0i32.to_ne_bytes()));
    let (r, seen, _) = collect(&b, 5);
    assert_eq!(r, Ok(Progress::More));
    assert!(seen.is_empty());
}

#[test]
fn ack_ends_a_request() {
    let mut p = 0i32.to_ne_bytes().to_vec();
    p.extend(msg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 9, &[])); // echoed header
    let (r, _, _) = collect(&msg(NLMSG_ERROR, NLM_F_CAPPED, 9, &p), 9);
    assert_eq!(r, Ok(Progress::Done { interrupted: false }));
}

#[test]
fn nlmsg_error_maps_to_a_clear_error_naming_the_interface() {
    // -ENODEV, capped, with an extended ack message.
    let mut p = (-libc::ENODEV).to_ne_bytes().to_vec();
    p.extend(msg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 11, &[]));
    p.extend(attr(NLMSGERR_ATTR_MSG, b"Device not found\0"));
    let (r, _, _) = collect(&msg(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 11, &p), 11);
    let Ok(Progress::Failed(e)) = r else { panic!("expected a failure, got {r:?}") };
    assert_eq!(e, ErrorMsg { errno: -libc::ENODEV, message: Some("Device not found".into()) });
    let err = NetlinkError::from_kernel("looking up interface \"eth9\"", "interface \"eth9\"", e);
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), "interface \"eth9\" not found");

    // -EPERM, not capped (whole request echoed), no TLVs: a kernel error with op and reason.
    let req = msg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 12, &IfInfoMsg::default().encode());
    let mut p = (-libc::EPERM).to_ne_bytes().to_vec();
    p.extend(&req);
    let (r, _, _) = collect(&msg(NLMSG_ERROR, 0, 12, &p), 12);
    let Ok(Progress::Failed(e)) = r else { panic!("expected a failure, got {r:?}") };
    let err = NetlinkError::from_kernel("setting interface \"vx0\" up", "interface \"vx0\"", e);
    assert_eq!(err.errno(), Some(libc::EPERM));
    let text = err.to_string();
    assert!(text.starts_with("setting interface \"vx0\" up: Operation not permitted"), "{text}");
}

#[test]
fn extended_ack_after_an_uncapped_echo() {
    let req = msg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 13, &IfInfoMsg::default().encode());
    let mut p = (-libc::EINVAL).to_ne_bytes().to_vec();
    p.extend(&req);
    p.extend(attr(NLMSGERR_ATTR_MSG, b"Invalid number of queues\0"));
    let m = msg(NLMSG_ERROR, NLM_F_ACK_TLVS, 13, &p);
    let e = parse_error(&messages(&m).next().unwrap().unwrap()).unwrap();
    assert_eq!(e.message.as_deref(), Some("Invalid number of queues"));
    let err = NetlinkError::from_kernel("creating veth", "x", e);
    assert!(err.to_string().ends_with("(Invalid number of queues)"), "{err}");
}

#[test]
fn dump_done_with_negative_value_is_a_failure() {
    let (r, _, _) = collect(&msg(NLMSG_DONE, NLM_F_MULTI, 3, &(-libc::EBUSY).to_ne_bytes()), 3);
    assert_eq!(r, Ok(Progress::Failed(ErrorMsg { errno: -libc::EBUSY, message: None })));
}

#[test]
fn malformed_lengths_are_rejected() {
    let mut b = addr_msg(1, NLM_F_MULTI, 2, [192, 0, 2, 1]);
    b[0] = 200; // nlmsg_len past the end
    assert!(collect(&b, 1).0.is_err());
    assert!(collect(&[1, 2, 3], 1).0.is_err());
    let mut bad_attr = attr(IFA_LOCAL, &[1, 2, 3, 4]);
    bad_attr[0] = 40;
    assert!(Attrs::parse(&bad_attr).is_err());
    assert!(Attrs::parse(&[2, 0, 1, 0]).is_err(), "rta_len below the header size");
}

#[test]
fn link_reply_decodes() {
    let mut p = IfInfoMsg { family: AF_UNSPEC, ty: 1, index: 7, flags: IFF_UP | 0x1000, change: 0 }.encode().to_vec();
    p.extend(attr(IFLA_IFNAME, b"vx0\0"));
    p.extend(attr(IFLA_MTU, &1450u32.to_ne_bytes()));
    p.extend(attr(IFLA_ADDRESS, &[0x02, 0, 0, 0, 0, 0x2a]));
    p.extend(attr(IFLA_NUM_TX_QUEUES, &4u32.to_ne_bytes()));
    p.extend(attr(IFLA_NUM_RX_QUEUES, &3u32.to_ne_bytes()));
    p.extend(attr(IFLA_LINK, &9u32.to_ne_bytes()));
    let m = msg(RTM_NEWLINK, 0, 1, &p);
    let link = parse_link(&messages(&m).next().unwrap().unwrap()).unwrap();
    assert_eq!(
        link,
        Link {
            index: 7,
            name: "vx0".into(),
            mtu: 1450,
            mac: [2, 0, 0, 0, 0, 0x2a],
            up: true,
            num_rx_queues: 3,
            num_tx_queues: 4,
            link: Some(9),
        }
    );
}

#[test]
fn route_reply_decodes_gateway_via_and_prefsrc() {
    let mut p = RtMsg { family: AF_INET, dst_len: 32, table: 254, ty: RTN_UNICAST, flags: 0 }.encode().to_vec();
    p.extend(attr(RTA_DST, &[198, 51, 100, 7]));
    p.extend(attr(RTA_OIF, &5u32.to_ne_bytes()));
    p.extend(attr(RTA_GATEWAY, &[192, 0, 2, 2]));
    p.extend(attr(RTA_PREFSRC, &[192, 0, 2, 1]));
    // RTA_METRICS nests RTAX_* attributes; RTAX_MTU (2) is the path's MTU.
    let metrics = [attr(1, &0u32.to_ne_bytes()), attr(RTAX_MTU, &1400u32.to_ne_bytes())].concat();
    p.extend(attr(RTA_METRICS, &metrics));
    let m = msg(RTM_NEWROUTE, 0, 1, &p);
    let (r, ty) = parse_route(&messages(&m).next().unwrap().unwrap()).unwrap();
    assert_eq!(ty, RTN_UNICAST);
    assert_eq!(
        r,
        Route {
            oif: 5,
            gateway: Some("192.0.2.2".parse().unwrap()),
            prefsrc: Some("192.0.2.1".parse().unwrap()),
            mtu: Some(1400)
        }
    );

    // IPv4 route with an IPv6 next hop: RTA_VIA carries its own family.
    let mut p = RtMsg { family: AF_INET, dst_len: 32, ty: RTN_UNICAST, ..Default::default() }.encode().to_vec();
    p.extend(attr(RTA_OIF, &5u32.to_ne_bytes()));
    let mut via = u16::from(AF_INET6).to_ne_bytes().to_vec();
    via.extend("fe80::1".parse::<Ipv6Addr>().unwrap().octets());
    p.extend(attr(RTA_VIA, &via));
    let m = msg(RTM_NEWROUTE, 0, 1, &p);
    let (r, _) = parse_route(&messages(&m).next().unwrap().unwrap()).unwrap();
    assert_eq!(r.gateway, Some("fe80::1".parse().unwrap()));
    assert_eq!(r.prefsrc, None);
}

#[test]
fn neighbour_reply_decodes_and_usability() {
    let mut p = NdMsg { family: AF_INET, index: 5, state: NUD_REACHABLE, flags: 0, ty: 1 }.encode().to_vec();
    p.extend(attr(NDA_DST, &[192, 0, 2, 2]));
    p.extend(attr(NDA_LLADDR, &[2, 1, 2, 3, 4, 5]));
    let m = msg(RTM_NEWNEIGH, 0, 1, &p);
    let n = parse_neigh(&messages(&m).next().unwrap().unwrap()).unwrap();
    assert_eq!(n, Neighbour { mac: Some([2, 1, 2, 3, 4, 5]), state: NUD_REACHABLE });
    assert!(n.is_usable());

    let mac = Some([2, 0, 0, 0, 0, 1]);
    for state in [NUD_STALE, NUD_DELAY, NUD_PROBE, NUD_PERMANENT, NUD_NOARP] {
        assert!(Neighbour { mac, state }.is_usable(), "state {state:#x}");
    }
    for state in [0, NUD_INCOMPLETE, NUD_FAILED] {
        assert!(!Neighbour { mac, state }.is_usable(), "state {state:#x}");
    }
    assert!(!Neighbour { mac: None, state: NUD_REACHABLE }.is_usable());
}

#[test]
fn interface_names_are_checked_and_named_in_errors() {
    assert!(check_ifname("eth0").is_ok());
    assert!(check_ifname("vxdp0-peer").is_ok());
    for bad in ["", "a-very-long-interface", "a/b", "a b", ".."] {
        let e = check_ifname(bad).unwrap_err();
        assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
    }
}

#[test]
fn multicast_macs_are_the_groups_low_23_bits() {
    assert_eq!(ipv4_multicast_mac(Ipv4Addr::new(239, 1, 1, 1)), [0x01, 0x00, 0x5e, 0x01, 0x01, 0x01]);
    // The 24th bit is not in the MAC: 224.128.x.y maps as 224.0.x.y does.
    assert_eq!(ipv4_multicast_mac(Ipv4Addr::new(224, 129, 2, 3)), [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]);
}
