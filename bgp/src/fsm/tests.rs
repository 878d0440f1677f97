//! Deterministic tests of every FSM transition, error paths included.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::wire::{Capability, ExtendedNextHop, Open, Update, AFI_IPV4};

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
const PEER_ID: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn config() -> LocalConfig {
    LocalConfig {
        remote_as: Some(64512),
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        ..LocalConfig::new(64513, LOCAL_ID)
    }
}

fn peer_open(asn: u32, hold: u16) -> Open {
    Open::new(
        asn,
        hold,
        PEER_ID,
        vec![Capability::Multiprotocol(Family::IPV4_UNICAST), Capability::RouteRefresh, Capability::FourOctetAs(asn)],
    )
}

fn sent(actions: &[Action]) -> Vec<&Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn notification_sent(actions: &[Action]) -> Option<(u8, u8)> {
    sent(actions).into_iter().find_map(|m| match m {
        Message::Notification(n) => Some((n.code(), n.subcode())),
        _ => None,
    })
}

fn timer_at(actions: &[Action], t: Timer) -> Option<Instant> {
    actions.iter().rev().find_map(|a| match a {
        Action::StartTimer(x, at) if *x == t => Some(*at),
        _ => None,
    })
}

/// Drive a fresh FSM to Established against a peer with hold time `hold`.
fn established(hold: u16) -> (Fsm, Instant) {
    let t0 = Instant::now();
    let mut f = Fsm::new(config(), Backoff::default(), 42);
    f.handle(Event::Start, t0);
    f.handle(Event::Connected, t0);
    f.handle(Event::Message(Message::Open(peer_open(64512, hold))), t0);
    let a = f.handle(Event::Message(Message::Keepalive), t0);
    assert!(a.iter().any(|a| matches!(a, Action::Established(_))));
    assert_eq!(f.state(), State::Established);
    (f, t0)
}

#[test]
fn start_connects_and_arms_connect_retry() {
    let t0 = Instant::now();
    let mut f = Fsm::new(config(), Backoff::default(), 1);
    let a = f.handle(Event::Start, t0);
    assert!(a.contains(&Action::Connect));
    let retry = timer_at(&a, Timer::ConnectRetry).unwrap() - t0;
    // 5 s jittered by ±25 %.
    assert!(retry >= Duration::from_millis(3750) && retry < Duration::from_millis(6250), "{retry:?}");
    assert_eq!(f.state(), State::Connect);
}

#[test]
fn passive_waits_in_active_without_connecting() {
    let t0 = Instant::now();
    let mut f = Fsm::new(LocalConfig { passive: true, ..config() }, Backoff::default(), 1);
    let a = f.handle(Event::Start, t0);
    assert!(!a.contains(&Action::Connect));
    assert_eq!(f.state(), State::Active);
    assert!(!f.handle(Event::TimerExpired(Timer::ConnectRetry), t0).contains(&Action::Connect));
    f.handle(Event::Connected, t0);
    assert_eq!(f.state(), State::OpenSent);
}

#[test]
fn connect_failure_goes_active_then_retries() {
    let t0 = Instant::now();
    let mut f = Fsm::new(config(), Backoff::default(), 1);
    f.handle(Event::Start, t0);
    let a = f.handle(Event::ConnectFailed, t0);
    assert_eq!(f.state(), State::Active);
    assert!(timer_at(&a, Timer::ConnectRetry).is_some());
    let a = f.handle(Event::TimerExpired(Timer::ConnectRetry), t0 + Duration::from_secs(5));
    assert!(a.contains(&Action::Connect));
    assert_eq!(f.state(), State::Connect);
    // A retry while an attempt is in flight abandons it first.
    let a = f.handle(Event::TimerExpired(Timer::ConnectRetry), t0 + Duration::from_secs(10));
    assert_eq!(a.iter().position(|x| *x == Action::Close), Some(0));
    assert!(a.contains(&Action::Connect));
}

