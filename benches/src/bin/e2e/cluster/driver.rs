//! The cluster measurements: the speaker (initial list → routes at the
//! sink, peak and steady RSS, CPU for scripted EndpointSlice changes,
//! change → UPDATE latency) and the controller (allocation of every
//! Service, API writes at start, per change and while nothing changes).

use std::path::Path;
use std::time::{Duration, Instant};

use mooring_lab::procfs::{cpu, cpu_between, mem};
use mooring_lab::{epoch, poll_every, sleep, Follow};
use serde_json::json;

use super::report::{ControllerRun, Sizes, SpeakerRun};
use super::scenario::{free_port, Mock, Running};
use crate::common::{Bins, RECEIVER_AS};

/// The value of `key=` in a line.
fn kv(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

// The synthetic cluster's layout (benches/src/bin/kube-mock/objects.rs).
fn local(i: u32) -> bool {
    i % 2 == 1
}
fn designated(i: u32) -> bool {
    i % 40 == 1
}
fn namespace(i: u32) -> String {
    format!("ns-{}", i % 100)
}
fn v4(n: u32) -> String {
    std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(100, 64, 0, 0)) + n + 1).to_string()
}

/// The IPv4 routes node-0 announces: every Cluster Service, and the Local
/// ones with its one endpoint (the peer takes IPv4 only).
pub fn expected_routes(services: u32) -> u32 {
    (0..services).filter(|&i| !local(i) || designated(i)).count() as u32
}

