//! The central-vs-per-node report: what each mode measured in, one
//! markdown table (with the ratio central / per-node) out. Pure: no lab,
//! no clock, no printing.

use std::fmt::Write;

use mooring_lab::procfs::mib;

/// How the nodes' VIPs reach the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A speaker per node, next-hop self.
    PerNode,
    /// The same with BFD on every session.
    PerNodeBfd,
    /// One speaker, every node a path (ADD-PATH).
    Central,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::PerNode => "per-node",
            Mode::PerNodeBfd => "per-node + BFD",
            Mode::Central => "central",
        }
    }
}

/// What one mode measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Speaker processes.
    pub speakers: usize,
    /// Seconds to start them (within `converge`).
    pub started: f64,
    /// From the first start to the FIB holding every next hop (s).
    pub converge: f64,
    /// FRR's (bgpd + zebra) CPU seconds from the first start to then.
    pub frr_cpu_converge: f64,
    /// Sessions Established at FRR.
    pub sessions: usize,
    /// Paths in FRR's RIB for the VIPs.
    pub rib_paths: usize,
    /// Next hops of the VIPs in the kernel FIB.
    pub fib_hops: usize,
    /// bgpd's VmRSS before any session, settled, and its VmHWM (KiB).
    pub bgpd_rss_empty: u64,
    pub bgpd_rss: u64,
    pub bgpd_hwm: u64,
    pub zebra_rss: u64,
    /// FRR's bfdd, when it runs (KiB).
    pub bfdd_rss: Option<u64>,
    /// At idle, % of one core.
    pub frr_idle_pct: f64,
    pub speakers_idle_pct: f64,
    /// PSS of all speakers (KiB).
    pub speakers_pss: u64,
    /// One node unplugged → its next hop out of every VIP's FIB route (s).
    pub death: f64,
}

