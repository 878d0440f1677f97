//! The reflector stores keep only what the model reads
//! (`model::prune`): a cluster of whole objects, dressed as a real
//! API server returns them (managed fields, kubectl's last-applied
//! annotation, the kubelet's images, conditions and node info, endpoint
//! target refs), must give exactly the same plan on every node — per-node
//! speakers from status and allocating, the central speaker — and the
//! same controller writes as the same cluster pruned.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use mooring_agent::kube::reconcile::{reconcile, Published, Settings};
use mooring_agent::model::central::{self, CentralOptions};
use mooring_agent::model::plan::{self, shared, Objects, Scope, Vips};
use mooring_agent::model::prune;
use serde_json::{json, Value};

fn de<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

fn managed(manager: &str) -> Value {
    json!([{"manager": manager, "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}, "f:spec": {"f:ports": {}}}}])
}

/// A Service as `kubectl apply` and a controller leave it; `annotations` are the model's.
fn service(name: &str, local: bool, status: &[&str], annotations: Value, extra_spec: Value) -> Value {
    let mut a = json!({
        "kubectl.kubernetes.io/last-applied-configuration": format!("{{\"kind\":\"Service\",\"metadata\":{{\"name\":\"{name}\"}}}}"),
        "prometheus.io/scrape": "true",
        "unrelated.example.com/owner": "team-a"
    });
    plan_merge(&mut a, &annotations);
    let ingress: Vec<Value> = status.iter().map(|ip| json!({"ip": ip, "ipMode": "VIP"})).collect();
    let mut spec = json!({
        "type": "LoadBalancer",
        "externalTrafficPolicy": if local { "Local" } else { "Cluster" },
        "selector": {"app": name},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}],
        "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "sessionAffinity": "None",
        "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"
    });
    plan_merge(&mut spec, &extra_spec);
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "resourceVersion": "17",
                     "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": name},
                     "annotations": a, "managedFields": managed("kubectl-client-side-apply")},
        "spec": spec,
        "status": {"loadBalancer": if ingress.is_empty() { json!({}) } else { json!({"ingress": ingress}) }}
    })
}

fn plan_merge(a: &mut Value, b: &Value) {
    if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
}

/// An EndpointSlice as the EndpointSlice controller writes it: (node, ready, terminating) per endpoint.
fn slice(service: &str, k: u32, endpoints: &[(&str, Option<bool>, bool)]) -> Value {
    let eps: Vec<Value> = endpoints
        .iter()
        .enumerate()
        .map(|(j, (node, ready, terminating))| {
            let mut c = json!({"serving": true, "terminating": terminating});
            if let Some(r) = ready {
                c["ready"] = json!(r);
            }
            json!({"addresses": [format!("10.244.{k}.{j}")], "conditions": c, "nodeName": node,
                   "targetRef": {"kind": "Pod", "namespace": "shop", "name": format!("{service}-{j}"), "uid": format!("pod-{j}")},
                   "zone": "zone-a", "hints": {"forZones": [{"name": "zone-a"}]}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-{k}"), "generateName": format!("{service}-"), "namespace": "shop",
                     "uid": format!("uid-{service}-{k}"), "resourceVersion": "9", "generation": 1,
                     "labels": {"kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                     "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-01-01T00:00:00Z"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": service, "uid": format!("uid-{service}")}],
                     "managedFields": managed("kube-controller-manager")},
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    })
}

/// A Node as the kubelet leaves it.
fn node(name: &str, ip: &str, labels: Value, unschedulable: bool) -> Value {
    let mut l = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"});
    plan_merge(&mut l, &labels);
    let images: Vec<Value> =
        (0..5).map(|j| json!({"names": [format!("registry.example.com/img-{j}:v1")], "sizeBytes": 1000 * j})).collect();
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "5", "labels": l,
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0", "mooring.io/med": "7"},
                     "managedFields": managed("kubelet")},
        "spec": {"podCIDR": "10.244.1.0/24", "unschedulable": unschedulable},
        "status": {
            "addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}, {"type": "InternalIP", "address": "fd00::11"}],
            "capacity": {"cpu": "8"}, "allocatable": {"cpu": "7"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}],
            "images": images,
            "nodeInfo": {"architecture": "amd64", "bootID": "b", "containerRuntimeVersion": "containerd://2", "kernelVersion": "6",
                         "kubeProxyVersion": "v1", "kubeletVersion": "v1", "machineID": "m", "operatingSystem": "linux",
                         "osImage": "x", "systemUUID": "u"}
        }
    })
}

