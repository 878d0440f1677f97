use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::node::probe::Check;

const MS: Duration = Duration::from_millis(1);

fn target(i: u32) -> Target {
    let address = IpAddr::V4(Ipv4Addr::from(0xc633_0000 + i)); // 198.51.0.0/16 + i
    Target { address, check: Check::Http { port: 10256, path: "/healthz".into() } }
}

fn targets(n: u32) -> BTreeSet<Target> {
    (0..n).map(target).collect()
}

fn settings(interval: Duration, concurrency: usize) -> ProbeSettings {
    ProbeSettings { interval, timeout: interval / 2, fall: 3, rise: 2, concurrency }
}

/// The oracle for [`Health`], from the definition rather than the counter:
/// after a result, the state is down if the last `fall` results all failed,
/// up if the last `rise` all succeeded, otherwise what it was (up at first).
fn oracle(results: &[bool], fall: u32, rise: u32) -> Vec<bool> {
    let mut up = true;
    let mut out = Vec::new();
    for i in 0..results.len() {
        let last = |n: u32| (i + 1 >= n as usize).then(|| &results[i + 1 - n as usize..=i]);
        if last(fall).is_some_and(|r| r.iter().all(|ok| !ok)) {
            up = false;
        } else if last(rise).is_some_and(|r| r.iter().all(|ok| *ok)) {
            up = true;
        }
        out.push(up);
    }
    out
}

