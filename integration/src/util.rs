//! Running commands, polling, reading the kernel FIB.

use std::process::Command;
use std::time::{Duration, Instant};

/// Run a command; returns (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run a command that must succeed; returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let (ok, out, err) = run(args);
    assert!(ok, "command failed: {}\nstdout: {out}\nstderr: {err}", args.join(" "));
    out
}

/// Run a shell snippet that must succeed; returns stdout.
pub fn sh(script: &str) -> String {
    run_ok(&["sh", "-c", script])
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Poll `f` every 100 ms until it returns `Some`, or panic after `timeout`.
pub fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    poll_every(what, timeout, Duration::from_millis(100), &mut f)
}

pub(crate) fn poll_every<T>(what: &str, timeout: Duration, every: Duration, f: &mut dyn FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(every);
    }
}

/// The next hops of `prefix` in namespace `ns`'s main table (`ip -n NS
/// route show PREFIX`): one entry per `via` (a multipath route gives one
/// per `nexthop via`). Empty when there is no route.
pub fn fib_nexthops(ns: &str, prefix: &str) -> Vec<String> {
    let (_, out, _) = run(&["ip", "-n", ns, "route", "show", prefix]);
    let toks: Vec<&str> = out.split_whitespace().collect();
    let mut v: Vec<String> =
        toks.windows(2).filter(|w| w[0] == "via").map(|w| w[1].trim_start_matches("inet6").to_string()).collect();
    v.sort();
    v
}