/// A cluster exercising what the model reads of Services, EndpointSlices and Nodes.
fn cluster() -> Objects {
    Objects {
        confs: vec![de(
            json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpConf", "metadata": {"name": "default"}, "spec": {"as": 64513}}),
        )],
        peers: vec![
            de(
                json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpPeer", "metadata": {"name": "edge", "uid": "p1"},
                      "spec": {"peerAddress": "198.18.0.1", "peerAs": 64512, "nodeSelector": {"matchLabels": {"rack": "r1"}}}}),
            ),
            de(
                json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpPeer", "metadata": {"name": "all", "uid": "p2"},
                      "spec": {"peerAddress": "198.18.0.2", "peerAs": 64512, "families": ["ipv4-unicast", "ipv6-unicast"]}}),
            ),
            de(
                json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpPeer", "metadata": {"name": "router", "uid": "p3"},
                      "spec": {"peerAddress": "198.18.0.3", "peerAs": 64512, "mode": "Central"}}),
            ),
        ],
        eips: vec![
            de(
                json!({"apiVersion": "mooring.io/v1alpha1", "kind": "Eip", "metadata": {"name": "pool", "generation": 1}, "spec": {"address": "203.0.113.0/28"}}),
            ),
            de(
                json!({"apiVersion": "mooring.io/v1alpha1", "kind": "Eip", "metadata": {"name": "pool6", "generation": 1}, "spec": {"address": "2001:db8::/120"}}),
            ),
            de(
                json!({"apiVersion": "mooring.io/v1alpha1", "kind": "Eip", "metadata": {"name": "gold", "generation": 1, "labels": {"tier": "gold"}}, "spec": {"address": "198.51.100.0/29"}}),
            ),
        ],
        services: shared([
            de(service("a", false, &["203.0.113.1"], json!({}), json!({}))),
            de(service(
                "b",
                true,
                &["203.0.113.2"],
                json!({"mooring.io/med": "50", "mooring.io/communities": "64512:1", "mooring.io/local-pref": "200"}),
                json!({}),
            )),
            de(service(
                "c",
                true,
                &["203.0.113.3"],
                json!({"mooring.io/weighting": "endpoints", "mooring.io/as-path-prepend": "2"}),
                json!({}),
            )),
            de(service(
                "d",
                false,
                &["203.0.113.4", "2001:db8::4"],
                json!({"metallb.io/address-pool": "pool"}),
                json!({"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack"}),
            )),
            de(service("e", false, &[], json!({"mooring.io/loadBalancerIPs": "203.0.113.9"}), json!({}))),
            de(service("f", false, &[], json!({"mooring.io/eip": "gold"}), json!({}))),
            de(service(
                "g",
                false,
                &["203.0.113.6"],
                json!({"metallb.io/allow-shared-ip": "k"}),
                json!({"ports": [{"port": 81, "protocol": "TCP"}]}),
            )),
            de(service(
                "h",
                false,
                &["203.0.113.6"],
                json!({"metallb.io/allow-shared-ip": "k"}),
                json!({"ports": [{"port": 82, "protocol": "TCP"}]}),
            )),
            de(service("i", false, &["203.0.113.7"], json!({}), json!({"loadBalancerClass": "other.example.com/lb"}))),
            de(service(
                "j",
                false,
                &[],
                json!({"eip.openelb.kubesphere.io/v1alpha2": "pool", "lb.kubesphere.io/v1alpha1": "openelb"}),
                json!({}),
            )),
        ]),
        endpoint_slices: shared([
            de(slice("b", 0, &[("n1", Some(true), false), ("n2", Some(false), false), ("n3", Some(true), false)])),
            de(slice("b", 1, &[("n2", None, false)])),
            de(slice("c", 0, &[("n1", Some(true), false), ("n1", Some(true), false), ("n2", Some(true), true)])),
        ]),
        nodes: shared([
            de(node("n1", "198.18.0.11", json!({"rack": "r1"}), false)),
            de(node("n2", "198.18.0.12", json!({"rack": "r2"}), true)),
            de(node(
                "n3",
                "198.18.0.13",
                json!({"node.kubernetes.io/exclude-from-external-load-balancers": ""}),
                false,
            )),
        ]),
        ..Objects::default()
    }
}

/// The cluster as a speaker's stores keep it (`own_node`: a per-node speaker's, its endpoints only).
fn pruned(o: &Objects, own_node: Option<&str>) -> Objects {
    let mut p = o.clone();
    prune::objects(&mut p, own_node);
    p
}

const NODES: [&str; 4] = ["n1", "n2", "n3", "absent"];

