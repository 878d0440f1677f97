//! The speaker against the faults of issue 12, on loopback with a
//! hand-driven peer: a restart that must bind again at once, a port that
//! is taken for a while, prefix limits (re-announcements, the restart
//! after a teardown, a configuration change), capabilities of the wrong
//! length, UPDATEs for families not negotiated, and floods of connections
//! that must neither pile up nor flood the log. Log lines are read from a
//! subscriber that captures them; each test looks at its own addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

mod common;

use common::{announce, open, speaker_dialing, wait_for, Raw, T};
use mooring_bgp::fsm::{DownReason, State};
use mooring_bgp::speaker::{HoldDownCause, ListenerState, MaxPrefixes, PeerConfig, PeerStatus, Speaker, SpeakerConfig};
use mooring_bgp::wire::*;

const PEER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// Every log line written so far (the capturing subscriber is installed once).
fn logs() -> String {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buf = BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = buf.clone();
        tracing_subscriber::fmt()
            .with_env_filter("mooring_bgp=info")
            .with_ansi(false)
            .with_writer(move || Capture(w.clone()))
            .init();
        buf
    });
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lines_with(all: &str, a: &str, b: &str) -> usize {
    all.lines().filter(|l| l.contains(a) && l.contains(b)).count()
}

fn speaker_config(listen: SocketAddr) -> SpeakerConfig {
    SpeakerConfig {
        local_as: 64513,
        router_id: common::SPEAKER_ID,
        listen: Some(listen),
        hostname: None,
        graceful_restart: None,
    }
}

fn status(s: &Speaker, peer: IpAddr) -> PeerStatus {
    s.peer_status(peer).unwrap()
}

/// Read the speaker's OPEN on its dial and bring the session up.
async fn established(s: &Speaker, listener: &tokio::net::TcpListener, peer: IpAddr) -> Raw {
    let mut r = Raw::accept(listener).await;
    assert!(matches!(r.recv().await, Some(Message::Open(_))));
    r.handshake(open(64512, PEER_ID, None)).await;
    wait_for("Established", T, || status(s, peer).state == State::Established).await;
    r
}

