//! A mock Kubernetes API server for the cluster-scale benchmark
//! (`e2e --bench cluster`, issue 20): plain HTTP on loopback, a synthetic
//! cluster of realistically sized objects (objects.rs), and what kube-rs
//! clients ask of an API server:
//!
//! - lists with `limit`/`continue` pagination and the list's
//!   resourceVersion; metadata-only lists and watches (`Accept: ...;as=PartialObjectMetadataList`);
//! - watches (`watch=true&resourceVersion=R`, with or without
//!   `allowWatchBookmarks`): the events after R, then new ones as they
//!   happen, as one JSON event per line, ended after `timeoutSeconds`;
//! - GET of one object; POST, PUT and PATCH (merge, strategic merge and
//!   apply patches are all merged into the stored object; a
//!   resourceVersion in the body must match), each logged and counted.
//!
//! Control requests under `/mock/` (not counted as writes):
//! - `GET /mock/stats`: `{rv, lists, watches, gets, writes, by_kind: {"PATCH services/status": n, ..}}`;
//! - `GET /mock/writes?from=K`: the writes from the K-th on;
//! - `POST /mock/set?path=P&pointer=/a/b` with a JSON value: set it in
//!   the object at P (a MODIFIED event);
//! - `POST /mock/create?path=C` with an object: create it in collection C;
//! - `POST /mock/churn?n=N&per_sec=R`: N EndpointSlice changes (the last
//!   endpoint of a slice not on node-0 turns unready/ready), R per second
//!   (0: at once); answers when all are made.
//!
//! Prints `LISTENING <addr>` once it serves.

mod objects;
mod store;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response};
use serde_json::{json, Value};

use objects::Sizes;
use store::{kind_of, Failure, Store, Target};

/// A mock Kubernetes API server holding a synthetic cluster (see the module doc).
#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 10_000)]
    services: u32,
    #[arg(long, default_value_t = 3)]
    slices_per_service: u32,
    #[arg(long, default_value_t = 5)]
    endpoints_per_slice: u32,
    #[arg(long, default_value_t = 1000)]
    nodes: u32,
    /// Services hold their addresses in status (a running cluster); without: none yet (the controller's start).
    #[arg(long)]
    status: bool,
    /// The BgpPeer's port (the sink's, on 127.0.0.1).
    #[arg(long, default_value_t = 179)]
    peer_port: u16,
}

type Body = BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

fn reply(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder().status(code).header("content-type", "application/json").body(full(body)).expect("response")
}

fn failure(f: Failure) -> Response<Body> {
    reply(f.0, f.body().to_string())
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    let q = req.uri().query().unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

/// The object reduced to its metadata (a PartialObjectMetadata).
fn metadata_only(obj: &[u8]) -> Bytes {
    let v: Value = serde_json::from_slice(obj).expect("stored JSON");
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": v["metadata"]})
        .to_string()
        .into()
}

fn list(store: &Store, t: &Target, q: &[(String, String)], meta: bool) -> Response<Body> {
    let limit = param(q, "limit").and_then(|l| l.parse().ok());
    // The continue token: "<list resourceVersion>:<offset>".
    let (rv0, offset) = param(q, "continue")
        .and_then(|c| c.split_once(':'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<usize>().ok()?)))
        .map_or((None, 0), |(a, b)| (Some(a), b));
    let (items, rv, next) = store.list(t, offset, limit);
    let rv = rv0.unwrap_or(rv);
    let (api_version, kind) = if meta {
        ("meta.k8s.io/v1".to_string(), "PartialObjectMetadataList".to_string())
    } else {
        (t.api_version(), format!("{}List", kind_of(&t.resource)))
    };
    let mut md = json!({"resourceVersion": rv.to_string()});
    if let Some(n) = next {
        md["continue"] = json!(format!("{rv}:{n}"));
    }
    let head = format!("{{\"apiVersion\":\"{api_version}\",\"kind\":\"{kind}\",\"metadata\":{md},\"items\":[");
    let mut body = Vec::with_capacity(head.len() + items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
    body.extend_from_slice(head.as_bytes());
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        if meta {
            body.extend_from_slice(&metadata_only(it));
        } else {
            body.extend_from_slice(it);
        }
    }
    body.extend_from_slice(b"]}");
    reply(200, body)
}

