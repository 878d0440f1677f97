//! The sans-IO BFD session (RFC 5880 asynchronous mode, no
//! authentication, no echo, no demand mode). The driver feeds it
//! received packets and the time, asks it for packets to send, and
//! sleeps until [`Session::next_deadline`].

use std::time::{Duration, Instant};

use super::packet::{diag, BfdState, ControlPacket};

/// While not Up, Desired Min TX is at least this (RFC 5880 section 6.8.3).
pub const SLOW_TX: Duration = Duration::from_secs(1);

/// BFD settings of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BfdConfig {
    /// Desired Min TX Interval once Up.
    pub min_tx: Duration,
    /// Required Min RX Interval.
    pub min_rx: Duration,
    /// Detect Mult.
    pub multiplier: u8,
}

impl Default for BfdConfig {
    fn default() -> Self {
        BfdConfig { min_tx: Duration::from_millis(300), min_rx: Duration::from_millis(300), multiplier: 3 }
    }
}

/// A state change of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub from: BfdState,
    pub to: BfdState,
    /// The local diagnostic (why it went down).
    pub diag: u8,
}

fn us(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

fn from_us(v: u32) -> Duration {
    Duration::from_micros(v as u64)
}

/// One BFD session.
#[derive(Debug, Clone)]
pub struct Session {
    cfg: BfdConfig,
    state: BfdState,
    diag: u8,
    local_discr: u32,
    remote_discr: u32,
    remote_state: BfdState,
    remote_mult: u8,
    /// bfd.RemoteMinRxInterval (starts at 1 µs).
    remote_min_rx: Duration,
    /// The remote's Desired Min TX from its last packet.
    remote_desired_tx: Duration,
    /// What we advertise.
    desired_tx: Duration,
    required_rx: Duration,
    /// The values the timers use (they lag behind the advertised ones
    /// during a poll sequence, section 6.8.3).
    tx_in_effect: Duration,
    rx_in_effect: Duration,
    polling: bool,
    send_final: bool,
    send_now: bool,
    next_tx: Option<Instant>,
    detect_at: Option<Instant>,
    rng: u64,
    /// Whether the session has been Up since it was created.
    was_up: bool,
}

impl Session {
    /// A new session in Down. `local_discr` must be nonzero and unique
    /// among this system's sessions; `seed` drives the jitter.
    pub fn new(cfg: BfdConfig, local_discr: u32, seed: u64, now: Instant) -> Session {
        assert!(local_discr != 0, "BFD discriminators are nonzero");
        let required_rx = cfg.min_rx;
        Session {
            cfg,
            state: BfdState::Down,
            diag: diag::NONE,
            local_discr,
            remote_discr: 0,
            remote_state: BfdState::Down,
            remote_mult: 0,
            remote_min_rx: Duration::from_micros(1),
            remote_desired_tx: Duration::ZERO,
            desired_tx: SLOW_TX.max(cfg.min_tx),
            required_rx,
            tx_in_effect: SLOW_TX.max(cfg.min_tx),
            rx_in_effect: required_rx,
            polling: false,
            send_final: false,
            send_now: false,
            next_tx: Some(now),
            detect_at: None,
            rng: seed | 1,
            was_up: false,
        }
    }

    pub fn state(&self) -> BfdState {
        self.state
    }

    pub fn diag(&self) -> u8 {
        self.diag
    }

    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }

    pub fn remote_discr(&self) -> u32 {
        self.remote_discr
    }

    pub fn config(&self) -> &BfdConfig {
        &self.cfg
    }

    /// A poll sequence is running.
    pub fn polling(&self) -> bool {
        self.polling
    }

    pub fn was_up(&self) -> bool {
        self.was_up
    }

    /// The detection time now in use: the remote's Detect Mult times the
    /// agreed interval (section 6.8.4). None before anything was received.
    pub fn detection_time(&self) -> Option<Duration> {
        (self.remote_mult > 0).then(|| self.rx_in_effect.max(self.remote_desired_tx) * self.remote_mult as u32)
    }

    /// The periodic transmit interval before jitter (section 6.8.7).
    pub fn tx_interval(&self) -> Duration {
        self.tx_in_effect.max(self.remote_min_rx)
    }

    /// When the driver must call [`Session::timeout`] / [`Session::poll_transmit`] next.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.send_now || self.send_final {
            return Some(Instant::now());
        }
        match (self.next_tx, self.detect_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The interval reduced by 0-25 % (0-10 % more with Detect Mult 1,
    /// i.e. 75-90 %), section 6.8.7.
    fn jittered(&mut self, d: Duration) -> Duration {
        let max_pct = if self.cfg.multiplier == 1 { 90 } else { 100 };
        let pct = 75 + self.random() % (max_pct - 75 + 1);
        d * pct as u32 / 100
    }

    fn goto(&mut self, to: BfdState, diag: u8, out: &mut Vec<StateChange>) {
        if self.state == to {
            return;
        }
        let from = self.state;
        self.state = to;
        self.diag = diag;
        self.send_now = true;
        if to == BfdState::Up {
            self.was_up = true;
            // Speed up: a poll sequence announces the faster intervals.
            self.set_intervals(self.cfg.min_tx, self.cfg.min_rx);
        } else if from == BfdState::Up {
            // Not Up: back to at least 1 s, no poll needed (section 6.8.3).
            self.polling = false;
            self.desired_tx = SLOW_TX.max(self.cfg.min_tx);
            self.tx_in_effect = self.desired_tx;
            self.required_rx = self.cfg.min_rx;
            self.rx_in_effect = self.required_rx;
        }
        out.push(StateChange { from, to, diag });
    }

    /// Change the advertised intervals; while Up this starts a poll
    /// sequence, and an increase of TX or a decrease of RX only takes
    /// effect when it ends.
    pub fn set_intervals(&mut self, desired_tx: Duration, required_rx: Duration) {
        let desired_tx = if self.state == BfdState::Up { desired_tx } else { desired_tx.max(SLOW_TX) };
        if desired_tx == self.desired_tx && required_rx == self.required_rx {
            return;
        }
        self.desired_tx = desired_tx;
        self.required_rx = required_rx;
        if self.state == BfdState::Up {
            self.polling = true;
            self.send_now = true;
            if desired_tx < self.tx_in_effect {
                self.tx_in_effect = desired_tx;
            }
            if required_rx > self.rx_in_effect {
                self.rx_in_effect = required_rx;
            }
        } else {
            self.tx_in_effect = desired_tx;
            self.rx_in_effect = required_rx;
        }
    }

    /// Change the configuration (intervals and multiplier).
    pub fn reconfigure(&mut self, cfg: BfdConfig) {
        self.cfg = cfg;
        self.set_intervals(cfg.min_tx, cfg.min_rx);
    }

    /// Administratively disable (AdminDown) or re-enable (Down) the session.
    pub fn set_admin_down(&mut self, down: bool) -> Vec<StateChange> {
        let mut out = vec![];
        if down {
            self.goto(BfdState::AdminDown, diag::ADMIN_DOWN, &mut out);
            self.detect_at = None;
        } else if self.state == BfdState::AdminDown {
            self.goto(BfdState::Down, diag::NONE, &mut out);
        }
        out
    }

    /// A packet from the peer (already decoded and checked by
    /// [`ControlPacket::decode`]). Returns the state changes; a packet
    /// the session must discard returns None.
    pub fn receive(&mut self, p: &ControlPacket, now: Instant) -> Option<Vec<StateChange>> {
        // Section 6.8.6, the checks that need the session.
        if p.your_discr != 0 && p.your_discr != self.local_discr {
            return None;
        }
        if p.your_discr == 0 && !matches!(self.state, BfdState::Down | BfdState::AdminDown) {
            return None;
        }
        let mut out = vec![];
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_mult = p.detect_mult;
        self.remote_min_rx = from_us(p.required_min_rx_us);
        self.remote_desired_tx = from_us(p.desired_min_tx_us);
        if p.final_ && self.polling {
            self.polling = false;
            self.tx_in_effect = self.desired_tx;
            self.rx_in_effect = self.required_rx;
        }
        if p.poll {
            self.send_final = true;
        }
        // A smaller remote RX may let us send sooner than planned.
        if let Some(t) = self.next_tx {
            let latest = now + self.tx_interval();
            if t > latest {
                self.next_tx = Some(now + self.jittered(self.tx_interval()));
            }
        }
        if self.state == BfdState::AdminDown {
            return Some(out);
        }
        self.detect_at = self.detection_time().map(|d| now + d);
        match (self.state, p.state) {
            (BfdState::Init | BfdState::Up, BfdState::AdminDown) => {
                self.goto(BfdState::Down, diag::NEIGHBOR_DOWN, &mut out)
            }
            (BfdState::Down, BfdState::Down) => self.goto(BfdState::Init, diag::NONE, &mut out),
            (BfdState::Down, BfdState::Init) => self.goto(BfdState::Up, diag::NONE, &mut out),
            (BfdState::Init, BfdState::Init | BfdState::Up) => self.goto(BfdState::Up, diag::NONE, &mut out),
            (BfdState::Up, BfdState::Down) => self.goto(BfdState::Down, diag::NEIGHBOR_DOWN, &mut out),
            _ => {}
        }
        Some(out)
    }

    /// Expire the detection timer when due.
    pub fn timeout(&mut self, now: Instant) -> Vec<StateChange> {
        let mut out = vec![];
        if self.detect_at.is_some_and(|t| t <= now) {
            self.detect_at = None;
            // Section 6.8.1: the remote discriminator is forgotten.
            self.remote_discr = 0;
            self.remote_mult = 0;
            self.remote_min_rx = Duration::from_micros(1);
            self.remote_desired_tx = Duration::ZERO;
            if matches!(self.state, BfdState::Init | BfdState::Up) {
                self.goto(BfdState::Down, diag::DETECTION_TIME_EXPIRED, &mut out);
            }
        }
        out
    }

    fn packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.diag,
            state: self.state,
            poll: self.polling && !final_,
            final_,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.cfg.multiplier,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx_us: us(self.desired_tx),
            required_min_rx_us: us(self.required_rx),
            required_min_echo_rx_us: 0,
        }
    }

    /// The packet to send now, if any: a Final answering a Poll (at once,
    /// regardless of the timers), a packet after a state change, or the
    /// periodic one.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<ControlPacket> {
        if self.send_final {
            self.send_final = false;
            return Some(self.packet(true));
        }
        // Section 6.8.7: nothing periodic when the remote asks for none.
        if self.remote_min_rx.is_zero() {
            self.send_now = false;
            self.next_tx = None;
            return None;
        }
        let due = self.send_now || self.next_tx.is_none_or(|t| t <= now);
        if !due {
            return None;
        }
        self.send_now = false;
        let d = self.jittered(self.tx_interval());
        self.next_tx = Some(now + d);
        Some(self.packet(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn peer_packet(state: BfdState, my: u32, your: u32) -> ControlPacket {
        ControlPacket {
            diag: 0,
            state,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discr: my,
            your_discr: your,
            desired_min_tx_us: 300_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 0,
        }
    }

    /// Two sessions talking to each other, packets delivered at once.
    fn exchange(a: &mut Session, b: &mut Session, now: Instant) -> Vec<StateChange> {
        let mut changes = vec![];
        for _ in 0..8 {
            let mut any = false;
            if let Some(p) = a.poll_transmit(now) {
                changes.extend(b.receive(&p, now).unwrap());
                any = true;
            }
            if let Some(p) = b.poll_transmit(now) {
                changes.extend(a.receive(&p, now).unwrap());
                any = true;
            }
            if !any {
                break;
            }
        }
        changes
    }

    #[test]
    fn three_way_handshake_and_poll_sequence() {
        let t0 = Instant::now();
        let mut a = Session::new(BfdConfig::default(), 1, 7, t0);
        let mut b = Session::new(BfdConfig::default(), 2, 9, t0);
        // Slow start: 1 s while not Up.
        let p = a.poll_transmit(t0).unwrap();
        assert_eq!(
            (p.state, p.desired_min_tx_us, p.required_min_rx_us, p.your_discr),
            (BfdState::Down, 1_000_000, 300_000, 0)
        );
        assert_eq!(b.receive(&p, t0).unwrap(), vec![StateChange { from: BfdState::Down, to: BfdState::Init, diag: 0 }]);
        let changes = exchange(&mut a, &mut b, t0);
        assert_eq!(a.state(), BfdState::Up);
        assert_eq!(b.state(), BfdState::Up);
        assert!(changes.iter().any(|c| c.to == BfdState::Up));
        assert_eq!(a.remote_discr(), 2);
        assert_eq!(b.remote_discr(), 1);
        // The poll sequences (down to 300 ms) completed within the exchange.
        assert!(!a.polling() && !b.polling());
        assert_eq!(a.tx_interval(), 300 * MS);
        // Detection time = remote mult x max(our RX, remote TX) = 3 x 300 ms.
        assert_eq!(a.detection_time(), Some(900 * MS));
    }

    #[test]
    fn poll_bit_until_final() {
        let t0 = Instant::now();
        let mut a = Session::new(BfdConfig::default(), 1, 7, t0);
        a.receive(&peer_packet(BfdState::Init, 5, 0), t0).unwrap();
        assert_eq!(a.state(), BfdState::Up);
        assert!(a.polling());
        // The increase of RX... (none here) and the TX decrease apply at once.
        assert_eq!(a.tx_interval(), 300 * MS);
        let p = a.poll_transmit(t0).unwrap();
        assert!(p.poll && !p.final_);
        assert_eq!(p.desired_min_tx_us, 300_000);
        // Still polling on the next periodic packet.
        let p = a.poll_transmit(t0 + Duration::from_secs(1)).unwrap();
        assert!(p.poll);
        let mut fin = peer_packet(BfdState::Up, 5, 1);
        fin.final_ = true;
        a.receive(&fin, t0 + Duration::from_secs(1)).unwrap();
        assert!(!a.polling());
        let p = a.poll_transmit(t0 + Duration::from_secs(2)).unwrap();
        assert!(!p.poll);
        // Answer a poll with a Final at once, P clear.
        let mut poll = peer_packet(BfdState::Up, 5, 1);
        poll.poll = true;
        let t = t0 + Duration::from_millis(2010);
        a.receive(&poll, t).unwrap();
        assert!(a.next_deadline().unwrap() <= Instant::now());
        let p = a.poll_transmit(t).unwrap();
        assert!(p.final_ && !p.poll);
    }

    #[test]
    fn rx_decrease_waits_for_final() {
        let t0 = Instant::now();
        let cfg = BfdConfig { min_tx: 300 * MS, min_rx: 500 * MS, multiplier: 3 };
        let mut a = Session::new(cfg, 1, 7, t0);
        a.receive(&peer_packet(BfdState::Init, 5, 0), t0).unwrap();
        let mut fin = peer_packet(BfdState::Up, 5, 1);
        fin.final_ = true;
        a.receive(&fin, t0).unwrap();
        assert_eq!(a.detection_time(), Some(1500 * MS));
        a.set_intervals(300 * MS, 100 * MS);
        assert!(a.polling());
        a.receive(&peer_packet(BfdState::Up, 5, 1), t0).unwrap();
        assert_eq!(a.detection_time(), Some(1500 * MS), "old RX until the Final");
        a.receive(&fin, t0).unwrap();
        assert_eq!(a.detection_time(), Some(900 * MS), "remote TX 300 ms now dominates");
    }

    #[test]
    fn detection_timeout() {
        let t0 = Instant::now();
        let mut a = Session::new(BfdConfig::default(), 1, 7, t0);
        a.receive(&peer_packet(BfdState::Init, 5, 0), t0).unwrap();
        assert_eq!(a.state(), BfdState::Up);
        assert!(a.timeout(t0 + 899 * MS).is_empty());
        // A packet restarts the timer.
        a.receive(&peer_packet(BfdState::Up, 5, 1), t0 + 800 * MS).unwrap();
        assert!(a.timeout(t0 + 1600 * MS).is_empty());
        let c = a.timeout(t0 + 1700 * MS);
        assert_eq!(c, vec![StateChange { from: BfdState::Up, to: BfdState::Down, diag: diag::DETECTION_TIME_EXPIRED }]);
        assert_eq!(a.remote_discr(), 0);
        assert!(a.was_up());
        // Back to the slow rate, the diagnostic goes out.
        let p = a.poll_transmit(t0 + 1700 * MS).unwrap();
        assert_eq!((p.state, p.diag, p.desired_min_tx_us, p.your_discr), (BfdState::Down, 1, 1_000_000, 0));
        assert!(!p.poll);
    }

    #[test]
    fn discard_rules() {
        let t0 = Instant::now();
        let mut a = Session::new(BfdConfig::default(), 1, 7, t0);
        // Wrong Your Discriminator.
        assert!(a.receive(&peer_packet(BfdState::Down, 5, 99), t0).is_none());
        a.receive(&peer_packet(BfdState::Init, 5, 0), t0).unwrap();
        // Your Discriminator zero while Up.
        assert!(a.receive(&peer_packet(BfdState::Up, 5, 0), t0).is_none());
        // Neighbor says Down / AdminDown.
        let c = a.receive(&peer_packet(BfdState::Down, 5, 1), t0).unwrap();
        assert_eq!(c, vec![StateChange { from: BfdState::Up, to: BfdState::Down, diag: diag::NEIGHBOR_DOWN }]);
        // Down + Down -> Init; Init + AdminDown -> Down.
        a.receive(&peer_packet(BfdState::Down, 5, 0), t0).unwrap();
        assert_eq!(a.state(), BfdState::Init);
        let c = a.receive(&peer_packet(BfdState::AdminDown, 5, 1), t0).unwrap();
        assert_eq!(c[0].to, BfdState::Down);
        assert_eq!(c[0].diag, diag::NEIGHBOR_DOWN);
        // Down + Up: stays Down.
        a.receive(&peer_packet(BfdState::Up, 5, 1), t0).unwrap();
        assert_eq!(a.state(), BfdState::Down);
    }

    #[test]
    fn jitter_bounds() {
        let t0 = Instant::now();
        for (mult, hi) in [(3u8, 100u32), (1, 90)] {
            let cfg = BfdConfig { multiplier: mult, ..BfdConfig::default() };
            let mut a = Session::new(cfg, 1, 12345, t0);
            a.poll_transmit(t0).unwrap();
            let (mut lo_seen, mut hi_seen) = (u32::MAX, 0);
            let mut now = t0;
            for _ in 0..2000 {
                let next = a.next_deadline().unwrap();
                let d = (next - now).as_millis() as u32;
                lo_seen = lo_seen.min(d);
                hi_seen = hi_seen.max(d);
                assert!((750..=hi * 10).contains(&d), "interval {d} ms with mult {mult}");
                now = next;
                a.poll_transmit(now).unwrap();
            }
            assert!(lo_seen <= 760 && hi_seen >= hi * 10 - 10, "{lo_seen}..{hi_seen}");
        }
    }

    #[test]
    fn admin_down_and_zero_remote_rx() {
        let t0 = Instant::now();
        let mut a = Session::new(BfdConfig::default(), 1, 7, t0);
        let c = a.set_admin_down(true);
        assert_eq!(c[0].to, BfdState::AdminDown);
        let p = a.poll_transmit(t0).unwrap();
        assert_eq!((p.state, p.diag), (BfdState::AdminDown, diag::ADMIN_DOWN));
        // Ignored while AdminDown.
        assert!(a.receive(&peer_packet(BfdState::Init, 5, 0), t0).unwrap().is_empty());
        assert_eq!(a.state(), BfdState::AdminDown);
        assert_eq!(a.set_admin_down(false)[0].to, BfdState::Down);
        let mut p = peer_packet(BfdState::Down, 5, 0);
        p.required_min_rx_us = 0;
        a.receive(&p, t0).unwrap();
        assert!(a.poll_transmit(t0 + Duration::from_secs(5)).is_none(), "remote wants no packets");
    }
}
