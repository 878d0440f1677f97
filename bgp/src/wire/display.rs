//! One-line human descriptions of messages, for logs and the CLI.

use std::fmt;

use super::attr::{AttrValue, MpNextHop, MpNlri, NextHop, Origin, PathAttr};
use super::capability::{AddPathMode, Capability, Role};
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
            AttrValue::Origin(o) => write!(
                f,
                "origin {}",
                match o {
                    Origin::Igp => "igp",
                    Origin::Egp => "egp",
                    Origin::Incomplete => "incomplete",
                }
            ),
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
            write!(f, "{c}")?;
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

/// The IANA name of a capability code ("BGP Capability Codes"), where it has one.
pub fn capability_name(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "multiprotocol",
        2 => "route refresh",
        3 => "outbound route filtering",
        5 => "extended next hop",
        6 => "extended message",
        7 => "bgpsec",
        8 => "multiple labels",
        9 => "role",
        64 => "graceful restart",
        65 => "4-octet AS",
        67 => "dynamic capability",
        68 => "multisession",
        69 => "add-path",
        70 => "enhanced route refresh",
        71 => "long-lived graceful restart",
        72 => "routing policy distribution",
        73 => "fqdn",
        74 => "bfd",
        75 => "software version",
        128 => "route refresh (pre-standard)",
        _ => return None,
    })
}

fn hex_groups(f: &mut fmt::Formatter<'_>, data: &[u8]) -> fmt::Result {
    for (i, chunk) in data.chunks(4).enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        for b in chunk {
            write!(f, "{b:02x}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::Multiprotocol(fam) => write!(f, "multiprotocol {fam}"),
            Capability::RouteRefresh => f.write_str("route refresh"),
            Capability::ExtendedNextHop(es) => {
                f.write_str("extended next hop")?;
                for e in es {
                    match e.next_hop_afi {
                        crate::wire::AFI_IPV4 => write!(f, " {} via ipv4", e.nlri)?,
                        crate::wire::AFI_IPV6 => write!(f, " {} via ipv6", e.nlri)?,
                        afi => write!(f, " {} via afi{afi}", e.nlri)?,
                    }
                }
                Ok(())
            }
            Capability::ExtendedMessage => f.write_str("extended message"),
            Capability::Role(r) => {
                let name = match r {
                    Role::Provider => "provider",
                    Role::RouteServer => "route server",
                    Role::RouteServerClient => "route server client",
                    Role::Customer => "customer",
                    Role::Peer => "peer",
                };
                write!(f, "role {name}")
            }
            Capability::GracefulRestart(g) => {
                write!(f, "graceful restart {}s", g.restart_time)?;
                if g.restarting {
                    f.write_str(" restarting")?;
                }
                if g.notification {
                    f.write_str(" notification")?;
                }
                for fam in &g.families {
                    write!(
                        f,
                        " {}{}",
                        fam.family,
                        if fam.forwarding_preserved { " (forwarding preserved)" } else { "" }
                    )?;
                }
                Ok(())
            }
            Capability::FourOctetAs(asn) => write!(f, "4-octet AS {asn}"),
            Capability::AddPath(fams) => {
                f.write_str("add-path")?;
                for a in fams {
                    let mode = match a.mode {
                        AddPathMode::Receive => "receive",
                        AddPathMode::Send => "send",
                        AddPathMode::Both => "send/receive",
                    };
                    write!(f, " {} {mode}", a.family)?;
                }
                Ok(())
            }
            Capability::EnhancedRouteRefresh => f.write_str("enhanced route refresh"),
            Capability::LongLivedGracefulRestart(fams) => {
                f.write_str("long-lived graceful restart")?;
                for l in fams {
                    write!(f, " {} stale {}s", l.family, l.stale_time)?;
                }
                Ok(())
            }
            Capability::Fqdn { hostname, domain } if domain.is_empty() => write!(f, "fqdn {hostname}"),
            Capability::Fqdn { hostname, domain } => write!(f, "fqdn {hostname}.{domain}"),
            Capability::Unknown { code, data } => {
                write!(f, "capability {code}")?;
                if let Some(name) = capability_name(*code) {
                    write!(f, " ({name})")?;
                }
                if !data.is_empty() {
                    f.write_str(" ")?;
                    hex_groups(f, data)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod capability_tests {
    use super::*;
    use crate::wire::capability::{AddPathFamily, GrFamily};
    use crate::wire::Family;

    #[test]
    fn capabilities_read_as_routers_print_them() {
        let c = |c: Capability| c.to_string();
        assert_eq!(c(Capability::Fqdn { hostname: "gobgp-frr-b".into(), domain: String::new() }), "fqdn gobgp-frr-b");
        assert_eq!(
            c(Capability::Unknown { code: 5, data: vec![0, 1, 0, 1, 0, 2] }),
            "capability 5 (extended next hop) 00010001 0002"
        );
        assert_eq!(
            c(Capability::decode(5, &[0, 1, 0, 1, 0, 2])),
            "extended next hop ipv4-unicast via ipv6",
            "as FRR sends it on an IPv6 session"
        );
        assert_eq!(c(Capability::Unknown { code: 128, data: vec![] }), "capability 128 (route refresh (pre-standard))");
        assert_eq!(c(Capability::Unknown { code: 200, data: vec![9] }), "capability 200 09");
        assert_eq!(c(Capability::Multiprotocol(Family::IPV4_UNICAST)), "multiprotocol ipv4-unicast");
        assert_eq!(c(Capability::FourOctetAs(4200000001)), "4-octet AS 4200000001");
        assert_eq!(
            c(Capability::AddPath(vec![AddPathFamily { family: Family::IPV4_UNICAST, mode: AddPathMode::Receive }])),
            "add-path ipv4-unicast receive"
        );
        let gr = crate::wire::capability::GracefulRestart {
            restarting: true,
            notification: false,
            restart_time: 120,
            families: vec![GrFamily { family: Family::IPV4_UNICAST, forwarding_preserved: true }],
        };
        assert_eq!(
            c(Capability::GracefulRestart(gr)),
            "graceful restart 120s restarting ipv4-unicast (forwarding preserved)"
        );
    }
}
