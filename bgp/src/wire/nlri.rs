//! Address families and NLRI (prefixes, with optional ADD-PATH path
//! identifiers, RFC 7911).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
pub const SAFI_UNICAST: u8 = 1;

/// `p` with its host bits cleared (`203.0.113.7/24` → `203.0.113.0/24`):
/// the form a prefix takes as a table key.
pub fn masked(p: IpNetwork) -> IpNetwork {
    IpNetwork::new(p.network(), p.prefix()).expect("the prefix length of a valid prefix")
}

/// An AFI/SAFI pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: u16,
    pub safi: u8,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family { afi: AFI_IPV4, safi: SAFI_UNICAST };
    pub const IPV6_UNICAST: Family = Family { afi: AFI_IPV6, safi: SAFI_UNICAST };

    pub const fn new(afi: u16, safi: u8) -> Self {
        Family { afi, safi }
    }

    /// The family of a prefix (unicast).
    pub fn of(prefix: &IpNetwork) -> Family {
        match prefix {
            IpNetwork::V4(_) => Family::IPV4_UNICAST,
            IpNetwork::V6(_) => Family::IPV6_UNICAST,
        }
    }

    /// Whether this crate understands the NLRI of this family.
    pub fn is_known(self) -> bool {
        self == Family::IPV4_UNICAST || self == Family::IPV6_UNICAST
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Family::IPV4_UNICAST => f.write_str("ipv4-unicast"),
            Family::IPV6_UNICAST => f.write_str("ipv6-unicast"),
            Family { afi, safi } => write!(f, "afi{afi}/safi{safi}"),
        }
    }
}

/// One NLRI entry: a prefix, with a path identifier when ADD-PATH is in
/// use for its family and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub path_id: Option<u32>,
    pub prefix: IpNetwork,
}

impl Nlri {
    pub fn new(prefix: IpNetwork) -> Self {
        Nlri { path_id: None, prefix }
    }

    pub fn with_path_id(prefix: IpNetwork, path_id: u32) -> Self {
        Nlri { path_id: Some(path_id), prefix }
    }

    pub fn family(&self) -> Family {
        Family::of(&self.prefix)
    }

    /// Encoded size in octets; `add_path` says whether the session sends
    /// path identifiers for this family.
    pub fn encoded_len(&self, add_path: bool) -> usize {
        1 + (self.prefix.prefix() as usize).div_ceil(8) + if add_path { 4 } else { 0 }
    }

    /// Append the wire form. The negotiated ADD-PATH mode, not the
    /// presence of `path_id`, decides whether a path id is written (a
    /// missing one is written as 0).
    pub fn encode(&self, add_path: bool, out: &mut BytesMut) {
        if add_path {
            out.put_u32(self.path_id.unwrap_or(0));
        }
        let len = self.prefix.prefix();
        out.put_u8(len);
        let n = (len as usize).div_ceil(8);
        match self.prefix {
            IpNetwork::V4(p) => out.put_slice(&p.ip().octets()[..n]),
            IpNetwork::V6(p) => out.put_slice(&p.ip().octets()[..n]),
        }
    }
}

impl fmt::Display for Nlri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path_id {
            Some(id) => write!(f, "{} path-id {id}", self.prefix),
            None => write!(f, "{}", self.prefix),
        }
    }
}

/// Why an NLRI field could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NlriError {
    Truncated,
    PrefixTooLong,
}

impl NlriError {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            NlriError::Truncated => "NLRI runs past the end of its field",
            NlriError::PrefixTooLong => "prefix length exceeds the address size",
        }
    }
}

/// Parse a whole NLRI field of family `afi` (1 or 2) into `out`.
///
/// Host bits beyond the prefix length inside the last octet are kept as
/// sent, so re-encoding gives back the same octets.
pub(crate) fn decode_prefixes(mut buf: &[u8], afi: u16, add_path: bool, out: &mut Vec<Nlri>) -> Result<(), NlriError> {
    let max_bits: u8 = if afi == AFI_IPV4 { 32 } else { 128 };
    while !buf.is_empty() {
        let path_id = if add_path {
            let (id, rest) = buf.split_first_chunk::<4>().ok_or(NlriError::Truncated)?;
            buf = rest;
            Some(u32::from_be_bytes(*id))
        } else {
            None
        };
        let (&len, rest) = buf.split_first().ok_or(NlriError::Truncated)?;
        if len > max_bits {
            return Err(NlriError::PrefixTooLong);
        }
        let n = (len as usize).div_ceil(8);
        let bytes = rest.get(..n).ok_or(NlriError::Truncated)?;
        buf = &rest[n..];
        let prefix = if afi == AFI_IPV4 {
            let mut o = [0u8; 4];
            o[..n].copy_from_slice(bytes);
            IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(o), len).map_err(|_| NlriError::PrefixTooLong)?)
        } else {
            let mut o = [0u8; 16];
            o[..n].copy_from_slice(bytes);
            IpNetwork::V6(Ipv6Network::new(Ipv6Addr::from(o), len).map_err(|_| NlriError::PrefixTooLong)?)
        };
        out.push(Nlri { path_id, prefix });
    }
    Ok(())
}
