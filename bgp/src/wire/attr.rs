//! Path attributes (RFC 4271 section 4.3 and the RFCs that added types),
//! with RFC 7606 revised error handling.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u8};
use nom::IResult;

use super::aspath::{AsPath, AS_TRANS};
use super::community::{Community, ExtCommunity, LargeCommunity};
use super::error::{AttrError, ErrorAction};
use super::error_code::UpdateError;
use super::nlri::{decode_prefixes, Family, Nlri};
use super::Negotiated;

/// Attribute flag bits.
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes.
pub mod type_code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;
    pub const OTC: u8 = 35;
}

/// ORIGIN values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// AGGREGATOR / AS4_AGGREGATOR value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// The next hop of an MP_REACH_NLRI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHop {
    V4(Ipv4Addr),
    /// A global IPv6 address, and the link-local one when 32 octets were sent.
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    fn encoded_len(&self) -> usize {
        match self {
            NextHop::V4(_) => 4,
            NextHop::V6 { link_local: None, .. } => 16,
            NextHop::V6 { link_local: Some(_), .. } => 32,
        }
    }

    /// Length octet and address(es), as in MP_REACH_NLRI.
    pub(crate) fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.encoded_len() as u8);
        match self {
            NextHop::V4(a) => out.put_slice(&a.octets()),
            NextHop::V6 { global, link_local } => {
                out.put_slice(&global.octets());
                if let Some(l) = link_local {
                    out.put_slice(&l.octets());
                }
            }
        }
    }

    fn decode(b: &[u8]) -> Option<Self> {
        Some(match b.len() {
            4 => NextHop::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?)),
            16 => NextHop::V6 { global: Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?), link_local: None },
            32 => NextHop::V6 {
                global: Ipv6Addr::from(<[u8; 16]>::try_from(&b[..16]).ok()?),
                link_local: Some(Ipv6Addr::from(<[u8; 16]>::try_from(&b[16..]).ok()?)),
            },
            _ => return None,
        })
    }
}

/// The NLRI of an MP attribute: parsed for the families this crate
/// knows, kept raw (with the raw next hop) for the others.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MpNlri {
    Unicast(Vec<Nlri>),
    Raw(Vec<u8>),
}

impl MpNlri {
    /// The parsed prefixes, empty for raw NLRI.
    pub fn prefixes(&self) -> &[Nlri] {
        match self {
            MpNlri::Unicast(v) => v,
            MpNlri::Raw(_) => &[],
        }
    }

    fn encoded_len(&self, add_path: bool) -> usize {
        match self {
            MpNlri::Unicast(v) => v.iter().map(|n| n.encoded_len(add_path)).sum(),
            MpNlri::Raw(b) => b.len(),
        }
    }

    fn encode(&self, add_path: bool, out: &mut BytesMut) {
        match self {
            MpNlri::Unicast(v) => v.iter().for_each(|n| n.encode(add_path, out)),
            MpNlri::Raw(b) => out.put_slice(b),
        }
    }
}

/// MP_REACH_NLRI (RFC 4760).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: MpNextHop,
    pub nlri: MpNlri,
}

/// A typed next hop for known families, raw octets otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    Typed(NextHop),
    Raw(Vec<u8>),
}

/// MP_UNREACH_NLRI (RFC 4760). An empty one is an End-of-RIB marker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: MpNlri,
}

/// The value of a path attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttrValue {
    Origin(Origin),
    AsPath(AsPath),
    NextHop(Ipv4Addr),
    Med(u32),
    LocalPref(u32),
    AtomicAggregate,
    Aggregator(Aggregator),
    Communities(Vec<Community>),
    OriginatorId(Ipv4Addr),
    ClusterList(Vec<Ipv4Addr>),
    MpReach(MpReach),
    MpUnreach(MpUnreach),
    ExtCommunities(Vec<ExtCommunity>),
    As4Path(AsPath),
    As4Aggregator(Aggregator),
    LargeCommunities(Vec<LargeCommunity>),
    /// Only to Customer (RFC 9234).
    Otc(u32),
    /// An attribute this crate does not interpret, kept as sent.
    Unknown {
        type_code: u8,
        data: Vec<u8>,
    },
}

