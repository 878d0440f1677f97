//! Issue 6, benchmark 2: receive throughput and memory (`e2e --receive`),
//! in a [`Lab::pair`] (id 44): the receiver on the router, the sender on
//! the node `spk`.
//!
//! BIRD on the node (the faster of the two reference senders in
//! benchmark 1) holds N /32s as static routes in 1000 static protocols,
//! each with an import filter giving its routes their own attribute set
//! (AS path, two communities, MED): prefix i belongs to group i mod 1000,
//! so neighbouring prefixes differ and every UPDATE carries one group's
//! prefixes. Once BIRD holds all N, its session to the receiver under test
//! is enabled; the time runs from Established to the receiver holding all
//! N, and the receiver's memory is read from /proc before the session and
//! after the last prefix (VmRSS, VmHWM).
//!
//! Receivers: `bgp-recv` (the `mooring_bgp::speaker` library; count and
//! drop, or `import` into an Adj-RIB-In), FRR bgpd (+ zebra, as in
//! benchmark 1) and BIRD.
//!
//! Senders: BIRD itself (live), and BIRD's stream replayed: BIRD takes
//! about as long to produce the stream as a fast receiver takes to read
//! it, so with BIRD live every fast receiver ties at BIRD's pace. The
//! bytes BIRD sent to `bgp-sink` are recorded once per N (`bgp-sink
//! --record`) and `bgp-replay` sends them again, from the same address
//! and AS, as fast as the receiver reads: then the receiver is the
//! bottleneck, and the targets are judged on those runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mooring_lab::procfs::{cpu_secs, mem};
use mooring_lab::{check_interrupted, epoch, run, run_ok, tail, Bird, Config, Frr, Lab, Neighbor, Node, Proc};

use crate::capture::{established_at, start_established_capture};
use crate::common::{human, median, prefix, rate, scaled, Bins, RECEIVER_AS, SPEAKER_AS};
use crate::receivers::{start_frr, start_sink, wait_frr_received};

/// The lab id of the receive benchmark.
const LAB_ID: u8 = 44;

/// (VmRSS, VmHWM) of a process, KiB.
fn mem_kb(pid: i32) -> (u64, u64) {
    let m = mem(pid);
    (m.rss, m.hwm)
}

const GROUPS: u32 = 1000;
/// The drop-mode memory target (MiB of VmHWM).
const DROP_MODE_MIB: f64 = 30.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
enum Rcv {
    MooringDrop,
    MooringRib,
    Frr,
    Bird,
}

impl Rcv {
    fn name(self) -> &'static str {
        match self {
            Rcv::MooringDrop => "Mooring (count+drop)",
            Rcv::MooringRib => "Mooring (Adj-RIB-In)",
            Rcv::Frr => "FRR bgpd",
            Rcv::Bird => "BIRD",
        }
    }
}

/// Who sends the N prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
enum Sender {
    /// BIRD with the routes as static routes.
    Bird,
    /// `bgp-replay` sending what BIRD sent, recorded.
    Replay,
}

impl Sender {
    fn name(self) -> &'static str {
        match self {
            Sender::Bird => "BIRD sender (live)",
            Sender::Replay => "BIRD's stream replayed at the receiver's pace",
        }
    }
}

/// `e2e --receive`: benchmark 2 with its own sizes, receivers and senders.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, value_delimiter = ',', default_values_t = [100_000, 1_000_000])]
    sizes: Vec<u32>,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    reps: u32,
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Rcv::MooringDrop, Rcv::MooringRib, Rcv::Frr, Rcv::Bird])]
    receivers: Vec<Rcv>,
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Sender::Replay, Sender::Bird])]
    senders: Vec<Sender>,
}

/// One receive measurement.
#[derive(Debug, Clone)]
struct Measured {
    seconds: f64,
    /// FRR, BIRD: the interval between the last two route-count answers.
    poll_ms: Option<f64>,
    rss_before_kb: u64,
    rss_after_kb: u64,
    hwm_kb: u64,
    /// CPU seconds the receiving process used from the session's start
    /// to the last prefix (FRR: bgpd only, not zebra).
    cpu_s: f64,
}

