//! One peer's state machine, sans IO: the session's [`Fsm`] and, during
//! a connection collision (RFC 4271 section 6.8), a second `Fsm` for the
//! other connection, with the rules that decide which one lives on.
//!
//! Connections are named by [`ConnId`]s this machine hands out: with
//! [`Output::Connect`] for the one the driver is to dial, and from
//! [`Peer::accept`] for one the peer opened. The driver feeds [`Input`]s
//! tagged with those ids and the current time, carries out the
//! [`Output`]s (dial, send, close) and sleeps until [`Peer::poll_timeout`];
//! every timer lives in here. It holds no sockets and reads no clock.
//!
//! The rules, applied as connections come and OPENs arrive:
//! - a connection while the session is Idle waiting to restart, in Connect
//!   or in Active is taken by the session (an attempt in flight is
//!   abandoned); while stopped or held down it is refused with Cease /
//!   Connection Rejected;
//! - at most one connection the peer opened waits beside the session's: a
//!   newer one replaces it (the peer gave up on the older one);
//! - the first valid OPEN on either of two pending connections decides,
//!   for the one initiated by the speaker with the higher BGP identifier,
//!   with equal identifiers the larger AS (RFC 6286 section 2.3); the
//!   loser gets Cease / Connection Collision Resolution;
//! - a connection while Established is refused the same way, unless the
//!   peer can restart gracefully: then, once a valid OPEN arrives on it,
//!   the old session is closed as if its connection had dropped (its
//!   routes are kept stale, RFC 4724 section 4.2) and the new one goes on;
//! - when one connection reaches Established, the other is closed.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::{negotiate, Action, DownReason, Event, Fsm, LocalConfig, SessionParams, State, Timer};
use crate::wire::{Cease, DecodeError, Family, Message, Notification, Open, RefreshSubtype, Update};

/// A transport connection (or the attempt to open one) of a [`Peer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What happened to the peer.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Start (or, after [`Input::HoldDown`], start again).
    Start,
    /// Stop for good: send the NOTIFICATION given (none: graceful
    /// restart, the peer keeps our routes) and close every connection.
    Stop(Option<Notification>),
    /// Tear an Established session down with this NOTIFICATION (Cease /
    /// BFD Down) and start again at once; ignored when not Established.
    Reset(Notification),
    /// Tear the session down with this NOTIFICATION and stay down until
    /// `until` (`None`: until [`Input::Start`]); connections meanwhile are
    /// refused. For a peer that sent more prefixes than allowed.
    HoldDown { notification: Notification, until: Option<Instant> },
    /// The connection the driver dialed for [`Output::Connect`] is up.
    Connected(ConnId),
    /// Dialing it failed.
    ConnectFailed(ConnId),
    /// The peer closed a connection, or it broke.
    Closed(ConnId),
    /// A whole message arrived on a connection.
    Message(ConnId, Message),
    /// A message on a connection could not be decoded.
    DecodeError(ConnId, DecodeError),
}

/// Which rule decided a collision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollisionRule {
    /// The connection initiated by the higher BGP identifier (RFC 4271 6.8).
    HigherId,
    /// Equal identifiers: the one initiated by the larger AS (RFC 6286 2.3).
    LargerAs,
    /// The other connection reached Established first.
    Established,
}

/// Why a connection that does not (or no longer) carry the session was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discard {
    /// It lost a collision to `kept`; Cease / Connection Collision
    /// Resolution was sent on it.
    Collision { kept: ConnId, rule: CollisionRule },
    /// It came while the session is Established with a peer that cannot
    /// restart gracefully; Cease / Connection Collision Resolution.
    WhileEstablished,
    /// It came while the peer is stopped or held down; Cease / Connection Rejected.
    Rejected,
    /// A newer connection the peer opened took its place.
    Replaced { by: ConnId },
    /// It failed on its own while another connection carried on.
    Failed(DownReason),
    /// The peer was stopped.
    Stopped,
}

