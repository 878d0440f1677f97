//! Capabilities advertised in OPEN (RFC 5492 and the RFCs per code).
//!
//! A capability is parsed into its typed form only when re-encoding that
//! form gives back the exact octets received; anything else (an unknown
//! code, a malformed or oddly padded value) is kept as
//! [`Capability::Unknown`], so OPEN messages always round-trip.

use bytes::{BufMut, BytesMut};
use nom::combinator::all_consuming;
use nom::multi::many0;
use nom::number::complete::{be_u16, be_u24, be_u8};
use nom::IResult;

use super::nlri::Family;

/// Capability codes.
pub mod code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const BGP_ROLE: u8 = 9;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const LONG_LIVED_GRACEFUL_RESTART: u8 = 71;
    pub const FQDN: u8 = 73;
}

/// Graceful restart capability (RFC 4724).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// Restart State bit: the sender has restarted.
    pub restarting: bool,
    /// Graceful Notification bit (RFC 8538).
    pub notification: bool,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    pub families: Vec<GrFamily>,
}

/// One family of the graceful restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrFamily {
    pub family: Family,
    /// Forwarding state preserved across the restart.
    pub forwarding_preserved: bool,
}

/// One family of the long-lived graceful restart capability (RFC 9494).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LlgrFamily {
    pub family: Family,
    pub forwarding_preserved: bool,
    /// Long-lived stale time in seconds (24 bits).
    pub stale_time: u32,
}

/// ADD-PATH send/receive mode (RFC 7911).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddPathMode {
    Receive = 1,
    Send = 2,
    Both = 3,
}

impl AddPathMode {
    pub fn can_send(self) -> bool {
        matches!(self, AddPathMode::Send | AddPathMode::Both)
    }
    pub fn can_receive(self) -> bool {
        matches!(self, AddPathMode::Receive | AddPathMode::Both)
    }
}

/// One family of the ADD-PATH capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddPathFamily {
    pub family: Family,
    pub mode: AddPathMode,
}

/// BGP role (RFC 9234).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Provider = 0,
    RouteServer = 1,
    RouteServerClient = 2,
    Customer = 3,
    Peer = 4,
}

/// One entry of the extended next hop capability (RFC 8950): NLRI of
/// `nlri` may be sent with a next hop of address family `next_hop_afi`.
/// The capability's NLRI SAFI is 16 bits wide; one above 255 (none is
/// assigned) keeps the capability raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtendedNextHop {
    pub nlri: Family,
    pub next_hop_afi: u16,
}

impl ExtendedNextHop {
    /// IPv4 unicast NLRI with an IPv6 next hop: the entry RFC 8950 is for.
    pub const IPV4_OVER_IPV6: ExtendedNextHop =
        ExtendedNextHop { nlri: Family::IPV4_UNICAST, next_hop_afi: super::nlri::AFI_IPV6 };
}

/// A capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    Multiprotocol(Family),
    RouteRefresh,
    /// Extended next hop encoding (RFC 8950).
    ExtendedNextHop(Vec<ExtendedNextHop>),
    ExtendedMessage,
    Role(Role),
    GracefulRestart(GracefulRestart),
    FourOctetAs(u32),
    AddPath(Vec<AddPathFamily>),
    EnhancedRouteRefresh,
    LongLivedGracefulRestart(Vec<LlgrFamily>),
    /// Hostname capability (draft-walton-bgp-hostname-capability).
    Fqdn {
        hostname: String,
        domain: String,
    },
    Unknown {
        code: u8,
        data: Vec<u8>,
    },
}

fn family(i: &[u8]) -> IResult<&[u8], Family> {
    let (i, afi) = be_u16(i)?;
    let (i, safi) = be_u8(i)?;
    Ok((i, Family::new(afi, safi)))
}

fn gr_family(i: &[u8]) -> IResult<&[u8], GrFamily> {
    let (i, family) = family(i)?;
    let (i, flags) = be_u8(i)?;
    Ok((i, GrFamily { family, forwarding_preserved: flags & 0x80 != 0 }))
}

fn llgr_family(i: &[u8]) -> IResult<&[u8], LlgrFamily> {
    let (i, family) = family(i)?;
    let (i, flags) = be_u8(i)?;
    let (i, stale_time) = be_u24(i)?;
    Ok((i, LlgrFamily { family, forwarding_preserved: flags & 0x80 != 0, stale_time }))
}

fn extended_next_hop(i: &[u8]) -> IResult<&[u8], ExtendedNextHop> {
    let (i, afi) = be_u16(i)?;
    let (i, safi) = be_u16(i)?;
    let (i, next_hop_afi) = be_u16(i)?;
    let Ok(safi) = u8::try_from(safi) else {
        return Err(nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Verify)));
    };
    Ok((i, ExtendedNextHop { nlri: Family::new(afi, safi), next_hop_afi }))
}

fn add_path_family(i: &[u8]) -> IResult<&[u8], AddPathFamily> {
    let (i, family) = family(i)?;
    let (i, m) = be_u8(i)?;
    let mode = match m {
        1 => AddPathMode::Receive,
        2 => AddPathMode::Send,
        3 => AddPathMode::Both,
        _ => return Err(nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Verify))),
    };
    Ok((i, AddPathFamily { family, mode }))
}

