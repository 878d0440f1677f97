//! A deterministic test per collision case (RFC 4271 section 6.8, RFC 6286,
//! RFC 4724 section 4.2) and for the peer's other rules: every input and
//! the time are given, every output is checked.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::fsm::{Backoff, LocalConfig, OPEN_HOLD_TIME};
use crate::wire::{Capability, ErrorCode, GracefulRestart};

const PEER_AS: u32 = 64512;
const LOCAL_AS: u32 = 64513;
const LOW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const HIGH: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

/// A peer machine and the time, with the outputs of each step.
struct Harness {
    p: Peer,
    now: Instant,
}

impl Harness {
    fn new(local_id: Ipv4Addr, passive: bool) -> Harness {
        let c = LocalConfig { remote_as: Some(PEER_AS), passive, ..LocalConfig::new(LOCAL_AS, local_id) };
        Harness { p: Peer::new(Fsm::new(c, Backoff::default(), 7)), now: Instant::now() }
    }

    fn input(&mut self, i: Input) -> Vec<Output> {
        let mut out = Vec::new();
        self.p.handle(i, self.now, &mut out);
        out
    }

    fn accept(&mut self) -> (ConnId, Vec<Output>) {
        let mut out = Vec::new();
        let id = self.p.accept(self.now, &mut out);
        (id, out)
    }

    fn open(&mut self, c: ConnId, open: Open) -> Vec<Output> {
        self.input(Input::Message(c, Message::Open(open)))
    }

    fn keepalive(&mut self, c: ConnId) -> Vec<Output> {
        self.input(Input::Message(c, Message::Keepalive))
    }

    fn advance(&mut self, d: Duration) -> Vec<Output> {
        self.now += d;
        let mut out = Vec::new();
        self.p.handle_timeout(self.now, &mut out);
        out
    }

    /// Start and let the dialed connection come up: our connection in OpenSent.
    fn dialed(&mut self) -> ConnId {
        let out = self.input(Input::Start);
        let c = connect_of(&out).expect("dials");
        let out = self.input(Input::Connected(c));
        assert!(matches!(sent(&out, c)[..], [Message::Open(_)]), "{out:?}");
        assert_eq!(self.p.state(), State::OpenSent);
        c
    }

    /// Bring connection `c` (in OpenSent) to Established.
    fn establish(&mut self, c: ConnId, open: Open) -> Vec<Output> {
        let mut out = self.open(c, open);
        out.extend(self.keepalive(c));
        assert_eq!(self.p.session_conn(), Some(c), "{out:?}");
        out
    }
}

fn peer_open(id: Ipv4Addr, asn: u32, graceful_restart: bool) -> Open {
    let mut caps = vec![Capability::Multiprotocol(Family::IPV4_UNICAST), Capability::FourOctetAs(asn)];
    if graceful_restart {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restarting: false,
            notification: false,
            restart_time: 120,
            families: vec![],
        }));
    }
    Open::new(asn, 90, id, caps)
}

fn connect_of(out: &[Output]) -> Option<ConnId> {
    out.iter().find_map(|o| match o {
        Output::Connect(c) => Some(*c),
        _ => None,
    })
}

fn sent(out: &[Output], conn: ConnId) -> Vec<&Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(c, m) if *c == conn => Some(m),
            _ => None,
        })
        .collect()
}

/// The Cease subcode sent on `conn`, if a Cease was.
fn cease_on(out: &[Output], conn: ConnId) -> Option<Cease> {
    sent(out, conn).into_iter().find_map(|m| match m {
        Message::Notification(Notification { error: ErrorCode::Cease(c), .. }) => Some(*c),
        _ => None,
    })
}

fn closed(out: &[Output]) -> Vec<ConnId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Close(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn discarded(out: &[Output]) -> Vec<(ConnId, Discard)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Discarded { conn, why } => Some((*conn, why.clone())),
            _ => None,
        })
        .collect()
}