/// The sender: BIRD on `spk` with N static routes in GROUPS attribute
/// groups, its session to the receiver held down until enabled.
fn bird_sender(lab: &Lab, spk: &Node, n: u32) -> Bird {
    let groups = GROUPS.min(n.max(1));
    let mut statics = String::with_capacity(n as usize * 32 + groups as usize * 300);
    let mut members: Vec<Vec<u32>> = vec![vec![]; groups as usize];
    for i in 0..n {
        members[(i % groups) as usize].push(i);
    }
    for (g, m) in members.iter().enumerate() {
        // AS path (after BIRD's own AS) 65000+g 100+g%50; communities
        // (64513,g) (64513,1000+g%10); MED g.
        statics.push_str(&format!(
            "protocol static g{g} {{\n  ipv4 {{ import filter {{ bgp_origin = ORIGIN_IGP; \
             bgp_path.prepend({}); bgp_path.prepend({}); bgp_community.add(({SPEAKER_AS}, {g})); \
             bgp_community.add(({SPEAKER_AS}, {})); bgp_med = {g}; accept; }}; }};\n",
            100 + g % 50,
            65000 + g,
            1000 + g % 10
        ));
        for &i in m {
            statics.push_str("  route ");
            statics.push_str(&prefix(i));
            statics.push_str(" blackhole;\n");
        }
        statics.push_str("}\n");
    }
    let cfg = Config::new(SPEAKER_AS, &spk.v4)
        .neighbor(Neighbor::new(&lab.router_v4, RECEIVER_AS).name("rcv").connect_retry(1).disabled())
        .extra(&statics);
    let t = Instant::now();
    let bird = Bird::start(lab, &spk.ns, "bird-spk", &cfg);
    bird.wait_routes(lab, n as usize);
    eprintln!(
        "    BIRD sender: {n} static routes in {groups} attribute groups loaded in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    bird
}

/// Record what BIRD sends for `n` prefixes (every UPDATE, as bytes) into
/// `path`, with `bgp-sink` as the receiver.
fn record_bird_stream(n: u32, bins: &Bins, path: &Path) {
    let (lab, spk) = Lab::pair(LAB_ID, "spk");
    let count = n.to_string();
    let sink = start_sink(&lab, bins, &["--count", &count, "--record", path.to_str().unwrap()]);
    let mut bird = bird_sender(&lab, &spk, n);
    bird.enable();
    let line = lab.wait_output(&sink, "RESULT", scaled(n, 60, 60));
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size == 0 {
        panic!("bgp-sink recorded nothing into {}", path.display());
    }
    eprintln!("    recorded BIRD's stream for N={}: {size} bytes ({})", human(n), line.trim());
}

/// Seconds since the epoch of a BIRD `iso long ms` time (local time).
fn bird_time(s: &str) -> Option<f64> {
    let out = run_ok(&["date", "-d", s, "+%s.%N"]);
    out.trim().parse().ok()
}

/// Another `e2e` process (another mode of this harness) running now.
fn other_e2e() -> Option<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&pid| pid != me && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "e2e"))
}

