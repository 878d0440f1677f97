//! Issue 6, benchmark 5: scale (`--bench scale`).
//!
//! A. Fan-out: one speaker (Mooring, GoBGP, BIRD) in namespace `mit42-spk`
//!    announces V /32s to P counting sinks (`bgp-sink --stay`, one address
//!    each on the router namespace's bridge). Measured: the time until every
//!    sink holds V, the speaker's RSS and CPU at idle, and a full
//!    re-announce: every sink sends a ROUTE-REFRESH at once (SIGUSR1) and
//!    the clock runs until every sink has received all V again.
//! B. Fan-in: one FRR router (`mit43-r`, the lab edge: listen range, timers
//!    1 3, maximum-paths 16) and S node namespaces, each running one speaker
//!    of one kind announcing the same 10 VIPs. Measured: the time until FRR
//!    has S sessions Established with 10 routes each, the speakers' RSS and
//!    CPU at idle, and a full re-announce triggered by `clear bgp ipv4
//!    unicast * soft in` (FRR sends ROUTE-REFRESH to every speaker; a
//!    tshark capture on the bridge confirms the requests and times the
//!    answers); FRR's own CPU and RSS for reference. The namespaces are
//!    built once and reused by every speaker kind; FRR is restarted for each.
//!
//! Every session: hold time 3 s, a KEEPALIVE every second (the lab edge's
//! `timers 1 3`), so idle means one KEEPALIVE per second per session.
//! CPU is utime+stime of the process (all threads, from /proc/PID/stat;
//! per-thread schedstat for sub-tick resolution); memory is VmRSS, VmHWM
//! (the peak, reset with `clear_refs` before each re-announce) and PSS.
//!
//! Sizes: full 10k VIPs x 16 peers and 200 nodes, `--quick` 1k x 4 and 15;
//! `--scale-vips`, `--scale-peers`, `--scale-nodes` override them, `--reps`
//! sets the re-announce rounds (the tables show medians). See benches/README.md.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mooring_integration::{edge_frr, Frr, Lab, Node, Proc};
use serde_json::Value;

use crate::daemons::{epoch, prefix, scaled, tshark_args, wait_capturing, write_mrt, Bins, SpeakerKind};
use crate::lab::{check_interrupted, poll, run as cmd, run_ok, sleep, tail};
use crate::procfs::{cpu, cpu_all, cpu_between, cpu_sum, mem, mib, reset_hwm, Mem};
use crate::{human, median, Opts};

const FANOUT_LAB: u8 = 42;
const FANIN_LAB: u8 = 43;
const SPEAKER_AS: u32 = 64513;
const ROUTER_AS: u32 = 64512;
/// The gobgpd API port (on each namespace's own loopback).
const GOBGP_PORT: &str = "50145";
/// The VIPs every fan-in node announces.
const FANIN_VIPS: u32 = 10;
/// The shortest CPU window of a fan-in re-announce (s).
const RE_WINDOW: f64 = 2.0;

// ---------------------------------------------------------------------------
// Helpers.

