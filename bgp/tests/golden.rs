//! Golden vectors: real messages captured from FRR, GoBGP and BIRD
//! sessions in network namespaces (`integration/golden/capture.sh`; see
//! `fixtures/README.md`). Every message must decode without error and
//! re-encode to the very same octets; selected messages are checked
//! field by field against what the daemons were configured to send.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use mooring_bgp::wire::*;

/// One captured message: who sent it, the type the capture script saw,
/// and its octets.
#[derive(Debug)]
struct Captured {
    sender: String,
    kind: String,
    bytes: Vec<u8>,
}

fn load(name: &str) -> Vec<Captured> {
    let path = format!("{}/tests/fixtures/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut it = l.split_whitespace();
            let (Some(sender), Some(kind), Some(hex), None) = (it.next(), it.next(), it.next(), it.next()) else {
                panic!("{path}: bad line {l:?}");
            };
            Captured { sender: sender.into(), kind: kind.into(), bytes: hex::decode(hex).unwrap() }
        })
        .collect()
}

/// The session a sender label belongs to: `frr-v4` -> `v4`.
fn session_of(sender: &str) -> &str {
    sender.rsplit_once('-').map(|(_, s)| s).unwrap_or("")
}

/// What each session negotiated, from the two OPENs it carried.
fn negotiated(msgs: &[Captured]) -> BTreeMap<String, Negotiated> {
    let mut opens: BTreeMap<String, Vec<Open>> = BTreeMap::new();
    for m in msgs.iter().filter(|m| m.kind == "OPEN") {
        let Message::Open(o) = Message::decode(&m.bytes, &Negotiated::default()).unwrap() else { unreachable!() };
        opens.entry(session_of(&m.sender).to_string()).or_default().push(o);
    }
    opens
        .into_iter()
        .map(|(s, os)| {
            let both = |code: u8| os.len() == 2 && os.iter().all(|o| o.capabilities().any(|c| c.code() == code));
            let ctx = Negotiated {
                four_octet_as: both(capability_code::FOUR_OCTET_AS),
                extended_message: both(capability_code::EXTENDED_MESSAGE),
                ..Negotiated::default()
            };
            (s, ctx)
        })
        .collect()
}

/// Decode every message of a fixture, checking the exact round trip.
fn decode_fixture(name: &str) -> Vec<(String, Message)> {
    let msgs = load(name);
    assert!(msgs.len() >= 10, "{name}: only {} messages", msgs.len());
    let ctxs = negotiated(&msgs);
    msgs.iter()
        .map(|m| {
            let ctx = ctxs.get(session_of(&m.sender)).copied().unwrap_or_default();
            let msg = Message::decode(&m.bytes, &ctx)
                .unwrap_or_else(|e| panic!("{name}: {} {} does not decode: {e}", m.sender, m.kind));
            assert_eq!(msg.name(), m.kind, "{name}: {}", m.sender);
            if let Message::Update(u) = &msg {
                assert!(u.attr_errors.is_empty(), "{name}: {u}");
            }
            let again = msg.to_bytes(&ctx).unwrap();
            assert_eq!(hex::encode(&again), hex::encode(&m.bytes), "{name}: {} {msg}", m.sender);
            (m.sender.clone(), msg)
        })
        .collect()
}

fn updates<'a>(msgs: &'a [(String, Message)], sender: &str) -> Vec<&'a Update> {
    msgs.iter()
        .filter(|(s, _)| s == sender)
        .filter_map(|(_, m)| match m {
            Message::Update(u) => Some(u),
            _ => None,
        })
        .collect()
}

fn opens<'a>(msgs: &'a [(String, Message)], sender: &str) -> Vec<&'a Open> {
    msgs.iter()
        .filter(|(s, _)| s == sender)
        .filter_map(|(_, m)| match m {
            Message::Open(o) => Some(o),
            _ => None,
        })
        .collect()
}

#[test]
fn every_fixture_message_round_trips_exactly() {
    for name in ["frr", "gobgp", "bird"] {
        let msgs = decode_fixture(name);
        for kind in ["OPEN", "KEEPALIVE", "UPDATE"] {
            assert!(msgs.iter().any(|(_, m)| m.name() == kind), "{name} has no {kind}");
        }
    }
}

#[test]
fn frr_open_capabilities() {
    let msgs = decode_fixture("frr");
    let o = opens(&msgs, "frr-v4")[0];
    assert_eq!(o.asn(), 4_200_000_001);
    assert_eq!(o.my_as, AS_TRANS);
    assert_eq!(o.bgp_id, Ipv4Addr::new(198, 18, 1, 1));
    let caps: Vec<&Capability> = o.capabilities().collect();
    assert!(caps.contains(&&Capability::Multiprotocol(Family::IPV4_UNICAST)));
    assert!(caps.contains(&&Capability::RouteRefresh));
    assert!(caps.contains(&&Capability::ExtendedMessage));
    assert!(caps.contains(&&Capability::EnhancedRouteRefresh));
    assert!(caps.iter().any(|c| matches!(c, Capability::Fqdn { hostname, .. } if hostname.starts_with("mgold"))));
    assert!(caps.iter().any(|c| matches!(c, Capability::GracefulRestart(_))));
}

