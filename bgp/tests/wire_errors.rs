//! Every refusal maps to the NOTIFICATION of RFC 4271 section 6 (or the
//! RFC 7606 action for attribute errors).

use std::net::Ipv4Addr;

use mooring_bgp::wire::*;

const CTX: Negotiated = Negotiated::four_octet();

fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

/// An UPDATE body from an attribute list and an IPv4 NLRI field.
fn update_body(attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    b
}

const ORIGIN_IGP: &[u8] = &[0x40, 1, 1, 0];
const AS_PATH_65001: &[u8] = &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
const NEXT_HOP: &[u8] = &[0x40, 3, 4, 192, 0, 2, 1];
const NLRI_24: &[u8] = &[24, 203, 0, 113];

fn with_mandatory(extra: &[u8]) -> Vec<u8> {
    [ORIGIN_IGP, AS_PATH_65001, NEXT_HOP, extra].concat()
}

fn notif(e: &DecodeError) -> (u8, u8, Vec<u8>) {
    let n = e.notification().expect("a NOTIFICATION");
    (n.code(), n.subcode(), n.data)
}

fn decode_update(body: &[u8]) -> Result<Update, DecodeError> {
    match Message::decode(&msg(2, body), &CTX)? {
        Message::Update(u) => Ok(u),
        m => panic!("not an UPDATE: {m:?}"),
    }
}

#[test]
fn bad_marker_is_connection_not_synchronized() {
    let mut m = msg(4, &[]);
    m[3] = 0;
    let e = Message::decode(&m, &CTX).unwrap_err();
    assert_eq!(notif(&e), (1, 1, vec![]));
}

#[test]
fn bad_length_carries_the_length_field() {
    // KEEPALIVE must be exactly 19 octets.
    let m = msg(4, &[0]);
    let e = Message::decode(&m, &CTX).unwrap_err();
    assert_eq!(notif(&e), (1, 2, vec![0, 20]));
    // Length below the minimum of an OPEN.
    let e = frame_len(&msg(1, &[4, 0]), 4096).unwrap_err();
    assert_eq!(notif(&e), (1, 2, vec![0, 21]));
    // Length above the maximum without extended messages.
    let mut big = msg(2, &vec![0; 5000]);
    big[16..18].copy_from_slice(&5019u16.to_be_bytes());
    assert_eq!(notif(&frame_len(&big, 4096).unwrap_err()), (1, 2, 5019u16.to_be_bytes().to_vec()));
    // ... accepted with them.
    assert_eq!(frame_len(&big, 65535), Ok(Some(5019)));
    // OPEN stays limited to 4096 even with extended messages.
    let mut open = msg(1, &vec![0; 5000]);
    open[16..18].copy_from_slice(&5019u16.to_be_bytes());
    assert!(frame_len(&open, 65535).is_err());
}

#[test]
fn bad_type_carries_the_type() {
    let e = Message::decode(&msg(9, &[]), &CTX).unwrap_err();
    assert_eq!(notif(&e), (1, 3, vec![9]));
}

#[test]
fn partial_header_needs_more() {
    assert_eq!(frame_len(&[0xff; 18], 4096), Ok(None));
}

fn open_body(version: u8, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
    let mut b = vec![version, 0xfd, 0xe9];
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.push(params.len() as u8);
    b.extend_from_slice(params);
    b
}

#[test]
fn open_errors() {
    let e = Message::decode(&msg(1, &open_body(3, 90, [1, 1, 1, 1], &[])), &CTX).unwrap_err();
    assert_eq!(notif(&e), (2, 1, vec![0, 4]), "unsupported version names version 4");
    let e = Message::decode(&msg(1, &open_body(4, 2, [1, 1, 1, 1], &[])), &CTX).unwrap_err();
    assert_eq!(notif(&e), (2, 6, vec![]));
    let e = Message::decode(&msg(1, &open_body(4, 90, [0, 0, 0, 0], &[])), &CTX).unwrap_err();
    assert_eq!(notif(&e), (2, 3, vec![]));
    // Authentication parameter (type 1) is not supported.
    let e = Message::decode(&msg(1, &open_body(4, 90, [1, 1, 1, 1], &[1, 1, 0])), &CTX).unwrap_err();
    assert_eq!(notif(&e), (2, 4, vec![]));
    // A capability that runs past its parameter.
    let e = Message::decode(&msg(1, &open_body(4, 90, [1, 1, 1, 1], &[2, 2, 65, 4])), &CTX).unwrap_err();
    assert_eq!(notif(&e), (2, 0, vec![]));
    // Hold time 0 is valid (no keepalives).
    assert!(Message::decode(&msg(1, &open_body(4, 0, [1, 1, 1, 1], &[])), &CTX).is_ok());
}

