//! Central mode (Porter's way) against FRR 8.4: a central speaker (`mooring standalone
//! --central`) in its own namespace on the nodes' LAN peers with the FRR edge (BgpPeer
//! `mode: Central`) and announces the VIP once per node, next hop = the node, with ADD-PATH.
//! The three nodes run no Mooring: each has the VIP on `lo` and an HTTP server on :8080
//! that answers every request (`/healthz`, the node probe, and the clients') with its name.
//!
//! - `central_speaker_with_frr` (lab 70): three next hops in FRR's FIB and traffic reaching
//!   all three; one node's server killed (probe refused) and another node blackholed (its
//!   answers to the central speaker dropped: probes time out) → each one's path leaves the
//!   FIB, the time printed (asserted under a generous bound; the real figures go to the
//!   benchmarks); both back when they answer again; the central speaker restarted with
//!   graceful restart while a client connects → no failed connection.
//! - `two_central_replicas_with_frr` (lab 71): two central speakers announce the same three
//!   paths; FRR's FIB (what it installs per next hop) and the traffic split are checked
//!   while the replicas agree and while they disagree about one node.
//! - `central_speaker_with_gobgp` (lab 72, GoBGP 3 with `add-paths` receive; no FIB: its RIB)
//!   and `central_speaker_with_bird` (lab 73, BIRD 2 with `add paths rx` and its kernel
//!   protocol merging paths: FIB and traffic): three paths from the one session, and a
//!   killed server's path withdrawn within the probe budget.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mooring_lab::{
    fib_nexthops, fib_weights, poll, poll_every, require_lab, run_ok, Bird, Config, Frr, GoBgp, Lab, Neighbor, Node,
    Proc,
};

const VIP: &str = "203.0.113.170";
const PORT: u16 = 8080;

/// A node's HTTP server (health port and Service at once) on :8080, answering with `name`.
fn http_server(lab: &Lab, ns: &str, name: &str) -> Proc {
    lab.http_server(ns, PORT, name)
}

/// The manifests: BgpConf (graceful restart, the node probe: HTTP :8080/healthz), the edge
/// as a Central peer, the pool, the three nodes and a Cluster Service.
fn manifests(lab: &Lab, nodes: &[Node]) -> PathBuf {
    let mut text = format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\n\
         spec: {{as: 64513, gracefulRestart: {{enabled: true, restartTime: 60}}, \
         nodeProbe: {{http: {{port: {PORT}, path: /healthz}}}}}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\n\
         spec: {{peerAddress: {}, peerAs: 64512, holdTime: 9s, families: [ipv4-unicast], mode: Central}}\n---\n\
         apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: vip}}\nspec: {{address: {VIP}/32}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: default}}\n\
         spec: {{type: LoadBalancer, ports: [{{port: {PORT}, protocol: TCP}}]}}\n",
        lab.router_v4
    );
    for (i, n) in nodes.iter().enumerate() {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: n{}}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n",
            i + 1,
            n.v4
        ));
    }
    let dir = lab.path("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("all.yaml"), text).unwrap();
    dir
}

/// Three nodes with the VIP on `lo` and their HTTP servers.
fn serving_nodes(lab: &Lab) -> (Vec<Node>, Vec<Proc>) {
    let nodes: Vec<Node> = ["n1", "n2", "n3"].iter().map(|n| lab.node(n)).collect();
    let servers = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            run_ok(&["ip", "-n", &n.ns, "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
            http_server(lab, &n.ns, &format!("n{}", i + 1))
        })
        .collect();
    (nodes, servers)
}

/// The FRR edge: explicit neighbours (graceful restart needs them), ADD-PATH receive (FRR's
/// default), multipath.
fn edge(lab: &Lab, speakers: &[&Node]) -> Frr {
    let mut cfg = Config::new(64512, &lab.router_v4);
    cfg.graceful_restart = Some(60);
    for s in speakers {
        cfg = cfg.neighbor(Neighbor::new(&s.v4, 64513).timers(1, 3).connect_retry(1));
    }
    Frr::start(lab, &lab.router, "frr", &cfg)
}

fn central(lab: &Lab, at: &Node, name: &str, dir: &std::path::Path) -> Proc {
    let state = lab.path(&format!("state-{name}"));
    lab.mooring_standalone(
        &at.ns,
        name,
        name,
        dir,
        &["--central", "--router-id", &at.v4, "--state-dir", state.to_str().unwrap()],
    )
}

