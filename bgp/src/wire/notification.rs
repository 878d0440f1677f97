//! NOTIFICATION messages (RFC 4271 section 4.5) with the shutdown
//! communication of RFC 8203 / RFC 9003.

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::error_code::{Cease, ErrorCode};

/// Longest shutdown communication RFC 9003 allows (octets of UTF-8).
pub const MAX_SHUTDOWN_MESSAGE: usize = 255;

/// A NOTIFICATION: its error code and subcode, and the data as raw
/// octets, so decoding and re-encoding is exact;
/// [`Notification::shutdown_message`] reads the RFC 8203 text out of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    pub error: ErrorCode,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(error: impl Into<ErrorCode>, data: Vec<u8>) -> Self {
        Notification { error: error.into(), data }
    }

    /// A NOTIFICATION from the octets of its code and subcode.
    pub fn from_wire(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Notification { error: ErrorCode::from_wire(code, subcode), data }
    }

    /// The error code octet.
    pub fn code(&self) -> u8 {
        self.error.code()
    }

    /// The error subcode octet.
    pub fn subcode(&self) -> u8 {
        self.error.subcode()
    }

    /// A Cease with a shutdown communication (RFC 9003): meant for
    /// [`Cease::AdminShutdown`] and [`Cease::AdminReset`].
    /// The text is cut at a character boundary to 255 octets.
    pub fn cease_with_message(subcode: Cease, message: &str) -> Self {
        let mut end = message.len().min(MAX_SHUTDOWN_MESSAGE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let text = &message.as_bytes()[..end];
        let mut data = Vec::with_capacity(1 + text.len());
        if !text.is_empty() {
            data.push(text.len() as u8);
            data.extend_from_slice(text);
        }
        Notification::new(subcode, data)
    }

    /// Cease / Administrative Shutdown with a message (RFC 8203).
    pub fn admin_shutdown(message: &str) -> Self {
        Self::cease_with_message(Cease::AdminShutdown, message)
    }

    /// Whether this is a Cease with that subcode.
    pub fn is_cease(&self, subcode: Cease) -> bool {
        self.error == ErrorCode::Cease(subcode)
    }

    /// The shutdown communication of a Cease / Administrative Shutdown or
    /// Administrative Reset, when the data holds a well-formed one.
    pub fn shutdown_message(&self) -> Option<&str> {
        if !matches!(self.error, ErrorCode::Cease(Cease::AdminShutdown | Cease::AdminReset)) {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..len as usize)?;
        std::str::from_utf8(text).ok()
    }

    /// The same as `to_string()`: "Cease/Administrative Shutdown (6/2): \"text\"".
    pub fn describe(&self) -> String {
        self.to_string()
    }

    pub(crate) fn decode_body(body: &[u8]) -> Option<Self> {
        match body {
            [c, s, data @ ..] => Some(Notification::from_wire(*c, *s, data.to_vec())),
            _ => None,
        }
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u8(self.code());
        out.put_u8(self.subcode());
        out.put_slice(&self.data);
    }
}

/// The names of the code and subcode, their numbers, and the shutdown
/// communication when there is one.
impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}/{})", self.error, self.code(), self.subcode())?;
        if let Some(m) = self.shutdown_message() {
            write!(f, ": \"{m}\"")?;
        }
        Ok(())
    }
}
