//! The tokio driver of one peer: dials and holds its TCP connections,
//! frames and decodes what they carry, writes what it is told to, and
//! sleeps until the next timer. Every decision (which connection of a
//! collision lives, RFC 4271 section 6.8; timers; the FSM) is the sans-IO
//! [`Peer`]'s; what the session carries (routes out, routes in) is the
//! [`Handler`]'s.

mod buffers;
mod deadline;
pub mod socket;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

pub use buffers::{ReadBuf, READ_MAX, READ_MIN, WRITE_KEEP};
pub use deadline::Deadline;
pub use socket::Transport;

use crate::fsm::peer::{ConnId, Discard, Input, Output, Peer};
use crate::fsm::{DownReason, SessionParams, State};
use crate::log_limit::{suppressed_note, LogLimit};
use crate::wire::{frame_len, AttrMemo, Family, Message, Negotiated, Notification, Update};

/// What the handler asks for when an UPDATE breaks a limit: tear the
/// session down with this NOTIFICATION and stay down for `restart_after`
/// (`None`: until the peer is configured again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Teardown {
    pub notification: Notification,
    pub restart_after: Option<Duration>,
}

/// What a session carries, called from the session task. Output is
/// appended to `out` and written after the call. `now` is the time the
/// batch of input being handled was read.
pub trait Handler: Send + 'static {
    /// The session state changed.
    fn state_changed(&mut self, from: State, to: State);
    /// The session is Established: send the initial routes and End-of-RIB.
    fn established(&mut self, params: &SessionParams, local: SocketAddr, now: Instant, out: &mut BytesMut);
    /// The speaker's routes changed (while Established): send the difference.
    fn routes_changed(&mut self, out: &mut BytesMut);
    /// An UPDATE arrived. A [`Teardown`] ends the session (e.g. maximum
    /// prefixes reached).
    fn update(&mut self, update: Update, now: Instant) -> Option<Teardown>;
    /// The peer asked for our routes of `family` again.
    fn route_refresh(&mut self, family: Family, out: &mut BytesMut);
    /// The session left Established (or its handshake failed after OPEN).
    fn down(&mut self, reason: &DownReason, now: Instant);
    /// Called about once a second while [`Handler::wants_tick`] says so:
    /// time-based housekeeping (stale routes of a peer restarting
    /// gracefully expire here).
    fn tick(&mut self, _now: Instant) {}
    /// Whether [`Handler::tick`] has anything to do (an idle session then
    /// wakes only for its own timers).
    fn wants_tick(&self) -> bool {
        true
    }
    /// Counters: a message was sent / received.
    fn count_sent(&mut self, messages: usize, updates: usize);
    fn count_received(&mut self, message: &Message);
    /// Every whole message read so far has been handled (called once per
    /// batch, so per-message bookkeeping can be published here).
    fn input_drained(&mut self) {}
}

/// Commands to a running session.
#[derive(Debug)]
pub enum Command {
    /// Stop with this NOTIFICATION (or none: graceful restart) and end the task.
    Shutdown(Option<Notification>),
    /// A connection from the peer, accepted by the shared listener.
    Inbound(TcpStream),
    /// Tear down an Established session at once with this NOTIFICATION
    /// (e.g. Cease / BFD Down) and start again; ignored when not Established.
    Down(Notification),
}

/// Writes that take longer than this fail the connection (a peer that
/// stopped reading is gone; its hold timer would say the same).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One TCP connection: its halves and buffers.
struct Conn {
    id: ConnId,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    rbuf: ReadBuf,
    wbuf: BytesMut,
    local: SocketAddr,
}

impl Conn {
    fn new(id: ConnId, stream: TcpStream) -> io::Result<Conn> {
        let local = stream.local_addr()?;
        let (reader, writer) = stream.into_split();
        Ok(Conn { id, reader, writer, rbuf: ReadBuf::new(), wbuf: BytesMut::new(), local })
    }
}

type ConnectFuture = std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<TcpStream>> + Send>>;

