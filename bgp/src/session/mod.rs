//! The tokio driver of one BGP session: TCP connect and accept, framing
//! on `BytesMut`, timers, connection collisions (RFC 4271 section 6.8),
//! and the sans-IO [`Fsm`] in the middle. What the session carries
//! (routes out, routes in) is the [`Handler`]'s business.

pub mod socket;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant as TokioInstant;
use tracing::{debug, info, warn};

pub use socket::Transport;

use crate::fsm::{
    collision_notification, resolve_collision, Action, DownReason, Event, Fsm, SessionParams, State, Timer,
};
use crate::wire::{frame_len, AttrMemo, Family, Message, Negotiated, Notification, Open, Update};

/// What a session carries, called from the session task. Output is
/// appended to `out` and written after the call.
pub trait Handler: Send + 'static {
    /// The session state changed.
    fn state_changed(&mut self, from: State, to: State);
    /// The session is Established: send the initial routes and End-of-RIB.
    fn established(&mut self, params: &SessionParams, local: SocketAddr, out: &mut BytesMut);
    /// The speaker's routes changed (while Established): send the difference.
    fn routes_changed(&mut self, out: &mut BytesMut);
    /// An UPDATE arrived. Returning a NOTIFICATION tears the session down
    /// with it (e.g. maximum prefixes reached).
    fn update(&mut self, update: Update) -> Option<Notification>;
    /// The peer asked for our routes of `family` again.
    fn route_refresh(&mut self, family: Family, out: &mut BytesMut);
    /// The session left Established.
    fn down(&mut self, reason: &DownReason);
    /// Called about once a second while [`Handler::wants_tick`] says so:
    /// time-based housekeeping (stale routes of a peer restarting
    /// gracefully expire here).
    fn tick(&mut self) {}
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

struct Conn {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    rbuf: BytesMut,
    local: SocketAddr,
    outbound: bool,
}

impl Conn {
    fn new(stream: TcpStream, outbound: bool) -> io::Result<Conn> {
        let local = stream.local_addr()?;
        let (reader, writer) = stream.into_split();
        Ok(Conn { reader, writer, rbuf: BytesMut::with_capacity(64 * 1024), local, outbound })
    }
}

type ConnectFuture = std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<TcpStream>> + Send>>;
type OpenFuture = std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<(TcpStream, BytesMut, Open)>> + Send>>;

/// Read the OPEN a peer sends first on its connection (to learn its BGP
/// identifier for collision resolution).
async fn read_open(mut stream: TcpStream) -> io::Result<(TcpStream, BytesMut, Open)> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut buf = BytesMut::with_capacity(4096);
    let read = async {
        loop {
            match frame_len(&buf, crate::wire::MAX_MESSAGE_LEN).map_err(|e| bad(e.to_string()))? {
                Some(len) if buf.len() >= len => {
                    let frame = buf.split_to(len);
                    return match Message::decode(&frame, &Negotiated::default()) {
                        Ok(Message::Open(o)) => Ok(o),
                        Ok(m) => Err(bad(format!("expected OPEN, got {}", m.name()))),
                        Err(e) => Err(bad(e.to_string())),
                    };
                }
                _ => {
                    if stream.read_buf(&mut buf).await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
        }
    };
    let open = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no OPEN within 10 s"))??;
    Ok((stream, buf, open))
}

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
    fsm: Fsm,
    transport: Transport,
    handler: H,
    conn: Option<Conn>,
    connecting: Option<ConnectFuture>,
    /// The peer's connection, waiting to replace ours after a collision,
    /// with what was read from it (its OPEN).
    pending_inbound: Option<(TcpStream, BytesMut, Option<Open>)>,
    /// Reading the OPEN of an inbound connection that collides with ours.
    reading_open: Option<OpenFuture>,
    timers: [Option<TokioInstant>; 4],
    wbuf: BytesMut,
    events: VecDeque<Event>,
    /// The FSM's actions for one event (kept to reuse its allocation).
    actions: Vec<Action>,
    rx: Negotiated,
    /// Attribute lists decoded with `rx` (cleared whenever `rx` changes).
    memo: AttrMemo,
    tx: Negotiated,
    shutting_down: bool,
    /// A collision was decided for the peer's connection: adopt
    /// `pending_inbound` as soon as the FSM has restarted.
    adopt_after_restart: bool,
}

