//! BgpAdvertisements through the whole plan: objects as manifests in, per-node routes with
//! the peers each path is for out.

use std::collections::BTreeMap;
use std::sync::Arc;

use mooring_bgp::wire::Community;

use crate::model::plan::{plan, shared, Objects, Plan, Scope, Vips};

fn yaml<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_yaml::from_str(s).unwrap()
}

const EDGE: &str = "198.18.0.1";
const CORE: &str = "198.18.0.2";

/// Two peers (edge, core), two pools (public labelled tier=public, private), two nodes in
/// two racks, a Cluster Service in each pool and one labelled app=web in public.
fn objects() -> Objects {
    let svc = |name: &str, pool: &str, ip: &str, labels: &str| {
        yaml(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: shop, labels: {{{labels}}}, annotations: {{mooring.io/eip: {pool}}}}}\n\
             spec: {{type: LoadBalancer, loadBalancerIP: {ip}, ports: [{{port: 80}}]}}\n"
        ))
    };
    Objects {
        confs: vec![yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {name: default}\nspec: {as: 64513}\n")],
        peers: vec![
            yaml(&format!("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge, labels: {{role: edge}}}}\nspec: {{peerAddress: {EDGE}, peerAs: 64512}}\n")),
            yaml(&format!("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: core}}\nspec: {{peerAddress: {CORE}, peerAs: 64512}}\n")),
        ],
        eips: vec![
            yaml("apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {name: public, labels: {tier: public}}\nspec: {address: 203.0.113.0/25, communities: [\"64513:1\"], med: 7}\n"),
            yaml("apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {name: private}\nspec: {address: 203.0.113.128/25}\n"),
        ],
        services: shared([
            svc("web", "public", "203.0.113.10", "app: web"),
            svc("api", "public", "203.0.113.11", ""),
            svc("db", "private", "203.0.113.130", ""),
        ]),
        nodes: shared([
            yaml("apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {rack: r1}}\nstatus: {addresses: [{type: InternalIP, address: 198.18.0.11}]}\n"),
            yaml("apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {rack: r2}}\nstatus: {addresses: [{type: InternalIP, address: 198.18.0.12}]}\n"),
        ]),
        ..Objects::default()
    }
}

fn ad(name: &str, spec: &str) -> mooring_crds::BgpAdvertisement {
    yaml(&format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpAdvertisement\nmetadata: {{name: {name}}}\nspec: {spec}\n"
    ))
}

fn plan_of(o: &Objects, node: &str) -> Plan {
    plan(o, node, Vips::Allocate(&BTreeMap::new()), &Scope::default())
}

/// Prefix → the peers it goes to (every path's), sorted; "all" for a path for every peer.
fn peers_of(p: &Plan) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (prefix, attrs) in &p.routes {
        let e = out.entry(prefix.to_string()).or_default();
        match &attrs.to {
            None => e.push("all".into()),
            Some(to) => e.extend(to.iter().map(|a| a.to_string())),
        }
        e.sort();
    }
    out
}

fn attrs_for<'a>(p: &'a Plan, prefix: &str, peer: &str) -> &'a mooring_bgp::speaker::RouteAttrs {
    let peer = peer.parse().unwrap();
    p.routes
        .iter()
        .find(|(x, a)| x.to_string() == prefix && a.is_for(peer))
        .map(|(_, a)| a)
        .unwrap_or_else(|| panic!("no path of {prefix} for {peer}"))
}

fn problems(p: &Plan) -> Vec<String> {
    p.problems.iter().map(|x| x.to_string()).collect()
}

#[test]
fn without_advertisements_every_route_goes_to_every_peer() {
    let p = plan_of(&objects(), "n1");
    assert_eq!(p.routes.len(), 3);
    assert!(p.routes.iter().all(|(_, a)| a.to.is_none()));
    assert!(p.problems.is_empty(), "{:?}", problems(&p));
}

