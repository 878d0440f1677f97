//! Which peers each of a node's routes goes to, and with which attributes:
//! the `BgpAdvertisement`s applied to the node's VIPs. Pure.
//!
//! The rules (also in `crds/README.md`):
//! - An advertisement *selects* a VIP when it selects the VIP's pool (`eips` or
//!   `eipSelector`, either; neither set: every pool) and one of the Services behind it
//!   (`serviceSelector`; absent: every Service).
//! - A VIP no advertisement selects is announced as before advertisements existed: to every
//!   peer of every node that carries it, with its pool's attributes.
//! - A VIP some advertisements select goes, from a node their `nodeSelector` matches, to the
//!   union of the peers they name (`peers` or `peerSelector`, either; neither: every peer of
//!   the node). To any other peer, and from any other node, it is not announced.
//! - For one peer, the advertisements that select the VIP, the node and the peer and ask for
//!   different prefix lengths (aggregation length, else the pool's) each announce their own
//!   prefix, as MetalLB's do. Those asking for the same length combine in name order:
//!   communities and large communities are the union of theirs (replacing the pool's, when
//!   one of them sets any); LOCAL_PREF, MED and AS-path prepend come from the first that
//!   sets them (replacing the pool's); a second that sets another value is reported. The
//!   Service's own annotations still win over both.
//! - An aggregation length whose prefix would cover addresses outside the VIP's pool is
//!   reported and not used (the VIP goes out as a host route).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use ipnetwork::IpNetwork;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use mooring_bgp::speaker::RouteAttrs;
use mooring_crds::AdvertisementSettings;

use super::desired::{self, Advertisement, Announcement, PoolConfig, Snapshot};
use super::plan::Problem;
use super::selector;

/// A peer of the node, as advertisements select it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRef {
    pub address: IpAddr,
    /// The VRF the session is in (`None`: the default one).
    pub vrf: Option<String>,
    /// The `BgpPeer`'s name and labels.
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// A node's routes: each prefix's paths (a prefix more than once: one path per peer group,
/// the paths for named peers first), and the Services behind each prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routes {
    pub routes: Vec<(IpNetwork, RouteAttrs)>,
    pub services: BTreeMap<IpNetwork, BTreeSet<String>>,
}

/// What the routes of a node are made from.
pub struct Inputs<'a> {
    pub snapshot: &'a Snapshot,
    /// Per Service (`namespace/name`): its addresses and their pools.
    pub vips: &'a BTreeMap<String, Vec<(IpAddr, String)>>,
    pub node: &'a str,
    pub node_labels: &'a BTreeMap<String, String>,
    /// The node's peers.
    pub peers: &'a [PeerRef],
    /// Every checked BgpAdvertisement, by name, in name order.
    pub advertisements: &'a [(String, AdvertisementSettings)],
    pub local_as: u32,
}

fn matches(sel: &Option<LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    sel.as_ref().is_none_or(|s| selector::matches(s, labels))
}

/// Names or a selector, either; neither set: everything.
fn named_or_selected(
    names: &[String],
    sel: &Option<LabelSelector>,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    (names.is_empty() && sel.is_none())
        || names.iter().any(|n| n == name)
        || sel.as_ref().is_some_and(|s| selector::matches(s, labels))
}

fn selects_pool(a: &AdvertisementSettings, pool: &PoolConfig) -> bool {
    named_or_selected(&a.eips, &a.eip_selector, &pool.pool.name, &pool.labels)
}

fn selects_peer(a: &AdvertisementSettings, peer: &PeerRef) -> bool {
    named_or_selected(&a.peers, &a.peer_selector, &peer.name, &peer.labels)
}

/// One path of a VIP: the peers it goes to (`None`: all), its attributes before the
/// Service's overrides, and its prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    to: Option<Vec<IpAddr>>,
    adv: Advertisement,
    len: u8,
}

/// Reports each (advertisement, field, message) once per plan.
#[derive(Default)]
struct Reporter {
    seen: BTreeSet<(String, String, String)>,
    problems: Vec<Problem>,
}

