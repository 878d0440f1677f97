//! Reflectors for the kinds a component reads, and the [`Objects`]
//! snapshot built from them: the same input the manifest source gives.
//! Each component watches only what it uses ([`Component`]), so its RBAC
//! can be the least it needs and it never waits for a list it may not
//! make.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use mooring_crds::{BgpAdvertisement, BgpConf, BgpPeer, Eip};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tracing::warn;

use crate::model::plan::Objects;

/// Which binary watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// Allocates: Services, Eips, BgpPeers (their status), Namespaces (pool
    /// rules), and Nodes by name only (to drop BgpPeer entries of departed nodes).
    Controller,
    /// Announces: BgpConf, BgpPeers, Eips, Services, EndpointSlices and Nodes.
    Speaker,
}

/// Keep a watch's objects in a store (`writer`) and say "something
/// changed" on `changes` — but not for an object that arrives equal to
/// the one kept but for its resourceVersion (after pruning: a change to
/// what the model does not read, like a Node's heartbeat or an endpoint
/// on another node). Watch errors back off and restart (kube-runtime's
/// default back-off).
fn forward<K, S>(
    stream: S,
    mut writer: reflector::store::Writer<K>,
    changes: mpsc::UnboundedSender<()>,
    same: fn(&K, &K) -> bool,
) where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let reader = writer.as_reader();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    let same = match &ev {
                        watcher::Event::Apply(o) => unchanged(&reader, o, same),
                        _ => false,
                    };
                    writer.apply_watcher_event(&ev);
                    if !same {
                        let _ = changes.send(());
                    }
                }
                Err(e) => warn!("watch error (retrying): {e}"),
            }
        }
    });
}

/// `o` is what the store holds already (by `same`), resourceVersion aside.
fn unchanged<K>(reader: &Store<K>, o: &K, same: fn(&K, &K) -> bool) -> bool
where
    K: Resource + Clone,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let Some(cur) = reader.get(&reflector::ObjectRef::from_obj(o)) else { return false };
    if cur.meta().resource_version == o.meta().resource_version {
        return same(&cur, o);
    }
    let mut cur = (*cur).clone();
    cur.meta_mut().resource_version.clone_from(&o.meta().resource_version);
    same(&cur, o)
}

/// Watch one kind into a store; every change sends `()` on `changes`.
pub fn watch_kind<K>(api: Api<K>, changes: mpsc::UnboundedSender<()>) -> Store<K>
where
    K: Resource + Clone + PartialEq + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    watch_pruned(api, changes, |_| {})
}

/// Watch one kind into a store, each object reduced by `prune` before it is kept.
pub fn watch_pruned<K>(
    api: Api<K>,
    changes: mpsc::UnboundedSender<()>,
    prune: impl FnMut(&mut K) + Send + 'static,
) -> Store<K>
where
    K: Resource + Clone + PartialEq + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    forward(watcher(api, watcher::Config::default()).default_backoff().modify(prune), writer, changes, K::eq);
    reader
}

/// Watch Nodes by their metadata only, pruned.
fn watch_node_metadata(
    api: Api<PartialObjectMeta<Node>>,
    changes: mpsc::UnboundedSender<()>,
) -> Store<PartialObjectMeta<Node>> {
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|n: &mut PartialObjectMeta<Node>| prune::node_metadata(&mut n.metadata));
    forward(stream, writer, changes, |a, b| a.metadata == b.metadata);
    reader
}

pub use crate::model::prune;

/// How long the speaker waits for the first list of BgpAdvertisements.
const ADVERTISEMENTS_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Nodes, whole or by metadata only.
#[derive(Clone)]
pub enum NodeStore {
    Full(Store<Node>),
    Metadata(Store<PartialObjectMeta<Node>>),
}

/// The stores of the watched kinds (`None`: not watched by this component).
#[derive(Clone, Default)]
pub struct Stores {
    pub confs: Option<Store<BgpConf>>,
    pub peers: Option<Store<BgpPeer>>,
    pub eips: Option<Store<Eip>>,
    pub advertisements: Option<Store<BgpAdvertisement>>,
    pub services: Option<Store<Service>>,
    pub endpoint_slices: Option<Store<EndpointSlice>>,
    pub nodes: Option<NodeStore>,
    pub namespaces: Option<Store<Namespace>>,
}