/// One run: receiver `kind` takes `n` prefixes from BIRD (`recording` is
/// None) or from `bgp-replay` sending `recording`.
fn run_one(kind: Rcv, n: u32, bins: &Bins, recording: Option<&Path>) -> Measured {
    // The VM has two cores: do not measure while another e2e run loads it
    // (wait up to 10 minutes, then measure anyway).
    if let Some(pid) = other_e2e() {
        eprintln!("    waiting for the other e2e run (pid {pid}) to finish");
        let t = Instant::now();
        while other_e2e().is_some() && t.elapsed() < Duration::from_secs(600) {
            mooring_lab::sleep(Duration::from_millis(500));
        }
    }
    let (lab, spk) = Lab::pair(LAB_ID, "spk");
    let timeout = scaled(n, 60, 60);
    // The receiver, started before the sender.
    enum R {
        Mooring(Proc),
        Frr(Frr, Proc),
        Bird(Bird),
    }
    let r = match kind {
        Rcv::MooringDrop | Rcv::MooringRib => {
            let mut args = vec![
                bins.recv.to_str().unwrap().to_string(),
                "--listen".into(),
                format!("{}:179", lab.router_v4),
                "--as".into(),
                RECEIVER_AS.to_string(),
                "--router-id".into(),
                lab.router_v4.clone(),
                "--peer".into(),
                spk.v4.clone(),
                "--peer-as".into(),
                SPEAKER_AS.to_string(),
                "--count".into(),
                n.to_string(),
            ];
            if kind == Rcv::MooringRib {
                args.push("--import".into());
            }
            let p = lab.spawn(&lab.router, "bgp-recv", &args.iter().map(String::as_str).collect::<Vec<_>>());
            lab.wait_output(&p, "READY", Duration::from_secs(10));
            R::Mooring(p)
        }
        Rcv::Frr => {
            let frr = start_frr(&lab, &spk);
            let capture = start_established_capture(&lab, &spk);
            R::Frr(frr, capture)
        }
        Rcv::Bird => {
            let cfg = Config::new(RECEIVER_AS, &lab.router_v4)
                .neighbor(Neighbor::new(&spk.v4, SPEAKER_AS).name("spk").passive().receiving());
            R::Bird(Bird::start(&lab, &lab.router, "bird-rcv", &cfg))
        }
    };
    // The sender, loaded but not yet connected.
    enum Start<'a> {
        Bird(Bird),
        Replay(&'a Path),
    }
    let sender = match recording {
        Some(file) => Start::Replay(file),
        None => Start::Bird(bird_sender(&lab, &spk, n)),
    };
    let rpid = match &r {
        R::Mooring(p) => p.pid,
        R::Bird(b) => b.proc.pid,
        R::Frr(frr, _) => frr.bgpd.pid,
    };
    let (rss_before_kb, _) = mem_kb(rpid);
    let cpu_before = cpu_secs(rpid);
    match sender {
        Start::Bird(mut bird) => bird.enable(),
        Start::Replay(file) => {
            let connect = format!("{}:179", lab.router_v4);
            let asn = SPEAKER_AS.to_string();
            let args = [
                bins.replay.to_str().unwrap(),
                "--connect",
                &connect,
                "--as",
                &asn,
                "--router-id",
                &spk.v4,
                "--file",
                file.to_str().unwrap(),
            ];
            lab.spawn(&spk.ns, "bgp-replay", &args);
        }
    }
    let cpu = || cpu_secs(rpid) - cpu_before;
    match r {
        R::Mooring(p) => {
            let line = lab.wait_output(&p, "RESULT", timeout);
            let f = |k: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .unwrap_or_else(|| panic!("bad bgp-recv line {line:?}"))
                    .to_string()
            };
            let (rss_after_kb, hwm_kb) = mem_kb(p.pid);
            Measured {
                cpu_s: cpu(),
                seconds: f("seconds=").parse().unwrap(),
                poll_ms: None,
                rss_before_kb,
                rss_after_kb,
                hwm_kb,
            }
        }
        R::Frr(frr, capture) => {
            let (done_at, poll_ms) = wait_frr_received(&frr, &spk.v4, n, timeout);
            let seconds = done_at - established_at(&capture, &spk.v4, &lab.router_v4);
            let cpu_s = cpu();
            let (rss_after_kb, hwm_kb) = mem_kb(frr.bgpd.pid);
            Measured { seconds, poll_ms: Some(poll_ms), rss_before_kb, rss_after_kb, hwm_kb, cpu_s }
        }
        R::Bird(bird) => {
            let (p, sock) = (&bird.proc, &bird.sock);
            let start = Instant::now();
            let mut prev = epoch();
            let (done_at, poll_ms, since) = loop {
                check_interrupted();
                if start.elapsed() > timeout {
                    panic!("BIRD did not receive {n} prefixes within {timeout:?}");
                }
                let (_, out, _) = run(&["birdc", "-s", sock, "show", "protocols", "all", "spk"]);
                let now = epoch();
                // "spk  BGP  ---  up  2026-11-25 15:40:00.123  Established"
                // "    Routes:         1000000 imported, 0 exported, 1000000 preferred"
                let imported = out
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Routes:"))
                    .and_then(|l| l.split_whitespace().next())
                    .and_then(|c| c.parse::<u32>().ok())
                    .unwrap_or(0);
                if imported >= n {
                    let since = out
                        .lines()
                        .find(|l| l.starts_with("spk "))
                        .map(|l| l.split_whitespace().skip(4).take(2).collect::<Vec<_>>().join(" "))
                        .unwrap_or_default();
                    break (now, (now - prev) * 1e3, since);
                }
                prev = now;
                std::thread::sleep(Duration::from_millis(5));
            };
            let cpu_s = cpu();
            let est = bird_time(&since).unwrap_or_else(|| panic!("cannot parse BIRD's since {since:?}"));
            let (rss_after_kb, hwm_kb) = mem_kb(p.pid);
            let sample = run(&["birdc", "-s", sock, "show", "route", "all", &prefix(n - 1)]).1;
            eprintln!("    sample route at the receiver:\n{}", tail(&sample, 12));
            Measured { seconds: done_at - est, poll_ms: Some(poll_ms), rss_before_kb, rss_after_kb, hwm_kb, cpu_s }
        }
    }
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// `e2e --receive ...`; false when a target was missed.
pub fn run_alone(a: &Args, bins: &Bins) -> bool {
    let o = Opts {
        sizes: a.sizes.clone(),
        reps: a.reps as usize,
        receivers: a.receivers.clone(),
        senders: a.senders.clone(),
    };
    measure(&o, bins)
}

