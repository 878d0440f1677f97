//! UPDATE messages (RFC 4271 section 4.3) with RFC 7606 error handling,
//! and End-of-RIB markers (RFC 4724).

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::aspath::AsPath;
use rustc_hash::FxHashMap;

use super::attr::{type_code, AttrValue, Attrs, MpNlri, MpReach, MpUnreach, Origin, PathAttr, RawAttr};
use super::community::{Community, ExtCommunity, LargeCommunity};
use super::error::{AttrError, DecodeError, EncodeError, ErrorAction};
use super::error_code::UpdateError;
use super::nlri::{decode_prefixes, Family, Nlri, AFI_IPV4};
use super::Negotiated;

/// An UPDATE. `withdrawn` and `nlri` are the IPv4 unicast fields of the
/// message itself; other families travel in MP_REACH_NLRI /
/// MP_UNREACH_NLRI inside `attrs`. [`Update::announced`] and
/// [`Update::withdrawals`] give both together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Nlri>,
    pub attrs: Attrs,
    pub nlri: Vec<Nlri>,
    /// Malformed attributes RFC 7606 lets the session survive: each with
    /// its action (treat-as-withdraw or attribute-discard). Discarded
    /// attributes are not in `attrs`. Never encoded.
    pub attr_errors: Vec<AttrError>,
}