impl Stores {
    pub fn start(client: &Client, component: Component, changes: mpsc::UnboundedSender<()>) -> Stores {
        Self::start_for(client, component, changes, None)
    }

    /// As [`Stores::start`]; with `own_node` the speaker keeps only the
    /// endpoints on that node (all a per-node speaker reads; the central
    /// speaker announces for every node and needs them all).
    pub fn start_for(
        client: &Client,
        component: Component,
        changes: mpsc::UnboundedSender<()>,
        own_node: Option<String>,
    ) -> Stores {
        let c = || changes.clone();
        let api = || client.clone();
        match component {
            Component::Controller => Stores {
                peers: Some(watch_kind(Api::all(api()), c())),
                eips: Some(watch_kind(Api::all(api()), c())),
                services: Some(watch_pruned(Api::all(api()), c(), prune::service)),
                // `Api<PartialObjectMeta<_>>` lists and watches metadata only.
                nodes: Some(NodeStore::Metadata(watch_node_metadata(Api::all(api()), c()))),
                namespaces: Some(watch_kind(Api::all(api()), c())),
                ..Stores::default()
            },
            Component::Speaker => Stores {
                confs: Some(watch_kind(Api::all(api()), c())),
                peers: Some(watch_kind(Api::all(api()), c())),
                eips: Some(watch_kind(Api::all(api()), c())),
                advertisements: Some(watch_kind(Api::all(api()), c())),
                // Whole Services, EndpointSlices and Nodes of the cluster: only what the model reads is kept.
                services: Some(watch_pruned(Api::all(api()), c(), prune::service)),
                endpoint_slices: Some(watch_pruned(Api::all(api()), c(), move |s: &mut EndpointSlice| {
                    prune::endpoint_slice(s, own_node.as_deref())
                })),
                nodes: Some(NodeStore::Full(watch_pruned(Api::all(api()), c(), prune::node))),
                ..Stores::default()
            },
        }
    }

    /// Wait until every watched store has its first full list.
    pub async fn ready(&self) {
        async fn ready<K: Resource + Clone>(s: &Option<Store<K>>)
        where
            K::DynamicType: Eq + Hash + Clone,
        {
            if let Some(s) = s {
                let _ = s.wait_until_ready().await;
            }
        }
        ready(&self.confs).await;
        ready(&self.peers).await;
        ready(&self.eips).await;
        ready(&self.services).await;
        ready(&self.endpoint_slices).await;
        ready(&self.namespaces).await;
        // A cluster upgraded from a chart without the BgpAdvertisement CRD (Helm installs
        // CRDs but never upgrades them) answers its list with 404 until the CRD is applied:
        // wait a while, then go on without (the watch keeps trying, and announcements are
        // narrowed as soon as the advertisements arrive).
        if let Some(s) = &self.advertisements {
            if tokio::time::timeout(ADVERTISEMENTS_WAIT, s.wait_until_ready()).await.is_err() {
                tracing::error!(
                    "BgpAdvertisements could not be listed in {}s (is the CRD installed? kubectl apply -f                      helm/mooring/crds/mooring.io_crds.yaml): every VIP goes to every peer until they can",
                    ADVERTISEMENTS_WAIT.as_secs()
                );
            }
        }
        match &self.nodes {
            Some(NodeStore::Full(s)) => {
                let _ = s.wait_until_ready().await;
            }
            Some(NodeStore::Metadata(s)) => {
                let _ = s.wait_until_ready().await;
            }
            None => {}
        }
    }