/// What one receive run measures.
struct Opts {
    sizes: Vec<u32>,
    reps: usize,
    receivers: Vec<Rcv>,
    senders: Vec<Sender>,
}

/// Benchmark 2 as part of a whole e2e run: 100k and 1M (quick: 10k, where
/// the BIRD sender's own pauses dominate: it only keeps the harness alive).
pub fn bench(quick: bool, bins: &Bins) -> bool {
    let o = Opts {
        sizes: if quick { vec![10_000] } else { vec![100_000, 1_000_000] },
        reps: 1,
        receivers: vec![Rcv::MooringDrop, Rcv::MooringRib, Rcv::Frr, Rcv::Bird],
        senders: vec![Sender::Replay, Sender::Bird],
    };
    measure(&o, bins)
}

/// The recordings of BIRD's stream, one per N, removed when dropped
/// (kept, and the path printed, with `MBENCH_KEEP_LOGS`).
struct Recordings(PathBuf);

impl Drop for Recordings {
    fn drop(&mut self) {
        if std::env::var_os("MBENCH_KEEP_LOGS").is_some() {
            eprintln!("recordings of BIRD's stream kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// (sender, n, receiver) -> (median seconds, every run's seconds, the median run)
type Results = BTreeMap<(Sender, u32, Rcv), (f64, Vec<f64>, Measured)>;

/// Run the receive benchmark; false when a target was missed.
fn measure(o: &Opts, bins: &Bins) -> bool {
    let recordings = Recordings(std::env::temp_dir().join(format!("mbench-{}-recordings", std::process::id())));
    std::fs::create_dir_all(&recordings.0).expect("recordings dir");
    let mut results: Results = BTreeMap::new();
    for &n in &o.sizes {
        let recording = recordings.0.join(format!("bird-{n}.bgp"));
        if o.senders.contains(&Sender::Replay) {
            record_bird_stream(n, bins, &recording);
        }
        for &sender in &o.senders {
            for &kind in &o.receivers {
                let mut runs: Vec<Measured> = vec![];
                for rep in 0..o.reps {
                    let m = run_one(kind, n, bins, (sender == Sender::Replay).then_some(recording.as_path()));
                    eprintln!(
                        "  {} -> {} N={} run {}: {:.4} s ({}){}, receiver CPU {:.2} s, RSS {} -> {}, peak {}",
                        sender.name(),
                        kind.name(),
                        human(n),
                        rep + 1,
                        m.seconds,
                        rate(n as f64 / m.seconds),
                        m.poll_ms.map(|p| format!(", last poll interval {p:.0} ms")).unwrap_or_default(),
                        m.cpu_s,
                        mib(m.rss_before_kb),
                        mib(m.rss_after_kb),
                        mib(m.hwm_kb)
                    );
                    runs.push(m);
                }
                runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
                let secs: Vec<f64> = runs.iter().map(|m| m.seconds).collect();
                let med = median(&mut secs.clone());
                results.insert((sender, n, kind), (med, secs, runs[runs.len() / 2].clone()));
            }
        }
    }
    // The receiver-bound runs decide the targets; with BIRD live the
    // sender's pace is measured as much as the receiver.
    let judged = if o.senders.contains(&Sender::Replay) { Sender::Replay } else { Sender::Bird };
    let mut all_met = true;
    for &sender in &o.senders {
        print_table(&results, sender, o.reps);
        all_met &= print_targets(&results, sender, &o.sizes, sender == judged);
    }
    all_met
}

fn print_table(results: &Results, sender: Sender, reps: usize) {
    println!(
        "\n### Receive throughput and memory ({}, {GROUPS} attribute sets; median of {reps} run(s))\n",
        sender.name()
    );
    println!(
        "| N | receiver | seconds | prefixes/s | receiver CPU s | peak RSS (VmHWM) | RSS before → after | bytes/prefix | time vs Mooring drop / RIB | runs (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for ((_, n, kind), (med, secs, m)) in results.iter().filter(|((s, ..), _)| *s == sender) {
        let per = (m.rss_after_kb as f64 - m.rss_before_kb as f64) * 1024.0 / *n as f64;
        let vs = |k: Rcv| {
            results
                .get(&(sender, *n, k))
                .filter(|_| k != *kind)
                .map(|(mm, ..)| format!("{:.1}×", med / mm))
                .unwrap_or("-".into())
        };
        let poll = m.poll_ms.map(|p| format!(" (poll ≤{p:.0} ms)")).unwrap_or_default();
        let runs: Vec<String> = secs.iter().map(|r| format!("{r:.3}")).collect();
        println!(
            "| {} | {} | {med:.3}{poll} | {} | {:.2} | {} | {} → {} | {per:.0} | {} / {} | {} |",
            human(*n),
            kind.name(),
            rate(*n as f64 / med),
            m.cpu_s,
            mib(m.hwm_kb),
            mib(m.rss_before_kb),
            mib(m.rss_after_kb),
            vs(Rcv::MooringDrop),
            vs(Rcv::MooringRib),
            runs.join(", ")
        );
    }
}

/// The ratios of `sender`'s runs; when `judged`, each is a target (false
/// when one was missed), otherwise only reported.
fn print_targets(results: &Results, sender: Sender, sizes: &[u32], judged: bool) -> bool {
    if judged {
        println!("\n#### Ratios and targets ({})\n", sender.name());
    } else {
        println!("\n#### Ratios ({}; bounded by the sender, not targets)\n", sender.name());
    }
    let verdict = |ok: bool| match (judged, ok) {
        (false, _) => "(reported)",
        (true, true) => "met",
        (true, false) => "MISSED",
    };
    let mut all_met = true;
    for &n in sizes {
        let get = |k: Rcv| results.get(&(sender, n, k));
        for mk in [Rcv::MooringDrop, Rcv::MooringRib] {
            let Some((ms, _, mm)) = get(mk) else { continue };
            for other in [Rcv::Frr, Rcv::Bird] {
                let Some((os, _, om)) = get(other) else { continue };
                let faster = ms < os;
                all_met &= faster;
                println!(
                    "- N={}: {} vs {}: time Mooring/{} = {:.2} (speed-up {:.2}×), receiver CPU Mooring/{} = {:.2}, \
                     peak RSS Mooring/{} = {:.2}: faster: {}",
                    human(n),
                    mk.name(),
                    other.name(),
                    other.name(),
                    ms / os,
                    os / ms,
                    other.name(),
                    mm.cpu_s / om.cpu_s.max(0.01),
                    other.name(),
                    mm.hwm_kb as f64 / om.hwm_kb as f64,
                    verdict(faster)
                );
            }
        }
        if let Some((_, _, m)) = get(Rcv::MooringDrop) {
            let ok = m.hwm_kb as f64 / 1024.0 <= DROP_MODE_MIB;
            all_met &= ok;
            println!(
                "- N={}: drop mode peak RSS ≤ {DROP_MODE_MIB} MiB (got {}): {}",
                human(n),
                mib(m.hwm_kb),
                verdict(ok)
            );
        }
        if let Some((_, _, m)) = get(Rcv::MooringRib) {
            let per = (m.rss_after_kb as f64 - m.rss_before_kb as f64) * 1024.0 / n as f64;
            println!("- N={}: Adj-RIB-In bytes per prefix (RSS after − before) / N: {per:.0} (reported)", human(n));
        }
    }
    all_met || !judged
}
