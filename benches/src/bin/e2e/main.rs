//! End-to-end benchmarks of issue 6 in network namespaces (as root):
//! `benches/e2e.sh [--quick]` builds and runs this; see benches/README.md.
//! This file holds the command line and which benchmarks run; each
//! benchmark is its own module (throughput, receive, latency, failover,
//! scale), the lab is crate `mooring-lab`.
//!
//! With CI set, missing root or daemons is an error; otherwise the run is
//! skipped with the reason (exit status 0). A harness error — a panic, a
//! daemon that did not start, a measurement with no samples — fails the
//! run (exit status 1) after the other benchmarks ran; a missed
//! performance target is reported, and fails the run only with
//! `MBENCH_STRICT` (exit status 3).

mod capture;
mod central;
mod cluster;
mod common;
mod failover;
mod latency;
mod probes;
mod receive;
mod receivers;
mod scale;
mod throughput;

use std::panic::AssertUnwindSafe;

use clap::{Parser, Subcommand};
use mooring_lab::{ci, find_program, install_interrupt_handlers, interrupted, lab_unavailable, run};

use common::{Bins, SpeakerKind};
use latency::ChangeKind;
use throughput::ReceiverKind;

/// End-to-end benchmarks against GoBGP, BIRD and FRR in network namespaces (as root).
#[derive(Parser)]
#[command(name = "e2e", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Subcommand)]
enum Mode {
    /// Benchmark 2 (receive throughput and memory) alone, with its own options.
    #[command(long_flag = "receive")]
    Receive(receive::Args),
}

/// The benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Bench {
    Throughput,
    Receive,
    Latency,
    Failover,
    Scale,
    /// Issue 18: the router's cost and node death → FIB, per-node speakers vs one central speaker (ADD-PATH); not in the default set.
    Central,
    /// Issue 18: central mode's node probes, node failure → FIB (lab 74); not in the default set.
    Probes,
    /// Issue 20: speaker and controller against a mock API server with 10k Services (loopback, no lab).
    Cluster,
}

#[derive(clap::Args, Debug)]
pub(crate) struct Opts {
    /// CI: small sizes, one run each (a few minutes).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Which benchmarks to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Bench::Throughput, Bench::Receive, Bench::Latency, Bench::Failover, Bench::Scale, Bench::Cluster])]
    pub(crate) bench: Vec<Bench>,
    /// Table sizes of the announce benchmark [default: 10000,100000,1000000; --quick: 10000,100000].
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<u32>>,
    /// Runs per measurement (announce: the median; scale: re-announce rounds) [default: 3; --quick: 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    reps: Option<u32>,
    /// The speakers compared.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [SpeakerKind::Mooring, SpeakerKind::GoBgp, SpeakerKind::Bird])]
    pub(crate) speakers: Vec<SpeakerKind>,
    /// The receivers of the announce and latency benchmarks.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [ReceiverKind::Sink, ReceiverKind::Frr])]
    pub(crate) receivers: Vec<ReceiverKind>,
    /// Changes per latency run [default: 200; --quick: 30].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) changes: Option<u32>,
    /// The latency benchmark's changes [default: endpoint,service; --quick: endpoint].
    #[arg(long, value_enum, value_delimiter = ',')]
    kinds: Option<Vec<ChangeKind>>,
    /// Scale fan-out: VIPs [default: 10000; --quick: 1000].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1 << 24))]
    pub(crate) scale_vips: Option<u32>,
    /// Scale fan-out: peers [default: 16; --quick: 4].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=150))]
    pub(crate) scale_peers: Option<u32>,
    /// Scale fan-in: speakers [default: 200; --quick: 15].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=240))]
    pub(crate) scale_nodes: Option<u32>,
    /// Central vs per-node: nodes [default: 100; --quick: 10].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=128))]
    pub(crate) central_nodes: Option<u32>,
    /// Cluster: Services [default: 10000; --quick: 1000].
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=16000))]
    pub(crate) cluster_services: Option<u32>,
    /// Cluster: Nodes [default: 1000; --quick: 100].
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=60000))]
    pub(crate) cluster_nodes: Option<u32>,
    #[command(flatten)]
    pub(crate) latency: latency::ScaleArgs,
}

