//! The fault soak: two nodes on `mooring standalone` (BgpConf with
//! `listenPort: 179`) peering with an FRR edge, while random faults are
//! injected one after another for `MOORING_SOAK_SECONDS` (default 60; CI
//! runs the default, run longer by hand): valid and invalid BgpConf,
//! BgpPeer and Eip edits, torn writes, Services coming and going, SIGHUPs,
//! a node restarted, the router clearing its sessions, a link blackholed
//! for a while, and a misbehaving peer sending garbage.
//!
//! Invariants, checked every 100 ms the whole time: the router's FIB never
//! holds a VIP it should not (a removed Service's VIP is gone within the
//! withdraw bound); after each fault every VIP that should be announced is
//! in the FIB via both nodes within the recovery bound; both state files
//! are always valid; RSS, file descriptors and threads stay bounded.
//! Prints the figures: faults per kind, invariant checks, worst recovery.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mooring_lab::{edge_frr, require_lab, run, Frr, Lab, Node, Proc};

const ID: u8 = 30;
/// The VIPs, pinned by `spec.loadBalancerIP`: svc-a and svc-b always, svc-c comes and goes.
const VIPS: [&str; 3] = ["203.0.113.120", "203.0.113.121", "203.0.113.122"];
/// After a fault, the FIB must be back to what it should be within this.
/// The longest legitimate outage is a blackhole past the 3 s hold time:
/// hold expiry, reconnect (FRR's connect timer 1 s, ours 5 s back-off at
/// most) and the announcement.
const RECOVERY: Duration = Duration::from_secs(15);
/// How long the FIB must stay right to count as recovered.
const STABLE: Duration = Duration::from_secs(2);
/// A removed Service's VIP must leave the FIB within this (a reload is
/// ~5 ms, the withdraw and FRR's FIB update ~100 ms).
const WITHDRAW: Duration = Duration::from_secs(3);

/// A deterministic generator (fastrand's), seeded from the clock unless
/// `MOORING_SOAK_SEED` is set; the seed is printed.
struct Rng(fastrand::Rng);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n)
    }
}

/// What the manifests say now.
#[derive(Clone, Debug)]
struct Config {
    hostname: &'static str,
    peer_valid: bool,
    eip_valid: bool,
    svc_c: bool,
}

fn bgp_yaml(c: &Config, router: &str) -> String {
    let hold = if c.peer_valid { "3s" } else { "1s" };
    let range = if c.eip_valid { "203.0.113.120-203.0.113.129" } else { "203.0.113.129-203.0.113.120" };
    format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\n\
         spec: {{as: 64513, listenPort: 179, hostname: {h}}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\n\
         spec: {{peerAddress: {router}, peerAs: 64512, holdTime: {hold}, families: [ipv4-unicast]}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: pool}}\nspec: {{address: {range}}}\n",
        h = c.hostname
    )
}

fn services_yaml(c: &Config) -> String {
    let svc = |name: &str, ip: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
             spec: {{type: LoadBalancer, loadBalancerIP: {ip}, ports: [{{port: 80, protocol: TCP}}]}}\n"
        )
    };
    let mut out = vec![svc("svc-a", VIPS[0]), svc("svc-b", VIPS[1])];
    if c.svc_c {
        out.push(svc("svc-c", VIPS[2]));
    }
    out.join("---\n")
}

fn nodes_yaml(nodes: &[Node]) -> String {
    let node = |i: usize, n: &Node| {
        format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: n{i}}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n",
            n.v4
        )
    };
    nodes.iter().enumerate().map(|(i, n)| node(i + 1, n)).collect::<Vec<_>>().join("---\n")
}

