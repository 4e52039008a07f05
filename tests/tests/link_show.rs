//! `vxdp link show [-d] [--json]` against `ip [-d] link show` of a kernel vxlan device
//! given the same settings: the `vxlan` line carries the same keywords, values and
//! order (the source port range and the local address aside, which differ by design
//! and by host), and the first lines name the device, its MTU and its MAC as `ip link`
//! sees them.

use vxdp_tests::topology::VNI;
use vxdp_tests::vtep::kernel_vtep_opts;
use vxdp_tests::{require_root, serial, Side, Topology, VtepKind};

/// The same settings, in each one's spelling (`kernel_vtep_opts` adds `nolearning`).
const VXDP_ARGS: [&str; 13] = [
    "--nolearning",
    "--proxy",
    "--ttl",
    "inherit",
    "--tos",
    "0x28",
    "--df",
    "set",
    "--ageing",
    "120",
    "--udpcsum",
    "--dstport",
    "4789",
];
const KERNEL_OPTS: &str = "proxy ttl inherit tos 0x28 df set ageing 120 udpcsum";

/// The `vxlan ...` line's tokens up to the UDP checksum keyword, without the source
/// port range; and the local address.
fn vxlan_line(text: &str) -> (Vec<String>, String) {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("vxlan "))
        .unwrap_or_else(|| panic!("no `vxlan` line in:\n{text}"));
    let mut tokens: Vec<String> = Vec::new();
    let mut local = String::new();
    let mut it = line.split_whitespace();
    while let Some(t) = it.next() {
        match t {
            "srcport" => {
                it.next();
                it.next();
            }
            "local" => local = it.next().unwrap_or_default().to_string(),
            t => {
                tokens.push(t.to_string());
                if t == "udpcsum" || t == "noudpcsum" {
                    break;
                }
            }
        }
    }
    (tokens, local)
}

#[test]
fn link_show_like_ip_link() {
    if !require_root("link_show_like_ip_link") {
        return;
    }
    let _serial = serial();
    let mut topo = Topology::new();
    topo.add_vtep_with(Side::A, VtepKind::Vxdp, &VXDP_ARGS);
    let b = &mut topo.b;
    kernel_vtep_opts(&b.ns, "vxlan0", VNI, b.underlay_ip, "eth0", &["192.0.2.1"], KERNEL_OPTS);
    b.ns.run("ip link set vxlan0 master br0 up");
    b.vtep = Some("vxlan0".into());

    let daemon = topo.a.daemon();
    let details = daemon.ctl(&["link", "show", "-d"]).expect("vxdp link show -d");
    let (vxdp, vxdp_local) = vxlan_line(&details);
    let (kernel, kernel_local) = vxlan_line(&topo.b.ns.run("ip -d link show vxlan0"));
    assert_eq!(vxdp, kernel, "`vxdp link show -d` vs `ip -d link show`:\n{details}");
    assert_eq!((vxdp_local.as_str(), kernel_local.as_str()), (topo.a.underlay_ip, topo.b.underlay_ip));
    assert!(details.contains("\n    vxdp datapath "), "{details}");

    // The first lines: the device as `ip link` sees it.
    let brief = daemon.ctl(&["link", "show"]).expect("vxdp link show");
    let ip_link = topo.a.ns.run("ip -o link show vx0");
    let index = ip_link.split(':').next().expect("ifindex").trim();
    let mac = ip_link.split("link/ether ").nth(1).and_then(|r| r.split_whitespace().next()).expect("MAC");
    assert!(brief.starts_with(&format!("{index}: vx0: mtu 1450\n")), "{brief}\nip: {ip_link}");
    assert!(brief.contains(&format!("link/ether {mac} ")), "{brief}\nip: {ip_link}");
    assert!(!brief.contains("vxlan id"), "details without -d: {brief}");
    // A MAC changed under the daemon shows at once.
    topo.a.ns.run("ip link set vx0 address 02:00:5e:00:53:01");
    let brief = daemon.ctl(&["link", "show"]).expect("vxdp link show");
    assert!(brief.contains("link/ether 02:00:5e:00:53:01 "), "{brief}");

    let json: serde_json::Value =
        serde_json::from_str(&daemon.ctl(&["link", "show", "--json"]).expect("--json")).expect("JSON");
    assert_eq!(
        (json["vni"].as_u64(), json["ttl"].as_str(), json["df"].as_str()),
        (Some(42), Some("inherit"), Some("set"))
    );
    let e = daemon.ctl(&["link", "add", "vx43"]).expect_err("link add is not there yet");
    assert!(format!("{e:#}").contains("expected show"), "{e:#}");
}
