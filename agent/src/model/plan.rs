//! From objects to what one node's speaker must do: the speaker settings,
//! its peers, and its routes. Pure: the standalone runner and the
//! Kubernetes speaker both call it. Each BgpConf, BgpPeer and Eip goes
//! through its parse (`mooring_crds::settings`) first: an invalid one is
//! reported field by field and not used; the rest maps typed settings to the
//! speaker's configuration without parsing anything again.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnetwork::IpNetwork;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use mooring_bgp::fsm::GracefulRestartConfig;
use mooring_bgp::speaker::{PeerConfig, RouteAttrs, SpeakerConfig};
use mooring_bgp::wire::Community;
use mooring_crds::{
    AdvertisementSettings, BgpAdvertisement, BgpConf, BgpPeer, Eip, FieldErrors, LinkBandwidthForm, Password, PeerMode,
    PeerSettings, PoolSettings, SpeakerSettings,
};

use crate::model::advertise;
use crate::model::classes::Classes;
pub use crate::model::desired::shared;
use crate::model::desired::{self, Advertisement, Desired, PoolConfig, Snapshot};
use crate::model::ipam::Pool;
use crate::model::selector;

/// The objects the plan reads. The kinds a cluster has thousands of (Services,
/// EndpointSlices, Nodes, Namespaces) are shared with the source that holds them (the
/// reflector stores, the loaded manifests): taking a snapshot of them costs a reference
/// count per object, not a copy. The custom resources and Secrets are few and owned.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    pub confs: Vec<BgpConf>,
    pub peers: Vec<BgpPeer>,
    pub eips: Vec<Eip>,
    pub advertisements: Vec<BgpAdvertisement>,
    pub services: Vec<Arc<Service>>,
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    pub nodes: Vec<Arc<Node>>,
    pub namespaces: Vec<Arc<Namespace>>,
    pub secrets: Vec<Secret>,
    /// Referenced Secrets that could not be read, (namespace, name) → why
    /// (the cluster's source; a Secret read before stays in `secrets`).
    pub secret_errors: BTreeMap<(String, String), String>,
}

/// A problem found while planning, named by object and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `Kind/name` or `Kind/namespace/name`.
    pub object: String,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.object, self.message)
        } else {
            write!(f, "{} {}: {}", self.object, self.field, self.message)
        }
    }
}

fn problem(object: String, field: &str, message: impl Into<String>) -> Problem {
    Problem { object, field: field.into(), message: message.into() }
}

/// What one node's speaker must do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// `None` when there is no usable BgpConf.
    pub speaker: Option<SpeakerConfig>,
    pub peers: Vec<PeerConfig>,
    pub routes: Vec<(IpNetwork, RouteAttrs)>,
    /// The Services (`namespace/name`) behind each route.
    pub route_services: BTreeMap<IpNetwork, BTreeSet<String>>,
    /// Every address a Service of ours holds, announced by this node or not: a path
    /// whose address leaves this set went with its Service (see [`crate::node::flap`]).
    pub vips: BTreeSet<IpAddr>,
    pub desired: Desired,
    pub problems: Vec<Problem>,
}

fn name(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    m.name.clone().unwrap_or_default()
}

/// The node's first IPv4 InternalIP.
pub fn node_ipv4(node: &Node) -> Option<Ipv4Addr> {
    node.status
        .as_ref()?
        .addresses
        .iter()
        .flatten()
        .find_map(|a| (a.type_ == "InternalIP").then(|| a.address.parse::<Ipv4Addr>().ok()).flatten())
}

/// One object's field errors as problems.
pub fn field_problems<'a>(object: &'a str, errors: &'a FieldErrors) -> impl Iterator<Item = Problem> + 'a {
    errors.errors().iter().map(move |e| {
        let message = match &e.detail {
            Some(d) => format!("{} ({d})", e.message),
            None => e.message.clone(),
        };
        problem(object.to_string(), &e.path, message)
    })
}