// --- 1. A speaker restart binds again --------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_speaker_binds_the_same_port_at_once() {
    let addr: SocketAddr = "127.0.0.30:17930".parse().unwrap();
    let old = Speaker::start(speaker_config(addr)).await.unwrap();
    assert_eq!(old.listener_state(), ListenerState::Listening(addr));
    assert!(old.is_listening());
    // The old handle stays alive (the agent holds it until the new one runs).
    old.shutdown(Some("BgpConf changed")).await;
    assert_eq!(old.listener_state(), ListenerState::Closed);
    assert!(!old.status().running);
    let new = Speaker::start(speaker_config(addr)).await.expect("binds again at once");
    assert_eq!(new.listener_state(), ListenerState::Listening(addr), "no retry needed");
    let st = new.status();
    assert!(st.running && st.peers == 0 && st.established == 0, "{st:?}");
    new.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_is_retried_while_the_port_is_taken() {
    let addr: SocketAddr = "127.0.0.31:17931".parse().unwrap();
    let squatter = std::net::TcpListener::bind(addr).unwrap();
    let s = Speaker::start(speaker_config(addr)).await.expect("a taken port is retried, not an error");
    assert!(!s.is_listening());
    let ListenerState::Retrying { addr: a, error, attempts } = s.listener_state() else { panic!("{:?}", s.status()) };
    assert_eq!((a, attempts >= 1), (addr, true));
    assert!(error.contains("in use"), "{error}");
    assert_eq!(s.listen_addr(), None);
    drop(squatter);
    wait_for("the listener bound", T, || s.is_listening()).await;
    assert_eq!(s.listen_addr(), Some(addr));
    // It accepts: a connection from an address that is no peer is closed.
    let mut c = Raw::connect("127.0.0.32".parse().unwrap(), addr).await;
    assert_eq!(c.recv().await, None);
    s.shutdown(None).await;
    std::net::TcpListener::bind(addr).expect("released after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_not_on_the_host_yet_is_retried_until_shutdown() {
    // An address no interface has (yet): the speaker runs, dials out, and says so.
    let s = Speaker::start(speaker_config("192.0.2.1:17932".parse().unwrap())).await.unwrap();
    let ListenerState::Retrying { error, .. } = s.listener_state() else { panic!("{:?}", s.status()) };
    assert!(error.contains("assign"), "{error}");
    s.shutdown(None).await;
    assert_eq!(s.listener_state(), ListenerState::Closed);
}

// --- 3. Prefix limits --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_prefix_re_sent_1001_times_does_not_trip_a_limit_of_1000() {
    for (i, import) in [false, true].into_iter().enumerate() {
        let port = 17933 + i as u16;
        let (s, listener, _, peer) = speaker_dialing(34 + 2 * i as u8, port, |p| PeerConfig {
            import,
            max_prefixes: Some(MaxPrefixes::new(1000, true)),
            ..p
        })
        .await;
        let mut r = established(&s, &listener, peer).await;
        let one =
            announce(&["203.0.113.0/24"], Ipv4Addr::new(127, 0, 0, 1)).to_bytes(&Negotiated::four_octet()).unwrap();
        r.send_raw(&one.repeat(1001)).await;
        wait_for("1001 UPDATEs counted", T, || status(&s, peer).updates_received >= 1001).await;
        let st = status(&s, peer);
        assert_eq!(st.state, State::Established, "import={import}: {:?}", st.last_error);
        assert_eq!(st.prefixes_received.get(&Family::IPV4_UNICAST), Some(&1), "import={import}");
        s.shutdown(None).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_the_peer_is_held_down_then_restarted_after_the_restart_time() {
    let port = 17936;
    let (s, listener, me, peer) = speaker_dialing(38, port, |p| PeerConfig {
        max_prefixes: Some(MaxPrefixes { limit: 3, teardown: true, restart: Some(Duration::from_secs(1)) }),
        ..p
    })
    .await;
    let mut r = established(&s, &listener, peer).await;
    // Re-announcements first: still three distinct prefixes.
    let three = ["198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"];
    r.send(announce(&three, Ipv4Addr::new(127, 0, 0, 1))).await;
    r.send(announce(&three, Ipv4Addr::new(127, 0, 0, 1))).await;
    r.send(announce(&["198.51.100.4/32"], Ipv4Addr::new(127, 0, 0, 1))).await;
    // Cease / Maximum Number of Prefixes Reached, with AFI 1, SAFI 1, limit 3.
    let want = Notification::new(Cease::MaxPrefixes, vec![0, 1, 1, 0, 0, 0, 3]);
    assert_eq!(r.recv_skipping_updates().await, Some(Message::Notification(want.clone())));
    assert_eq!(r.recv().await, None);
    let st = status(&s, peer);
    assert_eq!(st.down_reason, Some(DownReason::Sent(want)));
    let held = st.held_down.expect("held down");
    assert_eq!(held.cause, HoldDownCause::MaxPrefixes { family: Family::IPV4_UNICAST, limit: 3 });
    assert!(held.until.is_some());
    assert_eq!(st.prefixes_received.values().sum::<u64>(), 0, "what it sent is dropped");
    // Meanwhile a connection from the peer gets a NOTIFICATION, not a silent close.
    let mut c = Raw::connect(peer, SocketAddr::new(me, port)).await;
    let rejected = Notification::new(Cease::ConnectionRejected, vec![]);
    assert_eq!(c.recv().await, Some(Message::Notification(rejected)));
    assert_eq!(c.recv().await, None);
    // After the restart time the speaker dials again.
    let t0 = tokio::time::Instant::now();
    let mut again = Raw::accept(&listener).await;
    assert!(t0.elapsed() < Duration::from_millis(1500), "{:?}", t0.elapsed());
    assert!(matches!(again.recv().await, Some(Message::Open(_))));
    assert_eq!(status(&s, peer).held_down, None);
    again.handshake(open(64512, PEER_ID, None)).await;
    wait_for("Established again", T, || status(&s, peer).state == State::Established).await;
    assert_eq!(status(&s, peer).down_reason, None);
    s.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_change_restarts_a_held_down_peer_at_once() {
    let port = 17937;
    let limit = |n| MaxPrefixes { limit: n, teardown: true, restart: None };
    let (s, listener, _, peer) = speaker_dialing(40, port, |p| PeerConfig { max_prefixes: Some(limit(1)), ..p }).await;
    let mut r = established(&s, &listener, peer).await;
    r.send(announce(&["198.51.100.1/32", "198.51.100.2/32"], Ipv4Addr::new(127, 0, 0, 1))).await;
    assert!(matches!(r.recv_skipping_updates().await, Some(Message::Notification(_))));
    let held = status(&s, peer).held_down.expect("held down");
    assert_eq!(held.until, None, "no restart time: down until the configuration changes");
    // The same configuration again (a reload that changed nothing) does nothing...
    let cfg = s.peer_configs().pop().unwrap();
    s.update_peer(cfg.clone()).await.unwrap();
    assert!(status(&s, peer).held_down.is_some());
    // ...a new one restarts the peer at once.
    s.update_peer(PeerConfig { max_prefixes: Some(limit(10)), ..cfg }).await.unwrap();
    let mut again = Raw::accept(&listener).await;
    assert!(matches!(again.recv().await, Some(Message::Open(_))));
    again.handshake(open(64512, PEER_ID, None)).await;
    wait_for("Established again", T, || status(&s, peer).state == State::Established).await;
    s.shutdown(None).await;
}

// --- 6. Capabilities, families, keepalive, log floods -----------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capability_of_the_wrong_length_is_an_open_message_error() {
    // 4-octet AS of length 0, multiprotocol of length 3, graceful restart of length 3.
    let cases: [&[u8]; 3] = [&[65, 0], &[1, 3, 0, 1, 1], &[64, 3, 0, 120, 0]];
    for (i, cap) in cases.into_iter().enumerate() {
        let port = 17940 + i as u16;
        let (s, listener, _, peer) = speaker_dialing(42 + 2 * i as u8, port, |p| p).await;
        let mut r = Raw::accept(&listener).await;
        assert!(matches!(r.recv().await, Some(Message::Open(_))));
        // OPEN: version 4, AS 64512, hold 30, identifier, one capabilities parameter.
        let mut body = vec![4, 0xfc, 0x00, 0, 30, 10, 0, 0, 1, cap.len() as u8 + 2, 2, cap.len() as u8];
        body.extend_from_slice(cap);
        let mut msg = vec![0xff; 16];
        msg.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        msg.push(1);
        msg.extend_from_slice(&body);
        r.send_raw(&msg).await;
        let want = Notification::new(OpenError::Unspecific, vec![]);
        assert_eq!(r.recv().await, Some(Message::Notification(want)), "capability {cap:?}");
        assert_eq!(r.recv().await, None);
        assert_ne!(status(&s, peer).state, State::Established);
        s.shutdown(None).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_for_a_family_not_negotiated_is_ignored_with_a_log_line() {
    let port = 17944;
    let (s, listener, _, peer) = speaker_dialing(48, port, |p| PeerConfig { import: true, ..p }).await;
    let mut r = established(&s, &listener, peer).await;
    // IPv6 unicast in MP_REACH_NLRI, on a session that negotiated IPv4 only.
    let u = Update {
        attrs: vec![
            PathAttr::new(AttrValue::Origin(Origin::Igp)),
            PathAttr::new(AttrValue::AsPath(AsPath::sequence(vec![64512]))),
            PathAttr::new(AttrValue::MpReach(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: MpNextHop::Typed(NextHop::V6 { global: "2001:db8::1".parse().unwrap(), link_local: None }),
                nlri: MpNlri::Unicast(vec![Nlri::new("2001:db8:1::/48".parse().unwrap())]),
            })),
        ]
        .into(),
        ..Update::default()
    };
    for _ in 0..50 {
        r.send(Message::Update(u.clone())).await;
    }
    r.send(announce(&["198.51.100.1/32"], Ipv4Addr::new(127, 0, 0, 1))).await;
    wait_for("the IPv4 route", T, || status(&s, peer).prefixes_received.values().sum::<u64>() == 1).await;
    let st = status(&s, peer);
    assert_eq!(st.prefixes_received.get(&Family::IPV6_UNICAST), None, "{:?}", st.prefixes_received);
    assert_eq!(st.state, State::Established);
    let n = lines_with(&logs(), &peer.to_string(), "did not negotiate");
    assert!((1..=11).contains(&n), "one line, rate-limited: {n}");
    s.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keepalive_above_a_third_of_the_hold_time_is_warned_once() {
    let _ = logs();
    let cfg = PeerConfig { hold_time: 9, keepalive: Some(30), ..PeerConfig::new("127.0.0.50".parse().unwrap(), 1) };
    assert_eq!(cfg.adjustments().len(), 1);
    assert!(PeerConfig { keepalive: Some(3), ..cfg.clone() }.adjustments().is_empty());
    let s = Speaker::start(SpeakerConfig { listen: None, ..speaker_config("127.0.0.50:1".parse().unwrap()) })
        .await
        .unwrap();
    s.add_peer(cfg.clone()).unwrap();
    s.update_peer(cfg).await.unwrap();
    let n = lines_with(&logs(), "127.0.0.50", "keepalive 30 s with a hold time of 9 s: 3 s is used");
    assert_eq!(n, 1);
    s.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_connections_writes_a_few_lines() {
    let _ = logs();
    let port = 17945;
    let (s, listener, me, peer) = speaker_dialing(52, port, |p| p).await;
    let _r = established(&s, &listener, peer).await;
    let up_since = status(&s, peer).established_since;
    let target = SocketAddr::new(me, port);
    // From an address that is no peer: closed without a word.
    for _ in 0..300 {
        let mut c = Raw::connect("127.0.0.54".parse().unwrap(), target).await;
        assert_eq!(c.recv().await, None);
    }
    // From the peer's address while Established: Cease / Connection Collision Resolution each.
    for _ in 0..300 {
        let mut c = Raw::connect(peer, target).await;
        let cease = Notification::new(Cease::ConnectionCollision, vec![]);
        assert_eq!(c.recv().await, Some(Message::Notification(cease)));
        assert_eq!(c.recv().await, None);
    }
    assert_eq!(status(&s, peer).established_since, up_since, "the session was not disturbed");
    let all = logs();
    let unconfigured = lines_with(&all, "127.0.0.54", "unconfigured peer refused");
    let refused = lines_with(&all, &peer.to_string(), "connection closed: refused");
    assert!((1..=10).contains(&unconfigured), "{unconfigured} lines for 300 connections");
    assert!((1..=10).contains(&refused), "{refused} lines for 300 connections");
    s.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_connections_from_the_peer_do_not_pile_up() {
    let port = 17946;
    let (s, _listener, me, peer) = speaker_dialing(56, port, |p| PeerConfig { passive: true, ..p }).await;
    let target = SocketAddr::new(me, port);
    // Each connection sends the start of an OPEN and nothing more (slowloris).
    let mut older: Vec<Raw> = vec![];
    for _ in 0..20 {
        let mut c = Raw::connect(peer, target).await;
        assert!(matches!(c.recv().await, Some(Message::Open(_))));
        c.send_raw(&[0xff; 10]).await;
        older.push(c);
    }
    let newest = older.pop().unwrap();
    // Every older one was replaced by the next: Cease / Connection Collision Resolution, closed.
    for mut c in older {
        let cease = Notification::new(Cease::ConnectionCollision, vec![]);
        assert_eq!(c.recv().await, Some(Message::Notification(cease)));
        assert_eq!(c.recv().await, None);
    }
    assert_eq!(status(&s, peer).state, State::OpenSent);
    drop(newest);
    s.shutdown(None).await;
}