#[test]
fn frr_end_of_rib_and_shutdown_notification() {
    let msgs = decode_fixture("frr");
    let eor: Vec<Family> = updates(&msgs, "frr-v4")
        .into_iter()
        .chain(updates(&msgs, "frr-v6"))
        .filter_map(|u| u.as_end_of_rib())
        .collect();
    assert!(eor.contains(&Family::IPV4_UNICAST) && eor.contains(&Family::IPV6_UNICAST), "{eor:?}");
    let shutdown = msgs.iter().find_map(|(s, m)| match m {
        Message::Notification(n) if s == "frr-v4" => Some(n),
        _ => None,
    });
    let n = shutdown.expect("FRR sent a NOTIFICATION");
    assert_eq!((n.code(), n.subcode()), (6, 2));
    assert!(n.is_cease(Cease::AdminShutdown));
    assert_eq!(n.shutdown_message(), Some("golden capture done (frr v4)"));
    assert!(msgs.iter().any(|(_, m)| matches!(m, Message::RouteRefresh(r) if r.family == Family::IPV6_UNICAST)));
}

#[test]
fn frr_ipv6_mp_reach_with_link_local_next_hop() {
    let msgs = decode_fixture("frr");
    let reach: Vec<&MpReach> = updates(&msgs, "frr-v6").into_iter().filter_map(|u| u.mp_reach()).collect();
    assert!(!reach.is_empty());
    for m in &reach {
        assert_eq!(m.family, Family::IPV6_UNICAST);
        let MpNextHop::Typed(NextHop::V6 { global, link_local: Some(ll) }) = m.next_hop else {
            panic!("no link-local next hop: {:?}", m.next_hop)
        };
        assert_eq!(global, "2001:db8:ffff:ff01::1".parse::<Ipv6Addr>().unwrap());
        assert!(ll.segments()[0] == 0xfe80, "{ll}");
    }
}

#[test]
fn frr_update_with_all_community_kinds_and_four_octet_path() {
    let msgs = decode_fixture("frr");
    let u = updates(&msgs, "frr-v4")
        .into_iter()
        .find(|u| u.nlri.iter().any(|n| n.prefix.to_string() == "203.0.113.0/24"))
        .expect("FRR announced 203.0.113.0/24");
    assert_eq!(u.origin(), Some(Origin::Igp));
    assert_eq!(u.as_path().unwrap().asns().collect::<Vec<_>>(), vec![4_200_000_001, 4_200_000_011, 4_200_000_012]);
    assert_eq!(u.next_hop(), Some(Ipv4Addr::new(198, 18, 1, 1)));
    assert_eq!(u.med(), Some(50));
    assert_eq!(u.communities(), &[Community::new(64512, 100), Community::NO_EXPORT]);
    assert_eq!(
        u.large_communities(),
        &[LargeCommunity::new(4_200_000_001, 1, 2), LargeCommunity::new(4_200_000_001, 3, 4)]
    );
    assert_eq!(u.ext_communities()[0], ExtCommunity::RouteTarget(Administrator::As2(64512, 100)));
    // `set extcommunity bandwidth 100` (Mbit/s): 12.5 MB/s, FRR's AS_TRANS for a 4-octet local AS.
    assert_eq!(
        u.ext_communities()[1],
        ExtCommunity::LinkBandwidth { asn: AS_TRANS, bytes_per_sec: 12_500_000.0, transitive: true }
    );
    let gshut = updates(&msgs, "frr-v4").into_iter().find(|u| u.communities() == [Community::GRACEFUL_SHUTDOWN]);
    assert!(gshut.is_some(), "the well-known GRACEFUL_SHUTDOWN community");
}

#[test]
fn gobgp_open_extended_next_hop_capability() {
    // GoBGP 3.10 offers IPv4 unicast with IPv6 next hops (RFC 8950) on every session.
    for name in ["frr", "gobgp", "bird"] {
        let msgs = decode_fixture(name);
        let o = opens(&msgs, "gobgp-v4")[0];
        let enh: Vec<&Capability> =
            o.capabilities().filter(|c| c.code() == capability_code::EXTENDED_NEXT_HOP).collect();
        assert_eq!(enh, [&Capability::ExtendedNextHop(vec![ExtendedNextHop::IPV4_OVER_IPV6])], "{name}");
        assert_eq!(enh[0].to_string(), "extended next hop ipv4-unicast via ipv6");
    }
}
