//! `mooring controller`: one leader (Lease) allocates VIPs with the model
//! and writes Service status, Eip status and Events. On start — and on
//! every failover — the allocation is rebuilt from the addresses already in
//! Service status (the model keeps valid held addresses), so a restart
//! never moves or duplicates an IP.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use mooring_crds::{BgpPeer, Eip};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::leader::{self, Leadership, LeaseConfig};
use super::status::{ingress_patch, service_updates, ServiceEvent};
use super::stores::Stores;
use crate::metrics::Metrics;
use crate::model::desired;
use crate::model::plan::{self, Objects};
use crate::model::pool_status::{pool_statuses, PoolStatus};

pub const FIELD_MANAGER: &str = "mooring-controller";

#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// Serve /metrics, /healthz and /readyz here.
    #[arg(long, default_value = "0.0.0.0:9472")]
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
}

/// The Eip status patch, when it differs from what the Eip shows.
pub fn eip_status_patch(eip: &Eip, st: &PoolStatus) -> Option<serde_json::Value> {
    let cur = eip.status.as_ref();
    let conditions: Vec<serde_json::Value> = st
        .conditions
        .iter()
        .map(|c| {
            let prev = cur.and_then(|s| s.conditions.iter().find(|p| p.type_ == c.type_));
            let status = if c.status { "True" } else { "False" };
            // Keep the transition time while the status does not change.
            let since = prev
                .filter(|p| p.status == status)
                .map(|p| p.last_transition_time.0.to_string())
                .unwrap_or_else(|| {
                    k8s_openapi::jiff::Timestamp::now()
                        .round(k8s_openapi::jiff::Unit::Second)
                        .map(|t| t.to_string())
                        .unwrap_or_default()
                });
            serde_json::json!({"type": c.type_, "status": status, "reason": c.reason, "message": c.message,
                               "lastTransitionTime": since, "observedGeneration": eip.metadata.generation})
        })
        .collect();
    let same = cur.is_some_and(|s| {
        s.size == Some(st.size)
            && s.used == Some(st.used)
            && s.free == Some(st.free)
            && s.ready == st.ready
            && s.conditions.len() == st.conditions.len()
            && st.conditions.iter().all(|c| {
                s.conditions.iter().any(|p| {
                    p.type_ == c.type_
                        && (p.status == "True") == c.status
                        && p.reason == c.reason
                        && p.message == c.message
                })
            })
    });
    (!same).then(|| {
        serde_json::json!({"status": {"size": st.size, "used": st.used, "free": st.free, "ready": st.ready,
                                      "observedGeneration": eip.metadata.generation, "conditions": conditions}})
    })
}

/// One pass: compute and write. Stops writing the moment leadership is lost.
pub struct Reconciler {
    pub client: Client,
    pub recorder: Recorder,
    pub exclude_cordoned: bool,
    /// Events already published per Service, so a standing problem is not repeated every pass.
    published: HashMap<String, Vec<ServiceEvent>>,
    /// Per-object back-off after a failed write.
    backoff: HashMap<String, (u32, Instant)>,
}

impl Reconciler {
    pub fn new(client: Client, identity: &str, exclude_cordoned: bool) -> Self {
        let reporter = Reporter { controller: FIELD_MANAGER.into(), instance: Some(identity.into()) };
        Reconciler {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            exclude_cordoned,
            published: HashMap::new(),
            backoff: HashMap::new(),
        }
    }

    fn may_try(&self, key: &str) -> bool {
        self.backoff.get(key).is_none_or(|(_, at)| Instant::now() >= *at)
    }

    fn failed(&mut self, key: &str, e: &kube::Error) {
        let n = self.backoff.get(key).map_or(0, |(n, _)| n + 1);
        let delay = Duration::from_millis(500).saturating_mul(1 << n.min(7)).min(Duration::from_secs(60));
        warn!(object = key, "write failed (retry in {delay:?}): {e}");
        self.backoff.insert(key.to_string(), (n, Instant::now() + delay));
    }

