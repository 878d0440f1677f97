//! Two of our speakers on loopback: the speaker mechanics (Adj-RIB-Out
//! diffs, packing, withdrawals, max-prefix, collisions). Interoperability
//! with FRR, GoBGP and BIRD is proven in `integration/`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnetwork::{IpNetwork, Ipv4Network};
use mooring_bgp::fsm::State;
use mooring_bgp::speaker::{MaxPrefixes, PeerConfig, PeerStatus, RouteAttrs, Speaker, SpeakerConfig};
use mooring_bgp::wire::Family;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn speaker(asn: u32, id: &str, listen: Option<&str>) -> Speaker {
    Speaker::start(SpeakerConfig {
        local_as: asn,
        router_id: id.parse().unwrap(),
        listen: listen.map(|l| l.parse().unwrap()),
        hostname: Some(format!("test-{id}")),
        graceful_restart: None,
    })
    .await
    .unwrap()
}

fn peer(addr: &str, asn: u32, port: u16, source: &str) -> PeerConfig {
    PeerConfig {
        port,
        source: Some(ip(source)),
        hold_time: 9,
        connect_retry: Duration::from_millis(200),
        families: vec![Family::IPV4_UNICAST],
        ..PeerConfig::new(ip(addr), asn)
    }
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = tokio::time::Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn status(s: &Speaker, addr: &str) -> PeerStatus {
    s.peer_status(ip(addr)).unwrap()
}

fn v4(i: u32) -> IpNetwork {
    IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(0x0A00_0000 + i), 32).unwrap())
}

/// A announces from 127.0.0.2 (dialing), B listens on 127.0.0.3 and imports.
async fn pair(port: u16, b_peer: impl FnOnce(PeerConfig) -> PeerConfig) -> (Speaker, Speaker) {
    let b = speaker(64512, "10.0.0.3", Some(&format!("127.0.0.3:{port}"))).await;
    let a = speaker(64513, "10.0.0.2", None).await;
    b.add_peer(b_peer(PeerConfig { passive: true, import: true, ..peer("127.0.0.2", 64513, port, "127.0.0.3") }))
        .unwrap();
    a.add_peer(peer("127.0.0.3", 64512, port, "127.0.0.2")).unwrap();
    wait_for("Established", Duration::from_secs(10), || {
        status(&a, "127.0.0.3").state == State::Established && status(&b, "127.0.0.2").state == State::Established
    })
    .await;
    (a, b)
}

