//! Connection collisions over real TCP on loopback: a speaker against a
//! hand-driven peer that opens the second connection and chooses its BGP
//! identifier, so each outcome is forced, not left to timing. (Every
//! case is tested without sockets in `fsm::peer`; this shows the driver
//! carries the decisions out on the wire.)

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

mod common;

use common::{Raw, T};
use mooring_bgp::fsm::State;
use mooring_bgp::speaker::{PeerConfig, Speaker};
use mooring_bgp::wire::*;
use tokio::net::TcpListener;

async fn setup(n: u8, port: u16) -> (Speaker, TcpListener, IpAddr, IpAddr) {
    common::speaker_dialing(n, port, |p| PeerConfig { import: true, ..p }).await
}

/// The speaker's dial (read up to its OPEN), and a second connection
/// from the peer (read up to the OPEN the speaker sends on it too).
async fn two_connections(listener: &TcpListener, me: IpAddr, peer: IpAddr, port: u16) -> (Raw, Raw) {
    let mut ours = Raw::accept(listener).await;
    assert!(matches!(ours.recv().await, Some(Message::Open(_))));
    let mut theirs = Raw::connect(peer, SocketAddr::new(me, port)).await;
    assert!(matches!(theirs.recv().await, Some(Message::Open(_))), "the speaker sends its OPEN on every connection");
    (ours, theirs)
}

async fn wait_state(s: &Speaker, peer: IpAddr, want: State) {
    common::wait_for(&format!("{want}"), T, || s.peer_status(peer).unwrap().state == want).await;
}

fn open(id: Ipv4Addr, graceful_restart: Option<bool>) -> Message {
    common::open(64512, id, graceful_restart)
}

fn collision_cease() -> Option<Message> {
    Some(Message::Notification(Notification::new(Cease::ConnectionCollision, vec![])))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_higher_peer_identifier_keeps_the_peers_connection() {
    let port = 17921;
    let (s, listener, me, peer) = setup(20, port).await;
    let (mut dialed, mut accepted) = two_connections(&listener, me, peer, port).await;
    // The peer's identifier is higher: the connection it opened lives.
    accepted.send(open(Ipv4Addr::new(10, 0, 0, 9), None)).await;
    assert_eq!(dialed.recv().await, collision_cease(), "the speaker's own connection loses");
    assert_eq!(dialed.recv().await, None, "and is closed");
    assert_eq!(accepted.recv().await, Some(Message::Keepalive));
    accepted.send(Message::Keepalive).await;
    wait_state(&s, peer, State::Established).await;
    s.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_peer_identifier_keeps_the_speakers_connection() {
    let port = 17922;
    let (s, listener, me, peer) = setup(22, port).await;
    let (mut dialed, mut accepted) = two_connections(&listener, me, peer, port).await;
    accepted.send(open(Ipv4Addr::new(10, 0, 0, 1), None)).await;
    assert_eq!(accepted.recv().await, collision_cease(), "the peer's connection loses");
    assert_eq!(accepted.recv().await, None);
    dialed.send(open(Ipv4Addr::new(10, 0, 0, 1), None)).await;
    assert_eq!(dialed.recv().await, Some(Message::Keepalive));
    dialed.send(Message::Keepalive).await;
    wait_state(&s, peer, State::Established).await;
    s.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_restarting_gracefully_takes_over_and_its_routes_stay() {
    let port = 17923;
    let (s, listener, me, peer) = setup(24, port).await;
    let mut old = Raw::accept(&listener).await;
    assert!(matches!(old.recv().await, Some(Message::Open(_))));
    old.send(open(Ipv4Addr::new(10, 0, 0, 1), Some(false))).await;
    assert_eq!(old.recv().await, Some(Message::Keepalive));
    old.send(Message::Keepalive).await;
    wait_state(&s, peer, State::Established).await;
    old.send(common::announce(&["203.0.113.0/24"], Ipv4Addr::new(127, 0, 0, 25))).await;
    let received = || s.peer_status(peer).unwrap().prefixes_received.values().sum::<u64>();
    common::wait_for("the route", T, || received() == 1).await;
    // The peer restarts: a new connection while the old one still looks alive.
    let mut new = Raw::connect(peer, SocketAddr::new(me, port)).await;
    assert!(matches!(new.recv().await, Some(Message::Open(_))));
    new.send(open(Ipv4Addr::new(10, 0, 0, 1), Some(true))).await;
    // (What the old session still carries is our End-of-RIB.)
    assert_eq!(old.recv_skipping_updates().await, None, "closed without a NOTIFICATION");
    assert_eq!(new.recv().await, Some(Message::Keepalive));
    assert_eq!(received(), 1, "its routes are kept (stale) while it re-announces");
    new.send(Message::Keepalive).await;
    wait_state(&s, peer, State::Established).await;
    let st = s.peer_status(peer).unwrap();
    assert!(st.last_error.as_deref().unwrap_or("").contains("peer restarted"), "{:?}", st.last_error);
    s.shutdown(None).await;
}
