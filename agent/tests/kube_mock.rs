//! The Kubernetes layer against a mocked API server at the HTTP level
//! (the tower-test pattern of kube-rs' controller-rs): every request the
//! controller, the leader election and the speaker make is asserted —
//! method, path, query (field manager), content type and body.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::Method;
use kube::Api;
use mooring_agent::kube::controller::Reconciler;
use mooring_agent::kube::peer_status::PeerStatusWriter;
use mooring_agent::kube::reconcile::Settings;
use mooring_agent::kube::secrets::{self, SecretCache};
use mooring_agent::model::plan::{shared, Objects};
use mooring_bgp::fsm::State;
use mooring_bgp::speaker::PeerStatus;
use serde_json::{json, Value};
use tokio::sync::watch;

mod common;
use common::*;

fn node(name: &str) -> k8s_openapi::api::core::v1::Node {
    yaml(&format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\n"))
}

fn eip_reply() -> Value {
    json!({"apiVersion": "mooring.io/v1alpha1", "kind": "Eip", "metadata": {"name": "pool"}, "spec": {"address": "203.0.113.10/32"}})
}

fn peer_reply() -> Value {
    json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpPeer", "metadata": {"name": "edge"},
           "spec": {"peerAddress": "198.18.0.1", "peerAs": 64512}})
}

fn objects(status_ip: Option<&str>) -> Objects {
    let status =
        status_ip.map(|ip| format!("status: {{loadBalancer: {{ingress: [{{ip: {ip}}}]}}}}")).unwrap_or_default();
    Objects {
        eips: vec![yaml(
            "apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {name: pool, generation: 1}\nspec: {address: 203.0.113.10-203.0.113.11}\n",
        )],
        services: shared([yaml(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: shop, uid: u1}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n{status}\n"
        ))]),
        ..Objects::default()
    }
}

