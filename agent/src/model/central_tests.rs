//! The central plan through the whole model: objects as manifests in, every node's paths
//! (next hop = the node) and the probes gating them out.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use mooring_bgp::wire::{Community, ExtCommunity};
use mooring_crds::NodeCheck;

use super::{gate, plan, CentralOptions, CentralPlan, ProbeTarget};
use crate::model::plan::{self as node_plan, shared, Objects, Scope, Vips};

fn yaml<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_yaml::from_str(s).unwrap()
}

const EDGE: &str = "198.18.70.1";
const TOR: &str = "198.18.70.2";

fn node(name: &str, rack: &str, ip: &str) -> k8s_openapi::api::core::v1::Node {
    yaml(&format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{rack: {rack}}}}}\n\
         status: {{addresses: [{{type: InternalIP, address: {ip}}}, {{type: InternalIP, address: '2001:db8:70::{}'}}]}}\n",
        &ip[ip.rfind('.').unwrap() + 1..]
    ))
}

/// A Central peer (edge) and a Node peer (node-peer), a pool, three nodes in two racks, a
/// Cluster Service `web` and a Local Service `api` (health check port 30001) with ready
/// endpoints on n1 and n3 (n3's not ready).
fn objects() -> Objects {
    let slice = |svc: &str, eps: &[(&str, bool)]| -> k8s_openapi::api::discovery::v1::EndpointSlice {
        let eps: Vec<String> = eps
            .iter()
            .map(|(n, r)| format!("{{addresses: [10.1.0.1], nodeName: {n}, conditions: {{ready: {r}}}}}"))
            .collect();
        yaml(&format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {svc}-1, namespace: shop, labels: {{kubernetes.io/service-name: {svc}}}}}\n\
             addressType: IPv4\nendpoints: [{}]\n",
            eps.join(", ")
        ))
    };
    Objects {
        confs: vec![yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {name: default}\nspec: {as: 64513, routerId: 198.18.70.9}\n")],
        peers: vec![
            yaml(&format!("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\nspec: {{peerAddress: {EDGE}, peerAs: 64512, mode: Central}}\n")),
            yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: node-peer}\nspec: {peerAddress: 198.18.70.3, peerAs: 64512}\n"),
        ],
        eips: vec![yaml("apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {name: public}\nspec: {address: 203.0.113.0/25, communities: [\"64513:1\"]}\n")],
        services: shared([
            yaml("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {type: LoadBalancer, loadBalancerIP: 203.0.113.10, ports: [{port: 80}]}\n"),
            yaml("apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\nspec: {type: LoadBalancer, loadBalancerIP: 203.0.113.11, externalTrafficPolicy: Local, healthCheckNodePort: 30001, ports: [{port: 80}]}\n"),
        ]),
        endpoint_slices: shared([slice("api", &[("n1", true), ("n2", true), ("n3", false)])]),
        nodes: shared([node("n1", "r1", "198.18.70.11"), node("n2", "r1", "198.18.70.12"), node("n3", "r2", "198.18.70.13")]),
        ..Objects::default()
    }
}

fn central(o: &Objects) -> CentralPlan {
    plan(o, Vips::Allocate(&BTreeMap::new()), &Scope::default(), &CentralOptions::default())
}