/// The value of `key=` in a line.
fn kv<T: std::str::FromStr>(line: &str, key: &str) -> T {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

fn gobgp_cli(ns: &str, args: &[&str]) -> (bool, String, String) {
    let mut a = vec!["ip", "netns", "exec", ns, "gobgp", "-p", GOBGP_PORT];
    a.extend_from_slice(args);
    cmd(&a)
}

/// gobgpd in `ns` with `toml`; returns once its API answers.
fn start_gobgpd(lab: &Lab, ns: &str, name: &str, toml: &str) -> Proc {
    let conf = lab.path(&format!("{name}.toml"));
    std::fs::write(&conf, toml).unwrap();
    let api = format!("127.0.0.1:{GOBGP_PORT}");
    lab.spawn(
        ns,
        name,
        &["gobgpd", "-f", conf.to_str().unwrap(), "-t", "toml", "--api-hosts", &api, "--pprof-disable", "-l", "warn"],
    )
}

fn wait_gobgpd(lab: &Lab, ns: &str, p: &Proc) {
    poll(&format!("{}: gobgpd API", p.name), Duration::from_secs(60), Duration::from_millis(50), || {
        if lab.wait_exit(p, Duration::ZERO) {
            panic!("{} exited:\n{}", p.name, tail(&p.output(), 30));
        }
        gobgp_cli(ns, &["global"]).0.then_some(())
    });
}

/// `gobgp mrt inject global FILE` in `ns`, then wait for the global RIB to hold `n`.
fn gobgp_inject(ns: &str, mrt: &std::path::Path, n: u32) {
    run_ok(&["ip", "netns", "exec", ns, "gobgp", "-p", GOBGP_PORT, "mrt", "inject", "global", mrt.to_str().unwrap()]);
    poll(
        &format!("GoBGP in {ns}: global RIB holding {n} routes"),
        scaled(n, 30, 60),
        Duration::from_millis(50),
        || {
            let (_, out, _) = gobgp_cli(ns, &["global", "rib", "summary", "-a", "ipv4"]);
            let dest = out.split("Destination:").nth(1)?.split(',').next()?.trim().parse::<u32>().ok()?;
            (dest >= n).then_some(())
        },
    );
}

/// A GoBGP neighbor (held down until `gobgp neighbor ADDR enable`): hold 3 s, KEEPALIVE every second.
fn gobgp_neighbor(addr: &str) -> String {
    format!(
        "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{addr}\"\n    peer-as = {ROUTER_AS}\n    \
         admin-down = true\n  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = 3\n    \
         keepalive-interval = 1\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
         afi-safi-name = \"ipv4-unicast\"\n"
    )
}

/// BIRD's configuration: `n` static /32s exported to one BGP protocol per
/// neighbor (`peer1`, ...; `disabled` when asked).
fn bird_conf(router_id: &str, n: u32, neighbors: &[String], disabled: bool) -> String {
    let mut c = format!("router id {router_id};\nprotocol device {{}}\nprotocol static vips {{\n  ipv4;\n");
    c.reserve(n as usize * 32);
    for i in 0..n {
        c.push_str("  route ");
        c.push_str(&prefix(i));
        c.push_str(" blackhole;\n");
    }
    c.push_str("}\n");
    for (k, nb) in neighbors.iter().enumerate() {
        c.push_str(&format!(
            "protocol bgp peer{} {{\n  local {router_id} as {SPEAKER_AS};\n  neighbor {nb} as {ROUTER_AS};\n  direct;\n{}  \
             hold time 3; keepalive time 1;\n  connect delay time 1; connect retry time 1;\n  \
             ipv4 {{ import none; export all; }};\n}}\n",
            k + 1,
            if disabled { "  disabled;\n" } else { "" }
        ));
    }
    c
}

/// Start BIRD in `ns`: (process, control socket).
fn start_bird(lab: &Lab, ns: &str, name: &str, conf: &str) -> (Proc, String) {
    let path = lab.path(&format!("{name}.conf"));
    std::fs::write(&path, conf).unwrap();
    let sock = lab.path(&format!("{name}.ctl")).to_str().unwrap().to_string();
    let pid = lab.path(&format!("{name}.pid"));
    let p =
        lab.spawn(ns, name, &["bird", "-f", "-c", path.to_str().unwrap(), "-s", &sock, "-P", pid.to_str().unwrap()]);
    (p, sock)
}

fn wait_bird(lab: &Lab, p: &Proc, sock: &str, n: u32) {
    poll(&format!("{}: {n} static routes", p.name), scaled(n, 30, 30), Duration::from_millis(50), || {
        if lab.wait_exit(p, Duration::ZERO) {
            panic!("{} exited:\n{}", p.name, tail(&p.output(), 30));
        }
        let (_, out, _) = cmd(&["birdc", "-s", sock, "show", "route", "count"]);
        let c = out.lines().find(|l| l.contains(" routes for "))?.split_whitespace().next()?.parse::<u32>().ok()?;
        (c >= n).then_some(())
    });
}

// ---------------------------------------------------------------------------
// A. Fan-out.

#[derive(Debug, Clone, Default)]
struct FanOut {
    /// The slowest peer: its Established to its sink holding V (s).
    initial_slowest: f64,
    /// From enabling the sessions to the last sink holding V (s).
    initial_wall: f64,
    /// Peak RSS from the start through the initial announce (KiB).
    hwm_initial: u64,
    rss_idle: u64,
    /// Idle CPU, % of one core.
    idle_pct: f64,
    /// Re-announce: wall seconds and CPU seconds per round; peak RSS.
    re_wall: Vec<f64>,
    re_cpu: Vec<f64>,
    re_hwm: u64,
}

fn fanout(kind: SpeakerKind, v: u32, p: u32, rounds: usize, idle: Duration, bins: &Bins) -> FanOut {
    assert!((1..=150).contains(&p), "--scale-peers must be 1..=150");
    assert!(v <= 1 << 24, "--scale-vips must be at most 2^24");
    let lab = Lab::new(FANOUT_LAB);
    let spk = lab.node_at("spk", 10);
    let addrs: Vec<String> = (0..p).map(|i| format!("198.18.{FANOUT_LAB}.{}", 101 + i)).collect();
    for a in &addrs {
        run_ok(&["ip", "-n", &lab.router, "addr", "add", &format!("{a}/24"), "dev", "br0"]);
    }
    let sinks: Vec<Proc> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            lab.spawn(
                &lab.router,
                &format!("sink{}", i + 1),
                &[
                    bins.sink.to_str().unwrap(),
                    "--listen",
                    &format!("{a}:179"),
                    "--as",
                    &ROUTER_AS.to_string(),
                    "--router-id",
                    a,
                    "--count",
                    &v.to_string(),
                    "--stay",
                    "--hold",
                    "3",
                ],
            )
        })
        .collect();
    for s in &sinks {
        lab.wait_output(s, "LISTENING", Duration::from_secs(10));
    }

    // The speaker, its table loaded before its sessions may come up.
    let (speaker, t_enable) = match kind {
        SpeakerKind::Mooring => {
            let mut text = String::with_capacity(v as usize * 16);
            for i in 0..v {
                text.push_str(&prefix(i));
                text.push('\n');
            }
            let file = lab.path("prefixes.txt");
            std::fs::write(&file, text).unwrap();
            let mut args = vec![
                bins.mooring.to_str().unwrap().to_string(),
                "announce".into(),
                "--as".into(),
                SPEAKER_AS.to_string(),
                "--router-id".into(),
                spk.v4.clone(),
            ];
            for a in &addrs {
                args.push("--peer".into());
                args.push(format!("{a},as={ROUTER_AS},families=ipv4,connect-retry=1,hold=3,keepalive=1"));
            }
            args.push("--prefix-file".into());
            args.push(file.to_str().unwrap().into());
            let t = epoch();
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            (lab.spawn_env(&spk.ns, "mooring", &a, &[("NO_COLOR", "1")]), t)
        }
        SpeakerKind::GoBgp => {
            let mut toml = format!("[global.config]\n  as = {SPEAKER_AS}\n  router-id = \"{}\"\n  port = -1\n", spk.v4);
            for a in &addrs {
                toml.push_str(&gobgp_neighbor(a));
            }
            let g = start_gobgpd(&lab, &spk.ns, "gobgpd", &toml);
            wait_gobgpd(&lab, &spk.ns, &g);
            let mrt = lab.path("routes.mrt");
            write_mrt(&mrt, v);
            gobgp_inject(&spk.ns, &mrt, v);
            let t = epoch();
            for a in &addrs {
                let (ok, _, err) = gobgp_cli(&spk.ns, &["neighbor", a, "enable"]);
                assert!(ok, "gobgp neighbor {a} enable: {err}");
            }
            (g, t)
        }
        SpeakerKind::Bird => {
            let (b, sock) = start_bird(&lab, &spk.ns, "bird", &bird_conf(&spk.v4, v, &addrs, true));
            wait_bird(&lab, &b, &sock, v);
            let t = epoch();
            run_ok(&["birdc", "-s", &sock, "enable", "\"peer*\""]);
            (b, t)
        }
    };

    // Every sink holding V.
    let timeout = scaled(v * p, 60, 30);
    let mut r = FanOut::default();
    let mut last = 0f64;
    for s in &sinks {
        let line = lab.wait_output(s, "RESULT", timeout);
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
    let pid = speaker.pid;
    let m = mem(pid);
    r.hwm_initial = m.hwm;
    let a = cpu(pid);
    let t = Instant::now();
    sleep(idle);
    let b = cpu(pid);
    r.idle_pct = 100.0 * cpu_between(&a, &b) / t.elapsed().as_secs_f64();
    r.rss_idle = mem(pid).rss;

    // Full re-announce: every sink asks for a ROUTE-REFRESH at once.
    for round in 1..=rounds {
        reset_hwm(pid);
        let a = cpu(pid);
        let t0 = epoch();
        for s in &sinks {
            s.signal(libc::SIGUSR1);
        }
        let mut end = 0f64;
        let mut updates = 0u64;
        for s in &sinks {
            let line = lab.wait_output(s, &format!("REFRESHED round={round} "), timeout);
            end = end.max(kv::<f64>(&line, "t") / 1e9);
            updates += kv::<u64>(&line, "updates");
        }
        let b = cpu(pid);
        let wall = end - t0;
        let c = cpu_between(&a, &b);
        r.re_hwm = r.re_hwm.max(mem(pid).hwm);
        eprintln!(
            "  fan-out {} re-announce {round}: {:.4} s, {updates} UPDATEs, speaker CPU {c:.3} s",
            kind.name(),
            wall
        );
        r.re_wall.push(wall);
        r.re_cpu.push(c);
        sleep(Duration::from_millis(500));
    }
    r
}

