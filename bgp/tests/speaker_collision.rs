//! Connection collisions over real TCP on loopback: a speaker against a
//! hand-driven peer that opens the second connection and chooses its BGP
//! identifier, so each outcome is forced, not left to timing. (Every
//! case is tested without sockets in `fsm::peer`; this shows the driver
//! carries the decisions out on the wire.)

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use mooring_bgp::fsm::State;
use mooring_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use mooring_bgp::wire::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const SPEAKER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const T: Duration = Duration::from_secs(5);

/// A raw BGP connection: read whole messages, write ours.
struct Raw {
    s: TcpStream,
    buf: BytesMut,
}

impl Raw {
    /// The next message, or `None` when the connection ended.
    async fn recv(&mut self) -> Option<Message> {
        loop {
            if let Ok(Some(len)) = frame_len(&self.buf, MAX_MESSAGE_LEN) {
                if self.buf.len() >= len {
                    let m = self.buf.split_to(len);
                    return Some(Message::decode(&m, &Negotiated::default()).expect("a valid message"));
                }
            }
            let n = tokio::time::timeout(T, self.s.read_buf(&mut self.buf)).await.expect("no message in 5 s").ok()?;
            if n == 0 {
                return None;
            }
        }
    }

    async fn send(&mut self, m: Message) {
        self.s.write_all(&m.to_bytes(&Negotiated::default()).unwrap()).await.unwrap();
    }
}

fn open(id: Ipv4Addr, graceful_restart: Option<bool>) -> Message {
    let mut caps = vec![Capability::Multiprotocol(Family::IPV4_UNICAST), Capability::FourOctetAs(64512)];
    if let Some(restarting) = graceful_restart {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restarting,
            notification: false,
            restart_time: 120,
            families: vec![GrFamily { family: Family::IPV4_UNICAST, forwarding_preserved: true }],
        }));
    }
    Message::Open(Open::new(64512, 30, id, caps))
}

/// A speaker on 127.0.0.<n> dialing a peer at 127.0.0.<n+1> that listens on `port`.
async fn setup(n: u8, port: u16) -> (Speaker, TcpListener, IpAddr, IpAddr) {
    let (me, peer) = (IpAddr::from([127, 0, 0, n]), IpAddr::from([127, 0, 0, n + 1]));
    let listener = TcpListener::bind(SocketAddr::new(peer, port)).await.unwrap();
    let s = Speaker::start(SpeakerConfig {
        local_as: 64513,
        router_id: SPEAKER_ID,
        listen: Some(SocketAddr::new(me, port)),
        hostname: None,
        graceful_restart: None,
    })
    .await
    .unwrap();
    s.add_peer(PeerConfig {
        port,
        source: Some(me),
        hold_time: 30,
        import: true,
        connect_retry: Duration::from_secs(30),
        families: vec![Family::IPV4_UNICAST],
        ..PeerConfig::new(peer, 64512)
    })
    .unwrap();
    (s, listener, me, peer)
}

/// The speaker's dial (read up to its OPEN), and a second connection
/// from the peer (read up to the OPEN the speaker sends on it too).
async fn two_connections(listener: &TcpListener, me: IpAddr, peer: IpAddr, port: u16) -> (Raw, Raw) {
    let (s, _) = tokio::time::timeout(T, listener.accept()).await.unwrap().unwrap();
    let mut ours = Raw { s, buf: BytesMut::new() };
    assert!(matches!(ours.recv().await, Some(Message::Open(_))));
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(peer, 0)).unwrap();
    let mut theirs = Raw { s: sock.connect(SocketAddr::new(me, port)).await.unwrap(), buf: BytesMut::new() };
    assert!(matches!(theirs.recv().await, Some(Message::Open(_))), "the speaker sends its OPEN on every connection");
    (ours, theirs)
}

async fn wait_state(s: &Speaker, peer: IpAddr, want: State) {
    let t0 = tokio::time::Instant::now();
    while s.peer_status(peer).unwrap().state != want {
        assert!(t0.elapsed() < T, "peer never reached {want}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
    let (s1, _) = tokio::time::timeout(T, listener.accept()).await.unwrap().unwrap();
    let mut old = Raw { s: s1, buf: BytesMut::new() };
    assert!(matches!(old.recv().await, Some(Message::Open(_))));
    old.send(open(Ipv4Addr::new(10, 0, 0, 1), Some(false))).await;
    assert_eq!(old.recv().await, Some(Message::Keepalive));
    old.send(Message::Keepalive).await;
    wait_state(&s, peer, State::Established).await;
    let mut u = Update::default();
    u.nlri.push(Nlri::new("203.0.113.0/24".parse().unwrap()));
    u.attrs = vec![
        PathAttr::new(AttrValue::Origin(Origin::Igp)),
        PathAttr::new(AttrValue::AsPath(AsPath::sequence(vec![64512]))),
        PathAttr::new(AttrValue::NextHop(Ipv4Addr::new(127, 0, 0, 25))),
    ]
    .into();
    old.s.write_all(&Message::Update(u).to_bytes(&Negotiated::four_octet()).unwrap()).await.unwrap();
    let received = || s.peer_status(peer).unwrap().prefixes_received.values().sum::<u64>();
    let t0 = tokio::time::Instant::now();
    while received() != 1 {
        assert!(t0.elapsed() < T, "the route never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The peer restarts: a new connection while the old one still looks alive.
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(peer, 0)).unwrap();
    let mut new = Raw { s: sock.connect(SocketAddr::new(me, port)).await.unwrap(), buf: BytesMut::new() };
    assert!(matches!(new.recv().await, Some(Message::Open(_))));
    new.send(open(Ipv4Addr::new(10, 0, 0, 1), Some(true))).await;
    // (What the old session still carries is our End-of-RIB.)
    let mut rest = vec![];
    while let Some(m) = old.recv().await {
        rest.push(m);
    }
    assert!(rest.iter().all(|m| matches!(m, Message::Update(_))), "closed without a NOTIFICATION: {rest:?}");
    assert_eq!(new.recv().await, Some(Message::Keepalive));
    assert_eq!(received(), 1, "its routes are kept (stale) while it re-announces");
    new.send(Message::Keepalive).await;
    wait_state(&s, peer, State::Established).await;
    let st = s.peer_status(peer).unwrap();
    assert!(st.last_error.as_deref().unwrap_or("").contains("peer restarted"), "{:?}", st.last_error);
    s.shutdown(None).await;
}