#[tokio::test]
async fn controller_assigns_writes_status_event_and_eip_status() {
    let (client, mut api) = mock_client(Component::Controller);
    let (_tx, leading) = watch::channel(true);
    let mut r = Reconciler::new(client, "controller-0", Settings::default());
    let objs = objects(None);
    let server = tokio::spawn(async move {
        let (q, body, ctype) =
            expect(&mut api, Method::PATCH, "/api/v1/namespaces/shop/services/web/status", 200, json!({})).await;
        assert_eq!(q, "&fieldManager=mooring-controller");
        assert_eq!(ctype, "application/merge-patch+json");
        assert_eq!(body, json!({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10", "ipMode": "VIP"}]}}}));
        let (_, ev, _) =
            expect(&mut api, Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events", 201, Value::Null).await;
        assert_eq!(ev["reason"], "IPAllocated");
        assert_eq!(ev["type"], "Normal");
        assert_eq!(ev["note"], "assigned 203.0.113.10 from Eip pool");
        assert_eq!(ev["regarding"]["name"], "web");
        assert_eq!(ev["reportingController"], "mooring-controller");
        let (q, body, _) =
            expect(&mut api, Method::PATCH, "/apis/mooring.io/v1alpha1/eips/pool/status", 200, eip_reply()).await;
        assert_eq!(q, "&fieldManager=mooring-controller");
        let st = &body["status"];
        assert_eq!((st["size"].clone(), st["used"].clone(), st["free"].clone()), (json!(2), json!(1), json!(1)));
        assert_eq!(st["conditions"][0]["type"], "Ready");
        api
    });
    assert_eq!(r.reconcile(&objs, &leading).await, 3, "status, Event, Eip status");
    let mut api = server.await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(100), api.next_request()).await.is_err(), "no more requests");
}

#[tokio::test]
async fn controller_keeps_held_addresses_and_writes_nothing_when_in_sync() {
    let (client, mut api) = mock_client(Component::Controller);
    let (_tx, leading) = watch::channel(true);
    let mut r = Reconciler::new(client, "controller-1", Settings::default());
    // The Service already holds .11 (a restart, a failover): kept, no write.
    let mut objs = objects(Some("203.0.113.11"));
    objs.eips[0].status = Some(
        serde_json::from_value(json!({"size": 2, "used": 1, "free": 1, "ready": true, "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Available", "message": "1 of 2 addresses free",
                        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
                       {"type": "Valid", "status": "True", "reason": "Valid", "message": "the spec passed its checks",
                        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}))
        .unwrap(),
    );
    assert_writes_nothing(&mut r, &objs, &leading, &mut api).await;
}

#[tokio::test]
async fn an_idle_reconcile_makes_zero_writes() {
    let (client, mut api) = mock_client(Component::Controller);
    let (_tx, leading) = watch::channel(true);
    let mut r = Reconciler::new(client, "controller-0", Settings::default());
    let mut objs = objects(None);
    objs.nodes = shared([node("n1")]);
    objs.peers.push(yaml(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: edge}\nspec: {peerAddress: 198.18.0.1, peerAs: 64512}\n\
         status: {established: 1, nodes: [{node: n1, state: Established}]}\n",
    ));
    // First pass: Service status, its Event, the Eip status.
    let (n, served) = reconcile_served(&mut r, &mut objs, &leading, &mut api).await;
    assert_eq!(n, 3);
    let paths: Vec<&str> = served.iter().map(|(_, p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/shop/services/web/status",
            "/apis/events.k8s.io/v1/namespaces/shop/events",
            "/apis/mooring.io/v1alpha1/eips/pool/status"
        ]
    );
    // The same objects, as the API now shows them: nothing to write, pass after pass.
    for _ in 0..3 {
        assert_writes_nothing(&mut r, &objs, &leading, &mut api).await;
    }
}

#[tokio::test]
async fn controller_exports_pool_metrics() {
    let (client, mut api) = mock_client(Component::Controller);
    let (_tx, leading) = watch::channel(true);
    let metrics = std::sync::Arc::new(mooring_agent::metrics::Metrics::new());
    let mut r = Reconciler::new(client, "controller-0", Settings::default()).with_metrics(metrics.clone());
    let mut objs = objects(None);
    reconcile_served(&mut r, &mut objs, &leading, &mut api).await;
    let text = metrics.render();
    assert!(text.contains("mooring_pool_addresses{pool=\"pool\",state=\"used\"} 1"), "{text}");
    assert!(text.contains("mooring_pool_addresses{pool=\"pool\",state=\"free\"} 1"), "{text}");
    // The pool goes away: so do its metrics.
    objs.eips.clear();
    reconcile_served(&mut r, &mut objs, &leading, &mut api).await;
    assert!(!metrics.render().contains("pool=\"pool\""));
}

#[tokio::test]
async fn controller_removes_bgppeer_entries_of_departed_and_silent_nodes() {
    let (client, mut api) = mock_client(Component::Controller);
    let (_tx, leading) = watch::channel(true);
    let mut r = Reconciler::new(client, "controller-0", Settings::default());
    let fresh = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut objs = Objects { nodes: shared([node("n1"), node("n2")]), ..Objects::default() };
    objs.peers.push(yaml(&format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge, resourceVersion: \"17\"}}\nspec: {{peerAddress: 198.18.0.1, peerAs: 64512}}\n\
         status: {{established: 3, nodes: [{{node: n1, state: Established, updatedAt: \"{fresh}\"}}, \
         {{node: n2, state: Established, updatedAt: \"2020-01-01T00:00:00Z\"}}, {{node: gone, state: Established}}]}}\n"
    )));
    let server = tokio::spawn(async move {
        let (_, body, ctype) =
            expect(&mut api, Method::PATCH, "/apis/mooring.io/v1alpha1/bgppeers/edge/status", 200, peer_reply()).await;
        assert_eq!(ctype, "application/merge-patch+json");
        assert_eq!(body["metadata"]["resourceVersion"], "17", "a compare-and-swap");
        assert_eq!(body["status"]["established"], 1);
        let nodes: Vec<&str> =
            body["status"]["nodes"].as_array().unwrap().iter().map(|e| e["node"].as_str().unwrap()).collect();
        assert_eq!(nodes, ["n1"], "n2 silent since 2020, `gone` has no Node");
    });
    assert_eq!(r.reconcile(&objs, &leading).await, 1);
    server.await.unwrap();
}

#[tokio::test]
async fn an_invalid_eip_edit_keeps_the_addresses_and_says_why() {
    let (client, mut api) = mock_client(Component::Controller);
    let (_tx, leading) = watch::channel(true);
    let mut r = Reconciler::new(client, "controller-0", Settings::default());
    let mut objs = objects(None);
    reconcile_served(&mut r, &mut objs, &leading, &mut api).await;
    // Reversed range: the Service keeps .10, the Eip says Valid=False.
    objs.eips[0].spec.address = Some("203.0.113.11-203.0.113.10".into());
    objs.eips[0].metadata.generation = Some(2);
    let (n, seen) = reconcile_served(&mut r, &mut objs, &leading, &mut api).await;
    assert_eq!(n, 1, "{seen:?}");
    let (_, path, body) = &seen[0];
    assert_eq!(path, "/apis/mooring.io/v1alpha1/eips/pool/status");
    let conds = body["status"]["conditions"].as_array().unwrap();
    let valid = conds.iter().find(|c| c["type"] == "Valid").unwrap();
    assert_eq!((valid["status"].as_str(), valid["reason"].as_str()), (Some("False"), Some("InvalidSpec")));
    assert!(valid["message"].as_str().unwrap().contains("spec.address"), "{valid}");
    let ready = conds.iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready["status"], "True", "the last good version still serves");
    assert_eq!(body["status"]["observedGeneration"], 2);
    assert_eq!(
        objs.services[0].status.as_ref().unwrap().load_balancer.as_ref().unwrap().ingress.as_ref().unwrap()[0]
            .ip
            .as_deref(),
        Some("203.0.113.10")
    );
}

