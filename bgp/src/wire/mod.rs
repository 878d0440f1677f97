//! The BGP-4 message codec.
//!
//! Decoding takes one whole message (`&[u8]`, header included) and never
//! panics; every refusal is a [`DecodeError`] that names the NOTIFICATION
//! to send, or, for a malformed path attribute that RFC 7606 lets the
//! session survive, an [`AttrError`] recorded in [`Update::attr_errors`]
//! with its action. Encoding appends to a [`BytesMut`].
//!
//! An UPDATE's path attributes are an [`Attrs`]: one shared list. A
//! session decodes through an [`AttrMemo`] ([`Message::decode_with`]), so
//! the attribute octets a peer repeats (a full table repeats a few
//! thousand sets over a million prefixes) are decoded once and the
//! UPDATEs that carry them share one list; the result is the same as
//! [`Message::decode`] gives.
//!
//! # Round trip
//! For every message that decodes without attribute errors,
//! `encode(decode(bytes)) == bytes`, with the same [`Negotiated`] on both
//! sides, except for these canonical choices:
//! - the reserved octet of MP_REACH_NLRI is written as 0 (RFC 4760 says
//!   to ignore it on receipt);
//! - an attribute whose value is longer than 255 octets always carries the
//!   extended-length flag (a received flag is kept even when not needed);
//! - the reserved octet of the multiprotocol capability is written as 0
//!   (a capability that is not canonical is kept raw, so this still
//!   round-trips).

mod aspath;
mod attr;
mod capability;
mod community;
mod display;
mod error;
mod error_code;
mod nlri;
mod notification;
mod open;
mod pack;
mod route_refresh;
mod update;

use bytes::{BufMut, BytesMut};

pub use aspath::{AsPath, Segment, SegmentType, AS_TRANS};
pub use attr::{
    expected_flags, flags, type_code, Aggregator, AttrValue, Attrs, MpNextHop, MpNlri, MpReach, MpUnreach, NextHop,
    Origin, PathAttr,
};
pub use capability::{
    code as capability_code, AddPathFamily, AddPathMode, Capability, ExtendedNextHop, GrFamily, GracefulRestart,
    LlgrFamily, Role,
};
pub use community::{
    ext_type, Administrator, Community, ExtCommunity, LargeCommunity, ParseCommunityError, ParseLargeCommunityError,
    COMMUNITY_DIGITS, LARGE_COMMUNITY_DIGITS,
};
pub use error::{AttrError, DecodeError, EncodeError, ErrorAction};
pub use error_code::{Cease, ErrorCode, FsmError, HeaderError, OpenError, RouteRefreshError, UpdateError};
pub use nlri::{masked, Family, Nlri, AFI_IPV4, AFI_IPV6, SAFI_UNICAST};
pub use notification::{Notification, MAX_SHUTDOWN_MESSAGE};
pub use open::{Open, PARAM_CAPABILITIES};
pub use pack::{pack_announcements, pack_withdrawals};
pub use route_refresh::{RefreshSubtype, RouteRefresh};
pub use update::{AttrMemo, Update};

/// Length of the message header.
pub const HEADER_LEN: usize = 19;
/// Maximum message size without the extended message capability.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Maximum message size with the extended message capability (RFC 8654).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// Message type codes.
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// What a session negotiated that changes the wire format, for one
/// direction (decode what the peer sends, or encode what we send).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Negotiated {
    /// Both sides advertised the 4-octet AS capability (RFC 6793).
    pub four_octet_as: bool,
    /// Both sides advertised the extended message capability (RFC 8654).
    pub extended_message: bool,
    /// IPv4 unicast NLRI carry ADD-PATH path identifiers in this direction.
    pub add_path_ipv4: bool,
    /// IPv6 unicast NLRI carry ADD-PATH path identifiers in this direction.
    pub add_path_ipv6: bool,
    /// Both sides advertised IPv4 unicast with IPv6 next hops (RFC 8950):
    /// IPv4 unicast withdrawals are written in MP_UNREACH_NLRI, as FRR
    /// writes them then. (An announcement's next hop decides its own
    /// encoding; decoding takes both forms whatever this says.)
    pub extended_next_hop_ipv4: bool,
}

impl Negotiated {
    /// The common modern session: 4-octet AS, no extended message, no ADD-PATH.
    pub const fn four_octet() -> Self {
        Negotiated {
            four_octet_as: true,
            extended_message: false,
            add_path_ipv4: false,
            add_path_ipv6: false,
            extended_next_hop_ipv4: false,
        }
    }

    /// Whether NLRI of `family` carry path identifiers.
    pub fn add_path(&self, family: Family) -> bool {
        match family {
            Family::IPV4_UNICAST => self.add_path_ipv4,
            Family::IPV6_UNICAST => self.add_path_ipv6,
            _ => false,
        }
    }

    /// The largest UPDATE / NOTIFICATION / ROUTE-REFRESH allowed.
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }
}

