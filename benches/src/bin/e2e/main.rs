//! End-to-end benchmarks of issue 6 in network namespaces (as root).
//!
//! `benches/e2e.sh [--quick]` builds and runs this; see benches/README.md.
//!
//! Announce throughput: a speaker (Mooring, GoBGP, BIRD) announces N
//! unique /32s sharing one attribute set to one receiver (our counting
//! sink, FRR); time from session Established to the receiver holding all N.
//!
//! Change latency (`--bench latency`, latency.rs): `mooring standalone`
//! and a manifest change by atomic rename; time until the UPDATE reaches
//! the sink, or the route changes in FRR's kernel FIB.
//!
//! With `CI=true`, missing root or daemons is an error; otherwise the run is
//! skipped with the reason (exit status 0).

mod daemons;
mod failover;
mod lab;
mod latency;
mod procfs;
mod receive;
mod scale;

use std::collections::BTreeMap;

use daemons::{Bins, ReceiverKind, SpeakerKind};
use latency::ChangeKind;

pub(crate) struct Opts {
    pub(crate) quick: bool,
    pub(crate) sizes: Vec<u32>,
    pub(crate) reps: usize,
    pub(crate) speakers: Vec<SpeakerKind>,
    pub(crate) receivers: Vec<ReceiverKind>,
    pub(crate) throughput: bool,
    pub(crate) latency: bool,
    pub(crate) changes: usize,
    pub(crate) kinds: Vec<ChangeKind>,
    /// Benchmark 2 (receive.rs), with its default sizes.
    pub(crate) receive: bool,
    /// Benchmark 4 (failover.rs).
    pub(crate) failover: bool,
    /// Benchmark 5 (scale.rs).
    pub(crate) scale: bool,
    /// Benchmark 5: VIPs and peers of the fan-out, speakers of the fan-in
    /// (default: the mode's sizes).
    pub(crate) scale_vips: Option<u32>,
    pub(crate) scale_peers: Option<u32>,
    pub(crate) scale_nodes: Option<u32>,
}

fn usage() -> ! {
    eprintln!(
        "usage: e2e [--quick] [--bench throughput,receive,latency,failover,scale] [--sizes 10000,100000] [--reps N] \
         [--speakers mooring,gobgp,bird] [--receivers sink,frr] [--changes N] [--kinds endpoint,service] \
         [--scale-vips N] [--scale-peers N] [--scale-nodes N]"
    );
    std::process::exit(2)
}

fn parse() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = Opts {
        quick,
        sizes: if quick { vec![10_000, 100_000] } else { vec![10_000, 100_000, 1_000_000] },
        reps: if quick { 1 } else { 3 },
        speakers: vec![SpeakerKind::Mooring, SpeakerKind::GoBgp, SpeakerKind::Bird],
        receivers: vec![ReceiverKind::Sink, ReceiverKind::Frr],
        throughput: true,
        latency: true,
        changes: if quick { 30 } else { 200 },
        kinds: if quick { vec![ChangeKind::Endpoint] } else { vec![ChangeKind::Endpoint, ChangeKind::Service] },
        receive: true,
        failover: true,
        scale: true,
        scale_vips: None,
        scale_peers: None,
        scale_nodes: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || it.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "--quick" => {}
            "--sizes" => o.sizes = v().split(',').map(|s| s.parse().unwrap_or_else(|_| usage())).collect(),
            "--reps" => o.reps = v().parse().unwrap_or_else(|_| usage()),
            "--changes" => o.changes = v().parse().unwrap_or_else(|_| usage()),
            "--scale-vips" => o.scale_vips = Some(v().parse().unwrap_or_else(|_| usage())),
            "--scale-peers" => o.scale_peers = Some(v().parse().unwrap_or_else(|_| usage())),
            "--scale-nodes" => o.scale_nodes = Some(v().parse().unwrap_or_else(|_| usage())),
            "--bench" => {
                let b = v();
                o.throughput = false;
                o.latency = false;
                o.receive = false;
                o.failover = false;
                o.scale = false;
                for x in b.split(',') {
                    match x {
                        "throughput" => o.throughput = true,
                        "latency" => o.latency = true,
                        "receive" => o.receive = true,
                        "failover" => o.failover = true,
                        "scale" => o.scale = true,
                        _ => usage(),
                    }
                }
            }
            "--kinds" => {
                o.kinds = v()
                    .split(',')
                    .map(|s| match s {
                        "endpoint" => ChangeKind::Endpoint,
                        "service" => ChangeKind::Service,
                        _ => usage(),
                    })
                    .collect()
            }
            "--speakers" => {
                o.speakers = v()
                    .split(',')
                    .map(|s| match s {
                        "mooring" => SpeakerKind::Mooring,
                        "gobgp" => SpeakerKind::GoBgp,
                        "bird" => SpeakerKind::Bird,
                        _ => usage(),
                    })
                    .collect()
            }
            "--receivers" => {
                o.receivers = v()
                    .split(',')
                    .map(|s| match s {
                        "sink" => ReceiverKind::Sink,
                        "frr" => ReceiverKind::Frr,
                        _ => usage(),
                    })
                    .collect()
            }
            _ => usage(),
        }
    }
    o
}

