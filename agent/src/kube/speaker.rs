//! `mooring speaker`: one per node (DaemonSet, hostNetwork). Announces
//! the node's routes for the VIPs in Service status (it never allocates)
//! and writes its sessions into BgpPeer status — each node owns its own
//! entry of `status.nodes` through server-side apply with a per-node field
//! manager, so nodes never overwrite each other.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use mooring_bgp::speaker::PeerStatus;
use mooring_crds::{BgpPeer, BgpPeerNodeStatus};
use tokio::sync::mpsc;
use tracing::warn;

use super::secrets::{self, SecretCache};
use super::stores::{Component, Stores};
use crate::metrics::Metrics;
use crate::model::plan::Objects;
use crate::node::{settle, NodeLoop, NodeOptions, Source, StateStore, VipMode};

#[derive(clap::Args, Debug)]
pub struct SpeakerArgs {
    /// This node's name (from the downward API: spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    pub node: String,
    #[arg(long, default_value = "0.0.0.0:9473")]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub node_options: NodeOptions,
}

/// The field manager of one node's BgpPeer status entries.
pub fn field_manager(node: &str) -> String {
    format!("mooring-speaker-{node}")
}

/// A node's entry is rewritten at least this often, with its `updatedAt`,
/// so the controller can tell a live speaker from a silent one.
pub const STATUS_HEARTBEAT: Duration = Duration::from_secs(60);

/// The server-side apply body of one node's entry in a BgpPeer's status
/// (without `updatedAt`, which [`write_peer_status`] adds).
pub fn peer_status_apply(node: &str, s: &PeerStatus) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "mooring.io/v1alpha1",
        "kind": "BgpPeer",
        "status": {"nodes": [BgpPeerNodeStatus::of_session(node, s)]}
    })
}

/// What a speaker last wrote into each BgpPeer's status, and when.
pub type Written = BTreeMap<String, (serde_json::Value, std::time::Instant)>;

/// Write each session's entry into its BgpPeer's status, where it changed
/// since the last write or the last write is older than [`STATUS_HEARTBEAT`]
/// (`written`, by BgpPeer name).
pub async fn write_peer_status(
    api: &Api<BgpPeer>,
    node: &str,
    objects: &Objects,
    sessions: &[PeerStatus],
    written: &mut Written,
) -> usize {
    let pp = PatchParams::apply(&field_manager(node)).force();
    let names = peer_names(objects);
    let mut writes = 0;
    for st in sessions {
        let Some(name) = names.get(&st.address) else { continue };
        let body = peer_status_apply(node, st);
        if written.get(name).is_some_and(|(b, at)| *b == body && at.elapsed() < STATUS_HEARTBEAT) {
            continue;
        }
        let mut stamped = body.clone();
        stamped["status"]["nodes"][0]["updatedAt"] = serde_json::json!(k8s_openapi::jiff::Timestamp::now()
            .round(k8s_openapi::jiff::Unit::Second)
            .map(|t| t.to_string())
            .unwrap_or_default());
        match api.patch_status(name, &pp, &Patch::Apply(&stamped)).await {
            Ok(_) => {
                writes += 1;
                written.insert(name.clone(), (body, std::time::Instant::now()));
            }
            Err(e) => warn!(bgppeer = %name, "cannot write status: {e}"),
        }
    }
    writes
}

/// The BgpPeer objects (by name) whose address is this session's peer.
fn peer_names(objects: &Objects) -> BTreeMap<std::net::IpAddr, String> {
    objects.peers.iter().filter_map(|p| Some((p.spec.peer_address.parse().ok()?, p.metadata.name.clone()?))).collect()
}

/// The node loop's source in a cluster: the reflector stores, the
/// Secrets the BgpPeers name (read one by one with `get`: the speaker
/// never lists or watches the cluster's Secrets), and this node's entries
/// in BgpPeer status as the place sessions are published.
pub struct ClusterSource {
    client: Client,
    node: String,
    stores: Stores,
    changes: mpsc::UnboundedReceiver<()>,
    secrets: SecretCache,
    /// Secrets are not watched: recompute now and then, so the cache reads them again.
    secrets_refresh: tokio::time::Interval,
    peers: Api<BgpPeer>,
    written: Written,
}

impl ClusterSource {
    /// Start the watches and wait for their first lists.
    pub async fn start(client: Client, node: &str) -> ClusterSource {
        let (tx, changes) = mpsc::unbounded_channel();
        let stores = Stores::start(&client, Component::Speaker, tx);
        stores.ready().await;
        Self::from_stores(client, node, stores, changes).await
    }

    /// A source over stores already filled; `changes` says when they change.
    pub async fn from_stores(
        client: Client,
        node: &str,
        stores: Stores,
        changes: mpsc::UnboundedReceiver<()>,
    ) -> ClusterSource {
        let mut secrets_refresh = tokio::time::interval(secrets::REFRESH);
        secrets_refresh.tick().await;
        ClusterSource {
            peers: Api::all(client.clone()),
            client,
            node: node.to_string(),
            stores,
            changes,
            secrets: SecretCache::default(),
            secrets_refresh,
            written: BTreeMap::new(),
        }
    }
}

impl Source for ClusterSource {
    async fn changed(&mut self) -> bool {
        tokio::select! {
            more = settle(&mut self.changes) => more,
            _ = self.secrets_refresh.tick() => true,
        }
    }

    async fn objects(&mut self) -> Objects {
        let mut objects = self.stores.objects();
        self.secrets.fill(&self.client, &mut objects).await;
        objects
    }

    async fn publish(&mut self, objects: &Objects, sessions: &[PeerStatus]) {
        write_peer_status(&self.peers, &self.node, objects, sessions, &mut self.written).await;
    }
}

/// Run the speaker until SIGTERM.
pub async fn run(args: SpeakerArgs) -> Result<()> {
    let client = Client::try_default().await.context("connecting to the Kubernetes API")?;
    let metrics = Arc::new(Metrics::new());
    crate::admin::serve(args.metrics_addr, metrics.clone()).await?;
    let source = ClusterSource::start(client, &args.node).await;
    let state = StateStore::open(None)?;
    NodeLoop::new(args.node, args.node_options, VipMode::FromStatus, source, state, metrics).run().await
}
