//! The scale report: the sizes and what fan-out and fan-in measured per
//! speaker kind in, the two markdown tables (with ratios to Mooring) out.
//! Pure: no lab, no clock, no printing.

use std::fmt::Write;
use std::time::Duration;

use mooring_lab::procfs::mib;

use super::{FANIN_VIPS, RE_WINDOW};
use crate::common::{human, median, SpeakerKind};

/// The sizes of one run.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Fan-out: VIPs and peers.
    pub vips: u32,
    pub peers: u32,
    /// Fan-in: speakers.
    pub nodes: u32,
    /// Re-announce rounds.
    pub rounds: usize,
    /// How long idle CPU is measured (fan-out, fan-in).
    pub idle_out: Duration,
    pub idle_in: Duration,
}

/// What fan-out measured of one speaker.
#[derive(Debug, Clone, Default)]
pub struct FanOut {
    /// The slowest peer: its Established to its sink holding V (s).
    pub initial_slowest: f64,
    /// From enabling the sessions to the last sink holding V (s).
    pub initial_wall: f64,
    /// Peak RSS from the start through the initial announce (KiB).
    pub hwm_initial: u64,
    pub rss_idle: u64,
    /// Idle CPU, % of one core.
    pub idle_pct: f64,
    /// Threads, and context switches per second at idle.
    pub threads: u64,
    pub idle_wakeups: f64,
    /// Re-announce: wall seconds and CPU seconds per round; peak RSS.
    pub re_wall: Vec<f64>,
    pub re_cpu: Vec<f64>,
    pub re_hwm: u64,
}

/// What fan-in measured of one speaker kind's S speakers.
#[derive(Debug, Clone, Default)]
pub struct FanIn {
    /// From the first speaker started to FRR holding S sessions x 10 routes (s).
    pub bringup: f64,
    pub rss_mean: f64,
    pub rss_max: u64,
    pub pss_total: u64,
    pub anon_mean: f64,
    /// All S speakers, % of one core.
    pub idle_pct: f64,
    /// Threads per speaker (mean), and context switches per second at
    /// idle of all S speakers.
    pub threads: f64,
    pub idle_wakeups: f64,
    pub frr_idle_pct: f64,
    /// Per round: the speakers' CPU seconds in the window minus their idle
    /// rate times the window.
    pub re_cpu_above_idle: Vec<f64>,
    pub frr_rss: u64,
    /// Per round: wall seconds until every speaker had answered, the
    /// window measured, the speakers' and FRR's CPU seconds in it.
    pub re_wall: Vec<f64>,
    pub re_window: Vec<f64>,
    pub re_cpu: Vec<f64>,
    pub re_frr_cpu: Vec<f64>,
    /// Largest VmHWM of a speaker during the re-announces.
    pub re_hwm_max: u64,
}

/// One table row: a figure per speaker kind (None: not measured).
struct Row {
    name: String,
    vals: Vec<Option<f64>>,
    decimals: usize,
    ratio: bool,
}

fn row(name: impl Into<String>, vals: Vec<Option<f64>>, decimals: usize, ratio: bool) -> Row {
    Row { name: name.into(), vals, decimals, ratio }
}

/// `x` relative to Mooring's `m`.
fn ratio(x: Option<f64>, m: Option<f64>) -> String {
    match (x, m) {
        (Some(x), Some(m)) if m > 0.0 => {
            let r = x / m;
            if r >= 10.0 {
                format!("{r:.0}×")
            } else if r >= 1.0 {
                format!("{r:.1}×")
            } else {
                format!("{r:.2}×")
            }
        }
        (Some(_), Some(_)) => "n/a (Mooring 0)".into(),
        _ => "-".into(),
    }
}