fn timer_index(t: Timer) -> usize {
    match t {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
        Timer::IdleHold => 3,
    }
}

const TIMERS: [Timer; 4] = [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive, Timer::IdleHold];

impl<H: Handler> Session<H> {
    pub fn new(fsm: Fsm, transport: Transport, handler: H) -> Self {
        Session {
            fsm,
            transport,
            handler,
            conn: None,
            connecting: None,
            pending_inbound: None,
            reading_open: None,
            timers: [None; 4],
            wbuf: BytesMut::new(),
            events: VecDeque::new(),
            rx: Negotiated::default(),
            memo: AttrMemo::new(),
            actions: Vec::new(),
            tx: Negotiated::default(),
            shutting_down: false,
            adopt_after_restart: false,
        }
    }

    /// Feed queued events to the FSM and carry out its actions until
    /// nothing is left, then write what was produced.
    async fn pump(&mut self) {
        loop {
            // One clock reading per batch: the messages of one read
            // arrived together, and `now` only places timer deadlines.
            let now = std::time::Instant::now();
            let mut actions = std::mem::take(&mut self.actions);
            while let Some(ev) = self.events.pop_front().or_else(|| self.next_message()) {
                self.fsm.handle_into(ev, now, &mut actions);
                for a in actions.drain(..) {
                    self.act(a);
                }
                if self.adopt_after_restart && matches!(self.fsm.state(), State::Connect | State::Active) {
                    self.adopt_after_restart = false;
                    if let Some((s, buf, open)) = self.pending_inbound.take() {
                        self.adopt(s, buf, open);
                    }
                }
            }
            self.actions = actions;
            self.handler.input_drained();
            if self.flush().await {
                break;
            }
        }
    }

