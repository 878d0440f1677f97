//! Objects in, desired state out: the VIP of every LoadBalancer Service
//! of ours, and the routes a given node announces.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipnetwork::IpNetwork;
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::annotations;
use super::classes::Classes;
use super::ipam::{self, Allocation, Backend, IpFamily, Pool, PortKey, Request};
use super::selector;

/// `endpoints`: weight each node's path by its ready local endpoints
/// (link-bandwidth extended community, 1 Mbit/s per endpoint).
pub const WEIGHTING_ANNOTATION: &str = "mooring.io/weighting";
/// `transitive` (default; what FRR 8 honours) or `non-transitive`.
pub const LINK_BANDWIDTH_ANNOTATION: &str = "mooring.io/link-bandwidth";
/// Per-Service overrides of the pool's advertisement (steering between
/// clusters that announce the same VIP).
pub const MED_ANNOTATION: &str = "mooring.io/med";
pub const LOCAL_PREF_ANNOTATION: &str = "mooring.io/local-pref";
pub const PREPEND_ANNOTATION: &str = "mooring.io/as-path-prepend";
pub const COMMUNITIES_ANNOTATION: &str = "mooring.io/communities";
pub const LARGE_COMMUNITIES_ANNOTATION: &str = "mooring.io/large-communities";
/// Link bandwidth advertised per ready endpoint: 1 Mbit/s in octets/s.
pub const BANDWIDTH_PER_ENDPOINT: f32 = 125_000.0;

/// Route attributes an address pool gives its VIPs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advertisement {
    pub communities: Vec<mooring_bgp::wire::Community>,
    pub large_communities: Vec<mooring_bgp::wire::LargeCommunity>,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub as_path_prepend: u8,
    pub aggregation_length_v4: Option<u8>,
    pub aggregation_length_v6: Option<u8>,
    /// Weighted ECMP by ready local endpoints, and whether the
    /// link-bandwidth community is sent in its transitive form.
    pub weighting: Option<bool>,
}

/// An address pool (an `Eip`), already parsed and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pub pool: Pool,
    /// Namespaces allowed by name; with `namespace_selector` both empty, all are.
    pub namespaces: Vec<String>,
    pub namespace_selector: Option<LabelSelector>,
    pub advertisement: Advertisement,
    /// The Eip's labels (BgpAdvertisement `eipSelector`).
    pub labels: BTreeMap<String, String>,
}

/// Everything the model looks at.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub pools: Vec<PoolConfig>,
    pub services: Vec<Arc<Service>>,
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    pub nodes: Vec<Arc<Node>>,
    pub namespaces: Vec<Arc<Namespace>>,
    /// Cordoned nodes stop announcing Cluster services.
    pub exclude_cordoned: bool,
    /// Which Services are ours.
    pub classes: Classes,
}

/// Owned objects, each into its own [`Arc`] (for tests and other callers that build
/// objects one by one).
pub fn shared<K>(objects: impl IntoIterator<Item = K>) -> Vec<Arc<K>> {
    objects.into_iter().map(Arc::new).collect()
}

/// `namespace/name` of an object.
pub fn key_of(svc: &Service) -> String {
    format!("{}/{}", svc.metadata.namespace.as_deref().unwrap_or("default"), svc.metadata.name.as_deref().unwrap_or(""))
}

/// A Service is ours when it is a LoadBalancer that `classes` serves.
pub fn is_ours(svc: &Service, classes: &Classes) -> bool {
    classes.serves(svc)
}

fn annotation<'a>(svc: &'a Service, key: &str) -> Option<&'a str> {
    svc.metadata.annotations.as_ref()?.get(key).map(|s| s.as_str())
}

/// Addresses in the Service's status.
pub fn status_ips(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect()
}

/// Problems with a Service's own spec, named by field (become Events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

/// The allocation request of a Service.
pub fn request_for(svc: &Service, snapshot: &Snapshot) -> (Request, Vec<SpecError>) {
    let mut errors = vec![];
    let no_spec = k8s_openapi::api::core::v1::ServiceSpec::default();
    let spec = svc.spec.as_ref().unwrap_or(&no_spec);
    let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
    let ns_labels: BTreeMap<String, String> = snapshot
        .namespaces
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(ns))
        .and_then(|n| n.metadata.labels.clone())
        .unwrap_or_default();
    let allowed_pools = snapshot
        .pools
        .iter()
        .filter(|p| {
            let open = p.namespaces.is_empty() && p.namespace_selector.is_none();
            open || p.namespaces.iter().any(|n| n == ns)
                || p.namespace_selector.as_ref().is_some_and(|s| selector::matches(s, &ns_labels))
        })
        .map(|p| p.pool.name.clone())
        .collect();
    let addresses = annotations::requested_addresses(svc, &mut errors);
    let families: Vec<IpFamily> = match spec.ip_families.as_deref() {
        Some(f) if !f.is_empty() => f
            .iter()
            .filter_map(|x| match x.as_str() {
                "IPv4" => Some(IpFamily::V4),
                "IPv6" => Some(IpFamily::V6),
                _ => None,
            })
            .collect(),
        _ => addresses.first().map(|a| vec![IpFamily::of(a)]).unwrap_or_else(|| vec![IpFamily::V4]),
    };
    let ports = spec
        .ports
        .iter()
        .flatten()
        .map(|p| PortKey { protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()), port: p.port })
        .collect();
    let request = Request {
        key: key_of(svc),
        created: svc.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
        families,
        require_all_families: spec.ip_family_policy.as_deref() == Some("RequireDualStack"),
        allowed_pools,
        pool: annotations::first_of(svc, &annotations::POOL, &mut errors),
        addresses,
        current: status_ips(svc),
        sharing_key: annotations::first_of(svc, &annotations::SHARING, &mut errors),
        ports,
        backend: match spec.external_traffic_policy.as_deref() {
            Some("Local") => Backend::Local(spec.selector.clone().unwrap_or_default()),
            _ => Backend::Cluster,
        },
    };
    (request, errors)
}

