//! `mooring standalone`: run the model and the speaker for one node from
//! manifest files, with no Kubernetes.

mod state;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use mooring_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::metrics::Metrics;
use crate::model::plan::{self, Objects, Plan};
use crate::model::pool_status;
use crate::node::damping;
use crate::sources::manifests::{Manifests, Object};
pub use state::StateStore;

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
    /// Serve /metrics, /healthz and /readyz here.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub node_options: NodeOptions,
}

/// How a node announces and stops; shared by `standalone` and `speaker`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NodeOptions {
    /// Cordoned nodes stop announcing Cluster services.
    #[arg(long)]
    pub exclude_cordoned: bool,
    /// On SIGTERM close sessions without a NOTIFICATION, so routers keep
    /// our routes for the graceful-restart time (also the default when the
    /// BgpConf enables graceful restart).
    #[arg(long)]
    pub graceful_stop: bool,
    /// On SIGTERM without graceful restart, first re-announce everything
    /// with GRACEFUL_SHUTDOWN (RFC 8326) and LOCAL_PREF 0 and wait this many
    /// seconds, so routers move traffic away before the withdraw.
    #[arg(long, default_value_t = 0)]
    pub drain_seconds: u64,
    /// While this node's Node is cordoned, announce with GRACEFUL_SHUTDOWN
    /// (RFC 8326) and LOCAL_PREF 0 so routers drain it first.
    #[arg(long)]
    pub graceful_shutdown_on_cordon: bool,
}

impl NodeOptions {
    /// Apply the cordon rule to a plan.
    pub fn adjust(&self, objects: &Objects, node: &str, plan: &mut Plan) {
        if self.graceful_shutdown_on_cordon && plan::node_cordoned(objects, node) {
            plan::graceful_shutdown(plan);
        }
    }

    /// Stop the speaker as asked (see [`stop_speaker`]); true when it was a
    /// graceful-restart stop.
    pub async fn stop(&self, s: &Speaker) -> bool {
        let gr = self.graceful_stop || s.config().graceful_restart.is_some();
        stop_speaker(s, gr, Duration::from_secs(self.drain_seconds)).await;
        gr
    }
}

/// Sort loaded objects into the plan's input.
pub fn objects(m: &Manifests) -> Objects {
    let mut o = Objects::default();
    for (_, obj) in m.objects.values() {
        match obj {
            Object::BgpConf(x) => o.confs.push((**x).clone()),
            Object::BgpPeer(x) => o.peers.push((**x).clone()),
            Object::Eip(x) => o.eips.push((**x).clone()),
            Object::Service(x) => o.services.push((**x).clone()),
            Object::EndpointSlice(x) => o.endpoint_slices.push((**x).clone()),
            Object::Node(x) => o.nodes.push((**x).clone()),
            Object::Namespace(x) => o.namespaces.push((**x).clone()),
            Object::Secret(x) => o.secrets.push((**x).clone()),
        }
    }
    o
}

struct Runner {
    args: StandaloneArgs,
    manifests: Manifests,
    state: StateStore,
    speaker: Option<Speaker>,
    metrics: Arc<Metrics>,
    last_problems: Vec<String>,
    last_pools: BTreeMap<String, pool_status::PoolStatus>,
    /// This run follows a graceful stop: set the Restart State bit.
    restarting: bool,
    damper: damping::WeightDamper,
    /// A weight-only change waits until then.
    retry_at: Option<tokio::time::Instant>,
}

impl Runner {
    fn reload(&mut self) {
        let m = Manifests::load(&self.args.config, Some(&self.manifests));
        for e in &m.errors {
            warn!("manifest error: {e}");
        }
        self.metrics.manifest_errors.set(m.errors.len() as i64);
        self.manifests = m;
    }

