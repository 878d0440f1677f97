//! The node loop shared by `mooring standalone` and `mooring speaker`:
//! objects from a [`Source`] (manifest files, or the cluster's reflector
//! stores) → last good versions → the pure plan (VIPs allocated here or
//! taken from Service status, [`Vips`]) → weight damping → the speaker
//! ([`drive`]) → status and metrics. Written once; the two commands only
//! build a source and call [`NodeLoop::run`].

mod central;
pub mod damping;
mod drive;
pub mod flap;
pub mod probe;
mod state;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use backon::{BackoffBuilder, ExponentialBuilder};
use mooring_bgp::speaker::{PeerStatus, Speaker};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::metrics::Metrics;
use crate::model::last_good::{LastGood, Saved};
use crate::model::plan::{self, Objects, Plan, Vips};
use crate::model::pool_status::{self, PoolStatus};
pub use drive::{drive, stop_speaker, sync_peers, Driven, Readiness};
pub use state::StateStore;

/// How long a burst of changes settles before the loop recomputes: the
/// events of one file write (temp file + rename), or of one API update
/// seen by several watches, are taken at once without delaying the change.
pub const SETTLE: Duration = Duration::from_millis(5);
/// Weight-only changes go out at most this often (see [`damping`]).
pub const WEIGHT_INTERVAL: Duration = Duration::from_secs(2);
/// How often the sessions' status is published.
pub const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The retry policy of the node: a speaker that could not start (its
/// listen port still taken, say) is tried again after 0.2 s, doubling to
/// 10 s, with jitter.
fn retry_policy() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}

/// How a node announces and stops; shared by `standalone` and `speaker`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NodeOptions {
    /// Cordoned nodes stop announcing Cluster services.
    #[arg(long)]
    pub exclude_cordoned: bool,
    /// On SIGTERM, sessions that did not negotiate graceful restart are
    /// first re-announced with GRACEFUL_SHUTDOWN (RFC 8326) and LOCAL_PREF 0
    /// for this many seconds, so routers move traffic to other nodes, then
    /// withdrawn with a Cease. (Sessions that negotiated graceful restart —
    /// BgpConf spec.gracefulRestart — are closed without a NOTIFICATION, and
    /// routers keep the node's routes while it restarts.)
    #[arg(long, default_value_t = 0)]
    pub drain_seconds: u64,
    /// While this node's Node is cordoned, announce with GRACEFUL_SHUTDOWN
    /// (RFC 8326) and LOCAL_PREF 0 so routers drain it first.
    #[arg(long)]
    pub graceful_shutdown_on_cordon: bool,
    #[command(flatten)]
    pub classes: crate::model::classes::Classes,
    #[command(flatten)]
    pub flap: flap::FlapOptions,
    /// Be a central speaker (BgpPeer `mode: Central`): peer with the Central peers only and
    /// announce each VIP once per node that should carry it, with that node's InternalIP as
    /// next hop (ADD-PATH), while its node probes (BgpConf `spec.nodeProbe`) pass. `--node`
    /// then names this speaker (its hostname and BgpPeer status entries), not a node.
    #[arg(long)]
    pub central: bool,
    /// The central speaker's BGP identifier when BgpConf has no `routerId` (the chart passes
    /// the pod IP).
    #[arg(long, requires = "central")]
    pub router_id: Option<std::net::Ipv4Addr>,
}

impl NodeOptions {
    /// What the node's plan serves.
    pub fn scope(&self) -> plan::Scope {
        plan::Scope { exclude_cordoned: self.exclude_cordoned, classes: self.classes.clone() }
    }

    /// Apply the cordon rule to a plan.
    pub fn adjust(&self, objects: &Objects, node: &str, plan: &mut Plan) {
        if self.graceful_shutdown_on_cordon && plan::node_cordoned(objects, node) {
            plan::graceful_shutdown(plan);
        }
    }