fn downs(out: &[Output]) -> Vec<&DownReason> {
    out.iter()
        .filter_map(|o| match o {
            Output::Down(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn states(out: &[Output]) -> Vec<(State, State)> {
    out.iter()
        .filter_map(|o| match o {
            Output::StateChanged { from, to } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn established_on(out: &[Output]) -> Option<ConnId> {
    out.iter().find_map(|o| match o {
        Output::Established(c, _) => Some(*c),
        _ => None,
    })
}

/// `conn` lost a collision to `kept` by `rule`: Cease / Connection
/// Collision Resolution, closed, reported.
fn assert_lost(out: &[Output], conn: ConnId, kept: ConnId, rule: CollisionRule) {
    assert_eq!(cease_on(out, conn), Some(Cease::ConnectionCollision), "{out:?}");
    assert!(closed(out).contains(&conn), "{out:?}");
    assert!(discarded(out).contains(&(conn, Discard::Collision { kept, rule })), "{out:?}");
}

#[test]
fn inbound_while_connect_abandons_the_dial_and_takes_the_connection() {
    let mut h = Harness::new(LOW, false);
    let out = h.input(Input::Start);
    let attempt = connect_of(&out).unwrap();
    assert_eq!(h.p.state(), State::Connect);
    let (inb, out) = h.accept();
    assert_eq!(closed(&out), vec![attempt], "the dial in flight is abandoned");
    assert!(matches!(sent(&out, inb)[..], [Message::Open(_)]));
    assert_eq!(states(&out), vec![(State::Connect, State::OpenSent)]);
    // The abandoned dial completing late is closed, not taken.
    let out = h.input(Input::Connected(attempt));
    assert_eq!(closed(&out), vec![attempt]);
    let out = h.establish(inb, peer_open(HIGH, PEER_AS, false));
    assert_eq!(established_on(&out), Some(inb));
}

#[test]
fn inbound_while_active_is_taken() {
    let mut h = Harness::new(LOW, false);
    let out = h.input(Input::Start);
    let attempt = connect_of(&out).unwrap();
    h.input(Input::ConnectFailed(attempt));
    assert_eq!(h.p.state(), State::Active);
    let (inb, out) = h.accept();
    assert!(closed(&out).is_empty(), "nothing in flight: {out:?}");
    assert!(matches!(sent(&out, inb)[..], [Message::Open(_)]));
    assert_eq!(h.p.state(), State::OpenSent);
    // The connect-retry timer no longer dials.
    let out = h.advance(Duration::from_secs(10));
    assert_eq!(connect_of(&out), None, "{out:?}");
}

#[test]
fn inbound_while_waiting_to_restart_is_taken_without_dialing() {
    let mut h = Harness::new(LOW, false);
    let c = h.dialed();
    h.input(Input::Closed(c));
    assert_eq!(h.p.state(), State::Idle);
    assert!(h.p.poll_timeout().is_some(), "the restart back-off runs");
    let (inb, out) = h.accept();
    assert_eq!(connect_of(&out), None);
    assert!(matches!(sent(&out, inb)[..], [Message::Open(_)]));
    assert_eq!(states(&out), vec![(State::Idle, State::OpenSent)]);
    // The back-off no longer restarts anything.
    let out = h.advance(Duration::from_secs(5));
    assert_eq!(connect_of(&out), None, "{out:?}");
    assert_eq!(h.p.state(), State::OpenSent);
}

#[test]
fn inbound_while_stopped_is_rejected() {
    let mut h = Harness::new(LOW, false);
    let (c, out) = h.accept();
    assert_eq!(cease_on(&out, c), Some(Cease::ConnectionRejected), "before Start: {out:?}");
    assert_eq!(closed(&out), vec![c]);
    assert_eq!(discarded(&out), vec![(c, Discard::Rejected)]);
    let d = h.dialed();
    let out = h.input(Input::Stop(Some(Notification::admin_shutdown("bye"))));
    assert_eq!(cease_on(&out, d), Some(Cease::AdminShutdown));
    let (c, out) = h.accept();
    assert_eq!(cease_on(&out, c), Some(Cease::ConnectionRejected), "after Stop: {out:?}");
    assert_eq!(h.p.state(), State::Idle);
}

#[test]
fn held_down_refuses_connections_and_restarts_at_the_time_given() {
    let mut h = Harness::new(LOW, false);
    let c = h.dialed();
    h.establish(c, peer_open(HIGH, PEER_AS, false));
    let until = h.now + Duration::from_secs(30);
    let n = Notification::new(Cease::MaxPrefixes, vec![0, 1, 1, 0, 0, 0, 100]);
    let out = h.input(Input::HoldDown { notification: n.clone(), until: Some(until) });
    assert_eq!(sent(&out, c), vec![&Message::Notification(n.clone())]);
    assert_eq!(downs(&out), vec![&DownReason::Sent(n)]);
    assert_eq!(h.p.held_down(), Some(Some(until)));
    assert_eq!(h.p.poll_timeout(), Some(until), "nothing but the end of the hold-down is due");
    let (inb, out) = h.accept();
    assert_eq!(cease_on(&out, inb), Some(Cease::ConnectionRejected));
    let out = h.advance(Duration::from_secs(29));
    assert!(out.is_empty(), "{out:?}");
    let out = h.advance(Duration::from_secs(1));
    assert!(connect_of(&out).is_some(), "restarts at the time given: {out:?}");
    assert_eq!(h.p.held_down(), None);
}

#[test]
fn held_down_without_a_time_waits_for_start() {
    let mut h = Harness::new(LOW, false);
    let c = h.dialed();
    h.establish(c, peer_open(HIGH, PEER_AS, false));
    h.input(Input::HoldDown { notification: Notification::new(Cease::MaxPrefixes, vec![]), until: None });
    assert_eq!((h.p.held_down(), h.p.poll_timeout()), (Some(None), None));
    let out = h.input(Input::Start);
    assert!(connect_of(&out).is_some());
}

#[test]
fn collision_in_opensent_higher_local_id_keeps_our_connection() {
    let mut h = Harness::new(HIGH, false);
    let ours = h.dialed();
    let (theirs, out) = h.accept();
    assert!(matches!(sent(&out, theirs)[..], [Message::Open(_)]), "our OPEN on theirs too: {out:?}");
    assert!(states(&out).is_empty(), "the session's state is its own connection's");
    let out = h.open(theirs, peer_open(LOW, PEER_AS, false));
    assert_lost(&out, theirs, ours, CollisionRule::HigherId);
    assert!(sent(&out, ours).is_empty() && downs(&out).is_empty(), "{out:?}");
    assert_eq!(h.p.state(), State::OpenSent);
    let out = h.establish(ours, peer_open(LOW, PEER_AS, false));
    assert_eq!(established_on(&out), Some(ours));
    assert_eq!(h.p.connections().collect::<Vec<_>>(), vec![ours]);
}

#[test]
fn collision_in_opensent_lower_local_id_keeps_the_peers_connection() {
    let mut h = Harness::new(LOW, false);
    let ours = h.dialed();
    let (theirs, _) = h.accept();
    let out = h.open(theirs, peer_open(HIGH, PEER_AS, false));
    assert_lost(&out, ours, theirs, CollisionRule::HigherId);
    assert_eq!(sent(&out, theirs), vec![&Message::Keepalive], "their OPEN accepted");
    assert_eq!(states(&out), vec![(State::OpenSent, State::OpenConfirm)]);
    assert!(downs(&out).is_empty(), "a lost collision is not a session down: {out:?}");
    let out = h.keepalive(theirs);
    assert_eq!(established_on(&out), Some(theirs));
    assert_eq!(h.p.connections().collect::<Vec<_>>(), vec![theirs]);
}

#[test]
fn collision_decided_by_the_open_on_our_connection() {
    // The peer's OPEN arrives on our connection first; theirs waits for its OPEN.
    for (local, keep_ours) in [(HIGH, true), (LOW, false)] {
        let mut h = Harness::new(local, false);
        let ours = h.dialed();
        let (theirs, _) = h.accept();
        let remote = if local == HIGH { LOW } else { HIGH };
        let out = h.open(ours, peer_open(remote, PEER_AS, false));
        if keep_ours {
            assert_lost(&out, theirs, ours, CollisionRule::HigherId);
            assert_eq!(h.p.state(), State::OpenConfirm);
            assert_eq!(established_on(&h.keepalive(ours)), Some(ours));
        } else {
            assert_lost(&out, ours, theirs, CollisionRule::HigherId);
            assert_eq!(h.p.state(), State::OpenSent, "theirs has not sent its OPEN yet");
            h.establish(theirs, peer_open(remote, PEER_AS, false));
        }
    }
}

#[test]
fn collision_in_openconfirm_is_decided_by_the_second_open() {
    for (local, keep_ours) in [(HIGH, true), (LOW, false)] {
        let mut h = Harness::new(local, false);
        let remote = if local == HIGH { LOW } else { HIGH };
        let ours = h.dialed();
        h.open(ours, peer_open(remote, PEER_AS, false));
        assert_eq!(h.p.state(), State::OpenConfirm);
        let (theirs, out) = h.accept();
        assert!(matches!(sent(&out, theirs)[..], [Message::Open(_)]));
        let out = h.open(theirs, peer_open(remote, PEER_AS, false));
        if keep_ours {
            assert_lost(&out, theirs, ours, CollisionRule::HigherId);
            assert_eq!(h.p.state(), State::OpenConfirm);
            assert_eq!(established_on(&h.keepalive(ours)), Some(ours));
        } else {
            assert_lost(&out, ours, theirs, CollisionRule::HigherId);
            assert_eq!(sent(&out, theirs), vec![&Message::Keepalive]);
            assert_eq!(h.p.state(), State::OpenConfirm);
            assert_eq!(established_on(&h.keepalive(theirs)), Some(theirs));
        }
    }
}

#[test]
fn equal_identifiers_keep_the_larger_as_connection_rfc6286() {
    let id = Ipv4Addr::new(10, 0, 0, 5);
    // We are AS 64513: a peer of AS 64512 is smaller (ours kept), 64999 larger (theirs kept).
    for (remote_as, keep_ours) in [(64512, true), (64999, false)] {
        let c = LocalConfig { remote_as: Some(remote_as), ..LocalConfig::new(LOCAL_AS, id) };
        let mut h = Harness { p: Peer::new(Fsm::new(c, Backoff::default(), 7)), now: Instant::now() };
        let ours = h.dialed();
        let (theirs, _) = h.accept();
        let out = h.open(theirs, peer_open(id, remote_as, false));
        if keep_ours {
            assert_lost(&out, theirs, ours, CollisionRule::LargerAs);
        } else {
            assert_lost(&out, ours, theirs, CollisionRule::LargerAs);
            assert_eq!(h.p.state(), State::OpenConfirm);
        }
    }
}

#[test]
fn inbound_while_established_is_refused_with_collision_cease() {
    let mut h = Harness::new(LOW, false);
    let ours = h.dialed();
    h.establish(ours, peer_open(HIGH, PEER_AS, false));
    let (c, out) = h.accept();
    assert_eq!(cease_on(&out, c), Some(Cease::ConnectionCollision));
    assert_eq!(closed(&out), vec![c]);
    assert_eq!(discarded(&out), vec![(c, Discard::WhileEstablished)]);
    assert!(sent(&out, ours).is_empty() && states(&out).is_empty());
    assert_eq!(h.p.session_conn(), Some(ours));
}

#[test]
fn a_peer_restarting_gracefully_replaces_the_established_session() {
    let mut h = Harness::new(HIGH, false);
    let ours = h.dialed();
    h.establish(ours, peer_open(LOW, PEER_AS, true));
    // The peer restarted and dials again before our side noticed.
    let (new, out) = h.accept();
    assert!(matches!(sent(&out, new)[..], [Message::Open(_)]), "kept to read its OPEN: {out:?}");
    assert!(closed(&out).is_empty());
    assert_eq!(h.p.session_conn(), Some(ours), "the old session runs until the new OPEN");
    let mut restarted = peer_open(LOW, PEER_AS, true);
    let Some(Capability::GracefulRestart(gr)) = restarted.params[0].last_mut() else { panic!() };
    gr.restarting = true;
    let out = h.open(new, restarted);
    // The old session is closed without a NOTIFICATION, as if it dropped.
    assert!(sent(&out, ours).is_empty(), "{out:?}");
    assert!(closed(&out).contains(&ours));
    assert_eq!(downs(&out), vec![&DownReason::PeerRestarted]);
    assert_eq!(
        states(&out),
        vec![(State::Established, State::Idle), (State::Idle, State::OpenSent), (State::OpenSent, State::OpenConfirm)]
    );
    assert_eq!(sent(&out, new), vec![&Message::Keepalive]);
    assert_eq!(established_on(&h.keepalive(new)), Some(new));
}

#[test]
fn a_bad_open_on_the_new_connection_of_a_graceful_peer_leaves_the_session_alone() {
    let mut h = Harness::new(HIGH, false);
    let ours = h.dialed();
    h.establish(ours, peer_open(LOW, PEER_AS, true));
    let (new, _) = h.accept();
    let out = h.open(new, peer_open(LOW, 65000, true));
    assert_eq!(sent(&out, new).len(), 1, "its own NOTIFICATION: {out:?}");
    assert!(matches!(
        sent(&out, new)[0],
        Message::Notification(Notification { error: ErrorCode::Open(crate::wire::OpenError::BadPeerAs), .. })
    ));
    assert!(downs(&out).is_empty() && states(&out).is_empty());
    assert!(matches!(&discarded(&out)[..], [(c, Discard::Failed(DownReason::Sent(_)))] if *c == new));
    assert_eq!(h.p.session_conn(), Some(ours));
}

#[test]
fn passive_peer_waits_and_a_newer_inbound_replaces_a_pending_one() {
    let mut h = Harness::new(LOW, true);
    let out = h.input(Input::Start);
    assert_eq!((connect_of(&out), h.p.state()), (None, State::Active));
    assert_eq!(h.p.poll_timeout(), None, "a passive peer never dials");
    let (first, out) = h.accept();
    assert!(matches!(sent(&out, first)[..], [Message::Open(_)]));
    assert_eq!(h.p.state(), State::OpenSent);
    // The peer gave up on `first` (say it restarted) and connects again.
    let (second, out) = h.accept();
    assert!(matches!(sent(&out, second)[..], [Message::Open(_)]));
    assert_eq!(cease_on(&out, first), Some(Cease::ConnectionCollision));
    assert!(closed(&out).contains(&first));
    assert_eq!(discarded(&out), vec![(first, Discard::Replaced { by: second })]);
    assert!(downs(&out).is_empty() && states(&out).is_empty(), "{out:?}");
    assert_eq!(h.p.connections().collect::<Vec<_>>(), vec![second]);
    // Messages on the replaced connection are ignored.
    assert!(h.keepalive(first).is_empty());
    let out = h.establish(second, peer_open(HIGH, PEER_AS, false));
    assert_eq!(established_on(&out), Some(second));
}

#[test]
fn a_second_inbound_while_one_is_pending_replaces_it() {
    let mut h = Harness::new(HIGH, false);
    let ours = h.dialed();
    let (first, _) = h.accept();
    let (second, out) = h.accept();
    assert_eq!(cease_on(&out, first), Some(Cease::ConnectionCollision));
    assert_eq!(discarded(&out), vec![(first, Discard::Replaced { by: second })]);
    assert!(sent(&out, ours).is_empty(), "our connection is not touched");
    let mut ids: Vec<ConnId> = h.p.connections().collect();
    ids.sort();
    assert_eq!(ids, vec![ours, second], "at most two connections");
    let out = h.open(second, peer_open(LOW, PEER_AS, false));
    assert_lost(&out, second, ours, CollisionRule::HigherId);
}

#[test]
fn our_connection_closed_by_the_peers_resolution_hands_over_to_theirs() {
    let mut h = Harness::new(LOW, false);
    let ours = h.dialed();
    let (theirs, _) = h.accept();
    // The peer (higher identifier) resolved first and closed ours.
    let cease = Notification::new(Cease::ConnectionCollision, vec![]);
    let out = h.input(Input::Message(ours, Message::Notification(cease.clone())));
    assert!(downs(&out).is_empty() && states(&out).is_empty(), "{out:?}");
    assert_eq!(discarded(&out), vec![(ours, Discard::Failed(DownReason::Received(cease)))]);
    assert_eq!(closed(&out), vec![ours]);
    assert_eq!(connect_of(&out), None, "no restart: theirs carries on");
    let out = h.establish(theirs, peer_open(HIGH, PEER_AS, false));
    assert_eq!(established_on(&out), Some(theirs));
    // No back-off timer of the failed FSM is left over.
    let due = h.p.poll_timeout().unwrap();
    assert!(due >= h.now + Duration::from_secs(20), "only keepalive and hold: {due:?}");
}

#[test]
fn the_connection_established_first_closes_the_other() {
    // Our connection is in OpenConfirm when theirs arrives; our keepalive comes first.
    let mut h = Harness::new(LOW, false);
    let ours = h.dialed();
    h.open(ours, peer_open(HIGH, PEER_AS, false));
    let (theirs, _) = h.accept();
    let out = h.keepalive(ours);
    assert_eq!(established_on(&out), Some(ours));
    assert_lost(&out, theirs, ours, CollisionRule::Established);
    assert_eq!(states(&out), vec![(State::OpenConfirm, State::Established)]);
}

#[test]
fn a_failing_colliding_connection_goes_alone() {
    let mut h = Harness::new(HIGH, false);
    let ours = h.dialed();
    let (theirs, _) = h.accept();
    // Garbage on theirs: its own NOTIFICATION, ours is untouched.
    let out = h.input(Input::DecodeError(theirs, DecodeError::ConnectionNotSynchronized));
    assert_eq!(sent(&out, theirs).len(), 1);
    assert!(sent(&out, ours).is_empty() && downs(&out).is_empty() && states(&out).is_empty());
    assert!(matches!(&discarded(&out)[..], [(c, Discard::Failed(_))] if *c == theirs));
    // So does a peer closing it.
    let (again, _) = h.accept();
    let out = h.input(Input::Closed(again));
    assert_eq!(discarded(&out), vec![(again, Discard::Failed(DownReason::ConnectionLost))]);
    assert_eq!(h.p.connections().collect::<Vec<_>>(), vec![ours]);
    h.establish(ours, peer_open(LOW, PEER_AS, false));
}

#[test]
fn stop_closes_both_connections_with_its_notification() {
    let mut h = Harness::new(HIGH, false);
    let ours = h.dialed();
    let (theirs, _) = h.accept();
    let out = h.input(Input::Stop(Some(Notification::admin_shutdown("node drained"))));
    assert_eq!(cease_on(&out, ours), Some(Cease::AdminShutdown));
    assert_eq!(cease_on(&out, theirs), Some(Cease::AdminShutdown));
    let mut c = closed(&out);
    c.sort();
    assert_eq!(c, vec![ours, theirs]);
    assert_eq!(h.p.state(), State::Idle);
    assert_eq!(h.p.connections().count(), 0);
    assert_eq!(h.p.poll_timeout(), None, "stopped: nothing left to do");
}

#[test]
fn timers_run_through_handle_timeout() {
    let mut h = Harness::new(LOW, false);
    let ours = h.dialed();
    assert_eq!(h.p.poll_timeout(), Some(h.now + OPEN_HOLD_TIME), "the OPEN hold timer");
    h.establish(ours, peer_open(HIGH, PEER_AS, false));
    // Hold 90 s, keepalive 30 s.
    let out = h.advance(Duration::from_secs(30));
    assert_eq!(sent(&out, ours), vec![&Message::Keepalive]);
    let out = h.advance(Duration::from_secs(60));
    let n = Notification::new(ErrorCode::HoldTimerExpired, vec![]);
    assert_eq!(sent(&out, ours).last(), Some(&&Message::Notification(n.clone())));
    assert_eq!(downs(&out), vec![&DownReason::Sent(n)]);
    assert_eq!(h.p.state(), State::Idle);
    // The back-off restart dials again.
    let out = h.advance(Duration::from_secs(2));
    assert!(connect_of(&out).is_some(), "{out:?}");
}

#[test]
fn reset_tears_an_established_session_down_and_dials_again() {
    let mut h = Harness::new(LOW, false);
    let ours = h.dialed();
    assert!(h.input(Input::Reset(Notification::new(Cease::BfdDown, vec![]))).is_empty(), "not Established");
    h.establish(ours, peer_open(HIGH, PEER_AS, false));
    let out = h.input(Input::Reset(Notification::new(Cease::BfdDown, vec![])));
    assert_eq!(cease_on(&out, ours), Some(Cease::BfdDown));
    assert_eq!(states(&out), vec![(State::Established, State::Idle), (State::Idle, State::Connect)]);
    assert!(connect_of(&out).is_some());
}

#[test]
fn resolve_collision_compares_identifiers_then_as_numbers() {
    let (a, b) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(resolve_collision(a, 1, b, 2), (true, CollisionRule::HigherId));
    assert_eq!(resolve_collision(b, 2, a, 1), (false, CollisionRule::HigherId));
    assert_eq!(resolve_collision(a, 2, a, 1), (true, CollisionRule::LargerAs));
    assert_eq!(resolve_collision(a, 1, a, 2), (false, CollisionRule::LargerAs));
}

#[test]
fn an_idle_session_is_due_once_per_keepalive_and_the_peers_keepalive_moves_no_deadline_but_the_hold_timer() {
    // Hold 90 s: ours every 30 s. The one deadline to sleep until is our
    // KEEPALIVE's; the peer's keepalives move the hold timer, behind it.
    let mut h = Harness::new(LOW, false);
    let c = h.dialed();
    h.establish(c, peer_open(HIGH, PEER_AS, false));
    let t0 = h.now;
    let s = Duration::from_secs;
    assert_eq!(h.p.poll_timeout(), Some(t0 + s(30)));
    h.now = t0 + s(10);
    let out = h.keepalive(c);
    assert!(sent(&out, c).is_empty(), "{out:?}");
    assert_eq!(h.p.poll_timeout(), Some(t0 + s(30)), "the deadline did not move");
    // The peer's KEEPALIVE 5 s before ours is due: ours goes with it and
    // the next deadline is a whole interval from now.
    h.now = t0 + s(25);
    let out = h.keepalive(c);
    assert_eq!(sent(&out, c), vec![&Message::Keepalive]);
    assert_eq!(h.p.poll_timeout(), Some(t0 + s(55)));
    // Nothing is due at the old deadline.
    h.now = t0 + s(30);
    assert!(h.advance(Duration::ZERO).is_empty());
    let out = h.advance(s(25));
    assert_eq!(sent(&out, c), vec![&Message::Keepalive]);
    assert_eq!(h.p.poll_timeout(), Some(t0 + s(85)));
}