#[test]
fn handshake_sends_open_then_keepalive_and_negotiates() {
    let t0 = Instant::now();
    let mut f = Fsm::new(config(), Backoff::default(), 1);
    f.handle(Event::Start, t0);
    let a = f.handle(Event::Connected, t0);
    let Message::Open(open) = sent(&a)[0] else { panic!("{a:?}") };
    assert_eq!(open.asn(), 64513);
    assert_eq!(open.hold_time, 90);
    assert_eq!(timer_at(&a, Timer::Hold), Some(t0 + OPEN_HOLD_TIME));
    assert_eq!(f.state(), State::OpenSent);

    let a = f.handle(Event::Message(Message::Open(peer_open(64512, 30))), t0);
    assert_eq!(sent(&a), vec![&Message::Keepalive]);
    assert!(a.contains(&Action::OpenReceived { remote_id: PEER_ID }));
    assert_eq!(timer_at(&a, Timer::Hold), Some(t0 + Duration::from_secs(30)));
    assert_eq!(timer_at(&a, Timer::Keepalive), Some(t0 + Duration::from_secs(10)));
    assert_eq!(f.state(), State::OpenConfirm);

    let a = f.handle(Event::Message(Message::Keepalive), t0);
    let Some(Action::Established(p)) = a.iter().find(|a| matches!(a, Action::Established(_))) else { panic!() };
    assert_eq!(p.remote_as, 64512);
    assert_eq!(p.hold_time, Some(Duration::from_secs(30)));
    assert!(!p.ibgp);
    assert!(p.rx.four_octet_as && p.tx.four_octet_as);
    // The peer did not offer IPv6: only IPv4 is negotiated.
    assert_eq!(p.families, vec![Family::IPV4_UNICAST]);
    assert!(p.route_refresh);
}

#[test]
fn zero_hold_time_means_no_keepalives_and_no_hold_timer() {
    let (f, _) = established(0);
    let p = f.params().unwrap();
    assert_eq!((p.hold_time, p.keepalive), (None, None));
}

