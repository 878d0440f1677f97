//! `mooring controller`: one leader (Lease) runs the pure reconcile
//! (`reconcile.rs`) over the watched objects and applies the writes it
//! returns — Service status, Eip status, BgpPeer status, Events — with the
//! leadership check and a per-object back-off in one place. On start, and
//! on every failover, the allocation is rebuilt from the addresses already
//! in Service status (the model keeps valid held addresses), so a restart
//! never moves or duplicates an IP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use backon::{BackoffBuilder, ExponentialBuilder};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Client;
use mooring_crds::{BgpPeer, BgpPeerStatus, Eip};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::leader::{self, Leadership, LeaseConfig};
use super::reconcile::{reconcile, Published, Settings, Write};
use super::stores::{Component, Stores};
use crate::metrics::Metrics;
use crate::model::last_good::LastGood;
use crate::model::plan::Objects;

pub const FIELD_MANAGER: &str = "mooring-controller";

#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// Serve /metrics, /healthz and /readyz here.
    #[arg(long, default_value = "127.0.0.1:9472")]
    pub metrics_addr: SocketAddr,
    #[arg(long, default_value = "mooring-controller")]
    pub lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else mooring-system).
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: $POD_NAME, else the hostname).
    #[arg(long)]
    pub identity: Option<String>,
    /// Cordoned nodes stop announcing Cluster services.
    #[arg(long)]
    pub exclude_cordoned: bool,
    #[command(flatten)]
    pub classes: crate::model::classes::Classes,
    /// Remove a node's entry from BgpPeer status when its speaker has not
    /// updated it for this many seconds (the speaker refreshes it every minute).
    #[arg(long, default_value_t = 300)]
    pub peer_status_stale_seconds: u64,
}

/// The back-off after a failed write: 0.5 s doubling to 60 s, with jitter.
fn write_backoff() -> impl Iterator<Item = Duration> + Send {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(60))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Applies what the reconcile wants, and remembers what it must not repeat.
pub struct Reconciler {
    pub client: Client,
    pub recorder: Recorder,
    pub settings: Settings,
    metrics: Option<Arc<Metrics>>,
    last_good: LastGood,
    /// Events already published per Service, so a standing problem is not repeated every pass.
    published: Published,
    /// Per-object back-off after a failed write: the delays left and when to try again.
    backoff: HashMap<String, (Box<dyn Iterator<Item = Duration> + Send>, Instant)>,
}

impl Reconciler {
    pub fn new(client: Client, identity: &str, settings: Settings) -> Self {
        let reporter = Reporter { controller: FIELD_MANAGER.into(), instance: Some(identity.into()) };
        Reconciler {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            metrics: None,
            last_good: LastGood::default(),
            published: Published::new(),
            backoff: HashMap::new(),
        }
    }

