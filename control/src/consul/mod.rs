//! Consul as a source of FDB entries, the way Docker's overlay driver and flannel use a
//! cluster store: nodes advertise the MACs behind them, every node watches and applies.
//!
//! - [`schema`]: the key layout and versioned JSON values.
//! - [`client`]: a small blocking client for KV, blocking queries and sessions.
//! - [`watch`]: the watcher thread (blocking queries → diffs → the data plane's table).
//! - [`advertise`]: the advertiser thread (a session with a TTL; VTEP and MAC keys).
//!
//! See `docs/CONSUL.md` for the schema, the rules followed and the fault handling.
#![forbid(unsafe_code)]

pub mod advertise;
pub mod client;
pub mod schema;
pub mod watch;

pub use advertise::{AdvertiseConfig, Advertiser, AdvertiserHandle};
pub use client::{Client, Consistency, ConsulConfig, ConsulError};
pub use schema::Keys;
pub use watch::{Change, Sink, WatchConfig, WatchStats, Watcher};