/// The model's answer for the whole cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Per Service (`namespace/name`): its addresses and problems.
    pub allocations: BTreeMap<String, Allocation>,
    pub spec_errors: BTreeMap<String, Vec<SpecError>>,
}

/// Allocate a VIP for every Service of ours.
pub fn allocate(snapshot: &Snapshot) -> Desired {
    let mut spec_errors = BTreeMap::new();
    let mut requests = vec![];
    for svc in snapshot.services.iter().filter(|s| is_ours(s, &snapshot.classes)) {
        let (r, mut e) = request_for(svc, snapshot);
        e.extend(service_overrides(svc).1);
        if !e.is_empty() {
            spec_errors.insert(r.key.clone(), e);
        }
        requests.push(r);
    }
    let pools: Vec<Pool> = snapshot.pools.iter().map(|p| p.pool.clone()).collect();
    Desired { allocations: allocate_memo(pools, requests), spec_errors }
}

/// The last allocation's inputs and answer.
type Memo = Option<(Vec<Pool>, Vec<Request>, BTreeMap<String, Allocation>)>;

thread_local! {
    /// The allocator is pure: the same pools and requests give the same
    /// answer, so a change that leaves them as they were (an EndpointSlice,
    /// a Node, a peer) reuses the last one instead of allocating for every
    /// Service again.
    static LAST_ALLOCATION: std::cell::RefCell<Memo> = const { std::cell::RefCell::new(None) };
}

/// [`ipam::allocate`], answered from the last call when its inputs are the same.
pub fn allocate_memo(pools: Vec<Pool>, requests: Vec<Request>) -> BTreeMap<String, Allocation> {
    LAST_ALLOCATION.with(|m| {
        let mut m = m.borrow_mut();
        if let Some((p, r, out)) = m.as_ref() {
            if *p == pools && *r == requests {
                return out.clone();
            }
        }
        let out = ipam::allocate(&pools, &requests);
        *m = Some((pools, requests, out.clone()));
        out
    })
}

/// One route a node announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub prefix: IpNetwork,
    /// The Services behind it (`namespace/name`).
    pub services: BTreeSet<String>,
    pub pool: String,
    /// Weighted ECMP: this node's ready endpoints behind the prefix, and
    /// whether the link-bandwidth community is sent in its transitive form.
    pub weight: Option<(u64, bool)>,
    /// Per-Service overrides of the pool's advertisement (the first
    /// Service's, by name, when several share the prefix).
    pub overrides: Advertisement,
}

/// The advertisement overrides a Service's annotations ask for; bad values
/// are reported (field named) and ignored.
pub fn service_overrides(svc: &Service) -> (Advertisement, Vec<SpecError>) {
    let mut a = Advertisement::default();
    let mut errors = vec![];
    let field = |k: &str| format!("metadata.annotations[{k}]");
    let num = |k: &str, errors: &mut Vec<SpecError>| -> Option<u32> {
        let v = annotation(svc, k)?;
        match v.trim().parse() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(SpecError { field: field(k), message: format!("{v:?} is not a number") });
                None
            }
        }
    };
    a.med = num(MED_ANNOTATION, &mut errors);
    a.local_pref = num(LOCAL_PREF_ANNOTATION, &mut errors);
    if let Some(p) = num(PREPEND_ANNOTATION, &mut errors) {
        if p <= 16 {
            a.as_path_prepend = p as u8;
        } else {
            errors.push(SpecError { field: field(PREPEND_ANNOTATION), message: format!("{p} is more than 16") });
        }
    }
    for c in annotation(svc, COMMUNITIES_ANNOTATION).into_iter().flat_map(|v| v.split(',')).map(str::trim) {
        match c.parse() {
            Ok(c) => a.communities.push(c),
            Err(e) => errors.push(SpecError { field: field(COMMUNITIES_ANNOTATION), message: format!("{e}") }),
        }
    }
    for c in annotation(svc, LARGE_COMMUNITIES_ANNOTATION).into_iter().flat_map(|v| v.split(',')).map(str::trim) {
        match c.parse() {
            Ok(c) => a.large_communities.push(c),
            Err(e) => errors.push(SpecError { field: field(LARGE_COMMUNITIES_ANNOTATION), message: format!("{e}") }),
        }
    }
    (a, errors)
}