#[tokio::test]
async fn a_deposed_leader_writes_nothing() {
    let (client, mut api) = mock_client(Component::Controller);
    let (_tx, leading) = watch::channel(false);
    let mut r = Reconciler::new(client, "controller-0", Settings::default());
    let server = tokio::spawn(async move {
        assert!(tokio::time::timeout(Duration::from_millis(300), api.next_request()).await.is_err());
    });
    assert_eq!(r.reconcile(&objects(None), &leading).await, 0);
    server.await.unwrap();
}

#[tokio::test]
async fn exhausted_pool_is_a_warning_event() {
    let (client, mut api) = mock_client(Component::Controller);
    let (_tx, leading) = watch::channel(true);
    let mut r = Reconciler::new(client, "controller-0", Settings::default());
    let mut objs = objects(None);
    objs.eips[0].spec.address = Some("203.0.113.10/32".into());
    objs.services.push(Arc::new(yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop, uid: u2}\nspec: {type: LoadBalancer, ports: [{port: 81}]}\n",
    )));
    let server = tokio::spawn(async move {
        // Writes follow the Services' order: web first. shop/api sorts first
        // in allocation and gets the only address; web gets a Warning.
        let (_, ev, _) =
            expect(&mut api, Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events", 201, Value::Null).await;
        assert_eq!(
            (ev["type"].clone(), ev["reason"].clone(), ev["regarding"]["name"].clone()),
            (json!("Warning"), json!("PoolExhausted"), json!("web"))
        );
        expect(&mut api, Method::PATCH, "/api/v1/namespaces/shop/services/api/status", 200, json!({})).await;
        let (_, ev, _) =
            expect(&mut api, Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events", 201, Value::Null).await;
        assert_eq!((ev["reason"].clone(), ev["regarding"]["name"].clone()), (json!("IPAllocated"), json!("api")));
        expect(&mut api, Method::PATCH, "/apis/mooring.io/v1alpha1/eips/pool/status", 200, eip_reply()).await;
    });
    r.reconcile(&objs, &leading).await;
    server.await.unwrap();
}

fn session(addr: &str) -> PeerStatus {
    PeerStatus {
        address: addr.parse().unwrap(),
        remote_as: 64512,
        state: State::Established,
        established_since: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000)),
        remote_id: None,
        peer_hostname: None,
        families: vec![],
        last_error: None,
        down_reason: None,
        held_down: None,
        messages_sent: 3,
        messages_received: 3,
        updates_sent: 1,
        updates_received: 0,
        prefixes_sent: 2,
        prefixes_received: BTreeMap::new(),
        flaps: 0,
        ..PeerStatus::new(addr.parse().unwrap(), 64512)
    }
}

fn edge(uid: &str) -> Objects {
    Objects {
        peers: vec![yaml(&format!(
            "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge, uid: {uid}}}\nspec: {{peerAddress: 198.18.0.1, peerAs: 64512}}\n"
        ))],
        ..Objects::default()
    }
}

