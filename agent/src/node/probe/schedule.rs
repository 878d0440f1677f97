//! The prober's pure core, sans IO: the targets and their health, which
//! probe is due, the concurrency limit and the counters. The current time
//! and probe results in; probes to start, probes to drop, up/down
//! transitions and the next time to look out. No sockets, clocks or tasks
//! (those are in [`super::Prober`]); a seeded generator places each new
//! target's first probe, so tests are deterministic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::{Failure, ProbeCounters, ProbeSettings, Target};

/// Names one probe from its start to its result.
pub type ProbeId = u64;

/// A target's health: up or down, and how many results in a row disagreed
/// with that. Up goes down after `fall` failures in a row, down goes up
/// after `rise` successes in a row; a result that agrees resets the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    up: bool,
    streak: u32,
}

impl Default for Health {
    /// Up: a new target is announced at once.
    fn default() -> Self {
        Health { up: true, streak: 0 }
    }
}

impl Health {
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// One probe result; on a transition, the results in a row that made it.
    pub fn record(&mut self, ok: bool, fall: u32, rise: u32) -> Option<u32> {
        if ok == self.up {
            self.streak = 0;
            return None;
        }
        self.streak = self.streak.saturating_add(1);
        let needed = if self.up { fall } else { rise };
        if self.streak < needed.max(1) {
            return None;
        }
        self.up = ok;
        Some(std::mem::take(&mut self.streak))
    }
}

/// A probe the driver must start now: run `target`'s check for at most
/// `timeout`, then report the result with [`Schedule::finish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub id: ProbeId,
    pub target: Target,
    pub timeout: Duration,
}

/// A target went up or down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub target: Target,
    pub up: bool,
    /// The probes in a row that decided it (`fall` or `rise`).
    pub streak: u32,
    /// Going down: why the last probe failed.
    pub failure: Option<Failure>,
}

#[derive(Debug)]
struct Entry {
    health: Health,
    /// When the next probe is due.
    due: Instant,
    /// The probe in flight.
    flight: Option<ProbeId>,
    last_failure: Option<Failure>,
}

/// The targets and their probes (see the module comment).
#[derive(Debug)]
pub struct Schedule {
    settings: ProbeSettings,
    entries: BTreeMap<Target, Entry>,
    /// Targets with no probe in flight, by when their next is due.
    idle: BTreeSet<(Instant, Target)>,
    /// Probes in flight, with their target; `None` once the target was
    /// removed (the probe still holds a slot until the driver reports it
    /// ended).
    flights: HashMap<ProbeId, Option<Target>>,
    /// Probes of removed targets for the driver to drop.
    cancelled: Vec<ProbeId>,
    counters: ProbeCounters,
    next_id: ProbeId,
    /// xorshift state, seeded by the caller.
    rng: u64,
}

impl Schedule {
    pub fn new(settings: ProbeSettings, seed: u64) -> Schedule {
        Schedule {
            settings: settings.checked(),
            entries: BTreeMap::new(),
            idle: BTreeSet::new(),
            flights: HashMap::new(),
            cancelled: Vec::new(),
            counters: ProbeCounters::default(),
            next_id: 0,
            rng: seed | 1,
        }
    }

