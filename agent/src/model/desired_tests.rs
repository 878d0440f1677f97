use serde_json::json;

use super::*;
use crate::model::ipam::IpRange;

fn obj<T: k8s_openapi::serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn service(name: &str, local: bool, extra: serde_json::Value) -> Service {
    let mut v = json!({
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": if local {"Local"} else {"Cluster"},
                 "ports": [{"port": 80, "protocol": "TCP"}]}
    });
    merge(&mut v, extra);
    obj(v)
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn node(name: &str) -> Node {
    obj(
        json!({"metadata": {"name": name}, "status": {"addresses": [{"type": "InternalIP", "address": "198.18.0.11"}]}}),
    )
}

fn slice(service: &str, nodes: &[(&str, bool)]) -> EndpointSlice {
    obj(json!({
        "metadata": {"name": format!("{service}-1"), "namespace": "shop", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": nodes.iter().map(|(n, ready)| json!({"addresses": ["10.1.0.1"], "nodeName": n, "conditions": {"ready": ready}})).collect::<Vec<_>>()
    }))
}

fn pool(name: &str, start: &str, end: &str) -> PoolConfig {
    PoolConfig {
        pool: Pool::new(name, vec![IpRange { start: start.parse().unwrap(), end: end.parse().unwrap() }]),
        namespaces: vec![],
        namespace_selector: None,
        labels: Default::default(),
        advertisement: Advertisement { med: Some(10), ..Default::default() },
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        pools: vec![pool("eip", "203.0.113.10", "203.0.113.20")],
        services: shared([
            service("local", true, json!({})),
            service("cluster", false, json!({})),
            service("clusterip", false, json!({"spec": {"type": "ClusterIP"}})),
            service("other-class", false, json!({"spec": {"loadBalancerClass": "example.com/other"}})),
        ]),
        endpoint_slices: shared([slice("local", &[("n1", true), ("n2", false)])]),
        nodes: shared([node("n1"), node("n2"), node("n3")]),
        namespaces: shared([]),
        exclude_cordoned: false,
        classes: Default::default(),
    }
}

fn vips(d: &Desired) -> BTreeMap<String, Vec<(IpAddr, String)>> {
    d.allocations.iter().map(|(k, a)| (k.clone(), a.addresses.clone())).collect()
}

#[test]
fn only_our_load_balancers_get_addresses() {
    let d = allocate(&snapshot());
    assert_eq!(d.allocations.keys().collect::<Vec<_>>(), vec!["shop/cluster", "shop/local"]);
    assert_eq!(d.allocations["shop/local"].addresses, vec![("203.0.113.11".parse().unwrap(), "eip".into())]);
    assert_eq!(d.allocations["shop/cluster"].addresses, vec![("203.0.113.10".parse().unwrap(), "eip".into())]);
}

#[test]
fn local_vip_only_from_nodes_with_ready_endpoints_cluster_vip_from_all() {
    let s = snapshot();
    let v = vips(&allocate(&s));
    let n1: Vec<String> = announcements(&s, &v, "n1").keys().map(|p| p.to_string()).collect();
    let n2: Vec<String> = announcements(&s, &v, "n2").keys().map(|p| p.to_string()).collect();
    assert_eq!(n1, vec!["203.0.113.10/32", "203.0.113.11/32"]);
    assert_eq!(n2, vec!["203.0.113.10/32"], "n2's endpoint is not ready");
    let a = &announcements(&s, &v, "n1")[&"203.0.113.10/32".parse().unwrap()];
    assert_eq!(route_attrs(&s, a, 64513).med, Some(10));
    assert!(route_attrs(&s, a, 64513).ext_communities.is_empty(), "no weighting unless asked");
}

#[test]
fn annotations_pick_pool_address_and_sharing() {
    let mut s = snapshot();
    s.pools.push(pool("other", "203.0.113.100", "203.0.113.110"));
    s.services = shared([
        service("a", false, json!({"metadata": {"annotations": {"metallb.universe.tf/address-pool": "other"}}})),
        service("b", false, json!({"metadata": {"annotations": {"mooring.io/loadBalancerIPs": "203.0.113.15"}}})),
        service("c", false, json!({"spec": {"loadBalancerIP": "not-an-ip"}})),
    ]);
    let d = allocate(&s);
    assert_eq!(d.allocations["shop/a"].addresses[0].0.to_string(), "203.0.113.100");
    assert_eq!(d.allocations["shop/b"].addresses[0].0.to_string(), "203.0.113.15");
    assert_eq!(d.spec_errors["shop/c"][0].field, "spec.loadBalancerIP");
}

#[test]
fn namespace_rules_limit_pools() {
    let mut s = snapshot();
    s.pools[0].namespaces = vec!["elsewhere".into()];
    let d = allocate(&s);
    assert_eq!(d.allocations["shop/local"].errors, vec![ipam::AllocError::NoPool]);
    s.pools[0].namespace_selector = Some(obj(json!({"matchLabels": {"team": "shop"}})));
    s.namespaces = shared([obj(json!({"metadata": {"name": "shop", "labels": {"team": "shop"}}}))]);
    assert!(allocate(&s).allocations["shop/local"].errors.is_empty());
}

#[test]
fn aggregation_length_announces_the_covering_prefix() {
    let mut s = snapshot();
    s.pools[0].advertisement.aggregation_length_v4 = Some(24);
    let v = vips(&allocate(&s));
    let n1 = announcements(&s, &v, "n1");
    assert_eq!(n1.keys().map(|p| p.to_string()).collect::<Vec<_>>(), vec!["203.0.113.0/24"]);
    assert_eq!(n1.values().next().unwrap().services.len(), 2);
}

#[test]
fn same_inputs_in_any_order_give_the_same_answer() {
    let s = snapshot();
    let mut r = s.clone();
    r.services.reverse();
    r.nodes.reverse();
    assert_eq!(allocate(&s), allocate(&r));
    let (v1, v2) = (vips(&allocate(&s)), vips(&allocate(&r)));
    for n in ["n1", "n2", "n3"] {
        assert_eq!(announcements(&s, &v1, n), announcements(&r, &v2, n));
    }
}

#[test]
fn weighted_services_carry_link_bandwidth_per_ready_endpoint() {
    let mut s = snapshot();
    s.services[0] =
        Arc::new(service("local", true, json!({"metadata": {"annotations": {"mooring.io/weighting": "endpoints"}}})));
    s.endpoint_slices = shared([slice("local", &[("n1", true), ("n2", true), ("n2", true), ("n2", true)])]);
    let v = vips(&allocate(&s));
    let lb = |node: &str| {
        let a = announcements(&s, &v, node);
        let a = &a[&"203.0.113.11/32".parse().unwrap()];
        route_attrs(&s, a, 64513).ext_communities
    };
    use mooring_bgp::wire::ExtCommunity::LinkBandwidth;
    assert_eq!(lb("n1"), vec![LinkBandwidth { asn: 64513, bytes_per_sec: 125_000.0, transitive: true }]);
    assert_eq!(lb("n2"), vec![LinkBandwidth { asn: 64513, bytes_per_sec: 375_000.0, transitive: true }]);
    // Non-transitive form on request; 4-octet local AS becomes AS_TRANS.
    s.services[0] = Arc::new(service(
        "local",
        true,
        json!({"metadata": {"annotations": {"mooring.io/weighting": "endpoints", "mooring.io/link-bandwidth": "non-transitive"}}}),
    ));
    let a = announcements(&s, &v, "n1");
    let got = route_attrs(&s, &a[&"203.0.113.11/32".parse().unwrap()], 4_200_000_000).ext_communities;
    assert_eq!(got, vec![LinkBandwidth { asn: 23456, bytes_per_sec: 125_000.0, transitive: false }]);
}

#[test]
fn service_annotations_override_the_pools_advertisement() {
    let mut s = snapshot();
    s.pools[0].advertisement.communities = vec!["64513:1".parse().unwrap()];
    s.services[1] = Arc::new(service(
        "cluster",
        false,
        json!({"metadata": {"annotations": {"mooring.io/med": "200", "mooring.io/as-path-prepend": "3",
               "mooring.io/communities": "64513:2, no-export", "mooring.io/local-pref": "lots"}}}),
    ));
    let d = allocate(&s);
    assert_eq!(d.spec_errors["shop/cluster"][0].field, "metadata.annotations[mooring.io/local-pref]");
    let v = vips(&d);
    let a = announcements(&s, &v, "n3");
    let attrs = route_attrs(&s, &a[&"203.0.113.10/32".parse().unwrap()], 64513);
    assert_eq!(attrs.med, Some(200), "the Service's MED wins over the pool's 10");
    assert_eq!(attrs.as_path_prepend, 3);
    assert_eq!(attrs.local_pref, None, "a bad value is ignored");
    let want: Vec<mooring_bgp::wire::Community> =
        vec!["64513:1".parse().unwrap(), "64513:2".parse().unwrap(), mooring_bgp::wire::Community::NO_EXPORT];
    assert_eq!(attrs.communities, want);
}

#[test]
fn pool_level_weighting_and_service_override() {
    let mut s = snapshot();
    s.pools[0].advertisement.weighting = Some(false); // weighted, non-transitive
    s.endpoint_slices = shared([slice("local", &[("n1", true), ("n1", true)])]);
    let v = vips(&allocate(&s));
    let a = announcements(&s, &v, "n1");
    use mooring_bgp::wire::ExtCommunity::LinkBandwidth;
    let lb = route_attrs(&s, &a[&"203.0.113.11/32".parse().unwrap()], 64513).ext_communities;
    assert_eq!(lb, vec![LinkBandwidth { asn: 64513, bytes_per_sec: 250_000.0, transitive: false }]);
    // The Cluster service has no local endpoints on n1: weight 0.
    let lb = route_attrs(&s, &a[&"203.0.113.10/32".parse().unwrap()], 64513).ext_communities;
    assert_eq!(lb, vec![LinkBandwidth { asn: 64513, bytes_per_sec: 0.0, transitive: false }]);
    // A Service can opt out of its pool's weighting.
    s.services[0] =
        Arc::new(service("local", true, json!({"metadata": {"annotations": {"mooring.io/weighting": "none"}}})));
    let a = announcements(&s, &v, "n1");
    assert!(route_attrs(&s, &a[&"203.0.113.11/32".parse().unwrap()], 64513).ext_communities.is_empty());
}

#[test]
fn indexed_announcements_agree_with_announcing_nodes() {
    let mut s = snapshot();
    s.endpoint_slices.push(Arc::new(slice("cluster", &[("n3", true)])));
    s.nodes.push(Arc::new(obj(
        json!({"metadata": {"name": "n4", "labels": {"node.kubernetes.io/exclude-from-external-load-balancers": ""}}}),
    )));
    let v = vips(&allocate(&s));
    for node in ["n1", "n2", "n3", "n4", "ghost"] {
        for svc in s.services.iter().filter(|x| is_ours(x, &s.classes)) {
            let vip = v[&key_of(svc)][0].0;
            let expected =
                crate::model::nodes::announcing_nodes(svc, &s.endpoint_slices, &s.nodes, false).contains(node);
            let got = announcements(&s, &v, node).contains_key(&IpNetwork::new(vip, 32).unwrap());
            assert_eq!(got, expected, "{node} {}", key_of(svc));
        }
    }
}

/// The "Why": one Eip of two addresses, a Cluster Service `web` asking for the first
/// with `spec.loadBalancerIP`, a Local Service `api` asking for nothing (and sorting first).
#[test]
fn a_service_that_asks_for_an_address_gets_it() {
    let mut s = snapshot();
    s.pools = vec![pool("eip", "203.0.113.10", "203.0.113.11")];
    let plain = |name: &str, local: bool, extra| {
        let mut svc = service(name, local, extra);
        svc.metadata.namespace = Some("default".into());
        svc.metadata.creation_timestamp = None;
        svc
    };
    s.services = shared([
        plain("api", true, json!({"spec": {"selector": {"app": "api"}}})),
        plain("web", false, json!({"spec": {"loadBalancerIP": "203.0.113.10"}})),
    ]);
    for _ in 0..2 {
        let d = allocate(&s);
        assert_eq!(d.allocations["default/web"].addresses, vec![("203.0.113.10".parse().unwrap(), "eip".into())]);
        assert_eq!(d.allocations["default/api"].addresses, vec![("203.0.113.11".parse().unwrap(), "eip".into())]);
        assert!(d.allocations.values().all(|a| a.errors.is_empty()), "{d:?}");
        s.services.reverse();
    }
}

#[test]
fn metallb_and_openelb_annotations_are_understood() {
    let mut s = snapshot();
    s.pools.push(pool("other", "203.0.113.100", "203.0.113.110"));
    let ann = |name: &str, a: serde_json::Value| service(name, false, json!({"metadata": {"annotations": a}}));
    s.services = shared([
        ann("pool", json!({"metallb.io/address-pool": "other"})),
        ann("old-pool", json!({"metallb.universe.tf/address-pool": "other"})),
        ann(
            "openelb-pool",
            json!({"lb.kubesphere.io/v1alpha1": "openelb", "eip.openelb.kubesphere.io/v1alpha2": "other"}),
        ),
        ann("ip", json!({"metallb.io/loadBalancerIPs": "203.0.113.15"})),
        ann("openelb-ip", json!({"eip.openelb.kubesphere.io/v1alpha1": "203.0.113.16"})),
        // Shared by MetalLB's current and deprecated keys alike (ports differ).
        ann("dns", json!({"metallb.io/allow-shared-ip": "k", "metallb.io/loadBalancerIPs": "203.0.113.17"})),
        service(
            "web",
            false,
            json!({"metadata": {"annotations": {"metallb.universe.tf/allow-shared-ip": "k"}},
                                      "spec": {"ports": [{"port": 443, "protocol": "TCP"}], "loadBalancerIP": "203.0.113.17"}}),
        ),
    ]);
    Arc::make_mut(&mut s.services[5]).spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 53;
    let d = allocate(&s);
    let ip = |k: &str| d.allocations[&format!("shop/{k}")].addresses[0].0.to_string();
    // The same age: by name.
    assert_eq!([ip("old-pool"), ip("openelb-pool"), ip("pool")], ["203.0.113.100", "203.0.113.101", "203.0.113.102"]);
    assert_eq!(
        [ip("ip"), ip("openelb-ip"), ip("dns"), ip("web")],
        ["203.0.113.15", "203.0.113.16", "203.0.113.17", "203.0.113.17"]
    );
    assert!(d.spec_errors.is_empty(), "{:?}", d.spec_errors);
}

#[test]
fn local_services_share_only_with_the_same_selector() {
    let mut s = snapshot();
    let sharing = |name: &str, port: i32, app: &str| {
        service(
            name,
            true,
            json!({"metadata": {"annotations": {"mooring.io/allow-shared-ip": "k"}},
                                   "spec": {"selector": {"app": app}, "ports": [{"port": port, "protocol": "TCP"}]}}),
        )
    };
    s.services = shared([sharing("a", 80, "x"), sharing("b", 81, "x"), sharing("c", 82, "y")]);
    let d = allocate(&s);
    let ip = |k: &str| d.allocations[&format!("shop/{k}")].addresses[0].0;
    assert_eq!(ip("a"), ip("b"), "same selector: shared");
    assert_ne!(ip("a"), ip("c"), "another selector: pods maybe elsewhere, not shared");
}

#[test]
fn the_served_class_decides_what_is_ours() {
    let mut s = snapshot();
    s.services = shared([
        service("classless", false, json!({})),
        service("ours", false, json!({"spec": {"loadBalancerClass": "example.com/lb"}})),
    ]);
    s.classes = crate::model::classes::Classes { class: "example.com/lb".into(), ignore_class_less: true };
    assert_eq!(allocate(&s).allocations.keys().collect::<Vec<_>>(), ["shop/ours"]);
    s.classes.ignore_class_less = false;
    assert_eq!(allocate(&s).allocations.keys().collect::<Vec<_>>(), ["shop/classless", "shop/ours"]);
}