fn short_string(i: &[u8]) -> IResult<&[u8], String> {
    let (i, n) = be_u8(i)?;
    let (i, s) = nom::bytes::complete::take(n)(i)?;
    match std::str::from_utf8(s) {
        Ok(s) => Ok((i, s.to_string())),
        Err(_) => Err(nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Verify))),
    }
}

/// Whether an FQDN capability's two length-prefixed names fill it exactly.
fn fqdn_lengths_fit(v: &[u8]) -> bool {
    let Some((&h, rest)) = v.split_first() else { return false };
    let Some((&d, rest)) = rest.get(h as usize..).and_then(|r| r.split_first()) else { return false };
    rest.len() == d as usize
}

impl Capability {
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => code::MULTIPROTOCOL,
            Capability::RouteRefresh => code::ROUTE_REFRESH,
            Capability::ExtendedNextHop(_) => code::EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => code::EXTENDED_MESSAGE,
            Capability::Role(_) => code::BGP_ROLE,
            Capability::GracefulRestart(_) => code::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => code::FOUR_OCTET_AS,
            Capability::AddPath(_) => code::ADD_PATH,
            Capability::EnhancedRouteRefresh => code::ENHANCED_ROUTE_REFRESH,
            Capability::LongLivedGracefulRestart(_) => code::LONG_LIVED_GRACEFUL_RESTART,
            Capability::Fqdn { .. } => code::FQDN,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Why this capability is malformed, when it is one this crate knows
    /// whose value breaks its RFC's length rules (kept as
    /// [`Capability::Unknown`] by [`Capability::decode`]). RFC 4271
    /// section 6.2 answers a recognized but malformed optional parameter
    /// with OPEN Message Error / Unspecific, as FRR does for capabilities.
    pub fn malformed(&self) -> Option<&'static str> {
        let Capability::Unknown { code: c, data } = self else { return None };
        let n = data.len();
        let bad = match *c {
            code::MULTIPROTOCOL => n != 4,
            code::ROUTE_REFRESH | code::EXTENDED_MESSAGE | code::ENHANCED_ROUTE_REFRESH => n != 0,
            code::EXTENDED_NEXT_HOP => n == 0 || n % 6 != 0,
            code::BGP_ROLE => n != 1,
            code::GRACEFUL_RESTART => n < 2 || (n - 2) % 4 != 0,
            code::FOUR_OCTET_AS => n != 4,
            code::ADD_PATH => n == 0 || n % 4 != 0,
            code::LONG_LIVED_GRACEFUL_RESTART => n % 7 != 0,
            code::FQDN => !fqdn_lengths_fit(data),
            _ => false,
        };
        bad.then_some(match *c {
            code::MULTIPROTOCOL => "multiprotocol capability not 4 octets long",
            code::ROUTE_REFRESH => "route refresh capability not empty",
            code::EXTENDED_MESSAGE => "extended message capability not empty",
            code::ENHANCED_ROUTE_REFRESH => "enhanced route refresh capability not empty",
            code::EXTENDED_NEXT_HOP => "extended next hop capability not a list of 6-octet entries",
            code::BGP_ROLE => "BGP role capability not 1 octet long",
            code::GRACEFUL_RESTART => "graceful restart capability of a bad length",
            code::FOUR_OCTET_AS => "4-octet AS capability not 4 octets long",
            code::ADD_PATH => "ADD-PATH capability not a list of 4-octet entries",
            code::LONG_LIVED_GRACEFUL_RESTART => "long-lived graceful restart capability not a list of 7-octet entries",
            _ => "FQDN capability lengths overrun it",
        })
    }

    /// The family of a multiprotocol capability; also of one kept raw
    /// for a reserved octet that is not 0 (RFC 4760: ignored on receipt).
    pub fn multiprotocol_family(&self) -> Option<Family> {
        match self {
            Capability::Multiprotocol(f) => Some(*f),
            Capability::Unknown { code: code::MULTIPROTOCOL, data } => match data[..] {
                [a0, a1, _, safi] => Some(Family::new(u16::from_be_bytes([a0, a1]), safi)),
                _ => None,
            },
            _ => None,
        }
    }

    /// Interpret one capability value; see the module notes on exactness.
    pub fn decode(code: u8, value: &[u8]) -> Capability {
        let typed = Self::decode_typed(code, value);
        match typed {
            Some(c) if c.value_bytes() == value => c,
            _ => Capability::Unknown { code, data: value.to_vec() },
        }
    }

    fn decode_typed(c: u8, v: &[u8]) -> Option<Capability> {
        let ok = |r: IResult<&[u8], Capability>| r.ok().map(|(_, c)| c);
        match c {
            code::MULTIPROTOCOL => ok(all_consuming(|i| {
                let (i, afi) = be_u16(i)?;
                let (i, _reserved) = be_u8(i)?;
                let (i, safi) = be_u8(i)?;
                Ok((i, Capability::Multiprotocol(Family::new(afi, safi))))
            })(v)),
            code::ROUTE_REFRESH if v.is_empty() => Some(Capability::RouteRefresh),
            code::EXTENDED_NEXT_HOP if !v.is_empty() => ok(all_consuming(|i| {
                let (i, e) = many0(extended_next_hop)(i)?;
                Ok((i, Capability::ExtendedNextHop(e)))
            })(v)),
            code::EXTENDED_MESSAGE if v.is_empty() => Some(Capability::ExtendedMessage),
            code::ENHANCED_ROUTE_REFRESH if v.is_empty() => Some(Capability::EnhancedRouteRefresh),
            code::BGP_ROLE => match v {
                [0] => Some(Capability::Role(Role::Provider)),
                [1] => Some(Capability::Role(Role::RouteServer)),
                [2] => Some(Capability::Role(Role::RouteServerClient)),
                [3] => Some(Capability::Role(Role::Customer)),
                [4] => Some(Capability::Role(Role::Peer)),
                _ => None,
            },
            code::FOUR_OCTET_AS => {
                let b: [u8; 4] = v.try_into().ok()?;
                Some(Capability::FourOctetAs(u32::from_be_bytes(b)))
            }
            code::GRACEFUL_RESTART => ok(all_consuming(|i| {
                let (i, head) = be_u16(i)?;
                let (i, families) = many0(gr_family)(i)?;
                Ok((
                    i,
                    Capability::GracefulRestart(GracefulRestart {
                        restarting: head & 0x8000 != 0,
                        notification: head & 0x4000 != 0,
                        restart_time: head & 0x0FFF,
                        families,
                    }),
                ))
            })(v)),
            code::LONG_LIVED_GRACEFUL_RESTART => ok(all_consuming(|i| {
                let (i, f) = many0(llgr_family)(i)?;
                Ok((i, Capability::LongLivedGracefulRestart(f)))
            })(v)),
            code::ADD_PATH => ok(all_consuming(|i| {
                let (i, f) = many0(add_path_family)(i)?;
                Ok((i, Capability::AddPath(f)))
            })(v)),
            code::FQDN => ok(all_consuming(|i| {
                let (i, hostname) = short_string(i)?;
                let (i, domain) = short_string(i)?;
                Ok((i, Capability::Fqdn { hostname, domain }))
            })(v)),
            _ => None,
        }
    }

    /// The value octets (without code and length).
    pub fn value_bytes(&self) -> Vec<u8> {
        let mut o = BytesMut::new();
        self.encode_value(&mut o);
        o.to_vec()
    }

    fn encode_value(&self, o: &mut BytesMut) {
        let fam = |o: &mut BytesMut, f: Family| {
            o.put_u16(f.afi);
            o.put_u8(f.safi);
        };
        match self {
            Capability::Multiprotocol(f) => {
                o.put_u16(f.afi);
                o.put_u8(0);
                o.put_u8(f.safi);
            }
            Capability::RouteRefresh | Capability::ExtendedMessage | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop(es) => {
                for e in es {
                    o.put_u16(e.nlri.afi);
                    o.put_u16(e.nlri.safi.into());
                    o.put_u16(e.next_hop_afi);
                }
            }
            Capability::Role(r) => o.put_u8(*r as u8),
            Capability::FourOctetAs(a) => o.put_u32(*a),
            Capability::GracefulRestart(g) => {
                let mut head = g.restart_time & 0x0FFF;
                if g.restarting {
                    head |= 0x8000;
                }
                if g.notification {
                    head |= 0x4000;
                }
                o.put_u16(head);
                for f in &g.families {
                    fam(o, f.family);
                    o.put_u8(if f.forwarding_preserved { 0x80 } else { 0 });
                }
            }
            Capability::LongLivedGracefulRestart(fs) => {
                for f in fs {
                    fam(o, f.family);
                    o.put_u8(if f.forwarding_preserved { 0x80 } else { 0 });
                    o.put_slice(&(f.stale_time & 0xFF_FFFF).to_be_bytes()[1..]);
                }
            }
            Capability::AddPath(fs) => {
                for f in fs {
                    fam(o, f.family);
                    o.put_u8(f.mode as u8);
                }
            }
            Capability::Fqdn { hostname, domain } => {
                // Names longer than 255 octets are cut at a character boundary.
                for s in [hostname, domain] {
                    let mut end = s.len().min(255);
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    o.put_u8(end as u8);
                    o.put_slice(&s.as_bytes()[..end]);
                }
            }
            Capability::Unknown { data, .. } => o.put_slice(data),
        }
    }

    /// Encoded size, code and length included.
    pub fn encoded_len(&self) -> usize {
        2 + self.value_bytes().len()
    }

    /// Append code, length and value; a value longer than 255 octets
    /// does not fit the capability's length field.
    pub fn encode(&self, o: &mut BytesMut) -> Result<(), super::EncodeError> {
        let v = self.value_bytes();
        let len = u8::try_from(v.len())
            .map_err(|_| super::EncodeError::FieldTooLong { what: "capability value", len: v.len() })?;
        o.put_u8(self.code());
        o.put_u8(len);
        o.put_slice(&v);
        Ok(())
    }
}