#[test]
fn open_extended_parameters_rfc9072() {
    let caps: Vec<Capability> = (0..100).map(|i| Capability::Unknown { code: 200, data: vec![i; 3] }).collect();
    let open = Open { extended_params: true, ..Open::new(4_200_000_001, 90, Ipv4Addr::new(192, 0, 2, 1), caps) };
    let bytes = Message::Open(open.clone()).to_bytes(&CTX).unwrap();
    assert_eq!(&bytes[28..30], &[255, 255], "non-ext length and type 255");
    assert_eq!(Message::decode(&bytes, &CTX).unwrap(), Message::Open(open.clone()));
    // Too long for the plain form.
    let plain = Open { extended_params: false, ..open };
    assert!(matches!(Message::Open(plain).to_bytes(&CTX), Err(EncodeError::FieldTooLong { .. })));
}

#[test]
fn open_asn_from_four_octet_capability() {
    let open = Open::new(4_200_000_001, 90, Ipv4Addr::new(192, 0, 2, 1), vec![Capability::FourOctetAs(4_200_000_001)]);
    assert_eq!(open.my_as, AS_TRANS);
    assert_eq!(open.asn(), 4_200_000_001);
}

#[test]
fn notification_shutdown_communication() {
    let n = Notification::admin_shutdown("maintenance: draining node-3");
    let bytes = Message::Notification(n.clone()).to_bytes(&CTX).unwrap();
    assert_eq!(bytes[19..21], [6, 2]);
    assert_eq!(bytes[21] as usize, "maintenance: draining node-3".len());
    let Message::Notification(back) = Message::decode(&bytes, &CTX).unwrap() else { panic!() };
    assert_eq!(back.shutdown_message(), Some("maintenance: draining node-3"));
    assert_eq!(back.to_string(), "Cease/Administrative Shutdown (6/2): \"maintenance: draining node-3\"");
    assert_eq!(back.error, ErrorCode::Cease(Cease::AdminShutdown));
    // RFC 9003 allows up to 255 octets; longer text is cut at a char boundary.
    let long = "é".repeat(200);
    let n = Notification::admin_shutdown(&long);
    assert_eq!(n.data[0], 254);
    assert_eq!(n.shutdown_message().unwrap().chars().count(), 127);
    // A length byte that overruns is not a message.
    assert_eq!(Notification::from_wire(6, 2, vec![10, b'a']).shutdown_message(), None);
    // A NOTIFICATION too short for code and subcode gets no NOTIFICATION back.
    let e = Message::decode(&msg(3, &[6]), &CTX);
    assert!(e.is_err(), "a 20-octet NOTIFICATION is below the minimum length");
}

#[test]
fn route_refresh_length_error_rfc7313() {
    let m = msg(5, &[0, 1, 0, 1, 0]);
    let e = Message::decode(&m, &CTX).unwrap_err();
    assert_eq!(notif(&e), (7, 1, m.clone()));
}

#[test]
fn route_refresh_subtypes() {
    for (st, b) in [(RefreshSubtype::Request, 0), (RefreshSubtype::BoRR, 1), (RefreshSubtype::EoRR, 2)] {
        let m = msg(5, &[0, 2, b, 1]);
        assert_eq!(
            Message::decode(&m, &CTX).unwrap(),
            Message::RouteRefresh(RouteRefresh { family: Family::IPV6_UNICAST, subtype: st })
        );
    }
}

#[test]
fn update_length_fields_overrun_is_malformed_attribute_list() {
    // Withdrawn length beyond the message.
    let e = decode_update(&[0, 50, 0, 0]).unwrap_err();
    assert_eq!(notif(&e), (3, 1, vec![]));
    // Total path attribute length beyond the message.
    let e = decode_update(&[0, 0, 0, 9, 0x40, 1, 1, 0]).unwrap_err();
    assert_eq!(notif(&e), (3, 1, vec![]));
}

#[test]
fn bad_nlri_is_invalid_network_field() {
    let e = decode_update(&update_body(&with_mandatory(&[]), &[33, 1, 2, 3, 4, 5])).unwrap_err();
    assert_eq!(notif(&e), (3, 10, vec![]));
    let e = decode_update(&update_body(&with_mandatory(&[]), &[24, 1, 2])).unwrap_err();
    assert_eq!(notif(&e), (3, 10, vec![]));
}

