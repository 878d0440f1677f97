//! The cluster benchmark's sizes, figures and tables (a pure function of them).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::common::quantile;

#[derive(Debug, Clone)]
pub struct Sizes {
    pub services: u32,
    pub slices_per_service: u32,
    pub endpoints_per_slice: u32,
    pub nodes: u32,
    /// Scripted EndpointSlice changes, and how many per second (0: at once).
    pub churn: u32,
    pub churn_rate: u32,
    /// Single changes timed per kind.
    pub changes: usize,
    pub controller_changes: usize,
    pub settle: Duration,
    pub idle: Duration,
    pub quiet: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct SpeakerRun {
    pub json_mb: f64,
    pub routes: u32,
    /// Start → the sink holds every route (s).
    pub initial: f64,
    /// KiB.
    pub hwm_initial: u64,
    pub hwm: u64,
    pub rss_steady: u64,
    pub rss_end: u64,
    pub idle_pct: f64,
    pub churn_changes: u64,
    pub churn_seconds: f64,
    /// CPU seconds for the changes, and above idle (idle CPU times the window).
    pub churn_cpu_total: f64,
    pub churn_cpu: f64,
    pub churn_updates: usize,
    pub endpoint_ms: Vec<f64>,
    pub service_ms: Vec<f64>,
    /// Writes the speaker made (its BgpPeer status entry).
    pub api_writes: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ControllerRun {
    pub allocate: f64,
    pub start_writes: BTreeMap<String, u64>,
    pub hwm: u64,
    pub rss: u64,
    pub quiet_secs: f64,
    pub quiet_cpu_pct: f64,
    pub quiet_writes: usize,
    pub quiet_lease_writes: usize,
    pub change_ms: Vec<f64>,
    pub change_writes: Vec<Vec<String>>,
    /// Writes of a change to objects the change did not concern.
    pub change_foreign: usize,
    pub noop_writes: usize,
}

fn q(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    quantile(&s, p)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Target: steady RSS ≤ 64 MiB, change → UPDATE p99 ≤ 20 ms.
pub const RSS_TARGET_MIB: f64 = 64.0;
pub const P99_TARGET_MS: f64 = 20.0;

/// Whether the speaker met its targets.
pub fn met(s: &SpeakerRun) -> bool {
    mib(s.rss_steady) <= RSS_TARGET_MIB
        && q(&s.endpoint_ms, 0.99) <= P99_TARGET_MS
        && q(&s.service_ms, 0.99) <= P99_TARGET_MS
}

pub fn report(z: &Sizes, s: Option<&SpeakerRun>, c: Option<&ControllerRun>) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "\n## Cluster scale: {} Services (half Local), {} EndpointSlices x {} endpoints, {} Nodes",
        z.services,
        z.services * z.slices_per_service,
        z.endpoints_per_slice,
        z.nodes
    );
    if let Some(s) = s {
        let ok = |b: bool| if b { "" } else { " (target missed)" };
        let _ = writeln!(o, "\nSpeaker `mooring speaker --node node-0` ({:.0} MB of JSON in the mock):\n", s.json_mb);
        let _ = writeln!(o, "| measurement | value |\n|---|---|");
        let _ = writeln!(o, "| start → {} routes at the sink | {:.2} s |", s.routes, s.initial);
        let _ = writeln!(o, "| peak RSS (VmHWM) after the initial lists | {:.1} MiB |", mib(s.hwm_initial));
        let _ = writeln!(
            o,
            "| steady RSS ({:.0} s after) | {:.1} MiB{} |",
            z.settle.as_secs_f64(),
            mib(s.rss_steady),
            ok(mib(s.rss_steady) <= RSS_TARGET_MIB)
        );
        let _ = writeln!(o, "| peak RSS over the whole run | {:.1} MiB |", mib(s.hwm));
        let _ = writeln!(o, "| idle CPU | {:.2} % |", s.idle_pct);
        let per_1k = if s.churn_changes > 0 { s.churn_cpu * 1000.0 / s.churn_changes as f64 } else { f64::NAN };
        let _ = writeln!(
            o,
            "| CPU for {} EndpointSlice changes ({}/s, {:.1} s + 1 s): total, above idle (per 1k) | {:.2} s, {:.2} s ({:.2} s); {} UPDATEs |",
            s.churn_changes,
            if z.churn_rate == 0 { "all at once".to_string() } else { z.churn_rate.to_string() },
            s.churn_seconds,
            s.churn_cpu_total,
            s.churn_cpu,
            per_1k,
            s.churn_updates
        );
        for (name, v) in [("endpoint ready ↔ unready", &s.endpoint_ms), ("Service address moved", &s.service_ms)] {
            let _ = writeln!(
                o,
                "| {name} → UPDATE, p50 / p99 / max over {} | {:.1} / {:.1} / {:.1} ms{} |",
                v.len(),
                q(v, 0.5),
                q(v, 0.99),
                q(v, 1.0),
                ok(q(v, 0.99) <= P99_TARGET_MS)
            );
        }
        let _ = writeln!(o, "| RSS at the end | {:.1} MiB |", mib(s.rss_end));
        let _ = writeln!(o, "| API writes by the speaker (its BgpPeer status entry) | {} |", s.api_writes);
    }
    if let Some(c) = c {
        let _ = writeln!(o, "\nController `mooring controller` (no Service has an address at start):\n");
        let _ = writeln!(o, "| measurement | value |\n|---|---|");
        let _ = writeln!(o, "| start → every Service's status written | {:.2} s |", c.allocate);
        let writes: Vec<String> = c.start_writes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(o, "| writes at start (Lease aside) | {} |", writes.join(", "));
        let _ = writeln!(o, "| peak / steady RSS | {:.1} / {:.1} MiB |", mib(c.hwm), mib(c.rss));
        let _ = writeln!(
            o,
            "| quiet {:.0} s: writes (Lease aside), CPU | {} ({} Lease writes), {:.2} % |",
            c.quiet_secs, c.quiet_writes, c.quiet_lease_writes, c.quiet_cpu_pct
        );
        let per: Vec<usize> = c.change_writes.iter().map(|w| w.len()).collect();
        let _ = writeln!(
            o,
            "| a new Service: writes per change (status, Event, Eip status) | {:?}; {} to other objects |",
            per, c.change_foreign
        );
        let _ = writeln!(
            o,
            "| a new Service → its status written, p50 / max over {} | {:.0} / {:.0} ms |",
            c.change_ms.len(),
            q(&c.change_ms, 0.5),
            q(&c.change_ms, 1.0)
        );
        let _ = writeln!(o, "| an unrelated annotation changed: writes | {} |", c.noop_writes);
        if let Some(w) = c.change_writes.first() {
            let _ = writeln!(o, "\nThe first new Service's writes: {}", w.join("; "));
        }
    }
    o
}
