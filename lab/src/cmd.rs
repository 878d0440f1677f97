//! Running commands, polling and sleeping (both watch for Ctrl-C once
//! [`install_interrupt_handlers`] ran), and the wall clock. No namespaces here.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
pub fn poll<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    poll_every(what, timeout, Duration::from_millis(100), f)
}

/// Poll `f` every `every` until it returns `Some`, or panic after `timeout`.
pub fn poll_every<T>(what: &str, timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        check_interrupted();
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(every);
    }
}

/// Sleep in short steps, watching for Ctrl-C.
pub fn sleep(d: Duration) {
    let end = Instant::now() + d;
    loop {
        check_interrupted();
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// CLOCK_REALTIME as seconds since the epoch (what `ip -ts`, tshark and
/// the daemons' logs stamp with).
pub fn epoch() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and SIGHUP only set a flag, which every wait loop of
/// the lab turns into a panic, so that the labs' `Drop` cleans up (for a
/// long-running program such as the benchmarks; tests do not need it).
pub fn install_interrupt_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
}

/// Panic when an interrupt arrived (see [`install_interrupt_handlers`]).
pub fn check_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        panic!("interrupted");
    }
}

/// True when an interrupt arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
