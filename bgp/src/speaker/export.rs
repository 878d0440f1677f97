//! What we send a given peer for a route: which of the prefix's paths are
//! meant for the peer, then next hop and AS path rewritten for the peer
//! type (eBGP / iBGP), the peer's own communities added; and the ADD-PATH
//! path identifier of each path ([`Exported::path_id`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

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
    /// The peers (by address) this path is for; `None`: every peer.
    pub to: Option<Arc<[IpAddr]>>,
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
            to: None,
        }
    }
}

impl RouteAttrs {
    /// Whether this path is for the peer at `peer`.
    pub fn is_for(&self, peer: IpAddr) -> bool {
        self.to.as_deref().is_none_or(|to| to.contains(&peer))
    }
}

/// What the export depends on, per session: the session's type, local
/// address (next-hop self) and the peer's own communities.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExportCtx {
    /// The peer's address (which paths are for it).
    pub peer: IpAddr,
    pub local_as: u32,
    pub ibgp: bool,
    pub local: SocketAddr,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    pub next_hop_v6_link_local: Option<Ipv6Addr>,
    /// The session negotiated IPv6 next hops for IPv4 routes (RFC 8950):
    /// used when no IPv4 next hop is known.
    pub extended_next_hop_ipv4: bool,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    /// Families for which the session negotiated ADD-PATH send (RFC
    /// 7911): the peer is sent every path meant for it, each with its own
    /// path id. Other families get the first path meant for the peer.
    pub add_path: Vec<Family>,
}

/// The exported attributes of a route, and the MP next hop for families
/// carried in MP_REACH_NLRI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Exported {
    pub attrs: Vec<PathAttr>,
    pub mp_next_hop: Option<NextHop>,
}

impl Exported {
    /// The next hop the route is sent with.
    pub fn next_hop(&self) -> Option<IpAddr> {
        match self.mp_next_hop {
            Some(NextHop::V4(a)) => Some(a.into()),
            Some(NextHop::V6 { global, .. }) => Some(global.into()),
            None => self.attrs.iter().find_map(|a| match a.value {
                AttrValue::NextHop(a) => Some(a.into()),
                _ => None,
            }),
        }
    }

    /// The path identifier (RFC 7911) this path asks for: derived from
    /// the next hop it is sent with, so it is the same across restarts and
    /// on every speaker sending that next hop. An IPv4 next hop is its
    /// address as a 32-bit number (198.18.0.11 → 3323068427); an IPv6
    /// one the 32-bit FNV-1a hash of its 16 octets (the global address
    /// when a link-local one goes with it). Two paths of one prefix that
    /// ask for the same id: see [`path_ids`].
    pub fn path_id(&self) -> u32 {
        match self.next_hop() {
            Some(IpAddr::V4(a)) => a.into(),
            Some(IpAddr::V6(a)) => fnv1a(&a.octets()),
            None => 1,
        }
    }
}

/// 32-bit FNV-1a.
fn fnv1a(octets: &[u8]) -> u32 {
    octets.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

/// The path ids of one prefix's exported paths, in order of preference:
/// each takes the id it asks for ([`Exported::path_id`]) unless an
/// earlier path has it, then the next free one above (wrapping). A path
/// exported exactly as an earlier one is left out (`None`): the router
/// could not tell the two apart. Deterministic: the same paths in the same
/// order get the same ids.
pub fn path_ids(paths: &[Arc<Exported>]) -> Vec<Option<u32>> {
    let mut taken: Vec<u32> = Vec::with_capacity(paths.len());
    paths
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if paths[..i].iter().any(|o| o == e) {
                return None;
            }
            let mut id = e.path_id();
            while taken.contains(&id) {
                id = id.wrapping_add(1);
            }
            taken.push(id);
            Some(id)
        })
        .collect()
}

impl ExportCtx {
    /// The context of a session from `local` (next-hop self), with no
    /// per-peer next hops or communities.
    pub fn new(local_as: u32, ibgp: bool, local: SocketAddr) -> Self {
        ExportCtx {
            peer: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            local_as,
            ibgp,
            local,
            next_hop_v4: None,
            next_hop_v6: None,
            next_hop_v6_link_local: None,
            extended_next_hop_ipv4: false,
            communities: vec![],
            large_communities: vec![],
            add_path: vec![],
        }
    }

    /// Whether every path of `family` meant for the peer goes out.
    pub fn sends_all_paths(&self, family: Family) -> bool {
        self.add_path.contains(&family)
    }