/// The routes `node` announces, given the VIPs (from the allocator in
/// standalone mode, from Service status in a cluster's speaker), each VIP
/// aggregated as its pool says.
pub fn announcements(
    snapshot: &Snapshot,
    vips: &BTreeMap<String, Vec<(IpAddr, String)>>,
    node: &str,
) -> BTreeMap<IpNetwork, Announcement> {
    announcements_of(snapshot, vips, node, true)
}

/// As [`announcements`], with `aggregate` false one host route per VIP
/// (`/32`, `/128`) whatever its pool says.
pub fn announcements_of(
    snapshot: &Snapshot,
    vips: &BTreeMap<String, Vec<(IpAddr, String)>>,
    node: &str,
    aggregate: bool,
) -> BTreeMap<IpNetwork, Announcement> {
    let mut out: BTreeMap<IpNetwork, Announcement> = BTreeMap::new();
    // Indexed once per call: the work stays linear in objects, not
    // Services × EndpointSlices × Nodes.
    let this_node_eligible = snapshot
        .nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))
        .is_some_and(|n| super::nodes::node_eligible(n, snapshot.exclude_cordoned));
    let slices = super::nodes::SliceIndex::new(&snapshot.endpoint_slices);
    for svc in snapshot.services.iter().filter(|s| is_ours(s, &snapshot.classes)) {
        let key = key_of(svc);
        let Some(addrs) = vips.get(&key) else { continue };
        let ready = || slices.ready_on(svc, node);
        let announces = this_node_eligible && (!super::nodes::is_local_policy(svc) || ready() > 0);
        if !announces {
            continue;
        }
        for (addr, pool) in addrs {
            let adv = snapshot.pools.iter().find(|p| &p.pool.name == pool).map(|p| &p.advertisement);
            // Weighting: the Service's annotation, else the pool's setting.
            let transitive = match annotation(svc, LINK_BANDWIDTH_ANNOTATION) {
                Some(v) => v != "non-transitive",
                None => adv.and_then(|a| a.weighting).unwrap_or(true),
            };
            let weighted = match annotation(svc, WEIGHTING_ANNOTATION) {
                Some(v) => v == "endpoints",
                None => adv.is_some_and(|a| a.weighting.is_some()),
            };
            let weight = weighted.then(|| (ready(), transitive));
            let len = match addr {
                IpAddr::V4(_) => adv.and_then(|a| a.aggregation_length_v4).filter(|_| aggregate).unwrap_or(32),
                IpAddr::V6(_) => adv.and_then(|a| a.aggregation_length_v6).filter(|_| aggregate).unwrap_or(128),
            };
            let Ok(prefix) = IpNetwork::new(*addr, len).map(mooring_bgp::wire::masked) else { continue };
            let a = out.entry(prefix).or_insert_with(|| Announcement {
                prefix,
                services: BTreeSet::new(),
                pool: pool.clone(),
                weight: None,
                overrides: service_overrides(svc).0,
            });
            if a.services.insert(key.clone()) {
                // Services sharing the prefix add up their endpoints.
                if let Some((n, transitive)) = weight {
                    let (sum, t) = a.weight.get_or_insert((0, transitive));
                    *sum += n;
                    *t &= transitive;
                }
            }
        }
    }
    out
}

/// The speaker's route attributes for an announcement: its pool's, the
/// Service's overrides winning.
pub fn route_attrs(snapshot: &Snapshot, a: &Announcement, local_as: u32) -> mooring_bgp::speaker::RouteAttrs {
    let adv =
        snapshot.pools.iter().find(|p| p.pool.name == a.pool).map(|p| p.advertisement.clone()).unwrap_or_default();
    route_attrs_with(adv, a, local_as)
}

/// The speaker's route attributes for an announcement with `adv` in place
/// of its pool's; the Service's overrides win.
pub fn route_attrs_with(adv: Advertisement, a: &Announcement, local_as: u32) -> mooring_bgp::speaker::RouteAttrs {
    let ext_communities = a
        .weight
        .map(|(n, transitive)| mooring_bgp::wire::ExtCommunity::LinkBandwidth {
            asn: u16::try_from(local_as).unwrap_or(mooring_bgp::wire::AS_TRANS),
            bytes_per_sec: n as f32 * BANDWIDTH_PER_ENDPOINT,
            transitive,
        })
        .into_iter()
        .collect();
    let o = &a.overrides;
    let mut communities = adv.communities;
    communities.extend(o.communities.iter().filter(|c| !communities.contains(c)).copied().collect::<Vec<_>>());
    let mut large_communities = adv.large_communities;
    large_communities
        .extend(o.large_communities.iter().filter(|c| !large_communities.contains(c)).copied().collect::<Vec<_>>());
    mooring_bgp::speaker::RouteAttrs {
        ext_communities,
        med: o.med.or(adv.med),
        local_pref: o.local_pref.or(adv.local_pref),
        communities,
        large_communities,
        as_path_prepend: if o.as_path_prepend > 0 { o.as_path_prepend } else { adv.as_path_prepend },
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
