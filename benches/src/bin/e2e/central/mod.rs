//! Issue 18, benchmark 6: the router-side cost of per-node speakers
//! against one central speaker with ADD-PATH, and node death → FIB time
//! in each (`--bench central`).
//!
//! One FRR router (`mit78-r`: listen range 198.18.78.0/24, timers 1 3,
//! `maximum-paths 128`, so that every next hop reaches the FIB) and N
//! node namespaces (198.18.78.10 ...) on its bridge, each with a TCP
//! listener on :8080 (the central speaker's node probe); the same V = 10
//! VIPs (203.0.113.100 ...) are carried by every node, in three modes, one
//! after the other in one lab, FRR started afresh for each:
//!
//! - **per-node**: N `mooring announce` speakers, one per node, each a BGP
//!   session announcing the V VIPs next-hop self; a dead node is noticed by
//!   FRR's hold timer (3 s);
//! - **per-node + BFD**: the same with BFD on every session (FRR's bfdd,
//!   300 ms × 3 both sides);
//! - **central**: one `mooring standalone --central` in namespace
//!   `mit78-central` (198.18.78.200) from manifests (V Services, V Eips, N
//!   Nodes, the router as a `mode: Central` BgpPeer, a TCP node probe on
//!   :8080 at the defaults: every 200 ms, timeout 150 ms, down after 3
//!   failures): one session, each VIP with N paths (ADD-PATH, which FRR
//!   receives by default), next hop = the node; a dead node is noticed by
//!   its probes.
//!
//! Measured per mode: the time from starting the speakers to FRR's kernel
//! FIB holding all V × N next hops (polled every 50 ms with `ip -j route`);
//! then, settled, FRR's sessions (Established), RIB paths (`show bgp ipv4
//! unicast json`), FIB next hops, bgpd's VmRSS and VmHWM from
//! /proc/<pid>/status (and the growth over the same bgpd before any
//! session), zebra's and bfdd's RSS, FRR's CPU through the convergence and
//! at idle, and the speakers' memory (PSS, they share the binary's pages)
//! and idle CPU. Then node death: one node unplugged (nftables drops
//! everything on its eth0, both ways), the clock from just before `nft`
//! until its next hop has left the FIB routes of all V VIPs (polled every
//! 10 ms). Sizes: N = 100 (`--central-nodes`), `--quick` 10.
//!
//! This file holds the settings, the lab and the measurement; report.rs the table (pure).

mod report;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use mooring_lab::procfs::{cpu_all, cpu_sum, mem};
use mooring_lab::{
    check_interrupted, epoch, poll_every, run_ok, sleep, Config, Frr, Lab, Mooring, Neighbor, Node, Proc,
};
use serde_json::Value;

pub use report::{Figures, Mode};

use crate::common::{RECEIVER_AS, SPEAKER_AS};
use crate::{panic_message, Opts};

const LAB_ID: u8 = 78;
/// The VIPs every node carries.
pub const VIPS: u32 = 10;
/// How long idle CPU is measured (s).
const IDLE_SECS: u64 = 5;
/// The node probe's port.
const PROBE_PORT: u16 = 8080;
/// BFD on the per-node + BFD sessions.
const BFD_MS: u32 = 300;
const BFD_MULT: u32 = 3;

/// The i-th VIP.
fn vip(i: u32) -> String {
    format!("203.0.113.{}", 100 + i)
}

fn vips_32() -> Vec<String> {
    (0..VIPS).map(|i| format!("{}/32", vip(i))).collect()
}

/// Benchmark 6. Panics when the lab cannot be built; a mode that does not
/// converge is reported and the others still run. No numeric target.
pub fn run(o: &Opts) -> bool {
    let n = o.central_nodes.unwrap_or(if o.quick { 10 } else { 100 }) as usize;
    let started = Instant::now();
    eprintln!("central: FRR with {n} nodes × {VIPS} VIPs: per-node speakers (hold timer, BFD) vs one central speaker");
    let lab = Lab::new(LAB_ID);
    let nodes: Vec<Node> = (0..n)
        .map(|i| {
            check_interrupted();
            lab.node_at(&format!("n{}", i + 1), (10 + i) as u8)
        })
        .collect();
    let central = lab.node_at("central", 200);
    let listeners = probe_listeners(&lab, &nodes);
    eprintln!("  {n} node namespaces and their listeners in {:.1} s", started.elapsed().as_secs_f64());
    let manifests = manifests(&lab, &nodes);
    let mut results = vec![];
    let mut ok = true;
    for mode in [Mode::PerNode, Mode::PerNodeBfd, Mode::Central] {
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            measure(&lab, &nodes, mode, |lab| match mode {
                Mode::PerNode | Mode::PerNodeBfd => nodes
                    .iter()
                    .enumerate()
                    .map(|(i, node)| {
                        check_interrupted();
                        let mut s = session(&lab.router_v4);
                        if mode == Mode::PerNodeBfd {
                            s = s.bfd(BFD_MS, BFD_MULT);
                        }
                        let cfg = Config::new(SPEAKER_AS, &node.v4).neighbor(s).prefixes(vips_32());
                        Mooring::start(lab, &node.ns, &format!("mooring-n{}", i + 1), &cfg).proc().clone()
                    })
                    .collect(),
                Mode::Central => {
                    let state = lab.path("central-state");
                    let args = ["--central", "--router-id", &central.v4, "--state-dir", state.to_str().unwrap()];
                    vec![lab.mooring_standalone(&central.ns, "central", "central", &manifests, &args)]
                }
            })
        }));
        match r {
            Ok(f) => results.push((mode, f)),
            Err(e) => {
                check_interrupted();
                eprintln!("  central: the {} mode FAILED: {}", mode.name(), panic_message(e.as_ref()));
                ok = false;
            }
        }
    }
    drop(listeners);
    print!("{}", report::report(n, VIPS, IDLE_SECS, &results));
    println!(
        "\nCentral vs per-node: no numeric target; figures and ratios only ({:.0} s).",
        started.elapsed().as_secs_f64()
    );
    assert!(ok, "a mode did not converge (above)");
    true
}