    /// Stop the speaker (see [`stop_speaker`]); true when some session was
    /// closed the graceful-restart way (the next start is a restart).
    pub async fn stop(&self, s: &Speaker) -> bool {
        stop_speaker(s, Duration::from_secs(self.drain_seconds), true).await > 0
    }
}

/// Where the node's VIPs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VipMode {
    /// Allocated here (standalone); assignments are kept in the state store.
    Allocate,
    /// From Service status, written by the controller (a cluster's speaker).
    FromStatus,
}

/// A source's "something changed" signals, taken a settled burst at a
/// time ([`Changes::settled`]).
#[derive(Debug)]
pub struct Changes {
    rx: tokio::sync::mpsc::UnboundedReceiver<()>,
    /// A change was received and its burst has not settled yet.
    pending: bool,
}

impl Changes {
    pub fn new(rx: tokio::sync::mpsc::UnboundedReceiver<()>) -> Changes {
        Changes { rx, pending: false }
    }

    /// Wait for a change, let the burst it starts settle ([`SETTLE`]) and
    /// take all of it; `false` when the channel has closed. Cancel-safe: the
    /// node loop's `select!` may drop this future while it settles, and the
    /// change received is not lost — the next call settles it without
    /// waiting for another one.
    pub async fn settled(&mut self) -> bool {
        if !self.pending {
            if self.rx.recv().await.is_none() {
                return false;
            }
            self.pending = true;
        }
        tokio::time::sleep(SETTLE).await;
        while self.rx.try_recv().is_ok() {}
        self.pending = false;
        true
    }
}

/// What feeds the node loop.
pub trait Source {
    /// Wait for the next change (settled, see [`Changes::settled`]); `false` when the
    /// source has ended.
    fn changed(&mut self) -> impl Future<Output = bool>;
    /// Re-read everything (SIGHUP).
    fn reload(&mut self) {}
    /// The current objects (the cluster's source reads referenced Secrets here).
    fn objects(&mut self) -> impl Future<Output = Objects>;
    /// Publish this node's sessions (the cluster: its BgpPeer status entries). `objects`
    /// are the last plan's, but for its Services, EndpointSlices and Nodes.
    fn publish(&mut self, _objects: &Objects, _sessions: &[PeerStatus]) -> impl Future<Output = ()> {
        async {}
    }
    /// The node is stopping: withdraw what it published.
    fn retire(&mut self) -> impl Future<Output = ()> {
        async {}
    }
}

/// One node: its source, its plan state and its speaker.
pub struct NodeLoop<S> {
    node: String,
    options: NodeOptions,
    mode: VipMode,
    source: S,
    state: StateStore,
    metrics: Arc<Metrics>,
    speaker: Option<Speaker>,
    last_good: LastGood,
    damper: damping::WeightDamper,
    flaps: flap::FlapDamper,
    /// When to recompute without a change: a damped weight change, or a retry.
    retry_at: Option<Instant>,
    retries: Box<dyn Iterator<Item = Duration> + Send>,
    /// This run follows a graceful stop: set the Restart State bit.
    restarting: bool,
    last_problems: Vec<String>,
    last_pools: BTreeMap<String, PoolStatus>,
    /// The objects of the last plan but for its Services, EndpointSlices and Nodes (what
    /// [`Source::publish`] and the pool status read; kept, those would hold the source's
    /// previous versions of every object that changed since).
    last_objects: Objects,
    /// The last good versions as last written to the state directory.
    last_saved: Saved,
    /// Eips whose current spec was rejected, with why.
    rejected_eips: BTreeMap<String, String>,
    /// The session events of the speaker that runs (taken by `run`).
    events: Option<tokio::sync::broadcast::Receiver<mooring_bgp::speaker::PeerEvent>>,
    /// `--central`: the central plan and the node probes.
    central: Option<central::Central>,
}

