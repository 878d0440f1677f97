//! The README's codec example ("The codec in one example"), compiled and run
//! by the tests (`agent/tests/docs_truth.rs` checks the README shows exactly
//! this code): `cargo run -p mooring-bgp --example readme`.

fn main() {
    use mooring_bgp::wire::*;
    let ctx = Negotiated::four_octet();
    let attrs = vec![
        PathAttr::new(AttrValue::Origin(Origin::Igp)),
        PathAttr::new(AttrValue::AsPath(AsPath::sequence([64513]))),
        PathAttr::new(AttrValue::NextHop("198.18.0.11".parse().unwrap())),
    ];
    let vips = vec![Nlri::new("203.0.113.10/32".parse().unwrap())];
    let mut out = bytes::BytesMut::new();
    pack_announcements(&ctx, &attrs, &vips, None, &mut out).unwrap();
    let len = frame_len(&out, ctx.max_message_len()).unwrap().unwrap();
    let Message::Update(u) = Message::decode(&out[..len], &ctx).unwrap() else { unreachable!() };
    assert_eq!(u.nlri, vips);
    println!("decoded {} prefix(es) from {len} octets", u.nlri.len());
}
