//! Reflectors for the kinds a component reads, and the [`Objects`]
//! snapshot built from them: the same input the manifest source gives.
//! Each component watches only what it uses ([`Component`]), so its RBAC
//! can be the least it needs and it never waits for a list it may not
//! make.

use std::fmt::Debug;
use std::hash::Hash;

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

/// Forward a reflector's events as "something changed"; watch errors back
/// off and restart (kube-runtime's default back-off).
fn forward<S, T>(stream: S, changes: mpsc::UnboundedSender<()>)
where
    S: futures::Stream<Item = Result<T, watcher::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => {
                    let _ = changes.send(());
                }
                Err(e) => warn!("watch error (retrying): {e}"),
            }
        }
    });
}

/// Watch one kind into a store; every change sends `()` on `changes`.
pub fn watch_kind<K>(api: Api<K>, changes: mpsc::UnboundedSender<()>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    forward(watcher(api, watcher::Config::default()).default_backoff().reflect(writer), changes);
    reader
}

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
        let c = || changes.clone();
        let api = || client.clone();
        match component {
            Component::Controller => Stores {
                peers: Some(watch_kind(Api::all(api()), c())),
                eips: Some(watch_kind(Api::all(api()), c())),
                services: Some(watch_kind(Api::all(api()), c())),
                // `Api<PartialObjectMeta<_>>` lists and watches metadata only.
                nodes: Some(NodeStore::Metadata(watch_kind(Api::all(api()), c()))),
                namespaces: Some(watch_kind(Api::all(api()), c())),
                ..Stores::default()
            },
            Component::Speaker => Stores {
                confs: Some(watch_kind(Api::all(api()), c())),
                peers: Some(watch_kind(Api::all(api()), c())),
                eips: Some(watch_kind(Api::all(api()), c())),
                advertisements: Some(watch_kind(Api::all(api()), c())),
                services: Some(watch_kind(Api::all(api()), c())),
                endpoint_slices: Some(watch_kind(Api::all(api()), c())),
                nodes: Some(NodeStore::Full(watch_kind(Api::all(api()), c()))),
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

    /// The model's input, as the manifest source would give it.
    pub fn objects(&self) -> Objects {
        fn all<K: Clone + Resource>(s: &Option<Store<K>>) -> Vec<K>
        where
            K::DynamicType: Eq + Hash + Clone,
        {
            s.as_ref().map(|s| s.state().iter().map(|o| (**o).clone()).collect()).unwrap_or_default()
        }
        let nodes = match &self.nodes {
            Some(NodeStore::Full(s)) => s.state().iter().map(|o| (**o).clone()).collect(),
            Some(NodeStore::Metadata(s)) => {
                s.state().iter().map(|m| Node { metadata: m.metadata.clone(), ..Node::default() }).collect()
            }
            None => vec![],
        };
        Objects {
            confs: all(&self.confs),
            peers: all(&self.peers),
            eips: all(&self.eips),
            advertisements: all(&self.advertisements),
            services: all(&self.services),
            endpoint_slices: all(&self.endpoint_slices),
            nodes,
            namespaces: all(&self.namespaces),
            ..Objects::default()
        }
    }
}
