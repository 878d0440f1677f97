//! Node-health probes for the central speaker: each next-hop node is
//! probed — an HTTP GET that must answer 200 (a Local Service's
//! healthCheckNodePort, which kube-proxy answers 200 only while the node has
//! local endpoints; kube-proxy's `:10256/healthz`) or a TCP connect — and a
//! node's path is withdrawn after `fall` failed probes in a row and
//! re-announced after `rise` successes in a row, instead of waiting ~40 s for
//! Kubernetes to mark the node NotReady.
//!
//! Defaults ([`ProbeSettings::default`]): a probe every 200 ms per target,
//! each timing out after 150 ms, down after 3 failures, up after 2
//! successes, at most 64 probes in flight. Detection budget: a node that dies
//! just after a good probe fails the next `fall` probes, which start
//! `interval` apart, the last failing at the latest `timeout` after it
//! started: fall·interval + timeout = 3·200 + 150 = 750 ms (a refused
//! connection fails at once: ~600 ms), leaving room for the UPDATE within a
//! second. Coming back takes about rise·interval = 400 ms.
//!
//! Bounded: every probe has the timeout; at most `concurrency` probes are in
//! flight overall; a target never has two (a slow target skips its due
//! probes, counted in [`ProbeCounters::skipped`]); a target's probes are due
//! every `interval` from a first one placed at random within the first
//! interval, so many targets spread out instead of firing together (a probe
//! started late keeps the target's slot: the next is due one interval after
//! the one that was missed, not after the late start); memory is per target.
//! Probes that could not start on time — every slot taken, or the prober's
//! task starved — are counted in [`ProbeCounters::late`].
//!
//! Two halves: [`schedule`] is the pure core (targets, health with
//! `fall`/`rise`, which probe is due, the limit; the current time in, probes
//! to start and up/down transitions out), [`Prober`] the IO side (a task that
//! runs the probes the core asks for and feeds back their results). The
//! checks themselves are in `check`. Not here: which targets a node has
//! (the planner) and what a transition does to the routes (the node loop).

mod check;
pub mod schedule;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::{info, warn};

use schedule::{ProbeId, Schedule, Transition};

/// What a probe checks on a target's address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// GET `path` on the port; healthy iff the answer is 200 within the timeout.
    Http { port: u16, path: String },
    /// Healthy iff a TCP connection to the port is accepted within the timeout.
    Tcp { port: u16 },
}

impl Check {
    /// Whether the check can run: an HTTP path must be a path starting with
    /// `/` (an invalid one would fail every probe). For the caller checking
    /// its settings; the probe itself reports it as [`Failure::Http`].
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Check::Http { path, .. } => check::request_target(path).map(drop),
            Check::Tcp { .. } => Ok(()),
        }
    }
}

/// One thing to probe: a node's address and the check to run on it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub address: IpAddr,
    pub check: Check,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = |port| std::net::SocketAddr::new(self.address, port);
        match &self.check {
            Check::Http { port, path } => write!(f, "http://{}{path}", addr(*port)),
            Check::Tcp { port } => write!(f, "tcp://{}", addr(*port)),
        }
    }
}

/// How often and how strictly targets are probed (see the module comment for
/// the detection budget). Zero values are read as the smallest meaningful
/// ones: 1 ms for the durations, 1 for the counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSettings {
    /// A target's probes are due this far apart (from the start of one to the
    /// start of the next).
    pub interval: Duration,
    /// A probe that has not succeeded this long after it started has failed.
    pub timeout: Duration,
    /// An up target goes down after this many failed probes in a row.
    pub fall: u32,
    /// A down target comes back up after this many good probes in a row.
    pub rise: u32,
    /// At most this many probes in flight at once, over all targets.
    pub concurrency: usize,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(150),
            fall: 3,
            rise: 2,
            concurrency: 64,
        }
    }
}

