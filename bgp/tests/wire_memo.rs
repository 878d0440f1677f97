//! The UPDATE attribute memo (`AttrMemo`): what it shares, what it must
//! not remember, and that it changes no decoding result.

use bytes::BytesMut;
use mooring_bgp::wire::*;

fn ctx() -> Negotiated {
    Negotiated::four_octet()
}

fn prefix(s: &str) -> Nlri {
    Nlri::new(s.parse().unwrap())
}

fn base_attrs(med: u32) -> Vec<PathAttr> {
    vec![
        PathAttr::new(AttrValue::Origin(Origin::Igp)),
        PathAttr::new(AttrValue::AsPath(AsPath::sequence([64513, 65001]))),
        PathAttr::new(AttrValue::NextHop("198.18.0.11".parse().unwrap())),
        PathAttr::new(AttrValue::Med(med)),
        PathAttr::new(AttrValue::Communities(vec![Community::new(64513, 100)])),
    ]
}

fn encode(u: Update) -> BytesMut {
    Message::Update(u).to_bytes(&ctx()).unwrap()
}

fn update(attrs: Vec<PathAttr>, nlri: &[&str]) -> BytesMut {
    encode(Update { attrs: attrs.into(), nlri: nlri.iter().map(|p| prefix(p)).collect(), ..Update::default() })
}

fn decode(msg: &[u8], memo: &mut AttrMemo) -> Update {
    match Message::decode_with(msg, &ctx(), Some(memo)) {
        Ok(Message::Update(u)) => u,
        other => panic!("not an UPDATE: {other:?}"),
    }
}

#[test]
fn updates_with_the_same_attribute_octets_share_one_list() {
    let mut memo = AttrMemo::new();
    let a = decode(&update(base_attrs(10), &["10.0.0.1/32"]), &mut memo);
    let b = decode(&update(base_attrs(10), &["10.0.0.2/32", "10.0.0.3/32"]), &mut memo);
    let c = decode(&update(base_attrs(20), &["10.0.0.4/32"]), &mut memo);
    assert!(Attrs::same(&a.attrs, &b.attrs), "same octets: one allocation");
    assert!(!Attrs::same(&a.attrs, &c.attrs));
    assert_eq!(memo.len(), 2);
    // The prefixes are each UPDATE's own.
    assert_eq!(b.nlri, vec![prefix("10.0.0.2/32"), prefix("10.0.0.3/32")]);
    assert_eq!(c.med(), Some(20));
    // And the result is what plain decoding gives.
    let plain = Message::decode(&update(base_attrs(10), &["10.0.0.2/32", "10.0.0.3/32"]), &ctx()).unwrap();
    assert_eq!(Message::Update(b), plain);
}

#[test]
fn attribute_lists_with_errors_are_not_remembered() {
    let mut memo = AttrMemo::new();
    // ORIGIN 7 is malformed: RFC 7606 treat-as-withdraw.
    let mut attrs = base_attrs(10);
    attrs[0] = PathAttr { flags: flags::TRANSITIVE, value: AttrValue::Unknown { type_code: 1, data: vec![7] } };
    let msg = update(attrs, &["10.0.0.1/32"]);
    for round in 0..2 {
        let u = decode(&msg, &mut memo);
        assert!(u.is_treat_as_withdraw(), "round {round}: the error is reported every time");
        assert_eq!(u.attr_errors.len(), 1, "round {round}");
    }
    assert!(memo.is_empty());
}

#[test]
fn the_mandatory_attribute_check_runs_on_a_memo_hit() {
    let mut memo = AttrMemo::new();
    // No NEXT_HOP: fine in an UPDATE without NLRI (a withdrawal with attributes)...
    let no_next_hop: Vec<PathAttr> = base_attrs(10).into_iter().filter(|a| a.type_code() != 3).collect();
    let withdraw = encode(Update {
        attrs: no_next_hop.clone().into(),
        withdrawn: vec![prefix("10.0.0.9/32")],
        ..Update::default()
    });
    let u = decode(&withdraw, &mut memo);
    assert!(u.attr_errors.is_empty());
    assert_eq!(memo.len(), 1);
    // ...but the same octets with NLRI lack a mandatory attribute.
    let u = decode(&update(no_next_hop, &["10.0.0.1/32"]), &mut memo);
    assert!(u.is_treat_as_withdraw());
    assert_eq!(u.attr_errors[0].subcode, UpdateError::MissingWellKnownAttribute);
    assert_eq!(u.attr_errors[0].data, vec![type_code::NEXT_HOP]);
}

#[test]
fn lists_carrying_prefixes_are_not_remembered() {
    let mut memo = AttrMemo::new();
    let reach = MpReach {
        family: Family::IPV6_UNICAST,
        next_hop: MpNextHop::Typed(NextHop::V6 { global: "2001:db8::1".parse().unwrap(), link_local: None }),
        nlri: MpNlri::Unicast(vec![prefix("2001:db8:ffff::1/128")]),
    };
    let mut attrs = base_attrs(10);
    attrs.retain(|a| a.type_code() != 3);
    attrs.push(PathAttr::new(AttrValue::MpReach(reach)));
    let msg = encode(Update { attrs: attrs.into(), ..Update::default() });
    let u = decode(&msg, &mut memo);
    assert_eq!(u.announced().count(), 1);
    assert!(memo.is_empty(), "MP_REACH_NLRI holds the prefixes: its octets are not a set to share");
}

#[test]
fn the_memo_is_bounded() {
    let mut memo = AttrMemo::new();
    for med in 0..(AttrMemo::MAX_LISTS as u32 + 10) {
        let u = decode(&update(base_attrs(med), &["10.0.0.1/32"]), &mut memo);
        assert_eq!(u.med(), Some(med));
        assert!(memo.len() <= AttrMemo::MAX_LISTS);
    }
    assert!(memo.len() <= 10, "started again empty when full: {}", memo.len());
}
