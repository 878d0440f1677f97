//! The failover report: what one speaker kind's run measured ([`Row`],
//! [`Stream`]) in, the markdown tables and the targets out. Pure: no lab,
//! no clock, no printing.

use std::fmt::Write;

use super::{BFD_MS, BFD_MULT, DOWN, HOLD_S, STREAM_INTERVAL_MS};
use crate::common::{median, SpeakerKind};

/// One UDP stream through a restart of A's speaker.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    pub sent: u64,
    pub received: u64,
    /// The longest run of consecutive datagrams lost.
    pub max_gap: u64,
    /// Times the VIP left the router's FIB.
    pub fib_gaps: usize,
    pub fib_out_ms: f64,
    /// From the stop to the restarted speaker's route being fresh in FRR.
    pub restart_s: f64,
}

impl Stream {
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

/// What one speaker kind's run measured (as far as it got).
#[derive(Debug, Default)]
pub struct Row {
    /// kill -9 → next hop gone, ms.
    pub kill: Vec<f64>,
    /// Blackholed → next hop gone (hold timer), ms.
    pub blackhole: Vec<f64>,
    /// Blackhole with BFD between the router and A, ms.
    pub bfd: Vec<f64>,
    pub gr: Option<Stream>,
    /// FRR's view of A's GR capability (`remoteGrMode`).
    pub gr_mode: String,
    /// Mooring only: the same restart without graceful restart.
    pub no_gr: Option<Stream>,
    /// Why the run ended early.
    pub error: Option<String>,
}

/// The tables and whether every target was met.
pub struct Report {
    pub text: String,
    pub all_met: bool,
}

/// How the graceful-restart run stops and starts the speaker.
pub fn how_stopped(kind: SpeakerKind) -> &'static str {
    match kind {
        SpeakerKind::Mooring => "SIGTERM (`--graceful-stop`), restarted with `--restarting`",
        SpeakerKind::GoBgp => "kill -9 (gobgpd's SIGTERM sends a Cease), restarted with `gobgpd -r`",
        SpeakerKind::Bird => "`birdc graceful restart`, restarted with `bird -R`",
    }
}

/// (min, p50, max).
fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    let p50 = median(&mut s);
    Some((s[0], p50, s[s.len() - 1]))
}

/// One table line: (speaker, what, samples, why not measured).
type Line<'r> = (SpeakerKind, &'r str, &'r [f64], Option<String>);

fn table(out: &mut String, title: &str, lines: &[Line], decimals: usize) {
    let fmt_runs = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ");
    let _ = writeln!(out, "\n### {title}\n");
    let _ = writeln!(
        out,
        "| speaker on the node | detection | samples | min ms | p50 ms | max ms | this/Mooring (p50) | samples (ms) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for (k, what, v, why) in lines {
        // The ratio against Mooring's line of the same `what`.
        let m50 = lines
            .iter()
            .find(|(mk, mw, ..)| *mk == SpeakerKind::Mooring && mw == what)
            .and_then(|(_, _, mv, _)| stats(mv))
            .map(|s| s.1);
        match stats(v) {
            Some((min, p50, max)) => {
                let ratio = match (k, m50) {
                    (SpeakerKind::Mooring, _) => String::new(),
                    (_, Some(m)) => format!("{:.2}×", p50 / m),
                    _ => "-".into(),
                };
                let d = decimals;
                let _ = writeln!(
                    out,
                    "| {} | {what} | {} | {min:.d$} | {p50:.d$} | {max:.d$} | {ratio} | {} |",
                    k.name(),
                    v.len(),
                    fmt_runs(v)
                );
            }
            None => {
                let why = why.clone().map(|e| format!("not measured: {e}")).unwrap_or_default();
                let _ = writeln!(out, "| {} | {what} | 0 | - | - | - | - | {why} |", k.name());
            }
        }
    }
}

