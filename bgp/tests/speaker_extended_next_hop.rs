//! RFC 8950 on an IPv6 session, against a hand-driven peer on ::1: the
//! speaker offers the extended next hop capability; when the peer offers
//! it too, an IPv4 route with no IPv4 next hop known goes out in
//! MP_REACH_NLRI (AFI 1) with the session's IPv6 address as next hop and
//! is withdrawn in MP_UNREACH_NLRI; when the peer does not, the route is
//! held back. IPv4 routes with an IPv6 next hop from the peer are taken.
//! FRR's side of it is proven in `integration/tests/dual_stack.rs`.

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use common::{wait_for, Raw, SPEAKER_ID, T};
use mooring_bgp::speaker::{PeerConfig, RouteAttrs, Speaker, SpeakerConfig};
use mooring_bgp::wire::*;
use tokio::net::TcpListener;

const VIP: &str = "203.0.113.10/32";
const LO: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// A speaker (AS 64513, no IPv4 address for its routes) dialing the peer
/// (AS 64512) at [::1]:`port`, with IPv4 unicast only, announcing [`VIP`]
/// from the start; the listener plays the peer.
async fn speaker(port: u16) -> (Speaker, TcpListener) {
    let listener = TcpListener::bind(SocketAddr::new(LO, port)).await.unwrap();
    let s = Speaker::start(SpeakerConfig {
        local_as: 64513,
        router_id: SPEAKER_ID,
        listen: None,
        hostname: None,
        graceful_restart: None,
    })
    .await
    .unwrap();
    s.announce(VIP.parse().unwrap(), RouteAttrs::default());
    s.add_peer(PeerConfig {
        port,
        source: Some(LO),
        hold_time: 30,
        connect_retry: Duration::from_millis(200),
        families: vec![Family::IPV4_UNICAST],
        import: true,
        ..PeerConfig::new(LO, 64512)
    })
    .unwrap();
    (s, listener)
}

fn peer_open(extended_next_hop: bool) -> Message {
    let mut caps = vec![Capability::Multiprotocol(Family::IPV4_UNICAST), Capability::FourOctetAs(64512)];
    if extended_next_hop {
        caps.push(Capability::ExtendedNextHop(vec![ExtendedNextHop::IPV4_OVER_IPV6]));
    }
    Message::Open(Open::new(64512, 30, "198.18.0.1".parse().unwrap(), caps))
}

/// The UPDATEs up to the speaker's IPv4 End-of-RIB.
async fn updates_until_end_of_rib(raw: &mut Raw) -> Vec<Update> {
    let mut v = vec![];
    loop {
        match raw.recv().await {
            Some(Message::Update(u)) if u.as_end_of_rib() == Some(Family::IPV4_UNICAST) => return v,
            Some(Message::Update(u)) => v.push(u),
            Some(Message::Keepalive) => {}
            m => panic!("expected UPDATEs, got {m:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_route_with_an_ipv6_next_hop_when_both_offer_rfc8950() {
    let (s, listener) = speaker(17961).await;
    let mut raw = Raw::accept(&listener).await;
    let Some(Message::Open(o)) = raw.recv().await else { panic!("no OPEN") };
    assert!(
        o.capabilities().any(|c| *c == Capability::ExtendedNextHop(vec![ExtendedNextHop::IPV4_OVER_IPV6])),
        "the speaker offers IPv4 unicast with IPv6 next hops on an IPv6 session: {o}"
    );
    raw.handshake(peer_open(true)).await;
    let sent = updates_until_end_of_rib(&mut raw).await;
    let [u] = &sent[..] else { panic!("one UPDATE before End-of-RIB, got {sent:?}") };
    assert!(u.nlri.is_empty() && u.attr(type_code::NEXT_HOP).is_none(), "no classic NLRI or NEXT_HOP: {u}");
    let reach = u.mp_reach().expect("MP_REACH_NLRI");
    assert_eq!(reach.family, Family::IPV4_UNICAST);
    assert_eq!(reach.next_hop, MpNextHop::Typed(NextHop::V6 { global: Ipv6Addr::LOCALHOST, link_local: None }));
    assert_eq!(reach.nlri.prefixes(), [Nlri::new(VIP.parse().unwrap())]);

    s.withdraw(VIP.parse().unwrap());
    let w = loop {
        match raw.recv().await {
            Some(Message::Keepalive) => {}
            Some(Message::Update(w)) => break w,
            m => panic!("expected the withdrawal, got {m:?}"),
        }
    };
    assert!(w.withdrawn.is_empty(), "not in the withdrawn routes field once RFC 8950 is negotiated: {w}");
    let unreach = w.mp_unreach().expect("MP_UNREACH_NLRI");
    assert_eq!(
        (unreach.family, unreach.withdrawn.prefixes()),
        (Family::IPV4_UNICAST, &[Nlri::new(VIP.parse().unwrap())][..])
    );

    // The receive side: an IPv4 route with a global + link-local next hop.
    let reach = MpReach {
        family: Family::IPV4_UNICAST,
        next_hop: MpNextHop::Typed(NextHop::V6 {
            global: "fd00:198:18:1::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        }),
        nlri: MpNlri::Unicast(vec![Nlri::new("198.51.100.0/24".parse().unwrap())]),
    };
    raw.send(Message::Update(Update {
        attrs: vec![
            PathAttr::new(AttrValue::MpReach(reach)),
            PathAttr::new(AttrValue::Origin(Origin::Igp)),
            PathAttr::new(AttrValue::AsPath(AsPath::sequence([64512]))),
        ]
        .into(),
        ..Update::default()
    }))
    .await;
    wait_for("the IPv4 route received", T, || {
        s.peer_status(LO).unwrap().prefixes_received.get(&Family::IPV4_UNICAST) == Some(&1)
    })
    .await;
    s.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_route_held_back_when_the_peer_does_not_offer_rfc8950() {
    let (s, listener) = speaker(17962).await;
    let mut raw = Raw::accept(&listener).await;
    let Some(Message::Open(_)) = raw.recv().await else { panic!("no OPEN") };
    raw.handshake(peer_open(false)).await;
    // The route was in the table before the session came up: it would
    // have been sent before the End-of-RIB.
    let sent = updates_until_end_of_rib(&mut raw).await;
    assert!(sent.is_empty(), "no IPv4 next hop known and RFC 8950 not negotiated: nothing to send, got {sent:?}");
    assert_eq!(s.peer_status(LO).unwrap().prefixes_sent, 0);
    s.shutdown(None).await;
}
