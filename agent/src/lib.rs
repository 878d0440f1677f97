//! Mooring's agent: the pure desired-state model, the IPAM allocator,
//! the sources that feed them, and the commands of the `mooring` binary.

pub mod admin;
pub mod announce;
pub mod cli;
pub mod import;
pub mod kube;
pub mod metrics;
pub mod model;
pub mod node;
pub mod sources;
pub mod standalone;
pub mod status;
