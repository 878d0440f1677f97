//! Property tests: arbitrary valid messages round-trip through the codec,
//! and arbitrary bytes never make the decoder panic.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use mooring_bgp::wire::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn ctx_strategy() -> impl Strategy<Value = Negotiated> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(a, b, c, d, e)| Negotiated {
        four_octet_as: a,
        extended_message: b,
        add_path_ipv4: c,
        add_path_ipv6: d,
        extended_next_hop_ipv4: e,
    })
}

/// A prefix whose octets beyond the prefix length are zero (the wire form
/// carries only ceil(len/8) octets).
fn prefix(v6: bool) -> BoxedStrategy<IpNetwork> {
    if v6 {
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, l)| {
                let mut o = a.to_be_bytes();
                o[(l as usize).div_ceil(8)..].fill(0);
                IpNetwork::V6(Ipv6Network::new(Ipv6Addr::from(o), l).unwrap())
            })
            .boxed()
    } else {
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| {
                let mut o = a.to_be_bytes();
                o[(l as usize).div_ceil(8)..].fill(0);
                IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(o), l).unwrap())
            })
            .boxed()
    }
}

fn nlri_list(v6: bool, add_path: bool, max: usize) -> BoxedStrategy<Vec<Nlri>> {
    vec((prefix(v6), any::<u32>()), 0..max)
        .prop_map(move |v| v.into_iter().map(|(p, id)| Nlri { path_id: add_path.then_some(id), prefix: p }).collect())
        .boxed()
}

fn asn(four: bool) -> BoxedStrategy<u32> {
    if four {
        any::<u32>().boxed()
    } else {
        (0u32..=65535).boxed()
    }
}

fn as_path(four: bool) -> impl Strategy<Value = AsPath> {
    let seg = (
        prop_oneof![
            Just(SegmentType::Sequence),
            Just(SegmentType::Set),
            Just(SegmentType::ConfedSequence),
            Just(SegmentType::ConfedSet)
        ],
        vec(asn(four), 1..8),
    )
        .prop_map(|(kind, asns)| Segment { kind, asns });
    vec(seg, 0..4).prop_map(|segments| AsPath { segments })
}

fn ext_community() -> impl Strategy<Value = ExtCommunity> {
    prop_oneof![
        (any::<u16>(), any::<u32>()).prop_map(|(a, v)| ExtCommunity::RouteTarget(Administrator::As2(a, v))),
        (any::<u32>(), any::<u16>()).prop_map(|(a, v)| ExtCommunity::RouteOrigin(Administrator::As4(a, v))),
        (any::<u32>(), any::<u16>())
            .prop_map(|(a, v)| ExtCommunity::RouteTarget(Administrator::Ipv4(Ipv4Addr::from(a), v))),
        (any::<u16>(), 0.0f32..1e12, any::<bool>()).prop_map(|(asn, bytes_per_sec, transitive)| {
            ExtCommunity::LinkBandwidth { asn, bytes_per_sec, transitive }
        }),
        // Raw: types this crate does not interpret (0x03 opaque, 0x80+ experimental).
        (prop_oneof![Just(0x03u8), Just(0x43), 0x80u8..=0xff], any::<[u8; 7]>()).prop_map(|(t, r)| {
            let mut b = [0u8; 8];
            b[0] = t;
            b[1..].copy_from_slice(&r);
            ExtCommunity::Raw(b)
        }),
    ]
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

const KNOWN: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32, 35];

