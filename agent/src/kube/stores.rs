//! Reflectors for every kind the model reads, and the [`Objects`]
//! snapshot built from them: the same input the manifest source gives.

use std::fmt::Debug;
use std::hash::Hash;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use mooring_crds::{BgpConf, BgpPeer, Eip};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tracing::warn;

use crate::model::plan::Objects;

/// Watch one kind into a store; every change sends `()` on `changes`.
/// Watch errors back off and restart (kube-runtime's default back-off).
pub fn watch_kind<K>(api: Api<K>, changes: mpsc::UnboundedSender<()>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default()).default_backoff().reflect(writer);
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
    reader
}

/// The stores of every watched kind.
#[derive(Clone)]
pub struct Stores {
    pub confs: Store<BgpConf>,
    pub peers: Store<BgpPeer>,
    pub eips: Store<Eip>,
    pub services: Store<Service>,
    pub endpoint_slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
    pub namespaces: Store<Namespace>,
    /// Only the speaker reads Secrets (BgpPeer passwords).
    pub secrets: Option<Store<Secret>>,
}

impl Stores {
    pub fn start(client: &Client, with_secrets: bool, changes: mpsc::UnboundedSender<()>) -> Stores {
        Stores {
            confs: watch_kind(Api::all(client.clone()), changes.clone()),
            peers: watch_kind(Api::all(client.clone()), changes.clone()),
            eips: watch_kind(Api::all(client.clone()), changes.clone()),
            services: watch_kind(Api::all(client.clone()), changes.clone()),
            endpoint_slices: watch_kind(Api::all(client.clone()), changes.clone()),
            nodes: watch_kind(Api::all(client.clone()), changes.clone()),
            namespaces: watch_kind(Api::all(client.clone()), changes.clone()),
            secrets: with_secrets.then(|| watch_kind(Api::all(client.clone()), changes)),
        }
    }

    /// Wait until every store has its first full list.
    pub async fn ready(&self) {
        let _ = self.confs.wait_until_ready().await;
        let _ = self.peers.wait_until_ready().await;
        let _ = self.eips.wait_until_ready().await;
        let _ = self.services.wait_until_ready().await;
        let _ = self.endpoint_slices.wait_until_ready().await;
        let _ = self.nodes.wait_until_ready().await;
        let _ = self.namespaces.wait_until_ready().await;
        if let Some(s) = &self.secrets {
            let _ = s.wait_until_ready().await;
        }
    }

    /// The model's input, as the manifest source would give it.
    pub fn objects(&self) -> Objects {
        fn all<K: Clone + Resource>(s: &Store<K>) -> Vec<K>
        where
            K::DynamicType: Eq + Hash + Clone,
        {
            s.state().iter().map(|o| (**o).clone()).collect()
        }
        Objects {
            confs: all(&self.confs),
            peers: all(&self.peers),
            eips: all(&self.eips),
            services: all(&self.services),
            endpoint_slices: all(&self.endpoint_slices),
            nodes: all(&self.nodes),
            namespaces: all(&self.namespaces),
            secrets: self.secrets.as_ref().map(all).unwrap_or_default(),
        }
    }
}
