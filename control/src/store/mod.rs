//! Cluster stores as a source of FDB entries, the way Docker's overlay driver and
//! flannel use one: nodes advertise the MACs behind them, every node watches and
//! applies. One interface ([`Store`]), one backend per store, and everything above it
//! written once:
//!
//! - [`schema`]: the key layout and versioned JSON values, the same on every store.
//! - [`view`]: what the store holds under a VNI's prefix, turned into FDB changes
//!   (the one place a key/value pair is parsed).
//! - [`watch`]: the watcher thread (store updates → diffs → the data plane's table).
//! - [`advertise`]: the advertiser thread (a lease or session with a TTL; VTEP and MAC
//!   keys; the MAC-move rules).
//! - [`consul`]: Consul (blocking queries, sessions with `Behavior=delete`).
//! - [`etcd`]: etcd v3 (watch streams from a revision, leases with keep-alive).
//! - [`url`]: `--cluster-store URL` and `--cluster-store-opt KEY=VALUE`.
//!
//! See `docs/STORES.md` for the mapping of each rule onto each store.
#![forbid(unsafe_code)]

pub mod advertise;
pub mod consul;
pub mod etcd;
pub mod schema;
pub mod url;
pub mod view;
pub mod watch;
pub mod zk;

pub use advertise::{AdvertiseConfig, AdvertiseStats, Advertiser, AdvertiserHandle};
pub use schema::Keys;
pub use url::{StoreKind, StoreUrl};
pub use watch::{Change, Sink, WatchConfig, WatchStats, Watcher};

use std::time::Duration;

/// What went wrong talking to a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No answer (connection refused, timeout, no leader): retry, or try another endpoint.
    #[error("{0}")]
    Unreachable(String),
    /// The store answered with an error.
    #[error("{0}")]
    Refused(String),
    /// The lease or session named in a request no longer exists.
    #[error("lease or session lost: {0}")]
    SessionLost(String),
    #[error("unexpected answer: {0}")]
    Decode(String),
}

/// A lease (etcd) or session (Consul) that keys are written under: when it expires the
/// store deletes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease(pub String);

impl std::fmt::Display for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One key as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub value: Vec<u8>,
    /// The lease or session the key is written under, if any.
    pub owner: Option<Lease>,
    /// The store's version of this key (Consul `ModifyIndex`, etcd `mod_revision`),
    /// for a delete that removes exactly the version looked at.
    pub version: u64,
}

/// One change under a watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Put(String, Vec<u8>),
    Delete(String),
}

/// What a [`Store::poll`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Every key under the prefix now (Consul answers this way every time; etcd after
    /// a resync).
    Full(Vec<(String, Vec<u8>)>),
    /// Changes since the previous update (possibly none: the wait ran out).
    Events(Vec<Event>),
}

/// A [`Store::poll`] answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    pub update: Update,
    /// Set when the store had to drop its watch position (Consul's index went
    /// backwards, etcd's revision was compacted): why, for the log.
    pub reset: Option<String>,
}

/// A cluster store, as the watcher and advertiser use it. Each thread owns its own
/// instance; every call blocks for at most the wait it is given or a request timeout,
/// so a store runs on a plain control-plane thread (no async runtime).
pub trait Store: Send + 'static {
    /// `consul`, `etcd`.
    fn kind(&self) -> &'static str;

    /// The endpoint it talks to now, for the log.
    fn endpoint(&self) -> String;

    /// The next update under `prefix`, waiting up to `wait` for one. The first poll,
    /// and every poll with `resync`, answers [`Update::Full`]. After an error the
    /// caller polls with `resync`.
    fn poll(&mut self, prefix: &str, resync: bool, wait: Duration) -> Result<Poll, StoreError>;

    fn get(&mut self, key: &str) -> Result<Option<Held>, StoreError>;

    /// Writes `key`. Without `lease` unconditionally; with one, only if the key is
    /// absent or already held by that lease (`Ok(false)`: another lease holds it).
    fn put(&mut self, key: &str, value: &[u8], lease: Option<&Lease>) -> Result<bool, StoreError>;

    /// Deletes `key`; with `version`, only if it is still at that version.
    fn delete(&mut self, key: &str, version: Option<u64>) -> Result<bool, StoreError>;

    /// A new lease (session) of `ttl`; `name` is for operators where the store keeps one.
    fn lease_grant(&mut self, name: &str, ttl: Duration) -> Result<Lease, StoreError>;

    /// Renews a lease. `Ok(false)`: it no longer exists (its keys are gone).
    fn lease_renew(&mut self, lease: &Lease) -> Result<bool, StoreError>;

    /// Ends a lease; the store deletes its keys.
    fn lease_revoke(&mut self, lease: &Lease) -> Result<(), StoreError>;

    /// How long after a write completed an answer may still lack it (stale reads,
    /// a watch stream a little behind).
    fn read_lag(&self) -> Duration {
        Duration::ZERO
    }
}

impl Store for Box<dyn Store> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn endpoint(&self) -> String {
        (**self).endpoint()
    }
    fn poll(&mut self, prefix: &str, resync: bool, wait: Duration) -> Result<Poll, StoreError> {
        (**self).poll(prefix, resync, wait)
    }
    fn get(&mut self, key: &str) -> Result<Option<Held>, StoreError> {
        (**self).get(key)
    }
    fn put(&mut self, key: &str, value: &[u8], lease: Option<&Lease>) -> Result<bool, StoreError> {
        (**self).put(key, value, lease)
    }
    fn delete(&mut self, key: &str, version: Option<u64>) -> Result<bool, StoreError> {
        (**self).delete(key, version)
    }
    fn lease_grant(&mut self, name: &str, ttl: Duration) -> Result<Lease, StoreError> {
        (**self).lease_grant(name, ttl)
    }
    fn lease_renew(&mut self, lease: &Lease) -> Result<bool, StoreError> {
        (**self).lease_renew(lease)
    }
    fn lease_revoke(&mut self, lease: &Lease) -> Result<(), StoreError> {
        (**self).lease_revoke(lease)
    }
    fn read_lag(&self) -> Duration {
        (**self).read_lag()
    }
}