/// Attributes other than MP_REACH/MP_UNREACH.
fn plain_attr(ctx: Negotiated) -> BoxedStrategy<AttrValue> {
    let four = ctx.four_octet_as;
    prop_oneof![
        prop_oneof![Just(Origin::Igp), Just(Origin::Egp), Just(Origin::Incomplete)].prop_map(AttrValue::Origin),
        as_path(four).prop_map(AttrValue::AsPath),
        ipv4().prop_map(AttrValue::NextHop),
        any::<u32>().prop_map(AttrValue::Med),
        any::<u32>().prop_map(AttrValue::LocalPref),
        Just(AttrValue::AtomicAggregate),
        (asn(four), ipv4()).prop_map(|(asn, address)| AttrValue::Aggregator(Aggregator { asn, address })),
        vec(any::<u32>().prop_map(Community), 1..10).prop_map(AttrValue::Communities),
        ipv4().prop_map(AttrValue::OriginatorId),
        vec(ipv4(), 1..5).prop_map(AttrValue::ClusterList),
        vec(ext_community(), 1..6).prop_map(AttrValue::ExtCommunities),
        as_path(true).prop_map(AttrValue::As4Path),
        (any::<u32>(), ipv4()).prop_map(|(asn, address)| AttrValue::As4Aggregator(Aggregator { asn, address })),
        vec((any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c)| LargeCommunity::new(a, b, c)), 1..5)
            .prop_map(AttrValue::LargeCommunities),
        any::<u32>().prop_map(AttrValue::Otc),
        (any::<u8>().prop_filter("unknown type", |t| !KNOWN.contains(t)), vec(any::<u8>(), 0..300))
            .prop_map(|(type_code, data)| AttrValue::Unknown { type_code, data }),
    ]
    .boxed()
}

fn next_hop() -> impl Strategy<Value = NextHop> {
    prop_oneof![
        ipv4().prop_map(NextHop::V4),
        (ipv6(), proptest::option::of(ipv6())).prop_map(|(global, link_local)| NextHop::V6 { global, link_local }),
    ]
}

fn mp_reach(ctx: Negotiated) -> BoxedStrategy<AttrValue> {
    prop_oneof![
        (next_hop(), nlri_list(false, ctx.add_path_ipv4, 10)).prop_map(|(nh, n)| MpReach {
            family: Family::IPV4_UNICAST,
            next_hop: MpNextHop::Typed(nh),
            nlri: MpNlri::Unicast(n)
        }),
        (next_hop(), nlri_list(true, ctx.add_path_ipv6, 10)).prop_map(|(nh, n)| MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: MpNextHop::Typed(nh),
            nlri: MpNlri::Unicast(n)
        }),
        (vec(any::<u8>(), 0..40), vec(any::<u8>(), 0..40)).prop_map(|(nh, n)| MpReach {
            family: Family::new(25, 70),
            next_hop: MpNextHop::Raw(nh),
            nlri: MpNlri::Raw(n)
        }),
    ]
    .prop_map(AttrValue::MpReach)
    .boxed()
}

fn mp_unreach(ctx: Negotiated) -> BoxedStrategy<AttrValue> {
    prop_oneof![
        nlri_list(false, ctx.add_path_ipv4, 10)
            .prop_map(|n| MpUnreach { family: Family::IPV4_UNICAST, withdrawn: MpNlri::Unicast(n) }),
        nlri_list(true, ctx.add_path_ipv6, 10)
            .prop_map(|n| MpUnreach { family: Family::IPV6_UNICAST, withdrawn: MpNlri::Unicast(n) }),
        vec(any::<u8>(), 0..40).prop_map(|n| MpUnreach { family: Family::new(16388, 71), withdrawn: MpNlri::Raw(n) }),
    ]
    .prop_map(AttrValue::MpUnreach)
    .boxed()
}

/// Flags for a value: the required optional/transitive bits, random
/// partial and low bits, extended length sometimes, and always when the
/// value needs it (the encoder adds it then).
fn with_flags(value: AttrValue, extra: u8, ctx: &Negotiated) -> PathAttr {
    let base = expected_flags(value.type_code()).unwrap_or(flags::OPTIONAL | (extra & flags::TRANSITIVE));
    let mut a = PathAttr { flags: base | (extra & (flags::PARTIAL | flags::EXTENDED_LENGTH | 0x0f)), value };
    let plain = PathAttr { flags: a.flags & !flags::EXTENDED_LENGTH, value: a.value.clone() };
    if plain.encoded_len(ctx) >= 260 {
        a.flags |= flags::EXTENDED_LENGTH;
    }
    a
}

