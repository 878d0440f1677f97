//! The speaker: peers, the routes to announce, Adj-RIB-Out per peer, and
//! the public API. A [`Speaker`] is a cheap-to-clone handle.
//!
//! Routes are kept in one table; each session sends its peer the
//! difference between that table and what it sent before, grouping
//! prefixes that share attributes into as few UPDATEs as fit. A burst of
//! changes made between two wake-ups of a session goes out as one diff.

mod adj_rib_in;
mod adj_rib_out;
mod config;
mod export;
mod listener;
mod peer;
mod prefix_set;
mod status;
mod table;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use ipnetwork::IpNetwork;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use adj_rib_out::{AdjRibOut, Diff};
pub use config::{MaxPrefixes, PeerConfig, SpeakerConfig};
pub use export::{ExportCtx, Exported, RouteAttrs};
pub use status::{HeldDown, HoldDownCause, ListenerState, PeerEvent, PeerStatus, SpeakerStatus};
pub use table::RouteTable;

use crate::bfd::{self, BfdConfig, BfdState};
use crate::fsm::peer::Peer;
use crate::fsm::{Backoff, Fsm, LocalConfig, State};
use crate::log_limit::{suppressed_note, LogLimit};
use crate::session::{Command, Session, Transport};
use crate::wire::{masked, Cease, Notification};
use listener::Listener;

/// Errors of the speaker API.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("peer {0} exists already")]
    PeerExists(IpAddr),
    #[error("no peer {0}")]
    NoSuchPeer(IpAddr),
    #[error("TCP MD5 for peer {peer}: {error}")]
    Md5 { peer: IpAddr, error: io::Error },
}

pub(crate) struct Shared {
    pub config: SpeakerConfig,
    pub routes: RwLock<RouteTable>,
}

struct PeerHandle {
    config: Arc<PeerConfig>,
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<Mutex<PeerStatus>>,
    task: JoinHandle<()>,
    bfd_task: Option<JoinHandle<()>>,
}

struct Inner {
    shared: Arc<Shared>,
    version: watch::Sender<u64>,
    peers: Mutex<HashMap<IpAddr, PeerHandle>>,
    events: broadcast::Sender<PeerEvent>,
    /// Set once, right after the speaker is built.
    listener: OnceLock<Arc<Listener>>,
    /// Lines about connections from addresses that are not peers.
    refused_log: Mutex<LogLimit>,
    running: AtomicBool,
    seed: Mutex<u64>,
    /// BFD receive sockets, opened when a peer first uses BFD.
    bfd_mux: std::sync::OnceLock<Arc<bfd::Mux>>,
}

/// The speaker handle.
#[derive(Clone)]
pub struct Speaker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker").field("config", &self.inner.shared.config).finish()
    }
}

impl Speaker {
    /// Start a speaker; binds the listener when one is configured. When
    /// its address is taken (a speaker being replaced is still closing
    /// it) or not on the host yet, binding is retried in the background
    /// with back-off ([`Speaker::status`] tells); other bind errors are
    /// returned.
    pub async fn start(config: SpeakerConfig) -> io::Result<Speaker> {
        let listen = config.listen;
        let (events, _) = broadcast::channel(1024);
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
        let inner = Arc::new(Inner {
            shared: Arc::new(Shared { config, routes: RwLock::new(RouteTable::new()) }),
            version: watch::channel(0).0,
            peers: Mutex::new(HashMap::new()),
            events,
            listener: OnceLock::new(),
            refused_log: Mutex::new(LogLimit::new(10, Duration::from_secs(60))),
            running: AtomicBool::new(true),
            seed: Mutex::new(seed),
            bfd_mux: std::sync::OnceLock::new(),
        });
        let listener = match listen {
            Some(addr) => Listener::start(addr, Arc::downgrade(&inner))?,
            None => Listener::disabled(),
        };
        let _ = inner.listener.set(listener);
        Ok(Speaker { inner })
    }

    fn listener(&self) -> &Listener {
        self.inner.listener.get().expect("set at start")
    }

