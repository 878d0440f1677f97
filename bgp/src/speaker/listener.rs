//! A listening socket of the speaker (the default one, or one bound to a
//! VRF device for that VRF's peers): bound at start, or bound again and
//! again with back-off while its address is taken (an older speaker still
//! closing), not configured on the host yet, or its VRF device does not
//! exist yet; the accept loop that hands
//! connections to the speaker; and its release: [`Listener::close`]
//! returns once the socket is closed, so a new speaker can bind the same
//! address at once. What happens to a connection is the owner's business
//! ([`Owner`]).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::log_limit::{suppressed_note, LogLimit};
use crate::session::socket;

/// Where the speaker's listening socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerState {
    /// No listening address configured: the speaker only dials out.
    Disabled,
    /// Accepting connections on this address.
    Listening(SocketAddr),
    /// Binding `addr` failed (`error`, `attempts` times so far); retrying
    /// with back-off. Sessions the speaker dials work meanwhile.
    Retrying { addr: SocketAddr, error: String, attempts: u32 },
    /// The speaker was shut down and the socket is closed.
    Closed,
}

/// What the listener reports to.
pub(crate) trait Owner: Send + Sync + 'static {
    /// A connection arrived on the listener bound to `vrf` (`None`: the
    /// default one).
    fn accepted(&self, stream: TcpStream, remote: SocketAddr, vrf: Option<&str>);
    /// The TCP MD5 keys of the peers in `vrf` that have one, to install
    /// on a socket bound late.
    fn md5_keys(&self, vrf: Option<&str>) -> Vec<(IpAddr, String)>;
}

/// The first retry after this, doubling up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Whether binding may work later: the address is taken (by a socket
/// that is closing) or not (yet) on an interface, or the VRF device is
/// not there (yet).
fn retryable(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable)
        || e.raw_os_error() == Some(libc::ENODEV)
}

#[derive(Debug)]
struct Slot {
    state: ListenerState,
    socket: Option<(Arc<TcpListener>, SocketAddr)>,
    task: Option<JoinHandle<()>>,
}

/// The listening socket and its task.
#[derive(Debug)]
pub(crate) struct Listener {
    /// The VRF device it is bound to; `None`: the default listener.
    vrf: Option<String>,
    slot: Mutex<Slot>,
}

impl Listener {
    pub fn disabled() -> Arc<Listener> {
        Arc::new(Listener {
            vrf: None,
            slot: Mutex::new(Slot { state: ListenerState::Disabled, socket: None, task: None }),
        })
    }

    /// Bind `addr` (on the device `vrf`, when given) and accept on it;
    /// when the address is taken or not available or the device is
    /// missing, retry in the background. Other errors (permissions, a bad
    /// address) are returned.
    pub fn start<O: Owner>(addr: SocketAddr, vrf: Option<String>, owner: Weak<O>) -> io::Result<Arc<Listener>> {
        let vrf_name = vrf.as_deref().unwrap_or("default");
        let (state, bound) = match socket::listener(addr, vrf.as_deref()) {
            Ok(l) => {
                let at = l.local_addr()?;
                info!(bound = %at, vrf = vrf_name, "listening for BGP");
                (ListenerState::Listening(at), Some((Arc::new(l), at)))
            }
            Err(e) if retryable(&e) => {
                warn!(%addr, vrf = vrf_name, error = %e, "cannot listen for BGP yet: retrying");
                (ListenerState::Retrying { addr, error: e.to_string(), attempts: 1 }, None)
            }
            Err(e) => return Err(e),
        };
        let me = Arc::new(Listener {
            vrf: vrf.clone(),
            slot: Mutex::new(Slot { state, socket: bound.clone(), task: None }),
        });
        let weak = Arc::downgrade(&me);
        let task = match bound {
            Some((l, _)) => tokio::spawn(accept_loop(l, vrf, owner)),
            None => tokio::spawn(bind_then_accept(weak, addr, owner)),
        };
        me.slot().task = Some(task);
        Ok(me)
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().expect("listener lock")
    }

    pub fn state(&self) -> ListenerState {
        self.slot().state.clone()
    }

