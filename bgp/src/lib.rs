//! `mooring-bgp`: a BGP-4 implementation for announce-mostly speakers
//! (load balancers, anycast), with no Kubernetes in it.
//!
//! - [`wire`]: the message codec (decode from `&[u8]` with nom, encode
//!   into `BytesMut`), with RFC 4271 / RFC 7606 error semantics.
//! - [`limits`]: the ranges of what a user configures (AS numbers, timers,
//!   BFD), checked once for every front end.
//! - [`fsm`]: the session state machine and, in [`fsm::peer`], a peer's
//!   connections and their collisions, sans IO; [`session`]: the tokio
//!   driver that moves their bytes; [`speaker`]: peers, routes, status.
//! - [`log_limit`]: a rate limit for log lines peers can cause.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod bfd;
pub mod fsm;
pub mod limits;
pub mod log_limit;
pub mod session;
pub mod speaker;
pub mod wire;