const EDGE_STATUS: &str = "/apis/mooring.io/v1alpha1/bgppeers/edge/status";

#[tokio::test]
async fn speaker_applies_its_own_bgppeer_status_entry() {
    let (client, mut api) = mock_client(Component::Speaker);
    let mut w = PeerStatusWriter::new(Api::all(client), "node1");
    let objs = edge("u1");
    let st = session("198.18.0.1");
    let (n, _) = tokio::join!(w.publish(&objs, std::slice::from_ref(&st)), async {
        let (q, body, ctype) = expect(&mut api, Method::PATCH, EDGE_STATUS, 200, peer_reply()).await;
        assert_eq!(q, "&force=true&fieldManager=mooring-speaker-node1");
        assert_eq!(ctype, "application/apply-patch+yaml");
        let entry = &body["status"]["nodes"][0];
        assert_eq!((entry["node"].clone(), entry["state"].clone()), (json!("node1"), json!("Established")));
        assert_eq!(entry["prefixesSent"], 2);
        assert_eq!(entry["establishedSince"], "2025-11-24T16:00:00Z");
        // The controller tells a live speaker from a silent one by this.
        let at: k8s_openapi::jiff::Timestamp = entry["updatedAt"].as_str().unwrap().parse().unwrap();
        assert!(k8s_openapi::jiff::Timestamp::now().duration_since(at).as_secs() < 5, "{at}");
    });
    assert_eq!(n, 1);
    // Unchanged: not written again.
    assert_eq!(w.publish(&objs, std::slice::from_ref(&st)).await, 0);
    assert!(tokio::time::timeout(Duration::ZERO, api.next_request()).await.is_err());
    // The BgpPeer deleted and created again (a new UID): written again.
    let again = edge("u2");
    let (n, _) = tokio::join!(w.publish(&again, std::slice::from_ref(&st)), async {
        expect(&mut api, Method::PATCH, EDGE_STATUS, 200, peer_reply()).await;
    });
    assert_eq!(n, 1);
    // The session goes (the BgpPeer no longer selects this node): the entry is
    // removed by applying an empty list under the same field manager.
    let (n, _) = tokio::join!(w.publish(&again, &[]), async {
        let (q, body, _) = expect(&mut api, Method::PATCH, EDGE_STATUS, 200, peer_reply()).await;
        assert_eq!(q, "&force=true&fieldManager=mooring-speaker-node1");
        assert_eq!(body["status"]["nodes"], json!([]));
    });
    assert_eq!(n, 1);
    assert_eq!(w.publish(&again, &[]).await, 0, "removed once");
}

#[tokio::test]
async fn paths_held_back_for_want_of_add_path_are_a_condition_of_the_entry() {
    use mooring_bgp::wire::{AddPathFamily, AddPathMode, Family};
    let (client, mut api) = mock_client(Component::Speaker);
    let mut w = PeerStatusWriter::new(Api::all(client), "node1");
    let objs = edge("u1");
    // IPv4 and IPv6; ADD-PATH send negotiated for IPv6 only, and two IPv4 paths held back.
    let mut st = session("198.18.0.1");
    st.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    st.add_path = vec![AddPathFamily { family: Family::IPV6_UNICAST, mode: AddPathMode::Both }];
    st.paths_not_sent = 2;
    let (_, first) = tokio::join!(w.publish(&objs, std::slice::from_ref(&st)), async {
        let (_, body, _) = expect(&mut api, Method::PATCH, EDGE_STATUS, 200, peer_reply()).await;
        body["status"]["nodes"][0].clone()
    });
    assert_eq!(first["pathsNotSent"], 2);
    let c = &first["conditions"][0];
    assert_eq!((c["type"].clone(), c["status"].clone()), (json!("AllPathsSent"), json!("False")));
    assert_eq!(c["reason"], "PeerDoesNotReceiveAddPath");
    let message = c["message"].as_str().unwrap();
    assert!(message.contains("for ipv4-unicast: 2 paths not sent"), "{message}");
    assert!(!message.contains("ipv6"), "IPv6 negotiated ADD-PATH send: {message}");
    let since = c["lastTransitionTime"].as_str().unwrap().to_string();
    // One path more held back: rewritten, the transition time kept.
    st.paths_not_sent = 3;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, second) = tokio::join!(w.publish(&objs, std::slice::from_ref(&st)), async {
        let (_, body, _) = expect(&mut api, Method::PATCH, EDGE_STATUS, 200, peer_reply()).await;
        body["status"]["nodes"][0].clone()
    });
    assert_eq!(second["pathsNotSent"], 3);
    assert_eq!(second["conditions"][0]["lastTransitionTime"], since.as_str(), "the status did not change");
    // The peer receives ADD-PATH now: every path goes; the condition turns True.
    st.add_path.push(AddPathFamily { family: Family::IPV4_UNICAST, mode: AddPathMode::Both });
    st.paths_not_sent = 0;
    let (_, third) = tokio::join!(w.publish(&objs, std::slice::from_ref(&st)), async {
        let (_, body, _) = expect(&mut api, Method::PATCH, EDGE_STATUS, 200, peer_reply()).await;
        body["status"]["nodes"][0].clone()
    });
    assert!(third.get("pathsNotSent").is_none(), "{third}");
    let c = &third["conditions"][0];
    assert_eq!((c["status"].clone(), c["reason"].clone()), (json!("True"), json!("AllSent")));
    assert_ne!(c["lastTransitionTime"], since.as_str(), "a transition");
    // Unchanged: not written again.
    assert_eq!(w.publish(&objs, std::slice::from_ref(&st)).await, 0);
    // Not Established: no condition (nothing is sent at all).
    st.state = State::Active;
    let (_, down) = tokio::join!(w.publish(&objs, std::slice::from_ref(&st)), async {
        let (_, body, _) = expect(&mut api, Method::PATCH, EDGE_STATUS, 200, peer_reply()).await;
        body["status"]["nodes"][0].clone()
    });
    assert!(down.get("conditions").is_none(), "{down}");
}

