//! The central speakers' plan (BgpPeer `mode: Central`, Porter's way): from the objects, the
//! speaker peering with the Central peers and, for each VIP, one path per node that should
//! carry it, with that node's address as next hop — all nodes' paths in one route list,
//! sent with ADD-PATH. Pure. Each node's paths are what the per-node plan would give it
//! (the same Local/Cluster rules, BgpAdvertisements, weights and communities), restricted
//! to the Central peers whose `nodeSelector` selects the node.
//!
//! Every path also names the probes that gate it ([`Gates`]): a path of a `Local` Service
//! with a `healthCheckNodePort` is gated by HTTP GET `http://node:port/` (kube-proxy answers
//! 200 while the node has local endpoints), any other by BgpConf `spec.nodeProbe`'s check.
//! A path is announced while one of its probes is up ([`gate`]). The probing itself is IO
//! and lives in the node loop; not here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnetwork::IpNetwork;
use k8s_openapi::api::core::v1::{Node, Service};
use mooring_bgp::speaker::{PeerConfig, RouteAttrs, SpeakerConfig};
use mooring_crds::{NodeCheck, NodeProbeSettings, PeerMode, PeerSettings, SpeakerSettings};

use super::advertise;
use super::desired;
use super::nodes;
use super::plan::{self, Objects, Plan, Problem, Scope, Vips};
use super::selector;

/// One probe: a check on a node's address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeTarget {
    pub address: IpAddr,
    pub check: NodeCheck,
}

/// A path: its prefix and next hop (as the flap damper names it).
pub type PathKey = (IpNetwork, IpAddr);

/// Per path, the probes that gate it (announced while one of them is up).
pub type Gates = BTreeMap<PathKey, BTreeSet<ProbeTarget>>;

/// What the central speaker must do.
#[derive(Debug, Clone, Default)]
pub struct CentralPlan {
    /// The speaker and its peers (the Central ones), every node's paths in `routes` (each
    /// with `next_hop` set), the Services behind each prefix, allocations and problems.
    pub plan: Plan,
    /// The probes of each path.
    pub gates: Gates,
    /// How to probe (BgpConf `spec.nodeProbe`, or its defaults).
    pub probe: NodeProbeSettings,
}

impl CentralPlan {
    /// Every probe some path needs.
    pub fn targets(&self) -> BTreeSet<ProbeTarget> {
        self.gates.values().flatten().cloned().collect()
    }
}

/// How the central speaker is run.
#[derive(Debug, Clone, Default)]
pub struct CentralOptions {
    /// BGP identifier when BgpConf has no `routerId` (`--router-id`, the pod IP in a cluster).
    pub router_id: Option<Ipv4Addr>,
    /// FQDN capability hostname when BgpConf has none (the pod's or host's name).
    pub hostname: Option<String>,
    /// Paths of cordoned nodes go out with GRACEFUL_SHUTDOWN and LOCAL_PREF 0.
    pub graceful_shutdown_on_cordon: bool,
}

fn problem(object: String, field: &str, message: impl Into<String>) -> Problem {
    Problem { object, field: field.into(), message: message.into() }
}

/// The node's first InternalIP of each family.
fn internal_ips(node: &Node) -> (Option<IpAddr>, Option<IpAddr>) {
    let mut out = (None, None);
    for a in node.status.iter().flat_map(|s| s.addresses.iter().flatten()).filter(|a| a.type_ == "InternalIP") {
        match a.address.parse::<IpAddr>() {
            Ok(ip @ IpAddr::V4(_)) if out.0.is_none() => out.0 = Some(ip),
            Ok(ip @ IpAddr::V6(_)) if out.1.is_none() => out.1 = Some(ip),
            _ => {}
        }
    }
    out
}

/// The probe that gates a Service's path through the node at `address`.
fn probe_for(svc: Option<&Service>, address: IpAddr, node_check: &NodeCheck) -> ProbeTarget {
    let health_port = svc
        .filter(|s| nodes::is_local_policy(s))
        .and_then(|s| s.spec.as_ref()?.health_check_node_port)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0);
    let check = match health_port {
        Some(port) => NodeCheck::Http { port, path: "/".into() },
        None => node_check.clone(),
    };
    ProbeTarget { address, check }
}