/// Each object parsed into its settings (`parse`, one of the `TryFrom` impls of
/// `mooring_crds::settings`), by name; an invalid object is reported, field by field, and
/// left out.
pub fn parse_each<'a, K, S>(
    kind: &str,
    objects: &'a [K],
    parse: impl Fn(&'a K) -> Result<S, FieldErrors>,
    problems: &mut Vec<Problem>,
) -> Vec<(String, S)>
where
    K: kube::Resource,
{
    objects
        .iter()
        .filter_map(|o| {
            let name = name(o.meta());
            match parse(o) {
                Ok(settings) => Some((name, settings)),
                Err(errors) => {
                    problems.extend(field_problems(&format!("{kind}/{name}"), &errors));
                    None
                }
            }
        })
        .collect()
}

/// A checked Eip as the allocator and the announcer see it.
pub fn pool_config(name: &str, s: &PoolSettings) -> PoolConfig {
    PoolConfig {
        pool: Pool {
            name: name.to_string(),
            ranges: s.ranges.clone(),
            reserved: s.reserved.iter().copied().collect(),
            disabled: s.disabled,
            priority: s.priority,
            auto_assign: s.auto_assign,
            share_across_namespaces: s.share_across_namespaces,
        },
        namespaces: s.namespaces.clone(),
        namespace_selector: s.namespace_selector.clone(),
        advertisement: Advertisement {
            communities: s.communities.clone(),
            large_communities: s.large_communities.clone(),
            local_pref: s.local_pref,
            med: s.med,
            as_path_prepend: s.as_path_prepend,
            aggregation_length_v4: s.aggregation_length_v4,
            aggregation_length_v6: s.aggregation_length_v6,
            weighting: s.weighting.map(|form| form == LinkBandwidthForm::Transitive),
        },
        labels: BTreeMap::new(),
    }
}

/// Eips into pools; an invalid Eip is left out (and each of its field errors reported).
pub fn pools(eips: &[Eip], problems: &mut Vec<Problem>) -> Vec<PoolConfig> {
    let labels = |name: &str| {
        eips.iter().find(|e| e.metadata.name.as_deref() == Some(name)).and_then(|e| e.metadata.labels.clone())
    };
    parse_each("Eip", eips, PoolSettings::try_from, problems)
        .iter()
        .map(|(n, s)| PoolConfig { labels: labels(n).unwrap_or_default(), ..pool_config(n, s) })
        .collect()
}

/// The password under `key` of Secret `ns/n`, or why there is none.
fn secret_value(
    secrets: &[Secret],
    errors: &BTreeMap<(String, String), String>,
    ns: &str,
    n: &str,
    key: &str,
) -> Result<String, String> {
    let Some(s) =
        secrets.iter().find(|s| s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(n))
    else {
        let why = errors.get(&(ns.to_string(), n.to_string())).map_or("not found", String::as_str);
        return Err(format!("Secret {ns}/{n}: {why}"));
    };
    let value = match s.data.as_ref().and_then(|d| d.get(key)) {
        Some(v) => String::from_utf8(v.0.clone()).map_err(|_| format!("Secret {ns}/{n} key {key:?} is not UTF-8"))?,
        None => s
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))
            .cloned()
            .ok_or_else(|| format!("Secret {ns}/{n} has no key {key:?}"))?,
    };
    Ok(value)
}

/// The peer configurations of the BgpPeers that select `node`; an invalid BgpPeer is left
/// out (and each of its field errors reported).
pub fn peers(objects: &Objects, node: Option<&Node>, problems: &mut Vec<Problem>) -> Vec<PeerConfig> {
    let mut settings = parse_each("BgpPeer", &objects.peers, PeerSettings::try_from, problems);
    // A Central peer is the central speakers' (see `central`).
    settings.retain(|(_, s)| s.mode == PeerMode::Node);
    peer_configs(&settings, &objects.secrets, &objects.secret_errors, node, problems)
}