    /// Write pending output. False when the write failed (a Closed event is queued).
    async fn flush(&mut self) -> bool {
        if self.wbuf.is_empty() {
            return true;
        }
        let Some(conn) = self.conn.as_mut() else {
            self.wbuf.clear();
            return true;
        };
        let r = tokio::time::timeout(WRITE_TIMEOUT, conn.writer.write_all(&self.wbuf)).await;
        self.wbuf.clear();
        match r {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                debug!(peer = %self.transport.remote, error = %e, "write failed");
                self.conn = None;
                self.events.push_back(Event::Closed);
                false
            }
            Err(_) => {
                warn!(peer = %self.transport.remote, "peer stopped reading for {WRITE_TIMEOUT:?}: closing");
                self.conn = None;
                self.events.push_back(Event::Closed);
                false
            }
        }
    }

    fn act(&mut self, a: Action) {
        let peer = self.transport.remote;
        match a {
            Action::Connect => {
                if !self.adopt_after_restart {
                    let timeout = self.fsm.config().connect_retry.max(Duration::from_secs(1));
                    self.connecting = Some(Box::pin(connect(self.transport.clone(), timeout)));
                }
            }
            Action::Send(m) => {
                if let Err(e) = m.encode(&self.tx, &mut self.wbuf) {
                    warn!(%peer, error = %e, "cannot encode {}", m.name());
                } else {
                    self.handler.count_sent(1, 0);
                }
            }
            Action::StartTimer(t, at) => self.timers[timer_index(t)] = Some(TokioInstant::from_std(at)),
            Action::StopTimer(t) => self.timers[timer_index(t)] = None,
            Action::Close => {
                self.connecting = None;
                let out = self.wbuf.split();
                if let Some(mut conn) = self.conn.take() {
                    // Send what came before the close (a NOTIFICATION), then close.
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(2), async {
                            conn.writer.write_all(&out).await?;
                            conn.writer.shutdown().await
                        })
                        .await;
                    });
                }
            }
            Action::StateChanged { from, to } => {
                info!(%peer, %from, %to, "session state");
                self.handler.state_changed(from, to);
                if to == State::Idle && self.pending_inbound.is_some() && !self.shutting_down {
                    // The connection we had failed: the peer's one takes over.
                    self.events.push_back(Event::Start);
                    self.adopt_after_restart = true;
                }
            }
            Action::OpenReceived { .. } => {}
            Action::Established(p) => {
                self.rx = p.rx;
                self.memo.clear();
                self.tx = p.tx;
                if let Some((s, ..)) = self.pending_inbound.take() {
                    refuse(s);
                }
                self.reading_open = None;
                let local = self.conn.as_ref().map(|c| c.local).unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                self.handler.established(&p, local, &mut self.wbuf);
            }
            Action::Down(reason) => {
                info!(%peer, %reason, "session down");
                self.rx = Negotiated::default();
                self.memo.clear();
                self.tx = Negotiated::default();
                self.handler.down(&reason);
            }
            Action::Update(u) => {
                if let Some(n) = self.handler.update(u) {
                    self.events.push_back(Event::Stop(Some(n)));
                }
            }
            Action::RouteRefresh(f) => self.handler.route_refresh(f, &mut self.wbuf),
            Action::RefreshMarker(..) => {}
        }
    }

    /// Run the session.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, mut routes: watch::Receiver<u64>) {
        let peer = self.transport.remote;
        self.events.push_back(Event::Start);
        self.pump().await;
        let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.shutting_down && self.fsm.state() == State::Idle {
                break;
            }
            let next_timer = self.timers.iter().flatten().min().copied();
            let readable = self.conn.is_some();
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown(n)) => {
                        self.shutting_down = true;
                        self.events.push_back(Event::Stop(n));
                    }
                    Some(Command::Inbound(s)) => self.inbound(s),
                    Some(Command::Down(n)) => {
                        if self.fsm.state() == State::Established {
                            self.events.push_back(Event::Stop(Some(n)));
                            self.events.push_back(Event::Start);
                        }
                    }
                    None => {
                        self.shutting_down = true;
                        self.events.push_back(Event::Stop(Some(Notification::admin_shutdown("peer removed"))));
                    }
                },
                r = read(self.conn.as_mut()), if readable => self.received(r),
                res = async { self.connecting.as_mut().expect("guarded").await }, if self.connecting.is_some() => {
                    self.connecting = None;
                    match res.and_then(|s| Conn::new(s, true)) {
                        Ok(c) => {
                            debug!(%peer, local = %c.local, "connected");
                            self.conn = Some(c);
                            self.events.push_back(Event::Connected);
                        }
                        Err(e) => {
                            debug!(%peer, error = %e, "connect failed");
                            self.events.push_back(Event::ConnectFailed);
                        }
                    }
                }
                res = async { self.reading_open.as_mut().expect("guarded").await }, if self.reading_open.is_some() => {
                    self.reading_open = None;
                    match res {
                        Ok((stream, buf, open)) => self.collision(stream, buf, open),
                        Err(e) => debug!(%peer, error = %e, "colliding inbound connection dropped"),
                    }
                }
                _ = routes.changed() => {
                    if self.fsm.state() == State::Established {
                        self.handler.routes_changed(&mut self.wbuf);
                    }
                }
                _ = housekeeping.tick(), if self.handler.wants_tick() => self.handler.tick(),
                _ = sleep_until(next_timer), if next_timer.is_some() => {
                    let now = TokioInstant::now();
                    for t in TIMERS {
                        if self.timers[timer_index(t)].is_some_and(|at| at <= now) {
                            self.timers[timer_index(t)] = None;
                            self.events.push_back(Event::TimerExpired(t));
                        }
                    }
                }
            }
            self.pump().await;
        }
        // Flush whatever the stop produced (the Cease NOTIFICATION).
        self.flush().await;
    }

    /// Bytes arrived (they wait in the read buffer), or the connection ended.
    fn received(&mut self, r: io::Result<usize>) {
        if matches!(r, Ok(0) | Err(_)) {
            self.conn = None;
            self.events.push_back(Event::Closed);
        }
    }

    /// The next whole message in the read buffer, decoded with what the
    /// session has negotiated *by now*: messages are taken one at a time,
    /// so an UPDATE that arrives in the same segment as the KEEPALIVE that
    /// completes the handshake is decoded with the negotiated 4-octet AS
    /// and extended-message settings, not the defaults.
    fn next_message(&mut self) -> Option<Event> {
        let conn = self.conn.as_mut()?;
        match frame_len(&conn.rbuf, self.rx.max_message_len()) {
            Ok(Some(len)) if conn.rbuf.len() >= len => {
                let decoded = Message::decode_with(&conn.rbuf[..len], &self.rx, Some(&mut self.memo));
                conn.rbuf.advance(len);
                match decoded {
                    Ok(m) => {
                        self.handler.count_received(&m);
                        Some(Event::Message(m))
                    }
                    Err(e) => {
                        conn.rbuf.clear();
                        Some(Event::DecodeError(e))
                    }
                }
            }
            Ok(_) => None,
            Err(e) => {
                conn.rbuf.clear();
                Some(Event::DecodeError(e))
            }
        }
    }

    fn inbound(&mut self, stream: TcpStream) {
        let peer = self.transport.remote;
        if let Err(e) = socket::apply_inbound(&stream, &self.transport) {
            warn!(%peer, error = %e, "cannot set transport options on inbound connection");
        }
        match self.fsm.state() {
            State::Idle if self.fsm.restart_pending() => {
                // Backing off after a failure: the peer's connection is as
                // good a restart as ours (and avoids both sides refusing
                // each other in lock-step).
                self.pending_inbound = Some((stream, BytesMut::new(), None));
                self.adopt_after_restart = true;
                self.events.push_back(Event::Start);
            }
            State::Idle => debug!(%peer, "refusing inbound connection: session stopped"),
            State::Connect | State::Active => self.adopt(stream, BytesMut::new(), None),
            State::OpenSent | State::OpenConfirm => {
                debug!(%peer, "connection collision: reading the peer's OPEN to decide");
                self.reading_open = Some(Box::pin(read_open(stream)));
            }
            State::Established => refuse(stream),
        }
    }

    /// Hand a connection to the FSM, with what was already read from it.
    fn adopt(&mut self, stream: TcpStream, buf: BytesMut, open: Option<Open>) {
        self.connecting = None;
        match Conn::new(stream, false) {
            Ok(mut c) => {
                c.rbuf = buf;
                self.conn = Some(c);
                self.events.push_back(Event::Connected);
                if let Some(o) = open {
                    self.events.push_back(Event::Message(Message::Open(o)));
                }
            }
            Err(e) => warn!(peer = %self.transport.remote, error = %e, "inbound connection unusable"),
        }
    }

    /// RFC 4271 section 6.8: keep the connection initiated by the speaker
    /// with the higher BGP identifier.
    fn collision(&mut self, stream: TcpStream, buf: BytesMut, open: Open) {
        let peer = self.transport.remote;
        let local_id = self.fsm.config().router_id;
        let keep_existing = match (self.fsm.state(), self.conn.as_ref()) {
            (State::Established, _) => true,
            (State::OpenSent | State::OpenConfirm, Some(conn)) => {
                conn.outbound == resolve_collision(local_id, open.bgp_id)
            }
            // Our connection is gone meanwhile: take the peer's.
            _ => false,
        };
        if keep_existing {
            info!(%peer, "connection collision: keeping our existing connection");
            refuse(stream);
            return;
        }
        info!(%peer, "connection collision: switching to the peer's connection");
        if self.conn.is_some() {
            self.events.push_back(Event::Stop(Some(collision_notification())));
        }
        if self.fsm.state() == State::Idle && !self.fsm.restart_pending() && self.conn.is_none() {
            refuse(stream);
            return;
        }
        self.events.push_back(Event::Start);
        self.pending_inbound = Some((stream, buf, Some(open)));
        self.adopt_after_restart = true;
    }
}

/// Close a connection we will not use, with Cease / Connection Collision Resolution.
fn refuse(stream: TcpStream) {
    tokio::spawn(async move {
        let mut stream = stream;
        if let Ok(b) = Message::Notification(collision_notification()).to_bytes(&Negotiated::default()) {
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&b)).await;
        }
    });
}

async fn read(conn: Option<&mut Conn>) -> io::Result<usize> {
    let c = conn.expect("guarded by readable");
    c.rbuf.reserve(64 * 1024);
    c.reader.read_buf(&mut c.rbuf).await
}

async fn sleep_until(at: Option<TokioInstant>) {
    tokio::time::sleep_until(at.expect("guarded")).await
}