/// Prefix → next hops of its paths, in order.
fn next_hops(p: &CentralPlan) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (prefix, a) in &p.plan.routes {
        out.entry(prefix.to_string()).or_default().push(a.next_hop.expect("a next hop").to_string());
    }
    out
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn one_path_per_serving_node_with_the_node_as_next_hop() {
    let p = central(&objects());
    assert!(p.plan.problems.is_empty(), "{:?}", p.plan.problems);
    let want: BTreeMap<String, Vec<String>> = [
        ("203.0.113.10/32", vec!["198.18.70.11", "198.18.70.12", "198.18.70.13"]),
        ("203.0.113.11/32", vec!["198.18.70.11", "198.18.70.12"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(next_hops(&p), want, "Cluster: every node; Local: the nodes with ready endpoints");
    // Only the Central peer; router ID from BgpConf; the pool's community on every path.
    let peers: Vec<String> = p.plan.peers.iter().map(|c| c.address.to_string()).collect();
    assert_eq!(peers, [EDGE]);
    assert_eq!(p.plan.speaker.as_ref().unwrap().router_id, "198.18.70.9".parse::<std::net::Ipv4Addr>().unwrap());
    assert!(p.plan.routes.iter().all(|(_, a)| a.communities == [Community::new(64513, 1)] && a.to.is_none()));
    assert_eq!(p.plan.route_services[&"203.0.113.11/32".parse().unwrap()], BTreeSet::from(["shop/api".to_string()]));
}

#[test]
fn node_speakers_skip_central_peers() {
    let o = objects();
    let p = node_plan::plan(&o, "n1", Vips::Allocate(&BTreeMap::new()), &Scope::default());
    let peers: Vec<String> = p.peers.iter().map(|c| c.address.to_string()).collect();
    assert_eq!(peers, ["198.18.70.3"]);
    assert!(p.routes.iter().all(|(_, a)| a.next_hop.is_none()), "node mode: next-hop self");
}

#[test]
fn local_paths_are_gated_by_the_health_check_node_port_others_by_the_node_probe() {
    let p = central(&objects());
    let http = |port, path: &str| NodeCheck::Http { port, path: path.into() };
    let gates_of = |prefix: &str, nh: &str| p.gates[&(prefix.parse().unwrap(), ip(nh))].clone();
    assert_eq!(
        gates_of("203.0.113.11/32", "198.18.70.12"),
        BTreeSet::from([ProbeTarget { address: ip("198.18.70.12"), check: http(30001, "/") }])
    );
    assert_eq!(
        gates_of("203.0.113.10/32", "198.18.70.13"),
        BTreeSet::from([ProbeTarget { address: ip("198.18.70.13"), check: http(10256, "/healthz") }])
    );
    assert_eq!(p.targets().len(), 5, "3 node probes + 2 health check ports");

    // BgpConf spec.nodeProbe replaces the node probe, and its timing is the plan's.
    let mut o = objects();
    o.confs = vec![yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {name: default}\nspec: {as: 64513, routerId: 198.18.70.9, nodeProbe: {tcp: {port: 8080}, intervalMilliseconds: 100, failures: 2}}\n")];
    let p = central(&o);
    assert_eq!(
        p.gates[&("203.0.113.10/32".parse().unwrap(), ip("198.18.70.11"))],
        BTreeSet::from([ProbeTarget { address: ip("198.18.70.11"), check: NodeCheck::Tcp { port: 8080 } }])
    );
    assert_eq!((p.probe.interval.as_millis(), p.probe.failures, p.probe.successes), (100, 2, 2));
}

#[test]
fn a_path_whose_probes_are_down_is_left_out() {
    let p = central(&objects());
    let down = ProbeTarget { address: ip("198.18.70.12"), check: NodeCheck::Http { port: 30001, path: "/".into() } };
    let routes = gate(p.plan.routes.clone(), &p.gates, |t| *t != down);
    let mut got =
        next_hops(&CentralPlan { plan: node_plan::Plan { routes, ..Default::default() }, ..Default::default() });
    assert_eq!(got.remove("203.0.113.11/32").unwrap(), ["198.18.70.11"], "n2's Local path withdrawn");
    assert_eq!(got.remove("203.0.113.10/32").unwrap().len(), 3, "n2's Cluster path has its own probe, up");
    // Everything down: nothing left.
    assert!(gate(p.plan.routes.clone(), &p.gates, |_| false).is_empty());
}

#[test]
fn a_central_peers_node_selector_picks_whose_paths_it_gets() {
    let mut o = objects();
    o.peers.push(yaml(&format!("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: tor}}\nspec: {{peerAddress: {TOR}, peerAs: 64512, mode: Central, nodeSelector: {{matchLabels: {{rack: r1}}}}}}\n")));
    let p = central(&o);
    assert_eq!(p.plan.peers.len(), 2, "every central speaker peers with both");
    let web: Vec<(String, Option<Vec<IpAddr>>)> = p
        .plan
        .routes
        .iter()
        .filter(|(x, _)| x.to_string() == "203.0.113.10/32")
        .map(|(_, a)| (a.next_hop.unwrap().to_string(), a.to.as_deref().map(<[IpAddr]>::to_vec)))
        .collect();
    assert_eq!(
        web,
        [
            ("198.18.70.11".to_string(), None),
            ("198.18.70.12".to_string(), None),
            ("198.18.70.13".to_string(), Some(vec![ip(EDGE)])),
        ],
        "rack r2's node goes to the edge only"
    );
}

#[test]
fn weights_are_per_path() {
    let mut o = objects();
    o.endpoint_slices[0] = Arc::new(yaml(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: api-1, namespace: shop, labels: {kubernetes.io/service-name: api}}\n\
         addressType: IPv4\nendpoints: [{addresses: [10.1.0.1], nodeName: n1}, {addresses: [10.1.0.2], nodeName: n1}, {addresses: [10.1.0.3], nodeName: n2}]\n",
    ));
    Arc::make_mut(&mut o.services[1]).metadata.annotations =
        Some([("mooring.io/weighting".to_string(), "endpoints".to_string())].into());
    let p = central(&o);
    let bw: Vec<(String, Vec<ExtCommunity>)> = p
        .plan
        .routes
        .iter()
        .filter(|(x, _)| x.to_string() == "203.0.113.11/32")
        .map(|(_, a)| (a.next_hop.unwrap().to_string(), a.ext_communities.clone()))
        .collect();
    assert_eq!(bw.len(), 2);
    assert_ne!(bw[0].1, bw[1].1, "2 endpoints on n1, 1 on n2: different link bandwidths");
    assert!(bw.iter().all(|(_, e)| e.len() == 1));
}

#[test]
fn router_id_from_the_option_else_a_problem() {
    let mut o = objects();
    o.confs =
        vec![yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {name: default}\nspec: {as: 64513}\n")];
    let p = central(&o);
    assert!(p.plan.speaker.is_none());
    assert!(p.plan.problems.iter().any(|x| x.field == "spec.routerId"), "{:?}", p.plan.problems);
    let options = CentralOptions { router_id: Some("10.0.0.7".parse().unwrap()), ..Default::default() };
    let p = plan(&o, Vips::Allocate(&BTreeMap::new()), &Scope::default(), &options);
    assert_eq!(p.plan.speaker.unwrap().router_id.to_string(), "10.0.0.7");
}

#[test]
fn central_speakers_do_not_listen() {
    let mut o = objects();
    o.confs = vec![yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {name: default}\nspec: {as: 64513, routerId: 198.18.70.9, listenPort: 179}\n")];
    assert!(node_plan::plan(&o, "n1", Vips::Allocate(&BTreeMap::new()), &Scope::default())
        .speaker
        .unwrap()
        .listen
        .is_some());
    assert_eq!(central(&o).plan.speaker.unwrap().listen, None, "listenPort is the per-node speakers'");
}

#[test]
fn ipv6_vips_go_via_the_nodes_ipv6_address_and_a_node_without_one_is_reported() {
    let mut o = objects();
    o.eips.push(yaml(
        "apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {name: v6}\nspec: {address: '2001:db8:ffff::/120'}\n",
    ));
    o.services.push(Arc::new(yaml("apiVersion: v1\nkind: Service\nmetadata: {name: six, namespace: shop}\nspec: {type: LoadBalancer, loadBalancerIP: '2001:db8:ffff::10', ports: [{port: 80}]}\n")));
    // n3 has no IPv6 InternalIP.
    Arc::make_mut(&mut o.nodes[2]).status.as_mut().unwrap().addresses.as_mut().unwrap().truncate(1);
    let p = central(&o);
    assert_eq!(next_hops(&p)["2001:db8:ffff::10/128"], ["2001:db8:70::11", "2001:db8:70::12"]);
    assert!(
        p.plan.problems.iter().any(|x| x.object == "Node/n3" && x.message.starts_with("no IPv6 InternalIP")),
        "{:?}",
        p.plan.problems
    );
}

#[test]
fn cordoned_nodes_paths_drain_with_graceful_shutdown_when_asked() {
    let mut o = objects();
    Arc::make_mut(&mut o.nodes[1]).spec =
        Some(k8s_openapi::api::core::v1::NodeSpec { unschedulable: Some(true), ..Default::default() });
    let options = CentralOptions { graceful_shutdown_on_cordon: true, ..Default::default() };
    let p = plan(&o, Vips::Allocate(&BTreeMap::new()), &Scope::default(), &options);
    for (_, a) in p.plan.routes.iter().filter(|(x, _)| x.to_string() == "203.0.113.10/32") {
        let drained = a.communities.contains(&Community::GRACEFUL_SHUTDOWN) && a.local_pref == Some(0);
        assert_eq!(drained, a.next_hop == Some(ip("198.18.70.12")), "{a:?}");
    }
}
