//! Bringing the BGP speaker to a plan: start it, restart it when the
//! BgpConf changed, stop it when there is none, and change peers and
//! routes as a difference (untouched sessions stay up). Also the ways a
//! node stops its speaker. IO on the speaker only; the plan is computed
//! elsewhere.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use mooring_bgp::speaker::{PeerConfig, PeerEvent, Speaker, SpeakerConfig};
use mooring_bgp::wire::Notification;
use tokio::sync::broadcast;
use tracing::{error, info, warn};

use crate::metrics::Metrics;
use crate::model::plan::{self, Plan};

/// What the node's speaker is doing after a drive: the truth `/readyz` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The speaker runs and every configured peer was started.
    Ready,
    /// Not serving, and why (for `/readyz` and the log).
    NotReady(String),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }
}

/// What a drive did.
#[derive(Debug)]
pub struct Driven {
    pub readiness: Readiness,
    /// A new speaker was started: its session events, subscribed to
    /// before any peer was added (so none is missed).
    pub events: Option<broadcast::Receiver<PeerEvent>>,
}

/// Bring `speaker` to `plan`. `Err` when the speaker could not be started
/// (the caller retries later); otherwise how ready the node now is.
pub async fn drive(speaker: &mut Option<Speaker>, metrics: &Metrics, plan: Plan) -> std::io::Result<Driven> {
    let Some(cfg) = plan.speaker else {
        if let Some(s) = speaker.take() {
            warn!("no usable BgpConf: stopping every session");
            metrics.unwatch();
            s.shutdown(Some("BgpConf removed")).await;
        }
        return Ok(Driven { readiness: Readiness::NotReady("no usable BgpConf".into()), events: None });
    };
    if speaker.as_ref().is_some_and(|s| !same_speaker(s.config(), &cfg)) {
        info!("BgpConf changed: restarting the speaker");
        if let Some(s) = speaker.take() {
            metrics.unwatch();
            s.shutdown(Some("BgpConf changed")).await;
        }
    }
    let mut events = None;
    if speaker.is_none() {
        let s = Speaker::start(cfg).await?;
        events = Some(s.subscribe());
        metrics.watch(s.clone());
        *speaker = Some(s);
    }
    let s = speaker.as_ref().expect("started above");
    s.set_routes(plan.routes);
    let failed = sync_peers(s, plan.peers).await;
    let readiness = if failed.is_empty() {
        Readiness::Ready
    } else {
        Readiness::NotReady(format!("peers that could not be started: {}", failed.join(", ")))
    };
    Ok(Driven { readiness, events })
}

/// Whether two configurations can be served by the same running speaker.
fn same_speaker(a: &SpeakerConfig, b: &SpeakerConfig) -> bool {
    a.local_as == b.local_as
        && a.router_id == b.router_id
        && a.listen == b.listen
        && a.graceful_restart == b.graceful_restart
        && a.hostname == b.hostname
}

/// Add, change and remove peers; untouched peers keep their sessions.
/// Returns the peers that could not be added or changed (with the error).
pub async fn sync_peers(speaker: &Speaker, want: Vec<PeerConfig>) -> Vec<String> {
    let have: BTreeMap<IpAddr, PeerConfig> = speaker.peer_configs().into_iter().map(|p| (p.address, p)).collect();
    let want: BTreeMap<IpAddr, PeerConfig> = want.into_iter().map(|p| (p.address, p)).collect();
    for addr in have.keys().filter(|a| !want.contains_key(a)) {
        info!(peer = %addr, "peer removed");
        let _ = speaker.remove_peer(*addr, Some(Notification::admin_shutdown("peer deconfigured"))).await;
    }
    let mut failed = vec![];
    for (addr, cfg) in want {
        let r = if have.contains_key(&addr) {
            speaker.update_peer(cfg).await
        } else {
            info!(peer = %addr, "peer added");
            speaker.add_peer(cfg)
        };
        if let Err(e) = r {
            error!(peer = %addr, "{e}");
            failed.push(format!("{addr} ({e})"));
        }
    }
    failed
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