// ---------------------------------------------------------------------------
// B. Fan-in.

#[derive(Debug, Clone, Default)]
struct FanIn {
    /// From the first speaker started to FRR holding S sessions x 10 routes (s).
    bringup: f64,
    rss_mean: f64,
    rss_max: u64,
    pss_total: u64,
    anon_mean: f64,
    /// All S speakers, % of one core.
    idle_pct: f64,
    frr_idle_pct: f64,
    /// Per round: the speakers' CPU seconds in the window minus their idle
    /// rate times the window.
    re_cpu_above_idle: Vec<f64>,
    frr_rss: u64,
    /// Per round: wall seconds until every speaker had answered, the
    /// window measured, the speakers' and FRR's CPU seconds in it.
    re_wall: Vec<f64>,
    re_window: Vec<f64>,
    re_cpu: Vec<f64>,
    re_frr_cpu: Vec<f64>,
    /// Largest VmHWM of a speaker during the re-announces.
    re_hwm_max: u64,
}

/// FRR as the lab's edge, accepting up to `s` dynamic neighbors.
fn start_router(lab: &Lab, s: u32) -> Frr {
    edge_frr(lab, &[], &format!(" bgp listen limit {}\n", s.max(100) + 10))
}

/// (sessions Established, of which holding 10 routes) per FRR's summary.
fn frr_progress(frr: &Frr, ips: &HashSet<String>) -> (usize, usize) {
    let Some(v) = crate::daemons::vtysh_json_in(&frr.inst, "show bgp ipv4 unicast summary json") else {
        return (0, 0);
    };
    let Some(peers) = v.get("peers").and_then(Value::as_object) else { return (0, 0) };
    let mut est = 0;
    let mut full = 0;
    for (ip, p) in peers {
        if !ips.contains(ip) || p.get("state").and_then(Value::as_str) != Some("Established") {
            continue;
        }
        est += 1;
        if p.get("pfxRcd").and_then(Value::as_u64).unwrap_or(0) >= FANIN_VIPS as u64 {
            full += 1;
        }
    }
    (est, full)
}

