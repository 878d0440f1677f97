//! Issue 6, benchmark 5: scale (`--bench scale`).
//!
//! A. Fan-out: one speaker (Mooring, GoBGP, BIRD) in namespace `mit42-spk`
//!    announces V /32s to P counting sinks (`bgp-sink --stay`, one address
//!    each on the router namespace's bridge). Measured: the time until every
//!    sink holds V, the speaker's RSS and CPU at idle, and a full
//!    re-announce: every sink sends a ROUTE-REFRESH at once (SIGUSR1) and
//!    the clock runs until every sink has received all V again.
//! B. Fan-in: one FRR router (`mit43-r`, the lab edge: listen range, timers
//!    1 3, maximum-paths 16) and S node namespaces, each running one speaker
//!    of one kind announcing the same 10 VIPs. Measured: the time until FRR
//!    has S sessions Established with 10 routes each, the speakers' RSS and
//!    CPU at idle, and a full re-announce triggered by `clear bgp ipv4
//!    unicast * soft in` (FRR sends ROUTE-REFRESH to every speaker; a
//!    tshark capture on the bridge confirms the requests and times the
//!    answers); FRR's own CPU and RSS for reference. The namespaces are
//!    built once and reused by every speaker kind; FRR is restarted for each.
//!
//! Every session: hold time 3 s, a KEEPALIVE every second (the lab edge's
//! `timers 1 3`), so idle means one KEEPALIVE per second per session.
//! CPU is utime+stime of the process (all threads, from /proc/PID/stat;
//! per-thread schedstat for sub-tick resolution); memory is VmRSS, VmHWM
//! (the peak, reset with `clear_refs` before each re-announce) and PSS.
//!
//! Sizes: full 10k VIPs x 16 peers and 200 nodes, `--quick` 1k x 4 and 15;
//! `--scale-vips`, `--scale-peers`, `--scale-nodes` override them, `--reps`
//! sets the re-announce rounds (the tables show medians). See benches/README.md.
//!
//! This file holds the settings and the run; scenario.rs the two labs and
//! their speakers, driver.rs the measurements, report.rs the tables (a
//! pure function).

mod driver;
mod report;
mod scenario;

use std::time::{Duration, Instant};

use crate::common::{human, Bins};
use crate::Opts;

const FANOUT_LAB: u8 = 42;
const FANIN_LAB: u8 = 43;
/// The VIPs every fan-in node announces.
const FANIN_VIPS: u32 = 10;
/// The shortest CPU window of a fan-in re-announce (s).
const RE_WINDOW: f64 = 2.0;

/// Benchmark 5. Panics when something does not converge; there is no
/// numeric target, so it returns true.
pub fn run(o: &Opts, bins: &Bins) -> bool {
    let sizes = report::Sizes {
        vips: o.scale_vips.unwrap_or(if o.quick { 1000 } else { 10_000 }),
        peers: o.scale_peers.unwrap_or(if o.quick { 4 } else { 16 }),
        nodes: o.scale_nodes.unwrap_or(if o.quick { 15 } else { 200 }),
        rounds: o.reps(),
        idle_out: Duration::from_secs(if o.quick { 3 } else { 10 }),
        idle_in: Duration::from_secs(if o.quick { 5 } else { 10 }),
    };
    let kinds = &o.speakers;
    let started = Instant::now();
    eprintln!("scale A (fan-out): one speaker, {} VIPs, {} peers (bgp-sink)", human(sizes.vips), sizes.peers);
    let outs: Vec<report::FanOut> = kinds.iter().map(|&k| driver::fanout(k, &sizes, bins)).collect();
    eprintln!("scale B (fan-in): FRR with {} speakers of {FANIN_VIPS} VIPs each", sizes.nodes);
    let ins = driver::fanin(kinds, &sizes);
    print!("{}", report::report(kinds, &sizes, &outs, &ins));
    println!("\nScale: no numeric target; figures and ratios only ({:.0} s).", started.elapsed().as_secs_f64());
    true
}
