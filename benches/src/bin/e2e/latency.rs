//! Change latency (issue 6, benchmark 3): `mooring standalone --node n1
//! --config DIR` in `mbench-spk` (198.18.200.2) peers with a router in
//! `mbench-rcv` (198.18.200.1); the harness flips the only endpoint of a
//! Local Service between ready and unready (or deletes and restores the
//! Service) by an atomic rename in DIR, and times each change until
//!
//! - **sink**: `bgp-sink --events` receives the UPDATE (it prints its
//!   CLOCK_REALTIME receive time per UPDATE);
//! - **FRR**: the VIP appears in / disappears from the router's kernel FIB
//!   (zebra's install, seen by `ip -ts monitor route` in the router
//!   namespace: gettimeofday when the netlink notification is read).
//!
//! The start is CLOCK_REALTIME right after `rename(2)` returns; every
//! timestamp comes from the one machine clock. Each change is observed
//! before the next one is made (timeout 5 s). The agent sleeps 5 ms after
//! the first inotify event (its settle delay), so every sample includes 5 ms.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::daemons::{epoch, Bins, ReceiverKind, RECEIVER_AS, SPEAKER_AS};
use crate::lab::{check_interrupted, Lab, Proc, RCV_ADDR, SPK_ADDR};

/// Own namespaces and FRR instance (not `mbench-*`), so that another e2e
/// mode starting meanwhile does not remove them.
const RCV_NS: &str = "mlat-rcv";
const SPK_NS: &str = "mlat-spk";
const FRR_INST: &str = "mlat";

/// The agent's debounce after the first change event (agent/src/standalone).
pub const DEBOUNCE_MS: f64 = 5.0;
const TIMEOUT: Duration = Duration::from_secs(5);
/// The pool: the Local Service gets the first address.
const POOL_PREFIX: &str = "203.0.113.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The Service's only endpoint (on n1) turns unready / ready.
    Endpoint,
    /// The Service is deleted / created again.
    Service,
}

impl ChangeKind {
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Endpoint => "endpoint ready ↔ unready",
            ChangeKind::Service => "Service deleted ↔ created",
        }
    }
}

/// New lines of a growing log file.
struct Tail {
    f: File,
    partial: String,
}

impl Tail {
    fn open(p: &Path) -> Tail {
        let mut f = File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        f.seek(SeekFrom::End(0)).unwrap();
        Tail { f, partial: String::new() }
    }

    fn lines(&mut self) -> Vec<String> {
        let mut s = String::new();
        let _ = self.f.read_to_string(&mut s);
        self.partial.push_str(&s);
        let Some(end) = self.partial.rfind('\n') else { return vec![] };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        done.lines().map(String::from).collect()
    }
}

/// `[2026-11-25T15:37:14.618988]` (UTC: the monitor runs with TZ=UTC) as
/// seconds since the epoch.
pub(crate) fn parse_ts(s: &str) -> Option<f64> {
    let s = s.strip_prefix('[')?.split(']').next()?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (hh, mm, ss) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?, t.next()?.parse::<f64>().ok()?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60) as f64 + ss)
}

fn manifests_bgp() -> String {
    format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: {SPEAKER_AS}}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\n\
         spec: {{peerAddress: {RCV_ADDR}, peerAs: {RECEIVER_AS}, holdTime: 30s, families: [ipv4-unicast]}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: pool}}\n\
         spec: {{address: {POOL_PREFIX}100-{POOL_PREFIX}110}}\n---\n\
         apiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\nstatus: {{addresses: [{{type: InternalIP, address: {SPK_ADDR}}}]}}\n"
    )
}

fn manifests_service(present: bool) -> String {
    if !present {
        return String::new();
    }
    "apiVersion: v1\nkind: Service\nmetadata: {name: web-local, namespace: default}\n\
     spec: {type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 8080, protocol: TCP}]}\n"
        .into()
}

fn manifests_slice(ready: bool) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: web-local-1, namespace: default, labels: {{kubernetes.io/service-name: web-local}}}}\n\
         addressType: IPv4\nendpoints:\n- {{addresses: [10.1.0.1], nodeName: n1, conditions: {{ready: {ready}}}}}\n"
    )
}