    pub fn settings(&self) -> ProbeSettings {
        self.settings
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// A random instant in [now, now + interval): where a target's probes
    /// start, so that targets added together spread over the interval.
    fn first_due(&mut self, now: Instant) -> Instant {
        let nanos = self.settings.interval.as_nanos().min(u64::MAX as u128) as u64;
        now + Duration::from_nanos(self.random() % nanos.max(1))
    }

    /// Replace the settings. Thresholds apply from the next result, the
    /// timeout from the next probe started, the limit from the next start;
    /// a target due later than one new interval from now is brought forward
    /// to a random point within it (a longer interval applies after each
    /// target's next probe).
    pub fn set_settings(&mut self, settings: ProbeSettings, now: Instant) {
        self.settings = settings.checked();
        let horizon = now + self.settings.interval;
        let late: Vec<Target> = self.entries.iter().filter(|(_, e)| e.due > horizon).map(|(t, _)| t.clone()).collect();
        for t in late {
            let due = self.first_due(now);
            let e = self.entries.get_mut(&t).expect("listed above");
            if e.flight.is_none() {
                self.idle.remove(&(e.due, t.clone()));
                self.idle.insert((due, t));
            }
            e.due = due;
        }
    }

    /// Replace the targets: new ones start up with their first probe due
    /// within an interval; removed ones are forgotten, their probes in flight
    /// listed for [`Schedule::take_cancelled`].
    pub fn set_targets(&mut self, targets: &BTreeSet<Target>, now: Instant) {
        let removed: Vec<Target> = self.entries.keys().filter(|t| !targets.contains(*t)).cloned().collect();
        for t in removed {
            let e = self.entries.remove(&t).expect("listed above");
            match e.flight {
                Some(id) => {
                    self.flights.insert(id, None);
                    self.cancelled.push(id);
                }
                None => {
                    self.idle.remove(&(e.due, t));
                }
            }
        }
        for t in targets {
            if !self.entries.contains_key(t) {
                let due = self.first_due(now);
                let entry = Entry { health: Health::default(), due, flight: None, last_failure: None };
                self.entries.insert(t.clone(), entry);
                self.idle.insert((due, t.clone()));
            }
        }
    }

    /// The next probe to start at `now`, if one is due and a slot is free:
    /// the one due the longest. Call until `None`.
    pub fn start(&mut self, now: Instant) -> Option<Probe> {
        if self.flights.len() >= self.settings.concurrency {
            return None;
        }
        let (due, _) = self.idle.first()?;
        if *due > now {
            return None;
        }
        let (due, target) = self.idle.pop_first().expect("looked at above");
        let interval = self.settings.interval;
        let late = now.saturating_duration_since(due);
        if late > interval / 4 {
            self.counters.late += 1;
        }
        let missed = late.as_nanos() / interval.as_nanos();
        self.counters.skipped += missed.min(u64::MAX as u128) as u64;
        // The next probe keeps this target's place in the interval: due
        // one interval after the last slot that passed.
        let into_slot = Duration::from_nanos((late.as_nanos() % interval.as_nanos()) as u64);
        let id = self.next_id;
        self.next_id += 1;
        let e = self.entries.get_mut(&target).expect("idle targets are entries");
        e.due = now - into_slot + interval;
        e.flight = Some(id);
        self.flights.insert(id, Some(target.clone()));
        self.counters.sent += 1;
        Some(Probe { id, target, timeout: self.settings.timeout })
    }

    /// A probe ended. Frees its slot; for a current target, records the
    /// result and returns the transition it caused. Unknown ids (reported
    /// twice) are ignored.
    pub fn finish(&mut self, id: ProbeId, result: Result<(), Failure>) -> Option<Transition> {
        let target = self.flights.remove(&id)??;
        let e = self.entries.get_mut(&target).expect("probes in flight belong to entries");
        debug_assert_eq!(e.flight, Some(id));
        e.flight = None;
        self.idle.insert((e.due, target.clone()));
        let ok = result.is_ok();
        match result {
            Ok(()) => e.last_failure = None,
            Err(f) => {
                self.counters.failed += 1;
                e.last_failure = Some(f);
            }
        }
        let streak = e.health.record(ok, self.settings.fall, self.settings.rise)?;
        if ok {
            self.counters.ups += 1;
        } else {
            self.counters.downs += 1;
        }
        let failure = if ok { None } else { e.last_failure.clone() };
        Some(Transition { target, up: ok, streak, failure })
    }

    /// Probes in flight of removed targets, for the driver to drop (it still
    /// reports each one's end with [`Schedule::finish`]).
    pub fn take_cancelled(&mut self) -> Vec<ProbeId> {
        std::mem::take(&mut self.cancelled)
    }

    /// When to call [`Schedule::start`] again, other than after a result or
    /// a change: when the next probe is due, unless every slot is taken.
    pub fn next_wake(&self) -> Option<Instant> {
        if self.flights.len() >= self.settings.concurrency {
            return None;
        }
        self.idle.first().map(|(due, _)| *due)
    }

    /// Whether the target is up; false for one not among the targets.
    pub fn is_up(&self, t: &Target) -> bool {
        self.entries.get(t).is_some_and(|e| e.health.is_up())
    }

    /// Why the target's last probe failed, if it did.
    pub fn last_failure(&self, t: &Target) -> Option<&Failure> {
        self.entries.get(t)?.last_failure.as_ref()
    }

    /// The targets that are down.
    pub fn down(&self) -> impl Iterator<Item = &Target> {
        self.entries.iter().filter(|(_, e)| !e.health.is_up()).map(|(t, _)| t)
    }

    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.entries.keys()
    }

    pub fn counters(&self) -> ProbeCounters {
        self.counters
    }

    /// Probes in flight, those of removed targets not yet reported ended
    /// included.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }
}

#[cfg(test)]
mod tests;
