//! Issue 20: cluster scale through a mock API server (`--bench cluster`).
//!
//! `kube-mock` (benches/src/bin/kube-mock) serves a synthetic cluster over
//! plain HTTP on loopback — full size 10k LoadBalancer Services (half
//! Local, addresses in status from 100.64.0.0/17, every 10th dual-stack),
//! 30k EndpointSlices (3 per Service, 5 endpoints each, with managed
//! fields, labels, target refs), 1k real-sized Nodes (image list,
//! conditions, node info, managed fields), one BgpConf, one BgpPeer, two
//! Eips and the Namespaces — with lists, watches and counted writes.
//! No namespaces or routing daemons: everything runs on loopback.
//!
//! A. `mooring speaker --node node-0` with a kubeconfig naming the mock
//!    peers with `bgp-sink --events` on 127.0.0.1. Measured: start → the
//!    sink holds every route node-0 announces; VmHWM after the initial
//!    lists and VmRSS after settling; CPU (utime+stime, above idle) for
//!    scripted EndpointSlice MODIFIED events that touch none of node-0's
//!    routes; the latency of single changes → UPDATE at the sink (node-0's
//!    one endpoint of a Local Service turning unready/ready; a Service's
//!    status address moving), p50/p99.
//! B. `mooring controller` against the same cluster without any address
//!    in status: start → every Service's status written; the writes at
//!    start by kind; a quiet period (writes besides the Lease: 0); a new
//!    Service at a time (writes: its status, its Event, the pool's
//!    status); an unrelated annotation change (writes: 0).
//!
//! Sizes: full as above; `--quick` 1k Services, 100 Nodes, 200 changes
//! (under a minute). `--cluster-services`, `--cluster-nodes` override.
//! This file holds the settings and the run; scenario.rs the processes and
//! the mock's control client, driver.rs the measurements, report.rs the
//! tables (a pure function).

mod driver;
mod report;
mod scenario;

use std::time::Duration;

use crate::common::Bins;
use crate::Opts;

pub fn sizes(o: &Opts) -> report::Sizes {
    let q = o.quick;
    report::Sizes {
        services: o.cluster_services.unwrap_or(if q { 1000 } else { 10_000 }),
        slices_per_service: 3,
        endpoints_per_slice: 5,
        nodes: o.cluster_nodes.unwrap_or(if q { 100 } else { 1000 }),
        churn: if q { 200 } else { 1000 },
        churn_rate: 100,
        changes: o.changes.map(|c| c as usize).unwrap_or(if q { 100 } else { 200 }),
        controller_changes: if q { 3 } else { 10 },
        settle: Duration::from_secs(if q { 2 } else { 5 }),
        idle: Duration::from_secs(if q { 2 } else { 5 }),
        quiet: Duration::from_secs(if q { 5 } else { 35 }),
    }
}

/// Why the benchmark cannot run here: a binary missing (it needs neither
/// root nor the lab's daemons).
pub fn unavailable(bins: &Bins) -> Option<String> {
    let missing: Vec<String> = [bins.mooring.clone(), bins.sink.clone(), scenario::kube_mock(bins)]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "missing: {} (build: cargo build --release -p mooring-agent --bin mooring -p mooring-benches --bins)",
            missing.join(", ")
        )
    })
}

/// The benchmark: false when a target was missed.
pub fn run(o: &Opts, bins: &Bins) -> bool {
    let z = sizes(o);
    let dir = std::env::temp_dir().join(format!("mooring-cluster-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let started = std::time::Instant::now();
    eprintln!("cluster A (speaker): {} Services, {} Nodes", z.services, z.nodes);
    let s = driver::speaker(&z, bins, &dir);
    eprintln!("cluster B (controller)");
    let c = driver::controller(&z, bins, &dir);
    print!("{}", report::report(&z, Some(&s), Some(&c)));
    println!(
        "\nCluster: targets steady RSS ≤ {} MiB and change → UPDATE p99 ≤ {} ms ({:.0} s; logs in {}).",
        report::RSS_TARGET_MIB,
        report::P99_TARGET_MS,
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    report::met(&s)
}