/// One captured segment: (time, source, destination, BGP message types).
fn segments(capture: &Proc, after: f64) -> Vec<(f64, String, String, Vec<u8>)> {
    capture
        .output()
        .lines()
        .filter_map(|l| {
            let mut it = l.split('\t');
            let t = it.next()?.trim().parse::<f64>().ok()?;
            if t < after {
                return None;
            }
            let src = it.next()?.to_string();
            let dst = it.next()?.to_string();
            let types = it.next().unwrap_or("").split(',').filter_map(|x| x.trim().parse().ok()).collect();
            Some((t, src, dst, types))
        })
        .collect()
}

/// Start the S speakers of `kind`; returns their processes once all are
/// running with their routes loaded and sessions enabled.
fn start_fanin_speakers(lab: &Lab, kind: SpeakerKind, nodes: &[Node], bins: &Bins) -> Vec<Proc> {
    let router = format!("198.18.{FANIN_LAB}.1");
    let vips: Vec<String> = (0..FANIN_VIPS).map(prefix).collect();
    match kind {
        SpeakerKind::Mooring => nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                check_interrupted();
                let mut args = vec![
                    bins.mooring.to_str().unwrap().to_string(),
                    "announce".into(),
                    "--as".into(),
                    SPEAKER_AS.to_string(),
                    "--router-id".into(),
                    n.v4.clone(),
                    "--peer".into(),
                    format!("{router},as={ROUTER_AS},families=ipv4,connect-retry=1,hold=3,keepalive=1"),
                ];
                for p in &vips {
                    args.push("--prefix".into());
                    args.push(p.clone());
                }
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                lab.spawn_env(&n.ns, &format!("mooring-n{}", i + 1), &a, &[("NO_COLOR", "1")])
            })
            .collect(),
        SpeakerKind::GoBgp => {
            let mrt = lab.path("vips.mrt");
            write_mrt(&mrt, FANIN_VIPS);
            let procs: Vec<Proc> = nodes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    check_interrupted();
                    let toml = format!(
                        "[global.config]\n  as = {SPEAKER_AS}\n  router-id = \"{}\"\n  port = -1\n{}",
                        n.v4,
                        gobgp_neighbor(&router)
                    );
                    start_gobgpd(lab, &n.ns, &format!("gobgpd-n{}", i + 1), &toml)
                })
                .collect();
            for (n, p) in nodes.iter().zip(&procs) {
                wait_gobgpd(lab, &n.ns, p);
                gobgp_inject(&n.ns, &mrt, FANIN_VIPS);
                let (ok, _, err) = gobgp_cli(&n.ns, &["neighbor", &router, "enable"]);
                assert!(ok, "gobgp neighbor {router} enable in {}: {err}", n.ns);
            }
            procs
        }
        SpeakerKind::Bird => {
            let procs: Vec<(Proc, String)> = nodes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    check_interrupted();
                    let conf = bird_conf(&n.v4, FANIN_VIPS, std::slice::from_ref(&router), false);
                    start_bird(lab, &n.ns, &format!("bird-n{}", i + 1), &conf)
                })
                .collect();
            for (p, sock) in &procs {
                wait_bird(lab, p, sock, FANIN_VIPS);
            }
            procs.into_iter().map(|(p, _)| p).collect()
        }
    }
}