/// A speaker's session with the router: hold 3 s, a KEEPALIVE every second.
fn session(addr: &str) -> Neighbor {
    Neighbor::new(addr, RECEIVER_AS).timers(1, 3).connect_retry(1)
}

/// A TCP listener on :8080 in every node (accepts and closes), for the
/// central speaker's probes; returns once all listen.
fn probe_listeners(lab: &Lab, nodes: &[Node]) -> Vec<Proc> {
    let script = format!(
        "import socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', {PROBE_PORT})); s.listen(128)\nwhile True:\n    c, _ = s.accept(); c.close()\n"
    );
    let procs: Vec<Proc> =
        nodes.iter().map(|n| lab.spawn(&n.ns, &format!("listen-{}", n.v4), &["python3", "-c", &script])).collect();
    for n in nodes {
        poll_every(
            &format!("{}: listening on :{PROBE_PORT}", n.ns),
            Duration::from_secs(30),
            Duration::from_millis(20),
            || {
                let (_, out, _) =
                    mooring_lab::run(&["ip", "netns", "exec", &n.ns, "ss", "-Htln", &format!("sport = :{PROBE_PORT}")]);
                (!out.trim().is_empty()).then_some(())
            },
        );
    }
    procs
}

/// The central speaker's manifests: BgpConf (the TCP node probe), the
/// router as a Central peer, V Eips and V Services (Cluster: every node
/// carries every VIP), the N Nodes.
fn manifests(lab: &Lab, nodes: &[Node]) -> std::path::PathBuf {
    let mut t = format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\n\
         spec: {{as: {SPEAKER_AS}, nodeProbe: {{tcp: {{port: {PROBE_PORT}}}}}}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\n\
         spec: {{peerAddress: {}, peerAs: {RECEIVER_AS}, holdTime: 3s, families: [ipv4-unicast], mode: Central}}\n",
        lab.router_v4
    );
    for i in 0..VIPS {
        t.push_str(&format!(
            "---\napiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: vip{i}}}\nspec: {{address: {}/32}}\n\
             ---\napiVersion: v1\nkind: Service\nmetadata: {{name: web{i}, namespace: default}}\n\
             spec: {{type: LoadBalancer, ports: [{{port: 80, protocol: TCP}}]}}\n",
            vip(i)
        ));
    }
    for (i, n) in nodes.iter().enumerate() {
        t.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: n{}}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n",
            i + 1,
            n.v4
        ));
    }
    let dir = lab.path("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("all.yaml"), t).unwrap();
    dir
}

/// The router for one mode: the lab edge's settings (listen range, timers
/// 1 3) with room for every node's next hop in one ECMP route; BFD on the
/// range for per-node + BFD.
fn router(lab: &Lab, mode: Mode) -> Frr {
    let mut range = Neighbor::external(&format!("198.18.{LAB_ID}.0/24")).timers(1, 3).connect_retry(1);
    if mode == Mode::PerNodeBfd {
        range = range.bfd(BFD_MS, BFD_MULT);
    }
    let mut cfg = Config::new(RECEIVER_AS, &lab.router_v4).neighbor(range);
    cfg.extra =
        format!("router bgp {RECEIVER_AS}\n address-family ipv4 unicast\n  maximum-paths 128\n exit-address-family\n");
    Frr::start(lab, &lab.router, "frr", &cfg)
}

/// Next hops per destination in the router's kernel FIB (`ip -j route`).
fn fib(lab: &Lab) -> HashMap<String, Vec<String>> {
    let out = run_ok(&["ip", "-n", &lab.router, "-j", "-4", "route", "show"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j route: bad JSON ({e}): {out}"));
    let gw = |r: &Value| r["gateway"].as_str().map(String::from);
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let hops = match r["nexthops"].as_array() {
                Some(m) => m.iter().filter_map(gw).collect(),
                None => gw(r).into_iter().collect(),
            };
            Some((r["dst"].as_str()?.to_string(), hops))
        })
        .collect()
}

