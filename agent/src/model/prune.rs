//! What the model reads of the Services, EndpointSlices and Nodes a source
//! holds; the rest is dropped as each object arrives, before it is kept
//! (issue 20: a speaker holds every Service, EndpointSlice and Node of the
//! cluster). Used by the reflector stores (`kube::stores`) and the manifest
//! source (`sources::manifests`). Pure; `agent/tests/pruned_plans.rs` checks
//! that a pruned cluster gives the same plans as the whole one.

use k8s_openapi::api::core::v1::{Node, NodeStatus, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::nodes::SERVICE_NAME_LABEL;

pub use crate::model::annotations::read_by_model as read_annotation;

/// A Service keeps its spec, status and metadata but for the managed
/// fields and the annotations the model does not read (kubectl's
/// last-applied-configuration is most of a Service's size).
pub fn service(s: &mut Service) {
    s.metadata.managed_fields = None;
    if let Some(a) = s.metadata.annotations.as_mut() {
        a.retain(|k, _| read_annotation(k));
    }
}

/// An EndpointSlice keeps its name, namespace, UID, resourceVersion
/// and Service label, and of each endpoint its node and conditions:
/// what says which nodes have ready endpoints of which Service. With
/// `own_node`, only the endpoints on that node.
pub fn endpoint_slice(s: &mut EndpointSlice, own_node: Option<&str>) {
    if let Some(n) = own_node {
        s.endpoints.retain(|e| e.node_name.as_deref() == Some(n));
    }
    let m = std::mem::take(&mut s.metadata);
    let labels = m.labels.map(|mut l| {
        l.retain(|k, _| k == SERVICE_NAME_LABEL);
        l
    });
    s.metadata = ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        deletion_timestamp: m.deletion_timestamp,
        labels,
        ..ObjectMeta::default()
    };
    s.ports = None;
    for e in &mut s.endpoints {
        *e = Endpoint {
            addresses: vec![],
            conditions: e.conditions.take(),
            node_name: e.node_name.take(),
            ..Endpoint::default()
        };
    }
}

/// A Node keeps its metadata but for the managed fields and
/// annotations, its spec, and of its status the addresses (the
/// kubelet's image list, conditions and node info are most of a Node).
pub fn node(n: &mut Node) {
    n.metadata.managed_fields = None;
    n.metadata.annotations = None;
    n.status = n.status.take().map(|s| NodeStatus { addresses: s.addresses, ..NodeStatus::default() });
}

/// The kinds the speaker caches pruned, in place (what the stores hold).
pub fn objects(o: &mut crate::model::plan::Objects, own_node: Option<&str>) {
    o.services.iter_mut().for_each(|s| service(std::sync::Arc::make_mut(s)));
    o.endpoint_slices.iter_mut().for_each(|s| endpoint_slice(std::sync::Arc::make_mut(s), own_node));
    o.nodes.iter_mut().for_each(|n| node(std::sync::Arc::make_mut(n)));
}

/// A Node seen by its metadata only: the name and labels are what is read.
pub fn node_metadata(m: &mut ObjectMeta) {
    m.managed_fields = None;
    m.annotations = None;
}
