//! The BGP finite state machine of RFC 4271 section 8, sans IO.
//!
//! [`Fsm::handle`] takes an [`Event`] and the current time and returns
//! the [`Action`]s the driver must carry out, in order: connect, send a
//! message, arm or stop a timer, close the connection. No sockets, no
//! clocks, no tasks: every transition is a plain function call, so every
//! path, the error paths included, is tested deterministically.
//!
//! One `Fsm` owns at most one transport connection. A peer's two
//! connections during a collision (section 6.8) are [`peer::Peer`]'s
//! business: it runs an `Fsm` per connection, sans IO as well.

mod negotiate;
pub mod peer;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub use negotiate::{keepalive_for, negotiate, open_for, GracefulRestartConfig, LocalConfig, SessionParams};

use crate::wire::{
    DecodeError, ErrorCode, Family, FsmError, Message, Notification, RefreshSubtype, RouteRefresh, Update,
};

/// The six states of RFC 4271 section 8.2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    /// Every state, in the order of section 8.2.2.
    pub const ALL: [State; 6] =
        [State::Idle, State::Connect, State::Active, State::OpenSent, State::OpenConfirm, State::Established];

    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A state by its [`State::name`].
impl std::str::FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL.into_iter().find(|st| st.name() == s).ok_or_else(|| format!("{s:?} is not a BGP state"))
    }
}

/// The timers the FSM asks the driver to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    /// Delay before an automatic restart after an error (back-off).
    IdleHold,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// ManualStart (or automatic start): begin connecting / listening.
    Start,
    /// ManualStop: send the NOTIFICATION given (a Cease, usually with an
    /// RFC 8203 message) or none (graceful restart: keep the peer's
    /// routes), close, and stay Idle.
    Stop(Option<Notification>),
    /// The transport connection is up (outbound connect finished, or an
    /// inbound connection was handed to this FSM).
    Connected,
    /// The outbound connection attempt failed.
    ConnectFailed,
    /// The peer closed the connection, or it broke.
    Closed,
    /// A whole message arrived.
    Message(Message),
    /// A message could not be decoded (framing or content).
    DecodeError(DecodeError),
    /// A timer armed by [`Action::StartTimer`] fired.
    TimerExpired(Timer),
}

/// Why a session went down, for status and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION.
    Sent(Notification),
    /// The peer sent this NOTIFICATION.
    Received(Notification),
    /// The connection closed or failed without a NOTIFICATION.
    ConnectionLost,
    /// Stopped by us without a NOTIFICATION (graceful restart).
    Stopped,
    /// The peer opened a new session while this one was Established:
    /// it restarted (RFC 4724 section 4.2), and this session is closed
    /// without a NOTIFICATION, as if its connection had dropped.
    PeerRestarted,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::Sent(n) => write!(f, "sent NOTIFICATION {}", n.describe()),
            DownReason::Received(n) => write!(f, "received NOTIFICATION {}", n.describe()),
            DownReason::ConnectionLost => f.write_str("connection lost"),
            DownReason::Stopped => f.write_str("stopped"),
            DownReason::PeerRestarted => f.write_str("peer restarted (a new session while Established)"),
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open an outbound transport connection.
    Connect,
    /// Send a message on the connection.
    Send(Message),
    /// Arm (or re-arm) a timer to fire at the deadline.
    StartTimer(Timer, Instant),
    StopTimer(Timer),
    /// Close the transport connection (after sending what came before).
    Close,
    /// The state changed.
    StateChanged {
        from: State,
        to: State,
    },
    /// The peer's OPEN was accepted (for collision detection).
    OpenReceived {
        remote_id: Ipv4Addr,
    },
    /// The session is Established with these parameters.
    Established(Box<SessionParams>),
    /// The session left Established, or a connection attempt failed after OPEN.
    Down(DownReason),
    /// An UPDATE arrived in Established (RFC 7606 errors are in it).
    Update(Update),
    /// The peer asks for our routes of a family again (RFC 2918 / RFC 7313).
    RouteRefresh(Family),
    /// The peer marks the start or end of its own refresh (RFC 7313).
    RefreshMarker(Family, RefreshSubtype),
}

