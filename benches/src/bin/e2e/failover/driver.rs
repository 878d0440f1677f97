//! The failover measurements on a [`Scenario`]: kill -9 and blackhole
//! samples timed by the route monitor, and the UDP stream through a
//! restart of A's speaker, in the order the module doc describes.

use std::time::{Duration, Instant};

use mooring_lab::{epoch, fib_nexthops, poll_every, sleep, FibEvent};

use super::report::{Row, Stream};
use super::scenario::{Gr, Scenario};
use super::{BFD_MS, BFD_MULT, DOWN, HOLD_S, VIP};
use crate::common::SpeakerKind;

/// How many samples of each kind.
#[derive(Debug, Clone, Copy)]
pub struct Samples {
    pub kills: usize,
    pub blackholes: usize,
    pub bfds: usize,
}

impl Samples {
    pub const FULL: Samples = Samples { kills: 10, blackholes: 5, bfds: 5 };
}

/// The change is about the VIP.
fn vip(e: &FibEvent) -> bool {
    e.is_for(VIP)
}

/// The change leaves `nh` out of the VIP's route (or deletes it). A route
/// without any `via` is not ours to judge (a bare `nhid`): only a deletion
/// or an explicit next-hop list counts.
fn drops(e: &FibEvent, nh: &str) -> bool {
    vip(e) && (e.deleted || (!e.vias.is_empty() && !e.vias.iter().any(|v| v == nh)))
}

/// kill -9 the speaker on A: ms until its next hop leaves the FIB.
fn kill_sample(s: &mut Scenario) -> f64 {
    let p = s.speaker().clone();
    s.mon.skip();
    let t0 = epoch();
    p.signal(libc::SIGKILL);
    let a = s.a.v4.clone();
    let ms = s.mon.wait_for(&s.lab, t0, Duration::from_secs(10), |e| drops(e, &a));
    let ms = ms.unwrap_or_else(|| panic!("the FIB kept A's next hop 10 s after kill -9"));
    s.wait_gone(Duration::from_secs(5));
    ms
}

/// Blackhole A (nftables, both ways): ms until its next hop leaves the FIB.
fn blackhole_sample(s: &mut Scenario) -> f64 {
    s.mon.skip();
    let t0 = epoch();
    s.lab.silence(&s.a, &s.lab.router_v4);
    let a = s.a.v4.clone();
    let ms = s.mon.wait_for(&s.lab, t0, Duration::from_secs(15), |e| drops(e, &a));
    let ms = ms.unwrap_or_else(|| panic!("the FIB kept the blackholed node's next hop for 15 s"));
    s.lab.nft_clear(&s.a.ns);
    ms
}

/// The client streams to the VIP through a restart of A's speaker
/// (graceful when `gr`).
fn stream(s: &mut Scenario, gr: bool) -> Stream {
    let (sender, receiver) = s.start_stream();
    s.mon.skip();
    let t0 = Instant::now();
    s.stop_a(gr);
    let stopped = t0.elapsed();
    if gr {
        let stale = poll_every("FRR keeps the path, stale", Duration::from_secs(5), Duration::from_millis(20), || {
            s.path_stale()
        });
        if !stale {
            eprintln!("    {}: FRR did not keep the path after the graceful stop", s.kind.name());
        }
    }
    sleep(DOWN.saturating_sub(t0.elapsed() - stopped));
    s.start_a(if gr { Gr::Restarting } else { Gr::Off });
    s.frr.wait_established(&s.a.v4, Duration::from_secs(20));
    poll_every("FRR holds a fresh (not stale) path", Duration::from_secs(20), Duration::from_millis(20), || {
        s.fresh_path().then_some(())
    });
    s.wait_fib(&[&s.a], Duration::from_secs(10));
    let restart = t0.elapsed();
    sleep(Duration::from_secs(1));
    let (sent, received, max_gap) = s.end_stream(&sender, &receiver);
    // FIB changes of the VIP meanwhile: deletions and how long it was out.
    let (mut gaps, mut out_ms, mut gone_at) = (0, 0.0, None);
    for e in s.mon.drain().into_iter().filter(vip) {
        let gone = e.deleted || e.vias.is_empty();
        match (gone, gone_at) {
            (true, None) => {
                gaps += 1;
                gone_at = Some(e.t);
            }
            (false, Some(t)) => {
                out_ms += (e.t - t) * 1e3;
                gone_at = None;
            }
            _ => {}
        }
    }
    Stream { sent, received, max_gap, fib_gaps: gaps, fib_out_ms: out_ms, restart_s: restart.as_secs_f64() }
}