fn table(out: &mut String, kinds: &[SpeakerKind], rows: &[Row]) {
    let mooring = kinds.iter().position(|&k| k == SpeakerKind::Mooring);
    let others: Vec<usize> = (0..kinds.len()).filter(|&i| Some(i) != mooring).collect();
    let mut head = String::from("| figure |");
    for k in kinds {
        head += &format!(" {} |", k.name());
    }
    if mooring.is_some() {
        for &i in &others {
            head += &format!(" {}/Mooring |", kinds[i].name());
        }
    }
    let _ = writeln!(out, "{head}");
    let cols = kinds.len() + if mooring.is_some() { others.len() } else { 0 };
    let _ = writeln!(out, "|---{}|", "|---".repeat(cols));
    for r in rows {
        let mut line = format!("| {} |", r.name);
        for v in &r.vals {
            line += &match v {
                Some(v) => format!(" {v:.*} |", r.decimals),
                None => " - |".into(),
            };
        }
        if let Some(m) = mooring {
            for &i in &others {
                line += &format!(" {} |", if r.ratio { ratio(r.vals[i], r.vals[m]) } else { String::new() });
            }
        }
        let _ = writeln!(out, "{line}");
    }
}

/// The median; None when nothing was measured.
fn med(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| median(&mut v.to_vec()))
}