/// Write atomically (rename).
fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// Every 203.0.113.0/24 route in `ns`'s FIB with its next hops. Panics when
/// `ip` fails: a failed read must never look like "no routes".
fn fib(ns: &str) -> BTreeMap<String, BTreeSet<String>> {
    let (ok, out, err) = run(&["ip", "-n", ns, "-j", "route", "show", "root", "203.0.113.0/24"]);
    assert!(ok, "ip route show in {ns} failed: {err}");
    let routes: serde_json::Value = serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out })
        .unwrap_or_else(|e| panic!("ip -j route: {e}: {out}"));
    let mut fib = BTreeMap::new();
    for r in routes.as_array().expect("a list of routes") {
        let dst = r["dst"].as_str().unwrap_or_default().trim_end_matches("/32").to_string();
        let mut hops = BTreeSet::new();
        if let Some(gw) = r["gateway"].as_str() {
            hops.insert(gw.to_string());
        }
        for nh in r["nexthops"].as_array().into_iter().flatten() {
            if let Some(gw) = nh["gateway"].as_str() {
                hops.insert(gw.to_string());
            }
        }
        fib.insert(dst, hops);
    }
    fib
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    BgpConfEdit,
    TornWrite,
    InvalidPeer,
    InvalidEip,
    Restore,
    ServiceToggle,
    Sighup,
    NodeRestart,
    RouterClear,
    Blackhole,
    GarbagePeer,
}

const FAULTS: [Fault; 11] = [
    Fault::BgpConfEdit,
    Fault::TornWrite,
    Fault::InvalidPeer,
    Fault::InvalidEip,
    Fault::Restore,
    Fault::ServiceToggle,
    Fault::Sighup,
    Fault::NodeRestart,
    Fault::RouterClear,
    Fault::Blackhole,
    Fault::GarbagePeer,
];

struct Soak<'a> {
    lab: &'a Lab,
    frr: Frr,
    nodes: Vec<Node>,
    procs: Vec<Proc>,
    config_dir: PathBuf,
    state_dirs: Vec<PathBuf>,
    config: Config,
    checks: u64,
    /// VIP → when it stopped being expected.
    removed_at: BTreeMap<String, Instant>,
    /// (RSS KiB, fds, threads) of each node once it was serving.
    baseline: Vec<(u64, usize, usize)>,
}