/// Every measurement of one speaker kind, in a fresh lab, into `row` (as
/// far as it got when it panics).
pub fn measure(kind: SpeakerKind, n: Samples, row: &mut Row) {
    let name = kind.name();
    let t = Instant::now();
    let mut s = Scenario::new(kind);
    s.start_b();
    s.start_a(Gr::Off);
    s.wait_fib(&[&s.a, &s.b], Duration::from_secs(30));
    eprintln!("  failover {name}: both next hops in the FIB after {:.1} s", t.elapsed().as_secs_f64());
    for i in 0..n.kills {
        // Let the new session settle (keepalives flowing) before the kill.
        sleep(Duration::from_millis(300));
        let ms = kill_sample(&mut s);
        eprintln!("  failover {name}: kill -9 #{}: A's next hop left the FIB after {ms:.1} ms", i + 1);
        row.kill.push(ms);
        assert_eq!(fib_nexthops(&s.lab.router, VIP), vec![s.b.v4.clone()], "B still serves the VIP");
        s.start_a(Gr::Off);
        s.wait_fib(&[&s.a, &s.b], Duration::from_secs(30));
    }
    for i in 0..n.blackholes {
        sleep(Duration::from_millis(500));
        let ms = blackhole_sample(&mut s);
        eprintln!(
            "  failover {name}: blackhole #{}: A's next hop left the FIB after {ms:.0} ms (hold {HOLD_S} s)",
            i + 1
        );
        row.blackhole.push(ms);
        s.wait_fib(&[&s.a, &s.b], Duration::from_secs(30));
    }
    // The same with BFD (GoBGP has none).
    if kind != SpeakerKind::GoBgp && n.bfds > 0 {
        s.enable_bfd();
        for i in 0..n.bfds {
            sleep(Duration::from_millis(500));
            let ms = blackhole_sample(&mut s);
            eprintln!(
                "  failover {name}: blackhole with BFD #{}: A's next hop left the FIB after {ms:.0} ms \
                 ({BFD_MS} ms x {BFD_MULT})",
                i + 1
            );
            row.bfd.push(ms);
            s.wait_fib(&[&s.a, &s.b], Duration::from_secs(30));
            s.wait_bfd_up();
        }
        s.disable_bfd();
    }

    // Graceful restart: A alone, with GR.
    s.stop_b();
    s.stop_a(false);
    s.start_a(Gr::On);
    s.wait_fib(&[&s.a], Duration::from_secs(30));
    s.frr.wait_established(&s.a.v4, Duration::from_secs(10));
    row.gr_mode = s.gr_mode();
    sleep(Duration::from_millis(500));
    let st = stream(&mut s, true);
    eprintln!(
        "  failover {name}: graceful restart ({}; FRR sees GR mode {}): {} sent, {} lost; VIP left the FIB {} \
         time(s); route fresh again {:.1} s after the stop",
        super::report::how_stopped(kind),
        row.gr_mode,
        st.sent,
        st.lost(),
        st.fib_gaps,
        st.restart_s
    );
    row.gr = Some(st);
    if kind == SpeakerKind::Mooring {
        s.stop_a(true);
        s.start_a(Gr::Off);
        s.wait_fib(&[&s.a], Duration::from_secs(30));
        poll_every("a fresh path", Duration::from_secs(20), Duration::from_millis(20), || s.fresh_path().then_some(()));
        sleep(Duration::from_millis(500));
        let st = stream(&mut s, false);
        eprintln!(
            "  failover {name}: restart without GR (SIGTERM, Cease): {} sent, {} lost; VIP out of the FIB for {:.0} ms",
            st.sent,
            st.lost(),
            st.fib_out_ms
        );
        row.no_gr = Some(st);
    }
    eprintln!("  failover {name}: done in {:.1} s", t.elapsed().as_secs_f64());
}
