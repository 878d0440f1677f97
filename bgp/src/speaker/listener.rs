//! The speaker's listening socket: bound at start, or bound again and
//! again with back-off while its address is taken (an older speaker still
//! closing) or not configured on the host yet; the accept loop that hands
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
    /// A connection arrived.
    fn accepted(&self, stream: TcpStream, remote: SocketAddr);
    /// The TCP MD5 keys of the peers that have one, to install on a
    /// socket bound late.
    fn md5_keys(&self) -> Vec<(IpAddr, String)>;
}

/// The first retry after this, doubling up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Whether binding may work later: the address is taken (by a socket
/// that is closing) or not (yet) on an interface.
fn retryable(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable)
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
    slot: Mutex<Slot>,
}

impl Listener {
    pub fn disabled() -> Arc<Listener> {
        Arc::new(Listener { slot: Mutex::new(Slot { state: ListenerState::Disabled, socket: None, task: None }) })
    }

    /// Bind `addr` and accept on it; when the address is taken or not
    /// available, retry in the background. Other errors (permissions, a
    /// bad address) are returned.
    pub fn start<O: Owner>(addr: SocketAddr, owner: Weak<O>) -> io::Result<Arc<Listener>> {
        let (state, bound) = match socket::listener(addr) {
            Ok(l) => {
                let at = l.local_addr()?;
                info!(bound = %at, "listening for BGP");
                (ListenerState::Listening(at), Some((Arc::new(l), at)))
            }
            Err(e) if retryable(&e) => {
                warn!(%addr, error = %e, "cannot listen for BGP yet: retrying");
                (ListenerState::Retrying { addr, error: e.to_string(), attempts: 1 }, None)
            }
            Err(e) => return Err(e),
        };
        let me = Arc::new(Listener { slot: Mutex::new(Slot { state, socket: bound.clone(), task: None }) });
        let weak = Arc::downgrade(&me);
        let task = match bound {
            Some((l, _)) => tokio::spawn(accept_loop(l, owner)),
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
    let bound = loop {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY);
        let Some(listener) = me.upgrade() else { return };
        match try_bind(&listener, addr, &owner, &mut log) {
            Some(Ok(l)) => break l,
            Some(Err(())) => return,
            None => {}
        }
    };
    accept_loop(bound, owner).await
}

/// One more attempt: the socket when bound, `Err` when closed meanwhile,
/// `None` to try again later.
fn try_bind<O: Owner>(
    listener: &Listener,
    addr: SocketAddr,
    owner: &Weak<O>,
    log: &mut LogLimit,
) -> Option<Result<Arc<TcpListener>, ()>> {
    let mut s = listener.slot();
    if s.state == ListenerState::Closed {
        return Some(Err(()));
    }
    match socket::listener(addr).and_then(|l| Ok((l.local_addr()?, l))) {
        Ok((at, l)) => {
            if let Some(o) = owner.upgrade() {
                for (peer, key) in o.md5_keys() {
                    if let Err(e) = socket::set_listener_md5(&l, at, peer, Some(&key)) {
                        warn!(%peer, error = %e, "cannot install TCP MD5 key");
                    }
                }
            }
            info!(bound = %at, "listening for BGP");
            let l = Arc::new(l);
            s.state = ListenerState::Listening(at);
            s.socket = Some((l.clone(), at));
            Some(Ok(l))
        }
        Err(e) => {
            let attempts = match &s.state {
                ListenerState::Retrying { attempts, .. } => attempts + 1,
                _ => 1,
            };
            if let Some(n) = log.allow(Instant::now()) {
                warn!(%addr, error = %e, attempts, "cannot listen for BGP yet: retrying{}", suppressed_note(n));
            }
            s.state = ListenerState::Retrying { addr, error: e.to_string(), attempts };
            None
        }
    }
}

async fn accept_loop<O: Owner>(listener: Arc<TcpListener>, owner: Weak<O>) {
    let mut log = LogLimit::new(5, Duration::from_secs(60));
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let Some(o) = owner.upgrade() else { return };
                o.accepted(stream, remote);
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
