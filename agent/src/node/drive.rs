//! Bringing the BGP speaker to a plan: start it, restart it when the
//! BgpConf changed, stop it when there is none, and change peers and
//! routes as a difference (untouched sessions stay up). Also the ways a
//! node stops its speaker. IO on the speaker only; the plan is computed
//! elsewhere.

use std::collections::BTreeMap;
use std::time::Duration;

use mooring_bgp::fsm::State;
use mooring_bgp::speaker::{PeerConfig, PeerEvent, PeerKey, PeerStatus, Speaker, SpeakerConfig};
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
    let have: BTreeMap<PeerKey, PeerConfig> = speaker.peer_configs().into_iter().map(|p| (p.key(), p)).collect();
    let want: BTreeMap<PeerKey, PeerConfig> = want.into_iter().map(|p| (p.key(), p)).collect();
    for addr in have.keys().filter(|a| !want.contains_key(a)) {
        info!(peer = %addr, "peer removed");
        let _ = speaker.remove_peer(addr.clone(), Some(Notification::admin_shutdown("peer deconfigured"))).await;
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

/// Stop every session, each the right way: a session that negotiated
/// graceful restart (RFC 4724) is closed without a NOTIFICATION, so its
/// router keeps our routes for the restart time; every other session is
/// drained first — everything re-announced with GRACEFUL_SHUTDOWN (RFC
/// 8326) and LOCAL_PREF 0 for `drain`, so its router moves traffic to the
/// other nodes — and then withdrawn with a Cease. With `allow_restart`
/// false every session is drained and ceased. Returns how many sessions
/// were closed the graceful-restart way.
pub async fn stop_speaker(s: &Speaker, drain: Duration, allow_restart: bool) -> usize {
    let established: Vec<PeerStatus> = s.peers().into_iter().filter(|p| p.state == State::Established).collect();
    let (restart, cease): (Vec<PeerStatus>, Vec<PeerStatus>) =
        established.into_iter().partition(|p| allow_restart && p.graceful_restart);
    if !cease.is_empty() && !drain.is_zero() {
        info!(sessions = cease.len(), "graceful shutdown: draining for {drain:?} before the withdraw");
        let mut p = Plan { routes: s.routes(), ..Plan::default() };
        plan::graceful_shutdown(&mut p);
        s.set_routes(p.routes);
        tokio::time::sleep(drain).await;
    }
    if !restart.is_empty() {
        info!(sessions = restart.len(), "graceful restart: closing without a NOTIFICATION (routers keep our routes)");
    }
    for p in &restart {
        let _ = s.remove_peer(p.key(), None).await;
    }
    s.shutdown(Some("mooring stopping")).await;
    restart.len()
}
