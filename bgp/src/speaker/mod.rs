//! The speaker: peers, the routes to announce, Adj-RIB-Out per peer, and
//! the public API. A [`Speaker`] is a cheap-to-clone handle.
//!
//! Peers are keyed by address and VRF ([`PeerKey`]): the same address may
//! be a peer in two VRFs. A VRF peer's sessions are bound to its VRF
//! device; when the speaker listens, each VRF with peers gets a listener of
//! its own, bound to the device on the same port (a listener in the default
//! VRF does not see connections arriving in a VRF unless
//! `net.ipv4.tcp_l3mdev_accept=1`, which the speaker does not need).
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
mod update_group;

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
pub use config::{MaxPrefixes, PeerConfig, PeerKey, SpeakerConfig};
pub use export::{ExportCtx, Exported, RouteAttrs};
pub use status::{HeldDown, HoldDownCause, ListenerState, PeerEvent, PeerStatus, SpeakerStatus};
pub use table::{Paths, RouteTable};

use crate::bfd::{self, BfdConfig, BfdState};
use crate::fsm::peer::Peer;
use crate::fsm::{Backoff, Fsm, LocalConfig, State};
use crate::log_limit::{suppressed_note, LogLimit};
use crate::session::{Command, Session, Transport};
use crate::wire::{masked, Cease, ExtendedNextHop, Notification};
use listener::Listener;

/// Errors of the speaker API.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("peer {0} exists already")]
    PeerExists(PeerKey),
    #[error("no peer {0}")]
    NoSuchPeer(PeerKey),
    #[error("TCP MD5 for peer {peer}: {error}")]
    Md5 { peer: PeerKey, error: io::Error },
    #[error("cannot listen in vrf {vrf}: {error}")]
    Listen { vrf: String, error: io::Error },
}