    async fn apply(&mut self) -> Result<()> {
        let objects = objects(&self.manifests);
        let opts = &self.args.node_options;
        let mut plan = plan::plan(&objects, &self.args.node, &self.state.get(), opts.exclude_cordoned);
        opts.adjust(&objects, &self.args.node, &mut plan);
        if let Some(gr) = plan.speaker.as_mut().and_then(|s| s.graceful_restart.as_mut()) {
            gr.restarting = self.restarting;
        }
        let problems: Vec<String> = plan.problems.iter().map(|p| p.to_string()).collect();
        if problems != self.last_problems {
            for p in &problems {
                warn!("{p}");
            }
            self.last_problems = problems;
        }
        // Keep what was assigned, so a restart gives the same addresses.
        let held: BTreeMap<String, Vec<IpAddr>> = plan
            .desired
            .allocations
            .iter()
            .filter(|(_, a)| !a.addresses.is_empty())
            .map(|(k, a)| (k.clone(), a.addresses.iter().map(|(ip, _)| *ip).collect()))
            .collect();
        for (svc, a) in &plan.desired.allocations {
            if self.state.get().get(svc) != held.get(svc) {
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
        let pools = pool_status::pool_statuses(&objects.eips, &plan.desired);
        for (name, st) in &pools {
            if self.last_pools.get(name) != Some(st) {
                let conds: Vec<String> = st
                    .conditions
                    .iter()
                    .map(|c| format!("{}={} ({}: {})", c.type_, c.status, c.reason, c.message))
                    .collect();
                info!(eip = %name, size = st.size, used = st.used, free = st.free, ready = st.ready, "pool status: {}", conds.join("; "));
            }
            self.metrics.pool(name, st.used, st.free);
        }
        self.last_pools = pools;
        self.metrics.vips.set(plan.desired.allocations.values().map(|a| a.addresses.len() as i64).sum());
        self.metrics.routes.set(plan.routes.len() as i64);
        let now = std::time::Instant::now();
        if let Err(at) = self.damper.check(&plan.routes, now) {
            // Only weights moved, too soon after the last move: later.
            self.retry_at = Some(tokio::time::Instant::from_std(at));
            return Ok(());
        }
        self.retry_at = None;
        self.damper.applied(&plan.routes, now);
        self.drive(plan).await
    }

    async fn drive(&mut self, plan: Plan) -> Result<()> {
        drive(&mut self.speaker, &self.metrics, plan).await
    }
}

/// Bring the speaker to the plan: start it, restart it when the BgpConf
/// changed, stop it when there is none; routes and peers as a difference.
pub async fn drive(speaker: &mut Option<Speaker>, metrics: &Metrics, plan: Plan) -> Result<()> {
    let Some(cfg) = plan.speaker else {
        if let Some(s) = speaker.take() {
            warn!("no usable BgpConf: stopping every session");
            s.shutdown(Some("BgpConf removed")).await;
        }
        return Ok(());
    };
    if speaker.as_ref().is_some_and(|s| !same_speaker(s.config(), &cfg)) {
        info!("BgpConf changed: restarting the speaker");
        if let Some(s) = speaker.take() {
            s.shutdown(Some("BgpConf changed")).await;
        }
    }
    if speaker.is_none() {
        let s = Speaker::start(cfg).await.context("starting the BGP speaker")?;
        metrics.watch(s.clone());
        *speaker = Some(s);
    }
    let s = speaker.as_ref().expect("started above");
    s.set_routes(plan.routes);
    sync_peers(s, plan.peers).await;
    Ok(())
}

fn same_speaker(a: &SpeakerConfig, b: &SpeakerConfig) -> bool {
    a.local_as == b.local_as
        && a.router_id == b.router_id
        && a.listen == b.listen
        && a.graceful_restart == b.graceful_restart
        && a.hostname == b.hostname
}

/// Add, change and remove peers; untouched peers keep their sessions.
pub async fn sync_peers(speaker: &Speaker, want: Vec<PeerConfig>) {
    let have: BTreeMap<IpAddr, PeerConfig> = speaker.peer_configs().into_iter().map(|p| (p.address, p)).collect();
    let want: BTreeMap<IpAddr, PeerConfig> = want.into_iter().map(|p| (p.address, p)).collect();
    for addr in have.keys().filter(|a| !want.contains_key(a)) {
        info!(peer = %addr, "peer removed");
        let _ = speaker
            .remove_peer(*addr, Some(mooring_bgp::wire::Notification::admin_shutdown("peer deconfigured")))
            .await;
    }
    for (addr, cfg) in want {
        let r = if have.contains_key(&addr) {
            speaker.update_peer(cfg).await
        } else {
            info!(peer = %addr, "peer added");
            speaker.add_peer(cfg)
        };
        if let Err(e) = r {
            error!(peer = %addr, "{e}");
        }
    }
}

/// How long a burst of file events settles before a reload.
const SETTLE: Duration = Duration::from_millis(5);

/// Run until SIGTERM / SIGINT.
pub async fn run(args: StandaloneArgs) -> Result<()> {
    let state = StateStore::open(args.state_dir.as_deref())?;
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = args.metrics_addr {
        crate::metrics::serve(addr, metrics.clone()).await?;
    }
    let (tx, mut changes) = mpsc::unbounded_channel();
    let _watcher = watch(&args.config, tx)?;
    let mut runner = Runner {
        manifests: Manifests::default(),
        args,
        state,
        speaker: None,
        metrics: metrics.clone(),
        last_problems: vec![],
        last_pools: BTreeMap::new(),
        restarting: false,
        damper: damping::WeightDamper::new(Duration::from_secs(2)),
        retry_at: None,
    };
    runner.reload();
    runner.restarting = runner.state.take_graceful_restart(Duration::from_secs(4095));
    if runner.restarting {
        info!("restarting gracefully: the Restart State bit is set in our OPEN");
    }
    runner.apply().await?;
    metrics.ready.set(1);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut events = runner.speaker.as_ref().map(|s| s.subscribe());
    loop {
        tokio::select! {
            Some(()) = changes.recv() => {
                // Events of one write (temp file + rename) arrive together: a
                // short settle takes them at once without delaying the change
                // (a half-written file is harmless: the last good version stays,
                // and the write's next event reloads it).
                tokio::time::sleep(SETTLE).await;
                while changes.try_recv().is_ok() {}
                info!("configuration changed: reloading");
                runner.reload();
                metrics.reloads.inc();
                if let Err(e) = runner.apply().await { error!("{e:#}"); }
            }
            _ = sleep_until(runner.retry_at), if runner.retry_at.is_some() => {
                if let Err(e) = runner.apply().await { error!("{e:#}"); }
            }
            _ = hup.recv() => {
                info!("SIGHUP: reloading");
                runner.reload();
                metrics.reloads.inc();
                if let Err(e) = runner.apply().await { error!("{e:#}"); }
            }
            ev = async { events.as_mut().expect("guarded").recv().await }, if events.is_some() => {
                if let Ok(e) = ev {
                    let reason = e.reason.map(|r| format!(" ({r})")).unwrap_or_default();
                    info!("peer {} {} -> {}{reason}", e.peer, e.from, e.to);
                }
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
        if events.is_none() {
            events = runner.speaker.as_ref().map(|s| s.subscribe());
        }
    }
    info!("stopping");
    if let Some(s) = runner.speaker.take() {
        if runner.args.node_options.stop(&s).await {
            if let Err(e) = runner.state.mark_graceful_stop() {
                warn!("{e:#}");
            }
        }
    }
    Ok(())
}

/// Stop every session: for a graceful restart just close (routers keep our
/// routes); otherwise drain first when asked (GRACEFUL_SHUTDOWN, LOCAL_PREF
/// 0, wait), then withdraw with a Cease.
pub async fn stop_speaker(s: &Speaker, graceful_restart: bool, drain: Duration) {
    if graceful_restart {
        info!("graceful restart: closing sessions without a NOTIFICATION");
        s.shutdown(None).await;
        return;
    }
    if !drain.is_zero() {
        info!("graceful shutdown: draining for {drain:?} before the withdraw");
        let mut p = Plan { routes: s.routes(), ..Plan::default() };
        plan::graceful_shutdown(&mut p);
        s.set_routes(p.routes);
        tokio::time::sleep(drain).await;
    }
    s.shutdown(Some("mooring stopping")).await;
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    tokio::time::sleep_until(at.expect("guarded")).await
}

/// Watch the config path; each change sends `()`.
fn watch(path: &std::path::Path, tx: mpsc::UnboundedSender<()>) -> Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let tx = Mutex::new(tx);
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if !ev.kind.is_access() {
                let _ = tx.lock().expect("lock").send(());
            }
        }
    })
    .context("starting the file watcher")?;
    // Watch the directory (editors replace files by renaming).
    let dir =
        if path.is_dir() { path.to_path_buf() } else { path.parent().map(|p| p.to_path_buf()).unwrap_or_default() };
    w.watch(&dir, RecursiveMode::Recursive).with_context(|| format!("watching {}", dir.display()))?;
    Ok(w)
}