impl Reporter {
    fn report(&mut self, ad: &str, field: &str, message: String) {
        if self.seen.insert((ad.to_string(), field.to_string(), message.clone())) {
            self.problems.push(Problem { object: format!("BgpAdvertisement/{ad}"), field: field.into(), message });
        }
    }
}

/// The pool's attributes with the advertisements `ads` (those that select the VIP, the node
/// and one peer, in name order) applied.
fn combine(
    pool: &PoolConfig,
    addr: IpAddr,
    ads: &[&(String, AdvertisementSettings)],
    r: &mut Reporter,
) -> (Advertisement, u8) {
    let mut adv = pool.advertisement.clone();
    if ads.iter().any(|(_, a)| !a.communities.is_empty()) {
        adv.communities.clear();
        for c in ads.iter().flat_map(|(_, a)| &a.communities) {
            if !adv.communities.contains(c) {
                adv.communities.push(*c);
            }
        }
    }
    if ads.iter().any(|(_, a)| !a.large_communities.is_empty()) {
        adv.large_communities.clear();
        for c in ads.iter().flat_map(|(_, a)| &a.large_communities) {
            if !adv.large_communities.contains(c) {
                adv.large_communities.push(*c);
            }
        }
    }
    // The first (by name) that sets a value wins; another value is reported.
    fn first<T: Copy + PartialEq + std::fmt::Display>(
        ads: &[&(String, AdvertisementSettings)],
        field: &str,
        get: impl Fn(&AdvertisementSettings) -> Option<T>,
        r: &mut Reporter,
    ) -> Option<T> {
        let mut set = ads.iter().filter_map(|(n, a)| Some((n, get(a)?)));
        let (winner, v) = set.next()?;
        for (n, other) in set.filter(|(_, o)| *o != v) {
            r.report(n, field, format!("{other} is not used where BgpAdvertisement/{winner} (first by name) sets {v}"));
        }
        Some(v)
    }
    if let Some(v) = first(ads, "spec.localPref", |a| a.local_pref, r) {
        adv.local_pref = Some(v);
    }
    if let Some(v) = first(ads, "spec.med", |a| a.med, r) {
        adv.med = Some(v);
    }
    if let Some(v) = first(ads, "spec.asPathPrepend", |a| a.as_path_prepend, r) {
        adv.as_path_prepend = v;
    }
    let (field, pool_len, host, from_ads) = match addr {
        IpAddr::V4(_) => (
            "spec.aggregationLength",
            pool.advertisement.aggregation_length_v4,
            32,
            first(ads, "spec.aggregationLength", |a| a.aggregation_length_v4, r),
        ),
        IpAddr::V6(_) => (
            "spec.aggregationLengthV6",
            pool.advertisement.aggregation_length_v6,
            128,
            first(ads, "spec.aggregationLengthV6", |a| a.aggregation_length_v6, r),
        ),
    };
    let len = match from_ads {
        Some(len) if covers_only_pool(pool, addr, len) => len,
        Some(len) => {
            let winner = ads.iter().find(|(_, a)| match addr {
                IpAddr::V4(_) => a.aggregation_length_v4.is_some(),
                IpAddr::V6(_) => a.aggregation_length_v6.is_some(),
            });
            if let Some((n, _)) = winner {
                r.report(
                    n,
                    field,
                    format!(
                        "/{len} would cover addresses outside Eip/{} ({addr}/{len}): {addr} is announced as a host route",
                        pool.pool.name
                    ),
                );
            }
            host
        }
        None => pool_len.unwrap_or(host),
    };
    (adv, len)
}

/// The prefix length an advertisement asks for `addr` (its own, else the pool's, else a host
/// route).
fn asked_len(pool: &PoolConfig, addr: IpAddr, a: &AdvertisementSettings) -> u8 {
    match addr {
        IpAddr::V4(_) => a.aggregation_length_v4.or(pool.advertisement.aggregation_length_v4).unwrap_or(32),
        IpAddr::V6(_) => a.aggregation_length_v6.or(pool.advertisement.aggregation_length_v6).unwrap_or(128),
    }
}

