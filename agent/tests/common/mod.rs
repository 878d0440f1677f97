//! Helpers shared by the tests against a mocked API server (the tower-test
//! pattern of kube-rs' controller-rs): a mock client for one component
//! whose every request must be allowed by that component's RBAC rules
//! (`kube::access`), one-request expectations, and a reconcile served as
//! the API server would.

#![allow(dead_code)]

use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use kube::Client;
use mooring_agent::kube::access;
use mooring_agent::kube::controller::Reconciler;
pub use mooring_agent::kube::stores::Component;
use mooring_agent::model::plan::Objects;
use serde_json::Value;
use tokio::sync::watch;
use tower_test::mock::{self, Handle};

/// The server side of a mock client: hands out the requests the client
/// makes, each checked against the component's RBAC rules.
pub struct ApiHandle {
    handle: Handle<Request<Body>, Response<Body>>,
    component: Component,
}

impl ApiHandle {
    pub async fn next_request(&mut self) -> Option<(Request<Body>, mock::SendResponse<Response<Body>>)> {
        let r = self.handle.next_request().await;
        if let Some((req, _)) = &r {
            let (m, path, query) = (req.method(), req.uri().path(), req.uri().query().unwrap_or(""));
            assert!(
                access::permits(self.component, m, path, query),
                "{:?} made {m} {path}?{query}, which its RBAC rules (kube::access) do not allow",
                self.component
            );
        }
        r
    }
}

pub fn mock_client(component: Component) -> (Client, ApiHandle) {
    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(svc, "default"), ApiHandle { handle, component })
}

/// One expected request: returns its query string, JSON body and content
/// type; answers `reply` with `status`.
pub async fn expect(
    handle: &mut ApiHandle,
    method: Method,
    path: &str,
    status: u16,
    reply: Value,
) -> (String, Value, String) {
    let (req, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request; expected {method} {path}"))
        .expect("the client is gone");
    assert_eq!(req.method(), method, "{}", req.uri());
    assert_eq!(req.uri().path(), path);
    let query = req.uri().query().unwrap_or("").to_string();
    let ctype = req.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body: Value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    // `Value::Null`: answer with what was sent, as the API server does for a create.
    let reply = if reply.is_null() { body.clone() } else { reply };
    send.send_response(
        Response::builder().status(status).body(Body::from(serde_json::to_vec(&reply).unwrap())).unwrap(),
    );
    (query, body, ctype)
}

pub fn yaml<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_yaml::from_str(s).unwrap()
}

/// A reconcile that must make no request: it returns (a request would wait
/// for an answer that never comes), reports zero writes, and left nothing
/// queued at the mock API server.
pub async fn assert_writes_nothing(
    r: &mut Reconciler,
    objs: &Objects,
    leading: &watch::Receiver<bool>,
    api: &mut ApiHandle,
) {
    let n = tokio::time::timeout(Duration::from_secs(5), r.reconcile(objs, leading))
        .await
        .expect("the reconcile made a request: it is waiting for an answer");
    assert_eq!(n, 0);
    assert!(tokio::time::timeout(Duration::ZERO, api.next_request()).await.is_err(), "a request is queued");
}

/// Apply a merge patch (RFC 7386) to a JSON document.
pub fn merge(doc: &mut Value, patch: &Value) {
    match (doc, patch) {
        (Value::Object(d), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    d.remove(k);
                } else {
                    merge(d.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (d, p) => *d = p.clone(),
    }
}

/// Run one reconcile of `objs`, answering every request it makes with 200
/// and applying its status merge patches to `objs` as the API server would.
/// Returns the writes it counted and the requests seen.
pub async fn reconcile_served(
    r: &mut Reconciler,
    objs: &mut Objects,
    leading: &watch::Receiver<bool>,
    api: &mut ApiHandle,
) -> (usize, Vec<(Method, String, Value)>) {
    let before = objs.clone();
    let mut pass = std::pin::pin!(r.reconcile(&before, leading));
    let mut seen = vec![];
    loop {
        let (req, send) = tokio::select! {
            n = &mut pass => return (n, seen),
            req = api.next_request() => req.expect("the client is gone"),
        };
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let mut reply = body.clone();
        if let Some(name) = path.strip_prefix("/apis/mooring.io/v1alpha1/eips/").and_then(|p| p.strip_suffix("/status"))
        {
            let eip = objs.eips.iter_mut().find(|e| e.metadata.name.as_deref() == Some(name)).unwrap();
            let mut doc = serde_json::to_value(&*eip).unwrap();
            merge(&mut doc, &body);
            *eip = serde_json::from_value(doc.clone()).unwrap();
            reply = doc;
        }
        if let Some(rest) = path.strip_prefix("/api/v1/namespaces/") {
            if let Some((ns, name)) = rest.strip_suffix("/status").and_then(|r| r.split_once("/services/")) {
                let svc = objs
                    .services
                    .iter_mut()
                    .find(|s| s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(name))
                    .unwrap();
                let mut doc = serde_json::to_value(&**svc).unwrap();
                merge(&mut doc, &body);
                *svc = std::sync::Arc::new(serde_json::from_value(doc.clone()).unwrap());
                reply = doc;
            }
        }
        send.send_response(
            Response::builder().status(200).body(Body::from(serde_json::to_vec(&reply).unwrap())).unwrap(),
        );
        seen.push((method, path, body));
    }
}
