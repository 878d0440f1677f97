//! From objects to what one node's speaker must do: the speaker settings,
//! its peers, and its routes. Pure: the standalone runner and the
//! Kubernetes speaker both call it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnetwork::IpNetwork;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use mooring_bgp::fsm::GracefulRestartConfig;
use mooring_bgp::speaker::{MaxPrefixes, PeerConfig, RouteAttrs, SpeakerConfig};
use mooring_bgp::wire::{Community, Family, LargeCommunity};
use mooring_crds::{AddressFamily, BgpConf, BgpPeer, Eip, MaxPrefixAction};

use crate::model::desired::{self, Advertisement, Desired, PoolConfig, Snapshot};
use crate::model::ipam::{IpRange, Pool};
use crate::model::selector;

/// The objects the plan reads.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    pub confs: Vec<BgpConf>,
    pub peers: Vec<BgpPeer>,
    pub eips: Vec<Eip>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub nodes: Vec<Node>,
    pub namespaces: Vec<Namespace>,
    pub secrets: Vec<Secret>,
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

/// Parse every entry of a list field, reporting (and skipping) the bad ones.
fn parse_list<T: std::str::FromStr>(list: &[String], object: &str, field: &str, problems: &mut Vec<Problem>) -> Vec<T>
where
    T::Err: std::fmt::Display,
{
    list.iter()
        .filter_map(|c| match c.parse() {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(problem(object.into(), field, format!("{e}")));
                None
            }
        })
        .collect()
}

/// Eips into pools; an Eip whose addresses do not parse is left out (and reported).
pub fn pools(eips: &[Eip], problems: &mut Vec<Problem>) -> Vec<PoolConfig> {
    let mut out = vec![];
    for e in eips {
        let obj = format!("Eip/{}", name(&e.metadata));
        let ranges = match mooring_crds::parse_eip_ranges(&e.spec) {
            Ok(r) => r,
            Err(err) => {
                problems.push(problem(obj, "spec.address", err.to_string()));
                continue;
            }
        };
        let s = &e.spec;
        out.push(PoolConfig {
            pool: Pool {
                name: name(&e.metadata),
                ranges: ranges.iter().map(|r| IpRange { start: r.start, end: r.end }).collect(),
                disabled: s.disable,
                priority: s.priority,
                auto_assign: s.auto_assign,
            },
            namespaces: s.namespaces.clone(),
            namespace_selector: s.namespace_selector.clone(),
            advertisement: Advertisement {
                communities: parse_list::<Community>(&s.communities, &obj, "spec.communities", problems),
                large_communities: parse_list::<LargeCommunity>(
                    &s.large_communities,
                    &obj,
                    "spec.largeCommunities",
                    problems,
                ),
                local_pref: s.local_pref,
                med: s.med,
                as_path_prepend: s.as_path_prepend.unwrap_or(0),
                aggregation_length_v4: s.aggregation_length,
                aggregation_length_v6: s.aggregation_length_v6,
                weighting: s
                    .weighting
                    .map(|_| !matches!(s.link_bandwidth, Some(mooring_crds::LinkBandwidthForm::NonTransitive))),
            },
        });
    }
    out
}

fn secret_value(secrets: &[Secret], ns: &str, n: &str, key: &str) -> Option<String> {
    let s = secrets
        .iter()
        .find(|s| s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(n))?;
    if let Some(v) = s.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(v.0.clone()).ok();
    }
    s.string_data.as_ref().and_then(|d| d.get(key)).cloned()
}

fn seconds(s: &str, obj: &str, field: &str, problems: &mut Vec<Problem>) -> Option<u16> {
    match mooring_crds::parse_duration(s) {
        Ok(d) if d.as_secs() <= u16::MAX as u64 => Some(d.as_secs() as u16),
        Ok(_) => {
            problems.push(problem(obj.into(), field, format!("{s} is too long")));
            None
        }
        Err(e) => {
            problems.push(problem(obj.into(), field, e.to_string()));
            None
        }
    }
}

