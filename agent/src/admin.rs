//! The admin HTTP server: `/metrics` (Prometheus), `/healthz` (the process
//! is alive and serving HTTP), `/readyz` (the node serves: its speaker
//! runs and every configured peer was started; 503 with the reason
//! otherwise) and `/status` (the sessions and VIPs as JSON, what `mooring
//! status` prints; read-only, like the rest). Commands bind it to loopback
//! by default. axum routes on hyper's HTTP/1.1 server, with a bound on
//! connections, on the time a client may take to send its request head,
//! on header size and count, and a back-off when `accept()` fails (a file
//! descriptor limit reached must not spin a core).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::metrics::Metrics;

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send its request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection may live.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Request head size and header count limits.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 32;

fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/status", get(status))
        .with_state(metrics)
}

async fn render(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m.render())
}

async fn ready(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    match m.not_ready() {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
    }
}

/// The node's sessions and VIPs as JSON (read-only; 503 before a speaker runs).
async fn status(State(m): State<Arc<Metrics>>) -> axum::response::Response {
    match m.speaker() {
        Some(s) => {
            let body = serde_json::to_string(&crate::status::Status::of(&s)).unwrap_or_default();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "no BGP speaker is running yet\n").into_response(),
    }
}

/// Serve the endpoints on `addr` in the background; returns the bound address.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    info!(%bound, "serving /metrics, /healthz, /readyz and /status");
    let app = router(metrics);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else { return };
            let stream = match listener.accept().await {
                Ok((s, _)) => {
                    failures = 0;
                    s
                }
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS...: wait before trying again.
                    let delay = Duration::from_millis(10u64 << failures.min(7));
                    if failures == 0 {
                        warn!("admin server: accept failed: {e} (backing off)");
                    }
                    failures += 1;
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .max_headers(MAX_HEADERS)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
                drop(slot);
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Readiness;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, chunks: &[&[u8]]) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        for c in chunks {
            s.write_all(c).await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn endpoints_answer_and_readyz_tells_why() {
        let m = Arc::new(Metrics::new());
        let addr = serve("127.0.0.1:0".parse().unwrap(), m.clone()).await.unwrap();
        let req = |p: &str| format!("GET {p} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        assert!(get(addr, &[req("/healthz").as_bytes()]).await.starts_with("HTTP/1.1 200"));
        let r = get(addr, &[req("/readyz").as_bytes()]).await;
        assert!(r.starts_with("HTTP/1.1 503") && r.contains("not ready: starting"), "{r}");
        m.set_readiness(&Readiness::Ready);
        assert!(get(addr, &[req("/readyz").as_bytes()]).await.starts_with("HTTP/1.1 200"));
        let r = get(addr, &[req("/metrics").as_bytes()]).await;
        assert!(r.contains("mooring_ready 1"), "{r}");
        assert!(get(addr, &[req("/nope").as_bytes()]).await.starts_with("HTTP/1.1 404"));
        let r = get(addr, &[req("/status").as_bytes()]).await;
        assert!(r.starts_with("HTTP/1.1 503") && r.contains("no BGP speaker"), "{r}");
        let r =
            get(addr, &[b"POST /status HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"]).await;
        assert!(r.starts_with("HTTP/1.1 405"), "read-only: {r}");
    }

    #[tokio::test]
    async fn a_request_split_over_segments_is_answered() {
        let m = Arc::new(Metrics::new());
        let addr = serve("127.0.0.1:0".parse().unwrap(), m).await.unwrap();
        let r = get(addr, &[b"GET /heal", b"thz HTTP/1.1\r\nhost:", b" x\r\nconnection: close\r\n\r\n"]).await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }

    #[tokio::test]
    async fn oversized_heads_are_refused() {
        let m = Arc::new(Metrics::new());
        let addr = serve("127.0.0.1:0".parse().unwrap(), m).await.unwrap();
        let big = format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-junk: {}\r\n\r\n", "a".repeat(64 * 1024));
        let r = get(addr, &[big.as_bytes()]).await;
        assert!(r.starts_with("HTTP/1.1 431") || r.is_empty(), "{r}");
        let many: String = (0..100).map(|i| format!("x-{i}: y\r\n")).collect();
        let r = get(addr, &[format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many}\r\n").as_bytes()]).await;
        assert!(!r.starts_with("HTTP/1.1 200"), "{r}");
    }
}
