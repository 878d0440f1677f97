//! `mooring speaker`: one per node (DaemonSet, hostNetwork). Announces
//! the node's routes for the VIPs in Service status (it never allocates)
//! and writes its sessions into BgpPeer status — each node owns its own
//! entry of `status.nodes` through server-side apply with a per-node field
//! manager, so nodes never overwrite each other.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use mooring_bgp::fsm::State;
use mooring_bgp::speaker::{PeerStatus, Speaker};
use mooring_crds::BgpPeer;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::stores::Stores;
use crate::metrics::Metrics;
use crate::model::plan::{self, Objects};

#[derive(clap::Args, Debug)]
pub struct SpeakerArgs {
    /// This node's name (from the downward API: spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    pub node: String,
    #[arg(long, default_value = "0.0.0.0:9473")]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub node_options: crate::standalone::NodeOptions,
}

/// The field manager of one node's BgpPeer status entries.
pub fn field_manager(node: &str) -> String {
    format!("mooring-speaker-{node}")
}

/// The server-side apply body of one node's entry in a BgpPeer's status.
pub fn peer_status_apply(node: &str, s: &PeerStatus) -> serde_json::Value {
    let since = s.established_since.and_then(|t| {
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64;
        k8s_openapi::jiff::Timestamp::from_second(secs).ok().map(|t| t.to_string())
    });
    serde_json::json!({
        "apiVersion": "mooring.io/v1alpha1",
        "kind": "BgpPeer",
        "status": {"nodes": [{
            "node": node,
            "state": s.state.name(),
            "establishedSince": since,
            "prefixesSent": s.prefixes_sent,
            "prefixesReceived": s.prefixes_received.values().sum::<u64>(),
            "lastError": s.last_error,
        }]}
    })
}

/// Write each session's entry into its BgpPeer's status, where it changed
/// since the last write (`written`, by BgpPeer name).
pub async fn write_peer_status(
    api: &Api<BgpPeer>,
    node: &str,
    objects: &Objects,
    sessions: &[PeerStatus],
    written: &mut BTreeMap<String, serde_json::Value>,
) -> usize {
    let pp = PatchParams::apply(&field_manager(node)).force();
    let names = peer_names(objects);
    let mut writes = 0;
    for st in sessions {
        let Some(name) = names.get(&st.address) else { continue };
        let body = peer_status_apply(node, st);
        if written.get(name) == Some(&body) {
            continue;
        }
        match api.patch_status(name, &pp, &Patch::Apply(&body)).await {
            Ok(_) => {
                writes += 1;
                written.insert(name.clone(), body);
            }
            Err(e) => warn!(bgppeer = %name, "cannot write status: {e}"),
        }
    }
    writes
}

/// The Secrets the BgpPeers' `passwordSecretRef`s name (missing ones are
/// left out; the plan reports them on the BgpPeer).
pub async fn referenced_secrets(client: &Client, objects: &Objects) -> Vec<k8s_openapi::api::core::v1::Secret> {
    let mut out = vec![];
    let refs: std::collections::BTreeSet<(String, String)> = objects
        .peers
        .iter()
        .filter_map(|p| p.spec.password_secret_ref.as_ref().map(|r| (r.namespace.clone(), r.name.clone())))
        .collect();
    for (ns, name) in refs {
        let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
        match api.get_opt(&name).await {
            Ok(Some(s)) => out.push(s),
            Ok(None) => {}
            Err(e) => warn!(secret = %format!("{ns}/{name}"), "cannot read: {e}"),
        }
    }
    out
}

/// The BgpPeer objects (by name) whose address is this session's peer.
fn peer_names(objects: &Objects) -> BTreeMap<std::net::IpAddr, String> {
    objects.peers.iter().filter_map(|p| Some((p.spec.peer_address.parse().ok()?, p.metadata.name.clone()?))).collect()
}

/// Run the speaker until SIGTERM.
pub async fn run(args: SpeakerArgs) -> Result<()> {
    let client = Client::try_default().await.context("connecting to the Kubernetes API")?;
    let metrics = Arc::new(Metrics::new());
    crate::metrics::serve(args.metrics_addr, metrics.clone()).await?;
    let (tx, mut changes) = mpsc::unbounded_channel();
    // Secrets are read one by one (`get`), only those BgpPeers name: the
    // speaker never lists or watches the cluster's Secrets.
    let stores = Stores::start(&client, false, tx);
    stores.ready().await;
    let mut speaker: Option<Speaker> = None;
    let mut written: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    // Secrets are not watched: re-read them now and then for password changes.
    let mut secrets_refresh = tokio::time::interval(Duration::from_secs(60));
    secrets_refresh.tick().await;
    let api: Api<BgpPeer> = Api::all(client.clone());
    let mut dirty = true;
    let mut damper = crate::node::damping::WeightDamper::new(Duration::from_secs(2));
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        if dirty {
            dirty = false;
            retry_at = None;
            let mut objects = stores.objects();
            objects.secrets = referenced_secrets(&client, &objects).await;
            let mut problems = vec![];
            let snap = plan::snapshot(&objects, &BTreeMap::new(), args.node_options.exclude_cordoned, &mut problems);
            let vips = plan::vips_from_status(&snap);
            let mut p = plan::plan_with_vips(&objects, &snap, &args.node, &vips, Default::default(), problems);
            args.node_options.adjust(&objects, &args.node, &mut p);
            for pr in &p.problems {
                warn!("{pr}");
            }
            metrics.routes.set(p.routes.len() as i64);
            let now = std::time::Instant::now();
            match damper.check(&p.routes, now) {
                Err(at) => retry_at = Some(tokio::time::Instant::from_std(at)),
                Ok(()) => {
                    damper.applied(&p.routes, now);
                    if let Err(e) = crate::standalone::drive(&mut speaker, &metrics, p).await {
                        warn!("{e:#}");
                    }
                }
            }
            metrics.ready.set(1);
        }
        tokio::select! {
            Some(()) = changes.recv() => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                while changes.try_recv().is_ok() {}
                dirty = true;
            }
            _ = secrets_refresh.tick() => dirty = true,
            _ = async { tokio::time::sleep_until(retry_at.expect("guarded")).await }, if retry_at.is_some() => dirty = true,
            _ = tick.tick() => {
                let sessions = speaker.as_ref().map(|s| s.peers()).unwrap_or_default();
                write_peer_status(&api, &args.node, &stores.objects(), &sessions, &mut written).await;
            }
            _ = term.recv() => break,
        }
    }
    info!("stopping");
    if let Some(s) = speaker.take() {
        let established = s.peers().iter().filter(|p| p.state == State::Established).count();
        info!(established, "closing sessions");
        args.node_options.stop(&s).await;
    }
    Ok(())
}