impl AttrValue {
    pub fn type_code(&self) -> u8 {
        use type_code::*;
        match self {
            AttrValue::Origin(_) => ORIGIN,
            AttrValue::AsPath(_) => AS_PATH,
            AttrValue::NextHop(_) => NEXT_HOP,
            AttrValue::Med(_) => MULTI_EXIT_DISC,
            AttrValue::LocalPref(_) => LOCAL_PREF,
            AttrValue::AtomicAggregate => ATOMIC_AGGREGATE,
            AttrValue::Aggregator(_) => AGGREGATOR,
            AttrValue::Communities(_) => COMMUNITIES,
            AttrValue::OriginatorId(_) => ORIGINATOR_ID,
            AttrValue::ClusterList(_) => CLUSTER_LIST,
            AttrValue::MpReach(_) => MP_REACH_NLRI,
            AttrValue::MpUnreach(_) => MP_UNREACH_NLRI,
            AttrValue::ExtCommunities(_) => EXTENDED_COMMUNITIES,
            AttrValue::As4Path(_) => AS4_PATH,
            AttrValue::As4Aggregator(_) => AS4_AGGREGATOR,
            AttrValue::LargeCommunities(_) => LARGE_COMMUNITIES,
            AttrValue::Otc(_) => OTC,
            AttrValue::Unknown { type_code, .. } => *type_code,
        }
    }
}

/// The optional and transitive bits a known attribute must carry, or
/// `None` for an unknown type.
pub fn expected_flags(type_code: u8) -> Option<u8> {
    use flags::*;
    use type_code::*;
    Some(match type_code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => TRANSITIVE,
        MULTI_EXIT_DISC | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => OPTIONAL,
        AGGREGATOR | COMMUNITIES | EXTENDED_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR | LARGE_COMMUNITIES | OTC => {
            OPTIONAL | TRANSITIVE
        }
        _ => return None,
    })
}

/// A path attribute: its flags octet as sent (so the extended-length and
/// partial bits survive a round trip) and its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathAttr {
    pub flags: u8,
    pub value: AttrValue,
}

/// The path attributes of an UPDATE, in the order received, shared:
/// cloning one is a reference-count increment, and a decoder with an
/// [`AttrMemo`](super::AttrMemo) hands out one allocation for every UPDATE
/// that carries the same attribute octets. Reads go through `Deref` to
/// the `Vec`; [`Attrs::make_mut`] gives a private copy to change. An
/// empty list allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct Attrs(Option<Arc<Vec<PathAttr>>>);

static NO_ATTRS: Vec<PathAttr> = Vec::new();

impl Attrs {
    pub fn new(list: Vec<PathAttr>) -> Self {
        Attrs((!list.is_empty()).then(|| Arc::new(list)))
    }

    /// The list to change, copied first if it is shared.
    pub fn make_mut(&mut self) -> &mut Vec<PathAttr> {
        Arc::make_mut(self.0.get_or_insert_with(Default::default))
    }

    /// Whether `a` and `b` are one allocation (not merely equal; two
    /// empty lists are the same).
    pub fn same(a: &Attrs, b: &Attrs) -> bool {
        a.addr() == b.addr()
    }

    /// The address of the shared list (0 for an empty one that allocated
    /// nothing): equal for [`Attrs::same`] lists, and unique among lists
    /// alive at the same time.
    pub fn addr(&self) -> usize {
        self.0.as_ref().map_or(0, |a| Arc::as_ptr(a) as usize)
    }
}

impl PartialEq for Attrs {
    fn eq(&self, other: &Attrs) -> bool {
        Attrs::same(self, other) || **self == **other
    }
}

impl Eq for Attrs {}