/// How long a connection may sit in OpenSent waiting for the OPEN
/// (RFC 4271 suggests a large hold time, 4 minutes).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// The shortest keepalive interval for which a KEEPALIVE goes out ahead
/// of its timer, with a message from the peer ([`Fsm::handle`]).
pub const EARLY_KEEPALIVE_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// RFC 4271 section 4.4: KEEPALIVEs at most once a second.
pub const KEEPALIVE_MIN_GAP: Duration = Duration::from_secs(1);

/// Back-off for automatic restarts: doubles from `initial` to `max`,
/// jittered by ±25 % (RFC 4271 section 10 asks for jitter on timers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60) }
    }
}

/// A session's finite state machine.
#[derive(Debug)]
pub struct Fsm {
    config: LocalConfig,
    state: State,
    params: Option<SessionParams>,
    /// Stop was requested: do not restart automatically.
    stopped: bool,
    /// Consecutive failures, for the back-off.
    failures: u32,
    backoff: Backoff,
    /// xorshift state for jitter; seeded by the caller so tests are deterministic.
    rng: u64,
    /// When the KEEPALIVE timer armed last is due (OpenConfirm and
    /// Established with a non-zero hold time).
    keepalive_due: Option<Instant>,
}

impl Fsm {
    /// A new FSM in Idle. `seed` feeds the jitter.
    pub fn new(config: LocalConfig, backoff: Backoff, seed: u64) -> Self {
        Fsm {
            config,
            state: State::Idle,
            params: None,
            stopped: true,
            failures: 0,
            backoff,
            rng: seed | 1,
            keepalive_due: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Idle after a failure, waiting to restart on its own (not stopped).
    pub fn restart_pending(&self) -> bool {
        self.state == State::Idle && !self.stopped
    }

    pub fn config(&self) -> &LocalConfig {
        &self.config
    }

    /// Replace the configuration; it applies from the next OPEN.
    pub fn set_config(&mut self, config: LocalConfig) {
        self.config = config;
    }

    /// A second FSM for another connection to the same peer (a
    /// collision): the same configuration and back-off history, Idle and
    /// ready to take an inbound connection ([`Event::Connected`]).
    pub fn fork(&mut self) -> Fsm {
        let seed = self.next_random();
        Fsm {
            config: self.config.clone(),
            state: State::Idle,
            params: None,
            stopped: false,
            failures: self.failures,
            backoff: self.backoff,
            rng: seed | 1,
            keepalive_due: None,
        }
    }

    /// What was negotiated, while OpenConfirm or Established.
    pub fn params(&self) -> Option<&SessionParams> {
        self.params.as_ref()
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn jitter(&mut self, d: Duration) -> Duration {
        // A factor in [0.75, 1.25).
        let f = 0.75 + (self.next_random() % 1000) as f64 / 2000.0;
        d.mul_f64(f)
    }

    fn connect_retry(&mut self, now: Instant) -> Action {
        let d = self.jitter(self.config.connect_retry);
        Action::StartTimer(Timer::ConnectRetry, now + d)
    }

    fn goto(&mut self, to: State, out: &mut Vec<Action>) {
        if self.state != to {
            out.push(Action::StateChanged { from: self.state, to });
            self.state = to;
        }
    }

    /// Feed one event; returns the actions to carry out, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        self.handle_into(event, now, &mut out);
        out
    }

    /// [`Fsm::handle`], appending the actions to `out` (a driver reuses
    /// one vector for every event).
    pub fn handle_into(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        match event {
            Event::Start => self.start(now, out),
            Event::Stop(notification) => {
                self.stopped = true;
                let reason = match notification {
                    Some(n) if self.has_connection() => {
                        out.push(Action::Send(Message::Notification(n.clone())));
                        DownReason::Sent(n)
                    }
                    _ => DownReason::Stopped,
                };
                self.enter_idle(reason, now, out);
            }
            Event::TimerExpired(Timer::IdleHold) => {
                if self.state == State::Idle && !self.stopped {
                    self.start(now, out);
                }
            }
            event => self.handle_connected(event, now, out),
        }
    }

    fn has_connection(&self) -> bool {
        matches!(self.state, State::OpenSent | State::OpenConfirm | State::Established)
    }

    fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.stopped = false;
        if self.state != State::Idle {
            return;
        }
        if self.config.passive {
            self.goto(State::Active, out);
        } else {
            out.push(self.connect_retry(now));
            out.push(Action::Connect);
            self.goto(State::Connect, out);
        }
    }

    /// Everything but Start/Stop/IdleHold, by state.
    fn handle_connected(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        use State::*;
        match (self.state, event) {
            (Idle, Event::Connected) if self.stopped => {
                // A connection handed to a stopped FSM is refused.
                out.push(Action::Close);
            }
            (Idle, Event::Connected) => {
                // Waiting to restart after a failure: the peer's
                // connection is as good a restart as ours.
                out.push(Action::StopTimer(Timer::IdleHold));
                self.send_open(now, out);
            }
            (Idle, _) => {}
            (Connect | Active, Event::Connected) => {
                out.push(Action::StopTimer(Timer::ConnectRetry));
                self.send_open(now, out);
            }
            (Connect, Event::ConnectFailed) => {
                out.push(self.connect_retry(now));
                self.goto(Active, out);
            }
            (Connect | Active, Event::TimerExpired(Timer::ConnectRetry)) => {
                if self.config.passive {
                    return;
                }
                if self.state == Connect {
                    out.push(Action::Close); // abandon the attempt in flight
                }
                out.push(self.connect_retry(now));
                out.push(Action::Connect);
                self.goto(Connect, out);
            }
            (Connect | Active, _) => {}
            (_, Event::Closed) => {
                self.enter_idle(DownReason::ConnectionLost, now, out);
            }
            (_, Event::DecodeError(e)) => match e.notification() {
                Some(n) => self.fail(n, now, out),
                None => self.enter_idle(DownReason::ConnectionLost, now, out),
            },
            (_, Event::TimerExpired(Timer::Hold)) => {
                self.fail(Notification::new(ErrorCode::HoldTimerExpired, vec![]), now, out)
            }
            (OpenConfirm | Established, Event::TimerExpired(Timer::Keepalive)) => self.send_keepalive(now, out),
            (_, Event::TimerExpired(_)) => {}
            (_, Event::Message(Message::Notification(n))) => {
                self.enter_idle(DownReason::Received(n), now, out);
            }
            (OpenSent, Event::Message(Message::Open(open))) => match negotiate(&self.config, &open) {
                Ok(p) => {
                    out.push(Action::OpenReceived { remote_id: open.bgp_id });
                    out.push(Action::Send(Message::Keepalive));
                    self.keepalive_due = p.keepalive.map(|k| now + k);
                    if let Some(due) = self.keepalive_due {
                        out.push(Action::StartTimer(Timer::Keepalive, due));
                    }
                    match p.hold_time {
                        Some(h) => out.push(Action::StartTimer(Timer::Hold, now + h)),
                        None => out.push(Action::StopTimer(Timer::Hold)),
                    }
                    self.params = Some(p);
                    self.goto(OpenConfirm, out);
                }
                Err(n) => self.fail(n, now, out),
            },
            (OpenConfirm, Event::Message(Message::Keepalive)) => {
                self.failures = 0;
                let p = self.params.clone().expect("OpenConfirm has parameters");
                if let Some(h) = p.hold_time {
                    out.push(Action::StartTimer(Timer::Hold, now + h));
                }
                self.goto(Established, out);
                out.push(Action::Established(Box::new(p)));
            }
            (Established, Event::Message(m)) => {
                if let Some(h) = self.params.as_ref().and_then(|p| p.hold_time) {
                    out.push(Action::StartTimer(Timer::Hold, now + h));
                }
                match m {
                    Message::Keepalive => {}
                    Message::Update(u) => out.push(Action::Update(u)),
                    Message::RouteRefresh(r) => self.route_refresh(r, out),
                    Message::Open(_) => return self.fail(fsm_error(State::Established), now, out),
                    Message::Notification(_) => unreachable!("handled above"),
                }
                if self.keepalive_early(now) {
                    // Awake for the peer's message anyway: ours goes now
                    // rather than waking the session again shortly.
                    self.send_keepalive(now, out);
                }
            }
            // Any other message in OpenSent / OpenConfirm: FSM error (RFC 6608).
            (state, Event::Message(_)) => self.fail(fsm_error(state), now, out),
            (_, Event::Connected | Event::ConnectFailed) => {}
            (_, Event::Start | Event::Stop(_)) => unreachable!("handled in handle()"),
        }
    }

    /// Send a KEEPALIVE and restart the keepalive timer.
    fn send_keepalive(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::Send(Message::Keepalive));
        self.keepalive_due = self.params.as_ref().and_then(|p| p.keepalive).map(|k| now + k);
        if let Some(due) = self.keepalive_due {
            out.push(Action::StartTimer(Timer::Keepalive, due));
        }
    }

