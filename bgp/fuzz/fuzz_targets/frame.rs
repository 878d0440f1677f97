//! Arbitrary bytes through `frame_len`, as a receive buffer.
//!
//! `frame_len` must never panic, must ask for more only below 19 octets,
//! and must give a length within the limits; a message it frames must not
//! be refused by `Message::decode` for a header fault. The buffer is then
//! split as a session would, frame by frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mooring_bgp::wire::{frame_len, DecodeError, Message, Negotiated, HEADER_LEN, MAX_MESSAGE_LEN};

fuzz_target!(|data: &[u8]| {
    for extended_message in [false, true] {
        let ctx = Negotiated { extended_message, ..Negotiated::four_octet() };
        let max = ctx.max_message_len();
        let mut rest = data;
        loop {
            match frame_len(rest, max) {
                Ok(None) => {
                    assert!(rest.len() < HEADER_LEN, "needs more with {} octets buffered", rest.len());
                    break;
                }
                Ok(Some(len)) => {
                    assert!((HEADER_LEN..=max).contains(&len), "length {len} outside 19..={max}");
                    if matches!(rest[18], 1 | 4) {
                        assert!(len <= MAX_MESSAGE_LEN, "OPEN/KEEPALIVE of {len} octets");
                    }
                    let Some(msg) = rest.get(..len) else { break };
                    match Message::decode(msg, &ctx) {
                        Ok(_) => {}
                        Err(
                            e @ (DecodeError::ConnectionNotSynchronized
                            | DecodeError::BadMessageLength { .. }
                            | DecodeError::BadMessageType { .. }),
                        ) => panic!("frame_len accepted a header decode refuses: {e}"),
                        Err(e) => {
                            let _ = e.notification();
                        }
                    }
                    rest = &rest[len..];
                }
                Err(e) => {
                    assert!(rest.len() >= HEADER_LEN);
                    let n = e.notification().expect("a header error has a NOTIFICATION");
                    assert_eq!(n.code(), 1, "header errors are Message Header Errors: {e}");
                    break;
                }
            }
        }
    }
});