/// Write atomically: the temp file lives outside the watched directory
/// (same file system), so the agent sees one event, the rename. Returns
/// CLOCK_REALTIME right before and right after `rename(2)`.
fn write_atomic(lab: &Lab, dir: &Path, name: &str, text: &str) -> (f64, f64) {
    let tmp = lab.path(&format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    let before = epoch();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
    (before, epoch())
}

/// What tells the harness the change arrived.
enum Observer {
    /// bgp-sink's `UPDATE t=<ns> ... held=H` lines.
    Sink(Tail),
    /// `ip -ts monitor route` in the router namespace.
    Fib(Tail),
}

impl Observer {
    /// Wait for the VIP to be held (`announced`) or gone; the event time.
    fn wait(&mut self, lab: &Lab, procs: &[&Proc], announced: bool, timeout: Duration) -> f64 {
        let start = Instant::now();
        loop {
            check_interrupted();
            let hit = match self {
                Observer::Sink(t) => t.lines().iter().find_map(|l| {
                    let l = l.strip_prefix("UPDATE ")?;
                    let mut t = None;
                    let mut held = None;
                    for w in l.split_whitespace() {
                        if let Some(v) = w.strip_prefix("t=") {
                            t = v.parse::<u128>().ok();
                        } else if let Some(v) = w.strip_prefix("held=") {
                            held = v.parse::<u64>().ok();
                        }
                    }
                    ((held? > 0) == announced).then(|| t.map(|t| t as f64 / 1e9)).flatten()
                }),
                Observer::Fib(t) => t.lines().iter().find_map(|l| {
                    let ts = parse_ts(l)?;
                    let rest = l.split_once(']')?.1.trim_start();
                    let (deleted, rest) = match rest.strip_prefix("Deleted ") {
                        Some(r) => (true, r),
                        None => (false, rest),
                    };
                    (rest.starts_with(POOL_PREFIX) && deleted != announced).then_some(ts)
                }),
            };
            if let Some(t) = hit {
                return t;
            }
            for p in procs {
                if lab.exited(p) {
                    panic!("{} exited:\n{}", p.name, crate::lab::tail(&p.output(), 30));
                }
            }
            if start.elapsed() > timeout {
                panic!("the VIP was not {} within {timeout:?}", if announced { "announced" } else { "withdrawn" });
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

/// One latency run's samples, in milliseconds.
#[derive(Debug, Default)]
pub struct Samples {
    /// Rename to UPDATE received / FIB change.
    pub total: Vec<f64>,
    /// Rename to the agent's "configuration changed: reloading" log line
    /// (inotify + the 5 ms settle + reading the directory), when the
    /// agent logged exactly one reload per change.
    pub to_reload: Vec<f64>,
    /// That log line to UPDATE received / FIB change.
    pub after_reload: Vec<f64>,
    /// The longest `rename(2)` call (the start's uncertainty).
    pub max_rename: f64,
}

/// The agent's tracing timestamps: `2026-11-25T15:39:09.612775Z  INFO ...`.
fn reload_times(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("configuration changed: reloading"))
        .filter_map(|l| parse_ts(&format!("[{}]", l.split_whitespace().next()?.trim_end_matches('Z'))))
        .collect()
}

/// One latency run: `changes` changes of `kind` against `recv`.
pub fn run_latency(recv: ReceiverKind, kind: ChangeKind, changes: usize, bins: &Bins) -> Samples {
    let lab = Lab::named("lat", "mlat-", RCV_NS, SPK_NS, FRR_INST);
    let mut procs: Vec<Proc> = vec![];
    let mut obs = match recv {
        ReceiverKind::Sink => {
            let p = crate::daemons::start_sink(&lab, bins, &["--hold", "30", "--events"]);
            let t = Tail::open(&p.log);
            procs.push(p);
            Observer::Sink(t)
        }
        ReceiverKind::Frr => {
            // The monitor first, so that the first install shows it runs.
            let m = lab.spawn(RCV_NS, "monitor", &["ip", "-ts", "monitor", "route"], &[("TZ", "UTC")]);
            crate::daemons::start_frr_receiver(&lab);
            let t = Tail::open(&m.log);
            procs.push(m);
            Observer::Fib(t)
        }
    };
    let dir: PathBuf = lab.path("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    write_atomic(&lab, &dir, "bgp.yaml", &manifests_bgp());
    write_atomic(&lab, &dir, "services.yaml", &manifests_service(true));
    write_atomic(&lab, &dir, "slices.yaml", &manifests_slice(true));
    let state = lab.path("state");
    let agent = lab.spawn(
        SPK_NS,
        "mooring",
        &[
            bins.mooring.to_str().unwrap(),
            "standalone",
            "--node",
            "n1",
            "--config",
            dir.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
        &[("MOORING_LOG", "info"), ("NO_COLOR", "1")],
    );
    procs.push(agent);
    let watched: Vec<&Proc> = procs.iter().collect();
    // The initial announcement (session setup included).
    obs.wait(&lab, &watched, true, Duration::from_secs(40));
    // Let the session's initial exchange (End-of-RIB etc.) finish.
    crate::lab::sleep(Duration::from_millis(300));
    let reloads_before = reload_times(&procs.last().unwrap().output()).len();
    let mut out = Samples::default();
    let mut starts = Vec::with_capacity(changes);
    let mut ends = Vec::with_capacity(changes);
    let mut announced = true;
    for i in 0..changes {
        announced = !announced;
        let (t0, after) = match kind {
            ChangeKind::Endpoint => write_atomic(&lab, &dir, "slices.yaml", &manifests_slice(announced)),
            ChangeKind::Service => write_atomic(&lab, &dir, "services.yaml", &manifests_service(announced)),
        };
        let t1 = obs.wait(&lab, &watched, announced, TIMEOUT);
        let ms = (t1 - t0) * 1e3;
        if ms < 0.0 {
            panic!("change {i}: observed {:.3} ms before the rename (a stale event?)", -ms);
        }
        out.total.push(ms);
        out.max_rename = out.max_rename.max((after - t0) * 1e3);
        starts.push(t0);
        ends.push(t1);
        // A short, varying pause: the next change does not line up with
        // the agent's loop or the router's timers.
        std::thread::sleep(Duration::from_millis(10 + (i as u64 * 7) % 20));
    }
    crate::lab::sleep(Duration::from_millis(200));
    let reloads = reload_times(&procs.last().unwrap().output());
    let reloads = &reloads[reloads_before.min(reloads.len())..];
    if reloads.len() == changes {
        for ((r, s), e) in reloads.iter().zip(&starts).zip(&ends) {
            out.to_reload.push((r - s) * 1e3);
            out.after_reload.push((e - r) * 1e3);
        }
    } else {
        eprintln!("    (the agent logged {} reloads for {changes} changes: no breakdown)", reloads.len());
    }
    out
}

/// The q-quantile (nearest rank) of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}
