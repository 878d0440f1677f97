//! The node loop shared by `mooring standalone` and `mooring speaker`:
//! plan → damping → speaker drive → status and metrics.

pub mod damping;