fn received(b: &Speaker) -> u64 {
    status(b, "127.0.0.2").prefixes_received.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_ten_thousand_goes_out_in_few_updates_and_withdraws() {
    let (a, b) = pair(17901, |p| p).await;
    let before = status(&a, "127.0.0.3").updates_sent;
    a.announce_many((0..10_000).map(|i| (v4(i), RouteAttrs { med: Some(5), ..RouteAttrs::default() })));
    wait_for("10k prefixes at B", Duration::from_secs(10), || received(&b) == 10_000).await;
    let sent = status(&a, "127.0.0.3").updates_sent - before;
    assert!(sent <= 5, "{sent} UPDATEs for 10k prefixes (extended messages: 64 KiB each)");
    assert_eq!(status(&a, "127.0.0.3").prefixes_sent, 10_000);

    // Only the difference is sent: re-announcing the same routes sends
    // nothing. A marker route announced after it arrives in the one UPDATE
    // sent: anything the re-announce sent would have come first.
    let marker = |i: u32| (v4(10_000 + i), RouteAttrs::default());
    let before = status(&a, "127.0.0.3").updates_sent;
    a.set_routes((0..10_000).map(|i| (v4(i), RouteAttrs { med: Some(5), ..RouteAttrs::default() })));
    a.announce(marker(0).0, marker(0).1);
    wait_for("the marker at B", Duration::from_secs(5), || received(&b) == 10_001).await;
    assert_eq!(status(&a, "127.0.0.3").updates_sent, before + 1, "only the marker's UPDATE");

    // Changing half the attributes re-announces that half only (at most 3
    // UPDATEs of 64 KiB for 5000 prefixes), then the next marker.
    let before = status(&a, "127.0.0.3").updates_sent;
    a.set_routes(
        (0..10_000)
            .map(|i| (v4(i), RouteAttrs { med: Some(if i < 5000 { 5 } else { 7 }), ..RouteAttrs::default() }))
            .chain([marker(0)]),
    );
    a.announce(marker(1).0, marker(1).1);
    wait_for("the second marker at B", Duration::from_secs(5), || received(&b) == 10_002).await;
    let sent = status(&a, "127.0.0.3").updates_sent - before;
    assert!((2..=4).contains(&sent), "{sent} UPDATEs for 5000 changed prefixes and a marker");

    // Withdraw all but 10, batched.
    let before = status(&a, "127.0.0.3").updates_sent;
    a.set_routes((0..10).map(|i| (v4(i), RouteAttrs::default())));
    wait_for("withdrawals at B", Duration::from_secs(10), || received(&b) == 10).await;
    assert!(status(&a, "127.0.0.3").updates_sent - before <= 4);
    a.shutdown(Some("test done")).await;
    b.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_prefixes_tears_the_session_down_with_cease() {
    let (a, b) = pair(17902, |p| PeerConfig { max_prefixes: Some(MaxPrefixes::new(100, true)), ..p }).await;
    let mut events = a.subscribe();
    a.announce_many((0..101).map(|i| (v4(i), RouteAttrs::default())));
    let ev = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let e = events.recv().await.unwrap();
            if e.to == State::Idle {
                return e;
            }
        }
    })
    .await
    .expect("A's session goes down");
    let reason = ev.reason.unwrap();
    assert!(reason.contains("received NOTIFICATION Cease/Maximum Number of Prefixes Reached (6/1)"), "{reason}");
    assert!(status(&b, "127.0.0.2")
        .last_error
        .unwrap()
        .contains("sent NOTIFICATION Cease/Maximum Number of Prefixes Reached (6/1)"));
    assert_eq!(received(&b), 0, "B dropped what it had");
    a.shutdown(None).await;
    b.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_shutdown_message_reaches_the_peer() {
    let (a, b) = pair(17903, |p| p).await;
    a.remove_peer(ip("127.0.0.3"), Some(mooring_bgp::wire::Notification::admin_shutdown("maintenance window")))
        .await
        .unwrap();
    wait_for("B down", Duration::from_secs(5), || status(&b, "127.0.0.2").state != State::Established).await;
    let err = status(&b, "127.0.0.2").last_error.unwrap();
    assert!(err.contains("\"maintenance window\""), "{err}");
    b.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_dialing_settle_on_one_session() {
    tracing_subscriber_init();
    // Both active and both listening: a connection collision (RFC 4271 6.8).
    let port = 17904;
    let a = speaker(64513, "10.0.0.2", Some(&format!("127.0.0.2:{port}"))).await;
    let b = speaker(64512, "10.0.0.3", Some(&format!("127.0.0.3:{port}"))).await;
    a.add_peer(peer("127.0.0.3", 64512, port, "127.0.0.2")).unwrap();
    b.add_peer(peer("127.0.0.2", 64513, port, "127.0.0.3")).unwrap();
    wait_for("Established", Duration::from_secs(15), || {
        status(&a, "127.0.0.3").state == State::Established && status(&b, "127.0.0.2").state == State::Established
    })
    .await;
    a.announce(v4(1), RouteAttrs::default());
    // Stays up and usable: both routes arrive over the one session.
    wait_for("the first route at B", Duration::from_secs(5), || received(&b) == 1).await;
    let up_since = status(&b, "127.0.0.2").established_since;
    a.announce(v4(2), RouteAttrs::default());
    wait_for("the second route at B", Duration::from_secs(5), || received(&b) == 2).await;
    assert_eq!(status(&a, "127.0.0.3").state, State::Established);
    assert_eq!(status(&b, "127.0.0.2").established_since, up_since, "no second session");
    a.shutdown(None).await;
    b.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfigured_and_garbage_connections_do_not_disturb_sessions() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a, b) = pair(17905, |p| p).await;
    let up_since = status(&b, "127.0.0.2").established_since;
    // From an address that is not a peer: refused.
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::from(([127, 0, 0, 9], 0))).unwrap();
    let mut c = s.connect("127.0.0.3:17905".parse().unwrap()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(n, 0, "closed without a word");
    // From the peer's own address while Established: Cease / collision.
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
    let mut c = s.connect("127.0.0.3:17905".parse().unwrap()).await.unwrap();
    c.write_all(&[0u8; 40]).await.unwrap();
    // A whole NOTIFICATION header and its code: marker, length, type 3,
    // Cease (6) / Connection Collision Resolution (7).
    let mut note = [0u8; 21];
    tokio::time::timeout(Duration::from_secs(2), c.read_exact(&mut note)).await.unwrap().unwrap();
    assert_eq!(note[..16], [0xff; 16], "marker");
    assert!(u16::from_be_bytes([note[16], note[17]]) >= 21, "length {note:?}");
    assert_eq!(note[18..21], [3, 6, 7], "NOTIFICATION Cease / collision: {note:?}");
    // A route announced after it arrives over the real session: had the
    // collision reset that session, the reset would have come first.
    let before = received(&b);
    a.announce(v4(77), RouteAttrs::default());
    wait_for("the route after the collision at B", Duration::from_secs(5), || received(&b) == before + 1).await;
    assert_eq!(status(&b, "127.0.0.2").established_since, up_since, "the real session was not disturbed");
    a.shutdown(None).await;
    b.shutdown(None).await;
}

fn tracing_subscriber_init() {
    let _ = tracing_subscriber::fmt().with_env_filter("mooring_bgp=debug").with_test_writer().try_init();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_receiver_keeps_stale_routes_for_the_restart_time() {
    tracing_subscriber_init();
    use mooring_bgp::fsm::GracefulRestartConfig;
    let port = 17906;
    let b = speaker(64512, "10.0.0.3", Some(&format!("127.0.0.3:{port}"))).await;
    let a = Speaker::start(SpeakerConfig {
        local_as: 64513,
        router_id: "10.0.0.2".parse().unwrap(),
        listen: None,
        hostname: None,
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: 2,
            restarting: false,
            forwarding_preserved: true,
        }),
    })
    .await
    .unwrap();
    b.add_peer(PeerConfig { passive: true, import: true, ..peer("127.0.0.2", 64513, port, "127.0.0.3") }).unwrap();
    a.add_peer(peer("127.0.0.3", 64512, port, "127.0.0.2")).unwrap();
    a.announce_many((0..50).map(|i| (v4(i), RouteAttrs::default())));
    wait_for("50 routes at B", Duration::from_secs(10), || received(&b) == 50).await;
    // A goes away without a NOTIFICATION (a restart): B keeps the routes...
    a.shutdown(None).await;
    wait_for("B sees the session drop", Duration::from_secs(5), || status(&b, "127.0.0.2").state != State::Established)
        .await;
    assert_eq!(received(&b), 50, "routes kept (stale) while the peer restarts");
    // ...until the restart time (2 s) runs out.
    wait_for("stale routes purged", Duration::from_secs(5), || received(&b) == 0).await;
    b.shutdown(None).await;
}
