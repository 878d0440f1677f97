//! Communities: standard (RFC 1997), extended (RFC 4360, with the
//! link-bandwidth community of draft-ietf-idr-link-bandwidth) and large
//! (RFC 8092).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A standard community: `asn:value` in 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// RFC 8326.
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
    /// RFC 7611.
    pub const ACCEPT_OWN: Community = Community(0xFFFF_0001);
    /// RFC 7999.
    pub const BLACKHOLE: Community = Community(0xFFFF_029A);
    /// RFC 9494.
    pub const LLGR_STALE: Community = Community(0xFFFF_0006);
    /// RFC 9494.
    pub const NO_LLGR: Community = Community(0xFFFF_0007);
    /// RFC 1997.
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    /// RFC 3765.
    pub const NO_PEER: Community = Community(0xFFFF_FF04);

    const NAMED: [(Community, &'static str); 9] = [
        (Self::GRACEFUL_SHUTDOWN, "graceful-shutdown"),
        (Self::ACCEPT_OWN, "accept-own"),
        (Self::BLACKHOLE, "blackhole"),
        (Self::LLGR_STALE, "llgr-stale"),
        (Self::NO_LLGR, "no-llgr"),
        (Self::NO_EXPORT, "no-export"),
        (Self::NO_ADVERTISE, "no-advertise"),
        (Self::NO_EXPORT_SUBCONFED, "no-export-subconfed"),
        (Self::NO_PEER, "no-peer"),
    ];

    pub const fn new(asn: u16, value: u16) -> Self {
        Community(((asn as u32) << 16) | value as u32)
    }

    pub const fn asn(self) -> u16 {
        (self.0 >> 16) as u16
    }

    pub const fn value(self) -> u16 {
        self.0 as u16
    }

    /// The well-known name, if this community has one.
    pub fn well_known_name(self) -> Option<&'static str> {
        Self::NAMED.iter().find(|(c, _)| *c == self).map(|(_, n)| *n)
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.well_known_name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}:{}", self.asn(), self.value()),
        }
    }
}

/// A community that could not be parsed from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid community {0:?}: want ASN:VALUE or a well-known name")]
pub struct ParseCommunityError(pub String);

impl FromStr for Community {
    type Err = ParseCommunityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase().replace('_', "-");
        if let Some((c, _)) = Self::NAMED.iter().find(|(_, n)| *n == lower) {
            return Ok(*c);
        }
        let err = || ParseCommunityError(s.to_string());
        let (a, v) = s.split_once(':').ok_or_else(err)?;
        Ok(Community::new(a.parse().map_err(|_| err())?, v.parse().map_err(|_| err())?))
    }
}

/// A large community (RFC 8092): `global:local1:local2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl LargeCommunity {
    pub const fn new(global: u32, local1: u32, local2: u32) -> Self {
        LargeCommunity { global, local1, local2 }
    }

    pub(crate) fn from_bytes(b: &[u8; 12]) -> Self {
        let w = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        LargeCommunity::new(w(0), w(4), w(8))
    }

    pub(crate) fn to_bytes(self) -> [u8; 12] {
        let mut o = [0u8; 12];
        o[..4].copy_from_slice(&self.global.to_be_bytes());
        o[4..8].copy_from_slice(&self.local1.to_be_bytes());
        o[8..].copy_from_slice(&self.local2.to_be_bytes());
        o
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

/// A large community that could not be parsed from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid large community {0:?}: want GLOBAL:LOCAL1:LOCAL2")]
pub struct ParseLargeCommunityError(pub String);

impl FromStr for LargeCommunity {
    type Err = ParseLargeCommunityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseLargeCommunityError(s.to_string());
        let mut it = s.trim().split(':').map(|p| p.parse::<u32>().map_err(|_| err()));
        let (Some(g), Some(l1), Some(l2), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(err());
        };
        Ok(LargeCommunity::new(g?, l1?, l2?))
    }
}

/// The administrator part of a route target or route origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Administrator {
    /// Type 0x00: two-octet AS, four-octet local value.
    As2(u16, u32),
    /// Type 0x01: IPv4 address, two-octet local value.
    Ipv4(Ipv4Addr, u16),
    /// Type 0x02: four-octet AS (RFC 5668), two-octet local value.
    As4(u32, u16),
}

impl fmt::Display for Administrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Administrator::As2(a, v) => write!(f, "{a}:{v}"),
            Administrator::Ipv4(a, v) => write!(f, "{a}:{v}"),
            Administrator::As4(a, v) => write!(f, "{a}:{v}"),
        }
    }
}

/// Extended community type octets.
pub mod ext_type {
    pub const TRANSITIVE_AS2: u8 = 0x00;
    pub const TRANSITIVE_IPV4: u8 = 0x01;
    pub const TRANSITIVE_AS4: u8 = 0x02;
    pub const NON_TRANSITIVE_AS2: u8 = 0x40;
    pub const SUBTYPE_ROUTE_TARGET: u8 = 0x02;
    pub const SUBTYPE_ROUTE_ORIGIN: u8 = 0x03;
    pub const SUBTYPE_LINK_BANDWIDTH: u8 = 0x04;
}