#[test]
fn wrong_peer_as_is_bad_peer_as() {
    let t0 = Instant::now();
    let mut f = Fsm::new(config(), Backoff::default(), 1);
    f.handle(Event::Start, t0);
    f.handle(Event::Connected, t0);
    let a = f.handle(Event::Message(Message::Open(peer_open(65000, 90))), t0);
    assert_eq!(notification_sent(&a), Some((2, 2)));
    assert!(a.contains(&Action::Close));
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn ibgp_peer_with_our_identifier_is_refused() {
    let t0 = Instant::now();
    let mut f = Fsm::new(LocalConfig { remote_as: Some(64513), ..config() }, Backoff::default(), 1);
    f.handle(Event::Start, t0);
    f.handle(Event::Connected, t0);
    let mut open = peer_open(64513, 90);
    open.bgp_id = LOCAL_ID;
    let a = f.handle(Event::Message(Message::Open(open)), t0);
    assert_eq!(notification_sent(&a), Some((2, 3)));
}

#[test]
fn unexpected_messages_are_fsm_errors_rfc6608() {
    let t0 = Instant::now();
    // UPDATE in OpenSent.
    let mut f = Fsm::new(config(), Backoff::default(), 1);
    f.handle(Event::Start, t0);
    f.handle(Event::Connected, t0);
    let a = f.handle(Event::Message(Message::Update(Update::default())), t0);
    assert_eq!(notification_sent(&a), Some((5, 1)));
    // OPEN in OpenConfirm.
    let mut f = Fsm::new(config(), Backoff::default(), 1);
    f.handle(Event::Start, t0);
    f.handle(Event::Connected, t0);
    f.handle(Event::Message(Message::Open(peer_open(64512, 90))), t0);
    let a = f.handle(Event::Message(Message::Open(peer_open(64512, 90))), t0);
    assert_eq!(notification_sent(&a), Some((5, 2)));
    // OPEN in Established.
    let (mut f, t0) = established(90);
    let a = f.handle(Event::Message(Message::Open(peer_open(64512, 90))), t0);
    assert_eq!(notification_sent(&a), Some((5, 3)));
    assert!(a.iter().any(|a| matches!(a, Action::Down(DownReason::Sent(_)))));
}

#[test]
fn hold_timer_expiry_sends_notification_and_backs_off() {
    let (mut f, t0) = established(9);
    let now = t0 + Duration::from_secs(9);
    let a = f.handle(Event::TimerExpired(Timer::Hold), now);
    assert_eq!(notification_sent(&a), Some((4, 0)));
    assert!(a.contains(&Action::Close));
    assert!(a.contains(&Action::StateChanged { from: State::Established, to: State::Idle }));
    let first = timer_at(&a, Timer::IdleHold).unwrap() - now;
    assert!(first >= Duration::from_millis(750) && first < Duration::from_millis(1250), "{first:?}");
    // The automatic restart reconnects.
    let a = f.handle(Event::TimerExpired(Timer::IdleHold), now + first);
    assert!(a.contains(&Action::Connect));
    // A second failure before Established doubles the delay.
    f.handle(Event::Connected, now);
    let a = f.handle(Event::Closed, now);
    let second = timer_at(&a, Timer::IdleHold).unwrap() - now;
    assert!(second >= Duration::from_millis(1500) && second < Duration::from_millis(2500), "{second:?}");
}

#[test]
fn messages_in_established_restart_the_hold_timer() {
    let (mut f, t0) = established(90);
    let later = t0 + Duration::from_secs(50);
    let a = f.handle(Event::Message(Message::Keepalive), later);
    assert_eq!(timer_at(&a, Timer::Hold), Some(later + Duration::from_secs(90)));
    let a = f.handle(Event::Message(Message::Update(Update::default())), later);
    assert!(a.iter().any(|a| matches!(a, Action::Update(_))));
    assert_eq!(timer_at(&a, Timer::Hold), Some(later + Duration::from_secs(90)));
    let a = f.handle(Event::TimerExpired(Timer::Keepalive), later);
    assert_eq!(sent(&a), vec![&Message::Keepalive]);
    assert_eq!(timer_at(&a, Timer::Keepalive), Some(later + Duration::from_secs(30)));
}

#[test]
fn route_refresh_for_negotiated_families_only() {
    let (mut f, t0) = established(90);
    let a = f.handle(Event::Message(Message::RouteRefresh(RouteRefresh::request(Family::IPV4_UNICAST))), t0);
    assert!(a.contains(&Action::RouteRefresh(Family::IPV4_UNICAST)));
    let a = f.handle(Event::Message(Message::RouteRefresh(RouteRefresh::request(Family::IPV6_UNICAST))), t0);
    assert!(!a.iter().any(|a| matches!(a, Action::RouteRefresh(_))));
}

#[test]
fn received_notification_goes_idle_without_replying() {
    let (mut f, t0) = established(90);
    let n = Notification::admin_shutdown("bye");
    let a = f.handle(Event::Message(Message::Notification(n.clone())), t0);
    assert_eq!(notification_sent(&a), None);
    assert!(a.contains(&Action::Down(DownReason::Received(n))));
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn decode_errors_send_their_notification() {
    let (mut f, t0) = established(90);
    let a = f.handle(Event::DecodeError(DecodeError::BadMessageType { msg_type: 9 }), t0);
    assert_eq!(notification_sent(&a), Some((1, 3)));
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn admin_stop_sends_cease_and_stays_down() {
    let (mut f, t0) = established(90);
    let a = f.handle(Event::Stop(Some(Notification::admin_shutdown("node drained"))), t0);
    assert_eq!(notification_sent(&a), Some((6, 2)));
    assert!(timer_at(&a, Timer::IdleHold).is_none(), "no automatic restart after a stop");
    assert!(f.handle(Event::TimerExpired(Timer::IdleHold), t0).is_empty());
    // Stop without a NOTIFICATION (graceful restart) just closes.
    let (mut f, t0) = established(90);
    let a = f.handle(Event::Stop(None), t0);
    assert_eq!(notification_sent(&a), None);
    assert!(a.contains(&Action::Close));
    assert!(a.contains(&Action::Down(DownReason::Stopped)));
}

#[test]
fn connection_to_a_stopped_fsm_is_refused() {
    let t0 = Instant::now();
    let mut f = Fsm::new(config(), Backoff::default(), 1);
    assert_eq!(f.handle(Event::Connected, t0), vec![Action::Close]);
}

#[test]
fn graceful_restart_capability_in_open() {
    let c = LocalConfig {
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: 120,
            restarting: true,
            forwarding_preserved: true,
        }),
        hostname: Some("node1".into()),
        ..config()
    };
    let o = open_for(&c);
    let gr = o
        .capabilities()
        .find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g),
            _ => None,
        })
        .unwrap();
    assert!(gr.restarting);
    assert_eq!(gr.restart_time, 120);
    assert_eq!(gr.families.len(), 2);
    assert!(gr.families.iter().all(|f| f.forwarding_preserved));
    assert!(o.capabilities().any(|c| matches!(c, Capability::Fqdn { hostname, .. } if hostname == "node1")));
}