#[test]
fn malformed_origin_is_treat_as_withdraw() {
    let attrs = [&[0x40, 1, 1, 7][..], AS_PATH_65001, NEXT_HOP].concat();
    let u = decode_update(&update_body(&attrs, NLRI_24)).unwrap();
    assert!(u.is_treat_as_withdraw());
    let e = &u.attr_errors[0];
    assert_eq!((e.type_code, u8::from(e.subcode), e.action), (1, 6, ErrorAction::TreatAsWithdraw));
    assert_eq!(e.notification(), Notification::from_wire(3, 6, vec![0x40, 1, 1, 7]));
}

#[test]
fn wrong_flags_are_treat_as_withdraw_with_attribute_data() {
    // ORIGIN marked optional.
    let attrs = [&[0xc0, 1, 1, 0][..], AS_PATH_65001, NEXT_HOP].concat();
    let u = decode_update(&update_body(&attrs, NLRI_24)).unwrap();
    let e = &u.attr_errors[0];
    assert_eq!((u8::from(e.subcode), e.action, e.data.clone()), (4, ErrorAction::TreatAsWithdraw, vec![0xc0, 1, 1, 0]));
}

#[test]
fn malformed_as_path_is_treat_as_withdraw() {
    // Segment claims 2 ASes but carries one.
    let attrs = [ORIGIN_IGP, &[0x40, 2, 6, 2, 2, 0, 0, 0xfd, 0xe9][..], NEXT_HOP].concat();
    let u = decode_update(&update_body(&attrs, NLRI_24)).unwrap();
    assert_eq!(u8::from(u.attr_errors[0].subcode), 11);
    assert!(u.is_treat_as_withdraw());
    // Zero-length segment.
    let attrs = [ORIGIN_IGP, &[0x40, 2, 2, 2, 0][..], NEXT_HOP].concat();
    assert!(decode_update(&update_body(&attrs, NLRI_24)).unwrap().is_treat_as_withdraw());
}

#[test]
fn attribute_length_errors() {
    for (attr, sub) in [
        (&[0x40, 5, 3, 1, 2, 3][..], 5),                 // LOCAL_PREF of 3
        (&[0x80, 4, 2, 0, 1][..], 5),                    // MED of 2
        (&[0xc0, 8, 3, 1, 2, 3][..], 5),                 // COMMUNITIES not a multiple of 4
        (&[0xc0, 16, 4, 0, 2, 0, 1][..], 5),             // EXT COMMUNITIES of 4
        (&[0xc0, 32, 8, 0, 0, 0, 1, 0, 0, 0, 2][..], 5), // LARGE COMMUNITIES of 8
        (&[0xc0, 35, 2, 0, 1][..], 5),                   // OTC of 2
    ] {
        let u = decode_update(&update_body(&with_mandatory(attr), NLRI_24)).unwrap();
        assert_eq!(u.attr_errors.len(), 1, "{attr:?}");
        let e = &u.attr_errors[0];
        assert_eq!((u8::from(e.subcode), e.action), (sub, ErrorAction::TreatAsWithdraw), "{attr:?}");
        assert_eq!(e.data, attr.to_vec());
    }
}

#[test]
fn short_next_hop_is_treat_as_withdraw() {
    let attrs = [ORIGIN_IGP, AS_PATH_65001, &[0x40, 3, 3, 1, 2, 3][..]].concat();
    let u = decode_update(&update_body(&attrs, NLRI_24)).unwrap();
    let e = &u.attr_errors[0];
    assert_eq!((e.type_code, u8::from(e.subcode), e.action), (3, 5, ErrorAction::TreatAsWithdraw));
    assert_eq!(u.attr_errors.len(), 1, "a malformed NEXT_HOP is not also reported missing");
}

#[test]
fn malformed_aggregator_and_atomic_aggregate_are_discarded() {
    for attr in [&[0xc0, 7, 3, 1, 2, 3][..], &[0x40, 6, 1, 0][..], &[0xc0, 18, 2, 0, 0][..]] {
        let u = decode_update(&update_body(&with_mandatory(attr), NLRI_24)).unwrap();
        assert_eq!(u.attr_errors[0].action, ErrorAction::AttributeDiscard, "{attr:?}");
        assert!(!u.is_treat_as_withdraw());
        assert_eq!(u.nlri.len(), 1);
        assert_eq!(u.attrs.len(), 3, "the discarded attribute is gone, the others stay");
    }
}