/// `n` HTTP GETs of the VIP from the client (a new connection each): the answers per node
/// and the failures.
fn requests(client: &Node, n: usize) -> (BTreeMap<String, usize>, usize) {
    let script = format!(
        "import socket\nfrom collections import Counter\nc = Counter()\nfor i in range({n}):\n    try:\n        \
         s = socket.create_connection(('{VIP}', {PORT}), timeout=1); s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n        \
         d = b''\n        while True:\n            x = s.recv(4096)\n            if not x: break\n            d += x\n        \
         s.close(); c[d.split(b'\\r\\n\\r\\n', 1)[-1].strip().decode() or 'empty'] += 1\n    except OSError:\n        \
         c['failed'] += 1\nprint(' '.join(f'{{k}}={{v}}' for k, v in c.items()))\n"
    );
    let out = run_ok(&["ip", "netns", "exec", &client.ns, "python3", "-c", &script]);
    let mut by_node: BTreeMap<String, usize> = out
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.into(), v.parse().unwrap()))
        .collect();
    let failed = by_node.remove("failed").unwrap_or(0);
    (by_node, failed)
}

/// Polls the edge's FIB every 5 ms until the VIP's next hops are `want`; the time it took.
fn fib_becomes(lab: &Lab, want: &[String], what: &str) -> Duration {
    let t = Instant::now();
    let mut want = want.to_vec();
    want.sort();
    poll_every(what, Duration::from_secs(20), Duration::from_millis(5), || {
        (fib_nexthops(&lab.router, VIP) == want).then_some(())
    });
    t.elapsed()
}

