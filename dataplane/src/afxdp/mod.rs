//! AF_XDP: the memory and rings shared with the kernel, and the threads that use them.
//!
//! - [`umem`]: the UMEM area and [`Frame`](umem::Frame), the handle that says userspace
//!   owns a chunk; `ring`: one mapped ring; [`xsk`]: sockets (bind, options, stats)
//!   and the batch operations that move frames through their four rings. These three
//!   are the only modules with `unsafe`; [`xsk`] re-exports what the rest needs.
//! - [`worker`]: the per-queue threads that move frames between the underlay and
//!   overlay sockets (safe Rust only).
//! - [`zerocopy`]: `--zerocopy auto|on|off`, the underlay socket's bind mode (each
//!   socket registers the worker's memory as a UMEM of its own, so the modes can differ).
//! - [`localmac`]: the reporter that tells the control plane which MACs sit behind the
//!   overlay.

pub mod localmac;
mod ring;
pub mod umem;
pub mod worker;
pub mod xsk;
pub mod zerocopy;