/// Whether `addr/len` lies inside one range of the pool.
fn covers_only_pool(pool: &PoolConfig, addr: IpAddr, len: u8) -> bool {
    let Ok(net) = IpNetwork::new(addr, len).map(mooring_bgp::wire::masked) else { return false };
    let (first, last) = (net.network(), net.broadcast());
    pool.pool.ranges.iter().any(|r| r.contains(first) && r.contains(last))
}

/// Advertisements that name pools or peers that do not exist.
pub fn unknown_names(
    advertisements: &[(String, AdvertisementSettings)],
    pools: &[PoolConfig],
    peers: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) {
    for (name, a) in advertisements {
        for (i, e) in a.eips.iter().enumerate() {
            if !pools.iter().any(|p| &p.pool.name == e) {
                problems.push(Problem {
                    object: format!("BgpAdvertisement/{name}"),
                    field: format!("spec.eips[{i}]"),
                    message: format!("there is no (valid) Eip {e:?}"),
                });
            }
        }
        for (i, p) in a.peers.iter().enumerate() {
            if !peers.contains(p) {
                problems.push(Problem {
                    object: format!("BgpAdvertisement/{name}"),
                    field: format!("spec.peers[{i}]"),
                    message: format!("there is no (valid) BgpPeer {p:?}"),
                });
            }
        }
    }
}

/// Paths are addressed to peers by address (`RouteAttrs::to`), so two BgpPeers with one
/// address in different VRFs receive the same paths. An advertisement that selects one of
/// them but not the other cannot be honoured: say so (once per advertisement and pair).
pub fn same_address_peers(
    advertisements: &[(String, AdvertisementSettings)],
    peers: &[PeerRef],
    problems: &mut Vec<Problem>,
) {
    for (name, a) in advertisements {
        for (i, p) in peers.iter().enumerate() {
            for q in &peers[i + 1..] {
                if p.address != q.address || selects_peer(a, p) == selects_peer(a, q) {
                    continue;
                }
                let (yes, no) = if selects_peer(a, p) { (p, q) } else { (q, p) };
                let vrf = |r: &PeerRef| r.vrf.clone().map_or("the default VRF".to_string(), |v| format!("VRF {v}"));
                problems.push(Problem {
                    object: format!("BgpAdvertisement/{name}"),
                    field: if a.peers.is_empty() { "spec.peerSelector".into() } else { "spec.peers".into() },
                    message: format!(
                        "selects BgpPeer {:?} ({}) but not BgpPeer {:?} ({}), which has the same address {}: \
                         paths go to peers by address, so both receive them",
                        yes.name,
                        vrf(yes),
                        no.name,
                        vrf(no),
                        p.address
                    ),
                });
            }
        }
    }
}

