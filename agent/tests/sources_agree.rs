//! One scenario (the lab's manifests) through the one node loop with both
//! sources: manifest files (standalone: the loop allocates) and the
//! cluster's reflector stores (the controller's reconcile allocates and
//! writes Service status through a mocked API server; each node's loop
//! announces from that status). Every node's speaker must carry exactly
//! the same routes and peers either way, and publish the same sessions.

use std::path::Path;
use std::sync::{Arc, Mutex};

use http::Method;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::Resource;
use mooring_agent::kube::controller::Reconciler;
use mooring_agent::kube::reconcile::Settings;
use mooring_agent::kube::speaker::ClusterSource;
use mooring_agent::kube::stores::{NodeStore, Stores};
use mooring_agent::metrics::Metrics;
use mooring_agent::model::plan::Objects;
use mooring_agent::node::{NodeLoop, NodeOptions, Source, StateStore, VipMode};
use mooring_agent::sources::files::FileSource;
use mooring_bgp::speaker::PeerStatus;
use tokio::sync::{mpsc, watch};

mod common;
use common::*;

fn store<K, S>(items: &[S]) -> Store<K>
where
    K: Resource + Clone + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    S: std::borrow::Borrow<K>,
{
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in items {
        writer.apply_watcher_event(&watcher::Event::InitApply(o.borrow().clone()));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

/// The speaker's stores (the kinds it watches), filled with `o`.
fn stores(o: &Objects) -> Stores {
    Stores {
        confs: Some(store(&o.confs)),
        peers: Some(store(&o.peers)),
        eips: Some(store(&o.eips)),
        advertisements: Some(store(&o.advertisements)),
        services: Some(store(&o.services)),
        endpoint_slices: Some(store(&o.endpoint_slices)),
        nodes: Some(NodeStore::Full(store(&o.nodes))),
        namespaces: None,
    }
}

/// The peers of each publish call, in order.
type Published = Arc<Mutex<Vec<Vec<std::net::IpAddr>>>>;

/// A source that records what the loop publishes through it.
struct Recording<S> {
    inner: S,
    published: Published,
}

impl<S: Source> Source for Recording<S> {
    async fn changed(&mut self) -> bool {
        self.inner.changed().await
    }

    async fn objects(&mut self) -> Objects {
        self.inner.objects().await
    }

    async fn publish(&mut self, objects: &Objects, sessions: &[PeerStatus]) {
        self.published.lock().unwrap().push(sessions.iter().map(|s| s.address).collect());
        self.inner.publish(objects, sessions).await
    }
}

fn recording<S>(inner: S) -> (Recording<S>, Published) {
    let published = Arc::new(Mutex::new(vec![]));
    (Recording { inner, published: published.clone() }, published)
}

#[tokio::test]
async fn file_source_and_cluster_source_announce_the_same() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../integration/lab");
    let lab = files_objects(&dir);

    // The cluster: the controller's reconcile allocates and writes Service
    // status, answered by a mocked API server that applies the patches.
    let (client, mut api) = mock_client(Component::Controller);
    let (_tx, leading) = watch::channel(true);
    let mut controller = Reconciler::new(client, "controller-0", Settings::default());
    let mut cluster = lab.clone();
    let (writes, seen) = reconcile_served(&mut controller, &mut cluster, &leading, &mut api).await;
    assert!(writes > 0, "the controller writes Service status");
    assert!(seen.iter().any(|(m, p, _)| *m == Method::PATCH && p.ends_with("/status") && p.contains("/services/")));
    assert!(cluster.services.iter().all(|s| !mooring_agent::model::desired::status_ips(s).is_empty()));

    for node in ["demo-node1", "demo-node2", "demo-node3"] {
        let metrics = Arc::new(Metrics::new());
        // ...standalone allocates itself...
        let (src, file_published) = recording(FileSource::open(&dir, metrics.clone()).unwrap());
        let mut file_node = NodeLoop::new(
            node.into(),
            NodeOptions::default(),
            VipMode::Allocate,
            src,
            StateStore::open(None).unwrap(),
            metrics.clone(),
        );
        file_node.apply().await;
        // ...and a cluster's speaker announces from Service status.
        let (speaker_client, mut speaker_api) = mock_client(Component::Speaker);
        let (_changes_tx, changes) = mpsc::unbounded_channel();
        let source = ClusterSource::from_stores(speaker_client, node, stores(&cluster), changes).await;
        let (src, kube_published) = recording(source);
        let mut kube_node = NodeLoop::new(
            node.into(),
            NodeOptions::default(),
            VipMode::FromStatus,
            src,
            StateStore::open(None).unwrap(),
            metrics,
        );
        kube_node.apply().await;

        let (a, b) = (file_node.speaker().expect("running"), kube_node.speaker().expect("running"));
        assert!(!a.routes().is_empty(), "{node} announces something");
        assert_eq!(a.routes(), b.routes(), "{node}");
        assert_eq!(a.peer_configs(), b.peer_configs(), "{node}");
        assert_eq!(a.config(), b.config(), "{node}");
        let peers: Vec<std::net::IpAddr> = a.peer_configs().iter().map(|p| p.address).collect();

        // Status: both loops publish the same sessions; the cluster's
        // source writes this node's entry into the BgpPeer's status.
        file_node.publish_status().await;
        let (_, writes) = tokio::join!(kube_node.publish_status(), async {
            let (q, body, _) = expect(
                &mut speaker_api,
                Method::PATCH,
                "/apis/mooring.io/v1alpha1/bgppeers/edge/status",
                200,
                serde_json::to_value(&cluster.peers[0]).unwrap(),
            )
            .await;
            (q, body)
        });
        assert_eq!(writes.0, format!("&force=true&fieldManager=mooring-speaker-{node}"));
        assert_eq!(writes.1["status"]["nodes"][0]["node"], node);
        let f = file_published.lock().unwrap().clone();
        let k = kube_published.lock().unwrap().clone();
        assert_eq!(f.len(), 1);
        assert_eq!(f, k, "{node}");
        assert_eq!(f[0], peers);
    }
}

fn files_objects(dir: &Path) -> Objects {
    let m = mooring_agent::sources::manifests::Manifests::load(dir, None);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    m.objects()
}
