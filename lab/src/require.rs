//! Whether the lab can run here (root, the daemons' binaries), whether
//! this is CI (the one reading of the `CI` variable for the whole
//! project), and what a test or benchmark does when it cannot run: skip
//! with a reason, or fail under CI.

use std::path::{Path, PathBuf};

/// The binaries the lab's daemons and tools need (FRR's bfdd for the BFD
/// tests and benchmark rows).
pub const REQUIRED: &[&str] = &[
    "ip",
    "nft",
    "vtysh",
    "/usr/lib/frr/bgpd",
    "/usr/lib/frr/zebra",
    "/usr/lib/frr/bfdd",
    "gobgpd",
    "gobgp",
    "bird",
    "birdc",
    "python3",
];

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

/// True when running under CI: the variable `CI` is set to anything but
/// empty, `false`, `0`, `no` or `off` (any case). CI systems set `true`
/// (some their own name); `.ci/run` sets `true`. Under CI nothing skips:
/// a test or benchmark that cannot run fails. `helm/check.sh` reads the
/// variable by the same rule.
pub fn ci() -> bool {
    is_ci(std::env::var_os("CI").as_deref().and_then(|v| v.to_str()))
}

fn is_ci(v: Option<&str>) -> bool {
    match v {
        None => false,
        Some(v) => !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "false" | "0" | "no" | "off"),
    }
}

/// True when the lab can run. Otherwise: under CI panic, else print
/// `SKIP: <reason>` and return false (the test then returns early).
pub fn require_lab() -> bool {
    match lab_unavailable(&[]) {
        None => true,
        Some(reason) => {
            skip_or_fail("the lab test", &reason);
            false
        }
    }
}

/// A check that cannot run here: under CI panic with the reason, else
/// print `SKIP: <what>: <reason>` (the caller then returns).
pub fn skip_or_fail(what: &str, reason: &str) {
    if ci() {
        panic!("{what} cannot run and CI is set: {reason}");
    }
    println!("SKIP: {what}: {reason}");
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

#[cfg(test)]
mod tests {
    use super::is_ci;

    #[test]
    fn spellings_of_the_ci_flag() {
        for on in ["true", "TRUE", "True", "1", "yes", "on", "woodpecker"] {
            assert!(is_ci(Some(on)), "{on}");
        }
        for off in ["", " ", "false", "FALSE", "0", "no", "off"] {
            assert!(!is_ci(Some(off)), "{off:?}");
        }
        assert!(!is_ci(None));
    }
}
