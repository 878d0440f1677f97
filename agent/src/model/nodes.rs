//! Which nodes announce a service's VIPs.
//!
//! - `externalTrafficPolicy: Local`: nodes with at least one ready and
//!   not terminating endpoint of the service (EndpointSlices).
//! - `Cluster`: every node not excluded by the label
//!   `node.kubernetes.io/exclude-from-external-load-balancers`, and, when
//!   asked for, not cordoned.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that keeps a node out of every load balancer.
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// The label an EndpointSlice carries naming its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Whether `svc` routes external traffic only to local endpoints.
pub fn is_local_policy(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local")
}

/// The EndpointSlices of `svc` (same namespace, service-name label). The slices may be
/// owned or shared (`Arc`), as everywhere here.
pub fn slices_of<'a, S: Borrow<EndpointSlice>>(
    svc: &Service,
    slices: &'a [S],
) -> impl Iterator<Item = &'a EndpointSlice> {
    let ns = svc.metadata.namespace.clone();
    let name = svc.metadata.name.clone();
    slices.iter().map(Borrow::borrow).filter(move |s: &&EndpointSlice| {
        s.metadata.namespace == ns
            && s.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) == name.as_ref()
    })
}

/// Nodes with a ready, not terminating endpoint of the service.
pub fn nodes_with_ready_endpoints<S: Borrow<EndpointSlice>>(svc: &Service, slices: &[S]) -> BTreeSet<String> {
    ready_endpoints_per_node(svc, slices).into_keys().collect()
}

/// How many ready, not terminating endpoints of the service each node has.
pub fn ready_endpoints_per_node<S: Borrow<EndpointSlice>>(svc: &Service, slices: &[S]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in slices_of(svc, slices).flat_map(|s| s.endpoints.iter()) {
        if let (true, Some(n)) = (endpoint_serving(e), &e.node_name) {
            *out.entry(n.clone()).or_insert(0) += 1;
        }
    }
    out
}

/// EndpointSlices indexed by (namespace, Service name).
#[derive(Debug)]
pub struct SliceIndex<'a> {
    by_service: std::collections::HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
}

impl<'a> SliceIndex<'a> {
    pub fn new<S: Borrow<EndpointSlice>>(slices: &'a [S]) -> Self {
        let mut by_service: std::collections::HashMap<(&str, &str), Vec<&EndpointSlice>> = Default::default();
        for s in slices.iter().map(Borrow::borrow) {
            let ns = s.metadata.namespace.as_deref().unwrap_or("");
            if let Some(svc) = s.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) {
                by_service.entry((ns, svc.as_str())).or_default().push(s);
            }
        }
        SliceIndex { by_service }
    }

    /// Ready, not terminating endpoints of `svc` on `node`.
    pub fn ready_on(&self, svc: &Service, node: &str) -> u64 {
        let key = (svc.metadata.namespace.as_deref().unwrap_or(""), svc.metadata.name.as_deref().unwrap_or(""));
        self.by_service
            .get(&key)
            .into_iter()
            .flatten()
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.node_name.as_deref() == Some(node) && endpoint_serving(e))
            .count() as u64
    }
}

/// Ready ("nil should be interpreted as true", discovery/v1) and not terminating.
fn endpoint_serving(e: &k8s_openapi::api::discovery::v1::Endpoint) -> bool {
    let c = e.conditions.as_ref();
    c.and_then(|c| c.ready).unwrap_or(true) && !c.and_then(|c| c.terminating).unwrap_or(false)
}

/// Whether a node may announce `Cluster` services.
pub fn node_eligible(node: &Node, exclude_cordoned: bool) -> bool {
    let excluded = node.metadata.labels.as_ref().is_some_and(|l| l.contains_key(EXCLUDE_LABEL));
    let cordoned = node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
    !(excluded || (exclude_cordoned && cordoned))
}

/// The nodes that announce the service.
pub fn announcing_nodes<S: Borrow<EndpointSlice>, N: Borrow<Node>>(
    svc: &Service,
    slices: &[S],
    nodes: &[N],
    exclude_cordoned: bool,
) -> BTreeSet<String> {
    let eligible = nodes
        .iter()
        .map(Borrow::borrow)
        .filter(|n| node_eligible(n, exclude_cordoned))
        .filter_map(|n| n.metadata.name.clone());
    if is_local_policy(svc) {
        let ready = nodes_with_ready_endpoints(svc, slices);
        eligible.filter(|n| ready.contains(n)).collect()
    } else {
        eligible.collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{NodeSpec, ServiceSpec};
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn node(name: &str, labels: &[(&str, &str)], cordoned: bool) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..Default::default()
            },
            spec: Some(NodeSpec { unschedulable: Some(cordoned), ..Default::default() }),
            status: None,
        }
    }

    fn svc(local: bool) -> Service {
        Service {
            metadata: ObjectMeta { name: Some("web".into()), namespace: Some("shop".into()), ..Default::default() },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                external_traffic_policy: Some(if local { "Local" } else { "Cluster" }.into()),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn slice(ns: &str, service: &str, eps: &[(&str, Option<bool>, Option<bool>)]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("{service}-x")),
                namespace: Some(ns.into()),
                labels: Some(BTreeMap::from([(SERVICE_NAME_LABEL.to_string(), service.to_string())])),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: eps
                .iter()
                .map(|(n, ready, terminating)| Endpoint {
                    addresses: vec!["10.0.0.1".into()],
                    node_name: Some(n.to_string()),
                    conditions: Some(EndpointConditions { ready: *ready, terminating: *terminating, serving: None }),
                    ..Default::default()
                })
                .collect(),
            ports: None,
        }
    }

    #[test]
    fn local_policy_follows_ready_endpoints() {
        let nodes = [node("n1", &[], false), node("n2", &[], false), node("n3", &[], false)];
        let slices = [
            slice("shop", "web", &[("n1", Some(true), None), ("n2", Some(false), None), ("n3", None, Some(true))]),
            slice("other", "web", &[("n2", Some(true), None)]),
        ];
        let got = announcing_nodes(&svc(true), &slices, &nodes, false);
        assert_eq!(got, BTreeSet::from(["n1".to_string()]));
        // Ready unset counts as ready.
        let slices = [slice("shop", "web", &[("n2", None, None)])];
        assert_eq!(announcing_nodes(&svc(true), &slices, &nodes, false), BTreeSet::from(["n2".to_string()]));
    }

    #[test]
    fn cluster_policy_uses_every_eligible_node() {
        let nodes = [node("n1", &[], false), node("n2", &[(EXCLUDE_LABEL, "")], false), node("n3", &[], true)];
        let all = announcing_nodes::<EndpointSlice, _>(&svc(false), &[], &nodes, false);
        assert_eq!(all, BTreeSet::from(["n1".to_string(), "n3".to_string()]));
        let uncordoned = announcing_nodes::<EndpointSlice, _>(&svc(false), &[], &nodes, true);
        assert_eq!(uncordoned, BTreeSet::from(["n1".to_string()]));
    }
}