impl std::fmt::Display for Discard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Discard::Collision { kept, rule: CollisionRule::HigherId } => {
                write!(f, "lost a collision to {kept} (the higher BGP identifier's connection is kept)")
            }
            Discard::Collision { kept, rule: CollisionRule::LargerAs } => {
                write!(f, "lost a collision to {kept} (equal identifiers: the larger AS's connection is kept)")
            }
            Discard::Collision { kept, rule: CollisionRule::Established } => {
                write!(f, "lost a collision to {kept}, which reached Established first")
            }
            Discard::WhileEstablished => f.write_str("refused: the session is Established"),
            Discard::Rejected => f.write_str("refused: the peer is stopped or held down"),
            Discard::Replaced { by } => write!(f, "replaced by the peer's newer connection {by}"),
            Discard::Failed(r) => write!(f, "failed: {r}"),
            Discard::Stopped => f.write_str("closed: the peer was stopped"),
        }
    }
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Dial the peer; the connection is `ConnId` from now on.
    Connect(ConnId),
    /// Send a message on a connection.
    Send(ConnId, Message),
    /// Close a connection after sending what came before on it (or
    /// abandon the attempt to dial it).
    Close(ConnId),
    /// The peer's state (its session's) changed.
    StateChanged { from: State, to: State },
    /// The session is Established on this connection.
    Established(ConnId, Box<SessionParams>),
    /// The session left Established, or its handshake failed after OPEN.
    Down(DownReason),
    /// An UPDATE arrived in Established.
    Update(Update),
    /// The peer asks for our routes of a family again.
    RouteRefresh(Family),
    /// The peer marks the start or end of its own refresh.
    RefreshMarker(Family, RefreshSubtype),
    /// A connection that was not the session's was closed (for logs).
    Discarded { conn: ConnId, why: Discard },
}

/// One connection's FSM with its connection and timers.
#[derive(Debug)]
struct Slot {
    fsm: Fsm,
    conn: Option<ConnId>,
    /// The peer opened the connection.
    inbound: bool,
    timers: [Option<Instant>; 4],
}

impl Slot {
    fn new(fsm: Fsm) -> Slot {
        Slot { fsm, conn: None, inbound: false, timers: [None; 4] }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    /// Take the earliest timer due at `now`.
    fn take_due(&mut self, now: Instant) -> Option<Timer> {
        let (i, _) = self.timers.iter().enumerate().filter_map(|(i, t)| t.map(|t| (i, t))).min_by_key(|x| x.1)?;
        if self.timers[i].is_some_and(|t| t <= now) {
            self.timers[i] = None;
            return Some(TIMERS[i]);
        }
        None
    }
}

const TIMERS: [Timer; 4] = [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive, Timer::IdleHold];

fn timer_index(t: Timer) -> usize {
    match t {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
        Timer::IdleHold => 3,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Primary,
    Secondary,
}

/// One peer: its session's FSM and at most one more for a colliding
/// connection. See the module notes for the rules.
#[derive(Debug)]
pub struct Peer {
    /// The session's FSM.
    primary: Slot,
    /// The other connection's, during a collision: always one the peer
    /// opened, beside a primary that has a connection.
    secondary: Option<Slot>,
    /// The primary's outbound attempt in flight.
    attempt: Option<ConnId>,
    next_id: u32,
    /// Held down ([`Input::HoldDown`]), until this time when given.
    held: bool,
    held_until: Option<Instant>,
    /// The state last reported with [`Output::StateChanged`].
    reported: State,
    /// The down reason of the last side FSM call, if it went down.
    side_down: Option<DownReason>,
    /// One FSM call's actions (kept to reuse the allocation).
    actions: Vec<Action>,
}

impl Peer {
    /// A peer whose session runs `fsm` (Idle until [`Input::Start`]).
    pub fn new(fsm: Fsm) -> Peer {
        Peer {
            primary: Slot::new(fsm),
            secondary: None,
            attempt: None,
            next_id: 0,
            held: false,
            held_until: None,
            reported: State::Idle,
            side_down: None,
            actions: Vec::new(),
        }
    }

    /// The session's state.
    pub fn state(&self) -> State {
        self.primary.fsm.state()
    }

    pub fn config(&self) -> &LocalConfig {
        self.primary.fsm.config()
    }

    /// The connection carrying the session while Established.
    pub fn session_conn(&self) -> Option<ConnId> {
        (self.state() == State::Established).then_some(self.primary.conn).flatten()
    }

    /// What the session negotiated, while OpenConfirm or Established.
    pub fn params(&self) -> Option<&SessionParams> {
        self.primary.fsm.params()
    }

    /// Held down ([`Input::HoldDown`]): `Some(until)`, `until` being
    /// `None` when only [`Input::Start`] ends it.
    pub fn held_down(&self) -> Option<Option<Instant>> {
        self.held.then_some(self.held_until)
    }

    /// The connections open or being dialed.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.attempt.into_iter().chain(self.primary.conn).chain(self.secondary.as_ref().and_then(|s| s.conn))
    }

    /// When [`Peer::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let held = if self.held { self.held_until } else { None };
        [self.primary.next_timer(), self.secondary.as_ref().and_then(Slot::next_timer), held]
            .into_iter()
            .flatten()
            .min()
    }