/// Everything `node`'s speaker would do, from status and allocating.
fn per_node(o: &Objects, node: &str) -> Vec<String> {
    let held: BTreeMap<String, Vec<std::net::IpAddr>> = BTreeMap::new();
    let mut out = vec![];
    for exclude_cordoned in [false, true] {
        let scope = Scope { exclude_cordoned, ..Scope::default() };
        out.push(format!("{node} status {:?}", plan::plan(o, node, Vips::FromStatus, &scope)));
        out.push(format!("{node} allocate {:?}", plan::plan(o, node, Vips::Allocate(&held), &scope)));
    }
    out
}

/// Everything the central speaker would do.
fn central_plans(o: &Objects) -> Vec<String> {
    [false, true]
        .map(|exclude_cordoned| {
            let scope = Scope { exclude_cordoned, ..Scope::default() };
            let opts = CentralOptions { graceful_shutdown_on_cordon: true, ..CentralOptions::default() };
            let c = central::plan(o, Vips::FromStatus, &scope, &opts);
            format!("central {:?} {:?}", c.plan, c.gates)
        })
        .to_vec()
}

#[test]
fn a_pruned_cluster_plans_the_same_as_the_whole_one() {
    let whole = cluster();
    let all = pruned(&whole, None);
    for node in NODES {
        let want = per_node(&whole, node);
        assert_eq!(want, per_node(&all, node), "{node}, every endpoint kept");
        assert_eq!(want, per_node(&pruned(&whole, Some(node)), node), "{node}, its own endpoints kept");
    }
    assert_eq!(central_plans(&whole), central_plans(&all));
    // The scenario is not vacuous: routes, weights, attributes and problems are in it.
    let n1 = per_node(&whole, "n1").join("\n");
    for want in [
        "addr: 203.0.113.2, prefix: 32",
        "addr: 2001:db8::4, prefix: 128",
        "med: Some(50)",
        "LinkBandwidth",
        "as_path_prepend: 2",
    ] {
        assert!(n1.contains(want), "{want} not in {n1}");
    }
    assert!(n1.contains("203.0.113.9"), "the requested address is allocated");
    assert!(n1.contains("198.51.100."), "the gold pool is chosen by annotation");
    let n2 = per_node(&whole, "n2").join("\n");
    assert_ne!(n1, n2, "the nodes' endpoints differ, and so do their plans");
    assert!(central_plans(&whole)[0].contains("198.18.0.12"), "the central speaker announces for n2 too");
}

#[test]
fn the_controller_writes_the_same_for_a_pruned_cluster() {
    let whole = cluster();
    let p = pruned(&whole, None);
    let now: Timestamp = "2026-02-01T00:00:00Z".parse().unwrap();
    let w = |o: &Objects| {
        let r = reconcile(o, &[], &o.eips, &Published::new(), now, &Settings::default());
        format!("{:?} {:?} {} {}", r.writes, r.pools, r.assigned, r.without_address)
    };
    let (a, b) = (w(&whole), w(&p));
    assert_eq!(a, b);
    assert!(a.contains("ServiceStatus") && a.contains("EipStatus"), "{a}");
}

#[test]
fn pruning_drops_what_the_model_does_not_read() {
    let p = pruned(&cluster(), Some("n1"));
    for s in &p.services {
        assert!(s.metadata.managed_fields.is_none());
        let a = s.metadata.annotations.clone().unwrap_or_default();
        assert!(a.keys().all(|k| prune::read_annotation(k)), "{a:?}");
        assert!(
            s.spec.is_some()
                && s.status.is_some()
                && s.metadata.uid.is_some()
                && s.metadata.creation_timestamp.is_some()
        );
    }
    let b = &p.services[1].metadata.annotations.as_ref().unwrap();
    assert_eq!(b.get("mooring.io/med").map(String::as_str), Some("50"));
    assert!(!b.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    for s in &p.endpoint_slices {
        assert!(s.metadata.managed_fields.is_none() && s.metadata.owner_references.is_none() && s.ports.is_none());
        assert_eq!(s.metadata.labels.as_ref().map(|l| l.len()), Some(1));
        assert!(s.endpoints.iter().all(|e| e.target_ref.is_none() && e.addresses.is_empty()));
        assert!(s.endpoints.iter().all(|e| e.node_name.as_deref() == Some("n1")), "n1's endpoints only");
    }
    for n in &p.nodes {
        let st = n.status.as_ref().unwrap();
        assert!(st.images.is_none() && st.node_info.is_none() && st.conditions.is_none());
        assert_eq!(st.addresses.as_ref().map(|a| a.len()), Some(3));
        assert!(n.metadata.managed_fields.is_none() && n.metadata.labels.is_some());
    }
}