/// FIB next hops of the VIPs, summed.
fn fib_hops(lab: &Lab) -> usize {
    let f = fib(lab);
    (0..VIPS).map(|i| f.get(&vip(i)).map_or(0, Vec::len)).sum()
}

/// (sessions Established, paths in the RIB for the VIPs).
fn rib(frr: &Frr) -> (usize, usize) {
    let s = frr.json("show bgp ipv4 unicast summary json");
    let est = s["peers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, p)| p["state"].as_str() == Some("Established"))
        .count();
    let t = frr.table(false);
    let paths = (0..VIPS).map(|i| t["routes"][format!("{}/32", vip(i))].as_array().map_or(0, Vec::len)).sum();
    (est, paths)
}

/// One mode: a fresh FRR, the speakers `start` starts, the clock until
/// the FIB holds every next hop, the figures, one node's death,
/// everything stopped again.
fn measure(lab: &Lab, nodes: &[Node], mode: Mode, start: impl FnOnce(&Lab) -> Vec<Proc>) -> Figures {
    let n = nodes.len();
    let want = VIPS as usize * n;
    let frr = router(lab, mode);
    let mut frr_pids = vec![frr.bgpd.pid, frr.zebra.pid];
    frr_pids.extend(frr.bfdd.as_ref().map(|p| p.pid));
    sleep(Duration::from_secs(1));
    let mut f = Figures { bgpd_rss_empty: mem(frr.bgpd.pid).rss, ..Figures::default() };

    let cpu0 = cpu_all(&frr_pids);
    let t0 = epoch();
    let speakers = start(lab);
    f.started = epoch() - t0;
    let mut shown = Instant::now();
    let converged = poll_every(
        &format!("{}: the FIB holding {VIPS} VIPs × {n} next hops", mode.name()),
        Duration::from_secs(120 + n as u64),
        Duration::from_millis(50),
        || {
            let hops = fib_hops(lab);
            if shown.elapsed() > Duration::from_secs(5) {
                eprintln!("    {}: {hops}/{want} FIB next hops", mode.name());
                shown = Instant::now();
            }
            (hops == want).then(epoch)
        },
    );
    f.converge = converged - t0;
    f.frr_cpu_converge = cpu_sum(&cpu0, &cpu_all(&frr_pids));
    eprintln!("  {}: FIB complete {:.2} s after the first start", mode.name(), f.converge);

    sleep(Duration::from_secs(2));
    (f.sessions, f.rib_paths) = rib(&frr);
    f.fib_hops = fib_hops(lab);
    let m = mem(frr.bgpd.pid);
    (f.bgpd_rss, f.bgpd_hwm) = (m.rss, m.hwm);
    f.zebra_rss = mem(frr.zebra.pid).rss;
    f.bfdd_rss = frr.bfdd.as_ref().map(|p| mem(p.pid).rss);
    let pids: Vec<i32> = speakers.iter().map(|p| p.pid).collect();
    f.speakers = pids.len();
    f.speakers_pss = pids.iter().map(|&p| mem(p).pss).sum();
    let (a, fa) = (cpu_all(&pids), cpu_all(&frr_pids));
    let t = Instant::now();
    sleep(Duration::from_secs(IDLE_SECS));
    let (b, fb) = (cpu_all(&pids), cpu_all(&frr_pids));
    let el = t.elapsed().as_secs_f64();
    f.speakers_idle_pct = 100.0 * cpu_sum(&a, &b) / el;
    f.frr_idle_pct = 100.0 * cpu_sum(&fa, &fb) / el;
    eprintln!(
        "  {}: {} sessions, {} RIB paths, {} FIB next hops, bgpd RSS {} KiB ({} KiB before any session)",
        mode.name(),
        f.sessions,
        f.rib_paths,
        f.fib_hops,
        f.bgpd_rss,
        f.bgpd_rss_empty
    );
    assert_eq!(f.rib_paths, want, "{}: FRR holds every path", mode.name());

    // Node death: the middle node off the network; its next hop out of every VIP's route.
    let dead = &nodes[n / 2];
    let t0 = epoch();
    lab.unplug(dead);
    let gone = poll_every(
        &format!("{}: {}'s next hop out of the FIB", mode.name(), dead.v4),
        Duration::from_secs(30),
        Duration::from_millis(10),
        || {
            let fib = fib(lab);
            let left = (0..VIPS).any(|i| fib.get(&vip(i)).is_some_and(|h| h.contains(&dead.v4)));
            (!left).then(epoch)
        },
    );
    f.death = gone - t0;
    assert_eq!(fib_hops(lab), want - VIPS as usize, "{}: only the dead node's next hops left the FIB", mode.name());
    eprintln!("  {}: node death → FIB {:.3} s", mode.name(), f.death);
    lab.nft_clear(&dead.ns);

    lab.stop(&speakers, Duration::from_secs(10));
    lab.stop(&frr.procs(), Duration::from_secs(10));
    f
}