    /// Export pool metrics here.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn may_try(&self, key: &str) -> bool {
        self.backoff.get(key).is_none_or(|(_, at)| Instant::now() >= *at)
    }

    fn failed(&mut self, key: &str, e: &kube::Error) {
        let (delays, _) = self.backoff.remove(key).unwrap_or_else(|| (Box::new(write_backoff()), Instant::now()));
        let mut delays = delays;
        let delay = delays.next().unwrap_or(Duration::from_secs(60));
        warn!(object = key, "write failed (retry in {delay:?}): {e}");
        self.backoff.insert(key.to_string(), (delays, Instant::now() + delay));
    }

    /// Reconcile `objects` and apply the writes; returns how many were made.
    /// Stops writing the moment leadership is lost.
    pub async fn reconcile(&mut self, objects: &Objects, leading: &Leadership) -> usize {
        let mut in_force = objects.clone();
        let rejected = self.last_good.filter(&mut in_force);
        let answer = reconcile(&in_force, &rejected, &objects.eips, &self.published, Timestamp::now(), &self.settings);
        if let Some(m) = &self.metrics {
            m.pools(&answer.pools);
            m.vips.set(answer.assigned as i64);
            m.services_without_address.set(answer.without_address as i64);
        }
        let mut writes = 0;
        for w in answer.writes {
            if !*leading.borrow() {
                return writes;
            }
            let key = w.object();
            if !self.may_try(&key) {
                continue;
            }
            match self.write(&w).await {
                Ok(()) => {
                    writes += 1;
                    self.backoff.remove(&key);
                    if let Write::Events { key, events, .. } = w {
                        self.published.insert(key, events);
                    }
                }
                Err(e) => self.failed(&key, &e),
            }
        }
        writes
    }

    async fn write(&self, w: &Write) -> Result<(), kube::Error> {
        let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        match w {
            Write::ServiceStatus { namespace, name, status } => {
                let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
                api.patch_status(name, &pp, &Patch::Merge(json!({ "status": status }))).await?;
                let ips: Vec<&str> = status
                    .load_balancer
                    .iter()
                    .flat_map(|lb| lb.ingress.iter().flatten())
                    .filter_map(|i| i.ip.as_deref())
                    .collect();
                info!(service = %format!("{namespace}/{name}"), "status: {}", ips.join(", "));
            }
            Write::EipStatus { name, status } => {
                let api: Api<Eip> = Api::all(self.client.clone());
                api.patch_status(name, &pp, &Patch::Merge(json!({ "status": status }))).await?;
            }
            Write::BgpPeerStatus { name, resource_version, established, nodes } => {
                let api: Api<BgpPeer> = Api::all(self.client.clone());
                let mut body = json!({ "status": { "established": established } });
                if let Some(nodes) = nodes {
                    // A merge patch replaces the list; the resourceVersion makes it a compare-and-swap.
                    let st = BgpPeerStatus { established: Some(*established), nodes: nodes.clone() };
                    body = json!({ "metadata": { "resourceVersion": resource_version }, "status": st });
                    if nodes.is_empty() {
                        body["status"]["nodes"] = json!([]);
                    }
                }
                api.patch_status(name, &pp, &Patch::Merge(body)).await?;
            }
            Write::Events { key, regarding, events } => {
                for ev in events {
                    let event = Event {
                        type_: if ev.warning { EventType::Warning } else { EventType::Normal },
                        reason: ev.reason.clone(),
                        note: Some(ev.note.clone()),
                        action: "Allocate".into(),
                        secondary: None,
                    };
                    if let Err(e) = self.recorder.publish(&event, regarding).await {
                        warn!(object = %key, "cannot record event: {e}");
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Run the controller until SIGTERM.
pub async fn run(args: ControllerArgs) -> Result<()> {
    let client = super::client().await?;
    let metrics = Arc::new(Metrics::new());
    crate::admin::serve(args.metrics_addr, metrics.clone()).await?;
    let ns = args
        .lease_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "mooring-system".into());
    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "mooring-controller".into());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (mut leading, election) = leader::run(
        Api::<Lease>::namespaced(client.clone(), &ns),
        LeaseConfig::new(&args.lease_name, &identity),
        stopped,
    );
    let (tx, mut changes) = mpsc::unbounded_channel();
    let stores = Stores::start(&client, Component::Controller, tx);
    stores.ready().await;
    metrics.set_readiness(&crate::node::Readiness::Ready);
    info!(%identity, lease = %format!("{ns}/{}", args.lease_name), "controller started");
    let settings = Settings {
        scope: crate::model::plan::Scope { exclude_cordoned: args.exclude_cordoned, classes: args.classes.clone() },
        peer_status_stale: Duration::from_secs(args.peer_status_stale_seconds),
    };
    let mut reconciler = Reconciler::new(client, &identity, settings).with_metrics(metrics.clone());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut resync = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            Some(()) = changes.recv() => {
                // Coalesce a burst of watch events (and our own writes echoed back).
                tokio::time::sleep(Duration::from_millis(100)).await;
                while changes.try_recv().is_ok() {}
            }
            r = leading.changed() => { if r.is_err() { break } }
            _ = resync.tick() => {}
            _ = term.recv() => break,
        }
        if *leading.borrow() {
            let objects = stores.objects();
            reconciler.reconcile(&objects, &leading).await;
        }
    }
    // Release the Lease so a standby takes over at once.
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), election).await;
    Ok(())
}