/// An extended community (RFC 4360), typed where this crate knows the
/// type; everything else is kept as its 8 octets.
#[derive(Debug, Clone, Copy)]
pub enum ExtCommunity {
    RouteTarget(Administrator),
    RouteOrigin(Administrator),
    /// Link bandwidth (draft-ietf-idr-link-bandwidth): the AS and the
    /// bandwidth in octets per second, an IEEE 754 single. `transitive`
    /// selects type 0x00 (transitive) over the draft's 0x40.
    LinkBandwidth {
        asn: u16,
        bytes_per_sec: f32,
        transitive: bool,
    },
    Raw([u8; 8]),
}

/// Equality is by wire octets (so a NaN bandwidth equals itself, and
/// 0.0 and -0.0 differ), consistent with `Hash`.
impl PartialEq for ExtCommunity {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Eq for ExtCommunity {}

impl std::hash::Hash for ExtCommunity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.to_bytes().hash(state)
    }
}

impl ExtCommunity {
    pub fn from_bytes(b: [u8; 8]) -> Self {
        use ext_type::*;
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let admin = match b[0] {
            TRANSITIVE_AS2 => Some(Administrator::As2(u16_at(2), u32_at(4))),
            TRANSITIVE_IPV4 => Some(Administrator::Ipv4(Ipv4Addr::from(u32_at(2)), u16_at(6))),
            TRANSITIVE_AS4 => Some(Administrator::As4(u32_at(2), u16_at(6))),
            _ => None,
        };
        match (b[0], b[1], admin) {
            (_, SUBTYPE_ROUTE_TARGET, Some(a)) => ExtCommunity::RouteTarget(a),
            (_, SUBTYPE_ROUTE_ORIGIN, Some(a)) => ExtCommunity::RouteOrigin(a),
            (TRANSITIVE_AS2 | NON_TRANSITIVE_AS2, SUBTYPE_LINK_BANDWIDTH, _) => ExtCommunity::LinkBandwidth {
                asn: u16_at(2),
                bytes_per_sec: f32::from_bits(u32_at(4)),
                transitive: b[0] == TRANSITIVE_AS2,
            },
            _ => ExtCommunity::Raw(b),
        }
    }

    pub fn to_bytes(&self) -> [u8; 8] {
        use ext_type::*;
        let mut o = [0u8; 8];
        let admin = |o: &mut [u8; 8], a: &Administrator| match *a {
            Administrator::As2(asn, v) => {
                o[0] = TRANSITIVE_AS2;
                o[2..4].copy_from_slice(&asn.to_be_bytes());
                o[4..].copy_from_slice(&v.to_be_bytes());
            }
            Administrator::Ipv4(ip, v) => {
                o[0] = TRANSITIVE_IPV4;
                o[2..6].copy_from_slice(&ip.octets());
                o[6..].copy_from_slice(&v.to_be_bytes());
            }
            Administrator::As4(asn, v) => {
                o[0] = TRANSITIVE_AS4;
                o[2..6].copy_from_slice(&asn.to_be_bytes());
                o[6..].copy_from_slice(&v.to_be_bytes());
            }
        };
        match self {
            ExtCommunity::RouteTarget(a) => {
                admin(&mut o, a);
                o[1] = SUBTYPE_ROUTE_TARGET;
            }
            ExtCommunity::RouteOrigin(a) => {
                admin(&mut o, a);
                o[1] = SUBTYPE_ROUTE_ORIGIN;
            }
            ExtCommunity::LinkBandwidth { asn, bytes_per_sec, transitive } => {
                o[0] = if *transitive { TRANSITIVE_AS2 } else { NON_TRANSITIVE_AS2 };
                o[1] = SUBTYPE_LINK_BANDWIDTH;
                o[2..4].copy_from_slice(&asn.to_be_bytes());
                o[4..].copy_from_slice(&bytes_per_sec.to_bits().to_be_bytes());
            }
            ExtCommunity::Raw(b) => o = *b,
        }
        o
    }

    /// Whether the community is transitive across ASes (type bit 0x40 clear).
    pub fn is_transitive(&self) -> bool {
        self.to_bytes()[0] & 0x40 == 0
    }
}

impl fmt::Display for ExtCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtCommunity::RouteTarget(a) => write!(f, "rt {a}"),
            ExtCommunity::RouteOrigin(a) => write!(f, "soo {a}"),
            ExtCommunity::LinkBandwidth { asn, bytes_per_sec, transitive } => {
                let t = if *transitive { " transitive" } else { "" };
                write!(f, "lb {asn}:{bytes_per_sec}{t}")
            }
            ExtCommunity::Raw(b) => {
                f.write_str("0x")?;
                b.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
        }
    }
}