/// The peer configurations of the BgpPeers that select `node`.
pub fn peers(objects: &Objects, node: Option<&Node>, problems: &mut Vec<Problem>) -> Vec<PeerConfig> {
    let labels = node.and_then(|n| n.metadata.labels.clone()).unwrap_or_default();
    let mut out: BTreeMap<IpAddr, PeerConfig> = BTreeMap::new();
    for p in &objects.peers {
        let obj = format!("BgpPeer/{}", name(&p.metadata));
        let s = &p.spec;
        if s.node_selector.as_ref().is_some_and(|sel| !selector::matches(sel, &labels)) {
            continue;
        }
        let Ok(address) = s.peer_address.parse::<IpAddr>() else {
            problems.push(problem(obj, "spec.peerAddress", format!("{:?} is not an IP address", s.peer_address)));
            continue;
        };
        let mut c = PeerConfig::new(address, s.peer_as);
        c.local_as = s.local_as;
        c.port = match u16::try_from(s.port) {
            Ok(p) if p > 0 => p,
            _ => {
                problems.push(problem(obj, "spec.port", format!("{} is not a port", s.port)));
                continue;
            }
        };
        match seconds(&s.hold_time, &obj, "spec.holdTime", problems) {
            Some(h) if h == 0 || h >= 3 => c.hold_time = h,
            Some(h) => {
                problems.push(problem(obj, "spec.holdTime", format!("{h}s is not allowed (0 or at least 3 s)")));
                continue;
            }
            None => continue,
        }
        if let Some(k) = &s.keepalive_time {
            c.keepalive = seconds(k, &obj, "spec.keepaliveTime", problems);
        }
        c.passive = s.passive;
        if let Some(src) = &s.source_address {
            match src.parse() {
                Ok(a) => c.source = Some(a),
                Err(_) => problems.push(problem(obj.clone(), "spec.sourceAddress", format!("{src:?} is not an IP"))),
            }
        }
        c.ebgp_multihop = s.ebgp_multihop;
        c.md5_password = match (&s.password, &s.password_secret_ref) {
            (Some(pw), _) => Some(pw.clone()),
            (None, Some(r)) => match secret_value(&objects.secrets, &r.namespace, &r.name, &r.key) {
                Some(pw) => Some(pw),
                None => {
                    let msg = format!("Secret {}/{} has no key {:?}", r.namespace, r.name, r.key);
                    problems.push(problem(obj, "spec.passwordSecretRef", msg));
                    continue;
                }
            },
            (None, None) => None,
        };
        if !s.families.is_empty() {
            c.families = s
                .families
                .iter()
                .map(|f| match f {
                    AddressFamily::Ipv4Unicast => Family::IPV4_UNICAST,
                    AddressFamily::Ipv6Unicast => Family::IPV6_UNICAST,
                })
                .collect();
        }
        c.max_prefixes = s
            .max_prefixes
            .as_ref()
            .map(|m| MaxPrefixes { limit: m.limit as u64, teardown: matches!(m.action, MaxPrefixAction::Teardown) });
        c.communities = parse_list::<Community>(&s.communities, &obj, "spec.communities", problems);
        c.large_communities =
            parse_list::<LargeCommunity>(&s.large_communities, &obj, "spec.largeCommunities", problems);
        c.connect_retry = Duration::from_secs(5);
        if let Some(b) = s.bfd.as_ref().filter(|b| b.enabled) {
            let interval =
                |v: &str, field: &str, problems: &mut Vec<Problem>| match mooring_crds::parse::parse_ms_duration(v) {
                    Ok(d) if (Duration::from_millis(10)..=Duration::from_secs(60)).contains(&d) => Some(d),
                    _ => {
                        problems.push(problem(obj.clone(), field, format!("{v:?} is not an interval of 10ms..60s")));
                        None
                    }
                };
            let tx = interval(&b.min_tx_interval, "spec.bfd.minTxInterval", problems);
            let rx = interval(&b.min_rx_interval, "spec.bfd.minRxInterval", problems);
            match (tx, rx, b.multiplier) {
                (Some(min_tx), Some(min_rx), m) if m > 0 => {
                    c.bfd = Some(mooring_bgp::bfd::BfdConfig { min_tx, min_rx, multiplier: m })
                }
                (_, _, 0) => problems.push(problem(obj.clone(), "spec.bfd.multiplier", "must be 1..255".to_string())),
                _ => {}
            }
        }
        if let Some(n) = node {
            // Next hops for the family the session's own address does not give.
            for a in n.status.iter().flat_map(|s| s.addresses.iter().flatten()).filter(|a| a.type_ == "InternalIP") {
                match a.address.parse::<IpAddr>() {
                    Ok(IpAddr::V4(v4)) if c.next_hop_v4.is_none() => c.next_hop_v4 = Some(v4),
                    Ok(IpAddr::V6(v6)) if c.next_hop_v6.is_none() => c.next_hop_v6 = Some(v6),
                    _ => {}
                }
            }
        }
        if out.insert(address, c).is_some() {
            problems.push(problem(
                obj,
                "spec.peerAddress",
                format!("{address} is used by another BgpPeer too; this one wins"),
            ));
        }
    }
    out.into_values().collect()
}

