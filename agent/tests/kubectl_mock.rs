//! `kubectl mooring status` against a mocked API server (the tower-test pattern of
//! kube_mock.rs): the three lists it makes, and what it reports from the statuses they carry.

use http::Method;
use mooring_agent::cli::kubectl;
use serde_json::json;

mod common;
use common::*;

fn list(kind: &str, api_version: &str, items: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": api_version, "kind": format!("{kind}List"), "metadata": {"resourceVersion": "7"}, "items": items})
}

#[tokio::test]
async fn status_reads_bgppeer_eip_and_service_statuses() {
    let (client, mut api) = mock_client(Component::Controller);
    let server = tokio::spawn(async move {
        let peers = list(
            "BgpPeer",
            "mooring.io/v1alpha1",
            json!([{
                "apiVersion": "mooring.io/v1alpha1", "kind": "BgpPeer", "metadata": {"name": "edge"},
                "spec": {"peerAddress": "198.18.0.1", "peerAs": 64512},
                "status": {"established": 1, "nodes": [
                    {"node": "n1", "state": "Established", "establishedSince": "2026-12-02T15:00:00Z",
                     "prefixesSent": 2, "prefixesReceived": 0, "pathsNotSent": 3},
                    {"node": "n2", "state": "Active", "lastError": "Cease/Administrative Shutdown (6/2) received"}
                ]}
            }, {
                "apiVersion": "mooring.io/v1alpha1", "kind": "BgpPeer", "metadata": {"name": "spare"},
                "spec": {"peerAddress": "198.18.0.2", "peerAs": 64514}
            }]),
        );
        expect(&mut api, Method::GET, "/apis/mooring.io/v1alpha1/bgppeers", 200, peers).await;
        let eips = list(
            "Eip",
            "mooring.io/v1alpha1",
            json!([{"apiVersion": "mooring.io/v1alpha1", "kind": "Eip", "metadata": {"name": "pool"},
                    "spec": {"address": "203.0.113.10-203.0.113.11"},
                    "status": {"size": 2, "used": 2, "free": 0, "ready": true}}]),
        );
        expect(&mut api, Method::GET, "/apis/mooring.io/v1alpha1/eips", 200, eips).await;
        let svcs = list(
            "Service",
            "v1",
            json!([
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
                 "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
                 "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}},
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "shop"},
                 "spec": {"type": "LoadBalancer", "loadBalancerClass": "mooring.io/bgp", "ports": [{"port": 80}]}},
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "shop"},
                 "spec": {"type": "ClusterIP", "ports": [{"port": 5432}]}}
            ]),
        );
        expect(&mut api, Method::GET, "/api/v1/services", 200, svcs).await;
    });
    let s = kubectl::fetch(client).await.unwrap();
    server.await.unwrap();

    assert_eq!(s.sessions.len(), 3, "{s:#?}");
    assert_eq!((s.sessions[0].node.as_str(), s.sessions[0].state.as_str()), ("n1", "Established"));
    assert_eq!(s.sessions[0].prefixes_sent, Some(2));
    assert_eq!(s.sessions[1].last_error.as_deref(), Some("Cease/Administrative Shutdown (6/2) received"));
    assert_eq!(s.sessions[2].state, "(no node reports it)");
    assert_eq!((s.pools[0].used, s.pools[0].free, s.pools[0].ready), (Some(2), Some(0), true));
    let svcs: Vec<(&str, Vec<String>)> = s.services.iter().map(|v| (v.name.as_str(), v.addresses.clone())).collect();
    assert_eq!(svcs, [("web", vec!["203.0.113.10".to_string()]), ("api", vec![])], "LoadBalancer Services only");

    let t = kubectl::table(&s);
    assert!(t.contains("edge     198.18.0.1  n1    Established"), "{t}");
    assert!(t.contains("edge on n1: 3 paths not sent (the peer does not receive ADD-PATH)"), "{t}");
    assert!(!t.contains("on n2:"), "{t}");
    assert!(t.contains("pool  2     2     0     true"), "{t}");
    assert!(t.contains("shop/api  mooring.io/bgp  (pending)"), "{t}");
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["services"][0]["addresses"], json!(["203.0.113.10"]));
}

#[tokio::test]
async fn an_api_error_is_reported_not_a_panic() {
    let (client, mut api) = mock_client(Component::Controller);
    let server = tokio::spawn(async move {
        let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "Forbidden",
                            "message": "bgppeers.mooring.io is forbidden", "code": 403});
        expect(&mut api, Method::GET, "/apis/mooring.io/v1alpha1/bgppeers", 403, status).await;
    });
    let e = kubectl::fetch(client).await.unwrap_err();
    server.await.unwrap();
    assert!(format!("{e:#}").contains("listing BgpPeers") && format!("{e:#}").contains("forbidden"), "{e:#}");
}

#[test]
fn the_binary_named_kubectl_mooring_is_the_plugin() {
    let dir = std::env::temp_dir().join(format!("mooring-kubectl-plugin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = dir.join("kubectl-mooring");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mooring"), &plugin).unwrap();
    let help = std::process::Command::new(&plugin).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success() && text.contains("kubectl mooring") && text.contains("status"), "{text}");
    // No cluster to reach: an error naming the kubeconfig, exit status 1, no panic.
    let out = std::process::Command::new(&plugin)
        .arg("status")
        .env("KUBECONFIG", dir.join("missing"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", &dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("kubeconfig") && !err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