pub(crate) struct Shared {
    pub config: SpeakerConfig,
    pub routes: RwLock<RouteTable>,
    /// The peers' Adj-RIBs-Out, one per group of peers sent the same.
    pub groups: update_group::Groups,
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
    peers: Mutex<HashMap<PeerKey, PeerHandle>>,
    events: broadcast::Sender<PeerEvent>,
    /// Set once, right after the speaker is built.
    listener: OnceLock<Arc<Listener>>,
    /// The listener of each VRF that has peers (when the speaker listens).
    vrf_listeners: Mutex<HashMap<String, Arc<Listener>>>,
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
            shared: Arc::new(Shared {
                config,
                routes: RwLock::new(RouteTable::new()),
                groups: update_group::Groups::new(),
            }),
            version: watch::channel(0).0,
            peers: Mutex::new(HashMap::new()),
            events,
            listener: OnceLock::new(),
            vrf_listeners: Mutex::new(HashMap::new()),
            refused_log: Mutex::new(LogLimit::new(10, Duration::from_secs(60))),
            running: AtomicBool::new(true),
            seed: Mutex::new(seed),
            bfd_mux: std::sync::OnceLock::new(),
        });
        let listener = match listen {
            Some(addr) => Listener::start(addr, None, Arc::downgrade(&inner))?,
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

    /// Where each VRF's listening socket is (VRFs with peers, while the
    /// speaker listens).
    pub fn vrf_listener_states(&self) -> std::collections::BTreeMap<String, ListenerState> {
        let l = self.inner.vrf_listeners.lock().expect("vrf listeners lock");
        l.iter().map(|(v, l)| (v.clone(), l.state())).collect()
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

    /// Add a peer and start its session (a VRF peer's listener first, if
    /// the speaker listens and its VRF has none yet).
    pub fn add_peer(&self, cfg: PeerConfig) -> Result<(), SpeakerError> {
        let key = cfg.key();
        let mut peers = self.inner.peers.lock().expect("peers lock");
        if peers.contains_key(&key) {
            return Err(SpeakerError::PeerExists(key));
        }
        let listener = match &cfg.vrf {
            None => Some(self.inner.listener.get().expect("set at start").clone()),
            Some(vrf) => self.vrf_listener(vrf)?,
        };
        if let (Some(pw), Some(l)) = (&cfg.md5_password, &listener) {
            l.set_md5(cfg.address, Some(pw)).map_err(|error| SpeakerError::Md5 { peer: key.clone(), error })?;
        }
        for a in cfg.adjustments() {
            warn!(peer = %key, "{a}");
        }
        if cfg.vrf.is_some() && cfg.bfd.is_some() {
            warn!(peer = %key, "BFD is not supported in a VRF yet: no BFD session for this peer");
        }
        let handle = self.spawn_peer(Arc::new(cfg));
        peers.insert(key, handle);
        Ok(())
    }

    /// The listener of `vrf`, started when there is none and the speaker
    /// listens; `None` when it does not listen.
    fn vrf_listener(&self, vrf: &str) -> Result<Option<Arc<Listener>>, SpeakerError> {
        let Some(addr) = self.inner.shared.config.listen else { return Ok(None) };
        let mut ls = self.inner.vrf_listeners.lock().expect("vrf listeners lock");
        if let Some(l) = ls.get(vrf) {
            return Ok(Some(l.clone()));
        }
        let l = Listener::start(addr, Some(vrf.to_string()), Arc::downgrade(&self.inner))
            .map_err(|error| SpeakerError::Listen { vrf: vrf.to_string(), error })?;
        ls.insert(vrf.to_string(), l.clone());
        Ok(Some(l))
    }

    /// The listener `key`'s connections arrive on, if any.
    fn listener_of(&self, key: &PeerKey) -> Option<Arc<Listener>> {
        match &key.vrf {
            None => self.inner.listener.get().cloned(),
            Some(v) => self.inner.vrf_listeners.lock().expect("vrf listeners lock").get(v).cloned(),
        }
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
            // RFC 8950 on IPv6 sessions: IPv4 routes can then go with an
            // IPv6 next hop (used only when no IPv4 one is known).
            extended_next_hop: if cfg.address.to_canonical().is_ipv6() {
                vec![ExtendedNextHop::IPV4_OVER_IPV6]
            } else {
                vec![]
            },
            graceful_restart: sc.graceful_restart.clone(),
            add_path: cfg.add_path.clone(),
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
            device: cfg.vrf.clone(),
        };
        let mut initial = PeerStatus::new(cfg.address, cfg.remote_as);
        initial.bfd = cfg.bfd.filter(|_| cfg.vrf.is_none()).map(|_| BfdState::Down);
        initial.vrf = cfg.vrf.clone();
        let status = Arc::new(Mutex::new(initial));
        let seed = {
            let mut s = self.inner.seed.lock().expect("seed lock");
            *s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *s
        };
        let fsm = Fsm::new(local, Backoff::default(), seed);
        let mut handler =
            peer::PeerSession::new(cfg.clone(), self.inner.shared.clone(), status.clone(), self.inner.events.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        // BFD's sockets are not bound to a VRF (yet): no BFD in a VRF.
        let bfd_task = cfg.bfd.filter(|_| cfg.vrf.is_none()).map(|b| {
            let (local_tx, local_rx) = watch::channel(cfg.source);
            handler.bfd_local = Some(local_tx);
            let mux = self.inner.bfd_mux.get_or_init(|| bfd::Mux::new(bfd::CONTROL_PORT)).clone();
            tokio::spawn(run_bfd(b, cfg.address, local_rx, mux, seed, tx.downgrade(), status.clone()))
        });
        let routes = self.inner.version.subscribe();
        let task = tokio::spawn(Session::new(Peer::new(fsm), transport, handler).run(rx, routes));
        PeerHandle { config: cfg, commands: tx, status, task, bfd_task }
    }

    /// Apply a new configuration to a peer: nothing happens when it did
    /// not change, otherwise only that peer's session restarts.
    pub async fn update_peer(&self, cfg: PeerConfig) -> Result<(), SpeakerError> {
        let key = cfg.key();
        let same = {
            let peers = self.inner.peers.lock().expect("peers lock");
            match peers.get(&key) {
                Some(h) => *h.config == cfg,
                None => return Err(SpeakerError::NoSuchPeer(key)),
            }
        };
        if same {
            return Ok(());
        }
        self.remove_peer(
            key,
            // RFC 9003 carries a message in Administrative Shutdown and Reset only.
            Some(Notification::new(Cease::OtherConfigurationChange, vec![])),
        )
        .await?;
        self.add_peer(cfg)
    }

    /// Stop a peer's session (with this NOTIFICATION, or none) and forget
    /// it; a VRF's listener closes with its last peer. `peer`: an address
    /// (the default VRF) or a [`PeerKey`].
    pub async fn remove_peer(
        &self,
        peer: impl Into<PeerKey>,
        notification: Option<Notification>,
    ) -> Result<(), SpeakerError> {
        let key = peer.into();
        let (h, vrf_emptied) = {
            let mut peers = self.inner.peers.lock().expect("peers lock");
            let h = peers.remove(&key);
            let emptied = key.vrf.as_ref().filter(|v| !peers.keys().any(|k| k.vrf.as_ref() == Some(*v))).cloned();
            (h, emptied)
        };
        let Some(h) = h else { return Err(SpeakerError::NoSuchPeer(key)) };
        let address = key.address;
        if h.config.md5_password.is_some() {
            if let Some(Err(e)) = self.listener_of(&key).map(|l| l.set_md5(address, None)) {
                warn!(peer = %key, error = %e, "cannot remove TCP MD5 key");
            }
        }
        let vrf_listener =
            vrf_emptied.and_then(|v| self.inner.vrf_listeners.lock().expect("vrf listeners lock").remove(&v));
        if let Some(l) = vrf_listener {
            l.close().await;
        }
        if let Some(t) = &h.bfd_task {
            t.abort();
        }
        let _ = h.commands.send(Command::Shutdown(notification));
        if tokio::time::timeout(Duration::from_secs(5), h.task).await.is_err() {
            warn!(peer = %key, "session did not stop within 5 s");
        }
        Ok(())
    }

    /// The configured peers.
    pub fn peer_configs(&self) -> Vec<PeerConfig> {
        self.inner.peers.lock().expect("peers lock").values().map(|h| (*h.config).clone()).collect()
    }

    /// One peer's status; `peer`: an address (the default VRF) or a [`PeerKey`].
    pub fn peer_status(&self, peer: impl Into<PeerKey>) -> Option<PeerStatus> {
        let peers = self.inner.peers.lock().expect("peers lock");
        peers.get(&peer.into()).map(|h| h.status.lock().expect("status lock").clone())
    }

    /// Every peer's status, by address, then VRF.
    pub fn peers(&self) -> Vec<PeerStatus> {
        let peers = self.inner.peers.lock().expect("peers lock");
        let mut v: Vec<PeerStatus> = peers.values().map(|h| h.status.lock().expect("status lock").clone()).collect();
        v.sort_by(|a, b| (a.address, &a.vrf).cmp(&(b.address, &b.vrf)));
        v
    }

    /// Session state changes of every peer.
    pub fn subscribe(&self) -> broadcast::Receiver<PeerEvent> {
        self.inner.events.subscribe()
    }

    fn changed(&self) {
        self.inner.version.send_modify(|v| *v += 1);
    }

    /// Announce (or re-announce with new attributes) a prefix, to every
    /// peer its attributes are for.
    pub fn announce(&self, prefix: IpNetwork, attrs: RouteAttrs) {
        self.announce_many(std::iter::once((prefix, attrs)));
    }

    /// Announce many prefixes at once; prefixes with equal attributes share
    /// them. A prefix given twice has both paths (see [`Speaker::set_routes`]).
    pub fn announce_many(&self, routes: impl IntoIterator<Item = (IpNetwork, RouteAttrs)>) {
        let new = paths_of(routes);
        {
            let mut table = self.inner.shared.routes.write().expect("route table lock");
            for (p, a) in new {
                table.insert(p, a);
            }
        }
        self.changed();
    }

    pub fn withdraw(&self, prefix: IpNetwork) {
        self.inner.shared.routes.write().expect("route table lock").remove(&masked(prefix));
        self.changed();
    }

    /// Replace every route by `routes` (only the difference goes out). A
    /// prefix given more than once gets each as a path, in the order given:
    /// a peer is sent the first one [`RouteAttrs::to`] says is for it.
    pub fn set_routes(&self, routes: impl IntoIterator<Item = (IpNetwork, RouteAttrs)>) {
        let new = paths_of(routes);
        self.inner.shared.routes.write().expect("route table lock").replace(new);
        self.changed();
    }

    /// How many prefixes are announced.
    pub fn route_count(&self) -> usize {
        self.inner.shared.routes.read().expect("route table lock").len()
    }

    /// The routes announced, sorted by prefix (a prefix's paths in order).
    pub fn routes(&self) -> Vec<(IpNetwork, RouteAttrs)> {
        let table = self.inner.shared.routes.read().expect("route table lock");
        let mut v: Vec<(IpNetwork, RouteAttrs)> =
            table.iter().flat_map(|(p, paths)| paths.iter().map(|a| (*p, a.clone()))).collect();
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
        let vrf_listeners: Vec<Arc<Listener>> =
            self.inner.vrf_listeners.lock().expect("vrf listeners lock").drain().map(|(_, l)| l).collect();
        for l in vrf_listeners {
            l.close().await;
        }
        let peers: Vec<PeerKey> = self.inner.peers.lock().expect("peers lock").keys().cloned().collect();
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
    status: Arc<Mutex<PeerStatus>>,
) {
    let ep = bfd::Endpoint { peer, peer_port: bfd::CONTROL_PORT };
    bfd::driver::run(cfg, ep, local, mux, seed, move |c| {
        status.lock().expect("status lock").bfd = Some(c.to);
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
    fn accepted(&self, stream: tokio::net::TcpStream, remote: SocketAddr, vrf: Option<&str>) {
        let key = PeerKey { vrf: vrf.map(String::from), address: remote.ip().to_canonical() };
        let peers = self.peers.lock().expect("peers lock");
        match peers.get(&key) {
            Some(h) => {
                let _ = h.commands.send(Command::Inbound(stream));
            }
            None => {
                drop(peers);
                if let Some(n) = self.refused_log.lock().expect("log lock").allow(Instant::now()) {
                    info!(%remote, vrf = vrf.unwrap_or("default"), "connection from an unconfigured peer refused{}", suppressed_note(n));
                }
            }
        }
    }

    fn md5_keys(&self, vrf: Option<&str>) -> Vec<(IpAddr, String)> {
        let peers = self.peers.lock().expect("peers lock");
        peers
            .values()
            .filter(|h| h.config.vrf.as_deref() == vrf)
            .filter_map(|h| Some((h.config.address, h.config.md5_password.clone()?)))
            .collect()
    }
}

/// Routes grouped into each prefix's paths (in the order given), equal path
/// sets sharing one allocation.
fn paths_of(routes: impl IntoIterator<Item = (IpNetwork, RouteAttrs)>) -> Vec<(IpNetwork, Paths)> {
    let mut by_prefix: Vec<(IpNetwork, Vec<RouteAttrs>)> = vec![];
    let mut index: HashMap<IpNetwork, usize> = HashMap::new();
    for (p, a) in routes {
        let p = masked(p);
        match index.get(&p) {
            Some(&i) => by_prefix[i].1.push(a),
            None => {
                index.insert(p, by_prefix.len());
                by_prefix.push((p, vec![a]));
            }
        }
    }
    let mut interned: HashMap<Vec<RouteAttrs>, Paths> = HashMap::new();
    by_prefix.into_iter().map(|(p, v)| (p, interned.entry(v.clone()).or_insert_with(|| Arc::from(v)).clone())).collect()
}
