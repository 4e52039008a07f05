//! Consul's HTTP API: a small blocking client for KV (blocking queries, `cas`,
//! `acquire`) and sessions. The cluster-store backend on top of it is
//! [`crate::store::consul`]; the watcher and advertiser are the store's
//! ([`crate::store`]).
#![forbid(unsafe_code)]

pub mod client;

pub use client::{Client, Consistency, ConsulConfig, ConsulError};