/// Checked BgpPeers (by name) into the configurations of those that select `node`, their
/// passwords read from `secrets`.
pub fn peer_configs(
    peers: &[(String, PeerSettings)],
    secrets: &[Secret],
    secret_errors: &BTreeMap<(String, String), String>,
    node: Option<&Node>,
    problems: &mut Vec<Problem>,
) -> Vec<PeerConfig> {
    let labels = node.and_then(|n| n.metadata.labels.clone()).unwrap_or_default();
    // One session per address and VRF: the same address may be a peer in two VRFs.
    let mut out: BTreeMap<(Option<String>, IpAddr), PeerConfig> = BTreeMap::new();
    for (name, s) in peers {
        let obj = format!("BgpPeer/{name}");
        if s.node_selector.as_ref().is_some_and(|sel| !selector::matches(sel, &labels)) {
            continue;
        }
        let mut c = s.config.clone();
        c.md5_password = match &s.password {
            Some(Password::Plain(pw)) => Some(pw.clone()),
            Some(Password::Secret(r)) => match secret_value(secrets, secret_errors, &r.namespace, &r.name, &r.key) {
                Ok(pw) => Some(pw),
                Err(msg) => {
                    problems.push(problem(obj, "spec.passwordSecretRef", msg));
                    continue;
                }
            },
            None => None,
        };
        // A VRF peer's next hop is the session's own address in the VRF: the
        // node's InternalIPs are in the default VRF.
        if let Some(n) = node.filter(|_| c.vrf.is_none()) {
            // Next hops for the family the session's own address does not give.
            for a in n.status.iter().flat_map(|s| s.addresses.iter().flatten()).filter(|a| a.type_ == "InternalIP") {
                match a.address.parse::<IpAddr>() {
                    Ok(IpAddr::V4(v4)) if c.next_hop_v4.is_none() => c.next_hop_v4 = Some(v4),
                    Ok(IpAddr::V6(v6)) if c.next_hop_v6.is_none() => c.next_hop_v6 = Some(v6),
                    _ => {}
                }
            }
        }
        let key = c.key();
        if out.insert((c.vrf.clone(), c.address), c).is_some() {
            problems.push(problem(
                obj,
                "spec.peerAddress",
                format!("{key} is used by another BgpPeer too; this one wins"),
            ));
        }
    }
    out.into_values().collect()
}

/// The speaker settings from the BgpConf named `default`; every BgpConf is checked, and one
/// with another name is reported.
pub fn speaker_config(objects: &Objects, node: Option<&Node>, problems: &mut Vec<Problem>) -> Option<SpeakerConfig> {
    let confs = parse_each("BgpConf", &objects.confs, SpeakerSettings::try_from, problems);
    let (_, settings) = confs.iter().find(|(n, _)| n == "default")?;
    speaker_config_from(settings, node, problems)
}

/// A checked BgpConf into the speaker's configuration on `node` (the router ID and hostname
/// default to the node's).
pub fn speaker_config_from(
    s: &SpeakerSettings,
    node: Option<&Node>,
    problems: &mut Vec<Problem>,
) -> Option<SpeakerConfig> {
    let router_id = match s.router_id.or_else(|| node.and_then(node_ipv4)) {
        Some(id) => id,
        None => {
            problems.push(problem(
                "BgpConf/default".into(),
                "spec.routerId",
                "not set, and the node has no IPv4 InternalIP",
            ));
            return None;
        }
    };
    Some(SpeakerConfig {
        local_as: s.local_as,
        router_id,
        listen: s.listen_port.map(|p| SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, p))),
        hostname: s.hostname.clone().or_else(|| node.and_then(|n| n.metadata.name.clone())),
        graceful_restart: s.graceful_restart.map(|restart_time| GracefulRestartConfig {
            restart_time,
            restarting: false,
            forwarding_preserved: true,
        }),
    })
}

/// What the plan serves: which Services are ours and which nodes announce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Cordoned nodes stop announcing Cluster services.
    pub exclude_cordoned: bool,
    /// Which Services are ours.
    pub classes: Classes,
}

/// The model's input from the objects. `held` gives the addresses
/// Services held before (the state directory in standalone mode), used
/// where their status is empty.
pub fn snapshot(
    objects: &Objects,
    held: &BTreeMap<String, Vec<IpAddr>>,
    scope: &Scope,
    problems: &mut Vec<Problem>,
) -> Snapshot {
    let mut services = objects.services.clone();
    for svc in &mut services {
        if desired::status_ips(svc).is_empty() {
            if let Some(ips) = held.get(&desired::key_of(svc)) {
                // Only these Services are copied (from the source's shared version).
                let svc = Arc::make_mut(svc);
                let ingress = ips
                    .iter()
                    .map(|ip| k8s_openapi::api::core::v1::LoadBalancerIngress {
                        ip: Some(ip.to_string()),
                        ..Default::default()
                    })
                    .collect();
                let status = svc.status.get_or_insert_with(Default::default);
                status.load_balancer = Some(k8s_openapi::api::core::v1::LoadBalancerStatus { ingress: Some(ingress) });
            }
        }
    }
    Snapshot {
        pools: pools(&objects.eips, problems),
        services,
        endpoint_slices: objects.endpoint_slices.clone(),
        nodes: objects.nodes.clone(),
        namespaces: objects.namespaces.clone(),
        exclude_cordoned: scope.exclude_cordoned,
        classes: scope.classes.clone(),
    }
}

