//! AF_XDP: the UMEM and its rings ([`xsk`], the only module with ring `unsafe`), the
//! per-queue [`worker`] threads that move frames between the underlay and overlay
//! sockets, and the [`localmac`] reporter that tells the control plane which MACs sit
//! behind the overlay.

pub mod localmac;
pub mod worker;
pub mod xsk;