impl Update {
    /// The End-of-RIB marker of a family (RFC 4724 section 2): an empty
    /// UPDATE for IPv4 unicast, an empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(family: Family) -> Update {
        if family == Family::IPV4_UNICAST {
            return Update::default();
        }
        let unreach = MpUnreach { family, withdrawn: MpNlri::Unicast(vec![]) };
        Update { attrs: vec![PathAttr::new(AttrValue::MpUnreach(unreach))].into(), ..Update::default() }
    }

    /// The family whose End-of-RIB this UPDATE is, if it is one.
    pub fn as_end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || !self.attr_errors.is_empty() {
            return None;
        }
        match self.attrs.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [PathAttr { value: AttrValue::MpUnreach(m), .. }] if m.withdrawn.encoded_is_empty() => Some(m.family),
            _ => None,
        }
    }

    /// Whether RFC 7606 says to treat every route of this UPDATE as withdrawn.
    pub fn is_treat_as_withdraw(&self) -> bool {
        self.attr_errors.iter().any(|e| e.action == ErrorAction::TreatAsWithdraw)
    }

    /// The first attribute of a type.
    pub fn attr(&self, type_code: u8) -> Option<&AttrValue> {
        self.attrs.iter().map(|a| &a.value).find(|v| v.type_code() == type_code)
    }

    pub fn origin(&self) -> Option<Origin> {
        match self.attr(type_code::ORIGIN)? {
            AttrValue::Origin(o) => Some(*o),
            _ => None,
        }
    }

    pub fn as_path(&self) -> Option<&AsPath> {
        match self.attr(type_code::AS_PATH)? {
            AttrValue::AsPath(p) => Some(p),
            _ => None,
        }
    }

    pub fn next_hop(&self) -> Option<Ipv4Addr> {
        match self.attr(type_code::NEXT_HOP)? {
            AttrValue::NextHop(a) => Some(*a),
            _ => None,
        }
    }

    pub fn med(&self) -> Option<u32> {
        match self.attr(type_code::MULTI_EXIT_DISC)? {
            AttrValue::Med(v) => Some(*v),
            _ => None,
        }
    }

    pub fn local_pref(&self) -> Option<u32> {
        match self.attr(type_code::LOCAL_PREF)? {
            AttrValue::LocalPref(v) => Some(*v),
            _ => None,
        }
    }

    pub fn communities(&self) -> &[Community] {
        match self.attr(type_code::COMMUNITIES) {
            Some(AttrValue::Communities(c)) => c,
            _ => &[],
        }
    }

    pub fn ext_communities(&self) -> &[ExtCommunity] {
        match self.attr(type_code::EXTENDED_COMMUNITIES) {
            Some(AttrValue::ExtCommunities(c)) => c,
            _ => &[],
        }
    }

    pub fn large_communities(&self) -> &[LargeCommunity] {
        match self.attr(type_code::LARGE_COMMUNITIES) {
            Some(AttrValue::LargeCommunities(c)) => c,
            _ => &[],
        }
    }

    pub fn mp_reach(&self) -> Option<&MpReach> {
        match self.attr(type_code::MP_REACH_NLRI)? {
            AttrValue::MpReach(m) => Some(m),
            _ => None,
        }
    }

    pub fn mp_unreach(&self) -> Option<&MpUnreach> {
        match self.attr(type_code::MP_UNREACH_NLRI)? {
            AttrValue::MpUnreach(m) => Some(m),
            _ => None,
        }
    }

    /// Every prefix announced: the NLRI field, then MP_REACH_NLRI.
    pub fn announced(&self) -> impl Iterator<Item = &Nlri> {
        let mp = self.mp_reach().map(|m| m.nlri.prefixes()).unwrap_or(&[]);
        self.nlri.iter().chain(mp)
    }

    /// Every prefix withdrawn: the withdrawn field, then MP_UNREACH_NLRI.
    pub fn withdrawals(&self) -> impl Iterator<Item = &Nlri> {
        let mp = self.mp_unreach().map(|m| m.withdrawn.prefixes()).unwrap_or(&[]);
        self.withdrawn.iter().chain(mp)
    }

    /// Decode an UPDATE body (the message after the 19-octet header).
    pub fn decode_body(body: &[u8], ctx: &Negotiated) -> Result<Update, DecodeError> {
        Update::decode_body_with(body, ctx, None)
    }

    /// [`Update::decode_body`], taking the attribute list from `memo` when
    /// these attribute octets were decoded before, and remembering them
    /// there otherwise.
    pub fn decode_body_with(body: &[u8], ctx: &Negotiated, memo: Option<&mut AttrMemo>) -> Result<Update, DecodeError> {
        let list_err = |reason| DecodeError::MalformedAttributeList { reason };
        let net_err = |e: super::nlri::NlriError| DecodeError::InvalidNetworkField { reason: e.reason() };
        let [w0, w1, rest @ ..] = body else { return Err(list_err("UPDATE shorter than its length fields")) };
        let wlen = u16::from_be_bytes([*w0, *w1]) as usize;
        let withdrawn_raw = rest.get(..wlen).ok_or(list_err("withdrawn routes length overruns the message"))?;
        let [a0, a1, rest @ ..] = &rest[wlen..] else {
            return Err(list_err("withdrawn routes length overruns the message"));
        };
        let alen = u16::from_be_bytes([*a0, *a1]) as usize;
        let attrs_raw = rest.get(..alen).ok_or(list_err("total path attribute length overruns the message"))?;
        let nlri_raw = &rest[alen..];

        let v4_add_path = ctx.add_path(Family::IPV4_UNICAST);
        let mut update = Update::default();
        decode_prefixes(withdrawn_raw, AFI_IPV4, v4_add_path, &mut update.withdrawn).map_err(net_err)?;
        decode_prefixes(nlri_raw, AFI_IPV4, v4_add_path, &mut update.nlri).map_err(net_err)?;
        match memo {
            Some(memo) => match memo.get(attrs_raw) {
                Some(a) => update.attrs = a.clone(),
                None => {
                    update.decode_attrs(attrs_raw, ctx)?;
                    memo.remember(attrs_raw, &update);
                }
            },
            None => update.decode_attrs(attrs_raw, ctx)?,
        }
        update.check_mandatory();
        Ok(update)
    }

    fn decode_attrs(&mut self, list: &[u8], ctx: &Negotiated) -> Result<(), DecodeError> {
        // Nearly every attribute takes 4 octets or more.
        let mut attrs = Vec::with_capacity((list.len() / 4).min(16));
        let r = self.decode_attr_list(list, ctx, &mut attrs);
        self.attrs = attrs.into();
        r
    }

    fn decode_attr_list(
        &mut self,
        mut list: &[u8],
        ctx: &Negotiated,
        attrs: &mut Vec<PathAttr>,
    ) -> Result<(), DecodeError> {
        let mut seen = [false; 256];
        while !list.is_empty() {
            let Some((raw, rest)) = super::attr::split_attr(list) else {
                // RFC 7606 section 4: an attribute that runs past the list
                // leaves the rest unparseable; the NLRI can still be found.
                self.attr_errors.push(AttrError {
                    type_code: list.get(1).copied().unwrap_or(0),
                    subcode: UpdateError::MalformedAttributeList,
                    data: vec![],
                    action: ErrorAction::TreatAsWithdraw,
                    reason: "attribute runs past the end of the attribute list",
                });
                return Ok(());
            };
            list = rest;
            let t = raw.type_code;
            if std::mem::replace(&mut seen[t as usize], true) {
                if t == type_code::MP_REACH_NLRI || t == type_code::MP_UNREACH_NLRI {
                    return Err(DecodeError::MalformedAttributeList { reason: "MP_REACH/MP_UNREACH_NLRI repeated" });
                }
                self.attr_errors.push(discarded_duplicate(&raw));
                continue;
            }
            match raw.parse(ctx) {
                Ok(a) => attrs.push(a),
                Err(e) if matches!(e.action, ErrorAction::SessionReset | ErrorAction::AfiSafiDisable) => {
                    return Err(e.into())
                }
                Err(e) => self.attr_errors.push(e),
            }
        }
        Ok(())
    }

    /// RFC 7606 section 3 (d): a missing well-known mandatory attribute
    /// makes an UPDATE that carries routes treat-as-withdraw.
    fn check_mandatory(&mut self) {
        let present =
            |t| self.attrs.iter().any(|a| a.type_code() == t) || self.attr_errors.iter().any(|e| e.type_code == t);
        let mut required: &[u8] = &[];
        if !self.nlri.is_empty() {
            required = &[type_code::ORIGIN, type_code::AS_PATH, type_code::NEXT_HOP];
        } else if self.mp_reach().is_some() {
            required = &[type_code::ORIGIN, type_code::AS_PATH];
        }
        let missing: Vec<u8> = required.iter().copied().filter(|&t| !present(t)).collect();
        for t in missing {
            self.attr_errors.push(AttrError {
                type_code: t,
                subcode: UpdateError::MissingWellKnownAttribute,
                data: vec![t],
                action: ErrorAction::TreatAsWithdraw,
                reason: "missing well-known mandatory attribute",
            });
        }
    }

    /// Size of the body in octets.
    pub fn body_len(&self, ctx: &Negotiated) -> usize {
        let ap = ctx.add_path(Family::IPV4_UNICAST);
        4 + self.withdrawn.iter().map(|n| n.encoded_len(ap)).sum::<usize>()
            + self.attrs.iter().map(|a| a.encoded_len(ctx)).sum::<usize>()
            + self.nlri.iter().map(|n| n.encoded_len(ap)).sum::<usize>()
    }

    /// Append the body. `attr_errors` are not encoded.
    pub fn encode_body(&self, ctx: &Negotiated, out: &mut BytesMut) -> Result<(), EncodeError> {
        let ap = ctx.add_path(Family::IPV4_UNICAST);
        out.reserve(self.body_len(ctx));
        let at = out.len();
        out.put_u16(0);
        self.withdrawn.iter().for_each(|n| n.encode(ap, out));
        patch_len(out, at, "withdrawn routes")?;
        let at = out.len();
        out.put_u16(0);
        for a in &self.attrs {
            a.encode(ctx, out)?;
        }
        patch_len(out, at, "path attributes")?;
        self.nlri.iter().for_each(|n| n.encode(ap, out));
        Ok(())
    }
}

