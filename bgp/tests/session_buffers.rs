//! The session's read buffer starts small (4 KiB) and grows for what
//! does not fit: on loopback with a hand-driven peer, messages split
//! across reads, a stream far bigger than any read, and an extended
//! message (RFC 8654) of nearly 64 KiB all arrive whole.

use std::net::{IpAddr, Ipv4Addr};

mod common;

use common::{speaker_dialing, wait_for, Raw, T};
use mooring_bgp::fsm::State;
use mooring_bgp::speaker::{PeerConfig, PeerStatus, Speaker};
use mooring_bgp::wire::*;

const PEER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn status(s: &Speaker, peer: IpAddr) -> PeerStatus {
    s.peer_status(peer).unwrap()
}

/// An UPDATE announcing `n` /32s from 10.1.0.0 + `first` on, AS path 64512.
fn update(first: u32, n: u32) -> Update {
    let base = u32::from(Ipv4Addr::new(10, 1, 0, 0)) + first;
    Update {
        nlri: (0..n).map(|i| Nlri::new(format!("{}/32", Ipv4Addr::from(base + i)).parse().unwrap())).collect(),
        attrs: vec![
            PathAttr::new(AttrValue::Origin(Origin::Igp)),
            PathAttr::new(AttrValue::AsPath(AsPath::sequence(vec![64512]))),
            PathAttr::new(AttrValue::NextHop(Ipv4Addr::new(127, 0, 0, 1))),
        ]
        .into(),
        ..Update::default()
    }
}

/// Bring the session up; `extended`: our OPEN offers extended messages.
async fn established(s: &Speaker, listener: &tokio::net::TcpListener, peer: IpAddr, extended: bool) -> Raw {
    let mut r = Raw::accept(listener).await;
    let Some(Message::Open(theirs)) = r.recv().await else { panic!("no OPEN") };
    assert!(theirs.capabilities().any(|c| matches!(c, Capability::ExtendedMessage)), "the speaker offers it");
    let mut caps = vec![Capability::Multiprotocol(Family::IPV4_UNICAST), Capability::FourOctetAs(64512)];
    if extended {
        caps.push(Capability::ExtendedMessage);
    }
    r.handshake(Message::Open(Open::new(64512, 30, PEER_ID, caps))).await;
    wait_for("Established", T, || status(s, peer).state == State::Established).await;
    r
}

fn prefixes(s: &Speaker, peer: IpAddr) -> u64 {
    status(s, peer).prefixes_received.get(&Family::IPV4_UNICAST).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_split_across_reads_and_a_stream_bigger_than_any_read_arrive_whole() {
    let (s, listener, _, peer) = speaker_dialing(60, 17960, |p| PeerConfig { import: true, ..p }).await;
    let mut r = established(&s, &listener, peer, false).await;
    let ctx = Negotiated::four_octet();
    // 200 UPDATEs of 800 distinct /32s each (~4 KiB apiece, 0.8 MB in all).
    let mut stream = Vec::new();
    for i in 0..200 {
        let bytes = Message::Update(update(i * 800, 800)).to_bytes(&ctx).unwrap();
        assert!(bytes.len() > 4000 && bytes.len() <= 4096, "{}", bytes.len());
        stream.extend_from_slice(&bytes);
    }
    // The first UPDATE in three pieces, the header itself cut in two,
    // each sent and counted before the next.
    let first_len = u16::from_be_bytes([stream[16], stream[17]]) as usize;
    for (a, b) in [(0, 10), (10, 2000), (2000, first_len)] {
        r.send_raw(&stream[a..b]).await;
        tokio::task::yield_now().await;
    }
    wait_for("the first UPDATE", T, || prefixes(&s, peer) == 800).await;
    // The rest at once: many reads' worth.
    r.send_raw(&stream[first_len..]).await;
    wait_for("every prefix", T, || prefixes(&s, peer) == 200 * 800).await;
    let st = status(&s, peer);
    assert_eq!(st.state, State::Established, "{:?}", st.last_error);
    assert_eq!(st.updates_received, 200);
    s.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_message_of_nearly_64_kib_arrives_whole_after_small_ones() {
    let (s, listener, _, peer) = speaker_dialing(62, 17962, |p| PeerConfig { import: true, ..p }).await;
    let mut r = established(&s, &listener, peer, true).await;
    let ctx = Negotiated { extended_message: true, ..Negotiated::four_octet() };
    // Small messages first: the read buffer is at its least.
    for _ in 0..5 {
        r.send_raw(&Message::Keepalive.to_bytes(&ctx).unwrap()).await;
    }
    // 12000 /32s: 60 000 octets in one UPDATE, sent in one write.
    let big = Message::Update(update(0, 12000)).to_bytes(&ctx).unwrap();
    assert!(big.len() > 59_000 && big.len() <= 65_535, "{}", big.len());
    r.send_raw(&big).await;
    wait_for("the big UPDATE", T, || prefixes(&s, peer) == 12000).await;
    // And one more after it, in the buffer grown and given back.
    r.send_raw(&Message::Update(update(20000, 10)).to_bytes(&ctx).unwrap()).await;
    wait_for("the one after", T, || prefixes(&s, peer) == 12010).await;
    let st = status(&s, peer);
    assert_eq!(st.state, State::Established, "{:?}", st.last_error);
    s.shutdown(None).await;
}
