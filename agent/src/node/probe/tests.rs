//! The prober against real sockets on 127.0.0.1 and ::1: tokio listeners
//! and a hyper server whose answer the test switches. Intervals are short
//! and deadlines long (a loaded machine slows everything down); the
//! assertions are on transitions and counts, not on timings.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::*;

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
const DEADLINE: Duration = Duration::from_secs(20);

fn fast() -> ProbeSettings {
    ProbeSettings {
        interval: Duration::from_millis(20),
        timeout: Duration::from_secs(1),
        fall: 3,
        rise: 2,
        concurrency: 64,
    }
}

/// An HTTP server answering every request with the status it is set to,
/// after `hold`; it counts answers per (path, status) and the requests
/// being handled at once (inside the handler, so never more than the
/// client has in flight).
struct Server {
    addr: SocketAddr,
    state: Arc<ServerState>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct ServerState {
    status: AtomicU16,
    hold: Duration,
    answered: Mutex<HashMap<(String, u16), u64>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Server {
    async fn start(ip: IpAddr, hold: Duration) -> Server {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState { status: AtomicU16::new(200), hold, ..ServerState::default() });
        let s = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let s = s.clone();
                        async move {
                            let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            s.max_in_flight.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(s.hold).await;
                            let status = s.status.load(Ordering::SeqCst);
                            *s.answered.lock().unwrap().entry((req.uri().path().to_string(), status)).or_default() += 1;
                            s.in_flight.fetch_sub(1, Ordering::SeqCst);
                            let response = hyper::Response::builder().status(status).body(Empty::<Bytes>::new());
                            Ok::<_, Infallible>(response.unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server { addr, state, task }
    }

    fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    fn answered(&self, path: &str, status: u16) -> u64 {
        self.state.answered.lock().unwrap().get(&(path.to_string(), status)).copied().unwrap_or(0)
    }

    fn paths_answered(&self) -> usize {
        self.state.answered.lock().unwrap().keys().map(|(p, _)| p.clone()).collect::<BTreeSet<_>>().len()
    }

    fn target(&self, path: &str) -> Target {
        Target { address: self.addr.ip(), check: Check::Http { port: self.addr.port(), path: path.into() } }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(DEADLINE, f).await {
        Ok(out) => out,
        Err(_) => panic!("not within {DEADLINE:?}: {what}"),
    }
}

/// Wait until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Wait until `cond` holds, with no up/down transition meanwhile.
async fn quiet_until(p: &mut Prober, what: &str, cond: impl FnMut() -> bool) {
    tokio::select! {
        () = p.changed() => panic!("a transition while waiting for {what}"),
        () = until(what, cond) => {}
    }
}

async fn changed(p: &mut Prober, what: &str) {
    within(what, p.changed()).await
}

fn only(t: &Target) -> BTreeSet<Target> {
    BTreeSet::from([t.clone()])
}

/// 200 → up and quiet; 503 → down after `fall` 503s, then quiet; 200 →
/// up after `rise` 200s. Each transition wakes `changed()` once.
async fn up_down_up(ip: IpAddr) {
    let server = Server::start(ip, Duration::ZERO).await;
    let t = server.target("/healthz");
    let mut p = Prober::new(fast());
    p.set_targets(only(&t));
    assert!(p.is_up(&t), "a new target starts up");
    quiet_until(&mut p, "five 200s", || server.answered("/healthz", 200) >= 5).await;
    assert!(p.is_up(&t));

    server.set_status(503);
    changed(&mut p, "down after 503s").await;
    assert!(!p.is_up(&t));
    assert!(server.answered("/healthz", 503) >= 3, "fall = 3");
    assert_eq!(p.last_failure(&t), Some(Failure::Status(503)));
    assert_eq!(p.down(), std::slice::from_ref(&t));
    let n = server.answered("/healthz", 503);
    quiet_until(&mut p, "more 503s", || server.answered("/healthz", 503) >= n + 5).await;

    server.set_status(200);
    changed(&mut p, "up after 200s").await;
    assert!(p.is_up(&t));
    assert!(server.answered("/healthz", 200) >= 5 + 2, "rise = 2");
    assert_eq!(p.last_failure(&t), None);
    let c = p.counters();
    assert_eq!((c.downs, c.ups), (1, 1));
    assert!(c.failed >= 8 && c.sent >= c.failed + 7, "{c:?}");
}

#[tokio::test]
async fn http_200_503_200_over_ipv4() {
    up_down_up(V4).await;
}

#[tokio::test]
async fn http_200_503_200_over_ipv6() {
    up_down_up(V6).await;
}

/// A listener that accepts and never answers: the HTTP probe times out;
/// the TCP probe to it succeeds.
#[tokio::test]
async fn an_unanswered_request_times_out() {
    let listener = TcpListener::bind((V4, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut streams = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            streams.push(s);
        }
    });
    let http = Target { address: V4, check: Check::Http { port, path: "/".into() } };
    let tcp = Target { address: V4, check: Check::Tcp { port } };
    let timeout = Duration::from_millis(100);
    let mut p = Prober::new(ProbeSettings { timeout, ..fast() });
    p.set_targets(BTreeSet::from([http.clone(), tcp.clone()]));
    changed(&mut p, "the HTTP target down").await;
    assert!(!p.is_up(&http));
    assert_eq!(p.last_failure(&http), Some(Failure::Timeout(timeout)));
    assert!(p.is_up(&tcp), "accepting is all a TCP check needs");
    assert_eq!(p.last_failure(&tcp), None);
    held.abort();
}

/// Nothing listens: refused, for both checks.
#[tokio::test]
async fn a_closed_port_is_refused() {
    let port = TcpListener::bind((V4, 0)).await.unwrap().local_addr().unwrap().port();
    let http = Target { address: V4, check: Check::Http { port, path: "/".into() } };
    let tcp = Target { address: V4, check: Check::Tcp { port } };
    let mut p = Prober::new(fast());
    p.set_targets(BTreeSet::from([http.clone(), tcp.clone()]));
    until("both down", || p.down().len() == 2).await;
    assert_eq!(p.last_failure(&http), Some(Failure::Refused));
    assert_eq!(p.last_failure(&tcp), Some(Failure::Refused));
}

/// A TCP check follows the listener: up while it accepts, down when it is
/// closed, up again when it is back on the same port. Over IPv6 too.
async fn tcp_follows_the_listener(ip: IpAddr) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let accept = |listener: TcpListener| {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            while let Ok(_s) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let task = accept(listener);
    let t = Target { address: ip, check: Check::Tcp { port: addr.port() } };
    let mut p = Prober::new(fast());
    p.set_targets(only(&t));
    quiet_until(&mut p, "five connections", || accepted.load(Ordering::SeqCst) >= 5).await;
    task.abort();
    let _ = task.await; // the listener is closed once the task is gone
    changed(&mut p, "down once closed").await;
    assert!(!p.is_up(&t));
    assert_eq!(p.last_failure(&t), Some(Failure::Refused));
    let task = accept(TcpListener::bind(addr).await.unwrap());
    changed(&mut p, "up once back").await;
    assert!(p.is_up(&t));
    task.abort();
}

#[tokio::test]
async fn tcp_check_over_ipv4() {
    tcp_follows_the_listener(V4).await;
}

#[tokio::test]
async fn tcp_check_over_ipv6() {
    tcp_follows_the_listener(V6).await;
}

/// 1000 targets (one server, a path each) with a limit of 8: the server
/// never handles more than 8 at once, every target is probed, and the
/// probes that had to wait for a slot are counted late.
#[tokio::test]
async fn a_thousand_targets_never_exceed_the_limit() {
    let server = Server::start(V4, Duration::from_millis(5)).await;
    let targets: BTreeSet<Target> = (0..1000).map(|i| server.target(&format!("/{i}"))).collect();
    let settings = ProbeSettings {
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
        concurrency: 8,
        ..fast()
    };
    let mut p = Prober::new(settings);
    p.set_targets(targets.clone());
    let mut most = 0;
    until("every target probed", || {
        most = most.max(p.in_flight());
        server.paths_answered() == 1000
    })
    .await;
    let served = server.state.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=8).contains(&served), "the server handled {served} at once");
    assert!(most <= 8, "{most} in flight");
    let c = p.counters();
    assert!(c.late > 0 && c.skipped > 0, "10000 probes/s wanted, far more than 8 slots give: {c:?}");
    assert_eq!((c.failed, c.downs), (0, 0));
    assert!(targets.iter().all(|t| p.is_up(t)));
}

/// A removed target is no longer probed; the other one still is.
#[tokio::test]
async fn a_removed_target_is_no_longer_probed() {
    let server = Server::start(V4, Duration::ZERO).await;
    let (a, b) = (server.target("/a"), server.target("/b"));
    let mut p = Prober::new(fast());
    p.set_targets(BTreeSet::from([a.clone(), b.clone()]));
    until("both probed", || server.answered("/a", 200) >= 2 && server.answered("/b", 200) >= 2).await;
    p.set_targets(only(&a));
    assert!(!p.is_up(&b), "forgotten");
    let n = server.answered("/a", 200);
    // A probe of b in flight at the removal may still be answered.
    until("a probed twice more", || server.answered("/a", 200) >= n + 2).await;
    let gone = server.answered("/b", 200);
    until("a probed five times more", || server.answered("/a", 200) >= n + 7).await;
    assert_eq!(server.answered("/b", 200), gone, "b probed after its removal");
}

/// A probe in flight is dropped, its connection closed, when its target is
/// removed — and when the prober is dropped.
#[tokio::test]
async fn probes_in_flight_are_dropped_with_their_target_and_with_the_prober() {
    let listener = TcpListener::bind((V4, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = Target { address: V4, check: Check::Http { port, path: "/".into() } };
    let settings = ProbeSettings { timeout: Duration::from_secs(60), ..fast() };
    let mut p = Prober::new(settings);
    p.set_targets(only(&t));
    let closed = |mut s: TcpStream| async move {
        let mut buf = [0u8; 1024];
        // The request, then nothing until the client closes.
        while s.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    };
    let (s, _) = within("the probe connects", listener.accept()).await.unwrap();
    assert_eq!(p.in_flight(), 1);
    p.set_targets(BTreeSet::new());
    within("the connection closed after removal", closed(s)).await;
    until("no probe in flight", || p.in_flight() == 0).await;

    p.set_targets(only(&t));
    let (s, _) = within("the probe connects again", listener.accept()).await.unwrap();
    drop(p);
    within("the connection closed after dropping the prober", closed(s)).await;
}

/// New settings take effect: a shorter interval at once, a lower `fall`
/// at the next failure.
#[tokio::test]
async fn settings_changes_take_effect() {
    let server = Server::start(V4, Duration::ZERO).await;
    let t = server.target("/");
    let slow = ProbeSettings { interval: Duration::from_secs(600), ..fast() };
    let mut p = Prober::new(slow);
    p.set_targets(only(&t));
    p.set_settings(fast());
    until("probed every 20 ms, not every 10 minutes", || server.answered("/", 200) >= 5).await;

    server.set_status(503);
    p.set_settings(ProbeSettings { fall: 1000, ..fast() });
    quiet_until(&mut p, "five 503s", || server.answered("/", 503) >= 5).await;
    assert!(p.is_up(&t), "fall = 1000");
    p.set_settings(ProbeSettings { fall: 1, ..fast() });
    changed(&mut p, "down at the next failure").await;
    assert!(!p.is_up(&t));
}

#[test]
fn http_paths_are_checked() {
    for ok in ["/", "/healthz", "/a/b?c=d"] {
        assert_eq!(Check::Http { port: 1, path: ok.into() }.validate(), Ok(()), "{ok}");
    }
    for bad in ["", "healthz", "http://example.com/", "/a b", "*"] {
        assert!(Check::Http { port: 1, path: bad.into() }.validate().is_err(), "{bad:?}");
    }
    assert_eq!(Check::Tcp { port: 1 }.validate(), Ok(()));
}

/// An invalid path fails the probe with the reason, without a request.
#[tokio::test]
async fn an_invalid_path_fails_the_probe() {
    let server = Server::start(V4, Duration::ZERO).await;
    let t = server.target("healthz");
    let mut p = Prober::new(ProbeSettings { fall: 1, ..fast() });
    p.set_targets(only(&t));
    changed(&mut p, "down").await;
    assert!(matches!(p.last_failure(&t), Some(Failure::Http(e)) if e.contains("invalid HTTP path")));
    assert_eq!(server.paths_answered(), 0);
}

#[test]
fn targets_print_as_urls() {
    let v6 = Target { address: V6, check: Check::Http { port: 10256, path: "/healthz".into() } };
    assert_eq!(v6.to_string(), "http://[::1]:10256/healthz");
    let v4 = Target { address: V4, check: Check::Tcp { port: 22 } };
    assert_eq!(v4.to_string(), "tcp://127.0.0.1:22");
}
