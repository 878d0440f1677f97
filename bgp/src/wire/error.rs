//! Decode errors and how they map to NOTIFICATION messages
//! (RFC 4271 section 6) or to RFC 7606 revised error handling.

use std::net::Ipv4Addr;

use super::error_code::{ErrorCode, HeaderError, OpenError, RouteRefreshError, UpdateError};
use super::notification::Notification;

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
    /// The UPDATE Message Error subcode.
    pub subcode: UpdateError,
    /// NOTIFICATION data: usually the whole attribute (type, length, value).
    pub data: Vec<u8>,
    pub action: ErrorAction,
    pub reason: &'static str,
}

impl AttrError {
    /// The NOTIFICATION for this error, were the session to be reset.
    pub fn notification(&self) -> Notification {
        Notification::new(self.subcode, self.data.clone())
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
        let (e, data): (ErrorCode, _) = match self {
            ConnectionNotSynchronized => (HeaderError::ConnectionNotSynchronized.into(), vec![]),
            BadMessageLength { length } => (HeaderError::BadMessageLength.into(), length.to_be_bytes().to_vec()),
            BadMessageType { msg_type } => (HeaderError::BadMessageType.into(), vec![*msg_type]),
            // Data: the largest locally supported version number (2 octets).
            UnsupportedVersion { .. } => (OpenError::UnsupportedVersion.into(), 4u16.to_be_bytes().to_vec()),
            BadBgpIdentifier { .. } => (OpenError::BadBgpIdentifier.into(), vec![]),
            UnacceptableHoldTime { .. } => (OpenError::UnacceptableHoldTime.into(), vec![]),
            UnsupportedOptionalParameter { .. } => (OpenError::UnsupportedOptionalParameter.into(), vec![]),
            MalformedOpen { .. } => (OpenError::Unspecific.into(), vec![]),
            MalformedAttributeList { .. } => (UpdateError::MalformedAttributeList.into(), vec![]),
            InvalidNetworkField { .. } => (UpdateError::InvalidNetworkField.into(), vec![]),
            Attribute(e) => return Some(e.notification()),
            RouteRefreshLength { message, .. } => (RouteRefreshError::InvalidMessageLength.into(), message.clone()),
            MalformedNotification => return None,
        };
        Some(Notification::new(e, data))
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
