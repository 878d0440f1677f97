//! The checks a probe runs, each bounded by its timeout: a TCP connect, or
//! an HTTP/1.1 GET (hyper's client) that must answer 200. One connection per
//! probe, closed afterwards; the body is not read. Nothing is retried: a
//! failure is one failed probe, and the schedule decides what it means.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper::{StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{Check, Failure, Target};

/// Run `target`'s check; a failure if it did not succeed within `timeout`.
pub async fn run(target: &Target, timeout: Duration) -> Result<(), Failure> {
    tokio::time::timeout(timeout, check(target)).await.unwrap_or(Err(Failure::Timeout(timeout)))
}

async fn check(target: &Target) -> Result<(), Failure> {
    match &target.check {
        Check::Tcp { port } => connect(SocketAddr::new(target.address, *port)).await.map(drop),
        Check::Http { port, path } => http(SocketAddr::new(target.address, *port), path).await,
    }
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, Failure> {
    TcpStream::connect(addr).await.map_err(|e| match e.kind() {
        ErrorKind::ConnectionRefused => Failure::Refused,
        _ => Failure::Connect(e.to_string()),
    })
}

/// The request target of an HTTP check: a path (with an optional query)
/// starting with `/`.
pub fn request_target(path: &str) -> Result<Uri, String> {
    let uri: Uri = path.parse().map_err(|e| format!("invalid HTTP path {path:?}: {e}"))?;
    if !path.starts_with('/') || uri.scheme().is_some() || uri.authority().is_some() {
        return Err(format!("invalid HTTP path {path:?}: must be a path starting with '/'"));
    }
    Ok(uri)
}

async fn http(addr: SocketAddr, path: &str) -> Result<(), Failure> {
    let uri = request_target(path).map_err(Failure::Http)?;
    let request = hyper::Request::get(uri)
        .header(HOST, addr.to_string())
        .header(USER_AGENT, "mooring-probe")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| Failure::Http(e.to_string()))?;
    let stream = connect(addr).await?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| Failure::Http(e.to_string()))?;
    // Drive the connection here, not in a task of its own, so that dropping
    // the probe (timeout, removed target) closes it.
    let mut conn = pin!(conn);
    let mut answer = pin!(send.send_request(request));
    let response = tokio::select! {
        biased;
        r = &mut answer => r,
        closed = &mut conn => match closed {
            // The server closed after answering: the answer is ready, or
            // fails as "connection closed".
            Ok(()) => answer.await,
            Err(e) => Err(e),
        },
    }
    .map_err(|e| Failure::Http(e.to_string()))?;
    match response.status() {
        StatusCode::OK => Ok(()),
        s => Err(Failure::Status(s.as_u16())),
    }
}
