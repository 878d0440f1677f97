//! The pure desired-state model: objects in, allocations and per-node
//! announcements out. No IO here.

pub mod desired;
pub mod ipam;
pub mod nodes;
pub mod selector;