#[tokio::test]
async fn a_stopping_speaker_removes_its_entries() {
    let (client, mut api) = mock_client(Component::Speaker);
    let mut w = PeerStatusWriter::new(Api::all(client), "node1");
    let objs = edge("u1");
    let sessions = [session("198.18.0.1")];
    let (_, _) = tokio::join!(w.publish(&objs, &sessions), async {
        expect(&mut api, Method::PATCH, EDGE_STATUS, 200, peer_reply()).await;
    });
    let (n, _) = tokio::join!(w.retire(), async {
        let (_, body, _) = expect(&mut api, Method::PATCH, EDGE_STATUS, 200, peer_reply()).await;
        assert_eq!(body["status"]["nodes"], json!([]));
    });
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_long_node_name_gets_a_valid_field_manager() {
    let (client, mut api) = mock_client(Component::Speaker);
    let node = "n".repeat(120);
    let mut w = PeerStatusWriter::new(Api::all(client), &node);
    let objs = edge("u1");
    let sessions = [session("198.18.0.1")];
    let (_, _) = tokio::join!(w.publish(&objs, &sessions), async {
        let (q, body, _) = expect(&mut api, Method::PATCH, EDGE_STATUS, 200, peer_reply()).await;
        let manager = q.strip_prefix("&force=true&fieldManager=").unwrap();
        assert!(manager.len() <= 128, "{} bytes", manager.len());
        assert!(manager.starts_with("mooring-speaker-nnn"));
        assert_eq!(body["status"]["nodes"][0]["node"], node.as_str(), "the entry still names the node in full");
    });
}

fn md5_peers() -> Objects {
    Objects {
        peers: vec![
            yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: a}\nspec: {peerAddress: 198.18.0.1, peerAs: 1, passwordSecretRef: {name: bgp, namespace: mooring, key: pw}}\n"),
            yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: b}\nspec: {peerAddress: 198.18.0.2, peerAs: 1, passwordSecretRef: {name: bgp, namespace: mooring, key: pw2}}\n"),
            yaml("apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: c}\nspec: {peerAddress: 198.18.0.3, peerAs: 1}\n"),
        ],
        ..Objects::default()
    }
}

const SECRET: &str = "/api/v1/namespaces/mooring/secrets/bgp";

fn secret() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bgp", "namespace": "mooring"}, "data": {"pw": "czNjcmV0"}})
}

fn api_status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason})
}

