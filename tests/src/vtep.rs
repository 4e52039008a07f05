//! The Linux kernel vxlan device as a VTEP: the reference vxdp must
//! interoperate with and behave like.

use crate::netns::Netns;

/// The IANA VXLAN port, used by every VTEP in these tests.
pub const VXLAN_PORT: u16 = 4789;

/// Creates kernel vxlan device `name` in `ns` (`id VNI dstport 4789 local
/// LOCAL dev DEV`, with or without learning) and adds one all-zeros flood
/// entry per remote (`bridge fdb append 00:00:00:00:00:00 dev NAME dst
/// REMOTE`). The device is left down; enslave it and bring it up.
pub fn kernel_vtep(ns: &Netns, name: &str, vni: u32, local: &str, dev: &str, remotes: &[&str]) {
    kernel_vtep_with_learning(ns, name, vni, local, dev, remotes, false);
}

/// [`kernel_vtep`] with extra `ip link add ... type vxlan` options (e.g. `proxy`).
pub fn kernel_vtep_opts(ns: &Netns, name: &str, vni: u32, local: &str, dev: &str, remotes: &[&str], opts: &str) {
    ns.run(format!(
        "ip link add {name} type vxlan id {vni} dstport {VXLAN_PORT} local {local} dev {dev} nolearning {opts}"
    ));
    for remote in remotes {
        ns.run(format!("bridge fdb append 00:00:00:00:00:00 dev {name} dst {remote}"));
    }
}

/// [`kernel_vtep`] with a choice of `learning` / `nolearning`.
pub fn kernel_vtep_with_learning(
    ns: &Netns,
    name: &str,
    vni: u32,
    local: &str,
    dev: &str,
    remotes: &[&str],
    learning: bool,
) {
    let learning = if learning { "learning" } else { "nolearning" };
    ns.run(format!("ip link add {name} type vxlan id {vni} dstport {VXLAN_PORT} local {local} dev {dev} {learning}"));
    for remote in remotes {
        ns.run(format!("bridge fdb append 00:00:00:00:00:00 dev {name} dst {remote}"));
    }
}