/// central / per-node.
fn ratio(c: f64, p: f64) -> String {
    if p <= 0.0 {
        return "-".into();
    }
    let r = c / p;
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 1.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

/// The table for `nodes` nodes carrying `vips` VIPs each: a column per
/// measured mode, and central / per-node when both were.
pub fn report(nodes: usize, vips: u32, idle_secs: u64, modes: &[(Mode, Figures)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### Router-side cost and node death: FRR with {nodes} nodes × {vips} VIPs, a speaker per node vs one central speaker (ADD-PATH)\n"
    );
    let find = |m: Mode| modes.iter().find(|(k, _)| *k == m).map(|(_, f)| f);
    let (p, c) = (find(Mode::PerNode), find(Mode::Central));
    let mut head = String::from("| figure |");
    for (m, _) in modes {
        head += &format!(" {} |", m.name());
    }
    let both = p.is_some() && c.is_some();
    if both {
        head += " central/per-node |";
    }
    let _ = writeln!(out, "{head}\n|---{}|", "|---".repeat(modes.len() + usize::from(both)));
    let mut row = |name: &str, decimals: usize, get: &dyn Fn(&Figures) -> Option<f64>| {
        let mut line = format!("| {name} |");
        for (_, f) in modes {
            line += &match get(f) {
                Some(v) => format!(" {v:.decimals$} |"),
                None => " - |".into(),
            };
        }
        if let (Some(p), Some(c)) = (p, c) {
            line += &format!(
                " {} |",
                match (get(c), get(p)) {
                    (Some(c), Some(p)) => ratio(c, p),
                    _ => "-".into(),
                }
            );
        }
        let _ = writeln!(out, "{line}");
    };
    row("speaker processes", 0, &|f| Some(f.speakers as f64));
    row("BGP sessions at FRR (Established)", 0, &|f| Some(f.sessions as f64));
    row("RIB paths (FRR, the VIPs)", 0, &|f| Some(f.rib_paths as f64));
    row("FIB next hops (kernel, the VIPs)", 0, &|f| Some(f.fib_hops as f64));
    row("time to converge: first start → FIB complete (s)", 2, &|f| Some(f.converge));
    row("  of which starting the speakers (s)", 2, &|f| Some(f.started));
    row("FRR CPU (bgpd + zebra + bfdd) through the convergence (s)", 2, &|f| Some(f.frr_cpu_converge));
    row("bgpd RSS, settled (MiB)", 1, &|f| Some(mib(f.bgpd_rss as f64)));
    row("  growth over the same bgpd without sessions (MiB)", 1, &|f| {
        Some(mib(f.bgpd_rss.saturating_sub(f.bgpd_rss_empty) as f64))
    });
    row("bgpd peak RSS, VmHWM (MiB)", 1, &|f| Some(mib(f.bgpd_hwm as f64)));
    row("zebra RSS (MiB)", 1, &|f| Some(mib(f.zebra_rss as f64)));
    row("bfdd RSS (MiB)", 1, &|f| f.bfdd_rss.map(|r| mib(r as f64)));
    row(&format!("FRR CPU at idle ({idle_secs} s; % of one core)"), 2, &|f| Some(f.frr_idle_pct));
    row("speakers: PSS of all (MiB)", 1, &|f| Some(mib(f.speakers_pss as f64)));
    row(&format!("speakers: CPU at idle, all ({idle_secs} s; % of one core)"), 2, &|f| Some(f.speakers_idle_pct));
    row("node death (unplugged) → its next hop out of the FIB (s)", 3, &|f| Some(f.death));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_with_the_ratio() {
        let p = Figures {
            speakers: 100,
            sessions: 100,
            rib_paths: 1000,
            fib_hops: 1000,
            converge: 4.0,
            bgpd_rss_empty: 10 * 1024,
            bgpd_rss: 30 * 1024,
            death: 2.5,
            ..Figures::default()
        };
        let c = Figures {
            speakers: 1,
            sessions: 1,
            rib_paths: 1000,
            fib_hops: 1000,
            converge: 0.5,
            bgpd_rss_empty: 10 * 1024,
            bgpd_rss: 12 * 1024,
            death: 0.7,
            ..Figures::default()
        };
        let b = Figures { speakers: 100, bfdd_rss: Some(3 * 1024), death: 0.9, ..p.clone() };
        let t = report(100, 10, 5, &[(Mode::PerNode, p.clone()), (Mode::PerNodeBfd, b), (Mode::Central, c.clone())]);
        assert!(t.contains("FRR with 100 nodes × 10 VIPs"), "{t}");
        let head = "| figure | per-node | per-node + BFD | central | central/per-node |\n|---|---|---|---|---|";
        assert!(t.contains(head), "{t}");
        assert!(t.contains("| BGP sessions at FRR (Established) | 100 | 100 | 1 | 0.01× |"), "{t}");
        assert!(t.contains("| RIB paths (FRR, the VIPs) | 1000 | 1000 | 1000 | 1.0× |"), "{t}");
        assert!(t.contains("| time to converge: first start → FIB complete (s) | 4.00 | 4.00 | 0.50 | 0.12× |"), "{t}");
        assert!(t.contains("| bgpd RSS, settled (MiB) | 30.0 | 30.0 | 12.0 | 0.40× |"), "{t}");
        assert!(
            t.contains("|   growth over the same bgpd without sessions (MiB) | 20.0 | 20.0 | 2.0 | 0.10× |"),
            "{t}"
        );
        assert!(t.contains("| bfdd RSS (MiB) | - | 3.0 | - | - |"), "{t}");
        assert!(
            t.contains("| node death (unplugged) → its next hop out of the FIB (s) | 2.500 | 0.900 | 0.700 | 0.28× |"),
            "{t}"
        );
        // Nothing measured: no ratio.
        assert!(t.contains("| FRR CPU at idle (5 s; % of one core) | 0.00 | 0.00 | 0.00 | - |"), "{t}");
        // One mode alone: no ratio column.
        let t = report(100, 10, 5, &[(Mode::Central, c)]);
        assert!(t.contains("| figure | central |\n|---|---|\n"), "{t}");
    }
}
