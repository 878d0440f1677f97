//! Communities: standard (RFC 1997), extended (RFC 4360, with the
//! link-bandwidth community of draft-ietf-idr-link-bandwidth) and large
//! (RFC 8092), and the one text form of the standard and large ones that
//! every front end parses (CLI, Service annotations, the CRDs, whose schema
//! patterns are built from [`Community::WELL_KNOWN`] and the digit counts).

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

    /// The well-known communities by the names they are written as.
    pub const WELL_KNOWN: [(Community, &'static str); 9] = [
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
        Self::WELL_KNOWN.iter().find(|(c, _)| *c == self).map(|(_, n)| *n)
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

/// Most decimal digits in a half of a standard community's text.
pub const COMMUNITY_DIGITS: usize = 5;
/// Most decimal digits in a part of a large community's text.
pub const LARGE_COMMUNITY_DIGITS: usize = 10;

/// A part of a community's text: 1 to `max` ASCII digits (no sign, no
/// spaces), as a number that may still be out of range.
fn digits(s: &str, max: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Text that is not a standard community.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseCommunityError {
    /// Neither `ASN:VALUE` (1 to 5 digits each) nor a well-known name.
    #[error("{0:?} is not a community: want ASN:VALUE or a well-known name (no-export, no-advertise, ...)")]
    Malformed(String),
    /// `ASN:VALUE` with a half above 65535.
    #[error("{0:?}: both halves of a community must be at most 65535")]
    OutOfRange(String),
}

/// `ASN:VALUE` (each 0..=65535, 1 to 5 digits) or a well-known name exactly
/// as [`Community::WELL_KNOWN`] spells it (`no-export`, lower case).
impl FromStr for Community {
    type Err = ParseCommunityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((c, _)) = Self::WELL_KNOWN.iter().find(|(_, n)| *n == s) {
            return Ok(*c);
        }
        let malformed = || ParseCommunityError::Malformed(s.to_string());
        let (a, v) = s.split_once(':').ok_or_else(malformed)?;
        let (a, v) =
            (digits(a, COMMUNITY_DIGITS).ok_or_else(malformed)?, digits(v, COMMUNITY_DIGITS).ok_or_else(malformed)?);
        match (u16::try_from(a), u16::try_from(v)) {
            (Ok(a), Ok(v)) => Ok(Community::new(a, v)),
            _ => Err(ParseCommunityError::OutOfRange(s.to_string())),
        }
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

/// Text that is not a large community.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseLargeCommunityError {
    /// Not `GLOBAL:LOCAL1:LOCAL2` (1 to 10 digits each).
    #[error("{0:?} is not a large community: want GLOBAL:LOCAL1:LOCAL2")]
    Malformed(String),
    /// A part above 4294967295.
    #[error("{0:?}: every part of a large community must be at most 4294967295")]
    OutOfRange(String),
}

/// `GLOBAL:LOCAL1:LOCAL2`, each 0..=4294967295 in 1 to 10 digits.
impl FromStr for LargeCommunity {
    type Err = ParseLargeCommunityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || ParseLargeCommunityError::Malformed(s.to_string());
        let mut parts = s.split(':').map(|p| digits(p, LARGE_COMMUNITY_DIGITS));
        let (Some(Some(g)), Some(Some(l1)), Some(Some(l2)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        match (u32::try_from(g), u32::try_from(l1), u32::try_from(l2)) {
            (Ok(g), Ok(l1), Ok(l2)) => Ok(LargeCommunity::new(g, l1, l2)),
            _ => Err(ParseLargeCommunityError::OutOfRange(s.to_string())),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_from_text() {
        let c = |s: &str| s.parse::<Community>();
        assert_eq!(c("65001:100"), Ok(Community::new(65001, 100)));
        assert_eq!(c("0:0"), Ok(Community(0)));
        assert_eq!(c("65535:65535"), Ok(Community(u32::MAX)));
        assert_eq!(c("00001:1"), Ok(Community::new(1, 1)), "leading zeros, as the schema pattern allows");
        for (community, name) in Community::WELL_KNOWN {
            assert_eq!(c(name), Ok(community));
            assert_eq!(community.to_string(), name, "Display writes what FromStr reads");
        }
        assert_eq!(c("65535:666"), Ok(Community::BLACKHOLE));
        for bad in
            ["1", "1:", ":1", "a:b", "1:2:3", "+1:2", "1:-2", "NO-EXPORT", "no_export", " 1:2", "1:2 ", "", "123456:1"]
        {
            assert_eq!(c(bad), Err(ParseCommunityError::Malformed(bad.into())), "{bad:?}");
        }
        for big in ["65536:1", "1:65536", "99999:0"] {
            assert_eq!(c(big), Err(ParseCommunityError::OutOfRange(big.into())), "{big:?}");
        }
    }

    #[test]
    fn large_communities_from_text() {
        let c = |s: &str| s.parse::<LargeCommunity>();
        assert_eq!(c("4200000000:1:4294967295"), Ok(LargeCommunity::new(4_200_000_000, 1, u32::MAX)));
        assert_eq!(c("1:2:3").unwrap().to_string(), "1:2:3");
        for bad in ["1:2", "1:2:3:4", "a:1:1", "1::1", "+1:1:1", "no-export", "", " 1:2:3", "12345678901:1:1"] {
            assert_eq!(c(bad), Err(ParseLargeCommunityError::Malformed(bad.into())), "{bad:?}");
        }
        assert_eq!(c("4294967296:1:1"), Err(ParseLargeCommunityError::OutOfRange("4294967296:1:1".into())));
    }
}
