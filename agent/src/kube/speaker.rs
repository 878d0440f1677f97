//! `mooring speaker`: one per node (DaemonSet, hostNetwork). Announces
//! the node's routes for the VIPs in Service status (it never allocates)
//! and writes its sessions into BgpPeer status — each node owns its own
//! entry of `status.nodes` through server-side apply with a per-node field
//! manager, so nodes never overwrite each other.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use kube::api::Api;
use kube::Client;
use mooring_bgp::speaker::PeerStatus;
use tokio::sync::mpsc;

use super::peer_status::PeerStatusWriter;
use super::secrets::{self, SecretCache};
use super::stores::{Component, Stores};
use crate::metrics::Metrics;
use crate::model::plan::Objects;
use crate::node::{Changes, NodeLoop, NodeOptions, Source, StateStore, VipMode};

#[derive(clap::Args, Debug)]
pub struct SpeakerArgs {
    /// This node's name (from the downward API: spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    pub node: String,
    /// Serve /metrics, /healthz, /readyz and /status here (loopback by default; the chart
    /// sets 0.0.0.0:<metricsPort> for Prometheus).
    #[arg(long, default_value = "127.0.0.1:9473")]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub node_options: NodeOptions,
}

/// The node loop's source in a cluster: the reflector stores, the
/// Secrets the BgpPeers name (read one by one with `get`: the speaker
/// never lists or watches the cluster's Secrets), and this node's entries
/// in BgpPeer status as the place sessions are published.
pub struct ClusterSource {
    client: Client,
    stores: Stores,
    changes: Changes,
    secrets: SecretCache,
    /// Secrets are not watched: recompute now and then, so the cache reads them again.
    secrets_refresh: tokio::time::Interval,
    status: PeerStatusWriter,
}

impl ClusterSource {
    /// Start the watches and wait for their first lists.
    pub async fn start(client: Client, node: &str) -> ClusterSource {
        Self::start_for(client, node, false).await
    }

    /// As [`ClusterSource::start`]; `central`: the central speaker, which
    /// reads every node's endpoints (a per-node speaker keeps only its own).
    pub async fn start_for(client: Client, node: &str, central: bool) -> ClusterSource {
        let (tx, changes) = mpsc::unbounded_channel();
        let own_node = (!central).then(|| node.to_string());
        let stores = Stores::start_for(&client, Component::Speaker, tx, own_node);
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
            status: PeerStatusWriter::new(Api::all(client.clone()), node),
            client,
            stores,
            changes: Changes::new(changes),
            secrets: SecretCache::default(),
            secrets_refresh,
        }
    }
}

impl Source for ClusterSource {
    async fn changed(&mut self) -> bool {
        tokio::select! {
            more = self.changes.settled() => more,
            _ = self.secrets_refresh.tick() => true,
        }
    }

    async fn objects(&mut self) -> Objects {
        let mut objects = self.stores.objects();
        self.secrets.fill(&self.client, &mut objects).await;
        objects
    }

    async fn publish(&mut self, objects: &Objects, sessions: &[PeerStatus]) {
        self.status.publish(objects, sessions).await;
    }

    async fn retire(&mut self) {
        self.status.retire().await;
    }
}

/// Run the speaker until SIGTERM.
pub async fn run(args: SpeakerArgs) -> Result<()> {
    args.node_options.flap.config().map_err(anyhow::Error::msg)?;
    let client = super::client().await?;
    let metrics = Arc::new(Metrics::new());
    crate::admin::serve(args.metrics_addr, metrics.clone()).await?;
    let source = ClusterSource::start_for(client, &args.node, args.node_options.central).await;
    let state = StateStore::open(None)?;
    NodeLoop::new(args.node, args.node_options, VipMode::FromStatus, source, state, metrics).run().await
}