fn update(ctx: Negotiated) -> impl Strategy<Value = Update> {
    (
        nlri_list(false, ctx.add_path_ipv4, 20),
        vec((plain_attr(ctx), any::<u8>()), 0..8),
        proptest::option::of(mp_reach(ctx)),
        proptest::option::of(mp_unreach(ctx)),
        nlri_list(false, ctx.add_path_ipv4, 20),
        any::<u8>(),
        any::<u64>(),
    )
        .prop_map(move |(withdrawn, plain, reach, unreach, nlri, extra, order)| {
            let mut by_type: BTreeMap<u8, PathAttr> = BTreeMap::new();
            for (v, x) in plain.into_iter().chain(reach.map(|r| (r, extra))).chain(unreach.map(|u| (u, extra))) {
                by_type.entry(v.type_code()).or_insert_with(|| with_flags(v, x, &ctx));
            }
            let carries_routes = !nlri.is_empty() || by_type.contains_key(&type_code::MP_REACH_NLRI);
            if carries_routes {
                by_type.entry(1).or_insert_with(|| PathAttr::new(AttrValue::Origin(Origin::Igp)));
                by_type.entry(2).or_insert_with(|| PathAttr::new(AttrValue::AsPath(AsPath::sequence([65000]))));
            }
            if !nlri.is_empty() {
                by_type.entry(3).or_insert_with(|| PathAttr::new(AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 1))));
            }
            // Any attribute order is valid: rotate by a random amount.
            let mut attrs: Vec<PathAttr> = by_type.into_values().collect();
            if !attrs.is_empty() {
                let k = (order % attrs.len() as u64) as usize;
                attrs.rotate_left(k);
            }
            Update { withdrawn, attrs: attrs.into(), nlri, attr_errors: vec![] }
        })
}

fn family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family::new(a, s))
}