/// A BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// Check the header at the start of `buf` and tell the length of the
/// message it starts: `Ok(None)` when fewer than 19 octets are buffered.
/// `max_len` is the negotiated maximum ([`Negotiated::max_message_len`]).
pub fn frame_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
    let Some(h) = buf.first_chunk::<HEADER_LEN>() else { return Ok(None) };
    if h[..16].iter().any(|&b| b != 0xff) {
        return Err(DecodeError::ConnectionNotSynchronized);
    }
    let length = u16::from_be_bytes([h[16], h[17]]);
    let len = length as usize;
    let ty = h[18];
    let min = match ty {
        msg_type::OPEN => 29,
        msg_type::UPDATE => 23,
        msg_type::NOTIFICATION => 21,
        msg_type::KEEPALIVE => HEADER_LEN,
        msg_type::ROUTE_REFRESH => 23,
        _ => return Err(DecodeError::BadMessageType { msg_type: ty }),
    };
    // OPEN and KEEPALIVE stay within 4096 octets even with extended
    // messages (RFC 8654 section 3).
    let max = if matches!(ty, msg_type::OPEN | msg_type::KEEPALIVE) { MAX_MESSAGE_LEN } else { max_len };
    if len < min || len > max || (ty == msg_type::KEEPALIVE && len != HEADER_LEN) {
        return Err(DecodeError::BadMessageLength { length });
    }
    Ok(Some(len))
}

impl Message {
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Open(_) => msg_type::OPEN,
            Message::Update(_) => msg_type::UPDATE,
            Message::Notification(_) => msg_type::NOTIFICATION,
            Message::Keepalive => msg_type::KEEPALIVE,
            Message::RouteRefresh(_) => msg_type::ROUTE_REFRESH,
        }
    }

    /// A name for logs: `OPEN`, `UPDATE`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Message::Open(_) => "OPEN",
            Message::Update(_) => "UPDATE",
            Message::Notification(_) => "NOTIFICATION",
            Message::Keepalive => "KEEPALIVE",
            Message::RouteRefresh(_) => "ROUTE-REFRESH",
        }
    }

    /// Decode one whole message (header included). `msg` must be exactly
    /// one message: its length must equal the header's length field.
    pub fn decode(msg: &[u8], ctx: &Negotiated) -> Result<Message, DecodeError> {
        Message::decode_with(msg, ctx, None)
    }

    /// [`Message::decode`], with UPDATE attribute lists decoded before
    /// taken from `memo` (the result is the same; see [`AttrMemo`]).
    pub fn decode_with(msg: &[u8], ctx: &Negotiated, memo: Option<&mut AttrMemo>) -> Result<Message, DecodeError> {
        let len =
            frame_len(msg, ctx.max_message_len())?.ok_or(DecodeError::BadMessageLength { length: msg.len() as u16 })?;
        if len != msg.len() {
            let length = u16::from_be_bytes([msg[16], msg[17]]);
            return Err(DecodeError::BadMessageLength { length });
        }
        let body = &msg[HEADER_LEN..];
        Ok(match msg[18] {
            msg_type::OPEN => Message::Open(Open::decode_body(body)?),
            msg_type::UPDATE => Message::Update(Update::decode_body_with(body, ctx, memo)?),
            msg_type::NOTIFICATION => {
                Message::Notification(Notification::decode_body(body).ok_or(DecodeError::MalformedNotification)?)
            }
            msg_type::KEEPALIVE => Message::Keepalive,
            msg_type::ROUTE_REFRESH => match body.first_chunk::<4>() {
                Some(b) if body.len() == 4 => Message::RouteRefresh(RouteRefresh::decode_body(b)),
                _ => return Err(DecodeError::RouteRefreshLength { length: len as u16, message: msg.to_vec() }),
            },
            // frame_len has refused every other type.
            t => return Err(DecodeError::BadMessageType { msg_type: t }),
        })
    }

    /// Append the message, header included. Fails, leaving `out` as it
    /// was, when the message exceeds the negotiated maximum size.
    pub fn encode(&self, ctx: &Negotiated, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = begin_message(out, self.msg_type());
        let r = match self {
            Message::Open(o) => o.encode_body(out),
            Message::Update(u) => u.encode_body(ctx, out),
            Message::Notification(n) => {
                n.encode_body(out);
                Ok(())
            }
            Message::Keepalive => Ok(()),
            Message::RouteRefresh(r) => {
                r.encode_body(out);
                Ok(())
            }
        };
        let max = match self {
            Message::Open(_) | Message::Keepalive => MAX_MESSAGE_LEN,
            _ => ctx.max_message_len(),
        };
        let r = r.and_then(|()| finish_message(out, start, max));
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    /// Encode into a fresh buffer.
    pub fn to_bytes(&self, ctx: &Negotiated) -> Result<BytesMut, EncodeError> {
        let mut b = BytesMut::new();
        self.encode(ctx, &mut b)?;
        Ok(b)
    }
}

/// Write a header with a zero length; returns where the message starts.
pub(crate) fn begin_message(out: &mut BytesMut, ty: u8) -> usize {
    let start = out.len();
    out.put_slice(&[0xff; 16]);
    out.put_u16(0);
    out.put_u8(ty);
    start
}

/// Fill in the length of the message that starts at `start`.
pub(crate) fn finish_message(out: &mut BytesMut, start: usize, max: usize) -> Result<(), EncodeError> {
    let len = out.len() - start;
    if len > max {
        return Err(EncodeError::TooLarge { len, max });
    }
    out[start + 16..start + 18].copy_from_slice(&(len as u16).to_be_bytes());
    Ok(())
}