/// Every sequence of up to 10 results, for every fall and rise up to 4.
#[test]
fn health_agrees_with_its_definition_exhaustively() {
    for fall in 1..=4 {
        for rise in 1..=4 {
            for len in 0..=10u32 {
                for bits in 0..1u32 << len {
                    let results: Vec<bool> = (0..len).map(|i| bits >> i & 1 == 1).collect();
                    let mut h = Health::default();
                    let mut states = Vec::new();
                    let mut before = true;
                    for &ok in &results {
                        let flip = h.record(ok, fall, rise);
                        // A transition is reported exactly when the state changes,
                        // with the streak that made it.
                        assert_eq!(flip.is_some(), h.is_up() != before, "{fall} {rise} {results:?}");
                        if let Some(n) = flip {
                            assert_eq!(n, if h.is_up() { rise } else { fall });
                        }
                        before = h.is_up();
                        states.push(h.is_up());
                    }
                    assert_eq!(states, oracle(&results, fall, rise), "fall {fall} rise {rise} {results:?}");
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn health_agrees_with_its_definition(results in prop::collection::vec(any::<bool>(), 0..200), fall in 1u32..8, rise in 1u32..8) {
        let mut h = Health::default();
        let states: Vec<bool> = results.iter().map(|&ok| { h.record(ok, fall, rise); h.is_up() }).collect();
        prop_assert_eq!(states, oracle(&results, fall, rise));
    }
}

#[test]
fn zero_thresholds_act_as_one() {
    let mut h = Health::default();
    assert_eq!(h.record(false, 0, 0), Some(1));
    assert!(!h.is_up());
    assert_eq!(h.record(true, 0, 0), Some(1));
    assert!(h.is_up());
}

/// A simulated driver: probes of a target take `took(target)`, succeed
/// iff `ok(target, start)`. Checks the limits on every start; returns every
/// probe started (time, target) and every transition (time, transition).
struct Sim {
    starts: Vec<(Instant, Target)>,
    transitions: Vec<(Instant, Transition)>,
    max_in_flight: usize,
}

fn simulate(
    s: &mut Schedule,
    from: Instant,
    until: Instant,
    took: impl Fn(&Target) -> Duration,
    ok: impl Fn(&Target, Instant) -> bool,
) -> Sim {
    let mut sim = Sim { starts: Vec::new(), transitions: Vec::new(), max_in_flight: 0 };
    // Probes in flight: (end, id) → result.
    let mut running: BTreeMap<(Instant, ProbeId), (Target, bool)> = BTreeMap::new();
    let mut now = from;
    loop {
        while let Some(p) = s.start(now) {
            assert!(
                !running.values().any(|(t, _)| *t == p.target),
                "{} started while its previous probe is in flight",
                p.target
            );
            assert_eq!(p.timeout, s.settings().timeout);
            let ok = ok(&p.target, now);
            running.insert((now + took(&p.target), p.id), (p.target.clone(), ok));
            sim.starts.push((now, p.target));
            assert!(s.in_flight() <= s.settings().concurrency, "{} in flight", s.in_flight());
            sim.max_in_flight = sim.max_in_flight.max(s.in_flight());
        }
        let next = [s.next_wake(), running.keys().next().map(|k| k.0)].into_iter().flatten().min();
        let Some(next) = next.filter(|n| *n <= until) else { break };
        assert!(next >= now, "time goes forward");
        now = next;
        while let Some(entry) = running.first_entry().filter(|e| e.key().0 <= now) {
            let ((_, id), (_, ok)) = entry.remove_entry();
            let result = if ok { Ok(()) } else { Err(Failure::Refused) };
            if let Some(t) = s.finish(id, result) {
                sim.transitions.push((now, t));
            }
        }
    }
    // Probes still running end (after `until`), so the schedule is left
    // with none in flight.
    for ((end, id), (_, ok)) in running {
        if let Some(t) = s.finish(id, if ok { Ok(()) } else { Err(Failure::Refused) }) {
            sim.transitions.push((end, t));
        }
    }
    sim
}

fn starts_of<'a>(sim: &'a Sim, t: &'a Target) -> impl Iterator<Item = Instant> + 'a {
    sim.starts.iter().filter(move |(_, x)| x == t).map(|(at, _)| *at)
}

#[test]
fn new_targets_are_up_and_their_first_probes_spread_over_the_interval() {
    let t0 = Instant::now();
    let interval = 200 * MS;
    let mut s = Schedule::new(settings(interval, 2000), 7);
    s.set_targets(&targets(1000), t0);
    assert!((0..1000).all(|i| s.is_up(&target(i))));
    assert!(!s.is_up(&target(1000)), "unknown targets are not up");
    let sim = simulate(&mut s, t0, t0 + interval - Duration::from_nanos(1), |_| MS, |_, _| true);
    assert_eq!(sim.starts.len(), 1000, "every target probed within the first interval");
    // 20 buckets of 10 ms: about 50 each, none crowded.
    let mut buckets = [0u32; 20];
    for (at, _) in &sim.starts {
        buckets[((*at - t0).as_millis() / 10) as usize] += 1;
    }
    assert!(buckets.iter().all(|&n| (20..=90).contains(&n)), "{buckets:?}");
}

#[test]
fn with_enough_slots_every_target_is_probed_once_per_interval_and_none_is_late() {
    let t0 = Instant::now();
    let interval = 200 * MS;
    let mut s = Schedule::new(settings(interval, 64), 1);
    s.set_targets(&targets(500), t0);
    // 500 probes of 10 ms per 200 ms need 25 slots on average.
    let sim = simulate(&mut s, t0, t0 + 20 * interval, |_| 10 * MS, |_, _| true);
    for i in 0..500 {
        let at: Vec<Instant> = starts_of(&sim, &target(i)).collect();
        assert!(at.len() >= 19, "{} probes", at.len());
        for w in at.windows(2) {
            assert_eq!(w[1] - w[0], interval, "target {i} keeps its place");
        }
    }
    let c = s.counters();
    assert_eq!((c.late, c.skipped, c.failed), (0, 0, 0));
    assert_eq!(c.sent, sim.starts.len() as u64);
    assert!(sim.transitions.is_empty());
    assert!(sim.max_in_flight <= 64);
}

#[test]
fn the_limit_holds_and_late_probes_are_counted_but_every_target_gets_its_turn() {
    let t0 = Instant::now();
    let interval = 200 * MS;
    let mut s = Schedule::new(settings(interval, 8), 2);
    s.set_targets(&targets(1000), t0);
    // 8 slots of 20 ms: 400 probes a second for 5000 wanted.
    let sim = simulate(&mut s, t0, t0 + Duration::from_secs(10), |_| 20 * MS, |_, _| true);
    assert_eq!(sim.max_in_flight, 8);
    assert!(sim.starts.len() >= 3990, "{} probes: the slots stay busy", sim.starts.len());
    // Longest due first: round robin, each target about every 2.5 s.
    for i in 0..1000 {
        let at: Vec<Instant> = starts_of(&sim, &target(i)).collect();
        assert!(at.len() >= 3, "target {i}: {} probes", at.len());
        for w in at.windows(2) {
            assert!(w[1] - w[0] <= Duration::from_millis(2800), "target {i} waited {:?}", w[1] - w[0]);
        }
    }
    let c = s.counters();
    assert!(c.late >= 3000, "{c:?}");
    assert!(c.skipped >= 1000 * 10, "about 11 intervals missed per probe: {c:?}");
}

#[test]
fn a_slow_target_never_has_two_probes_and_skips_its_due_ones() {
    let t0 = Instant::now();
    let interval = 100 * MS;
    let mut s = Schedule::new(settings(interval, 64), 3);
    let slow = target(0);
    s.set_targets(&targets(2), t0);
    // The slow target's probes take 250 ms (as if the timeout were longer
    // than the interval): the simulation asserts they never overlap.
    let sim =
        simulate(&mut s, t0, t0 + Duration::from_secs(3), |t| if *t == slow { 250 * MS } else { MS }, |_, _| true);
    let at: Vec<Instant> = starts_of(&sim, &slow).collect();
    for w in at.windows(2) {
        assert!(w[1] - w[0] >= 250 * MS);
        assert!(w[1] - w[0] <= 300 * MS, "starts again right after: {:?}", w[1] - w[0]);
    }
    assert!(at.len() >= 10);
    let c = s.counters();
    // 2.5 intervals per probe: 1.5 skipped per probe on average.
    let n = at.len() as u64 - 1;
    assert!((n..=2 * n).contains(&c.skipped), "{c:?}");
    assert!(c.late >= at.len() as u64 - 1, "{c:?}");
    assert!(starts_of(&sim, &target(1)).count() >= 29, "the other target is unaffected");
}

#[test]
fn down_after_fall_failures_up_after_rise_successes_with_the_reason() {
    let t0 = Instant::now();
    let interval = 100 * MS;
    let mut s = Schedule::new(settings(interval, 4), 4);
    let t = target(0);
    s.set_targets(&BTreeSet::from([t.clone()]), t0);
    // Failing from 1 s to 2 s.
    let failing = |at: Instant| at >= t0 + Duration::from_secs(1) && at < t0 + Duration::from_secs(2);
    let sim = simulate(&mut s, t0, t0 + Duration::from_secs(3), |_| MS, |_, at| !failing(at));
    let starts: Vec<Instant> = starts_of(&sim, &t).collect();
    let first_fail = starts.iter().position(|at| failing(*at)).unwrap();
    let first_ok = starts.iter().position(|at| *at >= t0 + Duration::from_secs(2)).unwrap();
    match &sim.transitions[..] {
        [(down, d), (up, u)] => {
            assert_eq!((d.up, d.streak, &d.failure), (false, 3, &Some(Failure::Refused)));
            assert_eq!(*down, starts[first_fail + 2] + MS, "the third failure");
            assert_eq!((u.up, u.streak, &u.failure), (true, 2, &None));
            assert_eq!(*up, starts[first_ok + 1] + MS, "the second success");
        }
        other => panic!("{other:?}"),
    }
    let c = s.counters();
    assert_eq!((c.downs, c.ups, c.failed), (1, 1, 10));
    assert!(s.is_up(&t) && s.last_failure(&t).is_none());
}

#[test]
fn a_removed_target_is_no_longer_probed_and_its_probe_in_flight_is_dropped() {
    let t0 = Instant::now();
    let mut s = Schedule::new(settings(100 * MS, 1), 5);
    let (a, b) = (target(0), target(1));
    s.set_targets(&BTreeSet::from([a.clone(), b.clone()]), t0);
    let p = s.start(t0 + 100 * MS).expect("one is due");
    assert!(s.start(t0 + 100 * MS).is_none(), "limit of 1");
    let kept = if p.target == a { b.clone() } else { a.clone() };
    s.set_targets(&BTreeSet::from([kept.clone()]), t0 + 100 * MS);
    assert_eq!(s.take_cancelled(), [p.id]);
    assert!(s.take_cancelled().is_empty());
    assert!(!s.is_up(&p.target), "forgotten");
    // The dropped probe still holds its slot until it is reported ended.
    assert_eq!(s.in_flight(), 1);
    assert!(s.start(t0 + 100 * MS).is_none() && s.next_wake().is_none());
    assert_eq!(s.finish(p.id, Err(Failure::Internal("cancelled".into()))), None);
    assert_eq!(s.counters().failed, 0, "a dropped probe is not a failure");
    assert_eq!(s.finish(p.id, Ok(())), None, "reported twice: ignored");
    let sim = simulate(&mut s, t0 + 100 * MS, t0 + Duration::from_secs(2), |_| MS, |_, _| true);
    assert!(sim.starts.iter().all(|(_, t)| *t == kept));
    assert!(sim.starts.len() >= 19);
    assert_eq!(s.targets().collect::<Vec<_>>(), [&kept]);
}

#[test]
fn a_target_added_again_starts_afresh_up() {
    let t0 = Instant::now();
    let mut s = Schedule::new(ProbeSettings { fall: 1, ..settings(100 * MS, 4) }, 6);
    let t = BTreeSet::from([target(0)]);
    s.set_targets(&t, t0);
    let sim = simulate(&mut s, t0, t0 + 150 * MS, |_| MS, |_, _| false);
    assert_eq!(sim.transitions.len(), 1);
    assert!(!s.is_up(&target(0)));
    assert_eq!(s.down().collect::<Vec<_>>(), [&target(0)]);
    s.set_targets(&BTreeSet::new(), t0 + 150 * MS);
    s.set_targets(&t, t0 + 150 * MS);
    assert!(s.is_up(&target(0)));
}

#[test]
fn a_shorter_interval_applies_at_once_a_longer_one_after_the_next_probe() {
    let t0 = Instant::now();
    let mut s = Schedule::new(settings(Duration::from_secs(60), 64), 8);
    s.set_targets(&targets(50), t0);
    let t1 = t0 + Duration::from_secs(1);
    s.set_settings(settings(100 * MS, 64), t1);
    let sim = simulate(&mut s, t1, t1 + Duration::from_secs(1), |_| MS, |_, _| true);
    for i in 0..50 {
        let at: Vec<Instant> = starts_of(&sim, &target(i)).collect();
        assert!(at[0] < t1 + 100 * MS, "brought forward");
        assert!(at.len() >= 9, "{at:?}");
    }
    let t2 = t1 + Duration::from_secs(1);
    s.set_settings(settings(Duration::from_secs(1), 64), t2);
    let sim = simulate(&mut s, t2, t2 + Duration::from_millis(2500), |_| MS, |_, _| true);
    for i in 0..50 {
        let at: Vec<Instant> = starts_of(&sim, &target(i)).collect();
        assert!(at[0] <= t2 + 100 * MS, "the next probe as planned");
        assert_eq!(at[1] - at[0], Duration::from_secs(1), "then the new interval");
    }
}

#[test]
fn new_thresholds_and_timeout_apply_to_the_next_probe() {
    let t0 = Instant::now();
    let mut s = Schedule::new(ProbeSettings { fall: 100, ..settings(100 * MS, 4) }, 9);
    s.set_targets(&targets(1), t0);
    let sim = simulate(&mut s, t0, t0 + Duration::from_secs(1), |_| MS, |_, _| false);
    assert!(sim.transitions.is_empty() && s.counters().failed >= 9);
    let failed = s.counters().failed as u32;
    let t1 = t0 + Duration::from_secs(1);
    s.set_settings(ProbeSettings { fall: 1, timeout: 7 * MS, ..settings(100 * MS, 4) }, t1);
    let sim = simulate(&mut s, t1, t1 + 150 * MS, |_| MS, |_, _| false);
    assert_eq!(sim.transitions.len(), 1, "down at the next failure");
    assert_eq!(sim.transitions[0].1.streak, failed + 1, "the failures so far count");
}

#[test]
fn zero_settings_are_read_as_the_smallest_meaningful() {
    let zero = ProbeSettings { interval: Duration::ZERO, timeout: Duration::ZERO, fall: 0, rise: 0, concurrency: 0 };
    let t0 = Instant::now();
    let mut s = Schedule::new(zero, 10);
    assert_eq!(s.settings(), ProbeSettings { interval: MS, timeout: MS, fall: 1, rise: 1, concurrency: 1 });
    s.set_targets(&targets(3), t0);
    let sim = simulate(&mut s, t0, t0 + 100 * MS, |_| MS / 2, |_, _| true);
    assert!(sim.starts.len() >= 100 && sim.max_in_flight == 1);
}

#[test]
fn the_default_detects_within_a_second() {
    let d = ProbeSettings::default();
    assert_eq!(d.detection(), Duration::from_millis(750));
    assert!(d.timeout < d.interval, "a probe ends before the next is due");
}

#[derive(Debug, Clone)]
enum Op {
    SetTargets(Vec<u8>),
    Start,
    Finish(usize, bool),
    Advance(u16),
    Limit(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::collection::vec(0u8..12, 0..12).prop_map(Op::SetTargets),
        Just(Op::Start),
        (any::<usize>(), any::<bool>()).prop_map(|(i, ok)| Op::Finish(i, ok)),
        (0u16..300).prop_map(Op::Advance),
        (0u8..5).prop_map(Op::Limit),
    ]
}

proptest! {
    /// Whatever the driver does, in any order: the limit holds, a target has
    /// at most one probe, only targets are probed, the
    /// next wake-up is the earliest due, and memory follows the targets.
    #[test]
    fn the_bounds_hold_under_any_sequence(ops in prop::collection::vec(op(), 1..120), seed in any::<u64>()) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut s = Schedule::new(settings(100 * MS, 3), seed);
        let mut running: Vec<Probe> = Vec::new();
        let mut dropped: Vec<ProbeId> = Vec::new();
        for op in ops {
            match op {
                Op::SetTargets(ix) => {
                    s.set_targets(&ix.iter().map(|&i| target(i.into())).collect(), now);
                    dropped.extend(s.take_cancelled());
                }
                Op::Start => {
                    let before = s.in_flight();
                    while let Some(p) = s.start(now) {
                        prop_assert!(s.targets().any(|t| *t == p.target));
                        prop_assert!(!running.iter().any(|r| r.target == p.target && !dropped.contains(&r.id)));
                        running.push(p);
                    }
                    if s.in_flight() > before {
                        prop_assert!(s.in_flight() <= s.settings().concurrency);
                    }
                }
                Op::Finish(i, ok) if !running.is_empty() => {
                    let p = running.remove(i % running.len());
                    let result = if ok { Ok(()) } else { Err(Failure::Refused) };
                    let t = s.finish(p.id, result);
                    if dropped.contains(&p.id) {
                        prop_assert!(t.is_none());
                    }
                }
                Op::Finish(..) => {}
                Op::Advance(ms) => now += Duration::from_millis(ms.into()),
                Op::Limit(n) => s.set_settings(settings(100 * MS, n.into()), now),
            }
            prop_assert_eq!(s.in_flight(), running.len());
            prop_assert!(s.idle.len() + s.flights.values().filter(|t| t.is_some()).count() == s.entries.len());
            if let Some(w) = s.next_wake() {
                prop_assert!(s.in_flight() < s.settings().concurrency);
                prop_assert!(s.idle.iter().all(|(due, _)| *due >= w));
            }
        }
    }
}
