//! Whether the lab can run here (root, the daemons' binaries), and what a
//! test or benchmark does when it cannot: skip with a reason, or fail
//! under CI.

use std::path::{Path, PathBuf};

/// The binaries the lab's daemons and tools need.
pub const REQUIRED: &[&str] =
    &["ip", "nft", "vtysh", "/usr/lib/frr/bgpd", "/usr/lib/frr/zebra", "gobgpd", "gobgp", "bird", "birdc", "python3"];

/// Where a program is: `bin` when it has a slash, else searched in PATH
/// and the sbin directories sudo may strip.
pub fn find_program(bin: &str) -> Option<PathBuf> {
    if bin.contains('/') {
        return Path::new(bin).exists().then(|| PathBuf::from(bin));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let mut dirs: Vec<String> = path.split(':').map(String::from).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/bin", "/usr/local/sbin"].map(String::from));
    dirs.iter().map(|d| Path::new(d).join(bin)).find(|p| p.exists())
}

/// Why the lab cannot run here, if it cannot: not root, or a binary of
/// [`REQUIRED`] or `more` is missing.
pub fn lab_unavailable(more: &[&str]) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network-namespace labs need root (run the tests or benchmarks with sudo)".into());
    }
    let missing: Vec<&str> = REQUIRED.iter().chain(more).copied().filter(|b| find_program(b).is_none()).collect();
    if !missing.is_empty() {
        return Some(format!(
            "missing binaries: {} (Debian: frr gobgpd bird2 nftables iproute2 python3 tshark)",
            missing.join(", ")
        ));
    }
    None
}

/// True when running under CI (`CI=true` or `CI=1`).
pub fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// True when the lab can run. Otherwise: under CI panic, else print
/// `SKIP: <reason>` and return false (the test then returns early).
pub fn require_lab() -> bool {
    match lab_unavailable(&[]) {
        None => true,
        Some(reason) => {
            if ci() {
                panic!("lab tests cannot run with CI set: {reason}");
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