    /// The address the listener is bound to, while it is.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listener().local_addr()
    }

    /// Where the listening socket is: bound, being retried, closed.
    pub fn listener_state(&self) -> ListenerState {
        self.listener().state()
    }

    /// Whether the listener is bound and accepting.
    pub fn is_listening(&self) -> bool {
        matches!(self.listener_state(), ListenerState::Listening(_))
    }

    /// The speaker as a whole: running, its listener, its peers.
    pub fn status(&self) -> SpeakerStatus {
        let peers = self.inner.peers.lock().expect("peers lock");
        let established =
            peers.values().filter(|h| h.status.lock().expect("status lock").state == State::Established).count();
        SpeakerStatus {
            running: self.inner.running.load(Ordering::Relaxed),
            listener: self.listener_state(),
            peers: peers.len(),
            established,
        }
    }

    pub fn config(&self) -> &SpeakerConfig {
        &self.inner.shared.config
    }

    /// Add a peer and start its session.
    pub fn add_peer(&self, cfg: PeerConfig) -> Result<(), SpeakerError> {
        let mut peers = self.inner.peers.lock().expect("peers lock");
        if peers.contains_key(&cfg.address) {
            return Err(SpeakerError::PeerExists(cfg.address));
        }
        if let Some(pw) = &cfg.md5_password {
            self.listener()
                .set_md5(cfg.address, Some(pw))
                .map_err(|error| SpeakerError::Md5 { peer: cfg.address, error })?;
        }
        for a in cfg.adjustments() {
            warn!(peer = %cfg.address, "{a}");
        }
        let handle = self.spawn_peer(Arc::new(cfg));
        peers.insert(handle.config.address, handle);
        Ok(())
    }

    fn spawn_peer(&self, cfg: Arc<PeerConfig>) -> PeerHandle {
        let sc = &self.inner.shared.config;
        let local_as = cfg.local_as.unwrap_or(sc.local_as);
        let ebgp = local_as != cfg.remote_as;
        let local = LocalConfig {
            local_as,
            remote_as: Some(cfg.remote_as),
            router_id: sc.router_id,
            hold_time: cfg.hold_time,
            keepalive: cfg.keepalive,
            connect_retry: cfg.connect_retry,
            passive: cfg.passive,
            families: cfg.families.clone(),
            extended_message: true,
            graceful_restart: sc.graceful_restart.clone(),
            hostname: sc.hostname.clone(),
        };
        let transport = Transport {
            remote: SocketAddr::new(cfg.address, cfg.port),
            source: cfg.source,
            ttl: match (ebgp, cfg.ebgp_multihop) {
                (true, Some(t)) => Some(t),
                (true, None) => Some(1),
                (false, _) => None,
            },
            gtsm_hops: cfg.gtsm_hops,
            md5_password: cfg.md5_password.clone(),
        };
        let status = Arc::new(Mutex::new(PeerStatus::new(cfg.address, cfg.remote_as)));
        let seed = {
            let mut s = self.inner.seed.lock().expect("seed lock");
            *s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *s
        };
        let fsm = Fsm::new(local, Backoff::default(), seed);
        let mut handler =
            peer::PeerSession::new(cfg.clone(), self.inner.shared.clone(), status.clone(), self.inner.events.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        let bfd_task = cfg.bfd.map(|b| {
            let (local_tx, local_rx) = watch::channel(cfg.source);
            handler.bfd_local = Some(local_tx);
            let mux = self.inner.bfd_mux.get_or_init(|| bfd::Mux::new(bfd::CONTROL_PORT)).clone();
            tokio::spawn(run_bfd(b, cfg.address, local_rx, mux, seed, tx.downgrade()))
        });
        let routes = self.inner.version.subscribe();
        let task = tokio::spawn(Session::new(Peer::new(fsm), transport, handler).run(rx, routes));
        PeerHandle { config: cfg, commands: tx, status, task, bfd_task }
    }

    /// Apply a new configuration to a peer: nothing happens when it did
    /// not change, otherwise only that peer's session restarts.
    pub async fn update_peer(&self, cfg: PeerConfig) -> Result<(), SpeakerError> {
        let same = {
            let peers = self.inner.peers.lock().expect("peers lock");
            match peers.get(&cfg.address) {
                Some(h) => *h.config == cfg,
                None => return Err(SpeakerError::NoSuchPeer(cfg.address)),
            }
        };
        if same {
            return Ok(());
        }
        self.remove_peer(
            cfg.address,
            // RFC 9003 carries a message in Administrative Shutdown and Reset only.
            Some(Notification::new(Cease::OtherConfigurationChange, vec![])),
        )
        .await?;
        self.add_peer(cfg)
    }

    /// Stop a peer's session (with this NOTIFICATION, or none) and forget it.
    pub async fn remove_peer(&self, address: IpAddr, notification: Option<Notification>) -> Result<(), SpeakerError> {
        let h = self.inner.peers.lock().expect("peers lock").remove(&address);
        let Some(h) = h else { return Err(SpeakerError::NoSuchPeer(address)) };
        if h.config.md5_password.is_some() {
            if let Err(e) = self.listener().set_md5(address, None) {
                warn!(peer = %address, error = %e, "cannot remove TCP MD5 key");
            }
        }
        if let Some(t) = &h.bfd_task {
            t.abort();
        }
        let _ = h.commands.send(Command::Shutdown(notification));
        if tokio::time::timeout(Duration::from_secs(5), h.task).await.is_err() {
            warn!(peer = %address, "session did not stop within 5 s");
        }
        Ok(())
    }

    /// The configured peers.
    pub fn peer_configs(&self) -> Vec<PeerConfig> {
        self.inner.peers.lock().expect("peers lock").values().map(|h| (*h.config).clone()).collect()
    }

    pub fn peer_status(&self, address: IpAddr) -> Option<PeerStatus> {
        let peers = self.inner.peers.lock().expect("peers lock");
        peers.get(&address).map(|h| h.status.lock().expect("status lock").clone())
    }

    pub fn peers(&self) -> Vec<PeerStatus> {
        let peers = self.inner.peers.lock().expect("peers lock");
        let mut v: Vec<PeerStatus> = peers.values().map(|h| h.status.lock().expect("status lock").clone()).collect();
        v.sort_by_key(|s| s.address);
        v
    }

    /// Session state changes of every peer.
    pub fn subscribe(&self) -> broadcast::Receiver<PeerEvent> {
        self.inner.events.subscribe()
    }

    fn changed(&self) {
        self.inner.version.send_modify(|v| *v += 1);
    }

    /// Announce (or re-announce with new attributes) a prefix.
    pub fn announce(&self, prefix: IpNetwork, attrs: RouteAttrs) {
        self.announce_many(std::iter::once((prefix, attrs)));
    }

    /// Announce many prefixes at once; prefixes with equal attributes share them.
    pub fn announce_many(&self, routes: impl IntoIterator<Item = (IpNetwork, RouteAttrs)>) {
        {
            let mut table = self.inner.shared.routes.write().expect("route table lock");
            let mut interned: HashMap<RouteAttrs, Arc<RouteAttrs>> = HashMap::new();
            for (p, a) in routes {
                let a = interned.entry(a.clone()).or_insert_with(|| Arc::new(a)).clone();
                table.insert(masked(p), a);
            }
        }
        self.changed();
    }

    pub fn withdraw(&self, prefix: IpNetwork) {
        self.inner.shared.routes.write().expect("route table lock").remove(&masked(prefix));
        self.changed();
    }

    /// Replace every route by `routes` (only the difference goes out).
    pub fn set_routes(&self, routes: impl IntoIterator<Item = (IpNetwork, RouteAttrs)>) {
        let mut interned: HashMap<RouteAttrs, Arc<RouteAttrs>> = HashMap::new();
        let new: Vec<(IpNetwork, Arc<RouteAttrs>)> = routes
            .into_iter()
            .map(|(p, a)| (masked(p), interned.entry(a.clone()).or_insert_with(|| Arc::new(a)).clone()))
            .collect();
        self.inner.shared.routes.write().expect("route table lock").replace(new);
        self.changed();
    }

    /// The routes announced, sorted.
    pub fn routes(&self) -> Vec<(IpNetwork, RouteAttrs)> {
        let table = self.inner.shared.routes.read().expect("route table lock");
        let mut v: Vec<(IpNetwork, RouteAttrs)> = table.iter().map(|(p, a)| (*p, (**a).clone())).collect();
        v.sort_by_key(|r| r.0);
        v
    }

    /// Close the listener, then stop every session: with a Cease
    /// NOTIFICATION carrying `message`, or, with `None`, by just closing
    /// (graceful restart: the peers keep our routes for the restart
    /// time). When this returns, the listening socket is closed: a new
    /// speaker can bind its address at once.
    pub async fn shutdown(&self, message: Option<&str>) {
        self.inner.running.store(false, Ordering::Relaxed);
        self.listener().close().await;
        let peers: Vec<IpAddr> = self.inner.peers.lock().expect("peers lock").keys().copied().collect();
        let futs = peers.into_iter().map(|p| self.remove_peer(p, message.map(Notification::admin_shutdown)));
        for f in futs {
            let _ = f.await;
        }
    }
}