/// What the central speaker must do with `objects`.
pub fn plan(objects: &Objects, vips: Vips<'_>, scope: &Scope, options: &CentralOptions) -> CentralPlan {
    let mut problems = vec![];
    let (snap, desired, addresses) = plan::vip_inputs(objects, vips, scope, &mut problems);
    let confs = plan::parse_each("BgpConf", &objects.confs, SpeakerSettings::try_from, &mut problems);
    let settings = confs.iter().find(|(n, _)| n == "default").map(|(_, s)| s.clone());
    let probe = settings.as_ref().map(|s| s.node_probe.clone()).unwrap_or_default();
    let speaker: Option<SpeakerConfig> = settings.and_then(|mut s| {
        s.router_id = s.router_id.or(options.router_id);
        s.hostname = s.hostname.or_else(|| options.hostname.clone());
        if s.router_id.is_none() {
            problems.push(problem(
                "BgpConf/default".into(),
                "spec.routerId",
                "not set, and the central speaker was given no --router-id",
            ));
            return None;
        }
        // Central speakers connect out only: BgpConf listenPort is the per-node speakers'
        // (a central speaker in the host network beside one would share its port).
        s.listen_port = None;
        plan::speaker_config_from(&s, None, &mut problems)
    });
    let local_as = speaker.as_ref().map_or(0, |s| s.local_as);

    // The Central peers: every central speaker peers with each (their nodeSelector picks
    // the nodes whose paths go to them, not who peers).
    let mut settings = plan::parse_each("BgpPeer", &objects.peers, PeerSettings::try_from, &mut problems);
    settings.retain(|(_, s)| s.mode == PeerMode::Central);
    let selectors: BTreeMap<(Option<String>, IpAddr), Option<_>> =
        settings.iter().map(|(_, s)| ((s.config.vrf.clone(), s.config.address), s.node_selector.clone())).collect();
    for (_, s) in &mut settings {
        s.node_selector = None;
    }
    let peers: Vec<PeerConfig> =
        plan::peer_configs(&settings, &objects.secrets, &objects.secret_errors, None, &mut problems);
    let all_refs = plan::peer_refs(objects, &peers);
    let advertisements = plan::advertisements(objects, &snap, &mut problems);
    let services: BTreeMap<String, &Service> = snap.services.iter().map(|s| (desired::key_of(s), &**s)).collect();

    let mut routes: Vec<(IpNetwork, RouteAttrs)> = vec![];
    let mut route_services: BTreeMap<IpNetwork, BTreeSet<String>> = BTreeMap::new();
    let mut gates = Gates::new();
    let mut reported = BTreeSet::new();
    for node in &objects.nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let refs: Vec<advertise::PeerRef> = all_refs
            .iter()
            .filter(|r| {
                let sel = selectors.get(&(r.vrf.clone(), r.address));
                sel.is_none_or(|s| s.as_ref().is_none_or(|s| selector::matches(s, &labels)))
            })
            .cloned()
            .collect();
        if refs.is_empty() {
            continue;
        }
        // A path for every peer goes to the peers that select this node, when not all do.
        let to: Option<Arc<[IpAddr]>> =
            (refs.len() < all_refs.len()).then(|| refs.iter().map(|r| r.address).collect::<Vec<_>>().into());
        let node_routes = advertise::routes(
            &advertise::Inputs {
                snapshot: &snap,
                vips: &addresses,
                node: &name,
                node_labels: &labels,
                peers: &refs,
                advertisements: &advertisements,
                local_as,
            },
            &mut problems,
        );
        if node_routes.routes.is_empty() {
            continue;
        }
        let (v4, v6) = internal_ips(node);
        let cordoned = options.graceful_shutdown_on_cordon && plan::node_cordoned(objects, &name);
        for (prefix, mut attrs) in node_routes.routes {
            let Some(next_hop) = (if prefix.is_ipv4() { v4 } else { v6 }) else {
                let family = if prefix.is_ipv4() { "IPv4" } else { "IPv6" };
                if reported.insert((name.clone(), family)) {
                    problems.push(problem(
                        format!("Node/{name}"),
                        "status.addresses",
                        format!("no {family} InternalIP: the central speakers cannot announce it as the next hop of {family} VIPs"),
                    ));
                }
                continue;
            };
            attrs.next_hop = Some(next_hop);
            if attrs.to.is_none() {
                attrs.to = to.clone();
            }
            if cordoned {
                let mut p = Plan { routes: vec![(prefix, attrs)], ..Plan::default() };
                plan::graceful_shutdown(&mut p);
                attrs = p.routes.remove(0).1;
            }
            let behind = node_routes.services.get(&prefix);
            let gate = gates.entry((prefix, next_hop)).or_default();
            for key in behind.into_iter().flatten() {
                gate.insert(probe_for(services.get(key).copied(), next_hop, &probe.check));
            }
            if gate.is_empty() {
                gate.insert(probe_for(None, next_hop, &probe.check));
            }
            route_services.entry(prefix).or_default().extend(behind.into_iter().flatten().cloned());
            routes.push((prefix, attrs));
        }
    }
    // One prefix's paths together, in node order within it (the speaker groups them; the
    // order is the preference for a peer without ADD-PATH).
    routes.sort_by_key(|r| r.0);
    let vips = plan::held_addresses(&addresses);
    CentralPlan { plan: Plan { speaker, peers, routes, route_services, vips, desired, problems }, gates, probe }
}

/// The routes whose paths have a probe up (`is_up`); a path without gates (none known) stays.
pub fn gate(
    routes: Vec<(IpNetwork, RouteAttrs)>,
    gates: &Gates,
    is_up: impl Fn(&ProbeTarget) -> bool,
) -> Vec<(IpNetwork, RouteAttrs)> {
    routes
        .into_iter()
        .filter(|(prefix, attrs)| {
            let Some(nh) = attrs.next_hop else { return true };
            gates.get(&(*prefix, nh)).is_none_or(|g| g.iter().any(&is_up))
        })
        .collect()
}

#[cfg(test)]
#[path = "central_tests.rs"]
mod tests;
