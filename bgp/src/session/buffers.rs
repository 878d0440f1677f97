//! How big a connection's buffers are, sans IO.
//!
//! An idle session reads a 19-octet KEEPALIVE a second and writes one:
//! it needs a few KiB, not the 64 KiB a bulk transfer reads at once nor
//! the tens of KiB an initial announcement wrote. So the read buffer
//! starts at [`READ_MIN`], makes room for a whole message when one does
//! not fit (up to the session's maximum message size), doubles its reads
//! up to [`READ_MAX`] while they come back full, and goes back to
//! [`READ_MIN`] once reads are small again and it is empty. A write
//! buffer over [`WRITE_KEEP`] is given back once written.

use bytes::BytesMut;

use crate::wire::frame_len;

/// The room an idle connection reads into.
pub const READ_MIN: usize = 4 * 1024;
/// The most a read asks for while a bulk transfer keeps filling them.
pub const READ_MAX: usize = 64 * 1024;
/// A write buffer with more capacity than this is dropped once written.
pub const WRITE_KEEP: usize = 16 * 1024;

/// A connection's read buffer and the room its next read gets.
#[derive(Debug)]
pub struct ReadBuf {
    /// What was read and not yet taken as messages.
    pub data: BytesMut,
    /// The room the next read gets (grows while reads come back full).
    room: usize,
    /// The size of the allocation `data` was made with, when that is
    /// known (0: not allocated, or grown since for a message).
    alloc: usize,
    /// The room the read in flight was given.
    offered: usize,
}

impl Default for ReadBuf {
    fn default() -> Self {
        ReadBuf::new()
    }
}

impl ReadBuf {
    pub fn new() -> ReadBuf {
        ReadBuf { data: BytesMut::new(), room: READ_MIN, alloc: 0, offered: 0 }
    }

    /// Before a read: room for what the next read may bring, at least the
    /// rest of a message whose header is in already (`max_message`: the
    /// longest the connection accepts; a longer one is a decoding error,
    /// found when it is taken).
    pub fn prepare(&mut self, max_message: usize) {
        if self.data.is_empty() {
            if self.alloc != self.room {
                // Empty: a new allocation of the room wanted costs no copy,
                // and gives a bigger one back.
                self.data = BytesMut::with_capacity(self.room);
                self.alloc = self.room;
            }
            // The whole allocation again (nothing to move).
            self.data.reserve(self.room);
        } else {
            // A message begun: room for the rest of it.
            let rest = match frame_len(&self.data, max_message) {
                Ok(Some(len)) => len.saturating_sub(self.data.len()),
                _ => 0,
            };
            let want = self.room.saturating_sub(self.data.len()).max(rest).max(1);
            if self.data.capacity() - self.data.len() < want {
                self.data.reserve(want);
                self.alloc = 0;
            }
        }
        self.offered = self.data.capacity() - self.data.len();
    }

    /// After a read of `n` octets into the room [`ReadBuf::prepare`] made.
    pub fn filled(&mut self, n: usize) {
        if n > 0 && n >= self.offered {
            self.room = (self.room * 2).min(READ_MAX);
        } else if n < self.room / 2 {
            self.room = (self.room / 2).max(READ_MIN);
        }
    }

    /// The room the next read gets.
    pub fn room(&self) -> usize {
        self.room
    }

    /// The octets allocated.
    pub fn capacity(&self) -> usize {
        self.data.capacity()
    }
}

