//! ADD-PATH (RFC 7911) on a real session, against a hand-driven peer on
//! loopback: the speaker offers send and receive for IPv4 unicast; a peer
//! that receives gets every path of a prefix, each under the id its next
//! hop gives, and a path that goes is withdrawn by its id alone; a peer
//! that does not gets the first path, and the status counts the others.
//! Paths the peer sends are kept apart by id and counted as one prefix.
//! FRR's side of it is proven in `integration/tests/add_path.rs`.

mod common;

use std::net::Ipv4Addr;

use bytes::BytesMut;
use common::{speaker_dialing, wait_for, Raw, T};
use mooring_bgp::speaker::{PeerConfig, RouteAttrs};
use mooring_bgp::wire::*;
use tokio::io::AsyncReadExt;

const VIP: &str = "203.0.113.10/32";
const HOPS: [&str; 3] = ["198.18.0.21", "198.18.0.22", "198.18.0.23"];

fn via(nh: &str) -> RouteAttrs {
    RouteAttrs { next_hop: Some(nh.parse().unwrap()), ..RouteAttrs::default() }
}

fn id(nh: &str) -> u32 {
    u32::from(nh.parse::<Ipv4Addr>().unwrap())
}

fn add_path() -> Negotiated {
    Negotiated { add_path_ipv4: true, ..Negotiated::four_octet() }
}

fn peer_open(mode: Option<AddPathMode>) -> Message {
    let mut caps = vec![Capability::Multiprotocol(Family::IPV4_UNICAST), Capability::FourOctetAs(64512)];
    caps.extend(mode.map(|mode| Capability::AddPath(vec![AddPathFamily { family: Family::IPV4_UNICAST, mode }])));
    Message::Open(Open::new(64512, 30, "198.18.0.1".parse().unwrap(), caps))
}

/// The next message, decoded as `ctx` says.
async fn recv(raw: &mut Raw, buf: &mut BytesMut, ctx: &Negotiated) -> Message {
    loop {
        if let Ok(Some(len)) = frame_len(buf, MAX_EXTENDED_MESSAGE_LEN) {
            if buf.len() >= len {
                return Message::decode(&buf.split_to(len), ctx).expect("a valid message");
            }
        }
        let n = tokio::time::timeout(T, raw.s.read_buf(buf)).await.expect("no message in 5 s").unwrap();
        assert!(n > 0, "connection closed");
    }
}

/// The UPDATEs up to the next IPv4 End-of-RIB (or the first `n` UPDATEs when `n` is given).
async fn updates(raw: &mut Raw, buf: &mut BytesMut, ctx: &Negotiated, n: Option<usize>) -> Vec<Update> {
    let mut v = vec![];
    loop {
        if let Message::Update(u) = recv(raw, buf, ctx).await {
            if u.as_end_of_rib().is_some() {
                return v;
            }
            v.push(u);
            if Some(v.len()) == n {
                return v;
            }
        }
    }
}

/// (path id, next hop) of each announced prefix.
fn announced(us: &[Update]) -> Vec<(Option<u32>, Ipv4Addr)> {
    let mut v: Vec<_> = us
        .iter()
        .flat_map(|u| {
            let nh = u.attrs.iter().find_map(|a| match a.value {
                AttrValue::NextHop(a) => Some(a),
                _ => None,
            });
            u.announced().map(move |n| (n.path_id, nh.expect("a NEXT_HOP")))
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_peer_that_receives_add_path_gets_every_path_and_loses_one_alone() {
    let port = 17970;
    let (s, listener, _, peer) = speaker_dialing(70, port, |p| PeerConfig { import: true, ..p }).await;
    s.set_routes(HOPS.map(|h| (VIP.parse().unwrap(), via(h))));
    let mut raw = Raw::accept(&listener).await;
    let Some(Message::Open(o)) = raw.recv().await else { panic!("no OPEN") };
    let offered: Vec<&Capability> = o.capabilities().filter(|c| matches!(c, Capability::AddPath(_))).collect();
    assert_eq!(
        offered,
        [&Capability::AddPath(vec![AddPathFamily { family: Family::IPV4_UNICAST, mode: AddPathMode::Both }])],
        "send and receive offered for the session's family"
    );
    raw.handshake(peer_open(Some(AddPathMode::Both))).await;
    let ctx = add_path();
    let mut buf = BytesMut::new();
    let got = announced(&updates(&mut raw, &mut buf, &ctx, None).await);
    let want: Vec<_> = HOPS.iter().map(|h| (Some(id(h)), h.parse().unwrap())).collect();
    assert_eq!(got, want, "three paths, each under its next hop's id");
    let st = s.peer_status(peer).unwrap();
    assert_eq!((st.prefixes_sent, st.paths_not_sent), (1, 0));
    assert_eq!(st.add_path, [AddPathFamily { family: Family::IPV4_UNICAST, mode: AddPathMode::Both }]);

    // The second path goes: one UPDATE withdrawing (VIP, its id), nothing announced.
    s.set_routes([HOPS[0], HOPS[2]].map(|h| (VIP.parse().unwrap(), via(h))));
    let u = updates(&mut raw, &mut buf, &ctx, Some(1)).await.remove(0);
    assert_eq!(u.withdrawals().copied().collect::<Vec<_>>(), [Nlri::with_path_id(VIP.parse().unwrap(), id(HOPS[1]))]);
    assert_eq!(u.announced().count(), 0, "the other paths are not re-sent: {u}");

    // The peer sends two paths of one prefix: one prefix received, each path kept.
    let path = |pid| Nlri::with_path_id("198.51.100.0/24".parse().unwrap(), pid);
    let mut m = common::announce(&[], "198.18.0.1".parse().unwrap());
    if let Message::Update(u) = &mut m {
        u.nlri = vec![path(1), path(2)];
    }
    raw.send_raw(&m.to_bytes(&ctx).unwrap()).await;
    let received = || s.peer_status(peer).unwrap().prefixes_received.get(&Family::IPV4_UNICAST).copied();
    wait_for("the peer's prefix", T, || received() == Some(1)).await;
    // Withdrawing one path leaves the prefix; the second takes it.
    let withdraw = |n| Message::Update(Update { withdrawn: vec![n], ..Update::default() });
    raw.send_raw(&withdraw(path(1)).to_bytes(&ctx).unwrap()).await;
    raw.send_raw(&withdraw(path(2)).to_bytes(&ctx).unwrap()).await;
    wait_for("the prefix gone with its last path", T, || received() == Some(0)).await;
    s.shutdown(None).await;
}

#[tokio::test]
async fn a_peer_without_add_path_gets_the_first_path_and_the_rest_are_counted() {
    let port = 17971;
    let (s, listener, _, peer) = speaker_dialing(72, port, |p| p).await;
    s.set_routes(HOPS.map(|h| (VIP.parse().unwrap(), via(h))));
    let mut raw = Raw::accept(&listener).await;
    let Some(Message::Open(_)) = raw.recv().await else { panic!("no OPEN") };
    // It can only send paths: nothing we send carries ids.
    raw.handshake(peer_open(Some(AddPathMode::Send))).await;
    let mut buf = BytesMut::new();
    let got = announced(&updates(&mut raw, &mut buf, &Negotiated::four_octet(), None).await);
    assert_eq!(got, [(None, HOPS[0].parse().unwrap())], "the first path, no path id");
    let st = s.peer_status(peer).unwrap();
    assert_eq!((st.prefixes_sent, st.paths_not_sent), (1, 2), "two paths held back, and counted");
    assert!(st.add_path.iter().all(|a| !a.mode.can_send()));
    s.shutdown(None).await;
}