impl Soak<'_> {
    fn start(&self, i: usize) -> Proc {
        let name = format!("n{}", i + 1);
        let state = self.state_dirs[i].to_str().unwrap().to_string();
        self.lab.mooring_standalone(&self.nodes[i].ns, &name, &name, &self.config_dir, &["--state-dir", &state])
    }

    fn write_config(&self) {
        write(&self.config_dir, "bgp.yaml", &bgp_yaml(&self.config, &self.lab.router_v4));
        write(&self.config_dir, "services.yaml", &services_yaml(&self.config));
    }

    fn expected(&self) -> BTreeMap<String, BTreeSet<String>> {
        let hops: BTreeSet<String> = self.nodes.iter().map(|n| n.v4.clone()).collect();
        let n = if self.config.svc_c { 3 } else { 2 };
        VIPS[..n].iter().map(|v| (v.to_string(), hops.clone())).collect()
    }

    /// One invariant check; returns whether the FIB is as it should be.
    fn check(&mut self) -> bool {
        self.checks += 1;
        let fib = fib(&self.lab.router);
        let want = self.expected();
        for vip in fib.keys() {
            if want.contains_key(vip) {
                continue;
            }
            let since = self.removed_at.get(vip).copied();
            assert!(
                since.is_some_and(|t| t.elapsed() < WITHDRAW),
                "{vip} is in the router's FIB but should not be (removed {:?} ago): {fib:?}",
                since.map(|t| t.elapsed())
            );
        }
        for (i, dir) in self.state_dirs.iter().enumerate() {
            let path = dir.join("allocations.json");
            if let Ok(bytes) = std::fs::read(&path) {
                let held: Result<BTreeMap<String, Vec<String>>, _> = serde_json::from_slice(&bytes);
                assert!(held.is_ok(), "n{}: state file not valid: {:?}", i + 1, String::from_utf8_lossy(&bytes));
            }
        }
        for p in &self.procs {
            self.lab.check_running(p);
        }
        fib == want
    }

    /// Check until the FIB is as it should be and has stayed so for
    /// [`STABLE`] (a fault's effect may show a moment after it: a cleared
    /// session, a hold timer); returns when that stable stretch began.
    fn recover(&mut self, what: Fault) -> Duration {
        let t0 = Instant::now();
        let mut right_since: Option<Instant> = None;
        loop {
            if self.check() {
                let since = *right_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= STABLE {
                    return since - t0;
                }
            } else {
                right_since = None;
            }
            assert!(
                t0.elapsed() < RECOVERY + STABLE,
                "no recovery {RECOVERY:?} after {what:?}: FIB {:?}, want {:?}",
                fib(&self.lab.router),
                self.expected()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Keep checking for `d` (the FIB must stay right throughout).
    fn hold(&mut self, d: Duration, what: Fault) {
        let t0 = Instant::now();
        while t0.elapsed() < d {
            assert!(self.check(), "the FIB changed after {what:?}: {:?}", fib(&self.lab.router));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn inject(&mut self, f: Fault, rng: &mut Rng) {
        let node = rng.below(self.nodes.len() as u64) as usize;
        match f {
            Fault::BgpConfEdit => {
                // A new hostname restarts both speakers: each must bind :179 again.
                let restarts: Vec<usize> = self.procs.iter().map(|p| p.count("restarting the speaker")).collect();
                self.config.hostname = if self.config.hostname == "soak-a" { "soak-b" } else { "soak-a" };
                self.write_config();
                for (p, n) in self.procs.iter().zip(restarts) {
                    p.wait_count("restarting the speaker", n + 1, Duration::from_secs(5));
                }
            }
            Fault::TornWrite => {
                // A rewrite in place: the file is empty for a moment.
                let path = self.config_dir.join("bgp.yaml");
                std::fs::write(&path, "").unwrap();
                std::thread::sleep(Duration::from_millis(50));
                std::fs::write(&path, bgp_yaml(&self.config, &self.lab.router_v4)).unwrap();
                self.hold(Duration::from_millis(1500), f);
            }
            Fault::InvalidPeer | Fault::InvalidEip => {
                // Rejected: the last good version stays, nothing moves.
                if f == Fault::InvalidPeer {
                    self.config.peer_valid = false;
                } else {
                    self.config.eip_valid = false;
                }
                self.write_config();
                self.hold(Duration::from_millis(1000), f);
                // What is in force is still the last good config.
                self.config.peer_valid = true;
                self.config.eip_valid = true;
            }
            Fault::Restore => self.write_config(),
            Fault::ServiceToggle => {
                self.config.svc_c = !self.config.svc_c;
                if !self.config.svc_c {
                    self.removed_at.insert(VIPS[2].to_string(), Instant::now());
                }
                self.write_config();
            }
            Fault::Sighup => {
                self.procs[node].signal(libc::SIGHUP);
                self.hold(Duration::from_millis(500), f);
            }
            Fault::NodeRestart => {
                self.lab.stop(&self.procs[node..=node], Duration::from_secs(10));
                // While it is down its next hop is gone: no VIP must be lost for good.
                self.procs[node] = self.start(node);
                self.recover(f);
                self.baseline[node] = usage(&self.procs[node]);
            }
            Fault::RouterClear => {
                self.frr.vtysh("clear bgp *");
            }
            Fault::Blackhole => {
                let secs = 1 + rng.below(4);
                self.lab.unplug(&self.nodes[node]);
                std::thread::sleep(Duration::from_secs(secs));
                self.lab.nft_clear(&self.nodes[node].ns);
            }
            Fault::GarbagePeer => {
                // From the router's own address, while its session is up.
                let script = format!(
                    "import socket,sys\ns=socket.create_connection(('{}',179),2)\ns.sendall(b'\\xff'*16+b'\\x00\\x13\\x09'+b'garbage'*40)\n\
                     s.settimeout(2)\ntry:\n  s.recv(100)\nexcept Exception: pass\n",
                    self.nodes[node].v4
                );
                let (ok, _, err) = run(&["ip", "netns", "exec", &self.lab.router, "python3", "-c", &script]);
                assert!(ok, "garbage to {}:179: {err}", self.nodes[node].v4);
                self.hold(Duration::from_millis(1500), f);
            }
        }
    }
}

/// (RSS KiB, fds, threads) of a process.
fn usage(p: &Proc) -> (u64, usize, usize) {
    let threads = std::fs::read_dir(format!("/proc/{}/task", p.pid)).map(|d| d.count()).expect("the process runs");
    (p.rss_kib(), p.fd_count(), threads)
}

#[test]
fn fault_soak() {
    require_lab!();
    let seconds: u64 = std::env::var("MOORING_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = std::env::var("MOORING_SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    }) | 1;
    println!("fault soak: {seconds} s, seed {seed} (MOORING_SOAK_SEED={seed} repeats it)");
    let mut rng = Rng(fastrand::Rng::with_seed(seed));
    let lab = Lab::new(ID);
    let nodes: Vec<Node> = ["n1", "n2"].iter().map(|n| lab.node(n)).collect();
    let frr = edge_frr(&lab, &[], None);
    let config_dir = lab.path("manifests");
    std::fs::create_dir_all(&config_dir).unwrap();
    write(&config_dir, "nodes.yaml", &nodes_yaml(&nodes));
    let state_dirs = (1..=nodes.len()).map(|i| lab.path(&format!("n{i}-state"))).collect();
    let mut soak = Soak {
        lab: &lab,
        frr,
        nodes,
        procs: vec![],
        config_dir,
        state_dirs,
        config: Config { hostname: "soak-a", peer_valid: true, eip_valid: true, svc_c: true },
        checks: 0,
        removed_at: BTreeMap::new(),
        baseline: vec![],
    };
    soak.write_config();
    soak.procs = (0..soak.nodes.len()).map(|i| soak.start(i)).collect();
    soak.recover(Fault::Restore);
    soak.baseline = soak.procs.iter().map(usage).collect();

    let mut count: BTreeMap<Fault, u32> = BTreeMap::new();
    let mut worst: BTreeMap<Fault, Duration> = BTreeMap::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(seconds) {
        let f = FAULTS[rng.below(FAULTS.len() as u64) as usize];
        soak.inject(f, &mut rng);
        let took = soak.recover(f);
        *count.entry(f).or_default() += 1;
        let w = worst.entry(f).or_default();
        *w = (*w).max(took);
        std::thread::sleep(Duration::from_millis(rng.below(500)));
    }
    // Usage after the faults, against the baseline (a restarted node's is taken after its restart).
    for (i, p) in soak.procs.iter().enumerate() {
        let (rss, fds, threads) = usage(p);
        let (rss0, fds0, threads0) = soak.baseline[i];
        println!("n{}: RSS {rss0} → {rss} KiB, fds {fds0} → {fds}, threads {threads0} → {threads}", i + 1);
        assert!(fds <= fds0 + 8, "n{}: file descriptors grew {fds0} → {fds}", i + 1);
        assert!(threads <= threads0 + 4, "n{}: threads grew {threads0} → {threads}", i + 1);
        assert!(rss <= rss0 * 2 + 16 * 1024, "n{}: RSS grew {rss0} → {rss} KiB", i + 1);
    }
    for p in &soak.procs {
        let out = p.output();
        assert!(!out.is_empty(), "{}: no output to check", p.name);
        for bad in ["panicked", "cannot write the state directory", "Address already in use"] {
            assert!(!out.contains(bad), "{}: {bad:?} in its output", p.name);
        }
        // The node logs its sessions' transitions from the first one on.
        assert!(out.contains(&format!("peer {} Idle -> Connect", lab.router_v4)), "{}: no session log", p.name);
        assert!(out.contains("OpenConfirm -> Established"), "{}: no session log", p.name);
    }
    let total: u32 = count.values().sum();
    let overall = worst.values().max().copied().unwrap_or_default();
    println!("faults injected: {total}; invariant checks: {}; worst recovery {overall:?}", soak.checks);
    for (f, n) in &count {
        println!("  {f:?}: {n}, worst recovery {:?}", worst[f]);
    }
    println!("RESULT fault soak: {total} faults, {} checks, 0 violations, worst recovery {overall:?}", soak.checks);
    lab.stop(&soak.procs, Duration::from_secs(10));
}
