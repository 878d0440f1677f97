//! What we send a given peer for a route: next hop and AS path rewritten
//! for the peer type (eBGP / iBGP), the peer's own communities added.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::wire::{AsPath, AttrValue, Community, ExtCommunity, Family, LargeCommunity, NextHop, Origin, PathAttr};

/// A route's attributes as the speaker's user gives them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    /// `None`: next-hop self (the local address of each session).
    pub next_hop: Option<IpAddr>,
    pub origin: Origin,
    pub med: Option<u32>,
    /// Sent to iBGP peers only (default 100 there).
    pub local_pref: Option<u32>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    pub ext_communities: Vec<ExtCommunity>,
    /// Extra copies of the local AS on eBGP sessions.
    pub as_path_prepend: u8,
}

impl Default for RouteAttrs {
    fn default() -> Self {
        RouteAttrs {
            next_hop: None,
            origin: Origin::Igp,
            med: None,
            local_pref: None,
            communities: vec![],
            large_communities: vec![],
            ext_communities: vec![],
            as_path_prepend: 0,
        }
    }
}

/// What the export depends on, per session: the session's type, local
/// address (next-hop self) and the peer's own communities.
#[derive(Debug, Clone)]
pub struct ExportCtx {
    pub local_as: u32,
    pub ibgp: bool,
    pub local: SocketAddr,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    pub next_hop_v6_link_local: Option<Ipv6Addr>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
}

/// The exported attributes of a route, and the MP next hop for families
/// carried in MP_REACH_NLRI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Exported {
    pub attrs: Vec<PathAttr>,
    pub mp_next_hop: Option<NextHop>,
}

impl ExportCtx {
    /// The context of a session from `local` (next-hop self), with no
    /// per-peer next hops or communities.
    pub fn new(local_as: u32, ibgp: bool, local: SocketAddr) -> Self {
        ExportCtx {
            local_as,
            ibgp,
            local,
            next_hop_v4: None,
            next_hop_v6: None,
            next_hop_v6_link_local: None,
            communities: vec![],
            large_communities: vec![],
        }
    }

    fn next_hop(&self, route: &RouteAttrs, family: Family) -> Option<IpAddr> {
        let local = self.local.ip().to_canonical();
        if family == Family::IPV4_UNICAST {
            match route.next_hop {
                Some(IpAddr::V4(a)) => Some(a.into()),
                _ => self.next_hop_v4.map(IpAddr::V4).or(if local.is_ipv4() { Some(local) } else { None }),
            }
        } else {
            match route.next_hop {
                Some(IpAddr::V6(a)) => Some(a.into()),
                _ => self.next_hop_v6.map(IpAddr::V6).or(if local.is_ipv6() { Some(local) } else { None }),
            }
        }
    }

    /// `None` when no next hop of the family is known for this session.
    pub fn export(&self, route: &RouteAttrs, family: Family) -> Option<Exported> {
        let nh = self.next_hop(route, family)?;
        let mut attrs = vec![PathAttr::new(AttrValue::Origin(route.origin))];
        let path = if self.ibgp {
            AsPath::default()
        } else {
            AsPath::sequence(std::iter::repeat_n(self.local_as, 1 + route.as_path_prepend as usize))
        };
        attrs.push(PathAttr::new(AttrValue::AsPath(path)));
        let mp_next_hop = match nh {
            IpAddr::V4(a) if family == Family::IPV4_UNICAST => {
                attrs.push(PathAttr::new(AttrValue::NextHop(a)));
                None
            }
            IpAddr::V4(a) => Some(NextHop::V4(a)),
            IpAddr::V6(global) => Some(NextHop::V6 { global, link_local: self.next_hop_v6_link_local }),
        };
        if let Some(m) = route.med {
            attrs.push(PathAttr::new(AttrValue::Med(m)));
        }
        if self.ibgp {
            attrs.push(PathAttr::new(AttrValue::LocalPref(route.local_pref.unwrap_or(100))));
        }
        let mut communities = route.communities.clone();
        communities.extend(self.communities.iter().filter(|c| !route.communities.contains(c)));
        if !communities.is_empty() {
            attrs.push(PathAttr::new(AttrValue::Communities(communities)));
        }
        if !route.ext_communities.is_empty() {
            attrs.push(PathAttr::new(AttrValue::ExtCommunities(route.ext_communities.clone())));
        }
        let mut large = route.large_communities.clone();
        large.extend(self.large_communities.iter().filter(|c| !route.large_communities.contains(c)));
        if !large.is_empty() {
            attrs.push(PathAttr::new(AttrValue::LargeCommunities(large)));
        }
        Some(Exported { attrs, mp_next_hop })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(ibgp: bool) -> ExportCtx {
        let local = "198.18.0.11:40000".parse().unwrap();
        ExportCtx { communities: vec![Community::new(64513, 1)], ..ExportCtx::new(64513, ibgp, local) }
    }

    #[test]
    fn ebgp_prepends_and_uses_next_hop_self() {
        let r = RouteAttrs { as_path_prepend: 2, med: Some(10), local_pref: Some(300), ..RouteAttrs::default() };
        let e = ctx(false).export(&r, Family::IPV4_UNICAST).unwrap();
        let get = |t| e.attrs.iter().find(|a| a.type_code() == t).map(|a| a.value.clone());
        assert_eq!(get(2), Some(AttrValue::AsPath(AsPath::sequence([64513, 64513, 64513]))));
        assert_eq!(get(3), Some(AttrValue::NextHop("198.18.0.11".parse().unwrap())));
        assert_eq!(get(4), Some(AttrValue::Med(10)));
        assert_eq!(get(5), None, "no LOCAL_PREF on eBGP");
        assert_eq!(get(8), Some(AttrValue::Communities(vec![Community::new(64513, 1)])));
        assert_eq!(e.mp_next_hop, None);
    }

    #[test]
    fn ibgp_has_empty_path_and_local_pref() {
        let r = RouteAttrs { as_path_prepend: 2, local_pref: Some(300), ..RouteAttrs::default() };
        let e = ctx(true).export(&r, Family::IPV4_UNICAST).unwrap();
        assert!(e.attrs.iter().any(|a| a.value == AttrValue::AsPath(AsPath::default())));
        assert!(e.attrs.iter().any(|a| a.value == AttrValue::LocalPref(300)));
    }

    #[test]
    fn ipv6_needs_an_ipv6_next_hop() {
        let r = RouteAttrs::default();
        assert_eq!(ctx(false).export(&r, Family::IPV6_UNICAST), None, "IPv4 session, no IPv6 next hop known");
        let c = ExportCtx { next_hop_v6: Some("2001:db8:ffff::11".parse().unwrap()), ..ctx(false) };
        let e = c.export(&r, Family::IPV6_UNICAST).unwrap();
        assert_eq!(e.mp_next_hop, Some(NextHop::V6 { global: "2001:db8:ffff::11".parse().unwrap(), link_local: None }));
        assert!(!e.attrs.iter().any(|a| a.type_code() == 3), "no NEXT_HOP attribute with MP_REACH");
    }
}
