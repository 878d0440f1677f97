//! One-line human descriptions of messages, for logs and the CLI.

use std::fmt;

use super::attr::{AttrValue, MpNextHop, MpNlri, NextHop, PathAttr};
use super::{Message, Open, RefreshSubtype, Update};

fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{x}")?;
    }
    Ok(())
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::V4(a) => write!(f, "{a}"),
            NextHop::V6 { global, link_local: None } => write!(f, "{global}"),
            NextHop::V6 { global, link_local: Some(l) } => write!(f, "{global} {l}"),
        }
    }
}

impl fmt::Display for PathAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            AttrValue::Origin(o) => write!(f, "origin {o:?}"),
            AttrValue::AsPath(p) => write!(f, "as-path [{p}]"),
            AttrValue::NextHop(a) => write!(f, "next-hop {a}"),
            AttrValue::Med(v) => write!(f, "med {v}"),
            AttrValue::LocalPref(v) => write!(f, "local-pref {v}"),
            AttrValue::AtomicAggregate => f.write_str("atomic-aggregate"),
            AttrValue::Aggregator(a) => write!(f, "aggregator {} {}", a.asn, a.address),
            AttrValue::Communities(c) => {
                f.write_str("communities [")?;
                list(f, c)?;
                f.write_str("]")
            }
            AttrValue::OriginatorId(a) => write!(f, "originator-id {a}"),
            AttrValue::ClusterList(c) => {
                f.write_str("cluster-list [")?;
                list(f, c)?;
                f.write_str("]")
            }
            AttrValue::MpReach(m) => {
                write!(f, "mp-reach {} next-hop ", m.family)?;
                match &m.next_hop {
                    MpNextHop::Typed(n) => write!(f, "{n}")?,
                    MpNextHop::Raw(b) => write!(f, "({} octets)", b.len())?,
                }
                match &m.nlri {
                    MpNlri::Unicast(n) => {
                        f.write_str(" [")?;
                        list(f, n)?;
                        f.write_str("]")
                    }
                    MpNlri::Raw(b) => write!(f, " ({} octets of NLRI)", b.len()),
                }
            }
            AttrValue::MpUnreach(m) => {
                write!(f, "mp-unreach {}", m.family)?;
                match &m.withdrawn {
                    MpNlri::Unicast(n) => {
                        f.write_str(" [")?;
                        list(f, n)?;
                        f.write_str("]")
                    }
                    MpNlri::Raw(b) => write!(f, " ({} octets of NLRI)", b.len()),
                }
            }
            AttrValue::ExtCommunities(c) => {
                f.write_str("ext-communities [")?;
                list(f, c)?;
                f.write_str("]")
            }
            AttrValue::As4Path(p) => write!(f, "as4-path [{p}]"),
            AttrValue::As4Aggregator(a) => write!(f, "as4-aggregator {} {}", a.asn, a.address),
            AttrValue::LargeCommunities(c) => {
                f.write_str("large-communities [")?;
                list(f, c)?;
                f.write_str("]")
            }
            AttrValue::Otc(a) => write!(f, "otc {a}"),
            AttrValue::Unknown { type_code, data } => {
                write!(f, "attr{type_code} flags 0x{:02x} ({} octets)", self.flags, data.len())
            }
        }
    }
}

impl fmt::Display for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fam) = self.as_end_of_rib() {
            return write!(f, "End-of-RIB {fam}");
        }
        let mut sep = "";
        if !self.withdrawn.is_empty() {
            f.write_str("withdraw [")?;
            list(f, &self.withdrawn)?;
            f.write_str("]")?;
            sep = "; ";
        }
        for a in &self.attrs {
            write!(f, "{sep}{a}")?;
            sep = "; ";
        }
        if !self.nlri.is_empty() {
            write!(f, "{sep}nlri [")?;
            list(f, &self.nlri)?;
            f.write_str("]")?;
        }
        for e in &self.attr_errors {
            write!(f, "; error: {e}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Open {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "as {} hold {} id {} capabilities [", self.asn(), self.hold_time, self.bgp_id)?;
        for (i, c) in self.capabilities().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{c:?}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Open(o) => write!(f, "OPEN {o}"),
            Message::Update(u) => write!(f, "UPDATE {u}"),
            Message::Notification(n) => write!(f, "NOTIFICATION {}", n.describe()),
            Message::Keepalive => f.write_str("KEEPALIVE"),
            Message::RouteRefresh(r) => {
                let st = match r.subtype {
                    RefreshSubtype::Request => "request".to_string(),
                    RefreshSubtype::BoRR => "BoRR".to_string(),
                    RefreshSubtype::EoRR => "EoRR".to_string(),
                    RefreshSubtype::Reserved(n) => format!("subtype {n}"),
                };
                write!(f, "ROUTE-REFRESH {} {st}", r.family)
            }
        }
    }
}