impl<S: Source> NodeLoop<S> {
    pub fn new(
        node: String,
        options: NodeOptions,
        mode: VipMode,
        source: S,
        state: StateStore,
        metrics: Arc<Metrics>,
    ) -> Self {
        let flap_config = options.flap.config();
        let restarting = state.take_graceful_restart(Duration::from_secs(4095));
        if restarting {
            info!("restarting gracefully: the Restart State bit is set in our OPEN");
        }
        let last_good = state.last_good().map(LastGood::from_saved).unwrap_or_default();
        let central = options
            .central
            .then(|| central::Central::new(options.router_id, node.clone(), options.graceful_shutdown_on_cordon));
        NodeLoop {
            central,
            node,
            options,
            mode,
            source,
            state,
            metrics,
            speaker: None,
            last_good,
            damper: damping::WeightDamper::new(WEIGHT_INTERVAL),
            flaps: flap::FlapDamper::new(flap_config.unwrap_or_else(|e| {
                error!("flap damping off: {e}");
                None
            })),
            retry_at: None,
            retries: Box::new(retry_policy()),
            restarting,
            last_problems: vec![],
            last_pools: BTreeMap::new(),
            last_objects: Objects::default(),
            rejected_eips: BTreeMap::new(),
            last_saved: Saved::default(),
            events: None,
        }
    }

    /// The running speaker, if any.
    pub fn speaker(&self) -> Option<&Speaker> {
        self.speaker.as_ref()
    }

    /// When the loop recomputes without a change (a retry, a damped weight change).
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// The plan for the source's current objects (pure but for the read of
    /// the source and the state store).
    pub async fn plan(&mut self) -> Plan {
        let mut objects = self.source.objects().await;
        let invalid = self.last_good.filter(&mut objects);
        let saved = self.last_good.saved();
        if saved != self.last_saved {
            if let Err(e) = self.state.set_last_good(&saved) {
                error!("cannot write the state directory: {e:#}");
            }
            self.last_saved = saved;
        }
        let held = self.state.get();
        let vips = match self.mode {
            VipMode::Allocate => Vips::Allocate(&held),
            VipMode::FromStatus => Vips::FromStatus,
        };
        let mut p = match &mut self.central {
            Some(c) => c.plan(&objects, vips, &self.options.scope()),
            None => {
                let mut p = plan::plan(&objects, &self.node, vips, &self.options.scope());
                self.options.adjust(&objects, &self.node, &mut p);
                p
            }
        };
        if let Some(gr) = p.speaker.as_mut().and_then(|s| s.graceful_restart.as_mut()) {
            gr.restarting = self.restarting;
        }
        p.problems.splice(0..0, invalid.iter().flat_map(|r| r.problems()));
        self.rejected_eips =
            invalid.iter().filter(|r| r.kind == "Eip").map(|r| (r.name.clone(), r.message())).collect();
        objects.services = vec![];
        objects.endpoint_slices = vec![];
        objects.nodes = vec![];
        self.last_objects = objects;
        p
    }