fn fanin_one(
    lab: &Lab,
    kind: SpeakerKind,
    nodes: &[Node],
    capture: &Proc,
    rounds: usize,
    idle: Duration,
    bins: &Bins,
) -> FanIn {
    let s = nodes.len();
    let ips: HashSet<String> = nodes.iter().map(|n| n.v4.clone()).collect();
    let frr = start_router(lab, s as u32);
    let frr_pids = [frr.bgpd.pid, frr.zebra.pid];
    let mut r = FanIn::default();

    let t = Instant::now();
    let procs = start_fanin_speakers(lab, kind, nodes, bins);
    eprintln!("  fan-in {}: {s} speakers started in {:.1} s", kind.name(), t.elapsed().as_secs_f64());
    let mut shown = Instant::now();
    poll(
        &format!("FRR: {s} {} sessions Established with {FANIN_VIPS} routes each", kind.name()),
        Duration::from_secs(120 + s as u64),
        Duration::from_millis(200),
        || {
            let (est, full) = frr_progress(&frr, &ips);
            if shown.elapsed() > Duration::from_secs(5) {
                eprintln!("    FRR: {est}/{s} Established, {full} with {FANIN_VIPS} routes");
                shown = Instant::now();
            }
            (full == s).then_some(())
        },
    );
    r.bringup = t.elapsed().as_secs_f64();
    let (_, free, _) = cmd(&["free", "-m"]);
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
    let (a, fa) = (cpu_all(&pids), cpu_all(&frr_pids));
    let t = Instant::now();
    sleep(idle);
    let (b, fb) = (cpu_all(&pids), cpu_all(&frr_pids));
    let el = t.elapsed().as_secs_f64();
    r.idle_pct = 100.0 * cpu_sum(&a, &b) / el;
    r.frr_idle_pct = 100.0 * cpu_sum(&fa, &fb) / el;

    // Full re-announce: FRR asks every speaker for its routes again.
    for round in 1..=rounds {
        for &p in &pids {
            reset_hwm(p);
        }
        reset_hwm(frr.bgpd.pid);
        let (a, fa) = (cpu_all(&pids), cpu_all(&frr_pids));
        let t0 = epoch();
        frr.vtysh("clear bgp ipv4 unicast * soft in");
        let (end, asked) = poll(
            &format!("{}: an UPDATE from each of the {s} speakers after the ROUTE-REFRESH", kind.name()),
            Duration::from_secs(60),
            Duration::from_millis(20),
            || {
                let segs = segments(capture, t0);
                let mut answered: HashMap<&str, f64> = HashMap::new();
                let mut asked: HashSet<&str> = HashSet::new();
                for (t, src, dst, types) in &segs {
                    if ips.contains(src) && types.contains(&2) {
                        answered.entry(src).or_insert(*t);
                    }
                    if ips.contains(dst) && types.contains(&5) {
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
    let (est, full) = frr_progress(&frr, &ips);
    if full != s {
        eprintln!(
            "  WARNING: fan-in {}: after the re-announces FRR shows {est}/{s} Established, {full} with \
             {FANIN_VIPS} routes (a session flapped: the figures include its re-establishment)",
            kind.name()
        );
    }
    let t = Instant::now();
    lab.stop(&procs, Duration::from_secs(5));
    lab.stop(&[frr.bgpd.clone(), frr.zebra.clone()], Duration::from_secs(10));
    eprintln!("  fan-in {}: stopped in {:.1} s", kind.name(), t.elapsed().as_secs_f64());
    r
}

fn fanin(kinds: &[SpeakerKind], s: u32, rounds: usize, idle: Duration, bins: &Bins) -> Vec<(SpeakerKind, FanIn)> {
    assert!((1..=240).contains(&s), "--scale-nodes must be 1..=240");
    let lab = Lab::new(FANIN_LAB);
    let t = Instant::now();
    let nodes: Vec<Node> = (0..s)
        .map(|i| {
            check_interrupted();
            lab.node_at(&format!("n{}", i + 1), (10 + i) as u8)
        })
        .collect();
    eprintln!("  fan-in: {s} node namespaces in {:.1} s", t.elapsed().as_secs_f64());
    // Every BGP segment on the bridge except lone KEEPALIVEs (payload of
    // 19 octets), and ICMP to see the capture running.
    let filter = "icmp or (tcp port 179 and (ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) > 19)";
    let args = tshark_args("br0", filter, &["frame.time_epoch", "ip.src", "ip.dst", "bgp.type"]);
    let capture = lab.spawn(&lab.router, "tshark", &args);
    wait_capturing(&capture, &nodes[0].ns, &format!("198.18.{FANIN_LAB}.1"));
    kinds.iter().map(|&k| (k, fanin_one(&lab, k, &nodes, &capture, rounds, idle, bins))).collect()
}

// ---------------------------------------------------------------------------
// Report.

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

fn print_table(kinds: &[SpeakerKind], rows: &[Row]) {
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
    println!("{head}");
    let cols = kinds.len() + if mooring.is_some() { others.len() } else { 0 };
    println!("|---{}|", "|---".repeat(cols));
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
        println!("{line}");
    }
}

fn med(v: &[f64]) -> f64 {
    median(&mut v.to_vec())
}

/// Benchmark 5. Panics when something does not converge; there is no
/// numeric target, so it returns true.
pub fn run(o: &Opts, bins: &Bins) -> bool {
    let v = o.scale_vips.unwrap_or(if o.quick { 1000 } else { 10_000 });
    let p = o.scale_peers.unwrap_or(if o.quick { 4 } else { 16 });
    let s = o.scale_nodes.unwrap_or(if o.quick { 15 } else { 200 });
    let rounds = o.reps.max(1);
    let idle_out = Duration::from_secs(if o.quick { 3 } else { 10 });
    let idle_in = Duration::from_secs(if o.quick { 5 } else { 10 });
    let kinds = &o.speakers;
    let started = Instant::now();

    eprintln!("scale A (fan-out): one speaker, {} VIPs, {p} peers (bgp-sink)", human(v));
    let outs: Vec<FanOut> = kinds.iter().map(|&k| fanout(k, v, p, rounds, idle_out, bins)).collect();
    eprintln!("scale B (fan-in): FRR with {s} speakers of {FANIN_VIPS} VIPs each");
    let ins: Vec<FanIn> = fanin(kinds, s, rounds, idle_in, bins).into_iter().map(|(_, r)| r).collect();

    let f = |g: &dyn Fn(&FanOut) -> f64| outs.iter().map(|r| Some(g(r))).collect::<Vec<_>>();
    println!(
        "\n### Scale A: one speaker, {} VIPs to {p} peers (bgp-sink receivers; re-announce: median of {rounds})\n",
        human(v)
    );
    print_table(
        kinds,
        &[
            row(
                format!("initial announce: sessions enabled → all {p} sinks hold {} (s)", human(v)),
                f(&|r| r.initial_wall),
                3,
                true,
            ),
            row("initial announce: slowest peer, its Established → all (s)", f(&|r| r.initial_slowest), 3, true),
            row("peak RSS through the initial announce (MiB)", f(&|r| mib(r.hwm_initial as f64)), 1, true),
            row("RSS at idle (MiB)", f(&|r| mib(r.rss_idle as f64)), 1, true),
            row(format!("CPU at idle ({:.0} s; % of one core)", idle_out.as_secs_f64()), f(&|r| r.idle_pct), 2, true),
            row(
                format!("full re-announce: ROUTE-REFRESH from all {p} → all re-received (s)"),
                f(&|r| med(&r.re_wall)),
                4,
                true,
            ),
            row("full re-announce: speaker CPU (s)", f(&|r| med(&r.re_cpu)), 4, true),
            row("peak RSS during the re-announces (MiB)", f(&|r| mib(r.re_hwm as f64)), 1, true),
        ],
    );

    let g = |h: &dyn Fn(&FanIn) -> f64| ins.iter().map(|r| Some(h(r))).collect::<Vec<_>>();
    println!(
        "\n### Scale B: FRR router with {s} speakers × {FANIN_VIPS} VIPs (same VIPs on every node; re-announce: median of {rounds})\n"
    );
    print_table(
        kinds,
        &[
            row(
                format!("bring-up: first start → FRR has {s} sessions × {FANIN_VIPS} routes (s)"),
                g(&|r| r.bringup),
                2,
                true,
            ),
            row("RSS per speaker at idle, mean (MiB)", g(&|r| mib(r.rss_mean)), 1, true),
            row("RSS per speaker at idle, max (MiB)", g(&|r| mib(r.rss_max as f64)), 1, true),
            row(format!("PSS of all {s} speakers (MiB)"), g(&|r| mib(r.pss_total as f64)), 0, true),
            row("private memory (RssAnon) per speaker, mean (MiB)", g(&|r| mib(r.anon_mean)), 2, true),
            row(
                format!("CPU at idle, all {s} speakers ({:.0} s; % of one core)", idle_in.as_secs_f64()),
                g(&|r| r.idle_pct),
                2,
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
            row("peak RSS of a speaker during the re-announces (MiB)", g(&|r| mib(r.re_hwm_max as f64)), 1, true),
            row("FRR (bgpd + zebra): RSS at idle (MiB)", g(&|r| mib(r.frr_rss as f64)), 1, false),
            row("FRR: CPU at idle (% of one core)", g(&|r| r.frr_idle_pct), 2, false),
            row("FRR: CPU in the re-announce window (s)", g(&|r| med(&r.re_frr_cpu)), 3, false),
        ],
    );
    if kinds.contains(&SpeakerKind::GoBgp) {
        println!(
            "\nGoBGP 3.10 dials its first connection 5-10 s (random) after a neighbor is enabled (its connectLoop \
             waits rand(5)+5 s before the first attempt): that delay is in its \"sessions enabled →\" and \
             bring-up figures; the per-session figures do not include it."
        );
    }
    println!("\nScale: no numeric target; figures and ratios only ({:.0} s).", started.elapsed().as_secs_f64());
    true
}
