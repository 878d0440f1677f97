//! `/readyz` tells the truth: a node whose speaker cannot listen (its
//! port is taken) is not ready and says why; the speaker keeps retrying
//! the bind, and once the port is free it listens and the node is ready.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mooring_agent::metrics::Metrics;
use mooring_agent::node::{NodeLoop, NodeOptions, StateStore, VipMode};
use mooring_agent::sources::files::FileSource;

#[tokio::test]
async fn not_ready_while_the_speaker_cannot_start_then_ready() {
    let dir = std::env::temp_dir().join(format!("mooring-readiness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A port someone else holds.
    let blocker = std::net::TcpListener::bind("[::]:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    std::fs::write(
        dir.join("bgp.yaml"),
        format!(
            "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\n\
             spec: {{as: 64513, routerId: 192.0.2.1, listenPort: {port}}}\n"
        ),
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new());
    let source = FileSource::open(&dir, metrics.clone()).unwrap();
    let mut node = NodeLoop::new(
        "n1".into(),
        NodeOptions::default(),
        VipMode::Allocate,
        source,
        StateStore::open(None).unwrap(),
        metrics.clone(),
    );
    node.apply().await;
    let why = metrics.not_ready().expect("not ready");
    assert!(why.contains("cannot start") && why.contains("in use"), "{why}");
    assert!(!node.speaker().expect("running, dialing out").is_listening());
    drop(blocker);
    let t0 = Instant::now();
    while metrics.not_ready().is_some() {
        assert!(t0.elapsed() < Duration::from_secs(5), "not ready 5 s after the port was freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(node.speaker().and_then(|s| s.listen_addr()).map(|a| a.port()), Some(port));
    assert!(t0.elapsed() < Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn not_ready_without_a_bgpconf() {
    let dir = std::env::temp_dir().join(format!("mooring-readiness-none-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let metrics = Arc::new(Metrics::new());
    let source = FileSource::open(&dir, metrics.clone()).unwrap();
    let mut node = NodeLoop::new(
        "n1".into(),
        NodeOptions::default(),
        VipMode::Allocate,
        source,
        StateStore::open(None).unwrap(),
        metrics.clone(),
    );
    node.apply().await;
    assert_eq!(metrics.not_ready().as_deref(), Some("no usable BgpConf"));
    let _ = std::fs::remove_dir_all(dir);
}