/// The speaker settings from the BgpConf named `default`.
pub fn speaker_config(objects: &Objects, node: Option<&Node>, problems: &mut Vec<Problem>) -> Option<SpeakerConfig> {
    let Some(conf) = objects.confs.iter().find(|c| c.metadata.name.as_deref() == Some("default")) else {
        if !objects.confs.is_empty() {
            problems.push(problem("BgpConf".into(), "metadata.name", "the BgpConf must be named \"default\""));
        }
        return None;
    };
    let obj = "BgpConf/default".to_string();
    let s = &conf.spec;
    let router_id = match &s.router_id {
        Some(r) => match r.parse() {
            Ok(a) => a,
            Err(_) => {
                problems.push(problem(obj, "spec.routerId", format!("{r:?} is not an IPv4 address")));
                return None;
            }
        },
        None => match node.and_then(node_ipv4) {
            Some(a) => a,
            None => {
                problems.push(problem(obj, "spec.routerId", "not set, and the node has no IPv4 InternalIP"));
                return None;
            }
        },
    };
    let listen = match s.listen_port {
        None | Some(0) => None,
        Some(p) => match u16::try_from(p) {
            Ok(p) => Some(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, p))),
            Err(_) => {
                problems.push(problem(obj, "spec.listenPort", format!("{p} is not a port")));
                None
            }
        },
    };
    Some(SpeakerConfig {
        local_as: s.as_number,
        router_id,
        listen,
        hostname: s.hostname.clone().or_else(|| node.and_then(|n| n.metadata.name.clone())),
        graceful_restart: s.graceful_restart.as_ref().filter(|g| g.enabled).map(|g| GracefulRestartConfig {
            restart_time: g.restart_time,
            restarting: false,
            forwarding_preserved: true,
        }),
    })
}

