//! OPEN messages (RFC 4271 section 4.2) with capabilities (RFC 5492) and
//! extended optional parameters length (RFC 9072).

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32, be_u8};
use nom::IResult;

use super::aspath::AS_TRANS;
use super::capability::Capability;
use super::error::{DecodeError, EncodeError};

/// Optional parameter type of capabilities.
pub const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072 marker in the non-extended parameter type position.
const PARAM_EXTENDED_LENGTH: u8 = 255;

/// An OPEN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// My Autonomous System: the ASN, or [`AS_TRANS`] when it needs 4 octets.
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// The Capabilities optional parameters, each with the capabilities it
    /// carried: some speakers send one parameter per capability, some one
    /// for all, and the grouping is kept so that re-encoding is exact.
    pub params: Vec<Vec<Capability>>,
    /// Optional parameters in the RFC 9072 extended form.
    pub extended_params: bool,
}

impl Open {
    /// An OPEN announcing `asn` (AS_TRANS in the 2-octet field when it does
    /// not fit; the 4-octet AS capability is the caller's to add) with all
    /// capabilities in one optional parameter.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Self {
        Open {
            version: 4,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            params: if capabilities.is_empty() { vec![] } else { vec![capabilities] },
            extended_params: false,
        }
    }

    /// Every capability, across parameters, in order.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.params.iter().flatten()
    }

    /// The speaker's ASN: from the 4-octet AS capability when present.
    pub fn asn(&self) -> u32 {
        self.capabilities()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(self.my_as as u32)
    }

    pub fn decode_body(body: &[u8]) -> Result<Open, DecodeError> {
        fn fixed(i: &[u8]) -> IResult<&[u8], (u8, u16, u16, u32, u8)> {
            let (i, version) = be_u8(i)?;
            let (i, my_as) = be_u16(i)?;
            let (i, hold) = be_u16(i)?;
            let (i, id) = be_u32(i)?;
            let (i, opt_len) = be_u8(i)?;
            Ok((i, (version, my_as, hold, id, opt_len)))
        }
        let malformed = |reason| DecodeError::MalformedOpen { reason };
        let (rest, (version, my_as, hold_time, id, opt_len)) =
            fixed(body).map_err(|_| malformed("OPEN shorter than its fixed fields"))?;
        if version != 4 {
            return Err(DecodeError::UnsupportedVersion { version });
        }
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::UnacceptableHoldTime { hold_time });
        }
        let bgp_id = Ipv4Addr::from(id);
        if id == 0 {
            return Err(DecodeError::BadBgpIdentifier { id: bgp_id });
        }
        // RFC 9072: a non-extended length of 255 followed by parameter type
        // 255 announces a 2-octet length and 2-octet parameter lengths.
        let extended = opt_len == 255 && rest.first() == Some(&PARAM_EXTENDED_LENGTH);
        let (mut params_raw, rest) = if extended {
            let n = rest.get(1..3).ok_or(malformed("extended optional parameters length truncated"))?;
            let n = u16::from_be_bytes([n[0], n[1]]) as usize;
            let p = rest.get(3..3 + n).ok_or(malformed("optional parameters overrun the OPEN"))?;
            (p, &rest[3 + n..])
        } else {
            let n = opt_len as usize;
            (rest.get(..n).ok_or(malformed("optional parameters overrun the OPEN"))?, &rest[n..])
        };
        if !rest.is_empty() {
            return Err(malformed("octets after the optional parameters"));
        }
        let mut params = Vec::new();
        while !params_raw.is_empty() {
            let parsed: IResult<&[u8], (u8, &[u8])> = (|i| {
                let (i, t) = be_u8(i)?;
                let (i, len) = if extended { be_u16(i)? } else { be_u8(i).map(|(i, l)| (i, l as u16))? };
                let (i, v) = take(len)(i)?;
                Ok((i, (t, v)))
            })(params_raw);
            let (next, (t, v)) = parsed.map_err(|_| malformed("optional parameter overruns its list"))?;
            if t != PARAM_CAPABILITIES {
                return Err(DecodeError::UnsupportedOptionalParameter { param_type: t });
            }
            params.push(decode_capabilities(v).ok_or(malformed("capability overruns its parameter"))?);
            params_raw = next;
        }
        Ok(Open { version, my_as, hold_time, bgp_id, params, extended_params: extended })
    }

    pub fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.version);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_slice(&self.bgp_id.octets());
        let mut params = BytesMut::new();
        for caps in &self.params {
            let mut v = BytesMut::new();
            for c in caps {
                c.encode(&mut v)?;
            }
            params.put_u8(PARAM_CAPABILITIES);
            if self.extended_params {
                let l = u16::try_from(v.len())
                    .map_err(|_| EncodeError::FieldTooLong { what: "optional parameter", len: v.len() })?;
                params.put_u16(l);
            } else {
                let l = u8::try_from(v.len())
                    .map_err(|_| EncodeError::FieldTooLong { what: "optional parameter", len: v.len() })?;
                params.put_u8(l);
            }
            params.put_slice(&v);
        }
        if self.extended_params {
            out.put_u8(255);
            out.put_u8(PARAM_EXTENDED_LENGTH);
            let l = u16::try_from(params.len())
                .map_err(|_| EncodeError::FieldTooLong { what: "optional parameters", len: params.len() })?;
            out.put_u16(l);
        } else {
            let l = u8::try_from(params.len())
                .map_err(|_| EncodeError::FieldTooLong { what: "optional parameters", len: params.len() })?;
            out.put_u8(l);
        }
        out.put_slice(&params);
        Ok(())
    }
}

fn decode_capabilities(mut v: &[u8]) -> Option<Vec<Capability>> {
    let mut caps = Vec::new();
    while !v.is_empty() {
        let [code, len, rest @ ..] = v else { return None };
        let value = rest.get(..*len as usize)?;
        caps.push(Capability::decode(*code, value));
        v = &rest[*len as usize..];
    }
    Some(caps)
}