/// Allocation problems as named problems.
pub fn allocation_problems(desired: &Desired, problems: &mut Vec<Problem>) {
    for (svc, errs) in &desired.spec_errors {
        for e in errs {
            problems.push(problem(format!("Service/{svc}"), &e.field, e.message.clone()));
        }
    }
    for (svc, a) in &desired.allocations {
        for e in &a.errors {
            problems.push(problem(format!("Service/{svc}"), "", format!("{}: {e}", e.reason())));
        }
    }
}

/// Where a node's VIPs come from.
#[derive(Debug, Clone, Copy)]
pub enum Vips<'a> {
    /// Allocate them here, from the objects (standalone mode: every node
    /// computes the same allocation); `held` gives the addresses Services
    /// held before (the state directory), used where their status is empty.
    Allocate(&'a BTreeMap<String, Vec<IpAddr>>),
    /// Take them from Service status (a cluster's speaker: the controller
    /// allocates, the speaker never does).
    FromStatus,
}

/// Per Service (`namespace/name`): its VIPs and their pools.
pub type ServiceVips = BTreeMap<String, Vec<(IpAddr, String)>>;

/// The model's input, the allocation (when VIPs are allocated here) and every Service's
/// VIPs: what the per-node and the central plans start from.
pub fn vip_inputs(
    objects: &Objects,
    vips: Vips<'_>,
    scope: &Scope,
    problems: &mut Vec<Problem>,
) -> (Snapshot, Desired, ServiceVips) {
    let no_held = BTreeMap::new();
    let held = match vips {
        Vips::Allocate(held) => held,
        Vips::FromStatus => &no_held,
    };
    let snap = snapshot(objects, held, scope, problems);
    let (desired, addresses) = allocation(&snap, vips, problems);
    (snap, desired, addresses)
}

/// The allocation (when VIPs are allocated here) and every Service's VIPs of a snapshot.
fn allocation(snap: &Snapshot, vips: Vips<'_>, problems: &mut Vec<Problem>) -> (Desired, ServiceVips) {
    match vips {
        Vips::Allocate(_) => {
            let desired = desired::allocate(snap);
            allocation_problems(&desired, problems);
            let addresses = desired.allocations.iter().map(|(k, a)| (k.clone(), a.addresses.clone())).collect();
            (desired, addresses)
        }
        Vips::FromStatus => (Desired::default(), vips_from_status(snap)),
    }
}

/// The checked BgpAdvertisements in name order, with those naming unknown pools or peers
/// reported.
pub fn advertisements(
    objects: &Objects,
    snap: &Snapshot,
    problems: &mut Vec<Problem>,
) -> Vec<(String, AdvertisementSettings)> {
    let mut advertisements =
        parse_each("BgpAdvertisement", &objects.advertisements, AdvertisementSettings::try_from, problems);
    advertisements.sort_by(|a, b| a.0.cmp(&b.0));
    let peer_names: BTreeSet<String> = objects.peers.iter().filter_map(|p| p.metadata.name.clone()).collect();
    advertise::unknown_names(&advertisements, &snap.pools, &peer_names, problems);
    advertisements
}

/// What `node_name` must do with `objects`.
pub fn plan(objects: &Objects, node_name: &str, vips: Vips<'_>, scope: &Scope) -> Plan {
    let mut problems = vec![];
    let (snap, desired, addresses) = vip_inputs(objects, vips, scope, &mut problems);
    plan_of(objects, &snap, desired, addresses, node_name, problems)
}

