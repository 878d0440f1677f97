//! AS_PATH and AS4_PATH (RFC 4271, RFC 6793, RFC 5065 confederations).

use std::fmt;

use bytes::{BufMut, BytesMut};

/// The AS number a 2-octet speaker sees in place of a 4-octet one (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// Segment types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentType {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

impl SegmentType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => SegmentType::Set,
            2 => SegmentType::Sequence,
            3 => SegmentType::ConfedSequence,
            4 => SegmentType::ConfedSet,
            _ => return None,
        })
    }
}

/// One path segment. Wire segments hold 1 to 255 ASes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Segment {
    pub kind: SegmentType,
    pub asns: Vec<u32>,
}

/// An AS path: the segments as received, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<Segment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE (split into segments of at most 255 on the wire).
    pub fn sequence(asns: impl IntoIterator<Item = u32>) -> Self {
        let asns: Vec<u32> = asns.into_iter().collect();
        let segments = asns.chunks(255).map(|c| Segment { kind: SegmentType::Sequence, asns: c.to_vec() }).collect();
        AsPath { segments }
    }

    /// Prepend `asn` `count` times at the front (as a router prepends its
    /// own AS on eBGP), extending the first AS_SEQUENCE or opening one.
    pub fn prepend(&mut self, asn: u32, count: usize) {
        if count == 0 {
            return;
        }
        match self.segments.first_mut() {
            Some(s) if s.kind == SegmentType::Sequence && s.asns.len() + count <= 255 => {
                s.asns.splice(0..0, std::iter::repeat_n(asn, count));
            }
            _ => {
                let mut rest = count;
                while rest > 0 {
                    let n = rest.min(255);
                    self.segments.insert(0, Segment { kind: SegmentType::Sequence, asns: vec![asn; n] });
                    rest -= n;
                }
            }
        }
    }

    /// Path length for best-path selection (RFC 4271 9.1.2.2: a set counts
    /// as one, confederation segments count zero).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                _ => 0,
            })
            .sum()
    }

    /// The AS a route was learned from: the first AS of the first sequence.
    pub fn first_asn(&self) -> Option<u32> {
        let s = self.segments.first()?;
        (s.kind == SegmentType::Sequence).then(|| s.asns.first().copied()).flatten()
    }

    /// Every AS in the path, in order.
    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.segments.iter().flat_map(|s| s.asns.iter().copied())
    }

    /// Whether any AS needs four octets.
    pub fn has_four_octet_asn(&self) -> bool {
        self.asns().any(|a| a > u16::MAX as u32)
    }

    pub(crate) fn encoded_len(&self, four_octet: bool) -> usize {
        let w = if four_octet { 4 } else { 2 };
        // Segments of more than 255 ASes are written as several segments.
        self.segments.iter().map(|s| 2 * s.asns.len().div_ceil(255).max(1) + w * s.asns.len()).sum()
    }

    /// Encode with 4- or 2-octet ASes; in 2-octet form an AS that does
    /// not fit is written as [`AS_TRANS`].
    pub(crate) fn encode(&self, four_octet: bool, out: &mut BytesMut) {
        for s in &self.segments {
            for chunk in s.asns.chunks(255) {
                out.put_u8(s.kind as u8);
                out.put_u8(chunk.len() as u8);
                for &a in chunk {
                    if four_octet {
                        out.put_u32(a);
                    } else {
                        out.put_u16(u16::try_from(a).unwrap_or(AS_TRANS));
                    }
                }
            }
            if s.asns.is_empty() {
                out.put_u8(s.kind as u8);
                out.put_u8(0);
            }
        }
    }

    /// Decode a whole AS_PATH value. `None` when malformed (RFC 7606
    /// section 7.2: unknown segment type, zero-length segment, overrun).
    pub(crate) fn decode(mut buf: &[u8], four_octet: bool) -> Option<Self> {
        let w = if four_octet { 4 } else { 2 };
        let mut segments = Vec::new();
        while !buf.is_empty() {
            let [t, n, rest @ ..] = buf else { return None };
            let kind = SegmentType::from_u8(*t)?;
            let n = *n as usize;
            if n == 0 {
                return None;
            }
            let body = rest.get(..n * w)?;
            let asns = body
                .chunks_exact(w)
                .map(|c| {
                    if four_octet {
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                    } else {
                        u16::from_be_bytes([c[0], c[1]]) as u32
                    }
                })
                .collect();
            segments.push(Segment { kind, asns });
            buf = &rest[n * w..];
        }
        Some(AsPath { segments })
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let (open, close) = match s.kind {
                SegmentType::Sequence => ("", ""),
                SegmentType::Set => ("{", "}"),
                SegmentType::ConfedSequence => ("(", ")"),
                SegmentType::ConfedSet => ("[", "]"),
            };
            f.write_str(open)?;
            for (i, a) in s.asns.iter().enumerate() {
                if i > 0 {
                    f.write_str(if matches!(s.kind, SegmentType::Set | SegmentType::ConfedSet) { "," } else { " " })?;
                }
                write!(f, "{a}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}