async fn connect(t: Transport, timeout: Duration) -> io::Result<TcpStream> {
    let socket = socket::outbound_socket(&t)?;
    match tokio::time::timeout(timeout, socket.connect(t.remote)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

/// The session task. Runs until [`Command::Shutdown`] or until the
/// command channel closes.
#[allow(missing_debug_implementations)]
pub struct Session<H: Handler> {
    peer: Peer,
    transport: Transport,
    handler: H,
    /// Open connections (two at most during a collision).
    conns: Vec<Conn>,
    connecting: Option<(ConnId, ConnectFuture)>,
    /// The connection carrying the Established session.
    session: Option<ConnId>,
    inputs: VecDeque<Input>,
    /// The peer machine's outputs for one input (kept to reuse the allocation).
    outputs: Vec<Output>,
    /// Wire format of what the session connection's peer sends.
    rx: Negotiated,
    /// Attribute lists decoded with `rx` (cleared whenever `rx` changes).
    memo: AttrMemo,
    tx: Negotiated,
    /// The time of the batch being handled.
    now: Instant,
    shutting_down: bool,
    /// For lines about connections closed beside the session.
    discard_log: LogLimit,
    /// The peer machine's next timer, armed only when it moves.
    deadline: Deadline,
}

impl<H: Handler> Session<H> {
    pub fn new(peer: Peer, transport: Transport, handler: H) -> Self {
        Session {
            peer,
            transport,
            handler,
            conns: Vec::with_capacity(2),
            connecting: None,
            session: None,
            inputs: VecDeque::new(),
            outputs: Vec::new(),
            rx: Negotiated::default(),
            memo: AttrMemo::new(),
            tx: Negotiated::default(),
            now: Instant::now(),
            shutting_down: false,
            discard_log: LogLimit::new(10, Duration::from_secs(60)),
            deadline: Deadline::new(),
        }
    }

    /// Feed queued inputs and whole messages read to the peer machine and
    /// carry out its outputs until nothing is left, then write.
    async fn pump(&mut self) {
        loop {
            // One clock reading per batch: the messages of one read
            // arrived together, and `now` only places timer deadlines.
            self.now = Instant::now();
            while let Some(input) = self.inputs.pop_front().or_else(|| self.next_message()) {
                let mut out = std::mem::take(&mut self.outputs);
                self.peer.handle(input, self.now, &mut out);
                self.act_all(&mut out);
                self.outputs = out;
            }
            self.handler.input_drained();
            if self.flush().await {
                break;
            }
        }
    }

    fn act_all(&mut self, out: &mut Vec<Output>) {
        for o in out.drain(..) {
            self.act(o);
        }
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    /// Write pending output. False when a write failed (a Closed input is queued).
    async fn flush(&mut self) -> bool {
        let mut ok = true;
        let mut i = 0;
        while i < self.conns.len() {
            let conn = &mut self.conns[i];
            if conn.wbuf.is_empty() {
                i += 1;
                continue;
            }
            let r = tokio::time::timeout(WRITE_TIMEOUT, conn.writer.write_all(&conn.wbuf)).await;
            buffers::written(&mut conn.wbuf);
            let failed = match r {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("the peer stopped reading for {WRITE_TIMEOUT:?}")),
            };
            match failed {
                None => i += 1,
                Some(why) => {
                    let id = self.conns.remove(i).id;
                    warn!(peer = %self.transport.remote, conn = %id, "write failed: {why}");
                    self.inputs.push_back(Input::Closed(id));
                    ok = false;
                }
            }
        }
        ok
    }

    fn act(&mut self, o: Output) {
        let peer = self.transport.remote;
        match o {
            Output::Connect(id) => {
                let timeout = self.peer.config().connect_retry.max(Duration::from_secs(1));
                self.connecting = Some((id, Box::pin(connect(self.transport.clone(), timeout))));
            }
            Output::Send(id, m) => {
                let ctx = if self.session == Some(id) { self.tx } else { Negotiated::default() };
                let Some(conn) = self.conn_mut(id) else { return };
                match m.encode(&ctx, &mut conn.wbuf) {
                    Ok(()) => self.handler.count_sent(1, 0),
                    Err(e) => warn!(%peer, error = %e, "cannot encode {}", m.name()),
                }
            }
            Output::Close(id) => self.close(id),
            Output::StateChanged { from, to } => {
                info!(%peer, %from, %to, "session state");
                self.handler.state_changed(from, to);
            }
            Output::Established(id, p) => self.established(id, &p),
            Output::Down(reason) => {
                info!(%peer, %reason, "session down");
                self.session = None;
                self.rx = Negotiated::default();
                self.memo.clear();
                self.tx = Negotiated::default();
                self.handler.down(&reason, self.now);
            }
            Output::Update(u) => {
                if let Some(t) = self.handler.update(u, self.now) {
                    let until = t.restart_after.map(|d| self.now + d);
                    self.inputs.push_back(Input::HoldDown { notification: t.notification, until });
                }
            }
            Output::RouteRefresh(f) => {
                if let Some(conn) = self.session.and_then(|id| self.conns.iter_mut().find(|c| c.id == id)) {
                    self.handler.route_refresh(f, &mut conn.wbuf);
                }
            }
            Output::RefreshMarker(..) => {}
            Output::Discarded { conn, why } => self.log_discard(conn, &why),
        }
    }

    fn established(&mut self, id: ConnId, p: &SessionParams) {
        self.session = Some(id);
        self.rx = p.rx;
        self.memo.clear();
        self.tx = p.tx;
        let now = self.now;
        if let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) {
            self.handler.established(p, conn.local, now, &mut conn.wbuf);
        }
    }

    fn log_discard(&mut self, conn: ConnId, why: &Discard) {
        let peer = self.transport.remote;
        match why {
            // A collision is part of normal operation when both sides dial.
            Discard::Collision { .. } | Discard::Replaced { .. } | Discard::Stopped => {
                debug!(%peer, %conn, "connection closed: {why}")
            }
            _ => {
                if let Some(n) = self.discard_log.allow(self.now) {
                    info!(%peer, %conn, "connection closed: {why}{}", suppressed_note(n));
                }
            }
        }
    }

    /// Close a connection after writing what it still has to send (a
    /// NOTIFICATION), or abandon the attempt to dial it.
    fn close(&mut self, id: ConnId) {
        if self.connecting.as_ref().is_some_and(|(c, _)| *c == id) {
            self.connecting = None;
            return;
        }
        if self.session == Some(id) {
            self.session = None;
        }
        let Some(i) = self.conns.iter().position(|c| c.id == id) else { return };
        let mut conn = self.conns.remove(i);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                conn.writer.write_all(&conn.wbuf).await?;
                conn.writer.shutdown().await
            })
            .await;
        });
    }

    /// Run the session.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, mut routes: watch::Receiver<u64>) {
        let peer = self.transport.remote;
        self.inputs.push_back(Input::Start);
        self.pump().await;
        let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.shutting_down && self.peer.state() == State::Idle && self.peer.connections().next().is_none() {
                break;
            }
            // One deadline per session: a message that moves only the
            // hold timer (behind the keepalive's) re-arms nothing.
            self.deadline.set(self.peer.poll_timeout());
            let deadline = &mut self.deadline;
            let (a, b) = match self.conns.as_mut_slice() {
                [] => (None, None),
                [a] => (Some(a), None),
                [a, b, ..] => (Some(a), Some(b)),
            };
            let (id_a, id_b) = (a.as_ref().map(|c| c.id), b.as_ref().map(|c| c.id));
            // The longest message each connection accepts (for its read buffer).
            let max_len = |id: Option<ConnId>| {
                if id.is_some() && id == self.session { self.rx } else { Negotiated::default() }.max_message_len()
            };
            let (max_a, max_b) = (max_len(id_a), max_len(id_b));
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown(n)) => {
                        self.shutting_down = true;
                        self.inputs.push_back(Input::Stop(n));
                    }
                    Some(Command::Inbound(s)) => self.inbound(s),
                    Some(Command::Down(n)) => self.inputs.push_back(Input::Reset(n)),
                    None => {
                        self.shutting_down = true;
                        self.inputs.push_back(Input::Stop(Some(Notification::admin_shutdown("peer removed"))));
                    }
                },
                r = read(a, max_a), if id_a.is_some() => self.received(id_a, r),
                r = read(b, max_b), if id_b.is_some() => self.received(id_b, r),
                res = async { self.connecting.as_mut().expect("guarded").1.as_mut().await }, if self.connecting.is_some() => {
                    let (id, _) = self.connecting.take().expect("guarded");
                    match res.and_then(|s| Conn::new(id, s)) {
                        Ok(c) => {
                            debug!(%peer, local = %c.local, conn = %id, "connected");
                            self.conns.push(c);
                            self.inputs.push_back(Input::Connected(id));
                        }
                        Err(e) => {
                            debug!(%peer, error = %e, "connect failed");
                            self.inputs.push_back(Input::ConnectFailed(id));
                        }
                    }
                }
                _ = routes.changed() => {
                    if let Some(conn) = self.session.and_then(|id| self.conns.iter_mut().find(|c| c.id == id)) {
                        self.handler.routes_changed(&mut conn.wbuf);
                    }
                }
                _ = housekeeping.tick(), if self.handler.wants_tick() => self.handler.tick(Instant::now()),
                _ = deadline.wait(), if deadline.armed().is_some() => {
                    self.now = Instant::now();
                    let mut out = std::mem::take(&mut self.outputs);
                    self.peer.handle_timeout(self.now, &mut out);
                    self.act_all(&mut out);
                    self.outputs = out;
                }
            }
            self.pump().await;
        }
        // Flush whatever the stop produced (the Cease NOTIFICATION).
        self.flush().await;
    }

    /// Bytes arrived on a connection (they wait in its read buffer), or it ended.
    fn received(&mut self, id: Option<ConnId>, r: io::Result<usize>) {
        let id = id.expect("guarded");
        if matches!(r, Ok(0) | Err(_)) {
            self.conns.retain(|c| c.id != id);
            if self.session == Some(id) {
                self.session = None;
            }
            self.inputs.push_back(Input::Closed(id));
        }
    }

    /// A connection the listener accepted from the peer's address.
    fn inbound(&mut self, stream: TcpStream) {
        let peer = self.transport.remote;
        if let Err(e) = socket::apply_inbound(&stream, &self.transport) {
            warn!(%peer, error = %e, "cannot set transport options on inbound connection");
        }
        self.now = Instant::now();
        let mut out = std::mem::take(&mut self.outputs);
        let id = self.peer.accept(self.now, &mut out);
        match Conn::new(id, stream) {
            Ok(c) => self.conns.push(c),
            Err(e) => {
                warn!(%peer, error = %e, "inbound connection unusable");
                self.inputs.push_back(Input::Closed(id));
            }
        }
        self.act_all(&mut out);
        self.outputs = out;
    }

    /// The next whole message in a read buffer, decoded with what the
    /// session has negotiated *by now*: messages are taken one at a time,
    /// so an UPDATE that arrives in the same segment as the KEEPALIVE that
    /// completes the handshake is decoded with the negotiated 4-octet AS
    /// and extended-message settings, not the defaults.
    fn next_message(&mut self) -> Option<Input> {
        for conn in self.conns.iter_mut() {
            let on_session = self.session == Some(conn.id);
            let ctx = if on_session { self.rx } else { Negotiated::default() };
            let rbuf = &mut conn.rbuf.data;
            match frame_len(rbuf, ctx.max_message_len()) {
                Ok(Some(len)) if rbuf.len() >= len => {
                    let memo = if on_session { Some(&mut self.memo) } else { None };
                    let decoded = Message::decode_with(&rbuf[..len], &ctx, memo);
                    rbuf.advance(len);
                    return Some(match decoded {
                        Ok(m) => {
                            self.handler.count_received(&m);
                            Input::Message(conn.id, m)
                        }
                        Err(e) => {
                            rbuf.clear();
                            Input::DecodeError(conn.id, e)
                        }
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    rbuf.clear();
                    return Some(Input::DecodeError(conn.id, e));
                }
            }
        }
        None
    }
}

/// Read what arrived on a connection into its read buffer (`max_message`:
/// the longest message it accepts).
async fn read(conn: Option<&mut Conn>, max_message: usize) -> io::Result<usize> {
    let c = conn.expect("guarded");
    c.rbuf.prepare(max_message);
    let n = c.reader.read_buf(&mut c.rbuf.data).await?;
    c.rbuf.filled(n);
    Ok(n)
}