/// The peers the plan would run for `objs` (with the speaker's Secrets filled in).
async fn md5_of(cache: &mut SecretCache, client: &kube::Client, objs: &Objects) -> (Vec<Option<String>>, Vec<String>) {
    let mut o = objs.clone();
    cache.fill(client, &mut o).await;
    let mut problems = vec![];
    let peers = mooring_agent::model::plan::peers(&o, None, &mut problems);
    (peers.iter().map(|p| p.md5_password.clone()).collect(), problems.iter().map(|p| p.to_string()).collect())
}

#[tokio::test(start_paused = true)]
async fn speaker_gets_only_the_secrets_its_peers_name_and_keeps_them_through_api_errors() {
    let (client, mut api) = mock_client(Component::Speaker);
    let objs = md5_peers();
    let mut cache = SecretCache::default();
    // One GET for the one Secret both peers name; no list, no watch.
    let (got, _) = tokio::join!(md5_of(&mut cache, &client, &objs), async {
        expect(&mut api, Method::GET, SECRET, 200, secret()).await;
    });
    assert_eq!(got.0, [Some("s3cret".to_string()), None], "b names a key the Secret lacks: left out");
    assert!(got.1.iter().any(|p| p.contains("BgpPeer/b") && p.contains("has no key \"pw2\"")), "{:?}", got.1);
    // Recomputing within the refresh time reads nothing.
    let (again, _) = md5_of(&mut cache, &client, &objs).await;
    assert_eq!(again[0].as_deref(), Some("s3cret"));
    assert!(tokio::time::timeout(Duration::ZERO, api.next_request()).await.is_err());
    // A minute later the API server answers 429 (priority and fairness), then 503:
    // the password read before stays in use — the session is not torn down.
    for (code, reason) in [(429, "TooManyRequests"), (503, "ServiceUnavailable")] {
        tokio::time::sleep(secrets::REFRESH).await;
        let (got, _) = tokio::join!(md5_of(&mut cache, &client, &objs), async {
            expect(&mut api, Method::GET, SECRET, code, api_status(code, reason)).await;
        });
        assert_eq!(got.0[0].as_deref(), Some("s3cret"), "after a {code}");
    }
    // Deleted (404): now it goes.
    tokio::time::sleep(secrets::REFRESH).await;
    let (got, _) = tokio::join!(md5_of(&mut cache, &client, &objs), async {
        expect(&mut api, Method::GET, SECRET, 404, api_status(404, "NotFound")).await;
    });
    assert_eq!(got.0, [None], "only c, which has no password, is left");
    assert!(got.1.iter().any(|p| p.contains("Secret mooring/bgp: not found")), "{:?}", got.1);
}

#[tokio::test]
async fn a_forbidden_secret_is_reported_as_forbidden() {
    let (client, mut api) = mock_client(Component::Speaker);
    let mut cache = SecretCache::default();
    let objs = md5_peers();
    let (got, _) = tokio::join!(md5_of(&mut cache, &client, &objs), async {
        expect(&mut api, Method::GET, SECRET, 403, api_status(403, "Forbidden")).await;
    });
    assert!(got.1.iter().any(|p| p.contains("BgpPeer/a") && p.contains("forbidden")), "{:?}", got.1);
    assert!(!got.1.iter().any(|p| p.contains("has no key")), "{:?}", got.1);
}

#[tokio::test]
async fn controller_summarises_established_nodes_on_bgppeers() {
    let (client, mut api) = mock_client(Component::Controller);
    let (_tx, leading) = watch::channel(true);
    let mut r = Reconciler::new(client, "controller-0", Settings::default());
    let mut objs = Objects::default();
    objs.peers.push(yaml(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: edge}\nspec: {peerAddress: 198.18.0.1, peerAs: 64512}\n\
         status: {nodes: [{node: n1, state: Established}, {node: n2, state: Active}, {node: n3, state: Established}]}\n",
    ));
    objs.nodes = shared(["n1", "n2", "n3"].map(node));
    let server = tokio::spawn(async move {
        let (q, body, ctype) =
            expect(&mut api, Method::PATCH, "/apis/mooring.io/v1alpha1/bgppeers/edge/status", 200, peer_reply()).await;
        assert_eq!((q.as_str(), ctype.as_str()), ("&fieldManager=mooring-controller", "application/merge-patch+json"));
        assert_eq!(body, json!({"status": {"established": 2}}));
    });
    assert_eq!(r.reconcile(&objs, &leading).await, 1);
    server.await.unwrap();
}
