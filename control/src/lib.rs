//! vxdp-control: where vxdp's FDB entries come from, in `bridge fdb` terms.
//!
//! - [`mac`]: the [`Mac`] address type.
//! - [`entry`]: FDB entries as requested (ops, remotes, sources), and parsing
//!   `bridge fdb`-style arguments and `--fdb` files. Named `entry` so it is not taken
//!   for the data plane's table itself (`vxdp::fdb`).
//! - [`ctl`]: the daemon's per-device control socket (JSON lines over an abstract Unix
//!   socket) and `fdb show` formatting.
//! - [`neigh`]: proxy neighbour entries (`vxdp neigh`, like `ip neigh`) for ARP/ND
//!   suppression.
//! - [`ports`]: `vxdp port` requests and `port show` (the port layout).
//! - [`stats`]: the counters `vxdp stats` reports, typed for daemon and client.
//! - [`store`]: cluster stores (Consul, etcd) as a source of entries: one interface,
//!   the watcher, advertiser and key schema written once on top of it.
//! - [`consul`]: the Consul HTTP client the Consul store uses.
//! - [`validate`]: the checks and caps every store backend's values pass.
//!
//! No threads run in the data path: the data plane owns the table (`vxdp::fdb`) and
//! this crate only describes changes to it and carries them.

pub mod consul;
pub mod ctl;
pub mod entry;
pub mod link;
pub mod loglimit;
pub mod mac;
pub mod neigh;
pub mod ports;
pub mod stats;
pub mod store;
pub mod validate;

pub use mac::Mac;