#[test]
fn central_speaker_with_frr() {
    require_lab!();
    let lab = Lab::new(70);
    let c1 = lab.node("c1");
    let (nodes, mut servers) = serving_nodes(&lab);
    let client = lab.client();
    let frr = edge(&lab, &[&c1]);
    let dir = manifests(&lab, &nodes);
    let first = central(&lab, &c1, "central-1", &dir);
    frr.wait_established(&c1.v4, Duration::from_secs(20));
    let all: Vec<String> = nodes.iter().map(|n| n.v4.clone()).collect();
    fib_becomes(&lab, &all, "edge FIB: the VIP via the three nodes");
    println!("edge FIB: {}", run_ok(&["ip", "-n", &lab.router, "route", "show", VIP]));
    // One session, three paths (ADD-PATH), each next hop a node.
    let paths = frr.paths(&format!("{VIP}/32"));
    let mut hops: Vec<String> = paths.iter().map(|p| p["nexthops"][0]["ip"].as_str().unwrap().to_string()).collect();
    hops.sort();
    assert_eq!(hops, all, "FRR's paths: {paths:?}");
    assert!(paths.iter().all(|p| p["peer"]["peerId"] == c1.v4.as_str()), "all from the one central session");
    let (by_node, failed) = requests(&client, 90);
    println!("90 requests: {by_node:?}, {failed} failed");
    assert_eq!(failed, 0);
    assert_eq!(by_node.keys().cloned().collect::<Vec<_>>(), ["n1", "n2", "n3"], "traffic reaches all three nodes");

    // n2's server dies: its probes are refused; its path leaves the FIB.
    let t = Instant::now();
    lab.stop(&[servers[1].clone()], Duration::from_secs(2));
    let without_n2 = [all[0].clone(), all[2].clone()];
    fib_becomes(&lab, &without_n2, "edge FIB: n2's path withdrawn");
    let gone = t.elapsed();
    println!("n2's server killed -> its path out of the edge FIB in {gone:?}");
    first.wait_line(&format!("{VIP}/32 via {} withdrawn", nodes[1].v4), Duration::from_secs(5));
    assert!(gone < Duration::from_secs(3), "withdrawn within the probe budget (~0.6 s + BGP): {gone:?}");
    let (by_node, failed) = requests(&client, 30);
    assert_eq!((by_node.contains_key("n2"), failed), (false, 0), "{by_node:?}, {failed} failed");
    servers[1] = http_server(&lab, &nodes[1].ns, "n2");
    let back = fib_becomes(&lab, &all, "edge FIB: n2 back");
    println!("n2's server back -> its path in the edge FIB again in {back:?}");

    // n3 blackholed: its answers to the central speaker are dropped, its probes time out.
    let t = Instant::now();
    lab.nft_drop(&nodes[2].ns, &[&format!("out ip daddr {} drop", c1.v4)]);
    fib_becomes(&lab, &all[..2], "edge FIB: n3's path withdrawn");
    let gone = t.elapsed();
    println!("n3 blackholed -> its path out of the edge FIB in {gone:?}");
    assert!(gone < Duration::from_secs(3), "withdrawn within the probe budget (~0.75 s + BGP): {gone:?}");
    lab.nft_clear(&nodes[2].ns);
    fib_becomes(&lab, &all, "edge FIB: n3 back");

    // Graceful restart of the central speaker while a client connects: nothing fails.
    let script = format!(
        "import socket, time\nok = fail = 0\nend = time.time() + 6\nwhile time.time() < end:\n    try:\n        \
         s = socket.create_connection(('{VIP}', {PORT}), timeout=1); s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); \
         s.recv(64); s.close(); ok += 1\n    except OSError:\n        fail += 1\n    time.sleep(0.02)\nprint(ok, fail)\n"
    );
    let loop_proc = std::process::Command::new("ip")
        .args(["netns", "exec", &client.ns, "python3", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    first.signal(libc::SIGTERM);
    assert!(lab.wait_exit(&first, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(1000));
    let second = central(&lab, &c1, "central-1", &dir);
    second.wait_line("Restart State bit", Duration::from_secs(5));
    frr.wait_established(&c1.v4, Duration::from_secs(20));
    let out = loop_proc.wait_with_output().unwrap();
    let v: Vec<u32> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(|x| x.parse().unwrap()).collect();
    println!("client during the central speaker's graceful restart: {} ok, {} failed", v[0], v[1]);
    assert!(v[0] > 50, "the loop ran");
    assert_eq!(v[1], 0, "connections failed during a graceful restart");
    poll("the paths fresh again (End-of-RIB)", Duration::from_secs(10), || {
        let p = frr.paths(&format!("{VIP}/32"));
        (p.len() == 3 && p.iter().all(|p| p.get("stale").is_none())).then_some(())
    });
}

#[test]
fn two_central_replicas_with_frr() {
    require_lab!();
    let lab = Lab::new(71);
    let (c1, c2) = (lab.node("c1"), lab.node("c2"));
    let (nodes, _servers) = serving_nodes(&lab);
    let client = lab.client();
    let frr = edge(&lab, &[&c1, &c2]);
    let dir = manifests(&lab, &nodes);
    let _r1 = central(&lab, &c1, "central-1", &dir);
    let _r2 = central(&lab, &c2, "central-2", &dir);
    frr.wait_established(&c1.v4, Duration::from_secs(20));
    frr.wait_established(&c2.v4, Duration::from_secs(20));
    let all: Vec<String> = nodes.iter().map(|n| n.v4.clone()).collect();
    poll("FRR: six paths (three from each replica)", Duration::from_secs(20), || {
        (frr.paths(&format!("{VIP}/32")).len() == 6).then_some(())
    });
    fib_becomes(&lab, &all, "edge FIB: the three nodes");
    let fib = run_ok(&["ip", "-n", &lab.router, "route", "show", VIP]);
    let weights = fib_weights(&lab.router, VIP);
    println!("edge FIB with two replicas agreeing:\n{fib}weights {weights:?}");
    assert_eq!(weights.len(), 3, "each node once in the FIB, not once per replica: {fib}");
    assert!(weights.iter().all(|(_, w)| *w == weights[0].1), "even weights: {weights:?}");
    let (by_node, failed) = requests(&client, 90);
    println!("90 requests with two replicas: {by_node:?}, {failed} failed");
    assert_eq!((by_node.len(), failed), (3, 0));

    // The replicas disagree: n1 answers central-1's probes but not central-2's.
    lab.nft_drop(&nodes[0].ns, &[&format!("out ip daddr {} drop", c2.v4)]);
    poll("FRR: five paths (central-2 withdrew n1's)", Duration::from_secs(10), || {
        (frr.paths(&format!("{VIP}/32")).len() == 5).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let fib = run_ok(&["ip", "-n", &lab.router, "route", "show", VIP]);
    let weights = fib_weights(&lab.router, VIP);
    println!("edge FIB with the replicas disagreeing about n1:\n{fib}weights {weights:?}");
    assert_eq!(weights.len(), 3, "n1 still in the FIB (one replica has its path): {fib}");
    assert!(weights.iter().all(|(_, w)| *w == weights[0].1), "still even: {weights:?}");
}

/// (next hop, neighbor it came from) of each of GoBGP's Loc-RIB paths for the VIP, sorted.
fn gobgp_rib(gobgp: &GoBgp) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = gobgp
        .paths(&format!("{VIP}/32"))
        .iter()
        .map(|p| {
            let nh = p["attrs"].as_array().into_iter().flatten().find(|a| a["type"] == 3).map(|a| &a["nexthop"]);
            let nh =
                nh.and_then(serde_json::Value::as_str).unwrap_or_else(|| panic!("GoBGP path without NEXT_HOP: {p}"));
            (nh.to_string(), p["neighbor-ip"].as_str().unwrap_or("").to_string())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn central_speaker_with_gobgp() {
    require_lab!();
    let lab = Lab::new(72);
    let c1 = lab.node("c1");
    let (nodes, servers) = serving_nodes(&lab);
    let nb = Neighbor::new(&c1.v4, 64513).timers(1, 3).connect_retry(1).add_path_rx();
    let gobgp = GoBgp::start(&lab, &lab.router, "gobgpd", &Config::new(64512, &lab.router_v4).listen().neighbor(nb));
    let dir = manifests(&lab, &nodes);
    let _c = central(&lab, &c1, "central-1", &dir);
    gobgp.wait_established(&c1.v4, Duration::from_secs(20));
    let from_c1 = |hops: &[&Node]| hops.iter().map(|n| (n.v4.clone(), c1.v4.clone())).collect::<Vec<_>>();
    poll("GoBGP: three paths, all from the central speaker", Duration::from_secs(20), || {
        (gobgp_rib(&gobgp) == from_c1(&[&nodes[0], &nodes[1], &nodes[2]])).then_some(())
    });
    let t = Instant::now();
    lab.stop(&[servers[1].clone()], Duration::from_secs(2));
    poll_every("GoBGP: n2's path withdrawn", Duration::from_secs(20), Duration::from_millis(5), || {
        (gobgp_rib(&gobgp) == from_c1(&[&nodes[0], &nodes[2]])).then_some(())
    });
    let gone = t.elapsed();
    println!("GoBGP: n2's server killed -> its path out of the RIB in {gone:?}");
    assert!(gone < Duration::from_secs(3), "withdrawn within the probe budget: {gone:?}");
}

#[test]
fn central_speaker_with_bird() {
    require_lab!();
    let lab = Lab::new(73);
    let c1 = lab.node("c1");
    let (nodes, servers) = serving_nodes(&lab);
    let client = lab.client();
    let nb = Neighbor::new(&c1.v4, 64513).name("c1").timers(1, 3).connect_retry(1).receiving().add_path_rx();
    let bird = Bird::start(&lab, &lab.router, "bird", &Config::new(64512, &lab.router_v4).kernel().neighbor(nb));
    let dir = manifests(&lab, &nodes);
    let _c = central(&lab, &c1, "central-1", &dir);
    bird.wait_established("c1", Duration::from_secs(20));
    let all: Vec<String> = nodes.iter().map(|n| n.v4.clone()).collect();
    fib_becomes(&lab, &all, "BIRD's FIB: the VIP via the three nodes");
    println!("BIRD {VIP}/32:\n{}", bird.route_all(&format!("{VIP}/32")));
    let (by_node, failed) = requests(&client, 90);
    println!("90 requests through BIRD: {by_node:?}, {failed} failed");
    assert_eq!(failed, 0);
    assert_eq!(by_node.keys().cloned().collect::<Vec<_>>(), ["n1", "n2", "n3"], "traffic reaches all three nodes");
    let t = Instant::now();
    lab.stop(&[servers[1].clone()], Duration::from_secs(2));
    fib_becomes(&lab, &[all[0].clone(), all[2].clone()], "BIRD's FIB: n2's path withdrawn");
    let gone = t.elapsed();
    println!("BIRD: n2's server killed -> its path out of the FIB in {gone:?}");
    assert!(gone < Duration::from_secs(3), "withdrawn within the probe budget: {gone:?}");
}
