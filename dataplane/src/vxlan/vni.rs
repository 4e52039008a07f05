//! The VXLAN Network Identifier: defined once in `vxdp-common` (shared with the CLI, the
//! FDB entry parsers and the Consul schema) and re-exported here as `vxdp::vxlan::Vni`.

pub use vxdp_common::{ParseVniError, Vni};
