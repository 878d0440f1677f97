//! Kubernetes mode: the controller (allocates, writes Service and Eip
//! status and Events, one leader by Lease) and the speaker (announces its
//! node's routes, writes its sessions into BgpPeer status). Both feed the
//! watched objects into the same model as standalone mode.

pub mod access;
pub mod controller;
pub mod leader;
pub mod peer_status;
pub mod reconcile;
pub mod secrets;
pub mod speaker;
pub mod stores;
