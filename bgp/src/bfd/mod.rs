//! BFD, Bidirectional Forwarding Detection (RFC 5880 asynchronous mode,
//! RFC 5881 single hop over IPv4 and IPv6), to notice a dead peer in
//! well under a second instead of after a BGP hold time.
//!
//! - [`packet`]: the Control packet codec with the RFC 5880 section 6.8.6 checks.
//! - [`session`]: the sans-IO session state machine (Down/Init/Up/AdminDown,
//!   detection time, poll/final sequences, transmit jitter).
//! - [`driver`]: the tokio UDP driver (port 3784, TTL 255 both ways).
//!
//! Not supported: authentication (packets with the A bit are discarded),
//! demand mode, the echo function, multihop (RFC 5883).

pub mod driver;
pub mod packet;
pub mod session;

pub use driver::{Endpoint, Mux, CONTROL_PORT};
pub use packet::{diag, BfdState, ControlPacket, PacketError};
pub use session::{BfdConfig, Session, StateChange};
