//! Failover (issue 6, benchmark 4), in a lab with id 41: router `mit41-r`
//! on 198.18.41.0/24, nodes `mit41-a` .11 and `mit41-b` .12,
//! `mit41-client` 198.19.41.2 behind the router. The router runs FRR
//! (bgpd + zebra, AS 64512, `timers 1 3`, `maximum-paths 16`, both nodes
//! static neighbours, `bgp graceful-restart`). Node A runs the speaker
//! under test (Mooring, GoBGP or BIRD, AS 64513, hold time 3 s, next hop
//! self), node B a Mooring speaker, both announcing the VIP
//! 203.0.113.41/32, so that the router's kernel FIB holds a two-way ECMP
//! route. A fresh lab per speaker kind; graceful restart off on A until
//! part 3.
//!
//! 1. **kill -9**: SIGKILL the speaker on A; the time until the router's
//!    kernel FIB no longer has A's next hop (the kernel closes the dead
//!    process's TCP connection: FRR sees the session end at once).
//! 2. **blackhole**: nftables on A drops everything to and from the router
//!    (both ways); the time until A's next hop leaves the FIB, bounded by
//!    the 3 s hold time (FRR's hold timer fires 2-3 s after the last
//!    keepalive it got; keepalives every second). Then the same with BFD
//!    (FRR's bfdd, 300 ms x 3 on both sides) for Mooring and BIRD (GoBGP
//!    has no BFD).
//! 3. **graceful restart**: B withdraws; A (its speaker restarted with
//!    graceful restart, restart time 60 s) is the VIP's only next hop and
//!    serves it (the VIP is on A's `lo`). The client streams UDP datagrams
//!    with sequence numbers to the VIP, one per millisecond (a Python
//!    sender paced on the monotonic clock; a receiver bound to the VIP on A
//!    counts distinct sequence numbers), while A's speaker stops the
//!    graceful way, stays down 1.5 s and starts again as a restarting
//!    speaker (R bit). The stream runs from 1 s before the stop until 1 s
//!    after FRR holds a fresh (not stale) path again; lost = sent −
//!    received, with the longest run of lost datagrams. Mooring also runs
//!    a baseline without graceful restart (SIGTERM sends a Cease, the
//!    route goes), which shows that the zero is not for free.
//!
//! Times come from `ip -ts monitor route` in the router namespace (started
//! before FRR, TZ=UTC): each line is stamped with gettimeofday when `ip`
//! reads zebra's netlink change, compared with CLOCK_REALTIME taken right
//! before kill(2) / before `nft -f` runs. No polling.
//!
//! This file holds the settings and the run over the speakers;
//! scenario.rs the lab and how it is operated, driver.rs the
//! measurements, report.rs the tables and targets (a pure function).

mod driver;
mod report;
mod scenario;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use mooring_lab::check_interrupted;

use crate::common::SpeakerKind;
use crate::{panic_message, Opts, Outcome};
use report::Row;

const LAB_ID: u8 = 41;
const VIP: &str = "203.0.113.41";
const NODE_AS: u32 = 64513;
const ROUTER_AS: u32 = 64512;
/// The hold time every speaker on A is configured with (FRR's NODES: 3 s).
const HOLD_S: u16 = 3;
/// How long the speaker stays down in the graceful-restart run.
const DOWN: Duration = Duration::from_millis(1500);
/// Graceful-restart restart time advertised by the restarting speakers.
const RESTART_TIME: u32 = 60;
/// BFD (optional rows): intervals and multiplier on both sides.
const BFD_MS: u32 = 300;
const BFD_MULT: u32 = 3;
/// One datagram per millisecond.
const STREAM_INTERVAL_MS: f64 = 1.0;

/// Benchmark 4 over `o.speakers`. A speaker whose run fails is a harness
/// error; the others still run, and the report shows what was measured.
pub fn run(o: &Opts) -> Outcome {
    let started = Instant::now();
    let samples = if o.quick { driver::Samples { kills: 3, blackholes: 1, bfds: 1 } } else { driver::Samples::FULL };
    let mut rows: Vec<(SpeakerKind, Row)> = vec![];
    let mut errors = vec![];
    for &kind in &o.speakers {
        let mut row = Row::default();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| driver::measure(kind, samples, &mut row)));
        if let Err(e) = r {
            // Ctrl-C ends the whole run.
            check_interrupted();
            let msg = panic_message(e.as_ref());
            eprintln!("  failover {}: FAILED: {msg}", kind.name());
            errors.push(format!("{}: {msg}", kind.name()));
            row.error = Some(msg);
        }
        rows.push((kind, row));
    }
    eprintln!("  failover: {:.0} s", started.elapsed().as_secs_f64());
    let r = report::report(&rows);
    print!("{}", r.text);
    Outcome { met: r.all_met, errors }
}
