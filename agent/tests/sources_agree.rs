//! One scenario through both sources: manifest files (standalone mode)
//! and Kubernetes reflector stores (controller allocates and writes
//! Service status, each node's speaker announces from that status). Every
//! node must announce exactly the same routes either way.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::Resource;
use mooring_agent::kube::stores::Stores;
use mooring_agent::model::desired;
use mooring_agent::model::plan;
use mooring_agent::sources::manifests::Manifests;
use mooring_agent::standalone::objects;

fn store<K>(items: &[K]) -> Store<K>
where
    K: Resource + Clone + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in items {
        writer.apply_watcher_event(&watcher::Event::InitApply(o.clone()));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

#[test]
fn file_source_and_kube_source_announce_the_same() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../integration/lab");
    let m = Manifests::load(&dir, None);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    let from_files = objects(&m);

    // The Kubernetes side: the same objects through reflector stores.
    let o = &from_files;
    let stores = Stores {
        confs: store(&o.confs),
        peers: store(&o.peers),
        eips: store(&o.eips),
        services: store(&o.services),
        endpoint_slices: store(&o.endpoint_slices),
        nodes: store(&o.nodes),
        namespaces: store(&o.namespaces),
        secrets: Some(store(&o.secrets)),
    };
    let mut from_kube = stores.objects();
    // The controller allocates and writes Service status...
    let mut problems = vec![];
    let snap = plan::snapshot(&from_kube, &BTreeMap::new(), false, &mut problems);
    let answer = desired::allocate(&snap);
    for svc in &mut from_kube.services {
        if let Some(a) = answer.allocations.get(&desired::key_of(svc)) {
            let ingress = a
                .addresses
                .iter()
                .map(|(ip, _)| LoadBalancerIngress { ip: Some(ip.to_string()), ..Default::default() });
            svc.status.get_or_insert_with(Default::default).load_balancer =
                Some(LoadBalancerStatus { ingress: Some(ingress.collect()) });
        }
    }
    assert!(!answer.allocations.is_empty());
    for node in ["demo-node1", "demo-node2", "demo-node3"] {
        // ...standalone allocates itself...
        let file_plan = plan::plan(&from_files, node, &BTreeMap::new(), false);
        // ...and a cluster's speaker announces from Service status.
        let mut problems = vec![];
        let snap = plan::snapshot(&from_kube, &BTreeMap::new(), false, &mut problems);
        let vips = plan::vips_from_status(&snap);
        let kube_plan = plan::plan_with_vips(&from_kube, &snap, node, &vips, Default::default(), problems);
        let mut a = file_plan.routes.clone();
        let mut b = kube_plan.routes.clone();
        a.sort_by_key(|r| r.0);
        b.sort_by_key(|r| r.0);
        assert!(!a.is_empty(), "{node} announces something");
        assert_eq!(a, b, "{node}");
        assert_eq!(file_plan.peers, kube_plan.peers, "{node}");
        assert_eq!(file_plan.speaker, kube_plan.speaker, "{node}");
    }
}
