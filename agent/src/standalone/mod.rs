//! `mooring standalone`: one node from manifest files, with no Kubernetes.
//! Only the command line and the wiring: the file source, VIPs allocated
//! here (every node computes the same allocation; the state directory keeps
//! them across restarts), and the shared node loop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use crate::metrics::Metrics;
use crate::node::{NodeLoop, NodeOptions, StateStore, VipMode};
use crate::sources::files::FileSource;

#[derive(clap::Args, Debug)]
pub struct StandaloneArgs {
    /// This node's name (its Node object in the manifests).
    #[arg(long)]
    pub node: String,
    /// A manifest file, or a directory of them (read recursively).
    #[arg(long)]
    pub config: PathBuf,
    /// Where assigned addresses are kept across restarts.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Serve /metrics, /healthz, /readyz and /status here (e.g. 127.0.0.1:9473, where
    /// `mooring status` asks by default).
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub node_options: NodeOptions,
}

/// Run until SIGTERM / SIGINT.
pub async fn run(args: StandaloneArgs) -> Result<()> {
    args.node_options.flap.config().map_err(anyhow::Error::msg)?;
    let state = StateStore::open(args.state_dir.as_deref())?;
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = args.metrics_addr {
        crate::admin::serve(addr, metrics.clone()).await?;
    }
    let source = FileSource::open(&args.config, metrics.clone())?;
    NodeLoop::new(args.node, args.node_options, VipMode::Allocate, source, state, metrics).run().await
}
