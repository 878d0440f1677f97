//! Arbitrary bytes through `Message::decode`.
//!
//! The first byte picks the negotiated session (4-octet AS, extended
//! message, ADD-PATH for IPv4 / IPv6); the rest is one message. Decoding
//! must never panic. A message that decodes without attribute errors must
//! re-encode to the same octets (the round trip `wire` documents, with its
//! one lossy field: MP_REACH_NLRI's reserved octet is written as zero) and
//! decode again to the same value (which must equal itself: `Message` is
//! `Eq`). A refusal must name its NOTIFICATION. Decoding through an
//! attribute memo (filling it, then using it) gives the same result.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mooring_bgp::wire::{msg_type, type_code, AttrMemo, Message, Negotiated, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, msg)) = data.split_first() else { return };
    let ctx = Negotiated {
        four_octet_as: sel & 1 != 0,
        extended_message: sel & 2 != 0,
        add_path_ipv4: sel & 4 != 0,
        add_path_ipv6: sel & 8 != 0,
        // Decoding takes both withdrawal forms whatever this says; encoding
        // with it set moves IPv4 withdrawals into MP_UNREACH_NLRI, which
        // the octet round trip below would (rightly) flag.
        extended_next_hop_ipv4: false,
    };
    let plain = format!("{:?}", Message::decode(msg, &ctx));
    let mut memo = AttrMemo::new();
    for pass in ["filling the memo", "from the memo"] {
        let memoised = format!("{:?}", Message::decode_with(msg, &ctx, Some(&mut memo)));
        assert_eq!(memoised, plain, "decoding {pass} differs from plain decoding");
    }
    let m = match Message::decode(msg, &ctx) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.notification();
            return;
        }
    };
    if let Message::Update(u) = &m {
        if !u.attr_errors.is_empty() {
            return;
        }
    }
    let mut out = BytesMut::new();
    if let Err(e) = m.encode(&ctx, &mut out) {
        panic!("decoded message does not re-encode: {e}\nmessage: {m:?}");
    }
    let want = canonical(msg);
    if out[..] != want[..] {
        let at = out.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(out.len().min(want.len()));
        panic!(
            "round trip differs at octet {at} (re-encoded {} octets, input {})\ninput:      {}\nre-encoded: {}\nmessage: {m:?}",
            out.len(),
            want.len(),
            hex(&want),
            hex(&out)
        );
    }
    // `Message: Eq`: a decoded value must at least equal itself.
    assert!(m == m.clone(), "decoded message is not equal to itself (PartialEq/Eq not reflexive): {m:?}");
    match Message::decode(&out, &ctx) {
        Ok(again) => assert_eq!(again, m, "re-encoded message decodes differently"),
        Err(e) => panic!("re-encoded message does not decode: {e}"),
    }
});

/// The input with the reserved octet of MP_REACH_NLRI zeroed, as the
/// encoder writes it. Only called on an UPDATE that decoded, so its
/// attribute list is well formed.
fn canonical(msg: &[u8]) -> Vec<u8> {
    let mut v = msg.to_vec();
    if msg[18] != msg_type::UPDATE {
        return v;
    }
    let body = HEADER_LEN;
    let wlen = u16::from_be_bytes([v[body], v[body + 1]]) as usize;
    let alen_at = body + 2 + wlen;
    let alen = u16::from_be_bytes([v[alen_at], v[alen_at + 1]]) as usize;
    let mut i = alen_at + 2;
    let end = i + alen;
    while i < end {
        let (flags, ty) = (v[i], v[i + 1]);
        let (len, hdr) = if flags & 0x10 != 0 {
            (u16::from_be_bytes([v[i + 2], v[i + 3]]) as usize, 4)
        } else {
            (v[i + 2] as usize, 3)
        };
        if ty == type_code::MP_REACH_NLRI {
            // AFI (2), SAFI (1), next hop length (1), next hop, reserved.
            let nh_len = v[i + hdr + 3] as usize;
            v[i + hdr + 4 + nh_len] = 0;
        }
        i += hdr + len;
    }
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
