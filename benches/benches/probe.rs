//! The node-health prober (agent/src/node/probe) against kube-proxy-like
//! HTTP servers on 127.0.0.1, with the default settings:
//! - detection: one target; its server turns to 503 (the node's endpoints
//!   are gone) or stops answering (a dead node: the probe times out) at a
//!   random point of the probe interval; the time until `changed()` reports
//!   the target down, then the time until it is up again once the server
//!   answers 200. Target: down in under a second.
//! - load: many targets (1000: 5000 probes a second), the prober alone on
//!   its thread (the servers run on another): the prober's CPU, probes
//!   sent, late, skipped and failed.
//!
//! No comparison with GoBGP, BIRD or FRR: none of them probes next hops
//! this way (BFD, which they have, is the peer's liveness, not kube-proxy's
//! view of a node's endpoints).
//!
//!     cargo bench -p mooring-benches --bench probe [-- --trials 20 --targets 1000 --seconds 10]
//!     cargo bench -p mooring-benches --bench probe -- --test   # a quick run (CI)

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use mooring_agent::node::probe::{Check, ProbeSettings, Prober, Target};
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Parser, Debug)]
struct Args {
    /// A quick run (as `cargo bench -- --test` asks): 3 trials, 200 targets for 1 s.
    #[arg(long)]
    test: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Detection trials per kind of failure.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Targets of the load run.
    #[arg(long, default_value_t = 1000)]
    targets: usize,
    /// Length of the load run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Benchmark filters passed by `cargo bench`; ignored.
    #[arg(hide = true)]
    filter: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ok,
    Unavailable,
    Silent,
}

/// An HTTP server answering 200, 503, or nothing (the request waits until
/// the mode changes), counting answers.
struct Server {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    answered: Arc<AtomicU64>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, rx) = watch::channel(Mode::Ok);
        let answered = Arc::new(AtomicU64::new(0));
        let count = answered.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (rx, count) = (rx.clone(), count.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        let (mut rx, count) = (rx.clone(), count.clone());
                        async move {
                            let mode = *rx.wait_for(|m| *m != Mode::Silent).await.unwrap();
                            count.fetch_add(1, Ordering::Relaxed);
                            let status = if mode == Mode::Ok { 200 } else { 503 };
                            let response = hyper::Response::builder().status(status).body(Empty::<Bytes>::new());
                            Ok::<_, Infallible>(response.unwrap())
                        }
                    });
                    let conn =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    let _ = conn.await;
                });
            }
        });
        Server { addr, mode, answered }
    }

    fn target(&self, path: &str) -> Target {
        Target { address: self.addr.ip(), check: Check::Http { port: self.addr.port(), path: path.into() } }
    }
}

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one rusage through the pointer, which points
    // to one; a zeroed rusage is a valid value of the plain C struct.
    let (rc, usage) = unsafe { (libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()), usage.assume_init()) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn quantiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let ms = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1000.0);
    format!("{:>6} {:>6} {:>6} {:>6}", ms(v[0]), ms(q(0.5)), ms(q(0.9)), ms(v[v.len() - 1]))
}

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f).await.unwrap_or_else(|_| panic!("{what}: not within 10 s"))
}

/// Time to down and back up, `trials` times, for a server going to `failed`.
async fn detection(server: &Server, failed: Mode, trials: usize, rng: &mut u64) -> (Vec<Duration>, Vec<Duration>) {
    let (mut downs, mut ups) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        server.mode.send_replace(Mode::Ok);
        let t = server.target("/healthz");
        let mut p = Prober::new(ProbeSettings::default());
        p.set_targets(BTreeSet::from([t.clone()]));
        let start = server.answered.load(Ordering::Relaxed);
        within("three good probes", async {
            while server.answered.load(Ordering::Relaxed) < start + 3 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        // A random point of the interval.
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        tokio::time::sleep(Duration::from_micros(*rng % 200_000)).await;
        server.mode.send_replace(failed);
        let t0 = Instant::now();
        within("down", p.changed()).await;
        downs.push(t0.elapsed());
        assert!(!p.is_up(&t), "the transition is down");
        server.mode.send_replace(Mode::Ok);
        let t1 = Instant::now();
        within("up", p.changed()).await;
        ups.push(t1.elapsed());
        assert!(p.is_up(&t), "the transition is up");
    }
    (downs, ups)
}

async fn load(server: &Server, targets: usize, seconds: u64) {
    server.mode.send_replace(Mode::Ok);
    let settings = ProbeSettings::default();
    let mut p = Prober::new(settings);
    p.set_targets((0..targets).map(|i| server.target(&format!("/{i}"))).collect());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (c0, cpu0, t0) = (p.counters(), thread_cpu(), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (c1, cpu1, wall) = (p.counters(), thread_cpu(), t0.elapsed());
    let sent = c1.sent - c0.sent;
    let cpu = cpu1 - cpu0;
    println!(
        "load: {targets} targets, defaults ({:?} interval, {} in flight at most), {:.1} s:",
        settings.interval,
        settings.concurrency,
        wall.as_secs_f64()
    );
    println!(
        "  {:.0} probes/s (wanted {:.0}), prober CPU {:.1} % of a core, {:.1} µs per probe",
        sent as f64 / wall.as_secs_f64(),
        targets as f64 / settings.interval.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / sent.max(1) as f64
    );
    println!(
        "  late {}, skipped {}, failed {}, down {}, up {} (targets down at the end: {})",
        c1.late - c0.late,
        c1.skipped - c0.skipped,
        c1.failed - c0.failed,
        c1.downs - c0.downs,
        c1.ups - c0.ups,
        p.down().len()
    );
}

fn main() {
    let mut args = Args::parse();
    if args.test {
        (args.trials, args.targets, args.seconds) = (3, 200, 1);
    }
    // The servers on a thread of their own, the prober on this one (so its
    // CPU is this thread's).
    let servers = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let prober = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = servers.block_on(Server::start());
    let load_server = servers.block_on(Server::start());
    let mut rng = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    prober.block_on(async {
        let d = ProbeSettings::default();
        println!(
            "detection, defaults: interval {:?}, timeout {:?}, fall {}, rise {} (worst case {:?}); {} trials each, ms:",
            d.interval,
            d.timeout,
            d.fall,
            d.rise,
            d.detection(),
            args.trials
        );
        println!("  {:<34} {:>6} {:>6} {:>6} {:>6}", "", "min", "median", "p90", "max");
        let mut missed = false;
        for (failed, what) in [(Mode::Unavailable, "503 (no local endpoints)"), (Mode::Silent, "no answer (node dead)")]
        {
            let (downs, ups) = detection(&server, failed, args.trials, &mut rng).await;
            missed |= downs.iter().any(|d| *d >= Duration::from_secs(1));
            println!("  {:<34} {}", format!("down after {what}"), quantiles(downs));
            println!("  {:<34} {}", "up again after 200", quantiles(ups));
        }
        println!("  target: down in under 1 s: {}", if missed { "MISSED" } else { "met" });
        load(&load_server, args.targets, args.seconds).await;
    });
}
