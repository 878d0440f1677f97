//! ROUTE-REFRESH (RFC 2918) with the enhanced route refresh subtypes
//! (RFC 7313).

use bytes::{BufMut, BytesMut};

use super::nlri::Family;

/// The message subtype (the former reserved octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefreshSubtype {
    /// A plain refresh request.
    Request,
    /// Beginning of Route Refresh.
    BoRR,
    /// End of Route Refresh.
    EoRR,
    /// Reserved values; RFC 7313 says to ignore such a message.
    Reserved(u8),
}

/// A ROUTE-REFRESH message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: RefreshSubtype,
}

impl RouteRefresh {
    pub fn request(family: Family) -> Self {
        RouteRefresh { family, subtype: RefreshSubtype::Request }
    }

    pub(crate) fn decode_body(b: &[u8; 4]) -> Self {
        let subtype = match b[2] {
            0 => RefreshSubtype::Request,
            1 => RefreshSubtype::BoRR,
            2 => RefreshSubtype::EoRR,
            n => RefreshSubtype::Reserved(n),
        };
        RouteRefresh { family: Family::new(u16::from_be_bytes([b[0], b[1]]), b[3]), subtype }
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u16(self.family.afi);
        out.put_u8(match self.subtype {
            RefreshSubtype::Request => 0,
            RefreshSubtype::BoRR => 1,
            RefreshSubtype::EoRR => 2,
            RefreshSubtype::Reserved(n) => n,
        });
        out.put_u8(self.family.safi);
    }
}