    /// Recompute and apply: log what changed, keep assignments, export
    /// metrics, pace weight-only changes and drive the speaker.
    pub async fn apply(&mut self) {
        let plan = self.plan().await;
        self.report(&plan);
        if self.mode == VipMode::Allocate {
            self.keep_assignments(&plan);
        }
        let now = std::time::Instant::now();
        let mut plan = plan;
        if let Some(c) = &mut self.central {
            // A path whose next hop fails its probes goes before the damper sees it.
            let (kept, withheld) = c.gate(std::mem::take(&mut plan.routes));
            plan.routes = kept;
            self.metrics.paths_probe_down.set(withheld as i64);
        }
        self.flaps.forget_released(&plan.vips);
        let damped = self.flaps.damp(&plan.routes, now);
        self.log_flaps(&damped.events);
        self.metrics.paths_suppressed.set(damped.suppressed as i64);
        plan.routes = damped.routes;
        // A suppressed path may return then, with no change to wake the loop.
        let flap_at = damped.next.map(Instant::from_std);
        self.metrics.routes.set(plan.routes.len() as i64);
        if let Err(at) = self.damper.check(&plan.routes, now) {
            // Only weights moved, too soon after the last move: later.
            self.retry_at = earliest(Some(Instant::from_std(at)), flap_at);
            return;
        }
        let routes = plan.routes.clone();
        match drive(&mut self.speaker, &self.metrics, plan).await {
            Ok(Driven { readiness, events }) => {
                if events.is_some() {
                    self.events = events;
                }
                self.damper.applied(&routes, now);
                self.retry_at = flap_at;
                self.retries = Box::new(retry_policy());
                if let Readiness::NotReady(why) = &readiness {
                    warn!("not ready: {why}");
                }
                self.metrics.set_readiness(&readiness);
            }
            Err(e) => {
                let delay = self.retries.next().unwrap_or(Duration::from_secs(10));
                error!("starting the BGP speaker: {e} (retrying in {delay:?})");
                self.metrics.set_readiness(&Readiness::NotReady(format!("the BGP speaker cannot start: {e}")));
                self.retry_at = earliest(Some(Instant::now() + delay), flap_at);
            }
        }
    }

    /// One line per path suppressed or returning (see [`flap`]).
    fn log_flaps(&self, events: &[flap::FlapEvent]) {
        for e in events {
            match e {
                flap::FlapEvent::Suppressed { path, flaps, penalty, reuse_in } => {
                    self.metrics.path_suppressions.inc();
                    warn!(
                        prefix = %path.0,
                        "flap damping: {} suppressed after {flaps} flaps (penalty {penalty:.0}); \
                         it returns in {:.0} s at the earliest, once stable",
                        path_name(path),
                        reuse_in.as_secs_f64()
                    );
                }
                flap::FlapEvent::Reused { path, flaps, penalty } => {
                    info!(prefix = %path.0, "flap damping: {} announced again (penalty {penalty:.0} after {flaps} flaps)", path_name(path));
                }
            }
        }
    }

    /// Hand the sessions' status to the source to publish.
    pub async fn publish_status(&mut self) {
        let sessions = self.speaker.as_ref().map(|s| s.peers()).unwrap_or_default();
        self.source.publish(&self.last_objects, &sessions).await;
    }

    /// Log problems when they change.
    fn report(&mut self, plan: &Plan) {
        let problems: Vec<String> = plan.problems.iter().map(|p| p.to_string()).collect();
        if problems != self.last_problems {
            for p in &problems {
                warn!("{p}");
            }
            self.last_problems = problems;
        }
    }

    /// Allocating here: keep what was assigned (so a restart gives the same
    /// addresses), log assignments and pool status, export pool metrics.
    fn keep_assignments(&mut self, plan: &Plan) {
        let held: BTreeMap<String, Vec<IpAddr>> = plan
            .desired
            .allocations
            .iter()
            .filter(|(_, a)| !a.addresses.is_empty())
            .map(|(k, a)| (k.clone(), a.addresses.iter().map(|(ip, _)| *ip).collect()))
            .collect();
        let before = self.state.get();
        for (svc, a) in &plan.desired.allocations {
            if before.get(svc) != held.get(svc) {
                let ips: Vec<String> = a.addresses.iter().map(|(ip, p)| format!("{ip} (pool {p})")).collect();
                if ips.is_empty() {
                    info!(service = %svc, "no address");
                } else {
                    info!(service = %svc, "assigned {}", ips.join(", "));
                }
            }
        }
        if let Err(e) = self.state.set(held) {
            error!("cannot write the state directory: {e:#}");
        }
        let pools = pool_status::pool_statuses(&self.last_objects.eips, &self.rejected_eips, &plan.desired);
        for (name, st) in &pools {
            if self.last_pools.get(name) != Some(st) {
                let conds: Vec<String> = st
                    .conditions
                    .iter()
                    .map(|c| format!("{}={} ({}: {})", c.type_, c.status, c.reason, c.message))
                    .collect();
                info!(eip = %name, size = st.size, used = st.used, free = st.free, ready = st.ready, "pool status: {}", conds.join("; "));
            }
        }
        self.metrics.pools(&pools);
        self.last_pools = pools;
        self.metrics.vips.set(plan.desired.allocations.values().map(|a| a.addresses.len() as i64).sum());
        self.metrics
            .services_without_address
            .set(plan.desired.allocations.values().filter(|a| !a.complete()).count() as i64);
    }