#[test]
fn missing_mandatory_attribute_is_treat_as_withdraw() {
    let attrs = [ORIGIN_IGP, AS_PATH_65001].concat();
    let u = decode_update(&update_body(&attrs, NLRI_24)).unwrap();
    let e = &u.attr_errors[0];
    assert_eq!((u8::from(e.subcode), e.data.clone(), e.action), (3, vec![3], ErrorAction::TreatAsWithdraw));
    // A withdraw-only UPDATE needs no attributes.
    let u = decode_update(&[0, 4, 24, 203, 0, 113, 0, 0]).unwrap();
    assert!(u.attr_errors.is_empty());
    assert_eq!(u.withdrawn.len(), 1);
}

#[test]
fn duplicate_attributes() {
    // A second ORIGIN is discarded, the first kept.
    let u = decode_update(&update_body(&with_mandatory(&[0x40, 1, 1, 2]), NLRI_24)).unwrap();
    assert_eq!(u.origin(), Some(Origin::Igp));
    assert_eq!(u.attr_errors[0].action, ErrorAction::AttributeDiscard);
    // A second MP_UNREACH_NLRI resets the session.
    let unreach = [0x80, 15, 3, 0, 2, 1];
    let e = decode_update(&update_body(&[unreach, unreach].concat(), &[])).unwrap_err();
    assert_eq!(notif(&e), (3, 1, vec![]));
}

#[test]
fn malformed_mp_reach_resets_the_session() {
    // IPv6 unicast with a 5-octet next hop.
    let attr = [0x80, 14, 10, 0, 2, 1, 5, 1, 2, 3, 4, 5, 0];
    let e = decode_update(&update_body(&[ORIGIN_IGP, AS_PATH_65001, &attr[..]].concat(), &[])).unwrap_err();
    let n = e.notification().unwrap();
    assert_eq!((n.code(), n.subcode()), (3, 9));
    assert_eq!(n.data, attr.to_vec());
    // A prefix in MP_REACH that overruns.
    let attr = [0x80, 14, 23, 0, 2, 1, 16, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 64, 1];
    assert!(decode_update(&update_body(&[ORIGIN_IGP, AS_PATH_65001, &attr[..]].concat(), &[])).is_err());
}

#[test]
fn attribute_running_past_the_list_is_treat_as_withdraw() {
    let attrs = with_mandatory(&[0xc0, 8, 40, 0, 0]);
    let u = decode_update(&update_body(&attrs, NLRI_24)).unwrap();
    assert!(u.is_treat_as_withdraw());
    assert_eq!(u.nlri.len(), 1, "the NLRI is still found, to be withdrawn");
}

#[test]
fn unknown_attributes() {
    // Unknown optional transitive: kept, and passed on with the partial bit.
    let u = decode_update(&update_body(&with_mandatory(&[0xc0, 99, 2, 7, 7]), NLRI_24)).unwrap();
    let a = u.attrs.iter().find(|a| a.type_code() == 99).unwrap();
    assert_eq!(a.flags, 0xc0);
    assert_eq!(a.for_propagation().unwrap().flags, 0xe0);
    // Unknown optional non-transitive: kept, not passed on.
    let u = decode_update(&update_body(&with_mandatory(&[0x80, 98, 1, 7]), NLRI_24)).unwrap();
    let a = u.attrs.iter().find(|a| a.type_code() == 98).unwrap();
    assert_eq!(a.for_propagation(), None);
    // Unknown well-known: Unrecognized Well-known Attribute, session reset.
    let e = decode_update(&update_body(&with_mandatory(&[0x40, 97, 1, 7]), NLRI_24)).unwrap_err();
    assert_eq!(notif(&e), (3, 2, vec![0x40, 97, 1, 7]));
}

