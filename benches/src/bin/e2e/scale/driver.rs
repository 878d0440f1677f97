//! The scale measurements: fan-out (initial announce to P sinks, idle,
//! re-announce rounds on ROUTE-REFRESH) and fan-in (bring-up of S
//! speakers, idle, re-announce rounds on `clear bgp * soft in`), with CPU
//! and memory from /proc.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mooring_lab::procfs::{cpu, cpu_all, cpu_between, cpu_sum, mem, reset_hwm, Mem};
use mooring_lab::{epoch, poll_every, run, sleep, Proc};

use super::report::{FanIn, FanOut, Sizes};
use super::scenario::{FanInLab, FanOutLab};
use super::{FANIN_VIPS, RE_WINDOW};
use crate::common::{human, scaled, Bins, SpeakerKind};

/// The value of `key=` in a line.
fn kv<T: std::str::FromStr>(line: &str, key: &str) -> T {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

/// Context switches of every live thread of `pid` (voluntary and not):
/// how often the process was put to sleep or preempted, i.e. about how
/// often it woke up.
fn switches(pid: i32) -> u64 {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    rd.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .flat_map(|s| {
            s.lines()
                .filter(|l| l.starts_with("voluntary_ctxt_switches:") || l.starts_with("nonvoluntary_ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// The number of threads of `pid`.
fn threads(pid: i32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count() as u64).unwrap_or(0)
}

/// A. One speaker of `kind`, V VIPs to P sinks.
pub fn fanout(kind: SpeakerKind, z: &Sizes, bins: &Bins) -> FanOut {
    let (v, p) = (z.vips, z.peers);
    let lab = FanOutLab::new(v, p, bins);
    // The speaker, its table loaded before its sessions may come up.
    let mut speaker = lab.speaker(kind, v);
    let t_enable = epoch();
    speaker.enable(&lab.lab);
    let pid = speaker.proc().pid;

    // Every sink holding V.
    let timeout = scaled(v * p, 60, 30);
    let mut r = FanOut::default();
    let mut last = 0f64;
    for s in &lab.sinks {
        let line = lab.lab.wait_output(s, "RESULT", timeout);
        r.initial_slowest = r.initial_slowest.max(kv::<f64>(&line, "seconds"));
        last = last.max(kv::<f64>(&line, "t") / 1e9);
    }
    r.initial_wall = last - t_enable;
    eprintln!(
        "  fan-out {} ({} VIPs x {p} peers): every sink holds {} after {:.3} s (slowest peer {:.3} s from its Established)",
        kind.name(),
        human(v),
        human(v),
        r.initial_wall,
        r.initial_slowest
    );

    // Idle.
    sleep(Duration::from_secs(1));
    let m = mem(pid);
    r.hwm_initial = m.hwm;
    r.threads = threads(pid);
    let (a, w) = (cpu(pid), switches(pid));
    let t = Instant::now();
    sleep(z.idle_out);
    let (b, w2) = (cpu(pid), switches(pid));
    r.idle_pct = 100.0 * cpu_between(&a, &b) / t.elapsed().as_secs_f64();
    r.idle_wakeups = w2.saturating_sub(w) as f64 / t.elapsed().as_secs_f64();
    r.rss_idle = mem(pid).rss;

    // Full re-announce: every sink asks for a ROUTE-REFRESH at once.
    for round in 1..=z.rounds {
        reset_hwm(pid);
        let a = cpu(pid);
        let t0 = epoch();
        for s in &lab.sinks {
            s.signal(libc::SIGUSR1);
        }
        let mut end = 0f64;
        let mut updates = 0u64;
        for s in &lab.sinks {
            let line = lab.lab.wait_output(s, &format!("REFRESHED round={round} "), timeout);
            end = end.max(kv::<f64>(&line, "t") / 1e9);
            updates += kv::<u64>(&line, "updates");
        }
        let b = cpu(pid);
        let wall = end - t0;
        let c = cpu_between(&a, &b);
        r.re_hwm = r.re_hwm.max(mem(pid).hwm);
        eprintln!(
            "  fan-out {} re-announce {round}: {wall:.4} s, {updates} UPDATEs, speaker CPU {c:.3} s",
            kind.name()
        );
        r.re_wall.push(wall);
        r.re_cpu.push(c);
        sleep(Duration::from_millis(500));
    }
    r
}

/// B. S speakers of each kind in turn, in one lab.
pub fn fanin(kinds: &[SpeakerKind], z: &Sizes) -> Vec<FanIn> {
    let t = Instant::now();
    let lab = FanInLab::new(z.nodes);
    eprintln!("  fan-in: {} node namespaces in {:.1} s", z.nodes, t.elapsed().as_secs_f64());
    kinds.iter().map(|&k| fanin_one(&lab, k, z)).collect()
}

fn fanin_one(lab: &FanInLab, kind: SpeakerKind, z: &Sizes) -> FanIn {
    let s = lab.nodes.len();
    let ips: HashSet<&str> = lab.nodes.iter().map(|n| n.v4.as_str()).collect();
    let frr = lab.router();
    let frr_pids = [frr.bgpd.pid, frr.zebra.pid];
    let mut r = FanIn::default();

    let t = Instant::now();
    let speakers = lab.speakers(kind);
    let procs: Vec<Proc> = speakers.iter().map(|s| s.proc().clone()).collect();
    eprintln!("  fan-in {}: {s} speakers started in {:.1} s", kind.name(), t.elapsed().as_secs_f64());
    let mut shown = Instant::now();
    poll_every(
        &format!("FRR: {s} {} sessions Established with {FANIN_VIPS} routes each", kind.name()),
        Duration::from_secs(120 + s as u64),
        Duration::from_millis(200),
        || {
            let (est, full) = lab.progress(&frr);
            if shown.elapsed() > Duration::from_secs(5) {
                eprintln!("    FRR: {est}/{s} Established, {full} with {FANIN_VIPS} routes");
                shown = Instant::now();
            }
            (full == s).then_some(())
        },
    );
    r.bringup = t.elapsed().as_secs_f64();
    let (_, free, _) = run(&["free", "-m"]);
    let avail = free.lines().find(|l| l.starts_with("Mem:")).and_then(|l| l.split_whitespace().nth(6)).unwrap_or("?");
    eprintln!(
        "  fan-in {}: FRR has {s} sessions x {FANIN_VIPS} routes {:.1} s after the first start ({avail} MiB available)",
        kind.name(),
        r.bringup
    );

    // Idle.
    sleep(Duration::from_secs(2));
    let pids: Vec<i32> = procs.iter().map(|p| p.pid).collect();
    let mems: Vec<Mem> = pids.iter().map(|&p| mem(p)).collect();
    r.rss_mean = mems.iter().map(|m| m.rss as f64).sum::<f64>() / s as f64;
    r.rss_max = mems.iter().map(|m| m.rss).max().unwrap_or(0);
    r.pss_total = mems.iter().map(|m| m.pss).sum();
    r.anon_mean = mems.iter().map(|m| m.anon as f64).sum::<f64>() / s as f64;
    r.frr_rss = frr_pids.iter().map(|&p| mem(p).rss).sum();
    r.threads = pids.iter().map(|&p| threads(p)).sum::<u64>() as f64 / s as f64;
    let w: u64 = pids.iter().map(|&p| switches(p)).sum();
    let (a, fa) = (cpu_all(&pids), cpu_all(&frr_pids));
    let t = Instant::now();
    sleep(z.idle_in);
    let (b, fb) = (cpu_all(&pids), cpu_all(&frr_pids));
    let w2: u64 = pids.iter().map(|&p| switches(p)).sum();
    let el = t.elapsed().as_secs_f64();
    r.idle_wakeups = w2.saturating_sub(w) as f64 / el;
    r.idle_pct = 100.0 * cpu_sum(&a, &b) / el;
    r.frr_idle_pct = 100.0 * cpu_sum(&fa, &fb) / el;

    // Full re-announce: FRR asks every speaker for its routes again.
    for round in 1..=z.rounds {
        for &p in &pids {
            reset_hwm(p);
        }
        reset_hwm(frr.bgpd.pid);
        let (a, fa) = (cpu_all(&pids), cpu_all(&frr_pids));
        let t0 = epoch();
        frr.vtysh("clear bgp ipv4 unicast * soft in");
        let (end, asked) = poll_every(
            &format!("{}: an UPDATE from each of the {s} speakers after the ROUTE-REFRESH", kind.name()),
            Duration::from_secs(60),
            Duration::from_millis(20),
            || {
                let segs = lab.segments(t0);
                let mut answered: HashMap<&str, f64> = HashMap::new();
                let mut asked: HashSet<&str> = HashSet::new();
                for (t, src, dst, types) in &segs {
                    if ips.contains(src.as_str()) && types.contains(&2) {
                        answered.entry(src).or_insert(*t);
                    }
                    if ips.contains(dst.as_str()) && types.contains(&5) {
                        asked.insert(dst);
                    }
                }
                (answered.len() == s).then(|| (answered.values().fold(0f64, |m, &t| m.max(t)), asked.len()))
            },
        );
        // The window: at least RE_WINDOW, and half a second past the last answer.
        let until = t0 + RE_WINDOW.max(end - t0 + 0.5);
        let now = epoch();
        if now < until {
            sleep(Duration::from_secs_f64(until - now));
        }
        let (b, fb) = (cpu_all(&pids), cpu_all(&frr_pids));
        let window = epoch() - t0;
        let c = cpu_sum(&a, &b);
        let fc = cpu_sum(&fa, &fb);
        assert_eq!(asked, s, "FRR sent a ROUTE-REFRESH to only {asked} of {s} {} speakers", kind.name());
        r.re_hwm_max = r.re_hwm_max.max(pids.iter().map(|&p| mem(p).hwm).max().unwrap_or(0));
        eprintln!(
            "  fan-in {} re-announce {round}: ROUTE-REFRESH to {asked}/{s}, all answered after {:.3} s; \
             CPU in the {window:.2} s window: speakers {c:.3} s, FRR {fc:.3} s",
            kind.name(),
            end - t0
        );
        r.re_wall.push(end - t0);
        r.re_window.push(window);
        r.re_cpu.push(c);
        r.re_cpu_above_idle.push(c - r.idle_pct / 100.0 * window);
        r.re_frr_cpu.push(fc);
        sleep(Duration::from_millis(500));
    }

    // The sessions must have stayed up through the measurements.
    let (est, full) = lab.progress(&frr);
    if full != s {
        eprintln!(
            "  WARNING: fan-in {}: after the re-announces FRR shows {est}/{s} Established, {full} with \
             {FANIN_VIPS} routes (a session flapped: the figures include its re-establishment)",
            kind.name()
        );
    }
    let t = Instant::now();
    lab.lab.stop(&procs, Duration::from_secs(5));
    lab.lab.stop(&frr.procs(), Duration::from_secs(10));
    eprintln!("  fan-in {}: stopped in {:.1} s", kind.name(), t.elapsed().as_secs_f64());
    r
}
