//! Decode errors and how they map to NOTIFICATION messages
//! (RFC 4271 section 6) or to RFC 7606 revised error handling.

use std::net::Ipv4Addr;

use super::notification::Notification;

/// NOTIFICATION error codes (RFC 4271 section 4.5, RFC 7313).
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Subcodes of [`code::MESSAGE_HEADER`].
pub mod header_subcode {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// Subcodes of [`code::OPEN`].
pub mod open_subcode {
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    pub const ROLE_MISMATCH: u8 = 11;
}

/// Subcodes of [`code::UPDATE`].
pub mod update_subcode {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS: u8 = 4;
    pub const ATTRIBUTE_LENGTH: u8 = 5;
    pub const INVALID_ORIGIN: u8 = 6;
    pub const INVALID_NEXT_HOP: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Subcodes of [`code::CEASE`] (RFC 4486, RFC 8538).
pub mod cease_subcode {
    pub const MAX_PREFIXES: u8 = 1;
    pub const ADMIN_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMIN_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    pub const HARD_RESET: u8 = 9;
}

/// Subcodes of [`code::ROUTE_REFRESH`] (RFC 7313).
pub mod route_refresh_subcode {
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// What RFC 7606 says to do about a malformed attribute, weakest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorAction {
    /// Send the NOTIFICATION and close the session.
    SessionReset,
    /// Disable the AFI/SAFI (RFC 4760 section 7); treated by this crate
    /// like a session reset when the family cannot be isolated.
    AfiSafiDisable,
    /// Treat every route the UPDATE carries as withdrawn.
    TreatAsWithdraw,
    /// Drop the attribute and process the rest of the UPDATE.
    AttributeDiscard,
}

/// A malformed path attribute: the UPDATE error subcode and data a
/// NOTIFICATION would carry, and the RFC 7606 action to take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path attribute {type_code}: {reason} ({action:?})")]
pub struct AttrError {
    /// The attribute type code.
    pub type_code: u8,
    /// UPDATE Message Error subcode ([`update_subcode`]).
    pub subcode: u8,
    /// NOTIFICATION data: usually the whole attribute (type, length, value).
    pub data: Vec<u8>,
    pub action: ErrorAction,
    pub reason: &'static str,
}

impl AttrError {
    /// The NOTIFICATION for this error, were the session to be reset.
    pub fn notification(&self) -> Notification {
        Notification::new(code::UPDATE, self.subcode, self.data.clone())
    }
}

/// A message that cannot be accepted. Every variant but
/// [`DecodeError::MalformedNotification`] maps to the exact NOTIFICATION
/// RFC 4271 section 6 (or RFC 7313) asks for, see [`DecodeError::notification`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("connection not synchronized: bad marker")]
    ConnectionNotSynchronized,
    #[error("bad message length {length}")]
    BadMessageLength { length: u16 },
    #[error("bad message type {msg_type}")]
    BadMessageType { msg_type: u8 },
    #[error("unsupported BGP version {version}")]
    UnsupportedVersion { version: u8 },
    #[error("bad BGP identifier {id}")]
    BadBgpIdentifier { id: Ipv4Addr },
    #[error("unacceptable hold time {hold_time}")]
    UnacceptableHoldTime { hold_time: u16 },
    #[error("unsupported optional parameter type {param_type}")]
    UnsupportedOptionalParameter { param_type: u8 },
    #[error("malformed OPEN: {reason}")]
    MalformedOpen { reason: &'static str },
    #[error("malformed attribute list: {reason}")]
    MalformedAttributeList { reason: &'static str },
    #[error("invalid network field: {reason}")]
    InvalidNetworkField { reason: &'static str },
    #[error(transparent)]
    Attribute(#[from] AttrError),
    #[error("ROUTE-REFRESH of invalid length {length}")]
    RouteRefreshLength { length: u16, message: Vec<u8> },
    /// A NOTIFICATION too short to hold its code and subcode: no
    /// NOTIFICATION may be sent in reply (RFC 4271 section 6.4), just close.
    #[error("malformed NOTIFICATION")]
    MalformedNotification,
}

impl DecodeError {
    /// The NOTIFICATION to send before closing, or `None` where the RFC
    /// says to close without one.
    pub fn notification(&self) -> Option<Notification> {
        use DecodeError::*;
        let (c, s, data) = match self {
            ConnectionNotSynchronized => (code::MESSAGE_HEADER, header_subcode::CONNECTION_NOT_SYNCHRONIZED, vec![]),
            BadMessageLength { length } => {
                (code::MESSAGE_HEADER, header_subcode::BAD_MESSAGE_LENGTH, length.to_be_bytes().to_vec())
            }
            BadMessageType { msg_type } => (code::MESSAGE_HEADER, header_subcode::BAD_MESSAGE_TYPE, vec![*msg_type]),
            // Data: the largest locally supported version number (2 octets).
            UnsupportedVersion { .. } => (code::OPEN, open_subcode::UNSUPPORTED_VERSION, 4u16.to_be_bytes().to_vec()),
            BadBgpIdentifier { .. } => (code::OPEN, open_subcode::BAD_BGP_IDENTIFIER, vec![]),
            UnacceptableHoldTime { .. } => (code::OPEN, open_subcode::UNACCEPTABLE_HOLD_TIME, vec![]),
            UnsupportedOptionalParameter { .. } => (code::OPEN, open_subcode::UNSUPPORTED_OPTIONAL_PARAMETER, vec![]),
            MalformedOpen { .. } => (code::OPEN, open_subcode::UNSPECIFIC, vec![]),
            MalformedAttributeList { .. } => (code::UPDATE, update_subcode::MALFORMED_ATTRIBUTE_LIST, vec![]),
            InvalidNetworkField { .. } => (code::UPDATE, update_subcode::INVALID_NETWORK_FIELD, vec![]),
            Attribute(e) => return Some(e.notification()),
            RouteRefreshLength { message, .. } => {
                (code::ROUTE_REFRESH, route_refresh_subcode::INVALID_MESSAGE_LENGTH, message.clone())
            }
            MalformedNotification => return None,
        };
        Some(Notification::new(c, s, data))
    }
}

/// A message that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {len} octets exceeds the maximum of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("{what} of {len} octets does not fit its length field")]
    FieldTooLong { what: &'static str, len: usize },
    #[error("prefixes of mixed address families in one UPDATE")]
    MixedFamilies,
    #[error("a single prefix with its attributes does not fit in one message")]
    PrefixDoesNotFit,
}
