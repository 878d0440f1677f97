//! The pure desired-state model: objects in, allocations, pool status and
//! per-node plans out. No IO here.

pub mod advertise;
pub mod annotations;
pub mod central;
pub mod classes;
pub mod desired;
pub mod ipam;
pub mod last_good;
pub mod nodes;
pub mod plan;
pub mod pool_status;
pub mod prune;
pub mod selector;