/// Wait for the next UPDATE line of the sink; its receive time (s).
fn next_update(f: &mut Follow, timeout: Duration) -> f64 {
    let t = Instant::now();
    loop {
        if let Some(l) = f.lines().into_iter().find(|l| l.starts_with("UPDATE ")) {
            return kv(&l, "t") / 1e9;
        }
        assert!(t.elapsed() < timeout, "no UPDATE at the sink within {timeout:?}");
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn speaker_args(metrics: u16) -> Vec<String> {
    ["speaker", "--node", "node-0", "--metrics-addr", &format!("127.0.0.1:{metrics}"), "--flap-damping", "false"]
        .map(String::from)
        .to_vec()
}

/// The speaker on node-0 against the whole cluster.
pub fn speaker(z: &Sizes, bins: &Bins, dir: &Path) -> SpeakerRun {
    let port = free_port();
    let mock = Mock::start(bins, dir, z, true, port);
    let expected = expected_routes(z.services);
    let sink_args: Vec<String> = [
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--as",
        &RECEIVER_AS.to_string(),
        "--count",
        &expected.to_string(),
        "--stay",
        "--events",
    ]
    .map(String::from)
    .to_vec();
    let sink = Running::start(dir, "bgp-sink", &bins.sink, &sink_args, &[]);
    sink.proc.wait_line("LISTENING", Duration::from_secs(10));
    let kubeconfig = mock.kubeconfig(dir);
    let env = [("KUBECONFIG", kubeconfig.display().to_string()), ("RUST_LOG", "warn".to_string())];
    let t0 = epoch();
    let mut spk = Running::start(dir, "speaker", &bins.mooring, &speaker_args(free_port()), &env);
    let pid = spk.pid();
    let line = sink.proc.wait_line("RESULT", Duration::from_secs(600));
    let mut r = SpeakerRun { json_mb: mock.json_bytes as f64 / 1e6, routes: expected, ..SpeakerRun::default() };
    r.initial = kv(&line, "t") / 1e9 - t0;
    r.hwm_initial = mem(pid).hwm;
    eprintln!(
        "  speaker: {expected} routes at the sink {:.2} s after start, VmHWM {} MiB",
        r.initial,
        r.hwm_initial / 1024
    );

    // Settle, then steady RSS and idle CPU.
    sleep(z.settle);
    let (a, t) = (cpu(pid), Instant::now());
    sleep(z.idle);
    let b = cpu(pid);
    let idle_rate = cpu_between(&a, &b) / t.elapsed().as_secs_f64();
    r.idle_pct = 100.0 * idle_rate;
    r.rss_steady = mem(pid).rss;

    // Scripted EndpointSlice changes (none touches node-0's routes).
    let mut f = sink.proc.follow();
    let (a, t) = (cpu(pid), Instant::now());
    let churn = mock.request("POST", &format!("/mock/churn?n={}&per_sec={}", z.churn, z.churn_rate), "");
    sleep(Duration::from_secs(1));
    let b = cpu(pid);
    let window = t.elapsed().as_secs_f64();
    r.churn_changes = churn["changes"].as_u64().unwrap_or(0);
    r.churn_seconds = churn["seconds"].as_f64().unwrap_or(0.0);
    r.churn_cpu_total = cpu_between(&a, &b);
    r.churn_cpu = r.churn_cpu_total - idle_rate * window;
    r.churn_updates = f.lines().iter().filter(|l| l.starts_with("UPDATE ")).count();
    r.hwm = mem(pid).hwm;
    eprintln!(
        "  speaker: {} EndpointSlice changes in {:.1} s: {:.2} s CPU above idle, {} UPDATEs",
        r.churn_changes, r.churn_seconds, r.churn_cpu, r.churn_updates
    );

    // Latency: node-0's one endpoint of a Local Service ready ↔ unready.
    let slices = "/apis/discovery.k8s.io/v1/namespaces";
    let designated: Vec<u32> = (0..z.services).filter(|&i| designated(i)).collect();
    let mut ready = vec![true; designated.len()];
    let timeout = Duration::from_secs(10);
    for j in 0..z.changes {
        let d = j % designated.len();
        let i = designated[d];
        ready[d] = !ready[d];
        f.skip();
        let path = format!("{slices}/{}/endpointslices/svc-{i}-0", namespace(i));
        let t = epoch();
        mock.set(&path, "/endpoints/0/conditions/ready", &json!(ready[d]));
        r.endpoint_ms.push((next_update(&mut f, timeout) - t) * 1e3);
    }
    // Restore, so the Service changes below start from the full table.
    for (d, &i) in designated.iter().enumerate() {
        if !ready[d] {
            let path = format!("{slices}/{}/endpointslices/svc-{i}-0", namespace(i));
            mock.set(&path, "/endpoints/0/conditions/ready", &json!(true));
        }
    }
    sleep(Duration::from_millis(500));
    // Latency: a Cluster Service's address moves (status), and back.
    let cluster: Vec<u32> = (0..z.services).filter(|&i| !local(i)).take(50).collect();
    let mut moved = vec![false; cluster.len()];
    for j in 0..z.changes {
        let c = j % cluster.len();
        let i = cluster[c];
        moved[c] = !moved[c];
        let ip = if moved[c] { v4(z.services + 1 + c as u32) } else { v4(i) };
        f.skip();
        let path = format!("/api/v1/namespaces/{}/services/svc-{i}", namespace(i));
        let t = epoch();
        mock.set(&path, "/status/loadBalancer/ingress/0/ip", &json!(ip));
        r.service_ms.push((next_update(&mut f, timeout) - t) * 1e3);
    }
    r.hwm = r.hwm.max(mem(pid).hwm);
    r.rss_end = mem(pid).rss;
    r.api_writes = mock.writes(0).1;
    assert!(spk.alive(), "the speaker exited:\n{}", mooring_lab::tail(&spk.proc.output(), 40));
    spk.stop(Duration::from_secs(5));
    r
}

/// Non-Lease writes of a list.
fn not_leases(w: &[String]) -> Vec<&String> {
    w.iter().filter(|w| !w.contains("/leases")).collect()
}

/// The controller allocating for the whole cluster (no Service has an address yet).
pub fn controller(z: &Sizes, bins: &Bins, dir: &Path) -> ControllerRun {
    let mock = Mock::start(bins, dir, z, false, 179);
    let kubeconfig = mock.kubeconfig(dir);
    let env = [("KUBECONFIG", kubeconfig.display().to_string()), ("RUST_LOG", "warn".to_string())];
    let args: Vec<String> = [
        "controller",
        "--metrics-addr",
        &format!("127.0.0.1:{}", free_port()),
        "--lease-namespace",
        "mooring-system",
        "--identity",
        "bench-0",
    ]
    .map(String::from)
    .to_vec();
    let t0 = Instant::now();
    let mut ctl = Running::start(dir, "controller", &bins.mooring, &args, &env);
    let pid = ctl.pid();
    let n = z.services as u64;
    let mut r = ControllerRun::default();
    poll_every(
        "the controller writes every Service's status",
        Duration::from_secs(900),
        Duration::from_millis(50),
        || {
            let st = mock.get("/mock/stats");
            (st["by_kind"]["PATCH services/status"].as_u64().unwrap_or(0) >= n).then_some(())
        },
    );
    r.allocate = t0.elapsed().as_secs_f64();
    // Until the writes stop (Eip status follows the Services).
    let mut last = (0, Instant::now());
    poll_every("the controller's start writes to end", Duration::from_secs(300), Duration::from_millis(100), || {
        let (w, _) = mock.writes(0);
        let k = not_leases(&w).len();
        if k != last.0 {
            last = (k, Instant::now());
        }
        (last.1.elapsed() > Duration::from_secs(2)).then_some(())
    });
    let st = mock.get("/mock/stats");
    r.start_writes = st["by_kind"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !k.contains("leases"))
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect();
    r.hwm = mem(pid).hwm;
    r.rss = mem(pid).rss;
    eprintln!("  controller: {} Services allocated in {:.2} s; writes {:?}", n, r.allocate, r.start_writes);

    // Quiet: nothing changes, nothing is written (the Lease aside).
    let (_, from) = mock.writes(0);
    let (a, t) = (cpu(pid), Instant::now());
    sleep(z.quiet);
    let b = cpu(pid);
    let (w, _) = mock.writes(from);
    r.quiet_secs = t.elapsed().as_secs_f64();
    r.quiet_cpu_pct = 100.0 * cpu_between(&a, &b) / r.quiet_secs;
    r.quiet_writes = not_leases(&w).len();
    r.quiet_lease_writes = w.len() - r.quiet_writes;

    // One new Service at a time: its status, its Event and the pool's status.
    for j in 0..z.controller_changes {
        let name = format!("svc-new-{j}");
        let (_, from) = mock.writes(0);
        let t = Instant::now();
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "ns-0"},
                         "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}});
        mock.create("/api/v1/namespaces/ns-0/services", &svc);
        let status = format!("/api/v1/namespaces/ns-0/services/{name}/status");
        poll_every(&format!("status of {name}"), Duration::from_secs(60), Duration::from_millis(2), || {
            mock.writes(from).0.iter().any(|w| w.ends_with(&status)).then_some(())
        });
        r.change_ms.push(t.elapsed().as_secs_f64() * 1e3);
        sleep(Duration::from_millis(1500));
        let (w, _) = mock.writes(from);
        let w: Vec<String> = not_leases(&w).into_iter().cloned().collect();
        let ours = |p: &String| {
            p.ends_with(&status) || p.contains("/eips/pool-v4/status") || p.contains("/namespaces/ns-0/events")
        };
        r.change_foreign += w.iter().filter(|p| !ours(p)).count();
        r.change_writes.push(w);
    }
    // A change that moves no address (an unrelated annotation): no write.
    let (_, from) = mock.writes(0);
    mock.set("/api/v1/namespaces/ns-1/services/svc-1", "/metadata/annotations/prometheus.io~1port", &json!("9091"));
    sleep(Duration::from_millis(1500));
    r.noop_writes = not_leases(&mock.writes(from).0).len();
    assert!(ctl.alive(), "the controller exited:\n{}", mooring_lab::tail(&ctl.proc.output(), 40));
    ctl.stop(Duration::from_secs(5));
    r
}