/// The node's routes. With no advertisement at all, exactly the pools' routes to every peer
/// (as before advertisements existed).
pub fn routes(x: &Inputs<'_>, problems: &mut Vec<Problem>) -> Routes {
    let snap = x.snapshot;
    if x.advertisements.is_empty() {
        let announced = desired::announcements(snap, x.vips, x.node);
        return Routes {
            services: announced.iter().map(|(p, a)| (*p, a.services.clone())).collect(),
            routes: announced.into_values().map(|a| (a.prefix, desired::route_attrs(snap, &a, x.local_as))).collect(),
        };
    }
    let services: HashMap<String, &Service> = snap.services.iter().map(|s| (desired::key_of(s), &**s)).collect();
    let no_labels = BTreeMap::new();
    let labels_of = |key: &String| services.get(key).and_then(|s| s.metadata.labels.as_ref()).unwrap_or(&no_labels);
    let mut r = Reporter::default();
    // Merged by (prefix, peers, attributes): the Services behind each, their weights.
    let mut merged: Vec<(IpNetwork, Target, Announcement)> = vec![];
    let mut index: HashMap<(IpNetwork, Option<Vec<IpAddr>>), Vec<usize>> = HashMap::new();
    for a in desired::announcements_of(snap, x.vips, x.node, false).into_values() {
        let Some(pool) = snap.pools.iter().find(|p| p.pool.name == a.pool) else { continue };
        let addr = a.prefix.ip();
        let selecting: Vec<&(String, AdvertisementSettings)> = x
            .advertisements
            .iter()
            .filter(|(_, ad)| {
                selects_pool(ad, pool) && a.services.iter().any(|s| matches(&ad.service_selector, labels_of(s)))
            })
            .collect();
        let mut targets: Vec<Target> = vec![];
        if selecting.is_empty() {
            let len = match addr {
                IpAddr::V4(_) => pool.advertisement.aggregation_length_v4.unwrap_or(32),
                IpAddr::V6(_) => pool.advertisement.aggregation_length_v6.unwrap_or(128),
            };
            targets.push(Target { to: None, adv: pool.advertisement.clone(), len });
        } else {
            let here: Vec<&(String, AdvertisementSettings)> =
                selecting.into_iter().filter(|(_, ad)| matches(&ad.node_selector, x.node_labels)).collect();
            for peer in x.peers {
                let for_peer: Vec<&(String, AdvertisementSettings)> =
                    here.iter().copied().filter(|(_, ad)| selects_peer(ad, peer)).collect();
                // Advertisements asking for different prefix lengths each announce their own
                // prefix (as MetalLB's do); those asking for the same one combine.
                let mut by_len: Vec<(u8, Vec<&(String, AdvertisementSettings)>)> = vec![];
                for ad in for_peer {
                    let len = asked_len(pool, addr, &ad.1);
                    match by_len.iter_mut().find(|(l, _)| *l == len) {
                        Some((_, group)) => group.push(ad),
                        None => by_len.push((len, vec![ad])),
                    }
                }
                for (_, group) in by_len {
                    let (adv, len) = combine(pool, addr, &group, &mut r);
                    match targets.iter_mut().find(|t| t.adv == adv && t.len == len) {
                        Some(t) => t.to.get_or_insert_with(Vec::new).push(peer.address),
                        None => targets.push(Target { to: Some(vec![peer.address]), adv, len }),
                    }
                }
            }
        }
        for t in targets {
            let Ok(prefix) = IpNetwork::new(addr, t.len).map(mooring_bgp::wire::masked) else { continue };
            let slot = index.entry((prefix, t.to.clone())).or_default();
            match slot.iter().copied().find(|&i| merged[i].1.adv == t.adv) {
                Some(i) => {
                    let into = &mut merged[i].2;
                    let mut added = false;
                    for s in &a.services {
                        added |= into.services.insert(s.clone());
                    }
                    if let (true, Some((n, tr))) = (added, a.weight) {
                        let (sum, t) = into.weight.get_or_insert((0, tr));
                        *sum += n;
                        *t &= tr;
                    }
                }
                None => {
                    slot.push(merged.len());
                    merged.push((prefix, t, Announcement { prefix, ..a.clone() }));
                }
            }
        }
    }
    problems.extend(r.problems);
    // Per prefix: the paths for named peers first (in peer order), the one for every peer last.
    merged.sort_by(|(p1, t1, _), (p2, t2, _)| {
        p1.cmp(p2).then_with(|| t1.to.is_none().cmp(&t2.to.is_none())).then_with(|| t1.to.cmp(&t2.to))
    });
    let mut out = Routes::default();
    for (prefix, t, a) in merged {
        out.services.entry(prefix).or_default().extend(a.services.iter().cloned());
        let mut attrs = desired::route_attrs_with(t.adv, &a, x.local_as);
        attrs.to = t.to.map(Arc::from);
        out.routes.push((prefix, attrs));
    }
    out
}

#[cfg(test)]
#[path = "advertise_tests.rs"]
mod tests;