impl ProbeSettings {
    /// The worst-case time from a target dying to it being down:
    /// fall·interval + timeout.
    pub fn detection(&self) -> Duration {
        let s = self.checked();
        s.interval * s.fall + s.timeout
    }

    /// The settings with zeros replaced by the smallest meaningful values.
    pub(crate) fn checked(&self) -> ProbeSettings {
        let ms = Duration::from_millis(1);
        ProbeSettings {
            interval: self.interval.max(ms),
            timeout: self.timeout.max(ms),
            fall: self.fall.max(1),
            rise: self.rise.max(1),
            concurrency: self.concurrency.max(1),
        }
    }
}

/// Why a probe failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No success within the timeout (no connection, or no answer).
    Timeout(Duration),
    /// The connection was refused (nothing listens on the port).
    Refused,
    /// The connection failed otherwise (unreachable, reset, …).
    Connect(String),
    /// The HTTP server answered with another status than 200.
    Status(u16),
    /// The HTTP exchange failed (the server closed the connection, sent no
    /// valid HTTP, the path is not a valid request target, …).
    Http(String),
    /// The probe task panicked (a bug; counts as a failure).
    Internal(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout(t) => write!(f, "timed out after {t:?}"),
            Failure::Refused => f.write_str("connection refused"),
            Failure::Connect(e) => write!(f, "connection failed: {e}"),
            Failure::Status(s) => write!(f, "HTTP status {s}"),
            Failure::Http(e) => write!(f, "HTTP failed: {e}"),
            Failure::Internal(e) => write!(f, "probe failed internally: {e}"),
        }
    }
}

/// Counters since the prober was made, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCounters {
    /// Probes started.
    pub sent: u64,
    /// Probes that failed (timed out, refused, not 200, …).
    pub failed: u64,
    /// Probes started later than a quarter interval after they were due:
    /// every slot of the concurrency limit was taken, the target's previous
    /// probe was still running, or the prober's task was starved.
    pub late: u64,
    /// Due probes never sent because the target's previous probe was still
    /// running or the probe waited a whole interval or more (one per interval
    /// missed).
    pub skipped: u64,
    /// Target went down.
    pub downs: u64,
    /// Target came back up.
    pub ups: u64,
}

/// The IO side: a task that runs the probes the [`Schedule`] asks for. The
/// state is shared with the task, so probing goes on while the caller is
/// busy elsewhere; [`Prober::changed`] only waits for news. Dropping the
/// prober stops the task and every probe in flight.
pub struct Prober {
    shared: Arc<Shared>,
    changes: watch::Receiver<u64>,
    task: Option<JoinHandle<()>>,
}

struct Shared {
    schedule: Mutex<Schedule>,
    /// Targets or settings changed: the task looks again at once.
    wake: Notify,
    /// Bumped on every up/down transition.
    changes: watch::Sender<u64>,
}