#[test]
fn a_connection_while_waiting_to_restart_is_taken_without_dialing() {
    let (mut f, t0) = established(9);
    f.handle(Event::Closed, t0);
    assert!(f.restart_pending());
    let a = f.handle(Event::Connected, t0);
    assert!(a.contains(&Action::StopTimer(Timer::IdleHold)));
    assert!(!a.contains(&Action::Connect));
    assert!(matches!(sent(&a)[..], [Message::Open(_)]));
    assert_eq!(f.state(), State::OpenSent);
}

#[test]
fn a_fork_shares_configuration_and_back_off_but_not_state() {
    let (mut f, t0) = established(9);
    f.handle(Event::Closed, t0);
    let mut g = f.fork();
    assert_eq!((g.state(), g.config()), (State::Idle, f.config()));
    assert!(g.restart_pending(), "a fork takes a connection at once");
    g.handle(Event::Connected, t0);
    let a = g.handle(Event::Closed, t0);
    // The fork failed after one failure of the original: the back-off doubled.
    let d = timer_at(&a, Timer::IdleHold).unwrap() - t0;
    assert!(d >= Duration::from_millis(1500) && d < Duration::from_millis(2500), "{d:?}");
}

#[test]
fn a_known_capability_of_the_wrong_length_is_open_error_unspecific() {
    // RFC 4271 section 6.2: recognized but malformed -> OPEN Message Error / Unspecific.
    for (code, data) in [(65u8, vec![]), (65, vec![0, 0, 0xfc]), (1, vec![0, 1, 1]), (64, vec![0]), (2, vec![1])] {
        let mut open = peer_open(64512, 90);
        open.params[0].push(Capability::Unknown { code, data: data.clone() });
        assert!(open.params[0].last().unwrap().malformed().is_some(), "{code} {data:?}");
        let t0 = Instant::now();
        let mut f = Fsm::new(config(), Backoff::default(), 1);
        f.handle(Event::Start, t0);
        f.handle(Event::Connected, t0);
        let a = f.handle(Event::Message(Message::Open(open)), t0);
        assert_eq!(notification_sent(&a), Some((2, 0)), "capability {code} {data:?}");
    }
    // Unknown codes stay fine, whatever their length.
    assert_eq!(Capability::Unknown { code: 200, data: vec![1, 2, 3] }.malformed(), None);
}