#[test]
fn pools_go_to_the_peers_their_advertisements_name() {
    let mut o = objects();
    o.advertisements = vec![
        ad("public-to-edge", "{eipSelector: {matchLabels: {tier: public}}, peerSelector: {matchLabels: {role: edge}}}"),
        ad("private-to-core", "{eips: [private], peers: [core]}"),
    ];
    let p = plan_of(&o, "n1");
    let want: BTreeMap<String, Vec<String>> =
        [("203.0.113.10/32", vec![EDGE]), ("203.0.113.11/32", vec![EDGE]), ("203.0.113.130/32", vec![CORE])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
            .collect();
    assert_eq!(peers_of(&p), want);
    assert!(p.problems.is_empty(), "{:?}", problems(&p));
    // The pool's attributes still apply where the advertisement sets none.
    let a = attrs_for(&p, "203.0.113.10/32", EDGE);
    assert_eq!((a.med, a.communities.clone()), (Some(7), vec![Community::new(64513, 1)]));
}

#[test]
fn an_unselected_pool_is_announced_everywhere_and_node_selectors_narrow_the_nodes() {
    let mut o = objects();
    o.advertisements = vec![ad("public-r1", "{eips: [public], nodeSelector: {matchLabels: {rack: r1}}}")];
    // n1 (rack r1): the public VIPs to both peers (no peer named: all of the node's).
    let p1 = peers_of(&plan_of(&o, "n1"));
    assert_eq!(p1["203.0.113.10/32"], [EDGE, CORE]);
    assert_eq!(p1["203.0.113.130/32"], ["all"], "no advertisement selects private");
    // n2 (rack r2): the public pool is claimed by an advertisement that does not select n2.
    let p2 = peers_of(&plan_of(&o, "n2"));
    assert_eq!(p2.keys().collect::<Vec<_>>(), ["203.0.113.130/32"]);
}

#[test]
fn service_selectors_pick_services() {
    let mut o = objects();
    o.advertisements = vec![ad("web-to-edge", "{serviceSelector: {matchLabels: {app: web}}, peers: [edge]}")];
    let p = peers_of(&plan_of(&o, "n1"));
    assert_eq!(p["203.0.113.10/32"], [EDGE], "web is selected");
    assert_eq!(p["203.0.113.11/32"], ["all"], "api is not: as before");
}

#[test]
fn several_advertisements_combine_by_name() {
    let mut o = objects();
    // web also gets the Service's own MED, which wins over both.
    Arc::make_mut(&mut o.services[0])
        .metadata
        .annotations
        .get_or_insert_default()
        .insert("mooring.io/med".into(), "99".into());
    o.advertisements = vec![
        ad("b", "{eips: [public], peers: [edge, core], communities: [\"64513:20\"], localPref: 300, asPathPrepend: 2}"),
        ad("a", "{eips: [public], peers: [edge], communities: [\"64513:10\", no-export], localPref: 200}"),
    ];
    let p = plan_of(&o, "n1");
    // To edge: both, in name order: communities united, localPref from a (first by name).
    let e = attrs_for(&p, "203.0.113.11/32", EDGE);
    assert_eq!(e.communities, [Community::new(64513, 10), Community::NO_EXPORT, Community::new(64513, 20)]);
    assert_eq!((e.local_pref, e.as_path_prepend, e.med), (Some(200), 2, Some(7)));
    // To core: b alone.
    let c = attrs_for(&p, "203.0.113.11/32", CORE);
    assert_eq!((c.communities.clone(), c.local_pref), (vec![Community::new(64513, 20)], Some(300)));
    assert_eq!(attrs_for(&p, "203.0.113.10/32", EDGE).med, Some(99), "the Service's annotation wins");
    let text = problems(&p);
    assert!(
        text.iter().any(|t| t
            == "BgpAdvertisement/b spec.localPref: 300 is not used where BgpAdvertisement/a (first by name) sets 200"),
        "{text:?}"
    );
    assert_eq!(text.len(), 1, "reported once, not once per VIP: {text:?}");
}

#[test]
fn aggregation_per_peer_and_outside_the_pool() {
    let mut o = objects();
    o.advertisements = vec![
        ad("agg", "{eips: [public], peers: [edge], aggregationLength: 25}"),
        ad("host", "{eips: [public], peers: [core]}"),
        ad("too-short", "{eips: [private], aggregationLength: 24}"),
    ];
    let p = plan_of(&o, "n1");
    let routes = peers_of(&p);
    assert_eq!(routes["203.0.113.0/25"], [EDGE], "one aggregate to edge for both public VIPs");
    assert_eq!(routes["203.0.113.10/32"], [CORE]);
    assert_eq!(routes["203.0.113.11/32"], [CORE]);
    assert_eq!(p.route_services[&"203.0.113.0/25".parse().unwrap()].len(), 2);
    // /24 would cover the public pool too: refused, the VIP goes out as a host route.
    assert_eq!(routes["203.0.113.130/32"], [EDGE, CORE]);
    assert!(
        problems(&p).iter().any(|t| t.starts_with(
            "BgpAdvertisement/too-short spec.aggregationLength: /24 would cover addresses outside Eip/private"
        )),
        "{:?}",
        problems(&p)
    );
}

/// Two advertisements of one pool to one peer, asking for different lengths: both prefixes
/// go out (as MetalLB announces each advertisement), each with its own attributes.
#[test]
fn different_lengths_announce_both_prefixes() {
    let mut o = objects();
    o.advertisements = vec![
        ad("host", "{eips: [public], peers: [edge], communities: [no-advertise]}"),
        ad("summary", "{eips: [public], peers: [edge], aggregationLength: 25}"),
    ];
    let p = plan_of(&o, "n1");
    let routes = peers_of(&p);
    assert_eq!(routes["203.0.113.0/25"], [EDGE]);
    assert_eq!(routes["203.0.113.10/32"], [EDGE]);
    assert_eq!(attrs_for(&p, "203.0.113.10/32", EDGE).communities, [Community::NO_ADVERTISE]);
    assert_eq!(attrs_for(&p, "203.0.113.0/25", EDGE).communities, [Community::new(64513, 1)], "the pool's");
    assert!(p.problems.is_empty(), "{:?}", problems(&p));
}

#[test]
fn unknown_names_and_invalid_advertisements_are_reported() {
    let mut o = objects();
    o.advertisements = vec![ad("typo", "{eips: [pubic], peers: [egde]}"), ad("bad", "{asPathPrepend: 17}")];
    let text = problems(&plan_of(&o, "n1"));
    for want in [
        "BgpAdvertisement/typo spec.eips[0]: there is no (valid) Eip \"pubic\"",
        "BgpAdvertisement/typo spec.peers[0]: there is no (valid) BgpPeer \"egde\"",
        "BgpAdvertisement/bad spec.asPathPrepend: should be less than or equal to 16",
    ] {
        assert!(text.iter().any(|t| t == want), "no {want:?} in {text:?}");
    }
}

/// Two BgpPeers with one address in two VRFs are two sessions; an advertisement that names
/// one of them cannot keep its paths from the other (paths go to peers by address): reported,
/// while one that names both is fine.
#[test]
fn one_address_in_two_vrfs_selected_apart_is_reported() {
    let mut o = objects();
    o.peers.push(yaml(&format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge-red}}\nspec: {{peerAddress: {EDGE}, peerAs: 64512, vrf: red}}\n"
    )));
    o.advertisements = vec![ad("public-to-edge", "{eips: [public], peers: [edge]}")];
    let p = plan_of(&o, "n1");
    assert_eq!(p.peers.len(), 3, "edge, edge-red and core are three sessions");
    let want = format!(
        "BgpAdvertisement/public-to-edge spec.peers: selects BgpPeer \"edge\" (the default VRF) but not BgpPeer \"edge-red\" (VRF red), which has the same address {EDGE}: paths go to peers by address, so both receive them"
    );
    assert_eq!(problems(&p), [want]);
    o.advertisements = vec![ad("public-to-edge", "{eips: [public], peers: [edge, edge-red]}")];
    assert!(plan_of(&o, "n1").problems.is_empty());
}

/// The lab's manifests (which have no advertisements) plan as they did before advertisements
/// existed: the same routes, each for every peer.
#[test]
fn the_lab_manifests_plan_as_before() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../integration/lab");
    let m = crate::sources::manifests::Manifests::load(&dir, None);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    let objects = m.objects();
    assert!(objects.advertisements.is_empty());
    let scope = Scope::default();
    for node in objects.nodes.iter().filter_map(|n| n.metadata.name.clone()) {
        let p = plan(&objects, &node, Vips::Allocate(&BTreeMap::new()), &scope);
        // The plan before advertisements: the pools' announcements, attributes as the pool says.
        let mut problems = vec![];
        let snap = crate::model::plan::snapshot(&objects, &BTreeMap::new(), &scope, &mut problems);
        let d = crate::model::desired::allocate(&snap);
        let vips = d.allocations.iter().map(|(k, a)| (k.clone(), a.addresses.clone())).collect();
        let before: Vec<_> = crate::model::desired::announcements(&snap, &vips, &node)
            .into_values()
            .map(|a| (a.prefix, crate::model::desired::route_attrs(&snap, &a, 64513)))
            .collect();
        assert!(!before.is_empty(), "{node} announces something");
        assert_eq!(p.routes, before, "{node}");
    }
}
