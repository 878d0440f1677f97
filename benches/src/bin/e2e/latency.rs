//! Change latency (issue 6, benchmark 3), in a [`Lab::pair`] (id 45):
//! `mooring standalone --node n1 --config DIR` on the node peers with a
//! router (sink or FRR); the harness flips the only endpoint of a
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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mooring_lab::{check_interrupted, epoch, parse_ts, tail, Follow, Lab, Node, Proc, RouteMonitor};

use crate::common::{quantile, Bins, RECEIVER_AS, SPEAKER_AS};
use crate::receivers::{start_frr, start_sink};
use crate::throughput::ReceiverKind;
use crate::Opts;

/// The lab id of the latency benchmark.
const LAB_ID: u8 = 45;

/// The agent's debounce after the first change event (agent/src/standalone).
pub const DEBOUNCE_MS: f64 = 5.0;
const TIMEOUT: Duration = Duration::from_secs(5);
/// The pool: the Local Service gets the first address.
const POOL_PREFIX: &str = "203.0.113.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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

fn manifests_bgp(router: &str, node: &str) -> String {
    format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: {SPEAKER_AS}}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\n\
         spec: {{peerAddress: {router}, peerAs: {RECEIVER_AS}, holdTime: 30s, families: [ipv4-unicast]}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: pool}}\n\
         spec: {{address: {POOL_PREFIX}100-{POOL_PREFIX}110}}\n---\n\
         apiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\nstatus: {{addresses: [{{type: InternalIP, address: {node}}}]}}\n"
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
    Sink(Follow),
    /// `ip -ts monitor route` in the router namespace.
    Fib(RouteMonitor),
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
                Observer::Fib(m) => {
                    m.events().iter().find(|e| e.dst.starts_with(POOL_PREFIX) && e.deleted != announced).map(|e| e.t)
                }
            };
            if let Some(t) = hit {
                return t;
            }
            for p in procs {
                if lab.exited(p) {
                    panic!("{} exited:\n{}", p.name, tail(&p.output(), 30));
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
    let (lab, spk): (Lab, Node) = Lab::pair(LAB_ID, "spk");
    let mut procs: Vec<Proc> = vec![];
    let mut obs = match recv {
        ReceiverKind::Sink => {
            let p = start_sink(&lab, bins, &["--hold", "30", "--events"]);
            let t = p.follow();
            procs.push(p);
            Observer::Sink(t)
        }
        ReceiverKind::Frr => {
            // The monitor first, so that the first install shows it runs.
            let m = RouteMonitor::start(&lab, &lab.router);
            procs.push(m.proc.clone());
            start_frr(&lab, &spk);
            Observer::Fib(m)
        }
    };
    let dir: PathBuf = lab.path("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    write_atomic(&lab, &dir, "bgp.yaml", &manifests_bgp(&lab.router_v4, &spk.v4));
    write_atomic(&lab, &dir, "services.yaml", &manifests_service(true));
    write_atomic(&lab, &dir, "slices.yaml", &manifests_slice(true));
    let state = lab.path("state");
    let mut args = vec!["--state-dir", state.to_str().unwrap()];
    if kind == ChangeKind::Endpoint {
        // Toggling one endpoint every few ms is a flap by design: damping
        // (on by default) would rightly hold the path back after the second.
        // A Service deleted and created again is not a flap: defaults there.
        args.extend(["--flap-damping", "false"]);
    }
    let agent = lab.mooring_standalone(&spk.ns, "mooring", "n1", &dir, &args);
    procs.push(agent);
    let watched: Vec<&Proc> = procs.iter().collect();
    // The initial announcement (session setup included).
    obs.wait(&lab, &watched, true, Duration::from_secs(40));
    // Let the session's initial exchange (End-of-RIB etc.) finish.
    mooring_lab::sleep(Duration::from_millis(300));
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
    mooring_lab::sleep(Duration::from_millis(200));
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

/// The whole benchmark; false when a target was missed.
pub fn bench(o: &Opts, bins: &Bins) -> bool {
    let mut rows = vec![];
    for &recv in &o.receivers {
        for kind in o.kinds() {
            let t = Instant::now();
            let mut smp = run_latency(recv, kind, o.changes(), bins);
            let v = &mut smp.total;
            v.sort_by(|a, b| a.total_cmp(b));
            let q = |x| quantile(v, x);
            eprintln!(
                "  latency {} / {}: {} changes in {:.1} s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                recv.name(),
                kind.name(),
                v.len(),
                t.elapsed().as_secs_f64(),
                q(0.5),
                q(0.99),
                q(1.0)
            );
            let mut split = String::new();
            for (what, w) in
                [("rename → agent reload", &mut smp.to_reload), ("reload → observed", &mut smp.after_reload)]
            {
                if !w.is_empty() {
                    w.sort_by(|a, b| a.total_cmp(b));
                    let q = |x| quantile(w, x);
                    split += &format!("{what}: p50 {:.2} / p99 {:.2} / max {:.2}; ", q(0.5), q(0.99), q(1.0));
                }
            }
            split += &format!("longest rename(2) {:.3}", smp.max_rename);
            eprintln!("    {split}");
            rows.push((recv, kind, v.len(), q(0.0), q(0.5), q(0.99), q(1.0), split));
        }
    }
    let d = DEBOUNCE_MS;
    println!("\n### Change latency: manifest rename to UPDATE received (sink) / kernel FIB change (FRR)\n");
    println!(
        "| observed at | change | changes | min ms | p50 ms | p99 ms | max ms | p99 minus the {d:.0} ms debounce | \
         split (ms, from the agent's log) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (recv, kind, n, min, p50, p99, max, split) in &rows {
        let at = match recv {
            ReceiverKind::Sink => "wire (bgp-sink)",
            ReceiverKind::Frr => "FRR kernel FIB",
        };
        println!(
            "| {at} | {} | {n} | {min:.2} | {p50:.2} | {p99:.2} | {max:.2} | {:.2} | {split} |",
            kind.name(),
            p99 - d
        );
    }
    println!("\n### Targets (change latency)\n");
    let mut all_met = true;
    for (recv, kind, _, _, _, p99, _, _) in &rows {
        if *recv == ReceiverKind::Sink {
            let ok = *p99 <= 20.0;
            all_met &= ok;
            println!(
                "- {}: p99 ≤ 20 ms to the wire (got {p99:.2} ms, of which {d:.0} ms is the agent's debounce): {}",
                kind.name(),
                if ok { "met" } else { "MISSED" }
            );
        }
    }
    all_met
}