/// Why the benchmarks cannot run here, if they cannot.
fn unavailable(bins: &Bins) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("the e2e benchmarks need root (network namespaces): run benches/e2e.sh with sudo".into());
    }
    // nft and python3: the failover benchmark's blackhole and UDP stream.
    let need = [
        "ip",
        "gobgpd",
        "gobgp",
        "bird",
        "birdc",
        "vtysh",
        "tshark",
        "/usr/lib/frr/bgpd",
        "/usr/lib/frr/zebra",
        "nft",
        "python3",
    ];
    let mut missing: Vec<String> =
        need.iter().filter(|b| lab::find_program(b).is_none()).map(|b| b.to_string()).collect();
    for p in [&bins.mooring, &bins.sink, &bins.recv, &bins.replay] {
        if !p.exists() {
            missing.push(format!("{} (build: cargo build --release -p mooring-agent -p mooring-benches)", p.display()));
        }
    }
    if !missing.is_empty() {
        return Some(format!("missing: {} (Debian: frr gobgpd bird2 tshark iproute2)", missing.join(", ")));
    }
    None
}

/// The benchmarks cannot run here: with `CI=true` that is an error (exit
/// 1); otherwise say why and return (exit status 0).
pub(crate) fn skip(reason: &str) {
    if std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false) {
        eprintln!("ERROR: the e2e benchmarks cannot run with CI=true: {reason}");
        std::process::exit(1);
    }
    println!("SKIP: {reason}");
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub(crate) fn human(n: u32) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1000 && n % 1000 == 0 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

pub(crate) fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else {
        format!("{:.0} k/s", r / 1e3)
    }
}

/// Median seconds, every run's seconds, the largest FRR poll interval (ms).
type RunSet = (f64, Vec<f64>, Option<f64>);