/// The failover tables (kill -9, blackhole, graceful restart) and targets
/// for the rows of each speaker kind.
pub fn report(rows: &[(SpeakerKind, Row)]) -> Report {
    let mut out = String::new();
    let mooring = rows.iter().find(|(k, _)| *k == SpeakerKind::Mooring).map(|(_, r)| r);
    let why = |r: &Row| r.error.clone();
    let kill: Vec<Line> = rows.iter().map(|(k, r)| (*k, "TCP connection closed", &r.kill[..], why(r))).collect();
    table(&mut out, "Failover: kill -9 of the node's speaker → the router's kernel FIB drops its next hop", &kill, 1);
    let hold = format!("hold timer ({HOLD_S} s)");
    let bfd = format!("BFD ({BFD_MS} ms × {BFD_MULT})");
    let mut bh: Vec<Line> = rows.iter().map(|(k, r)| (*k, hold.as_str(), &r.blackhole[..], why(r))).collect();
    for (k, r) in rows {
        let why = match k {
            SpeakerKind::GoBgp => Some("GoBGP has no BFD".to_string()),
            _ => why(r),
        };
        bh.push((*k, bfd.as_str(), &r.bfd[..], why));
    }
    table(
        &mut out,
        "Failover: node blackholed (nftables drops both ways) → its next hop leaves the router's kernel FIB",
        &bh,
        0,
    );

    let _ = writeln!(
        out,
        "\n### Graceful restart: a client streams UDP to the VIP (1 datagram/ms) through a restart of its only \
         node's speaker\n"
    );
    let _ = writeln!(
        out,
        "| speaker on the node | graceful restart | stopped / started | down | sent | lost | longest gap | \
         lost vs Mooring | VIP left the FIB | route fresh again after |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    let m_lost = mooring.and_then(|m| m.gr.as_ref()).map(|s| s.lost());
    let line = |out: &mut String, k: SpeakerKind, gr: &str, how: &str, s: &Stream, vs: String| {
        let fib =
            if s.fib_gaps == 0 { "never".to_string() } else { format!("{}× ({:.0} ms)", s.fib_gaps, s.fib_out_ms) };
        let _ = writeln!(
            out,
            "| {} | {gr} | {how} | {:.1} s | {} | {} | {:.0} ms | {vs} | {fib} | {:.1} s |",
            k.name(),
            DOWN.as_secs_f64(),
            s.sent,
            s.lost(),
            s.max_gap as f64 * STREAM_INTERVAL_MS,
            s.restart_s
        );
    };
    for (k, r) in rows {
        match &r.gr {
            Some(s) => {
                let vs = match (k, m_lost) {
                    (SpeakerKind::Mooring, _) => String::new(),
                    (_, Some(m)) if m == s.lost() => "same".into(),
                    (_, Some(m)) => format!("{:+}", s.lost() as i64 - m as i64),
                    _ => "-".into(),
                };
                line(&mut out, *k, &format!("on (FRR sees `{}`)", r.gr_mode), how_stopped(*k), s, vs);
            }
            None => {
                let why = r.error.as_deref().map(|e| format!("not measured: {e}")).unwrap_or_default();
                let _ = writeln!(out, "| {} | on | {} | - | - | - | - | - | - | {why} |", k.name(), how_stopped(*k));
            }
        }
        if let Some(s) = &r.no_gr {
            line(&mut out, *k, "**off** (baseline)", "SIGTERM (Cease), started again", s, String::new());
        }
    }

    let _ = writeln!(out, "\n### Targets (failover)\n");
    let mut all_met = true;
    // Not measured because Mooring's run failed counts as missed; because
    // it was not asked for (`--speakers`) or bfdd is missing, not.
    let failed = mooring.and_then(|m| m.error.as_ref());
    let mut check = |what: String, ok: Option<bool>| {
        let verdict = match (ok, failed) {
            (Some(true), _) => "met",
            (Some(false), _) => {
                all_met = false;
                "MISSED"
            }
            (None, Some(_)) => {
                all_met = false;
                "not measured (the run failed)"
            }
            (None, None) => "not measured",
        };
        let _ = writeln!(out, "- {what}: {verdict}");
    };
    let hold_ms = HOLD_S as f64 * 1e3;
    let m_kill = mooring.and_then(|m| stats(&m.kill));
    check(
        format!(
            "Mooring kill -9: the router drops the next hop on the connection's end, not the hold timer \
             (max < {HOLD_S} s; got {})",
            m_kill.map(|s| format!("max {:.0} ms", s.2)).unwrap_or("-".into())
        ),
        m_kill.map(|s| s.2 < hold_ms),
    );
    let m_bh = mooring.and_then(|m| stats(&m.blackhole));
    check(
        format!(
            "Mooring blackholed: withdrawn within the hold time + 1 s (≤ {} s; got {})",
            HOLD_S + 1,
            m_bh.map(|s| format!("max {:.2} s", s.2 / 1e3)).unwrap_or("-".into())
        ),
        m_bh.map(|s| s.2 <= hold_ms + 1e3),
    );
    let m_bfd = mooring.and_then(|m| stats(&m.bfd));
    let bfd_detect = (BFD_MS * BFD_MULT) as f64;
    check(
        format!(
            "Mooring blackholed, BFD {BFD_MS} ms × {BFD_MULT}: withdrawn within the detection time + 1 s (≤ {:.1} s; \
             got {})",
            (bfd_detect + 1e3) / 1e3,
            m_bfd.map(|s| format!("max {:.2} s", s.2 / 1e3)).unwrap_or("-".into())
        ),
        m_bfd.map(|s| s.2 <= bfd_detect + 1e3),
    );
    let m_gr = mooring.and_then(|m| m.gr.as_ref());
    check(
        format!(
            "Mooring graceful restart: zero packets lost (got {})",
            m_gr.map(|s| format!("{} of {}", s.lost(), s.sent)).unwrap_or("-".into())
        ),
        m_gr.map(|s| s.lost() == 0),
    );
    let m_base = mooring.and_then(|m| m.no_gr.as_ref());
    check(
        format!(
            "(control) the same restart without graceful restart loses packets (got {})",
            m_base.map(|s| format!("{} of {}", s.lost(), s.sent)).unwrap_or("-".into())
        ),
        m_base.map(|s| s.lost() > 0),
    );
    Report { text: out, all_met }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(sent: u64, received: u64) -> Stream {
        Stream { sent, received, max_gap: sent - received, fib_gaps: 0, fib_out_ms: 0.0, restart_s: 2.5 }
    }

    fn mooring() -> Row {
        Row {
            kill: vec![3.0, 1.0, 2.0],
            blackhole: vec![2500.0],
            bfd: vec![800.0],
            gr: Some(stream(4000, 4000)),
            gr_mode: "Restart".into(),
            no_gr: Some(stream(4000, 3900)),
            error: None,
        }
    }

    #[test]
    fn every_target_met() {
        let gobgp = Row { kill: vec![4.0, 4.0, 5.0], blackhole: vec![2600.0], ..Row::default() };
        let r = report(&[(SpeakerKind::Mooring, mooring()), (SpeakerKind::GoBgp, gobgp)]);
        assert!(r.all_met, "{}", r.text);
        // min, p50, max and the ratio of the medians (4 / 2).
        assert!(
            r.text.contains("| Mooring | TCP connection closed | 3 | 1.0 | 2.0 | 3.0 |  | 3, 1, 2 |"),
            "{}",
            r.text
        );
        assert!(r.text.contains("| GoBGP | TCP connection closed | 3 | 4.0 | 4.0 | 5.0 | 2.00× |"), "{}", r.text);
        assert!(r.text.contains("| GoBGP | BFD (300 ms × 3) | 0 | - | - | - | - | not measured: GoBGP has no BFD |"));
        assert!(r.text.contains("zero packets lost (got 0 of 4000): met"));
        assert!(r.text.contains("loses packets (got 100 of 4000): met"));
        assert!(r.text.contains("| GoBGP | on | kill -9"), "a GoBGP row without a stream says how it would stop");
    }

    #[test]
    fn a_slow_kill_or_a_lost_packet_misses() {
        let mut m = mooring();
        m.kill.push(3100.0);
        let r = report(&[(SpeakerKind::Mooring, m)]);
        assert!(!r.all_met);
        assert!(r.text.contains("(max < 3 s; got max 3100 ms): MISSED"), "{}", r.text);
        let mut m = mooring();
        m.gr = Some(stream(4000, 3999));
        assert!(!report(&[(SpeakerKind::Mooring, m)]).all_met);
    }

    #[test]
    fn a_failed_run_is_not_a_met_target() {
        let failed = Row { kill: vec![2.0], error: Some("bird exited".into()), ..Row::default() };
        let r = report(&[(SpeakerKind::Mooring, failed)]);
        assert!(!r.all_met);
        assert!(r.text.contains("zero packets lost (got -): not measured (the run failed)"), "{}", r.text);
        // Not asked for: nothing is missed.
        let r = report(&[(SpeakerKind::Bird, Row::default())]);
        assert!(r.all_met, "{}", r.text);
    }
}