    /// Compute the model's answer for `objects` and write what differs.
    pub async fn reconcile(&mut self, objects: &Objects, leading: &Leadership) -> usize {
        let mut problems = vec![];
        let snap = plan::snapshot(objects, &BTreeMap::new(), self.exclude_cordoned, &mut problems);
        let desired = desired::allocate(&snap);
        let mut writes = 0;
        let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        for u in service_updates(&snap, &desired) {
            if !*leading.borrow() {
                return writes;
            }
            let key = format!("Service/{}/{}", u.namespace, u.name);
            if !self.may_try(&key) {
                continue;
            }
            let api: Api<Service> = Api::namespaced(self.client.clone(), &u.namespace);
            if let Some(ips) = &u.ingress {
                match api.patch_status(&u.name, &pp, &Patch::Merge(ingress_patch(ips))).await {
                    Ok(_) => {
                        writes += 1;
                        self.backoff.remove(&key);
                        info!(service = %format!("{}/{}", u.namespace, u.name), "status: {ips:?}");
                    }
                    Err(e) => {
                        self.failed(&key, &e);
                        continue;
                    }
                }
            }
            if self.published.get(&key) == Some(&u.events) || u.events.is_empty() {
                continue;
            }
            let svc = snap.services.iter().find(|s| {
                s.metadata.namespace.as_deref() == Some(&u.namespace) && s.metadata.name.as_deref() == Some(&u.name)
            });
            if let Some(svc) = svc {
                let reference = svc.object_ref(&());
                for ev in &u.events {
                    let event = Event {
                        type_: if ev.warning { EventType::Warning } else { EventType::Normal },
                        reason: ev.reason.clone(),
                        note: Some(ev.note.clone()),
                        action: "Allocate".into(),
                        secondary: None,
                    };
                    if let Err(e) = self.recorder.publish(&event, &reference).await {
                        warn!(object = %key, "cannot record event: {e}");
                    }
                }
            }
            self.published.insert(key, u.events.clone());
        }
        let statuses = pool_statuses(&objects.eips, &desired);
        let eips: Api<Eip> = Api::all(self.client.clone());
        for eip in &objects.eips {
            let name = eip.metadata.name.clone().unwrap_or_default();
            let key = format!("Eip/{name}");
            let Some(patch) = statuses.get(&name).and_then(|st| eip_status_patch(eip, st)) else { continue };
            if !*leading.borrow() {
                return writes;
            }
            if !self.may_try(&key) {
                continue;
            }
            match eips.patch_status(&name, &pp, &Patch::Merge(patch)).await {
                Ok(_) => {
                    writes += 1;
                    self.backoff.remove(&key);
                }
                Err(e) => self.failed(&key, &e),
            }
        }
        // BgpPeer summaries: how many nodes have the session Established.
        let peers: Api<BgpPeer> = Api::all(self.client.clone());
        for p in &objects.peers {
            let Some(patch) = peer_summary_patch(p) else { continue };
            let name = p.metadata.name.clone().unwrap_or_default();
            let key = format!("BgpPeer/{name}");
            if !*leading.borrow() {
                return writes;
            }
            if !self.may_try(&key) {
                continue;
            }
            match peers.patch_status(&name, &pp, &Patch::Merge(patch)).await {
                Ok(_) => {
                    writes += 1;
                    self.backoff.remove(&key);
                }
                Err(e) => self.failed(&key, &e),
            }
        }
        writes
    }
}

/// `status.established` of a BgpPeer (nodes whose session is
/// Established), when it differs from what the object shows.
pub fn peer_summary_patch(p: &BgpPeer) -> Option<serde_json::Value> {
    let st = p.status.as_ref()?;
    let n = st.nodes.iter().filter(|e| e.state == mooring_crds::SessionState::Established).count() as i32;
    (st.established != Some(n)).then(|| serde_json::json!({"status": {"established": n}}))
}

/// Run the controller until SIGTERM.
pub async fn run(args: ControllerArgs) -> Result<()> {
    let client = Client::try_default().await.context("connecting to the Kubernetes API")?;
    let metrics = Arc::new(Metrics::new());
    crate::metrics::serve(args.metrics_addr, metrics.clone()).await?;
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
    let mut leading =
        leader::run(Api::<Lease>::namespaced(client.clone(), &ns), LeaseConfig::new(&args.lease_name, &identity));
    let (tx, mut changes) = mpsc::unbounded_channel();
    let stores = Stores::start(&client, false, tx);
    stores.ready().await;
    metrics.ready.set(1);
    info!(%identity, lease = %format!("{ns}/{}", args.lease_name), "controller started");
    let mut reconciler = Reconciler::new(client, &identity, args.exclude_cordoned);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut resync = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            Some(()) = changes.recv() => {
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
    Ok(())
}