/// The model's input from the objects. `held` gives the addresses
/// Services held before (the state directory in standalone mode), used
/// where their status is empty.
pub fn snapshot(
    objects: &Objects,
    held: &BTreeMap<String, Vec<IpAddr>>,
    exclude_cordoned: bool,
    problems: &mut Vec<Problem>,
) -> Snapshot {
    let mut services = objects.services.clone();
    for svc in &mut services {
        if desired::status_ips(svc).is_empty() {
            if let Some(ips) = held.get(&desired::key_of(svc)) {
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
        exclude_cordoned,
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

/// What `node_name` must do with `objects`.
pub fn plan(objects: &Objects, node_name: &str, vips: Vips<'_>, exclude_cordoned: bool) -> Plan {
    let mut problems = vec![];
    let no_held = BTreeMap::new();
    let held = match vips {
        Vips::Allocate(held) => held,
        Vips::FromStatus => &no_held,
    };
    let snap = snapshot(objects, held, exclude_cordoned, &mut problems);
    let (desired, addresses) = match vips {
        Vips::Allocate(_) => {
            let desired = desired::allocate(&snap);
            allocation_problems(&desired, &mut problems);
            let addresses = desired.allocations.iter().map(|(k, a)| (k.clone(), a.addresses.clone())).collect();
            (desired, addresses)
        }
        Vips::FromStatus => (Desired::default(), vips_from_status(&snap)),
    };
    let node = objects.nodes.iter().find(|n| n.metadata.name.as_deref() == Some(node_name));
    if node.is_none() {
        problems.push(problem(format!("Node/{node_name}"), "", "no Node object for this node: it announces nothing"));
    }
    let speaker = speaker_config(objects, node, &mut problems);
    let local_as = speaker.as_ref().map_or(0, |s| s.local_as);
    let routes = desired::announcements(&snap, &addresses, node_name)
        .into_values()
        .map(|a| (a.prefix, desired::route_attrs(&snap, &a, local_as)))
        .collect();
    Plan { speaker, peers: peers(objects, node, &mut problems), routes, desired, problems }
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
    for svc in snap.services.iter().filter(|s| desired::is_ours(s)) {
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
            nodes: vec![
                yaml("apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {rack: r1}}\nstatus: {addresses: [{type: Hostname, address: n1}, {type: InternalIP, address: 198.18.0.11}]}\n"),
                yaml("apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {rack: r2}}\nstatus: {addresses: [{type: InternalIP, address: 198.18.0.12}]}\n"),
            ],
            secrets: vec![yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: bgp, namespace: mooring}\nstringData: {pw: from-secret}\n")],
            ..Objects::default()
        }
    }

    #[test]
    fn router_id_defaults_to_the_nodes_internal_ip() {
        let p = plan(&objects(), "n1", Vips::Allocate(&BTreeMap::new()), false);
        let s = p.speaker.unwrap();
        assert_eq!((s.local_as, s.router_id), (64513, "198.18.0.11".parse().unwrap()));
        assert_eq!(s.listen, None, "listenPort absent: only dial out");
    }

    #[test]
    fn node_selector_picks_peers_and_passwords_resolve() {
        let p = plan(&objects(), "n1", Vips::Allocate(&BTreeMap::new()), false);
        let addrs: Vec<String> = p.peers.iter().map(|c| c.address.to_string()).collect();
        assert_eq!(addrs, vec!["198.18.0.1", "198.18.0.2"]);
        assert_eq!(p.peers[0].md5_password.as_deref(), Some("from-secret"));
        assert_eq!(p.peers[0].hold_time, 9);
        assert_eq!(p.peers[1].md5_password.as_deref(), Some("s3cret"));
        assert_eq!(p.peers[1].communities, vec![Community::new(64513, 7), Community::NO_EXPORT]);
        let p2 = plan(&objects(), "n2", Vips::Allocate(&BTreeMap::new()), false);
        assert_eq!(p2.peers.len(), 1, "peer a selects rack r1 only");
    }

    #[test]
    fn cordoned_node_announces_with_graceful_shutdown() {
        let mut o = objects();
        o.nodes[0].spec =
            Some(k8s_openapi::api::core::v1::NodeSpec { unschedulable: Some(true), ..Default::default() });
        assert!(node_cordoned(&o, "n1") && !node_cordoned(&o, "n2"));
        let mut p = Plan { routes: vec![("203.0.113.10/32".parse().unwrap(), Default::default())], ..Plan::default() };
        graceful_shutdown(&mut p);
        assert_eq!(p.routes[0].1.communities, vec![Community::GRACEFUL_SHUTDOWN]);
        assert_eq!(p.routes[0].1.local_pref, Some(0));
    }

    #[test]
    fn problems_name_object_and_field() {
        let mut o = objects();
        o.secrets.clear();
        o.peers.push(yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: c}\nspec: {peerAddress: nope, peerAs: 1}\n"));
        let p = plan(&o, "n1", Vips::Allocate(&BTreeMap::new()), false);
        let text: Vec<String> = p.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter().any(|t| t.starts_with("BgpPeer/a spec.passwordSecretRef: Secret mooring/bgp has no key")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("BgpPeer/c spec.peerAddress")), "{text:?}");
        let p = plan(&o, "ghost", Vips::Allocate(&BTreeMap::new()), false);
        assert!(p.speaker.is_none(), "no router id without a Node or spec.routerId");
        assert!(p.problems.iter().any(|x| x.object == "Node/ghost"));
    }
}