fn throughput(o: &Opts, bins: &Bins) -> bool {
    // (receiver, n, speaker) -> (median seconds, all runs, max poll ms)
    let mut results: BTreeMap<(usize, u32, usize), RunSet> = BTreeMap::new();
    for (ri, &recv) in o.receivers.iter().enumerate() {
        for &n in &o.sizes {
            for (si, &spk) in o.speakers.iter().enumerate() {
                let mut runs = vec![];
                let mut poll: Option<f64> = None;
                for rep in 0..o.reps {
                    let m = daemons::run_one(spk, recv, n, bins);
                    eprintln!(
                        "  {} -> {} N={} run {}: {:.4} s ({}){}",
                        spk.name(),
                        recv.name(),
                        human(n),
                        rep + 1,
                        m.seconds,
                        rate(n as f64 / m.seconds),
                        m.poll_ms.map(|p| format!(", last poll interval {p:.0} ms")).unwrap_or_default()
                    );
                    runs.push(m.seconds);
                    if let Some(p) = m.poll_ms {
                        poll = Some(poll.unwrap_or(0f64).max(p));
                    }
                }
                let med = median(&mut runs.clone());
                results.insert((ri, n, si), (med, runs, poll));
            }
        }
    }

    println!("\n### Announce throughput (median of {} run(s))\n", o.reps);
    println!("| receiver | N | speaker | seconds | prefixes/s | Mooring/this | runs (s) |");
    println!("|---|---|---|---|---|---|---|");
    let mooring = o.speakers.iter().position(|&s| s == SpeakerKind::Mooring);
    for ((ri, n, si), (med, runs, poll)) in &results {
        let ratio = match mooring {
            Some(m) if m != *si => {
                results.get(&(*ri, *n, m)).map(|(mm, ..)| format!("{:.1}×", med / mm)).unwrap_or_default()
            }
            _ => String::new(),
        };
        let runs: Vec<String> = runs.iter().map(|r| format!("{r:.3}")).collect();
        let poll = poll.map(|p| format!(" (poll ≤{p:.0} ms)")).unwrap_or_default();
        println!(
            "| {} | {} | {} | {med:.4}{poll} | {} | {ratio} | {} |",
            o.receivers[*ri].name(),
            human(*n),
            o.speakers[*si].name(),
            rate(*n as f64 / med),
            runs.join(", ")
        );
    }

    // Targets.
    println!("\n### Targets\n");
    let sec = |r: ReceiverKind, n: u32, s: SpeakerKind| {
        let ri = o.receivers.iter().position(|&x| x == r)?;
        let si = o.speakers.iter().position(|&x| x == s)?;
        results.get(&(ri, n, si)).map(|x| x.0)
    };
    let mut all_met = true;
    for &n in &o.sizes {
        let m = sec(ReceiverKind::Sink, n, SpeakerKind::Mooring);
        let mut check = |what: String, ok: Option<bool>| {
            let verdict = match ok {
                Some(true) => "met",
                Some(false) => {
                    all_met = false;
                    "MISSED"
                }
                None => "not measured",
            };
            println!("- N={}: {what}: {verdict}", human(n));
        };
        let g = sec(ReceiverKind::Sink, n, SpeakerKind::GoBgp);
        let b = sec(ReceiverKind::Sink, n, SpeakerKind::Bird);
        let ratio = |x: Option<f64>| x.zip(m).map(|(x, m)| x / m);
        check(
            format!(
                "Mooring ≥ 10× GoBGP into the sink (got {})",
                ratio(g).map(|r| format!("{r:.1}×")).unwrap_or("-".into())
            ),
            ratio(g).map(|r| r >= 10.0),
        );
        check(
            format!(
                "Mooring ≥ 2× BIRD into the sink (got {})",
                ratio(b).map(|r| format!("{r:.1}×")).unwrap_or("-".into())
            ),
            ratio(b).map(|r| r >= 2.0),
        );
        check(
            format!(
                "Mooring ≥ 1M prefixes/s into the sink (got {})",
                m.map(|m| rate(n as f64 / m)).unwrap_or("-".into())
            ),
            m.map(|m| n as f64 / m >= 1e6),
        );
        let fm = sec(ReceiverKind::Frr, n, SpeakerKind::Mooring);
        let fb = sec(ReceiverKind::Frr, n, SpeakerKind::Bird);
        check(
            format!(
                "Mooring into FRR no slower than BIRD (Mooring {}, BIRD {})",
                fm.map(|x| format!("{x:.3} s")).unwrap_or("-".into()),
                fb.map(|x| format!("{x:.3} s")).unwrap_or("-".into())
            ),
            fm.zip(fb).map(|(m, b)| m <= b),
        );
    }
    all_met
}

/// Benchmark 3: change latency (see latency.rs).
fn latency(o: &Opts, bins: &Bins) -> bool {
    let mut rows = vec![];
    for &recv in &o.receivers {
        for &kind in &o.kinds {
            let t = std::time::Instant::now();
            let mut smp = latency::run_latency(recv, kind, o.changes, bins);
            let v = &mut smp.total;
            v.sort_by(|a, b| a.total_cmp(b));
            let q = |x| latency::quantile(v, x);
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
                    let q = |x| latency::quantile(w, x);
                    split += &format!("{what}: p50 {:.2} / p99 {:.2} / max {:.2}; ", q(0.5), q(0.99), q(1.0));
                }
            }
            split += &format!("longest rename(2) {:.3}", smp.max_rename);
            eprintln!("    {split}");
            rows.push((recv, kind, v.len(), q(0.0), q(0.5), q(0.99), q(1.0), split));
        }
    }
    let d = latency::DEBOUNCE_MS;
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

fn main() {
    // Benchmark 2 (receive throughput and memory) with its own options.
    if std::env::args().any(|a| a == "--receive") {
        return receive::entry();
    }
    let o = parse();
    let bins = Bins::here();
    if let Some(reason) = unavailable(&bins) {
        return skip(&reason);
    }
    lab::install_signal_handlers();
    let started = std::time::Instant::now();
    println!(
        "# e2e benchmarks ({} mode), {}",
        if o.quick { "quick" } else { "full" },
        lab::run(&["date", "-u", "+%Y-%m-%d %H:%M UTC"]).1.trim()
    );
    let mut met = true;
    if o.throughput {
        met &= throughput(&o, &bins);
    }
    if o.receive {
        met &= receive::bench(o.quick, &bins);
    }
    if o.latency {
        met &= latency(&o, &bins);
    }
    if o.failover {
        met &= failover::run(&o, &bins);
    }
    if o.scale {
        met &= scale::run(&o, &bins);
    }
    if !met && std::env::var_os("MBENCH_STRICT").is_some() {
        println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
        eprintln!("ERROR: a target was missed (MBENCH_STRICT is set)");
        std::process::exit(3);
    }
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
}