impl std::hash::Hash for Attrs {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl std::ops::Deref for Attrs {
    type Target = Vec<PathAttr>;
    fn deref(&self) -> &Vec<PathAttr> {
        self.0.as_deref().unwrap_or(&NO_ATTRS)
    }
}

impl From<Vec<PathAttr>> for Attrs {
    fn from(list: Vec<PathAttr>) -> Self {
        Attrs::new(list)
    }
}

impl FromIterator<PathAttr> for Attrs {
    fn from_iter<I: IntoIterator<Item = PathAttr>>(iter: I) -> Self {
        Attrs::new(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Attrs {
    type Item = &'a PathAttr;
    type IntoIter = std::slice::Iter<'a, PathAttr>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PathAttr {
    /// An attribute with the standard flags for its type (extended length
    /// is added at encode time when the value needs it).
    pub fn new(value: AttrValue) -> Self {
        let flags = expected_flags(value.type_code()).unwrap_or(flags::OPTIONAL | flags::TRANSITIVE);
        PathAttr { flags, value }
    }

    pub fn type_code(&self) -> u8 {
        self.value.type_code()
    }

    /// The attribute as a speaker passes it on to another peer: unknown
    /// optional transitive attributes get the partial bit, unknown
    /// non-transitive ones are dropped (RFC 4271 section 5).
    pub fn for_propagation(&self) -> Option<PathAttr> {
        match &self.value {
            AttrValue::Unknown { .. } if self.flags & flags::TRANSITIVE == 0 => None,
            AttrValue::Unknown { .. } => {
                Some(PathAttr { flags: self.flags | flags::PARTIAL, value: self.value.clone() })
            }
            _ => Some(self.clone()),
        }
    }

    fn value_len(&self, ctx: &Negotiated) -> usize {
        let as_w = if ctx.four_octet_as { 4 } else { 2 };
        match &self.value {
            AttrValue::Origin(_) => 1,
            AttrValue::AsPath(p) => p.encoded_len(ctx.four_octet_as),
            AttrValue::NextHop(_) | AttrValue::Med(_) | AttrValue::LocalPref(_) => 4,
            AttrValue::AtomicAggregate => 0,
            AttrValue::Aggregator(_) => as_w + 4,
            AttrValue::Communities(c) => 4 * c.len(),
            AttrValue::OriginatorId(_) | AttrValue::Otc(_) => 4,
            AttrValue::ClusterList(c) => 4 * c.len(),
            AttrValue::MpReach(m) => {
                let nh = match &m.next_hop {
                    MpNextHop::Typed(n) => n.encoded_len(),
                    MpNextHop::Raw(b) => b.len(),
                };
                3 + 1 + nh + 1 + m.nlri.encoded_len(ctx.add_path(m.family))
            }
            AttrValue::MpUnreach(m) => 3 + m.withdrawn.encoded_len(ctx.add_path(m.family)),
            AttrValue::ExtCommunities(c) => 8 * c.len(),
            AttrValue::As4Path(p) => p.encoded_len(true),
            AttrValue::As4Aggregator(_) => 8,
            AttrValue::LargeCommunities(c) => 12 * c.len(),
            AttrValue::Unknown { data, .. } => data.len(),
        }
    }

    /// Encoded size in octets, header included.
    pub fn encoded_len(&self, ctx: &Negotiated) -> usize {
        let v = self.value_len(ctx);
        if self.flags & flags::EXTENDED_LENGTH != 0 || v > 255 {
            4 + v
        } else {
            3 + v
        }
    }

    /// Append the attribute. A value longer than 255 octets sets the
    /// extended-length flag; a set flag is honoured even when not needed.
    pub fn encode(&self, ctx: &Negotiated, out: &mut BytesMut) -> Result<(), super::EncodeError> {
        let v = self.value_len(ctx);
        if v > u16::MAX as usize {
            return Err(super::EncodeError::FieldTooLong { what: "path attribute", len: v });
        }
        let ext = self.flags & flags::EXTENDED_LENGTH != 0 || v > 255;
        let f = if ext { self.flags | flags::EXTENDED_LENGTH } else { self.flags };
        out.reserve(4 + v);
        out.put_u8(f);
        out.put_u8(self.type_code());
        if ext {
            out.put_u16(v as u16);
        } else {
            out.put_u8(v as u8);
        }
        match &self.value {
            AttrValue::Origin(o) => out.put_u8(*o as u8),
            AttrValue::AsPath(p) => p.encode(ctx.four_octet_as, out),
            AttrValue::NextHop(a) | AttrValue::OriginatorId(a) => out.put_slice(&a.octets()),
            AttrValue::Med(v) | AttrValue::LocalPref(v) | AttrValue::Otc(v) => out.put_u32(*v),
            AttrValue::AtomicAggregate => {}
            AttrValue::Aggregator(a) => {
                if ctx.four_octet_as {
                    out.put_u32(a.asn);
                } else {
                    out.put_u16(u16::try_from(a.asn).unwrap_or(AS_TRANS));
                }
                out.put_slice(&a.address.octets());
            }
            AttrValue::Communities(c) => c.iter().for_each(|c| out.put_u32(c.0)),
            AttrValue::ClusterList(c) => c.iter().for_each(|a| out.put_slice(&a.octets())),
            AttrValue::MpReach(m) => {
                out.put_u16(m.family.afi);
                out.put_u8(m.family.safi);
                match &m.next_hop {
                    MpNextHop::Typed(n) => n.encode(out),
                    MpNextHop::Raw(b) => {
                        let l = u8::try_from(b.len()).map_err(|_| super::EncodeError::FieldTooLong {
                            what: "MP_REACH_NLRI next hop",
                            len: b.len(),
                        })?;
                        out.put_u8(l);
                        out.put_slice(b);
                    }
                }
                out.put_u8(0); // reserved (was: number of SNPAs)
                m.nlri.encode(ctx.add_path(m.family), out);
            }
            AttrValue::MpUnreach(m) => {
                out.put_u16(m.family.afi);
                out.put_u8(m.family.safi);
                m.withdrawn.encode(ctx.add_path(m.family), out);
            }
            AttrValue::ExtCommunities(c) => c.iter().for_each(|c| out.put_slice(&c.to_bytes())),
            AttrValue::As4Path(p) => p.encode(true, out),
            AttrValue::As4Aggregator(a) => {
                out.put_u32(a.asn);
                out.put_slice(&a.address.octets());
            }
            AttrValue::LargeCommunities(c) => c.iter().for_each(|c| out.put_slice(&c.to_bytes())),
            AttrValue::Unknown { data, .. } => out.put_slice(data),
        }
        Ok(())
    }
}

/// One raw attribute split off the attribute list.
pub(crate) struct RawAttr<'a> {
    pub flags: u8,
    pub type_code: u8,
    pub value: &'a [u8],
    /// The whole attribute, header included (NOTIFICATION data).
    pub whole: &'a [u8],
}

/// Split the next attribute off `input`. `None` when the header or the
/// value runs past the end of the attribute list.
pub(crate) fn split_attr(input: &[u8]) -> Option<(RawAttr<'_>, &[u8])> {
    fn header(i: &[u8]) -> IResult<&[u8], (u8, u8, usize)> {
        let (i, f) = be_u8(i)?;
        let (i, t) = be_u8(i)?;
        let (i, len) = if f & flags::EXTENDED_LENGTH != 0 {
            let (i, l) = be_u16(i)?;
            (i, l as usize)
        } else {
            let (i, l) = be_u8(i)?;
            (i, l as usize)
        };
        Ok((i, (f, t, len)))
    }
    let (rest, (f, t, len)) = header(input).ok()?;
    let (rest, value) = take::<_, _, nom::error::Error<&[u8]>>(len)(rest).ok()?;
    let whole = &input[..input.len() - rest.len()];
    Some((RawAttr { flags: f, type_code: t, value, whole }, rest))
}

fn ipv4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn u32_at(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The RFC 7606 action for a malformed attribute of this type.
fn action_for(type_code: u8) -> ErrorAction {
    use type_code::*;
    match type_code {
        MP_REACH_NLRI | MP_UNREACH_NLRI => ErrorAction::SessionReset,
        ATOMIC_AGGREGATE | AGGREGATOR | AS4_PATH | AS4_AGGREGATOR => ErrorAction::AttributeDiscard,
        _ => ErrorAction::TreatAsWithdraw,
    }
}

impl RawAttr<'_> {
    fn error(&self, subcode: UpdateError, reason: &'static str) -> AttrError {
        AttrError {
            type_code: self.type_code,
            subcode,
            data: self.whole.to_vec(),
            action: action_for(self.type_code),
            reason,
        }
    }

    /// Interpret the attribute. Errors carry their RFC 7606 action.
    pub(crate) fn parse(&self, ctx: &Negotiated) -> Result<PathAttr, AttrError> {
        use type_code::*;
        let v = self.value;
        let Some(expected) = expected_flags(self.type_code) else {
            if self.flags & flags::OPTIONAL == 0 {
                return Err(AttrError {
                    action: ErrorAction::SessionReset,
                    ..self.error(UpdateError::UnrecognizedWellKnownAttribute, "unrecognized well-known attribute")
                });
            }
            let value = AttrValue::Unknown { type_code: self.type_code, data: v.to_vec() };
            return Ok(PathAttr { flags: self.flags, value });
        };
        if self.flags & (flags::OPTIONAL | flags::TRANSITIVE) != expected {
            return Err(self.error(UpdateError::AttributeFlags, "optional/transitive flags do not match the type"));
        }
        let len_err = |what| Err(self.error(UpdateError::AttributeLength, what));
        let as_w = if ctx.four_octet_as { 4 } else { 2 };
        let value = match self.type_code {
            ORIGIN => match v {
                [0] => AttrValue::Origin(Origin::Igp),
                [1] => AttrValue::Origin(Origin::Egp),
                [2] => AttrValue::Origin(Origin::Incomplete),
                [_] => return Err(self.error(UpdateError::InvalidOrigin, "ORIGIN value out of range")),
                _ => return len_err("ORIGIN length is not 1"),
            },
            AS_PATH => match AsPath::decode(v, ctx.four_octet_as) {
                Some(p) => AttrValue::AsPath(p),
                None => return Err(self.error(UpdateError::MalformedAsPath, "malformed AS_PATH")),
            },
            AS4_PATH => match AsPath::decode(v, true) {
                Some(p) => AttrValue::As4Path(p),
                None => return Err(self.error(UpdateError::OptionalAttribute, "malformed AS4_PATH")),
            },
            NEXT_HOP if v.len() == 4 => AttrValue::NextHop(ipv4(v)),
            NEXT_HOP => return len_err("NEXT_HOP length is not 4"),
            MULTI_EXIT_DISC if v.len() == 4 => AttrValue::Med(u32_at(v)),
            MULTI_EXIT_DISC => return len_err("MULTI_EXIT_DISC length is not 4"),
            LOCAL_PREF if v.len() == 4 => AttrValue::LocalPref(u32_at(v)),
            LOCAL_PREF => return len_err("LOCAL_PREF length is not 4"),
            ATOMIC_AGGREGATE if v.is_empty() => AttrValue::AtomicAggregate,
            ATOMIC_AGGREGATE => return len_err("ATOMIC_AGGREGATE length is not 0"),
            AGGREGATOR if v.len() == as_w + 4 => {
                let asn = if as_w == 4 { u32_at(v) } else { u16::from_be_bytes([v[0], v[1]]) as u32 };
                AttrValue::Aggregator(Aggregator { asn, address: ipv4(&v[as_w..]) })
            }
            AGGREGATOR => return len_err("AGGREGATOR length does not match the AS size"),
            AS4_AGGREGATOR if v.len() == 8 => {
                AttrValue::As4Aggregator(Aggregator { asn: u32_at(v), address: ipv4(&v[4..]) })
            }
            AS4_AGGREGATOR => return len_err("AS4_AGGREGATOR length is not 8"),
            COMMUNITIES if !v.is_empty() && v.len() % 4 == 0 => {
                AttrValue::Communities(v.chunks_exact(4).map(|c| Community(u32_at(c))).collect())
            }
            COMMUNITIES => return len_err("COMMUNITIES length is not a non-zero multiple of 4"),
            ORIGINATOR_ID if v.len() == 4 => AttrValue::OriginatorId(ipv4(v)),
            ORIGINATOR_ID => return len_err("ORIGINATOR_ID length is not 4"),
            CLUSTER_LIST if !v.is_empty() && v.len() % 4 == 0 => {
                AttrValue::ClusterList(v.chunks_exact(4).map(ipv4).collect())
            }
            CLUSTER_LIST => return len_err("CLUSTER_LIST length is not a non-zero multiple of 4"),
            EXTENDED_COMMUNITIES if !v.is_empty() && v.len() % 8 == 0 => AttrValue::ExtCommunities(
                v.chunks_exact(8).map(|c| ExtCommunity::from_bytes(c.try_into().expect("chunk of 8"))).collect(),
            ),
            EXTENDED_COMMUNITIES => return len_err("EXTENDED_COMMUNITIES length is not a non-zero multiple of 8"),
            LARGE_COMMUNITIES if !v.is_empty() && v.len() % 12 == 0 => AttrValue::LargeCommunities(
                v.chunks_exact(12).map(|c| LargeCommunity::from_bytes(c.try_into().expect("chunk of 12"))).collect(),
            ),
            LARGE_COMMUNITIES => return len_err("LARGE_COMMUNITIES length is not a non-zero multiple of 12"),
            OTC if v.len() == 4 => AttrValue::Otc(u32_at(v)),
            OTC => return len_err("OTC length is not 4"),
            MP_REACH_NLRI => AttrValue::MpReach(self.parse_mp_reach(ctx)?),
            MP_UNREACH_NLRI => AttrValue::MpUnreach(self.parse_mp_unreach(ctx)?),
            _ => unreachable!("expected_flags covers exactly the typed attributes"),
        };
        Ok(PathAttr { flags: self.flags, value })
    }

    fn parse_mp_reach(&self, ctx: &Negotiated) -> Result<MpReach, AttrError> {
        fn head(i: &[u8]) -> IResult<&[u8], (u16, u8, &[u8], u8)> {
            let (i, afi) = be_u16(i)?;
            let (i, safi) = be_u8(i)?;
            let (i, nh_len) = be_u8(i)?;
            let (i, nh) = take(nh_len)(i)?;
            let (i, reserved) = be_u8(i)?;
            Ok((i, (afi, safi, nh, reserved)))
        }
        let malformed = |r| self.error(UpdateError::OptionalAttribute, r);
        // The reserved octet "SHOULD be ignored upon receipt" (RFC 4760); it is
        // re-encoded as zero.
        let (rest, (afi, safi, nh, _reserved)) = head(self.value).map_err(|_| malformed("MP_REACH_NLRI truncated"))?;
        let family = Family::new(afi, safi);
        if !family.is_known() {
            // Keep what we cannot interpret, exactly as sent.
            return Ok(MpReach { family, next_hop: MpNextHop::Raw(nh.to_vec()), nlri: MpNlri::Raw(rest.to_vec()) });
        }
        let next_hop = NextHop::decode(nh).ok_or_else(|| malformed("MP_REACH_NLRI next hop length is invalid"))?;
        let mut nlri = Vec::new();
        decode_prefixes(rest, afi, ctx.add_path(family), &mut nlri)
            .map_err(|e| self.error(UpdateError::OptionalAttribute, e.reason()))?;
        Ok(MpReach { family, next_hop: MpNextHop::Typed(next_hop), nlri: MpNlri::Unicast(nlri) })
    }

    fn parse_mp_unreach(&self, ctx: &Negotiated) -> Result<MpUnreach, AttrError> {
        let v = self.value;
        if v.len() < 3 {
            return Err(self.error(UpdateError::OptionalAttribute, "MP_UNREACH_NLRI truncated"));
        }
        let family = Family::new(u16::from_be_bytes([v[0], v[1]]), v[2]);
        if !family.is_known() {
            return Ok(MpUnreach { family, withdrawn: MpNlri::Raw(v[3..].to_vec()) });
        }
        let mut nlri = Vec::new();
        decode_prefixes(&v[3..], family.afi, ctx.add_path(family), &mut nlri)
            .map_err(|e| self.error(UpdateError::OptionalAttribute, e.reason()))?;
        Ok(MpUnreach { family, withdrawn: MpNlri::Unicast(nlri) })
    }
}