    /// The address bound, while listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.slot().socket.as_ref().map(|(_, a)| *a)
    }

    /// Install (or remove) the TCP MD5 key for `peer` on the socket; a
    /// socket bound later gets every key from [`Owner::md5_keys`].
    pub fn set_md5(&self, peer: IpAddr, key: Option<&str>) -> io::Result<()> {
        match &self.slot().socket {
            Some((l, at)) => socket::set_listener_md5(l, *at, peer, key),
            None => Ok(()),
        }
    }

    /// Stop accepting and close the socket; returns once it is closed.
    pub async fn close(&self) {
        let (task, socket) = {
            let mut s = self.slot();
            if s.state != ListenerState::Disabled {
                s.state = ListenerState::Closed;
            }
            (s.task.take(), s.socket.take())
        };
        if let Some(t) = task {
            t.abort();
            // The task (and its reference to the socket) is gone once this returns.
            let _ = t.await;
        }
        drop(socket);
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Without `close`: the socket closes when the runtime drops the task.
        if let Some(t) = self.slot.get_mut().map(|s| s.task.take()).ok().flatten() {
            t.abort();
        }
    }
}

async fn bind_then_accept<O: Owner>(me: Weak<Listener>, addr: SocketAddr, owner: Weak<O>) {
    let mut delay = FIRST_RETRY;
    let mut log = LogLimit::new(5, Duration::from_secs(60));
    let (bound, vrf) = loop {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY);
        let Some(listener) = me.upgrade() else { return };
        match try_bind(&listener, addr, &owner, &mut log) {
            Some(Ok(l)) => break (l, listener.vrf.clone()),
            Some(Err(())) => return,
            None => {}
        }
    };
    accept_loop(bound, vrf, owner).await
}

/// One more attempt: the socket when bound, `Err` when closed meanwhile,
/// `None` to try again later.
///
/// The slot is not locked while the owner's keys are read (the owner
/// holds its peers' lock while it installs a key through
/// [`Listener::set_md5`], which locks the slot): the keys are installed
/// before the socket is published and once more after, so a peer added
/// in between has its key either way.
fn try_bind<O: Owner>(
    listener: &Listener,
    addr: SocketAddr,
    owner: &Weak<O>,
    log: &mut LogLimit,
) -> Option<Result<Arc<TcpListener>, ()>> {
    if listener.slot().state == ListenerState::Closed {
        return Some(Err(()));
    }
    let vrf = listener.vrf.as_deref();
    let vrf_name = vrf.unwrap_or("default");
    let install = |l: &TcpListener, at: SocketAddr| {
        for (peer, key) in owner.upgrade().map(|o| o.md5_keys(vrf)).unwrap_or_default() {
            if let Err(e) = socket::set_listener_md5(l, at, peer, Some(&key)) {
                warn!(%peer, vrf = vrf_name, error = %e, "cannot install TCP MD5 key");
            }
        }
    };
    match socket::listener(addr, vrf).and_then(|l| Ok((l.local_addr()?, l))) {
        Ok((at, l)) => {
            install(&l, at);
            let l = Arc::new(l);
            {
                let mut s = listener.slot();
                if s.state == ListenerState::Closed {
                    return Some(Err(()));
                }
                s.state = ListenerState::Listening(at);
                s.socket = Some((l.clone(), at));
            }
            install(&l, at);
            info!(bound = %at, vrf = vrf_name, "listening for BGP");
            Some(Ok(l))
        }
        Err(e) => {
            let mut s = listener.slot();
            if s.state == ListenerState::Closed {
                return Some(Err(()));
            }
            let attempts = match &s.state {
                ListenerState::Retrying { attempts, .. } => attempts + 1,
                _ => 1,
            };
            if let Some(n) = log.allow(Instant::now()) {
                warn!(%addr, vrf = vrf_name, error = %e, attempts, "cannot listen for BGP yet: retrying{}", suppressed_note(n));
            }
            s.state = ListenerState::Retrying { addr, error: e.to_string(), attempts };
            None
        }
    }
}

async fn accept_loop<O: Owner>(listener: Arc<TcpListener>, vrf: Option<String>, owner: Weak<O>) {
    let mut log = LogLimit::new(5, Duration::from_secs(60));
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let Some(o) = owner.upgrade() else { return };
                o.accepted(stream, remote, vrf.as_deref());
            }
            Err(e) => {
                // Out of file descriptors, say: back off instead of spinning.
                if let Some(n) = log.allow(Instant::now()) {
                    warn!(error = %e, "accept failed{}", suppressed_note(n));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
