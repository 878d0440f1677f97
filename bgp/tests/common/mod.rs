//! A hand-driven BGP peer for the loopback tests: whole messages in and
//! out of a TCP connection, so a test decides every octet the speaker
//! under test gets.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use mooring_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use mooring_bgp::wire::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// How long a test waits for anything.
pub const T: Duration = Duration::from_secs(5);

/// A raw BGP connection.
pub struct Raw {
    pub s: TcpStream,
    buf: BytesMut,
}

impl Raw {
    /// The next connection on `listener` (the speaker dialing us).
    pub async fn accept(listener: &TcpListener) -> Raw {
        let (s, _) = tokio::time::timeout(T, listener.accept()).await.expect("no connection in 5 s").unwrap();
        Raw { s, buf: BytesMut::new() }
    }

    /// Connect from `from` (any port) to `to`.
    pub async fn connect(from: IpAddr, to: SocketAddr) -> Raw {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(from, 0)).unwrap();
        Raw { s: sock.connect(to).await.unwrap(), buf: BytesMut::new() }
    }

    /// The next message, or `None` when the connection ended.
    pub async fn recv(&mut self) -> Option<Message> {
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

    /// The next message that is not an UPDATE (the speaker's End-of-RIB, say).
    pub async fn recv_skipping_updates(&mut self) -> Option<Message> {
        loop {
            match self.recv().await {
                Some(Message::Update(_)) => {}
                m => return m,
            }
        }
    }

    pub async fn send(&mut self, m: Message) {
        self.send_raw(&m.to_bytes(&Negotiated::four_octet()).unwrap()).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// Answer the speaker's OPEN (already read) with ours and a
    /// KEEPALIVE, and read up to its KEEPALIVE: Established.
    pub async fn handshake(&mut self, open: Message) {
        self.send(open).await;
        assert_eq!(self.recv().await, Some(Message::Keepalive));
        self.send(Message::Keepalive).await;
    }
}

/// An OPEN of AS `asn` with identifier `id`, IPv4 unicast and 4-octet AS,
/// and graceful restart (with this Restart State bit) when given.
pub fn open(asn: u32, id: Ipv4Addr, graceful_restart: Option<bool>) -> Message {
    let mut caps = vec![Capability::Multiprotocol(Family::IPV4_UNICAST), Capability::FourOctetAs(asn)];
    if let Some(restarting) = graceful_restart {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restarting,
            notification: false,
            restart_time: 120,
            families: vec![GrFamily { family: Family::IPV4_UNICAST, forwarding_preserved: true }],
        }));
    }
    Message::Open(Open::new(asn, 30, id, caps))
}

/// An UPDATE announcing `prefixes` from AS 64512 with next hop `nh`.
pub fn announce(prefixes: &[&str], nh: Ipv4Addr) -> Message {
    Message::Update(Update {
        nlri: prefixes.iter().map(|p| Nlri::new(p.parse().unwrap())).collect(),
        attrs: vec![
            PathAttr::new(AttrValue::Origin(Origin::Igp)),
            PathAttr::new(AttrValue::AsPath(AsPath::sequence(vec![64512]))),
            PathAttr::new(AttrValue::NextHop(nh)),
        ]
        .into(),
        ..Update::default()
    })
}

/// The identifier of the speakers these tests start.
pub const SPEAKER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

/// A speaker (AS 64513) on 127.0.0.<n>, listening on `port` there, with
/// one peer (AS 64512) at 127.0.0.<n+1> that it dials on `port`, where the
/// returned listener plays that peer. `peer` adjusts the peer's settings.
pub async fn speaker_dialing(
    n: u8,
    port: u16,
    peer: impl FnOnce(PeerConfig) -> PeerConfig,
) -> (Speaker, TcpListener, IpAddr, IpAddr) {
    let (me, them) = (IpAddr::from([127, 0, 0, n]), IpAddr::from([127, 0, 0, n + 1]));
    let listener = TcpListener::bind(SocketAddr::new(them, port)).await.unwrap();
    let s = Speaker::start(SpeakerConfig {
        local_as: 64513,
        router_id: SPEAKER_ID,
        listen: Some(SocketAddr::new(me, port)),
        hostname: None,
        graceful_restart: None,
    })
    .await
    .unwrap();
    s.add_peer(peer(PeerConfig {
        port,
        source: Some(me),
        hold_time: 30,
        connect_retry: Duration::from_secs(30),
        families: vec![Family::IPV4_UNICAST],
        ..PeerConfig::new(them, 64512)
    }))
    .unwrap();
    (s, listener, me, them)
}

/// Wait until `f` holds, for at most `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = tokio::time::Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