/// The rest of [`plan`] once the snapshot and the VIPs are known (Nodes are read from
/// the snapshot).
fn plan_of(
    objects: &Objects,
    snap: &Snapshot,
    desired: Desired,
    addresses: ServiceVips,
    node_name: &str,
    mut problems: Vec<Problem>,
) -> Plan {
    let node = snap.nodes.iter().find(|n| n.metadata.name.as_deref() == Some(node_name)).map(|n| &**n);
    if node.is_none() {
        problems.push(problem(format!("Node/{node_name}"), "", "no Node object for this node: it announces nothing"));
    }
    let speaker = speaker_config(objects, node, &mut problems);
    let local_as = speaker.as_ref().map_or(0, |s| s.local_as);
    let peers = peers(objects, node, &mut problems);
    let advertisements = advertisements(objects, snap, &mut problems);
    let node_labels = node.and_then(|n| n.metadata.labels.clone()).unwrap_or_default();
    let peer_refs = peer_refs(objects, &peers);
    advertise::same_address_peers(&advertisements, &peer_refs, &mut problems);
    let routes = advertise::routes(
        &advertise::Inputs {
            snapshot: snap,
            vips: &addresses,
            node: node_name,
            node_labels: &node_labels,
            peers: &peer_refs,
            advertisements: &advertisements,
            local_as,
        },
        &mut problems,
    );
    let vips = held_addresses(&addresses);
    Plan { speaker, peers, routes: routes.routes, route_services: routes.services, vips, desired, problems }
}

/// Every address in `vips`.
pub fn held_addresses(vips: &ServiceVips) -> BTreeSet<IpAddr> {
    vips.values().flatten().map(|(ip, _)| *ip).collect()
}

/// The node's peers by name and labels (of the BgpPeer that configures each session: the
/// last by name when two name one address in one VRF, as in [`peer_configs`]).
pub fn peer_refs(objects: &Objects, peers: &[PeerConfig]) -> Vec<advertise::PeerRef> {
    let mut by_key: BTreeMap<(Option<String>, IpAddr), advertise::PeerRef> = BTreeMap::new();
    for p in objects.peers.iter() {
        let Ok(s) = PeerSettings::try_from(p) else { continue };
        let (address, vrf) = (s.config.address, s.config.vrf.clone());
        if peers.iter().any(|c| c.address == address && c.vrf == vrf) {
            let name = p.metadata.name.clone().unwrap_or_default();
            let labels = p.metadata.labels.clone().unwrap_or_default();
            by_key.insert((vrf.clone(), address), advertise::PeerRef { address, vrf, name, labels });
        }
    }
    by_key.into_values().collect()
}

/// Whether the node is cordoned (spec.unschedulable).
pub fn node_cordoned(objects: &Objects, node: &str) -> bool {
    objects
        .nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))
        .and_then(|n| n.spec.as_ref()?.unschedulable)
        .unwrap_or(false)
}

/// RFC 8326 graceful shutdown: before a planned withdraw (a drained node),
/// keep announcing but with the GRACEFUL_SHUTDOWN community and LOCAL_PREF
/// 0, so routers move traffic to the other nodes first.
pub fn graceful_shutdown(plan: &mut Plan) {
    for (_, attrs) in &mut plan.routes {
        if !attrs.communities.contains(&Community::GRACEFUL_SHUTDOWN) {
            attrs.communities.push(Community::GRACEFUL_SHUTDOWN);
        }
        attrs.local_pref = Some(0);
    }
}