#[test]
fn a_multiprotocol_capability_with_a_reserved_octet_set_still_counts() {
    // RFC 4760: the reserved octet is ignored on receipt.
    let mut open = peer_open(64512, 90);
    open.params[0].push(Capability::decode(1, &[0, 2, 9, 1]));
    assert!(matches!(open.params[0].last(), Some(Capability::Unknown { .. })), "kept raw for the round trip");
    let p = negotiate(&config(), &open).unwrap();
    assert_eq!(p.families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
}

#[test]
fn extended_next_hop_is_used_only_when_both_sides_advertise_it() {
    let c = LocalConfig { extended_next_hop: vec![ExtendedNextHop::IPV4_OVER_IPV6], ..config() };
    let o = open_for(&c);
    assert!(o.capabilities().any(|c| *c == Capability::ExtendedNextHop(vec![ExtendedNextHop::IPV4_OVER_IPV6])));
    assert!(
        !open_for(&config()).capabilities().any(|c| matches!(c, Capability::ExtendedNextHop(_))),
        "not advertised unless configured"
    );
    let not_negotiated = |p: &SessionParams| p.extended_next_hop.is_empty() && !p.tx.extended_next_hop_ipv4;

    // The peer does not advertise it: not used.
    let p = negotiate(&c, &peer_open(64512, 90)).unwrap();
    assert!(not_negotiated(&p), "{p:?}");
    // Both do: used.
    let mut open = peer_open(64512, 90);
    open.params.push(vec![Capability::ExtendedNextHop(vec![ExtendedNextHop::IPV4_OVER_IPV6])]);
    let p = negotiate(&c, &open).unwrap();
    assert_eq!(p.extended_next_hop, [ExtendedNextHop::IPV4_OVER_IPV6]);
    assert!(p.tx.extended_next_hop_ipv4 && p.rx.extended_next_hop_ipv4);
    // Only the peer does: not used.
    assert!(not_negotiated(&negotiate(&config(), &open).unwrap()));
    // The peer offers another encoding only (IPv6 NLRI, IPv4 next hop): not used.
    let mut other = peer_open(64512, 90);
    let v6_over_v4 = ExtendedNextHop { nlri: Family::IPV6_UNICAST, next_hop_afi: AFI_IPV4 };
    other.params.push(vec![Capability::ExtendedNextHop(vec![v6_over_v4])]);
    assert!(not_negotiated(&negotiate(&c, &other).unwrap()));
    // IPv4 unicast not negotiated: not used.
    let c6 = LocalConfig { families: vec![Family::IPV6_UNICAST], ..c.clone() };
    assert!(!open_for(&c6).capabilities().any(|c| matches!(c, Capability::ExtendedNextHop(_))));
}

/// The KEEPALIVEs sent by one step.
fn keepalives_sent(actions: &[Action]) -> usize {
    sent(actions).iter().filter(|m| matches!(m, Message::Keepalive)).count()
}

#[test]
fn a_message_from_the_peer_takes_our_keepalive_along_when_it_is_due_within_a_quarter() {
    // Hold 90 s: our KEEPALIVE every 30 s, first due at t0 + 30 s.
    let (mut f, t0) = established(90);
    let s = Duration::from_secs;
    // Due in 8 s: more than a quarter (7.5 s) away, the timer sends it.
    let a = f.handle(Event::Message(Message::Keepalive), t0 + s(22));
    assert_eq!(keepalives_sent(&a), 0, "{a:?}");
    assert_eq!(timer_at(&a, Timer::Keepalive), None, "the keepalive timer is left alone");
    // Due in 7 s: ours goes now, and the timer restarts from now.
    let a = f.handle(Event::Message(Message::Keepalive), t0 + s(23));
    assert_eq!(keepalives_sent(&a), 1, "{a:?}");
    assert_eq!(timer_at(&a, Timer::Keepalive), Some(t0 + s(53)));
    assert_eq!(timer_at(&a, Timer::Hold), Some(t0 + s(113)));
    // Just sent: the next messages do not send another.
    for at in [24, 40, 45] {
        let a = f.handle(Event::Message(Message::Keepalive), t0 + s(at));
        assert_eq!(keepalives_sent(&a), 0, "at {at} s: {a:?}");
    }
    // An UPDATE does it too, after the UPDATE is passed on.
    let a = f.handle(Event::Message(Message::Update(Update::default())), t0 + s(46));
    assert!(
        matches!(a[1..], [Action::Update(_), Action::Send(Message::Keepalive), Action::StartTimer(Timer::Keepalive, at)] if at == t0 + s(76)),
        "{a:?}"
    );
}

#[test]
fn an_early_keepalive_keeps_to_three_quarters_of_the_interval_and_one_a_second() {
    let ms = Duration::from_millis;
    // Hold 6 s: every 2 s; early at most 0.5 s, never sooner than 1.5 s
    // after the previous one.
    let (mut f, t0) = established(6);
    assert_eq!(f.params().unwrap().keepalive, Some(Duration::from_secs(2)));
    let a = f.handle(Event::Message(Message::Keepalive), t0 + ms(1499));
    assert_eq!(keepalives_sent(&a), 0, "{a:?}");
    let a = f.handle(Event::Message(Message::Keepalive), t0 + ms(1500));
    assert_eq!(keepalives_sent(&a), 1, "{a:?}");
    assert_eq!(timer_at(&a, Timer::Keepalive), Some(t0 + ms(3500)));

    // Hold 3 s: every second, which is also the least gap RFC 4271
    // section 4.4 allows: nothing goes ahead of the timer.
    let (mut f, t0) = established(3);
    assert_eq!(f.params().unwrap().keepalive, Some(Duration::from_secs(1)));
    for at in [750, 800, 999] {
        let a = f.handle(Event::Message(Message::Keepalive), t0 + ms(at));
        assert_eq!(keepalives_sent(&a), 0, "at {at} ms: {a:?}");
    }
    // A message that arrives when the timer is due anyway takes it along.
    let a = f.handle(Event::Message(Message::Keepalive), t0 + ms(1000));
    assert_eq!(keepalives_sent(&a), 1, "{a:?}");
    assert_eq!(timer_at(&a, Timer::Keepalive), Some(t0 + ms(2000)));
    // The timer armed before was replaced: firing at its old deadline
    // would be the driver's mistake; the next one is a second later.
    let a = f.handle(Event::TimerExpired(Timer::Keepalive), t0 + ms(2000));
    assert_eq!(keepalives_sent(&a), 1);
}

#[test]
fn no_keepalive_goes_with_messages_when_the_hold_time_is_zero() {
    let (mut f, t0) = established(0);
    for at in [1, 30, 3600] {
        let a = f.handle(Event::Message(Message::Keepalive), t0 + Duration::from_secs(at));
        assert_eq!(keepalives_sent(&a), 0, "{a:?}");
        assert_eq!(timer_at(&a, Timer::Keepalive), None);
    }
}

#[test]
fn an_open_in_established_gets_only_the_notification_even_when_a_keepalive_is_due() {
    let (mut f, t0) = established(90);
    let a = f.handle(Event::Message(Message::Open(peer_open(64512, 90))), t0 + Duration::from_secs(29));
    assert_eq!(keepalives_sent(&a), 0, "{a:?}");
    assert_eq!(notification_sent(&a), Some((5, 3)));
}

#[test]
fn after_a_new_session_the_early_keepalive_counts_from_its_own_handshake() {
    let (mut f, t0) = established(90);
    let s = Duration::from_secs;
    f.handle(Event::Closed, t0 + s(10));
    // Back up at t0 + 100 s: the old session's timer is forgotten.
    let t1 = t0 + s(100);
    f.handle(Event::TimerExpired(Timer::IdleHold), t1);
    f.handle(Event::Connected, t1);
    f.handle(Event::Message(Message::Open(peer_open(64512, 90))), t1);
    f.handle(Event::Message(Message::Keepalive), t1);
    assert_eq!(f.state(), State::Established);
    let a = f.handle(Event::Message(Message::Keepalive), t1 + s(1));
    assert_eq!(keepalives_sent(&a), 0, "{a:?}");
    let a = f.handle(Event::Message(Message::Keepalive), t1 + s(23));
    assert_eq!(keepalives_sent(&a), 1, "{a:?}");
}
