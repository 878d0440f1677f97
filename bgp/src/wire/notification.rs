//! NOTIFICATION messages (RFC 4271 section 4.5) with the shutdown
//! communication of RFC 8203 / RFC 9003.

use bytes::{BufMut, BytesMut};

use super::error::{cease_subcode, code};

/// Longest shutdown communication RFC 9003 allows (octets of UTF-8).
pub const MAX_SHUTDOWN_MESSAGE: usize = 255;

/// A NOTIFICATION. The data is kept as raw octets, so decoding and
/// re-encoding is exact; [`Notification::shutdown_message`] reads the
/// RFC 8203 text out of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Notification { code, subcode, data }
    }

    /// A Cease with a shutdown communication (RFC 9003): `subcode` is
    /// [`cease_subcode::ADMIN_SHUTDOWN`] or [`cease_subcode::ADMIN_RESET`].
    /// The text is cut at a character boundary to 255 octets.
    pub fn cease_with_message(subcode: u8, message: &str) -> Self {
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
        Notification::new(code::CEASE, subcode, data)
    }

    /// Cease / Administrative Shutdown with a message (RFC 8203).
    pub fn admin_shutdown(message: &str) -> Self {
        Self::cease_with_message(cease_subcode::ADMIN_SHUTDOWN, message)
    }

    /// The shutdown communication of a Cease / Administrative Shutdown or
    /// Administrative Reset, when the data holds a well-formed one.
    pub fn shutdown_message(&self) -> Option<&str> {
        if self.code != code::CEASE
            || !matches!(self.subcode, cease_subcode::ADMIN_SHUTDOWN | cease_subcode::ADMIN_RESET)
        {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..len as usize)?;
        std::str::from_utf8(text).ok()
    }

    /// Human-readable name of the code and subcode.
    pub fn describe(&self) -> String {
        let c = match self.code {
            code::MESSAGE_HEADER => "message header error",
            code::OPEN => "OPEN message error",
            code::UPDATE => "UPDATE message error",
            code::HOLD_TIMER_EXPIRED => "hold timer expired",
            code::FSM => "finite state machine error",
            code::CEASE => "cease",
            code::ROUTE_REFRESH => "ROUTE-REFRESH message error",
            _ => "unknown error",
        };
        match self.shutdown_message() {
            Some(m) => format!("{c} ({}/{}): \"{m}\"", self.code, self.subcode),
            None => format!("{c} ({}/{})", self.code, self.subcode),
        }
    }

    pub(crate) fn decode_body(body: &[u8]) -> Option<Self> {
        match body {
            [c, s, data @ ..] => Some(Notification::new(*c, *s, data.to_vec())),
            _ => None,
        }
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u8(self.code);
        out.put_u8(self.subcode);
        out.put_slice(&self.data);
    }
}