impl Opts {
    pub(crate) fn runs(&self, b: Bench) -> bool {
        self.bench.contains(&b)
    }

    pub(crate) fn sizes(&self) -> Vec<u32> {
        self.sizes.clone().unwrap_or_else(|| {
            if self.quick {
                vec![10_000, 100_000]
            } else {
                vec![10_000, 100_000, 1_000_000]
            }
        })
    }

    pub(crate) fn reps(&self) -> usize {
        self.reps.map(|r| r as usize).unwrap_or(if self.quick { 1 } else { 3 })
    }

    pub(crate) fn changes(&self) -> usize {
        self.changes.map(|c| c as usize).unwrap_or(if self.quick { 30 } else { 200 })
    }

    pub(crate) fn kinds(&self) -> Vec<ChangeKind> {
        self.kinds.clone().unwrap_or_else(|| {
            if self.quick {
                vec![ChangeKind::Endpoint]
            } else {
                vec![ChangeKind::Endpoint, ChangeKind::Service]
            }
        })
    }
}

/// Why the benchmarks cannot run here, if they cannot: the lab's needs,
/// tshark (the announce benchmark's clock), our binaries.
fn unavailable(bins: &Bins) -> Option<String> {
    if let Some(r) = lab_unavailable(&["tshark"]) {
        return Some(r);
    }
    let missing: Vec<String> = bins
        .all()
        .iter()
        .filter(|p| find_program(p.to_str().unwrap()).is_none())
        .map(|p| format!("{} (build: cargo build --release -p mooring-agent -p mooring-benches)", p.display()))
        .collect();
    (!missing.is_empty()).then(|| format!("missing: {}", missing.join(", ")))
}

/// The benchmarks cannot run here: under CI that is an error (exit 1);
/// otherwise say why and return (exit status 0).
fn skip(reason: &str) {
    if ci() {
        eprintln!("ERROR: the e2e benchmarks cannot run under CI: {reason}");
        std::process::exit(1);
    }
    println!("SKIP: {reason}");
}

/// What the run found besides the figures.
#[derive(Default)]
pub(crate) struct Outcome {
    /// Every performance target was met.
    pub(crate) met: bool,
    /// Harness errors: what could not be measured and why.
    pub(crate) errors: Vec<String>,
}

impl Outcome {
    pub(crate) fn met(met: bool) -> Outcome {
        Outcome { met, errors: vec![] }
    }
}

/// The text of a panic's payload (its first line).
pub(crate) fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    let msg = e
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into());
    msg.lines().next().unwrap_or("").to_string()
}