/// Fill in the 2-octet length at `at` with the length of what follows it.
pub(crate) fn patch_len(out: &mut BytesMut, at: usize, what: &'static str) -> Result<(), EncodeError> {
    let len = out.len() - at - 2;
    let l = u16::try_from(len).map_err(|_| EncodeError::FieldTooLong { what, len })?;
    out[at..at + 2].copy_from_slice(&l.to_be_bytes());
    Ok(())
}

/// Attribute lists decoded before, by their octets: a stream of UPDATEs
/// that repeats a few attribute sets (a full table sent by a router)
/// decodes each set once, and the UPDATEs that share a set share one
/// [`Attrs`] allocation.
///
/// Decoding the same octets with the same [`Negotiated`] settings always
/// gives the same list, so a memo must only be used with one set of
/// settings ([`AttrMemo::clear`] it when they change). Lists with
/// errors are not remembered (their UPDATEs go through the whole RFC 7606
/// handling each time), nor lists with MP_REACH_NLRI / MP_UNREACH_NLRI,
/// whose octets hold prefixes and so rarely repeat. The mandatory
/// attribute check runs for every UPDATE, memo or not. Bounded: when it
/// holds [`AttrMemo::MAX_LISTS`] lists or [`AttrMemo::MAX_OCTETS`] octets
/// of keys, it starts again empty.
#[derive(Debug, Default)]
pub struct AttrMemo {
    lists: FxHashMap<Box<[u8]>, Attrs>,
    octets: usize,
}

impl AttrMemo {
    pub const MAX_LISTS: usize = 16 * 1024;
    pub const MAX_OCTETS: usize = 4 << 20;

    pub fn new() -> Self {
        AttrMemo::default()
    }

    pub fn clear(&mut self) {
        self.lists.clear();
        self.octets = 0;
    }

    /// Attribute lists held.
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    fn get(&self, raw: &[u8]) -> Option<&Attrs> {
        self.lists.get(raw)
    }

    /// Remember the attribute list just decoded from `raw` into `u`, if
    /// it may be.
    fn remember(&mut self, raw: &[u8], u: &Update) {
        let mp = |a: &PathAttr| matches!(a.value, AttrValue::MpReach(_) | AttrValue::MpUnreach(_));
        if !u.attr_errors.is_empty() || u.attrs.iter().any(mp) {
            return;
        }
        if self.lists.len() >= Self::MAX_LISTS || self.octets + raw.len() > Self::MAX_OCTETS {
            self.clear();
        }
        self.octets += raw.len();
        self.lists.insert(raw.into(), u.attrs.clone());
    }
}

fn discarded_duplicate(raw: &RawAttr<'_>) -> AttrError {
    AttrError {
        type_code: raw.type_code,
        subcode: UpdateError::MalformedAttributeList,
        data: raw.whole.to_vec(),
        action: ErrorAction::AttributeDiscard,
        reason: "repeated attribute discarded",
    }
}

impl MpNlri {
    fn encoded_is_empty(&self) -> bool {
        match self {
            MpNlri::Unicast(v) => v.is_empty(),
            MpNlri::Raw(b) => b.is_empty(),
        }
    }
}