    /// Run until SIGTERM / SIGINT (or the source ends), then stop the
    /// speaker as the options say.
    pub async fn run(mut self) -> Result<()> {
        self.apply().await;
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut status = tokio::time::interval(STATUS_EVERY);
        let mut events = None;
        loop {
            if let Some(e) = self.events.take() {
                events = Some(e);
            }
            if self.speaker.is_none() {
                events = None;
            }
            tokio::select! {
                more = self.source.changed() => {
                    if !more { break }
                    self.apply().await;
                }
                _ = sleep_until(self.retry_at), if self.retry_at.is_some() => self.apply().await,
                _ = async { self.central.as_mut().expect("guarded").changed().await }, if self.central.is_some() => {
                    self.apply().await
                }
                _ = hup.recv() => {
                    info!("SIGHUP: reloading");
                    self.source.reload();
                    self.apply().await;
                }
                ev = async { events.as_mut().expect("guarded").recv().await }, if events.is_some() => {
                    match ev {
                        Ok(e) => {
                            let reason = e.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
                            info!("peer {} {} -> {}{reason}", e.key(), e.from, e.to);
                        }
                        // That speaker is gone (a new one is subscribed to when it starts).
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => events = None,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    }
                }
                _ = status.tick() => self.publish_status().await,
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        info!("stopping");
        self.metrics.set_readiness(&Readiness::NotReady("stopping".into()));
        if let Some(s) = self.speaker.take() {
            if self.options.stop(&s).await {
                if let Err(e) = self.state.mark_graceful_stop() {
                    warn!("{e:#}");
                }
            }
        }
        self.source.retire().await;
        Ok(())
    }
}

/// A path for the log: its prefix, and its next hop when not this node.
fn path_name(path: &flap::PathKey) -> String {
    match path.1 {
        Some(nh) => format!("{} via {nh}", path.0),
        None => path.0.to_string(),
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until(at: Option<Instant>) {
    tokio::time::sleep_until(at.expect("guarded")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bug the at-scale latency benchmark found: the node loop's `select!`
    /// drops a source's `changed()` when another branch is ready while the change
    /// settles; the change was received already, so it was lost until the next one.
    #[tokio::test]
    async fn a_change_received_before_the_future_was_dropped_is_not_lost() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut changes = Changes::new(rx);
        tx.send(()).unwrap();
        // Dropped while settling (SETTLE is 5 ms).
        let r = tokio::time::timeout(Duration::from_micros(50), changes.settled()).await;
        assert!(r.is_err() && changes.pending, "received, not yet settled");
        // No new event: the pending one still settles.
        let r = tokio::time::timeout(Duration::from_secs(5), changes.settled()).await;
        assert_eq!(r, Ok(true));
        assert!(!changes.pending);
        // Nothing pending, nothing sent: it waits.
        let r = tokio::time::timeout(Duration::from_millis(20), changes.settled()).await;
        assert!(r.is_err() && !changes.pending);
        // A burst is taken at once.
        for _ in 0..3 {
            tx.send(()).unwrap();
        }
        assert!(changes.settled().await);
        let r = tokio::time::timeout(Duration::from_millis(20), changes.settled()).await;
        assert!(r.is_err(), "the burst was one change");
        drop(tx);
        assert!(!changes.settled().await, "the sender is gone");
    }
}