#[test]
fn two_octet_as_path_and_as_trans() {
    let ctx2 = Negotiated::default();
    let mut u = Update::default();
    u.attrs.make_mut().push(PathAttr::new(AttrValue::AsPath(AsPath::sequence([4_200_000_001, 65001]))));
    u.attrs.make_mut().push(PathAttr::new(AttrValue::As4Path(AsPath::sequence([4_200_000_001, 65001]))));
    let bytes = Message::Update(u).to_bytes(&ctx2).unwrap();
    let Message::Update(back) = Message::decode(&bytes, &ctx2).unwrap() else { panic!() };
    assert_eq!(back.as_path().unwrap().asns().collect::<Vec<_>>(), vec![AS_TRANS as u32, 65001]);
    let Some(AttrValue::As4Path(p)) = back.attr(type_code::AS4_PATH) else { panic!() };
    assert_eq!(p.asns().collect::<Vec<_>>(), vec![4_200_000_001, 65001]);
}

#[test]
fn add_path_nlri() {
    let ctx = Negotiated { add_path_ipv4: true, ..CTX };
    let body = update_body(&with_mandatory(&[]), &[0, 0, 0, 7, 24, 203, 0, 113]);
    let Message::Update(u) = Message::decode(&msg(2, &body), &ctx).unwrap() else { panic!() };
    assert_eq!(u.nlri, vec![Nlri::with_path_id("203.0.113.0/24".parse().unwrap(), 7)]);
    // The same octets without ADD-PATH are a /0 and garbage.
    assert!(Message::decode(&msg(2, &body), &CTX).is_err());
}

#[test]
fn end_of_rib_markers() {
    for f in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        let bytes = Message::Update(Update::end_of_rib(f)).to_bytes(&CTX).unwrap();
        let Message::Update(u) = Message::decode(&bytes, &CTX).unwrap() else { panic!() };
        assert_eq!(u.as_end_of_rib(), Some(f));
    }
    assert_eq!(Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)).to_bytes(&CTX).unwrap().len(), 23);
}

#[test]
fn message_larger_than_negotiated_is_refused_at_encode() {
    let u = Update { nlri: (0..2000u32).map(|i| Nlri::new(IpNetworkV4(i))).collect(), ..Update::default() };
    let mut b = bytes::BytesMut::from(&b"x"[..]);
    assert!(matches!(Message::Update(u.clone()).encode(&CTX, &mut b), Err(EncodeError::TooLarge { .. })));
    assert_eq!(&b[..], b"x", "buffer unchanged on failure");
    let ext = Negotiated { extended_message: true, ..CTX };
    assert!(Message::Update(u).encode(&ext, &mut b).is_ok());
}

#[allow(non_snake_case)]
fn IpNetworkV4(i: u32) -> ipnetwork::IpNetwork {
    ipnetwork::IpNetwork::V4(ipnetwork::Ipv4Network::new(Ipv4Addr::from(0xCB00_7100 + i), 32).unwrap())
}

#[test]
fn long_segments_are_split_and_long_capabilities_refused() {
    let path = AsPath { segments: vec![Segment { kind: SegmentType::Sequence, asns: (1..=300).collect() }] };
    let u = Update { attrs: vec![PathAttr::new(AttrValue::AsPath(path))].into(), ..Update::default() };
    let bytes = Message::Update(u).to_bytes(&CTX).unwrap();
    let Message::Update(back) = Message::decode(&bytes, &CTX).unwrap() else { panic!() };
    let p = back.as_path().unwrap();
    assert_eq!(p.segments.len(), 2);
    assert_eq!(p.asns().collect::<Vec<_>>(), (1..=300).collect::<Vec<_>>());

    let fqdn = Capability::Fqdn { hostname: "h".repeat(200), domain: "d".repeat(100) };
    let open = Open { extended_params: true, ..Open::new(65000, 90, Ipv4Addr::new(192, 0, 2, 1), vec![fqdn]) };
    assert!(matches!(Message::Open(open).to_bytes(&CTX), Err(EncodeError::FieldTooLong { .. })));
}

#[test]
fn ext_community_equality_is_by_octets() {
    let nan = ExtCommunity::LinkBandwidth { asn: 65000, bytes_per_sec: f32::NAN, transitive: true };
    assert_eq!(nan, nan);
    let pos = ExtCommunity::LinkBandwidth { asn: 65000, bytes_per_sec: 0.0, transitive: true };
    let neg = ExtCommunity::LinkBandwidth { asn: 65000, bytes_per_sec: -0.0, transitive: true };
    assert_ne!(pos, neg);
    // The fuzzer's input: an UPDATE with a NaN link bandwidth equals itself.
    let m = hex::decode("ffffffffffffffffffffffffffffffff0022020000000bc010080004fde87fc00000").unwrap();
    let msg = Message::decode(&m, &CTX).unwrap();
    assert_eq!(msg, msg.clone());
}