/// The BFD session of one peer: logs its state changes and tears the
/// BGP session down (Cease / BFD Down, RFC 9384) when BFD goes from Up
/// to Down. Ends with the BGP session (when `local` closes).
async fn run_bfd(
    cfg: BfdConfig,
    peer: IpAddr,
    local: watch::Receiver<Option<IpAddr>>,
    mux: Arc<bfd::Mux>,
    seed: u64,
    commands: mpsc::WeakUnboundedSender<Command>,
) {
    let ep = bfd::Endpoint { peer, peer_port: bfd::CONTROL_PORT };
    bfd::driver::run(cfg, ep, local, mux, seed, move |c| {
        let why = bfd::diag::describe(c.diag);
        if c.to == BfdState::Up {
            info!(%peer, from = %c.from, "BFD session up");
        } else if c.from == BfdState::Up {
            warn!(%peer, to = %c.to, diag = why, "BFD session down: tearing down the BGP session");
            if let Some(tx) = commands.upgrade() {
                let n = Notification::new(Cease::BfdDown, vec![]);
                let _ = tx.send(Command::Down(n));
            }
        } else {
            info!(%peer, from = %c.from, to = %c.to, diag = why, "BFD state");
        }
    })
    .await
}

impl listener::Owner for Inner {
    fn accepted(&self, stream: tokio::net::TcpStream, remote: SocketAddr) {
        let ip = remote.ip().to_canonical();
        let peers = self.peers.lock().expect("peers lock");
        match peers.get(&ip) {
            Some(h) => {
                let _ = h.commands.send(Command::Inbound(stream));
            }
            None => {
                drop(peers);
                if let Some(n) = self.refused_log.lock().expect("log lock").allow(Instant::now()) {
                    info!(%remote, "connection from an unconfigured peer refused{}", suppressed_note(n));
                }
            }
        }
    }

    fn md5_keys(&self) -> Vec<(IpAddr, String)> {
        let peers = self.peers.lock().expect("peers lock");
        peers.values().filter_map(|h| Some((h.config.address, h.config.md5_password.clone()?))).collect()
    }
}
