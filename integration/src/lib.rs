//! Network-namespace lab for interop tests of the Mooring BGP speaker
//! with real FRR, GoBGP and BIRD daemons.
//!
//! Every test builds its own [`Lab`] with a unique id `X`: namespaces
//! `mitX-*`, link subnets 198.18.X.0/24 (router bridge), 198.19.X.0/24
//! (client) and 2001:db8:ffff:ffXX::/64, FRR instance `mitX`, GoBGP API port
//! 50100+X. Dropping the lab (also while panicking) kills every process it
//! started by PID, deletes its namespaces and removes its temp dir.

mod daemons;
mod interop;
mod lab;
mod util;

pub use daemons::{edge_frr, Bird, Frr, GoBgp};
pub use interop::{
    check_withdrawal, start_interop_speakers, wait_daemon_established, wait_route, wait_speakers_established,
    InteropVips, EBGP_V6_PASSWORD, IBGP_V4_PASSWORD,
};
pub use lab::{mooring_bin, Lab, Node, Proc};
pub use util::{fib_nexthops, poll, run, run_ok, sh, tail};

use std::path::Path;

/// The binaries the lab needs.
pub const REQUIRED: &[&str] =
    &["ip", "nft", "vtysh", "/usr/lib/frr/bgpd", "/usr/lib/frr/zebra", "gobgpd", "gobgp", "bird", "birdc", "python3"];

fn find_in_path(bin: &str) -> bool {
    if bin.contains('/') {
        return Path::new(bin).exists();
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let mut dirs: Vec<String> = path.split(':').map(String::from).collect();
    // sudo may strip sbin from PATH.
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(String::from));
    dirs.iter().any(|d| Path::new(d).join(bin).exists())
}

/// Why the lab cannot run here, if it cannot.
pub fn lab_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network-namespace tests need root (run: sudo cargo test -p mooring-integration)".into());
    }
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|b| !find_in_path(b)).collect();
    if !missing.is_empty() {
        return Some(format!(
            "missing binaries: {} (Debian: frr gobgpd bird2 nftables iproute2 python3)",
            missing.join(", ")
        ));
    }
    None
}

/// True when the lab can run. Otherwise: with `CI=true` panic, else print
/// `SKIP: <reason>` and return false (the test then returns early).
pub fn require_lab() -> bool {
    match lab_unavailable() {
        None => true,
        Some(reason) => {
            if std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false) {
                panic!("lab tests cannot run with CI=true: {reason}");
            }
            println!("SKIP: {reason}");
            false
        }
    }
}

/// `require_lab!();` at the top of a test: returns early when skipping.
#[macro_export]
macro_rules! require_lab {
    () => {
        if !$crate::require_lab() {
            return;
        }
    };
}
