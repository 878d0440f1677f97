//! Benchmark 1, announce throughput: a speaker (Mooring, GoBGP, BIRD) in
//! a [`Lab::pair`] announces N unique /32s sharing one attribute set to
//! one receiver (our counting sink, FRR) on the router; time from session
//! Established to the receiver holding all N. Each speaker holds its N
//! routes before its session is enabled, so the clock only runs from
//! Established.

use std::collections::BTreeMap;

use mooring_lab::{Config, Frr, Lab, Neighbor, Node, Proc, Running};

use crate::capture::{established_at, start_established_capture};
use crate::common::{human, median, prefixes, rate, scaled, Bins, SpeakerKind, RECEIVER_AS, SPEAKER_AS};
use crate::receivers::{start_frr, start_sink, wait_frr_received};
use crate::Opts;

/// The lab id of the announce benchmark.
const LAB_ID: u8 = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum ReceiverKind {
    Sink,
    Frr,
}

impl ReceiverKind {
    pub fn name(self) -> &'static str {
        match self {
            ReceiverKind::Sink => "sink",
            ReceiverKind::Frr => "FRR",
        }
    }
}

/// A receiver, listening before the speaker starts.
enum Receiver {
    Sink(Proc),
    Frr { frr: Box<Frr>, capture: Proc },
}

/// One throughput measurement.
#[derive(Debug, Clone)]
struct Measured {
    seconds: f64,
    /// FRR only: the time between the last two pfxRcd polls (the
    /// resolution of the end time).
    poll_ms: Option<f64>,
}

impl Receiver {
    fn start(lab: &Lab, spk: &Node, kind: ReceiverKind, n: u32, bins: &Bins) -> Receiver {
        match kind {
            ReceiverKind::Sink => Receiver::Sink(start_sink(lab, bins, &["--count", &n.to_string()])),
            ReceiverKind::Frr => {
                let frr = Box::new(start_frr(lab, spk));
                Receiver::Frr { frr, capture: start_established_capture(lab, spk) }
            }
        }
    }

    /// Wait until the receiver holds `n` prefixes; the seconds since Established.
    fn wait(&self, lab: &Lab, spk: &Node, n: u32) -> Measured {
        let timeout = scaled(n, 60, 60);
        match self {
            Receiver::Sink(p) => {
                let line = lab.wait_output(p, "RESULT", timeout);
                let secs = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("seconds="))
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("bad sink line {line:?}"));
                Measured { seconds: secs, poll_ms: None }
            }
            Receiver::Frr { frr, capture } => {
                let (done_at, poll_ms) = wait_frr_received(frr, &spk.v4, n, timeout);
                let est = established_at(capture, &spk.v4, &lab.router_v4);
                Measured { seconds: done_at - est, poll_ms: Some(poll_ms) }
            }
        }
    }
}

/// The speaker's configuration: `n` routes, its session to the receiver
/// held down until enabled.
fn speaker_config(lab: &Lab, spk: &Node, n: u32) -> Config {
    Config::new(SPEAKER_AS, &spk.v4)
        .neighbor(Neighbor::new(&lab.router_v4, RECEIVER_AS).connect_retry(1).disabled())
        .prefixes(prefixes(n))
}

/// One (speaker, receiver, N) run in a fresh lab.
fn run_one(kind: SpeakerKind, recv: ReceiverKind, n: u32, bins: &Bins) -> Measured {
    let (lab, spk) = Lab::pair(LAB_ID, "spk");
    let rcv = Receiver::start(&lab, &spk, recv, n, bins);
    let t = std::time::Instant::now();
    let mut speaker: Running = kind.daemon().start(&lab, &spk.ns, "speaker", &speaker_config(&lab, &spk, n));
    if kind != SpeakerKind::Mooring {
        eprintln!("    {}: {n} routes loaded in {:.1} s", kind.name(), t.elapsed().as_secs_f64());
    }
    speaker.enable(&lab);
    rcv.wait(&lab, &spk, n)
}

/// Median seconds, every run's seconds, the largest FRR poll interval (ms).
type RunSet = (f64, Vec<f64>, Option<f64>);

/// The whole benchmark; false when a target was missed.
pub fn bench(o: &Opts, bins: &Bins) -> bool {
    let (sizes, reps) = (o.sizes(), o.reps());
    // (receiver, n, speaker) -> (median seconds, all runs, max poll ms)
    let mut results: BTreeMap<(usize, u32, usize), RunSet> = BTreeMap::new();
    for (ri, &recv) in o.receivers.iter().enumerate() {
        for &n in &sizes {
            for (si, &spk) in o.speakers.iter().enumerate() {
                let mut runs = vec![];
                let mut poll: Option<f64> = None;
                for rep in 0..reps {
                    let m = run_one(spk, recv, n, bins);
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

    println!("\n### Announce throughput (median of {reps} run(s))\n");
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

    println!("\n### Targets\n");
    let sec = |r: ReceiverKind, n: u32, s: SpeakerKind| {
        let ri = o.receivers.iter().position(|&x| x == r)?;
        let si = o.speakers.iter().position(|&x| x == s)?;
        results.get(&(ri, n, si)).map(|x| x.0)
    };
    let mut all_met = true;
    for &n in &sizes {
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
        let show = |r: Option<f64>| r.map(|r| format!("{r:.1}×")).unwrap_or("-".into());
        check(format!("Mooring ≥ 10× GoBGP into the sink (got {})", show(ratio(g))), ratio(g).map(|r| r >= 10.0));
        check(format!("Mooring ≥ 2× BIRD into the sink (got {})", show(ratio(b))), ratio(b).map(|r| r >= 2.0));
        check(
            format!(
                "Mooring ≥ 1M prefixes/s into the sink (got {})",
                m.map(|m| rate(n as f64 / m)).unwrap_or("-".into())
            ),
            m.map(|m| n as f64 / m >= 1e6),
        );
        let fm = sec(ReceiverKind::Frr, n, SpeakerKind::Mooring);
        let fb = sec(ReceiverKind::Frr, n, SpeakerKind::Bird);
        let secs = |x: Option<f64>| x.map(|x| format!("{x:.3} s")).unwrap_or("-".into());
        check(
            format!("Mooring into FRR no slower than BIRD (Mooring {}, BIRD {})", secs(fm), secs(fb)),
            fm.zip(fb).map(|(m, b)| m <= b),
        );
    }
    all_met
}