/// Run one benchmark; a panic is a harness error of `name` (the labs'
/// Drop has cleaned up and printed the daemons' output). Ctrl-C ends the
/// whole run.
fn guarded(name: &str, o: &mut Outcome, f: impl FnOnce() -> Outcome) {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => {
            o.met &= r.met;
            o.errors.extend(r.errors.into_iter().map(|e| format!("{name}: {e}")));
        }
        Err(e) => {
            if interrupted() {
                std::process::exit(130);
            }
            let msg = panic_message(e.as_ref());
            eprintln!("ERROR: the {name} benchmark failed: {msg}");
            o.met = false;
            o.errors.push(format!("{name}: {msg}"));
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let bins = Bins::here();
    // The cluster benchmark alone needs neither root nor the lab.
    let cluster_only = cli.mode.is_none() && cli.opts.bench.iter().all(|b| *b == Bench::Cluster);
    if let Some(reason) = if cluster_only { cluster::unavailable(&bins) } else { unavailable(&bins) } {
        return skip(&reason);
    }
    mooring_lab::set_mooring_bin(bins.mooring.clone());
    install_interrupt_handlers();
    let started = std::time::Instant::now();
    let date = run(&["date", "-u", "+%Y-%m-%d %H:%M UTC"]).1;
    let mut out = Outcome::met(true);
    match cli.mode {
        Some(Mode::Receive(args)) => {
            println!("# e2e receive benchmark, {}", date.trim());
            guarded("receive", &mut out, || Outcome::met(receive::run_alone(&args, &bins)));
        }
        None => {
            let o = cli.opts;
            println!("# e2e benchmarks ({} mode), {}", if o.quick { "quick" } else { "full" }, date.trim());
            if o.runs(Bench::Throughput) {
                guarded("throughput", &mut out, || Outcome::met(throughput::bench(&o, &bins)));
            }
            if o.runs(Bench::Receive) {
                guarded("receive", &mut out, || Outcome::met(receive::bench(o.quick, &bins)));
            }
            if o.runs(Bench::Latency) {
                guarded("latency", &mut out, || Outcome::met(latency::bench(&o, &bins)));
            }
            if o.runs(Bench::Failover) {
                guarded("failover", &mut out, || failover::run(&o));
            }
            if o.runs(Bench::Scale) {
                guarded("scale", &mut out, || Outcome::met(scale::run(&o, &bins)));
            }
            if o.runs(Bench::Probes) {
                guarded("probes", &mut out, || probes::run(&o));
            }
            if o.runs(Bench::Central) {
                guarded("central", &mut out, || Outcome::met(central::run(&o)));
            }
            if o.runs(Bench::Cluster) {
                guarded("cluster", &mut out, || Outcome::met(cluster::run(&o, &bins)));
            }
        }
    }
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
    if !out.errors.is_empty() {
        eprintln!("ERROR: the harness failed, these figures are missing:");
        for e in &out.errors {
            eprintln!("  - {e}");
        }
        std::process::exit(1);
    }
    if !out.met && std::env::var_os("MBENCH_STRICT").is_some() {
        eprintln!("ERROR: a target was missed (MBENCH_STRICT is set)");
        std::process::exit(3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let c = Cli::try_parse_from(["e2e", "--quick", "--bench", "throughput,scale", "--speakers", "mooring,gobgp"])
            .unwrap();
        assert!(c.mode.is_none() && c.opts.quick);
        assert_eq!(c.opts.bench, [Bench::Throughput, Bench::Scale]);
        assert_eq!(c.opts.speakers, [SpeakerKind::Mooring, SpeakerKind::GoBgp]);
        assert_eq!(c.opts.sizes(), [10_000, 100_000]);
        let c =
            Cli::try_parse_from(["e2e", "--receive", "--sizes", "1000", "--receivers", "mooring-rib,bird"]).unwrap();
        assert!(matches!(c.mode, Some(Mode::Receive(_))));
        assert!(Cli::try_parse_from(["e2e", "--scale-peers", "0"]).is_err(), "peers are 1..=150");
        assert!(Cli::try_parse_from(["e2e", "--speakers", "frr"]).is_err(), "FRR is not a speaker under test");
        let d = Cli::try_parse_from(["e2e"]).unwrap();
        assert_eq!(d.opts.bench.len(), 6);
        assert!(d.opts.runs(Bench::Cluster), "the cluster benchmark runs by default (e2e.sh builds kube-mock)");
        assert_eq!(d.opts.reps(), 3);
        assert!(Cli::try_parse_from(["e2e", "--changes", "0"]).is_err(), "no latency run without samples");
        assert!(!d.opts.runs(Bench::Central), "the central benchmark runs when asked for");
        let c = Cli::try_parse_from(["e2e", "--bench", "central", "--central-nodes", "100"]).unwrap();
        assert!(c.opts.runs(Bench::Central) && c.opts.central_nodes == Some(100));
    }

    #[test]
    fn a_panicking_benchmark_is_a_harness_error_and_the_next_still_runs() {
        let mut o = Outcome::met(true);
        guarded("throughput", &mut o, || panic!("gobgpd exited\nmore"));
        guarded("failover", &mut o, || Outcome { met: true, errors: vec!["BIRD: timed out".into()] });
        guarded("scale", &mut o, || Outcome::met(true));
        assert!(!o.met);
        assert_eq!(o.errors, ["throughput: gobgpd exited", "failover: BIRD: timed out"]);
        // A missed target alone is no error.
        let mut o = Outcome::met(true);
        guarded("latency", &mut o, || Outcome::met(false));
        assert!(!o.met && o.errors.is_empty());
    }
}