/// A write buffer once written: emptied, and given back when it grew over
/// [`WRITE_KEEP`] (an announcement's burst; the next write allocates what
/// it needs).
pub fn written(wbuf: &mut BytesMut) {
    if wbuf.capacity() > WRITE_KEEP {
        *wbuf = BytesMut::new();
    } else {
        wbuf.clear();
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Buf, BufMut};

    use super::*;
    use crate::wire::{Message, Negotiated};

    /// What a read does: fill up to `n` octets of the room offered.
    fn read(b: &mut ReadBuf, max: usize, octets: &[u8]) -> usize {
        b.prepare(max);
        let room = b.data.capacity() - b.data.len();
        let n = octets.len().min(room);
        b.data.put_slice(&octets[..n]);
        b.filled(n);
        n
    }

    fn keepalive() -> Vec<u8> {
        let mut out = BytesMut::new();
        Message::Keepalive.encode(&Negotiated::default(), &mut out).unwrap();
        out.to_vec()
    }

    /// A message of `len` octets (a header saying so, then zeros).
    fn message(len: usize) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&(len as u16).to_be_bytes());
        m.push(2);
        m.resize(len, 0);
        m
    }

    #[test]
    fn an_idle_connection_reads_keepalives_into_a_small_buffer() {
        let mut b = ReadBuf::new();
        assert_eq!(b.capacity(), 0, "nothing allocated before the first read");
        for _ in 0..10 {
            assert_eq!(read(&mut b, 4096, &keepalive()), 19);
            b.data.advance(19);
            assert!(b.capacity() <= READ_MIN, "{}", b.capacity());
        }
        assert_eq!(b.room(), READ_MIN);
    }

    #[test]
    fn a_message_longer_than_the_room_gets_room_for_all_of_it() {
        let mut b = ReadBuf::new();
        // An extended message (RFC 8654) of 60000 octets: the first read
        // brings its header and what fits.
        let m = message(60000);
        let first = read(&mut b, 65535, &m);
        assert!(first < m.len());
        // The next read has room for the rest of it in one go.
        b.prepare(65535);
        assert!(b.data.capacity() - b.data.len() >= m.len() - first, "{}", b.data.capacity());
        b.data.put_slice(&m[first..]);
        b.filled(m.len() - first);
        assert_eq!(frame_len(&b.data, 65535).unwrap(), Some(60000));
        // A length over the maximum is not made room for: it is an error
        // when the message is taken.
        let mut b = ReadBuf::new();
        read(&mut b, 4096, &message(60000)[..19]);
        b.prepare(4096);
        assert!(b.capacity() <= READ_MIN, "{}", b.capacity());
        assert!(frame_len(&b.data, 4096).is_err());
    }

    #[test]
    fn reads_that_come_back_full_double_up_to_the_maximum_then_shrink_when_idle() {
        let mut b = ReadBuf::new();
        let burst = vec![0u8; 1 << 20];
        let mut rooms = Vec::new();
        for _ in 0..8 {
            let n = read(&mut b, 4096, &burst);
            b.data.advance(n);
            rooms.push(b.room());
        }
        assert_eq!(rooms, [8192, 16384, 32768, 65536, 65536, 65536, 65536, 65536], "{rooms:?}");
        b.prepare(4096);
        assert!(b.capacity() >= READ_MAX, "{}", b.capacity());
        // Back to keepalives: the room halves, and once it is the least
        // and the buffer is empty, the allocation goes.
        for _ in 0..5 {
            read(&mut b, 4096, &keepalive());
            b.data.advance(19);
        }
        assert_eq!(b.room(), READ_MIN);
        read(&mut b, 4096, &keepalive());
        assert!(b.capacity() <= READ_MIN, "{}", b.capacity());
    }

    #[test]
    fn a_partial_message_is_kept_when_the_buffer_would_shrink() {
        let mut b = ReadBuf::new();
        let burst = vec![0u8; 1 << 20];
        for _ in 0..4 {
            let n = read(&mut b, 4096, &burst);
            b.data.advance(n);
        }
        for _ in 0..6 {
            read(&mut b, 4096, &keepalive());
            b.data.advance(19);
        }
        // Half a KEEPALIVE waits: the next read keeps it.
        read(&mut b, 4096, &keepalive()[..10]);
        read(&mut b, 4096, &keepalive()[10..]);
        assert_eq!(&b.data[..], &keepalive()[..]);
    }

    #[test]
    fn a_write_buffer_is_given_back_only_when_it_grew_large() {
        let mut w = BytesMut::with_capacity(1024);
        w.put_slice(&[1; 500]);
        written(&mut w);
        assert!(w.is_empty());
        assert_eq!(w.capacity(), 1024, "a small buffer is kept for the next write");
        let mut w = BytesMut::new();
        w.put_slice(&vec![1; 50 * 1024]);
        written(&mut w);
        assert!(w.is_empty());
        assert_eq!(w.capacity(), 0);
    }
}