impl Shared {
    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        // The schedule is only touched through its own methods, which keep
        // it consistent even if a caller panicked while holding the lock.
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Prober {
    /// A prober with no targets. Its task starts at once inside a Tokio
    /// runtime, otherwise at the first call made inside one.
    pub fn new(settings: ProbeSettings) -> Prober {
        let seed = std::collections::hash_map::RandomState::new();
        let seed = std::hash::BuildHasher::hash_one(&seed, std::time::SystemTime::now());
        let (changes, rx) = watch::channel(0);
        let shared =
            Arc::new(Shared { schedule: Mutex::new(Schedule::new(settings, seed)), wake: Notify::new(), changes });
        let mut prober = Prober { shared, changes: rx, task: None };
        prober.ensure_running();
        prober
    }

    fn ensure_running(&mut self) {
        if self.task.is_none() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                self.task = Some(rt.spawn(run(self.shared.clone())));
            }
        }
    }

    /// New settings: a shorter interval and the thresholds apply at once, a
    /// longer interval after each target's next probe, the timeout to probes
    /// started from now.
    pub fn set_settings(&mut self, s: ProbeSettings) {
        self.ensure_running();
        self.shared.schedule().set_settings(s, Instant::now().into_std());
        self.shared.wake.notify_one();
    }

    /// The targets to probe. New ones start up (a restarted speaker announces
    /// at once, and graceful restart holds the routes meanwhile) and get their
    /// first probe within an interval; removed ones are forgotten and their
    /// probes in flight dropped.
    pub fn set_targets(&mut self, targets: BTreeSet<Target>) {
        self.ensure_running();
        self.shared.schedule().set_targets(&targets, Instant::now().into_std());
        self.shared.wake.notify_one();
    }

    /// Whether the target is up; false for one not among the targets.
    pub fn is_up(&self, t: &Target) -> bool {
        self.shared.schedule().is_up(t)
    }

    /// Why the target's last probe failed, if it did.
    pub fn last_failure(&self, t: &Target) -> Option<Failure> {
        self.shared.schedule().last_failure(t).cloned()
    }

    /// The targets that are down.
    pub fn down(&self) -> Vec<Target> {
        self.shared.schedule().down().cloned().collect()
    }

    pub fn counters(&self) -> ProbeCounters {
        self.shared.schedule().counters()
    }

    /// Probes in flight now.
    pub fn in_flight(&self) -> usize {
        self.shared.schedule().in_flight()
    }

    /// Resolves when some target went up or down since the last call
    /// returned (several transitions may be reported by one wake-up: read
    /// [`Prober::is_up`] for every target). Cancel-safe.
    pub async fn changed(&mut self) {
        self.ensure_running();
        if self.changes.changed().await.is_err() {
            // The sender lives in `shared`, which we hold: cannot happen.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The prober's task: start what the schedule says is due, wait for a result,
/// the next due time or a change of targets or settings; feed results back.
async fn run(shared: Arc<Shared>) {
    let mut probes: JoinSet<(ProbeId, Result<(), Failure>)> = JoinSet::new();
    let mut running: HashMap<ProbeId, AbortHandle> = HashMap::new();
    let mut ids: HashMap<tokio::task::Id, ProbeId> = HashMap::new();
    loop {
        let wake = {
            let mut schedule = shared.schedule();
            let now = Instant::now().into_std();
            for id in schedule.take_cancelled() {
                if let Some(h) = running.get(&id) {
                    h.abort();
                }
            }
            while let Some(p) = schedule.start(now) {
                let (id, target, timeout) = (p.id, p.target, p.timeout);
                let h = probes.spawn(async move { (id, check::run(&target, timeout).await) });
                ids.insert(h.id(), id);
                running.insert(id, h);
            }
            schedule.next_wake().map(Instant::from_std)
        };
        let first = tokio::select! {
            Some(done) = probes.join_next_with_id() => done,
            () = sleep_until(wake) => continue,
            () = shared.wake.notified() => continue,
        };
        let mut transitions = Vec::new();
        {
            let mut schedule = shared.schedule();
            let mut next = Some(first);
            while let Some(d) = next.take() {
                next = probes.try_join_next_with_id();
                let (id, result) = match d {
                    Ok((task, (id, result))) => {
                        ids.remove(&task);
                        (id, result)
                    }
                    Err(e) => match ids.remove(&e.id()) {
                        Some(id) => (id, Err(Failure::Internal(e.to_string()))),
                        None => continue,
                    },
                };
                running.remove(&id);
                transitions.extend(schedule.finish(id, result));
            }
        }
        for t in &transitions {
            log(t);
        }
        if !transitions.is_empty() {
            shared.changes.send_modify(|n| *n += 1);
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn log(t: &Transition) {
    if t.up {
        info!(probe = %t.target, succeeded = t.streak, "probe target up again");
    } else {
        let reason = t.failure.as_ref().map(|f| f.to_string()).unwrap_or_default();
        warn!(probe = %t.target, failed = t.streak, %reason, "probe target down");
    }
}