fn watch(store: &Store, t: &Target, q: &[(String, String)], meta: bool) -> Response<Body> {
    let rv: u64 = param(q, "resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    let timeout = Duration::from_secs(param(q, "timeoutSeconds").and_then(|v| v.parse().ok()).unwrap_or(290));
    let (past, rx) = store.watch(t, rv);
    let ns = t.namespace.clone();
    let end = tokio::time::Instant::now() + timeout;
    let state = (past.into_iter(), rx, ns, end, meta);
    let stream = futures::stream::unfold(state, |(mut past, mut rx, ns, end, meta)| async move {
        let line = |e: &store::Ev| {
            if meta {
                let obj = metadata_only(&e.object);
                store::Ev { rv: e.rv, namespace: None, kind: e.kind, object: obj }.line()
            } else {
                e.line()
            }
        };
        loop {
            let ev = match past.next() {
                Some(e) => e,
                None => match tokio::time::timeout_at(end, rx.recv()).await {
                    Ok(Ok(e)) => e,
                    // Lagged, closed or timed out: end the watch (the client watches again from its last version).
                    _ => return None,
                },
            };
            if ns.as_ref().is_some_and(|n| ev.namespace.as_ref() != Some(n)) {
                continue;
            }
            let frame: Result<Frame<Bytes>, Infallible> = Ok(Frame::data(line(&ev)));
            return Some((frame, (past, rx, ns, end, meta)));
        }
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(StreamBody::new(stream).boxed())
        .expect("response")
}

/// The scripted EndpointSlice changes: `n` slices (spread over the
/// cluster) have their last endpoint turn unready, or ready again.
async fn churn(store: &Store, n: usize, per_sec: f64) -> Value {
    let key = "/apis/discovery.k8s.io/v1/endpointslices";
    let keys = store.keys(key);
    let t0 = Instant::now();
    let mut made = 0;
    for j in 0..n {
        if keys.is_empty() {
            break;
        }
        let k = &keys[(j * 7919) % keys.len()];
        let Some(obj) = store.object(key, k) else { continue };
        let eps = obj["endpoints"].as_array().map(|a| a.len()).unwrap_or(0);
        if eps == 0 || obj["endpoints"][eps - 1]["nodeName"] == objects::NODE0 {
            continue;
        }
        let ready = obj["endpoints"][eps - 1]["conditions"]["ready"].as_bool().unwrap_or(true);
        let t = Target {
            prefix: "/apis/discovery.k8s.io/v1".into(),
            resource: "endpointslices".into(),
            namespace: Some(k.0.clone()),
            name: Some(k.1.clone()),
            sub: None,
        };
        let _ = store.set(&t, &format!("/endpoints/{}/conditions/ready", eps - 1), json!(!ready));
        made += 1;
        if per_sec > 0.0 {
            let due = t0 + Duration::from_secs_f64((j + 1) as f64 / per_sec);
            tokio::time::sleep_until(due.into()).await;
        }
    }
    json!({"changes": made, "seconds": t0.elapsed().as_secs_f64()})
}

async fn control(store: &Store, req: Request<Incoming>) -> Response<Body> {
    let q = query(&req);
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let value = || serde_json::from_slice::<Value>(&body).map_err(|e| Failure(400, "BadRequest", e.to_string()));
    let target = |p: Option<&str>| {
        p.and_then(Target::parse).ok_or_else(|| Failure(400, "BadRequest", "path=<API path> missing".into()))
    };
    let r = match path.as_str() {
        "/mock/stats" => {
            let g = store.lock();
            let mut by_kind = serde_json::Map::new();
            for w in &g.writes {
                let (m, p) = w.split_once(' ').unwrap_or(("", w));
                let k = match Target::parse(p) {
                    Some(t) => format!("{m} {}{}", t.resource, t.sub.map(|s| format!("/{s}")).unwrap_or_default()),
                    None => w.clone(),
                };
                let c = by_kind.entry(k).or_insert(json!(0));
                *c = json!(c.as_u64().unwrap_or(0) + 1);
            }
            Ok(json!({"rv": g.rv, "lists": g.lists, "watches": g.watches, "gets": g.gets,
                      "writes": g.writes.len(), "by_kind": by_kind})
            .to_string()
            .into_bytes()
            .into())
        }
        "/mock/writes" => {
            let from: usize = param(&q, "from").and_then(|v| v.parse().ok()).unwrap_or(0);
            let g = store.lock();
            let w = g.writes.get(from.min(g.writes.len())..).unwrap_or_default();
            Ok(json!({"next": g.writes.len(), "writes": w}).to_string().into_bytes().into())
        }
        "/mock/set" => (|| {
            let t = target(param(&q, "path"))?;
            let pointer = param(&q, "pointer").ok_or(Failure(400, "BadRequest", "pointer missing".into()))?;
            store.set(&t, pointer, value()?)
        })(),
        "/mock/create" => (|| {
            let t = target(param(&q, "path"))?;
            store.create(&t, &path, value()?, true)
        })(),
        "/mock/churn" => {
            let n = param(&q, "n").and_then(|v| v.parse().ok()).unwrap_or(1000);
            let per_sec = param(&q, "per_sec").and_then(|v| v.parse().ok()).unwrap_or(0.0);
            Ok(churn(store, n, per_sec).await.to_string().into_bytes().into())
        }
        _ => Err(Failure(404, "NotFound", format!("no control request {path}"))),
    };
    match r {
        Ok(b) => reply(200, b),
        Err(f) => failure(f),
    }
}

async fn serve(store: Store, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    if path.starts_with("/mock/") {
        return Ok(control(&store, req).await);
    }
    let Some(t) = Target::parse(&path) else {
        return Ok(failure(Failure(404, "NotFound", format!("no API path {path}"))));
    };
    let q = query(&req);
    let meta = req
        .headers()
        .get("accept")
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadata"));
    let method = req.method().clone();
    let r = match method {
        Method::GET if t.name.is_some() => store.get(&t).map(|b| reply(200, b)),
        Method::GET if matches!(param(&q, "watch"), Some("true" | "1")) => Ok(watch(&store, &t, &q, meta)),
        Method::GET => Ok(list(&store, &t, &q, meta)),
        Method::PATCH | Method::PUT | Method::POST => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            match serde_json::from_slice::<Value>(&body) {
                Err(e) => Err(Failure(400, "BadRequest", format!("body: {e}"))),
                Ok(v) => match method {
                    Method::PATCH if t.name.is_some() => store.patch(&t, &path, v, false).map(|b| reply(200, b)),
                    Method::PUT if t.name.is_some() => store.replace(&t, &path, v).map(|b| reply(200, b)),
                    Method::POST if t.name.is_none() => store.create(&t, &path, v, false).map(|b| reply(201, b)),
                    _ => Err(Failure(405, "MethodNotAllowed", format!("{method} {path}"))),
                },
            }
        }
        _ => Err(Failure(405, "MethodNotAllowed", format!("{method} {path}"))),
    };
    Ok(r.unwrap_or_else(failure))
}

/// The synthetic cluster into `store`.
fn populate(store: &Store, z: &Sizes) {
    let ds = "/apis/discovery.k8s.io/v1";
    for i in 0..z.services {
        store.seed("/api/v1", "services", objects::service(i, z.status));
        for k in 0..z.slices_per_service {
            store.seed(ds, "endpointslices", objects::endpoint_slice(i, k, z, objects::seed(i, k)));
        }
    }
    for n in 0..z.nodes {
        store.seed("/api/v1", "nodes", objects::node(n));
    }
    for n in 0..objects::NAMESPACES.min(z.services.max(1)) {
        store.seed("/api/v1", "namespaces", objects::namespace_object(&format!("ns-{n}"), n as u64));
    }
    store.seed("/api/v1", "namespaces", objects::namespace_object("mooring-system", 999));
    for (resource, obj) in objects::mooring(z) {
        store.seed("/apis/mooring.io/v1alpha1", resource, obj);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = Args::parse();
    let z = Sizes {
        services: a.services,
        slices_per_service: a.slices_per_service,
        endpoints_per_slice: a.endpoints_per_slice,
        nodes: a.nodes.max(1),
        status: a.status,
        peer_port: a.peer_port,
    };
    let store = Store::default();
    let t = Instant::now();
    populate(&store, &z);
    let bytes: usize = store.lock().resources.values().flat_map(|r| r.objects.values()).map(|b| b.len()).sum();
    eprintln!(
        "kube-mock: {} Services, {} EndpointSlices, {} Nodes: {:.1} MB of JSON, built in {:.1} s",
        z.services,
        z.services * z.slices_per_service,
        z.nodes,
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let listener = tokio::net::TcpListener::bind(a.listen).await.unwrap_or_else(|e| {
        eprintln!("kube-mock: bind {}: {e}", a.listen);
        std::process::exit(1)
    });
    println!("LISTENING {} json_bytes={bytes}", listener.local_addr().expect("address"));
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let store = Arc::new(store);
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let store = store.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| serve((*store).clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}
