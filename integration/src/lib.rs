//! What the lab tests share beyond the lab itself (crate `mooring-lab`):
//! the interop tests' two speakers and session matrix, the same against
//! FRR, GoBGP and BIRD; the container image as the image tests build and
//! run it ([`image`]).

pub mod image;
mod interop;

pub use interop::{
    check_withdrawal, start_interop_speakers, wait_daemon_established, wait_route, wait_speakers_established,
    InteropVips, EBGP_V6_PASSWORD, IBGP_V4_PASSWORD,
};
