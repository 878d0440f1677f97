//! Packing many prefixes into as few UPDATEs as fit.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use mooring_bgp::wire::*;

fn v4(n: u32) -> Vec<Nlri> {
    (0..n).map(|i| Nlri::new(IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(0x0A00_0000 + i), 32).unwrap()))).collect()
}

fn v6(n: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| {
            let a = Ipv6Addr::from(0x2001_0db8_ffff_0000_0000_0000_0000_0000u128 + i as u128);
            Nlri::new(IpNetwork::V6(Ipv6Network::new(a, 128).unwrap()))
        })
        .collect()
}

fn attrs() -> Vec<PathAttr> {
    vec![
        PathAttr::new(AttrValue::Origin(Origin::Igp)),
        PathAttr::new(AttrValue::AsPath(AsPath::sequence([4_200_000_001]))),
        PathAttr::new(AttrValue::NextHop(Ipv4Addr::new(198, 18, 0, 11))),
        PathAttr::new(AttrValue::Communities(vec![Community::new(64512, 100), Community::NO_EXPORT])),
    ]
}

/// Split a buffer of messages and decode each.
fn decode_all(buf: &[u8], ctx: &Negotiated) -> Vec<Update> {
    let mut out = vec![];
    let mut rest = buf;
    while !rest.is_empty() {
        let len = frame_len(rest, ctx.max_message_len()).unwrap().unwrap();
        assert!(len <= ctx.max_message_len());
        match Message::decode(&rest[..len], ctx).unwrap() {
            Message::Update(u) => {
                assert!(u.attr_errors.is_empty(), "{:?}", u.attr_errors);
                out.push(u)
            }
            m => panic!("{m:?}"),
        }
        rest = &rest[len..];
    }
    out
}

#[test]
fn ten_thousand_ipv4_prefixes_fill_few_messages() {
    let ctx = Negotiated::four_octet();
    let nlri = v4(10_000);
    let mut buf = BytesMut::new();
    let n = pack_announcements(&ctx, &attrs(), &nlri, None, &mut buf).unwrap();
    // 5 octets per /32; about 4050 octets of room per message.
    assert!(n <= 13, "{n} messages for 10k prefixes");
    let updates = decode_all(&buf, &ctx);
    assert_eq!(updates.len(), n);
    let got: Vec<Nlri> = updates.iter().flat_map(|u| u.nlri.iter().copied()).collect();
    assert_eq!(got, nlri);
    for u in &updates {
        assert_eq!(u.next_hop(), Some(Ipv4Addr::new(198, 18, 0, 11)));
        assert_eq!(u.communities(), &[Community::new(64512, 100), Community::NO_EXPORT]);
    }
    // Every message but the last is nearly full.
    let mut rest = &buf[..];
    for _ in 0..n - 1 {
        let len = frame_len(rest, 4096).unwrap().unwrap();
        assert!(len > 4096 - 5, "message of {len} octets is not full");
        rest = &rest[len..];
    }
}

#[test]
fn extended_messages_pack_sixteen_times_more() {
    let ctx = Negotiated { extended_message: true, ..Negotiated::four_octet() };
    let mut buf = BytesMut::new();
    let n = pack_announcements(&ctx, &attrs(), &v4(10_000), None, &mut buf).unwrap();
    assert_eq!(n, 1);
    assert_eq!(decode_all(&buf, &ctx)[0].nlri.len(), 10_000);
}

#[test]
fn ipv6_prefixes_go_in_mp_reach_with_link_local_next_hop() {
    let ctx = Negotiated::four_octet();
    let nh = NextHop::V6 {
        global: "2001:db8:ffff:ff00::11".parse().unwrap(),
        link_local: Some("fe80::11".parse().unwrap()),
    };
    let mut a = attrs();
    a.retain(|a| a.type_code() != type_code::NEXT_HOP);
    let nlri = v6(5_000);
    let mut buf = BytesMut::new();
    let n = pack_announcements(&ctx, &a, &nlri, Some(nh), &mut buf).unwrap();
    // 17 octets per /128: about 235 per message.
    assert!(n <= 22, "{n}");
    let updates = decode_all(&buf, &ctx);
    let mut got = vec![];
    for u in &updates {
        let m = u.mp_reach().unwrap();
        assert_eq!(m.next_hop, MpNextHop::Typed(nh));
        assert!(u.nlri.is_empty());
        got.extend(u.announced().copied());
    }
    assert_eq!(got, nlri);
}

#[test]
fn add_path_ids_are_written_when_negotiated() {
    let ctx = Negotiated { add_path_ipv4: true, ..Negotiated::four_octet() };
    let nlri: Vec<Nlri> =
        v4(3).into_iter().enumerate().map(|(i, n)| Nlri { path_id: Some(i as u32 + 1), ..n }).collect();
    let mut buf = BytesMut::new();
    pack_announcements(&ctx, &attrs(), &nlri, None, &mut buf).unwrap();
    assert_eq!(decode_all(&buf, &ctx)[0].nlri, nlri);
}

#[test]
fn withdrawals_batch_both_families() {
    let ctx = Negotiated::four_octet();
    let mut buf = BytesMut::new();
    let n4 = pack_withdrawals(&ctx, &v4(10_000), &mut buf).unwrap();
    let n6 = pack_withdrawals(&ctx, &v6(1_000), &mut buf).unwrap();
    assert!(n4 <= 13 && n6 <= 5, "{n4} {n6}"); // 1000 /128s: 17 kB
    let updates = decode_all(&buf, &ctx);
    let w: usize = updates.iter().map(|u| u.withdrawals().count()).sum();
    assert_eq!(w, 11_000);
}

#[test]
fn mixed_families_and_missing_next_hop_are_refused() {
    let ctx = Negotiated::four_octet();
    let mut mixed = v4(2);
    mixed.extend(v6(2));
    let mut buf = BytesMut::new();
    assert_eq!(pack_announcements(&ctx, &attrs(), &mixed, None, &mut buf), Err(EncodeError::MixedFamilies));
    assert!(pack_announcements(&ctx, &attrs(), &v6(2), None, &mut buf).is_err());
    assert!(buf.is_empty());
    assert_eq!(pack_announcements(&ctx, &attrs(), &[], None, &mut buf), Ok(0));
}
