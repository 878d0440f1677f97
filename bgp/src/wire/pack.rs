//! Packing many prefixes into as few UPDATEs as fit the negotiated
//! maximum message size.

use bytes::{BufMut, BytesMut};

use super::attr::{flags, type_code, AttrValue, NextHop, PathAttr};
use super::error::EncodeError;
use super::nlri::{Family, Nlri};
use super::update::patch_len;
use super::{begin_message, finish_message, msg_type, Negotiated, HEADER_LEN};

/// The family shared by every prefix, or an error when they mix.
fn common_family(nlri: &[Nlri]) -> Result<Option<Family>, EncodeError> {
    let Some(first) = nlri.first() else { return Ok(None) };
    let f = first.family();
    if nlri.iter().any(|n| n.family() != f) {
        return Err(EncodeError::MixedFamilies);
    }
    Ok(Some(f))
}

/// Split `nlri` into runs whose encoded size fits `room` octets.
fn runs(nlri: &[Nlri], add_path: bool, room: usize) -> impl Iterator<Item = Result<&[Nlri], EncodeError>> {
    let mut rest = nlri;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut used = 0;
        let mut n = 0;
        for p in rest {
            let l = p.encoded_len(add_path);
            if used + l > room {
                break;
            }
            used += l;
            n += 1;
        }
        if n == 0 {
            rest = &[];
            return Some(Err(EncodeError::PrefixDoesNotFit));
        }
        let (run, tail) = rest.split_at(n);
        rest = tail;
        Some(Ok(run))
    })
}

fn encode_attrs(attrs: &[PathAttr], ctx: &Negotiated) -> Result<BytesMut, EncodeError> {
    let mut b = BytesMut::new();
    for a in attrs {
        a.encode(ctx, &mut b)?;
    }
    Ok(b)
}

/// Append UPDATEs announcing every prefix of `nlri` with the attributes
/// `attrs`, as few messages as fit; returns how many were written.
///
/// All prefixes must share one family. IPv4 prefixes without `mp_next_hop`
/// travel in the NLRI field (`attrs` should then hold NEXT_HOP); any other
/// combination travels in an MP_REACH_NLRI with `mp_next_hop` (required),
/// placed first among the attributes. MP attributes inside `attrs` are
/// ignored. On error `out` is left as it was.
pub fn pack_announcements(
    ctx: &Negotiated,
    attrs: &[PathAttr],
    nlri: &[Nlri],
    mp_next_hop: Option<NextHop>,
    out: &mut BytesMut,
) -> Result<usize, EncodeError> {
    let Some(family) = common_family(nlri)? else { return Ok(0) };
    let attrs: Vec<PathAttr> =
        attrs.iter().filter(|a| !matches!(a.value, AttrValue::MpReach(_) | AttrValue::MpUnreach(_))).cloned().collect();
    let attr_bytes = encode_attrs(&attrs, ctx)?;
    let max = ctx.max_message_len();
    let ap = ctx.add_path(family);
    let start_len = out.len();
    let mut count = 0;
    let mut write = |out: &mut BytesMut| -> Result<usize, EncodeError> {
        let fixed = HEADER_LEN + 4 + attr_bytes.len();
        match mp_next_hop {
            None if family == Family::IPV4_UNICAST => {
                let room = max.checked_sub(fixed).ok_or(EncodeError::PrefixDoesNotFit)?;
                for run in runs(nlri, ap, room) {
                    let run = run?;
                    let start = begin_message(out, msg_type::UPDATE);
                    out.put_u16(0);
                    out.put_u16(attr_bytes.len() as u16);
                    out.put_slice(&attr_bytes);
                    run.iter().for_each(|n| n.encode(ap, out));
                    finish_message(out, start, max)?;
                    count += 1;
                }
            }
            None => return Err(EncodeError::PrefixDoesNotFit),
            Some(nh) => {
                // MP_REACH_NLRI header: flags, type, 2-octet length, AFI,
                // SAFI, next hop length and value, reserved.
                let mut nh_bytes = BytesMut::new();
                nh.encode(&mut nh_bytes);
                nh_bytes.put_u8(0); // reserved
                let mp_fixed = 4 + 3 + nh_bytes.len();
                let room = max.checked_sub(fixed + mp_fixed).ok_or(EncodeError::PrefixDoesNotFit)?;
                for run in runs(nlri, ap, room) {
                    mp_update(out, type_code::MP_REACH_NLRI, family, &nh_bytes, run?, ap, &attr_bytes, max)?;
                    count += 1;
                }
            }
        }
        Ok(count)
    };
    write(out).inspect_err(|_| out.truncate(start_len))
}

/// One UPDATE whose only NLRI travel in an MP attribute (`code`):
/// MP_REACH_NLRI (with `head` = next hop and reserved octet) first, then
/// `attrs`; or MP_UNREACH_NLRI (empty `head`, no `attrs`).
#[allow(clippy::too_many_arguments)]
fn mp_update(
    out: &mut BytesMut,
    code: u8,
    family: Family,
    head: &[u8],
    run: &[Nlri],
    add_path: bool,
    attrs: &[u8],
    max: usize,
) -> Result<(), EncodeError> {
    let start = begin_message(out, msg_type::UPDATE);
    out.put_u16(0); // no withdrawn routes
    let at = out.len();
    out.put_u16(0);
    out.put_u8(flags::OPTIONAL | flags::EXTENDED_LENGTH);
    out.put_u8(code);
    let mp_at = out.len();
    out.put_u16(0);
    out.put_u16(family.afi);
    out.put_u8(family.safi);
    out.put_slice(head);
    run.iter().for_each(|n| n.encode(add_path, out));
    patch_len(out, mp_at, "MP attribute")?;
    out.put_slice(attrs);
    patch_len(out, at, "path attributes")?;
    finish_message(out, start, max)
}

/// Append UPDATEs withdrawing every prefix of `nlri` (one family): IPv4 in
/// the withdrawn routes field (in MP_UNREACH_NLRI when
/// [`Negotiated::extended_next_hop_ipv4`]), others in MP_UNREACH_NLRI.
/// Returns how many messages were written.
pub fn pack_withdrawals(ctx: &Negotiated, nlri: &[Nlri], out: &mut BytesMut) -> Result<usize, EncodeError> {
    let Some(family) = common_family(nlri)? else { return Ok(0) };
    let max = ctx.max_message_len();
    let ap = ctx.add_path(family);
    let start_len = out.len();
    let mut count = 0;
    let mut write = |out: &mut BytesMut| -> Result<usize, EncodeError> {
        if family == Family::IPV4_UNICAST && !ctx.extended_next_hop_ipv4 {
            for run in runs(nlri, ap, max - HEADER_LEN - 4) {
                let run = run?;
                let start = begin_message(out, msg_type::UPDATE);
                let at = out.len();
                out.put_u16(0);
                run.iter().for_each(|n| n.encode(ap, out));
                patch_len(out, at, "withdrawn routes")?;
                out.put_u16(0);
                finish_message(out, start, max)?;
                count += 1;
            }
        } else {
            for run in runs(nlri, ap, max - HEADER_LEN - 4 - 4 - 3) {
                mp_update(out, type_code::MP_UNREACH_NLRI, family, &[], run?, ap, &[], max)?;
                count += 1;
            }
        }
        Ok(count)
    };
    write(out).inspect_err(|_| out.truncate(start_len))
}