    fn next_hop(&self, route: &RouteAttrs, family: Family) -> Option<IpAddr> {
        let local = self.local.ip().to_canonical();
        let v6 = || match route.next_hop {
            Some(IpAddr::V6(a)) => Some(a.into()),
            _ => self.next_hop_v6.map(IpAddr::V6).or(if local.is_ipv6() { Some(local) } else { None }),
        };
        if family == Family::IPV4_UNICAST {
            match route.next_hop {
                Some(IpAddr::V4(a)) => Some(a.into()),
                _ => self
                    .next_hop_v4
                    .map(IpAddr::V4)
                    .or(if local.is_ipv4() { Some(local) } else { None })
                    .or_else(|| if self.extended_next_hop_ipv4 { v6() } else { None }),
            }
        } else {
            v6()
        }
    }

    /// The first of a prefix's paths meant for this peer.
    pub fn select<'a>(&self, paths: &'a [RouteAttrs]) -> Option<&'a RouteAttrs> {
        paths.iter().find(|p| p.is_for(self.peer))
    }

    /// Every one of a prefix's paths meant for this peer, in order.
    pub fn select_all<'a>(&self, paths: &'a [RouteAttrs]) -> impl Iterator<Item = &'a RouteAttrs> + use<'a, '_> {
        paths.iter().filter(|p| p.is_for(self.peer))
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

    fn exported(nh: &str) -> Arc<Exported> {
        let r = RouteAttrs { next_hop: Some(nh.parse().unwrap()), ..RouteAttrs::default() };
        let c = ExportCtx { next_hop_v6: Some("2001:db8:ffff::11".parse().unwrap()), ..ctx(false) };
        let family = if nh.contains(':') { Family::IPV6_UNICAST } else { Family::IPV4_UNICAST };
        Arc::new(c.export(&r, family).unwrap())
    }

    #[test]
    fn path_ids_come_from_the_next_hop() {
        assert_eq!(exported("198.18.0.11").path_id(), 0xC612_000B);
        assert_eq!(exported("198.18.0.12").path_id(), 0xC612_000C);
        // FNV-1a of the 16 octets, fixed here so that a change shows.
        assert_eq!(exported("2001:db8::1").path_id(), fnv1a(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()));
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c, "the published FNV-1a test vector");
        assert_ne!(exported("2001:db8::1").path_id(), exported("2001:db8::2").path_id());
        // Next-hop self: the session's local address.
        let e = ctx(false).export(&RouteAttrs::default(), Family::IPV4_UNICAST).unwrap();
        assert_eq!(e.path_id(), u32::from("198.18.0.11".parse::<Ipv4Addr>().unwrap()));
    }

    #[test]
    fn colliding_path_ids_take_the_next_free_one_and_duplicates_are_left_out() {
        let a = exported("198.18.0.11");
        let b = exported("198.18.0.12");
        // Another path with a's next hop but other attributes asks for a's id.
        let a2 = {
            let mut e = (*a).clone();
            e.attrs.push(PathAttr::new(AttrValue::Med(5)));
            Arc::new(e)
        };
        let ids = path_ids(&[a.clone(), a2.clone(), b.clone(), a.clone()]);
        // a2 takes the next id up, b (asking for that one) the next after.
        assert_eq!(ids, [Some(0xC612_000B), Some(0xC612_000C), Some(0xC612_000D), None]);
        // Order decides, not which path came first in time.
        assert_eq!(path_ids(&[b, a2, a]), [Some(0xC612_000C), Some(0xC612_000B), Some(0xC612_000D)]);
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

    #[test]
    fn ipv4_over_an_ipv6_session_takes_an_ipv6_next_hop_only_when_negotiated_and_no_ipv4_one_is_known() {
        let r = RouteAttrs::default();
        let v6_only = ExportCtx::new(64513, false, "[fd00:198:18:1::12]:40000".parse().unwrap());
        assert_eq!(v6_only.export(&r, Family::IPV4_UNICAST), None, "RFC 8950 not negotiated");
        let enh = ExportCtx { extended_next_hop_ipv4: true, ..v6_only };
        let e = enh.export(&r, Family::IPV4_UNICAST).unwrap();
        let global = "fd00:198:18:1::12".parse().unwrap();
        assert_eq!(e.mp_next_hop, Some(NextHop::V6 { global, link_local: None }));
        assert!(!e.attrs.iter().any(|a| a.type_code() == 3), "no NEXT_HOP attribute with MP_REACH");
        // A known IPv4 next hop is still preferred (the classic encoding).
        let dual = ExportCtx { next_hop_v4: Some("198.18.1.12".parse().unwrap()), ..enh };
        let e = dual.export(&r, Family::IPV4_UNICAST).unwrap();
        assert_eq!(e.mp_next_hop, None);
        assert!(e.attrs.iter().any(|a| a.value == AttrValue::NextHop("198.18.1.12".parse().unwrap())));
    }
}