    fn new_id(&mut self) -> ConnId {
        self.next_id = self.next_id.wrapping_add(1);
        ConnId(self.next_id)
    }

    /// Run every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Output>) {
        loop {
            if let Some(t) = self.primary.take_due(now) {
                self.feed(Which::Primary, Event::TimerExpired(t), now, out);
            } else if let Some(t) = self.secondary.as_mut().and_then(|s| s.take_due(now)) {
                self.feed(Which::Secondary, Event::TimerExpired(t), now, out);
            } else if self.held && self.held_until.is_some_and(|t| t <= now) {
                self.handle(Input::Start, now, out);
            } else {
                break;
            }
        }
    }

    /// A connection the peer opened: the id to file it under. What to do
    /// with it (send our OPEN, or refuse it) is in `out`.
    pub fn accept(&mut self, now: Instant, out: &mut Vec<Output>) -> ConnId {
        let id = self.new_id();
        let refuse = |why: Discard, out: &mut Vec<Output>| {
            let cease = if why == Discard::Rejected { Cease::ConnectionRejected } else { Cease::ConnectionCollision };
            out.push(Output::Send(id, Message::Notification(Notification::new(cease, vec![]))));
            out.push(Output::Close(id));
            out.push(Output::Discarded { conn: id, why });
        };
        let state = self.state();
        if self.held || (state == State::Idle && !self.primary.fsm.restart_pending()) {
            refuse(Discard::Rejected, out);
            return id;
        }
        match state {
            State::Idle | State::Connect | State::Active => {
                if let Some(a) = self.attempt.take() {
                    out.push(Output::Close(a));
                }
                self.primary.conn = Some(id);
                self.primary.inbound = true;
                self.feed(Which::Primary, Event::Connected, now, out);
            }
            State::Established if !self.peer_restarts_gracefully() => refuse(Discard::WhileEstablished, out),
            State::OpenSent | State::OpenConfirm | State::Established => {
                // A newer connection from the peer replaces its older pending one.
                if self.secondary.is_some() {
                    self.discard(Which::Secondary, Discard::Replaced { by: id }, collision(), now, out);
                }
                let mut side = Slot::new(self.primary.fsm.fork());
                side.conn = Some(id);
                side.inbound = true;
                self.secondary = Some(side);
                self.feed(Which::Secondary, Event::Connected, now, out);
                if self.primary.inbound && state != State::Established {
                    self.discard(Which::Primary, Discard::Replaced { by: id }, collision(), now, out);
                }
            }
        }
        id
    }

    fn peer_restarts_gracefully(&self) -> bool {
        self.params().is_some_and(|p| p.peer_graceful_restart.is_some())
    }

    /// Feed one input.
    pub fn handle(&mut self, input: Input, now: Instant, out: &mut Vec<Output>) {
        match input {
            Input::Start => {
                self.held = false;
                self.held_until = None;
                self.feed(Which::Primary, Event::Start, now, out);
            }
            Input::Stop(n) => self.stop(n, now, out),
            Input::Reset(n) => {
                if self.state() == State::Established {
                    self.stop(Some(n), now, out);
                    self.feed(Which::Primary, Event::Start, now, out);
                }
            }
            Input::HoldDown { notification, until } => {
                self.stop(Some(notification), now, out);
                self.held = true;
                self.held_until = until;
            }
            Input::Connected(id) => {
                if self.attempt == Some(id) {
                    self.attempt = None;
                    self.primary.conn = Some(id);
                    self.primary.inbound = false;
                    self.feed(Which::Primary, Event::Connected, now, out);
                } else {
                    // An attempt abandoned meanwhile.
                    out.push(Output::Close(id));
                }
            }
            Input::ConnectFailed(id) => {
                if self.attempt == Some(id) {
                    self.attempt = None;
                    self.feed(Which::Primary, Event::ConnectFailed, now, out);
                }
            }
            Input::Closed(id) => {
                if let Some(w) = self.which(id) {
                    self.feed(w, Event::Closed, now, out);
                }
            }
            Input::DecodeError(id, e) => {
                if let Some(w) = self.which(id) {
                    self.feed(w, Event::DecodeError(e), now, out);
                }
            }
            Input::Message(id, m) => {
                let Some(w) = self.which(id) else { return };
                let colliding = self.secondary.is_some() && self.slot(w).fsm.state() == State::OpenSent;
                match m {
                    Message::Open(open) if colliding => self.open_in_collision(w, open, now, out),
                    m => self.feed(w, Event::Message(m), now, out),
                }
            }
        }
    }

    fn which(&self, id: ConnId) -> Option<Which> {
        if self.primary.conn == Some(id) {
            Some(Which::Primary)
        } else if self.secondary.as_ref().is_some_and(|s| s.conn == Some(id)) {
            Some(Which::Secondary)
        } else {
            None
        }
    }

    fn slot(&mut self, w: Which) -> &mut Slot {
        match w {
            Which::Primary => &mut self.primary,
            Which::Secondary => self.secondary.as_mut().expect("a secondary FSM"),
        }
    }

    /// An OPEN on connection `w` while the other connection exists too.
    fn open_in_collision(&mut self, w: Which, open: Open, now: Instant, out: &mut Vec<Output>) {
        let other = match w {
            Which::Primary => Which::Secondary,
            Which::Secondary => Which::Primary,
        };
        if negotiate(self.config(), &open).is_err() {
            // Not a session: it fails on its own, the other goes on.
            return self.feed(w, Event::Message(Message::Open(open)), now, out);
        }
        if self.slot(other).fsm.state() == State::Established {
            // The peer restarted (only a peer that can restart gracefully
            // gets this far): the old session goes as if its connection
            // had dropped, the new one takes over.
            self.restarted(now, out);
            return self.feed(Which::Primary, Event::Message(Message::Open(open)), now, out);
        }
        let this = self.slot(w).conn.expect("a connection");
        let that = self.slot(other).conn.expect("a connection");
        let this_inbound = self.slot(w).inbound;
        let c = self.config();
        let (ours_kept, rule) = resolve_collision(c.router_id, c.local_as, open.bgp_id, open.asn());
        // Both inbound cannot happen (a newer one replaces the older).
        let keep_this = this_inbound != ours_kept;
        let (loser, kept) = if keep_this { (other, this) } else { (w, that) };
        self.discard(loser, Discard::Collision { kept, rule }, collision(), now, out);
        if keep_this {
            self.feed(Which::Primary, Event::Message(Message::Open(open)), now, out);
        }
    }

    /// The Established session is replaced by the secondary's connection.
    fn restarted(&mut self, now: Instant, out: &mut Vec<Output>) {
        let mut acts = std::mem::take(&mut self.actions);
        self.primary.fsm.handle_into(Event::Stop(None), now, &mut acts);
        for a in acts.drain(..) {
            match a {
                Action::Down(DownReason::Stopped) => out.push(Output::Down(DownReason::PeerRestarted)),
                Action::Close => {
                    if let Some(c) = self.primary.conn.take() {
                        out.push(Output::Close(c));
                    }
                }
                Action::StateChanged { to, .. } => self.report(to, out),
                _ => {}
            }
        }
        self.actions = acts;
        self.promote(out);
    }

    fn stop(&mut self, n: Option<Notification>, now: Instant, out: &mut Vec<Output>) {
        if self.secondary.is_some() {
            self.discard(Which::Secondary, Discard::Stopped, n.clone(), now, out);
        }
        // Held down or stopped: no restart (and an Idle FSM stays Idle).
        self.held = false;
        self.held_until = None;
        self.feed(Which::Primary, Event::Stop(n), now, out);
    }

    /// Close the connection of `w` with this NOTIFICATION and forget its
    /// FSM (the secondary takes the primary's place).
    fn discard(&mut self, w: Which, why: Discard, n: Option<Notification>, now: Instant, out: &mut Vec<Output>) {
        let conn = self.slot(w).conn;
        let mut acts = std::mem::take(&mut self.actions);
        self.slot(w).fsm.handle_into(Event::Stop(n), now, &mut acts);
        self.apply(w, true, &mut acts, out);
        self.actions = acts;
        if let Some(conn) = conn {
            out.push(Output::Discarded { conn, why });
        }
        match w {
            Which::Secondary => self.secondary = None,
            Which::Primary => self.promote(out),
        }
    }

    /// The secondary becomes the session's FSM.
    fn promote(&mut self, out: &mut Vec<Output>) {
        if let Some(s) = self.secondary.take() {
            self.primary = s;
            self.report(self.primary.fsm.state(), out);
        }
    }

    fn report(&mut self, to: State, out: &mut Vec<Output>) {
        if to != self.reported {
            out.push(Output::StateChanged { from: self.reported, to });
            self.reported = to;
        }
    }

    /// One FSM call on slot `w`, and what follows from its outcome.
    fn feed(&mut self, w: Which, ev: Event, now: Instant, out: &mut Vec<Output>) {
        let was = self.slot(w).fsm.state();
        let conn = self.slot(w).conn;
        let side = self.secondary.is_some();
        // The primary failing before Established while another connection
        // waits is not the session going down: that one carries on.
        let quiet = side && was != State::Established;
        let mut acts = std::mem::take(&mut self.actions);
        self.slot(w).fsm.handle_into(ev, now, &mut acts);
        self.side_down = None;
        self.apply(w, quiet, &mut acts, out);
        self.actions = acts;
        match (w, self.slot(w).fsm.state()) {
            // A connection beside the session's failed: it goes.
            (Which::Secondary, State::Idle) => {
                self.secondary = None;
                if let (Some(conn), Some(r)) = (conn, self.side_down.take()) {
                    out.push(Output::Discarded { conn, why: Discard::Failed(r) });
                }
            }
            (Which::Primary, State::Idle) if side => {
                if let (Some(conn), Some(r)) = (conn, self.side_down.take()) {
                    out.push(Output::Discarded { conn, why: Discard::Failed(r) });
                }
                self.promote(out);
            }
            (Which::Primary, State::Established) if side => {
                let kept = self.primary.conn.expect("Established on a connection");
                let why = Discard::Collision { kept, rule: CollisionRule::Established };
                self.discard(Which::Secondary, why, collision(), now, out);
            }
            _ => {}
        }
    }

    /// Pass on one FSM call's actions. `quiet`: the FSM going Idle is not
    /// the session's (no state change to Idle, no Down; the reason is kept
    /// in `side_down`). The secondary's state is never reported.
    fn apply(&mut self, w: Which, quiet: bool, acts: &mut Vec<Action>, out: &mut Vec<Output>) {
        let session = w == Which::Primary;
        for a in acts.drain(..) {
            match a {
                Action::Connect => {
                    let id = self.new_id();
                    self.attempt = Some(id);
                    out.push(Output::Connect(id));
                }
                Action::Send(m) => {
                    if let Some(c) = self.slot(w).conn {
                        out.push(Output::Send(c, m));
                    }
                }
                Action::StartTimer(t, at) => self.slot(w).timers[timer_index(t)] = Some(at),
                Action::StopTimer(t) => self.slot(w).timers[timer_index(t)] = None,
                Action::Close => match self.slot(w).conn.take() {
                    Some(c) => out.push(Output::Close(c)),
                    // In Connect: the attempt in flight is abandoned.
                    None => {
                        if let Some(a) = self.attempt.take() {
                            out.push(Output::Close(a));
                        }
                    }
                },
                Action::OpenReceived { .. } => {}
                Action::StateChanged { to, .. } => {
                    if session && !(quiet && to == State::Idle) {
                        self.report(to, out);
                    }
                }
                Action::Down(r) if session && !quiet => out.push(Output::Down(r)),
                Action::Down(r) => self.side_down = Some(r),
                Action::Established(p) => {
                    let c = self.slot(w).conn.expect("Established on a connection");
                    out.push(Output::Established(c, p));
                }
                Action::Update(u) => out.push(Output::Update(u)),
                Action::RouteRefresh(f) => out.push(Output::RouteRefresh(f)),
                Action::RefreshMarker(f, s) => out.push(Output::RefreshMarker(f, s)),
            }
        }
    }
}

/// The NOTIFICATION that closes the losing connection of a collision.
fn collision() -> Option<Notification> {
    Some(Notification::new(Cease::ConnectionCollision, vec![]))
}

/// RFC 4271 section 6.8: whether the connection *we* initiated is kept,
/// and by which rule. The one initiated by the speaker with the higher
/// BGP identifier is kept; with equal identifiers (between different
/// ASes), the one initiated by the speaker with the larger AS number
/// (RFC 6286 section 2.3).
pub fn resolve_collision(
    local_id: Ipv4Addr,
    local_as: u32,
    remote_id: Ipv4Addr,
    remote_as: u32,
) -> (bool, CollisionRule) {
    if local_id != remote_id {
        (u32::from(local_id) > u32::from(remote_id), CollisionRule::HigherId)
    } else {
        (local_as > remote_as, CollisionRule::LargerAs)
    }
}

#[cfg(test)]
mod tests;