/// Both tables for `kinds` (in order: `outs[i]` and `ins[i]` are kind i's).
pub fn report(kinds: &[SpeakerKind], z: &Sizes, outs: &[FanOut], ins: &[FanIn]) -> String {
    let (v, p, s, rounds) = (z.vips, z.peers, z.nodes, z.rounds);
    let mut out = String::new();
    let f = |g: &dyn Fn(&FanOut) -> Option<f64>| outs.iter().map(g).collect::<Vec<_>>();
    let _ = writeln!(
        out,
        "\n### Scale A: one speaker, {} VIPs to {p} peers (bgp-sink receivers; re-announce: median of {rounds})\n",
        human(v)
    );
    table(
        &mut out,
        kinds,
        &[
            row(
                format!("initial announce: sessions enabled → all {p} sinks hold {} (s)", human(v)),
                f(&|r| Some(r.initial_wall)),
                3,
                true,
            ),
            row("initial announce: slowest peer, its Established → all (s)", f(&|r| Some(r.initial_slowest)), 3, true),
            row("peak RSS through the initial announce (MiB)", f(&|r| Some(mib(r.hwm_initial as f64))), 1, true),
            row("RSS at idle (MiB)", f(&|r| Some(mib(r.rss_idle as f64))), 1, true),
            row(
                format!("CPU at idle ({:.0} s; % of one core)", z.idle_out.as_secs_f64()),
                f(&|r| Some(r.idle_pct)),
                2,
                true,
            ),
            row("threads", f(&|r| Some(r.threads as f64)), 0, false),
            row("context switches per second at idle (all threads)", f(&|r| Some(r.idle_wakeups)), 1, true),
            row(
                format!("full re-announce: ROUTE-REFRESH from all {p} → all re-received (s)"),
                f(&|r| med(&r.re_wall)),
                4,
                true,
            ),
            row("full re-announce: speaker CPU (s)", f(&|r| med(&r.re_cpu)), 4, true),
            row("peak RSS during the re-announces (MiB)", f(&|r| Some(mib(r.re_hwm as f64))), 1, true),
        ],
    );

    let g = |h: &dyn Fn(&FanIn) -> Option<f64>| ins.iter().map(h).collect::<Vec<_>>();
    let _ = writeln!(
        out,
        "\n### Scale B: FRR router with {s} speakers × {FANIN_VIPS} VIPs (same VIPs on every node; re-announce: median of {rounds})\n"
    );
    table(
        &mut out,
        kinds,
        &[
            row(
                format!("bring-up: first start → FRR has {s} sessions × {FANIN_VIPS} routes (s)"),
                g(&|r| Some(r.bringup)),
                2,
                true,
            ),
            row("RSS per speaker at idle, mean (MiB)", g(&|r| Some(mib(r.rss_mean))), 1, true),
            row("RSS per speaker at idle, max (MiB)", g(&|r| Some(mib(r.rss_max as f64))), 1, true),
            row(format!("PSS of all {s} speakers (MiB)"), g(&|r| Some(mib(r.pss_total as f64))), 0, true),
            row("private memory (RssAnon) per speaker, mean (MiB)", g(&|r| Some(mib(r.anon_mean))), 2, true),
            row(
                format!("CPU at idle, all {s} speakers ({:.0} s; % of one core)", z.idle_in.as_secs_f64()),
                g(&|r| Some(r.idle_pct)),
                2,
                true,
            ),
            row("threads per speaker, mean", g(&|r| Some(r.threads)), 1, false),
            row(
                format!("context switches per second at idle, all {s} speakers"),
                g(&|r| Some(r.idle_wakeups)),
                0,
                true,
            ),
            row("full re-announce: soft in → every speaker's UPDATE on the wire (s)", g(&|r| med(&r.re_wall)), 3, true),
            row("full re-announce: CPU of all speakers in the window (s)", g(&|r| med(&r.re_cpu)), 3, true),
            row(
                "full re-announce: the same minus the idle rate × the window (s)",
                g(&|r| med(&r.re_cpu_above_idle)),
                3,
                true,
            ),
            row(
                format!("  the window (s): soft in → max({RE_WINDOW:.0} s, last UPDATE + 0.5 s)"),
                g(&|r| med(&r.re_window)),
                2,
                false,
            ),
            row("peak RSS of a speaker during the re-announces (MiB)", g(&|r| Some(mib(r.re_hwm_max as f64))), 1, true),
            row("FRR (bgpd + zebra): RSS at idle (MiB)", g(&|r| Some(mib(r.frr_rss as f64))), 1, false),
            row("FRR: CPU at idle (% of one core)", g(&|r| Some(r.frr_idle_pct)), 2, false),
            row("FRR: CPU in the re-announce window (s)", g(&|r| med(&r.re_frr_cpu)), 3, false),
        ],
    );
    if kinds.contains(&SpeakerKind::GoBgp) {
        let _ = writeln!(
            out,
            "\nGoBGP 3.10 dials its first connection 5-10 s (random) after a neighbor is enabled (its connectLoop \
             waits rand(5)+5 s before the first attempt): that delay is in its \"sessions enabled →\" and \
             bring-up figures; the per-session figures do not include it."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_with_ratios_to_mooring() {
        let z = Sizes {
            vips: 1000,
            peers: 4,
            nodes: 15,
            rounds: 3,
            idle_out: Duration::from_secs(3),
            idle_in: Duration::from_secs(5),
        };
        let m = FanOut { initial_wall: 0.5, re_wall: vec![0.2, 0.1, 0.3], rss_idle: 10 * 1024, ..FanOut::default() };
        let g = FanOut { initial_wall: 7.0, re_wall: vec![0.4, 0.4, 0.5], rss_idle: 5 * 1024, ..FanOut::default() };
        let mi = FanIn { bringup: 2.0, idle_pct: 0.0, ..FanIn::default() };
        let gi = FanIn { bringup: 9.0, idle_pct: 1.5, ..FanIn::default() };
        let t = report(&[SpeakerKind::Mooring, SpeakerKind::GoBgp], &z, &[m, g], &[mi, gi]);
        assert!(t.contains("### Scale A: one speaker, 1k VIPs to 4 peers"), "{t}");
        assert!(t.contains("| figure | Mooring | GoBGP | GoBGP/Mooring |\n|---|---|---|---|"), "{t}");
        // 7 / 0.5 = 14 (≥ 10: no decimals); medians 0.2 and 0.4: 2.0.
        assert!(
            t.contains("| initial announce: sessions enabled → all 4 sinks hold 1k (s) | 0.500 | 7.000 | 14× |"),
            "{t}"
        );
        assert!(t.contains("ROUTE-REFRESH from all 4 → all re-received (s) | 0.2000 | 0.4000 | 2.0× |"), "{t}");
        assert!(t.contains("| RSS at idle (MiB) | 10.0 | 5.0 | 0.50× |"), "{t}");
        assert!(
            t.contains("CPU at idle, all 15 speakers (5 s; % of one core) | 0.00 | 1.50 | n/a (Mooring 0) |"),
            "{t}"
        );
        assert!(t.contains("GoBGP 3.10 dials its first connection"));
        // Without Mooring no ratio columns.
        let t = report(&[SpeakerKind::Bird], &z, &[FanOut::default()], &[FanIn::default()]);
        assert!(t.contains("| figure | BIRD |\n|---|---|"), "{t}");
    }
}