/// The VIPs in Service status, with the pool each lies in.
pub fn vips_from_status(snap: &Snapshot) -> BTreeMap<String, Vec<(IpAddr, String)>> {
    let mut out = BTreeMap::new();
    for svc in snap.services.iter().filter(|s| desired::is_ours(s, &snap.classes)) {
        let addrs: Vec<(IpAddr, String)> = desired::status_ips(svc)
            .into_iter()
            .filter_map(|ip| snap.pools.iter().find(|p| p.pool.contains(ip)).map(|p| (ip, p.pool.name.clone())))
            .collect();
        if !addrs.is_empty() {
            out.insert(desired::key_of(svc), addrs);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml<T: serde::de::DeserializeOwned>(s: &str) -> T {
        serde_yaml::from_str(s).unwrap()
    }

    fn objects() -> Objects {
        Objects {
            confs: vec![yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {name: default}\nspec: {as: 64513}\n")],
            peers: vec![
                yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: a}\nspec: {peerAddress: 198.18.0.1, peerAs: 64512, holdTime: 9s, nodeSelector: {matchLabels: {rack: r1}}, passwordSecretRef: {name: bgp, namespace: mooring, key: pw}}\n"),
                yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: b}\nspec: {peerAddress: 198.18.0.2, peerAs: 64512, password: s3cret, communities: [\"64513:7\", no-export]}\n"),
            ],
            nodes: shared([
                yaml("apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {rack: r1}}\nstatus: {addresses: [{type: Hostname, address: n1}, {type: InternalIP, address: 198.18.0.11}]}\n"),
                yaml("apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {rack: r2}}\nstatus: {addresses: [{type: InternalIP, address: 198.18.0.12}]}\n"),
            ]),
            secrets: vec![yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: bgp, namespace: mooring}\nstringData: {pw: from-secret}\n")],
            ..Objects::default()
        }
    }

    #[test]
    fn router_id_defaults_to_the_nodes_internal_ip() {
        let p = plan(&objects(), "n1", Vips::Allocate(&BTreeMap::new()), &Scope::default());
        let s = p.speaker.unwrap();
        assert_eq!((s.local_as, s.router_id), (64513, "198.18.0.11".parse().unwrap()));
        assert_eq!(s.listen, None, "listenPort absent: only dial out");
    }

    #[test]
    fn node_selector_picks_peers_and_passwords_resolve() {
        let p = plan(&objects(), "n1", Vips::Allocate(&BTreeMap::new()), &Scope::default());
        let addrs: Vec<String> = p.peers.iter().map(|c| c.address.to_string()).collect();
        assert_eq!(addrs, vec!["198.18.0.1", "198.18.0.2"]);
        assert_eq!(p.peers[0].md5_password.as_deref(), Some("from-secret"));
        assert_eq!(p.peers[0].hold_time, 9);
        assert_eq!(p.peers[1].md5_password.as_deref(), Some("s3cret"));
        assert_eq!(p.peers[1].communities, vec![Community::new(64513, 7), Community::NO_EXPORT]);
        let p2 = plan(&objects(), "n2", Vips::Allocate(&BTreeMap::new()), &Scope::default());
        assert_eq!(p2.peers.len(), 1, "peer a selects rack r1 only");
    }

    #[test]
    fn cordoned_node_announces_with_graceful_shutdown() {
        let mut o = objects();
        Arc::make_mut(&mut o.nodes[0]).spec =
            Some(k8s_openapi::api::core::v1::NodeSpec { unschedulable: Some(true), ..Default::default() });
        assert!(node_cordoned(&o, "n1") && !node_cordoned(&o, "n2"));
        let mut p = Plan { routes: vec![("203.0.113.10/32".parse().unwrap(), Default::default())], ..Plan::default() };
        graceful_shutdown(&mut p);
        assert_eq!(p.routes[0].1.communities, vec![Community::GRACEFUL_SHUTDOWN]);
        assert_eq!(p.routes[0].1.local_pref, Some(0));
    }

    /// The bug standalone mode had: BgpConf and BgpPeer were never checked, so it ran with
    /// settings the cluster's CEL rules reject. Now each invalid object is reported field by
    /// field, with the CEL rule's message, and not used; the valid ones still are.
    #[test]
    fn invalid_objects_are_reported_and_not_used() {
        let mut o = objects();
        o.peers.push(yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: c}\nspec: {peerAddress: 198.18.0.3, peerAs: 64512, holdTime: 9s, keepaliveTime: 9s}\n"));
        o.peers.push(yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: d}\nspec: {peerAddress: 198.18.0.4, peerAs: 64512, communities: [NO_EXPORT]}\n"));
        o.eips.push(yaml("apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {name: bad}\nspec: {address: 203.0.113.0/24, communities: [\"1:65536\"]}\n"));
        o.eips.push(yaml(
            "apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {name: good}\nspec: {address: 203.0.114.0/24}\n",
        ));
        let p = plan(&o, "n1", Vips::Allocate(&BTreeMap::new()), &Scope::default());
        let addrs: Vec<String> = p.peers.iter().map(|c| c.address.to_string()).collect();
        assert_eq!(addrs, ["198.18.0.1", "198.18.0.2"], "the invalid peers are left out");
        let text: Vec<String> = p.problems.iter().map(|p| p.to_string()).collect();
        for want in [
            "BgpPeer/c spec.keepaliveTime: keepaliveTime must be above 0s and below holdTime (default 90s), or 0s when holdTime is 0s",
            "BgpPeer/d spec.communities[0]: should match '^([0-9]{1,5}:[0-9]{1,5}|graceful-shutdown|",
            "Eip/bad spec.communities: community halves must be at most 65535 (\"1:65536\")",
        ] {
            assert!(text.iter().any(|t| t.starts_with(want)), "no {want:?} in {text:?}");
        }
        let mut problems = vec![];
        let pools: Vec<String> = pools(&o.eips, &mut problems).into_iter().map(|p| p.pool.name).collect();
        assert_eq!(pools, ["good"]);

        // A BgpConf the CEL rules reject leaves the node without a speaker.
        o.confs = vec![yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {name: default}\nspec: {as: 64513, routerId: 0.0.0.0}\n")];
        let p = plan(&o, "n1", Vips::Allocate(&BTreeMap::new()), &Scope::default());
        assert!(p.speaker.is_none());
        assert!(p.problems.iter().any(|x| x.to_string()
            == "BgpConf/default spec.routerId: routerId must be a non-zero IPv4 address (\"0.0.0.0\": 0.0.0.0 is not an identifier)"));
        o.confs =
            vec![yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {name: main}\nspec: {as: 64513}\n")];
        let p = plan(&o, "n1", Vips::Allocate(&BTreeMap::new()), &Scope::default());
        assert!(p.speaker.is_none());
        assert!(p.problems.iter().any(|x| x.to_string()
            == "BgpConf/main: there is one BgpConf and it must be named 'default' (it is named \"main\")"));
    }

    #[test]
    fn problems_name_object_and_field() {
        let mut o = objects();
        o.secrets.clear();
        o.peers.push(yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: c}\nspec: {peerAddress: nope, peerAs: 1}\n"));
        let p = plan(&o, "n1", Vips::Allocate(&BTreeMap::new()), &Scope::default());
        let text: Vec<String> = p.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter().any(|t| t.starts_with("BgpPeer/a spec.passwordSecretRef: Secret mooring/bgp: not found")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("BgpPeer/c spec.peerAddress")), "{text:?}");
        let p = plan(&o, "ghost", Vips::Allocate(&BTreeMap::new()), &Scope::default());
        assert!(p.speaker.is_none(), "no router id without a Node or spec.routerId");
        assert!(p.problems.iter().any(|x| x.object == "Node/ghost"));
    }

    /// A snapshot shares the source's objects: no Service, EndpointSlice or Node is copied,
    /// but for a Service given the address it held, and that copy leaves the source's
    /// version as it was.
    #[test]
    fn a_snapshot_shares_the_objects_and_copies_only_what_it_changes() {
        let mut o = objects();
        o.services = shared([
            yaml("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {type: LoadBalancer}\n"),
            yaml("apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\nspec: {type: LoadBalancer}\n"),
        ]);
        o.endpoint_slices = shared([yaml("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints: [{addresses: [10.0.0.1], nodeName: n1}]\n")]);
        let held = BTreeMap::from([("shop/api".to_string(), vec!["203.0.113.9".parse().unwrap()])]);
        let snap = snapshot(&o, &held, &Scope::default(), &mut vec![]);
        assert!(Arc::ptr_eq(&snap.services[0], &o.services[0]), "web is shared");
        assert!(Arc::ptr_eq(&snap.endpoint_slices[0], &o.endpoint_slices[0]));
        assert!(snap.nodes.iter().zip(&o.nodes).all(|(a, b)| Arc::ptr_eq(a, b)));
        assert!(!Arc::ptr_eq(&snap.services[1], &o.services[1]), "api got its held address: a copy");
        assert_eq!(desired::status_ips(&snap.services[1]), ["203.0.113.9".parse::<IpAddr>().unwrap()]);
        assert!(desired::status_ips(&o.services[1]).is_empty(), "the source's api is unchanged");
    }
}