    /// Whether a message that arrived at `now` should take our KEEPALIVE
    /// along ahead of its timer: only when it is due within a quarter of
    /// the keepalive interval `k`, the hold time is not zero, and `k` is
    /// at least [`EARLY_KEEPALIVE_MIN_INTERVAL`]; and never sooner after
    /// the previous one than RFC 4271 allows: 3/4 of `k` (section 10's
    /// jitter lower bound) and 1 s (section 4.4).
    fn keepalive_early(&self, now: Instant) -> bool {
        let (Some(k), Some(due)) = (self.params.as_ref().and_then(|p| p.keepalive), self.keepalive_due) else {
            return false;
        };
        if k < EARLY_KEEPALIVE_MIN_INTERVAL {
            return false;
        }
        let Some(last) = due.checked_sub(k) else { return false };
        let gap = (k * 3 / 4).max(KEEPALIVE_MIN_GAP);
        now + k / 4 >= due && now.saturating_duration_since(last) >= gap
    }

    fn send_open(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::Send(Message::Open(open_for(&self.config))));
        out.push(Action::StartTimer(Timer::Hold, now + OPEN_HOLD_TIME));
        self.goto(State::OpenSent, out);
    }

    fn route_refresh(&self, r: RouteRefresh, out: &mut Vec<Action>) {
        let Some(p) = &self.params else { return };
        if !p.families.contains(&r.family) {
            // RFC 2918: ignore a request for a family not negotiated.
            return;
        }
        match r.subtype {
            RefreshSubtype::Request => out.push(Action::RouteRefresh(r.family)),
            RefreshSubtype::BoRR | RefreshSubtype::EoRR => out.push(Action::RefreshMarker(r.family, r.subtype)),
            // RFC 7313: ignore reserved subtypes.
            RefreshSubtype::Reserved(_) => {}
        }
    }

    /// Send a NOTIFICATION and go down.
    fn fail(&mut self, n: Notification, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::Send(Message::Notification(n.clone())));
        self.enter_idle(DownReason::Sent(n), now, out);
    }

    fn enter_idle(&mut self, reason: DownReason, now: Instant, out: &mut Vec<Action>) {
        let had_connection = self.has_connection() || self.state == State::Connect;
        if had_connection {
            out.push(Action::Close);
        }
        for t in [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive, Timer::IdleHold] {
            out.push(Action::StopTimer(t));
        }
        let was = self.state;
        self.params = None;
        self.keepalive_due = None;
        self.goto(State::Idle, out);
        if matches!(was, State::OpenSent | State::OpenConfirm | State::Established) {
            out.push(Action::Down(reason));
        }
        if !self.stopped {
            // Automatic restart after a back-off that grows with each failure.
            let exp = self.failures.min(16);
            let d = self.backoff.initial.saturating_mul(1 << exp).min(self.backoff.max);
            self.failures += 1;
            let d = self.jitter(d);
            out.push(Action::StartTimer(Timer::IdleHold, now + d));
        }
    }
}

/// The NOTIFICATION for an unexpected message (RFC 6608 subcodes).
fn fsm_error(state: State) -> Notification {
    let sub = match state {
        State::OpenSent => FsmError::UnexpectedInOpenSent,
        State::OpenConfirm => FsmError::UnexpectedInOpenConfirm,
        State::Established => FsmError::UnexpectedInEstablished,
        _ => FsmError::Unspecified,
    };
    Notification::new(sub, vec![])
}

#[cfg(test)]
mod tests;