    /// The model's input, as the manifest source would give it: the Services,
    /// EndpointSlices, Nodes and Namespaces are the stores' own (shared, not copied); the
    /// custom resources, few, are copied.
    pub fn objects(&self) -> Objects {
        fn shared<K: Clone + Resource>(s: &Option<Store<K>>) -> Vec<Arc<K>>
        where
            K::DynamicType: Eq + Hash + Clone,
        {
            s.as_ref().map(|s| s.state()).unwrap_or_default()
        }
        fn all<K: Clone + Resource>(s: &Option<Store<K>>) -> Vec<K>
        where
            K::DynamicType: Eq + Hash + Clone,
        {
            shared(s).iter().map(|o| (**o).clone()).collect()
        }
        let nodes = match &self.nodes {
            Some(NodeStore::Full(s)) => s.state(),
            Some(NodeStore::Metadata(s)) => {
                s.state().iter().map(|m| Arc::new(Node { metadata: m.metadata.clone(), ..Node::default() })).collect()
            }
            None => vec![],
        };
        Objects {
            confs: all(&self.confs),
            peers: all(&self.peers),
            eips: all(&self.eips),
            advertisements: all(&self.advertisements),
            services: shared(&self.services),
            endpoint_slices: shared(&self.endpoint_slices),
            nodes,
            namespaces: shared(&self.namespaces),
            ..Objects::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(rv: &str, label: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "resourceVersion": rv, "labels": {"rack": label}},
            "status": {"addresses": [{"type": "InternalIP", "address": "198.18.0.11"}]}
        }))
        .unwrap()
    }

    #[test]
    fn an_object_equal_but_for_its_resource_version_is_no_change() {
        let (reader, mut writer) = reflector::store();
        assert!(!unchanged(&reader, &node("1", "r1"), Node::eq), "not kept yet");
        writer.apply_watcher_event(&watcher::Event::Apply(node("1", "r1")));
        assert!(unchanged(&reader, &node("1", "r1"), Node::eq));
        assert!(unchanged(&reader, &node("2", "r1"), Node::eq), "a heartbeat, pruned: no change");
        assert!(!unchanged(&reader, &node("3", "r2"), Node::eq), "a label the model reads moved");
    }

    /// The model's input holds the stores' own Services, EndpointSlices and Nodes: a
    /// change costs a reference count per object, not a copy of the cluster.
    #[test]
    fn the_objects_share_the_stores_objects() {
        fn store<K>(items: Vec<K>) -> Store<K>
        where
            K: Resource + Clone + Debug + Send + Sync + 'static,
            K::DynamicType: Default + Eq + Hash + Clone,
        {
            let (reader, mut writer) = reflector::store();
            for o in items {
                writer.apply_watcher_event(&watcher::Event::Apply(o));
            }
            reader
        }
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"}, "spec": {"type": "LoadBalancer"}
        }))
        .unwrap();
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop"}, "addressType": "IPv4", "endpoints": []
        }))
        .unwrap();
        let stores = Stores {
            confs: None,
            peers: None,
            eips: None,
            advertisements: None,
            services: Some(store(vec![svc])),
            endpoint_slices: Some(store(vec![slice])),
            nodes: Some(NodeStore::Full(store(vec![node("1", "r1")]))),
            namespaces: None,
        };
        let o = stores.objects();
        assert!(Arc::ptr_eq(&o.services[0], &stores.services.as_ref().unwrap().state()[0]));
        assert!(Arc::ptr_eq(&o.endpoint_slices[0], &stores.endpoint_slices.as_ref().unwrap().state()[0]));
        let Some(NodeStore::Full(nodes)) = &stores.nodes else { unreachable!() };
        assert!(Arc::ptr_eq(&o.nodes[0], &nodes.state()[0]));
        assert_eq!(o.nodes[0].metadata.labels.as_ref().unwrap()["rack"], "r1");
    }

    #[test]
    fn a_node_heartbeat_prunes_to_the_node_kept() {
        let whole = |beat: &str| -> Node {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "n1", "resourceVersion": beat, "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
                             "managedFields": [{"manager": "kubelet", "time": format!("2026-01-01T00:00:0{beat}Z")}]},
                "status": {"addresses": [{"type": "InternalIP", "address": "198.18.0.11"}],
                           "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": format!("2026-01-01T00:00:0{beat}Z")}]}
            }))
            .unwrap()
        };
        let (mut a, mut b) = (whole("1"), whole("2"));
        prune::node(&mut a);
        prune::node(&mut b);
        let (reader, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Apply(a));
        assert!(unchanged(&reader, &b, Node::eq));
    }
}