fn capability() -> impl Strategy<Value = Capability> {
    const TYPED: &[u8] = &[1, 2, 5, 6, 9, 64, 65, 69, 70, 71, 73];
    let name = "[a-z0-9.-]{0,20}";
    prop_oneof![
        family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::ExtendedMessage),
        Just(Capability::EnhancedRouteRefresh),
        prop_oneof![
            Just(Role::Provider),
            Just(Role::RouteServer),
            Just(Role::RouteServerClient),
            Just(Role::Customer),
            Just(Role::Peer)
        ]
        .prop_map(Capability::Role),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (any::<bool>(), any::<bool>(), 0u16..4096, vec((family(), any::<bool>()), 0..4)).prop_map(|(r, n, t, f)| {
            Capability::GracefulRestart(GracefulRestart {
                restarting: r,
                notification: n,
                restart_time: t,
                families: f
                    .into_iter()
                    .map(|(family, forwarding_preserved)| GrFamily { family, forwarding_preserved })
                    .collect(),
            })
        }),
        vec((family(), any::<bool>(), 0u32..=0xFF_FFFF), 0..4).prop_map(|f| Capability::LongLivedGracefulRestart(
            f.into_iter()
                .map(|(family, forwarding_preserved, stale_time)| LlgrFamily {
                    family,
                    forwarding_preserved,
                    stale_time
                })
                .collect()
        )),
        vec(
            (family(), prop_oneof![Just(AddPathMode::Receive), Just(AddPathMode::Send), Just(AddPathMode::Both)]),
            0..4
        )
        .prop_map(|f| Capability::AddPath(
            f.into_iter().map(|(family, mode)| AddPathFamily { family, mode }).collect()
        )),
        (name, name).prop_map(|(hostname, domain)| Capability::Fqdn { hostname, domain }),
        vec((family(), any::<u16>()), 1..4).prop_map(|e| Capability::ExtendedNextHop(
            e.into_iter().map(|(nlri, next_hop_afi)| ExtendedNextHop { nlri, next_hop_afi }).collect()
        )),
        (any::<u8>().prop_filter("untyped code", |c| !TYPED.contains(c)), vec(any::<u8>(), 0..20))
            .prop_map(|(code, data)| Capability::Unknown { code, data }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    (
        any::<u16>(),
        any::<u16>().prop_filter("valid hold time", |h| *h != 1 && *h != 2),
        1u32..,
        vec(vec(capability(), 0..6), 0..4),
        any::<bool>(),
    )
        .prop_map(|(my_as, hold_time, id, params, extended_params)| Open {
            version: 4,
            my_as,
            hold_time,
            bgp_id: Ipv4Addr::from(id),
            params,
            extended_params,
        })
}

fn message(ctx: Negotiated) -> impl Strategy<Value = Message> {
    prop_oneof![
        open().prop_map(Message::Open),
        update(ctx).prop_map(Message::Update),
        (any::<u8>(), any::<u8>(), vec(any::<u8>(), 0..100))
            .prop_map(|(c, s, d)| Message::Notification(Notification::from_wire(c, s, d))),
        Just(Message::Keepalive),
        (family(), any::<u8>()).prop_map(|(family, st)| {
            let subtype = match st {
                0 => RefreshSubtype::Request,
                1 => RefreshSubtype::BoRR,
                2 => RefreshSubtype::EoRR,
                n => RefreshSubtype::Reserved(n),
            };
            Message::RouteRefresh(RouteRefresh { family, subtype })
        }),
    ]
}

fn ctx_and_message() -> impl Strategy<Value = (Negotiated, Message)> {
    ctx_strategy().prop_flat_map(|ctx| (Just(ctx), message(ctx)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// decode(encode(m)) == m, and encoding the decoded message gives the same octets.
    #[test]
    fn valid_messages_round_trip((ctx, msg) in ctx_and_message()) {
        let mut buf = BytesMut::new();
        match msg.encode(&ctx, &mut buf) {
            Ok(()) => {}
            Err(EncodeError::TooLarge { .. } | EncodeError::FieldTooLong { .. }) => {
                prop_assert!(buf.is_empty(), "a failed encode must leave the buffer as it was");
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("encode: {e}"))),
        }
        prop_assert_eq!(frame_len(&buf, ctx.max_message_len()), Ok(Some(buf.len())));
        let back = Message::decode(&buf, &ctx).map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
        prop_assert_eq!(&back, &msg);
        check_memo(&buf, &ctx)?;
        let again = back.to_bytes(&ctx).unwrap();
        prop_assert_eq!(&again[..], &buf[..]);
    }

    /// Arbitrary octets never panic, and whatever decodes cleanly re-encodes to the same octets.
    #[test]
    fn arbitrary_bytes_never_panic(ctx in ctx_strategy(), ty in 1u8..=6, body in vec(any::<u8>(), 0..600)) {
        let mut msg = vec![0xff; 16];
        msg.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        msg.push(ty);
        msg.extend_from_slice(&body);
        check_arbitrary(&msg, &ctx)?;
        // And without a valid header.
        check_arbitrary(&body, &ctx)?;
    }

    /// Arbitrary attribute lists inside a well-formed UPDATE frame.
    #[test]
    fn arbitrary_attribute_lists_never_panic(ctx in ctx_strategy(), attrs in vec(any::<u8>(), 0..400), nlri in vec(any::<u8>(), 0..40)) {
        let mut body = vec![0, 0];
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        body.extend_from_slice(&nlri);
        let mut msg = vec![0xff; 16];
        msg.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        msg.push(2);
        msg.extend_from_slice(&body);
        check_arbitrary(&msg, &ctx)?;
    }
}

/// Decoding through an attribute memo, as it is filled and then as it is
/// used, gives exactly what plain decoding gives.
fn check_memo(msg: &[u8], ctx: &Negotiated) -> Result<(), TestCaseError> {
    let plain = format!("{:?}", Message::decode(msg, ctx));
    let mut memo = AttrMemo::new();
    for pass in ["filling the memo", "from the memo"] {
        let memoised = format!("{:?}", Message::decode_with(msg, ctx, Some(&mut memo)));
        prop_assert_eq!(&memoised, &plain, "{}", pass);
    }
    Ok(())
}

fn check_arbitrary(msg: &[u8], ctx: &Negotiated) -> Result<(), TestCaseError> {
    check_memo(msg, ctx)?;
    match Message::decode(msg, ctx) {
        Ok(Message::Update(u)) if !u.attr_errors.is_empty() => {
            for e in &u.attr_errors {
                prop_assert!(matches!(e.action, ErrorAction::TreatAsWithdraw | ErrorAction::AttributeDiscard));
            }
        }
        Ok(m) => {
            let again = m.to_bytes(ctx).map_err(|e| TestCaseError::fail(format!("re-encode: {e}")))?;
            if again[..] != *msg {
                // The documented canonical choices are the only allowed differences.
                let back = Message::decode(&again, ctx).unwrap();
                prop_assert_eq!(back, m);
            }
        }
        Err(e) => {
            let _ = e.notification();
            let _ = e.to_string();
        }
    }
    Ok(())
}
