//! A speaker restarted with the chart's default stop (`--drain-seconds`
//! from helm/mooring/values.yaml) while a client keeps connecting to a VIP
//! that two nodes announce through an FRR edge — as a rolling upgrade does:
//!
//! - without graceful restart negotiated, the stopping node drains
//!   (GRACEFUL_SHUTDOWN; the edge's documented inbound policy sets
//!   LOCAL_PREF 0, traffic moves to the other node), then withdraws; here
//!   the node stops serving the moment its speaker has exited (a node going
//!   down for an upgrade), so only traffic moved before the withdraw
//!   survives — with an immediate withdraw (`MOORING_STOP_DRAIN=0`, the old
//!   default) connections fail;
//! - with graceful restart negotiated (BgpConf and FRR both enable it), the
//!   session is closed without a NOTIFICATION and the edge keeps the
//!   node's route while the speaker alone restarts (the node keeps serving).
//!
//! Not one connection may fail either way.

use std::path::Path;
use std::time::{Duration, Instant};

use mooring_lab::{fib_nexthops, poll, require_lab, run_ok, Config, Frr, Lab, Neighbor, Node};

const VIP: &str = "203.0.113.160";

/// The chart's default `speaker.drainSeconds` (`MOORING_STOP_DRAIN`
/// overrides it, to show what the test catches).
fn chart_drain_seconds() -> String {
    if let Ok(d) = std::env::var("MOORING_STOP_DRAIN") {
        return d;
    }
    let values = Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/mooring/values.yaml");
    let text = std::fs::read_to_string(&values).unwrap();
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix("  drainSeconds: "))
        .unwrap_or_else(|| panic!("{} has no speaker.drainSeconds", values.display()));
    v.trim().to_string()
}

/// The edge: the nodes as neighbors (timers 1 3), GRACEFUL_SHUTDOWN
/// honoured by the inbound policy the README gives, graceful restart when asked.
fn edge(lab: &Lab, nodes: &[Node], graceful_restart: bool) -> Frr {
    let mut policy = "bgp community-list standard GSHUT permit graceful-shutdown
route-map NODES-IN permit 10
 match community GSHUT
 set local-preference 0
route-map NODES-IN permit 20
router bgp 64512
 address-family ipv4 unicast
"
    .to_string();
    for n in nodes {
        policy.push_str(&format!("  neighbor {} route-map NODES-IN in\n", n.v4));
    }
    policy.push_str(" exit-address-family\n");
    let mut cfg = Config::new(64512, &lab.router_v4).extra(&policy);
    if graceful_restart {
        cfg = cfg.graceful_restart(60);
    }
    for n in nodes {
        cfg = cfg.neighbor(Neighbor::external(&n.v4).timers(1, 3).connect_retry(1));
    }
    Frr::start(lab, &lab.router, "frr", &cfg)
}

fn manifests(dir: &Path, lab: &Lab, nodes: &[Node], graceful_restart: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let gr = if graceful_restart { ", gracefulRestart: {enabled: true, restartTime: 60}" } else { "" };
    let node_docs: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "apiVersion: v1\nkind: Node\nmetadata: {{name: n{}}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n",
                i + 1,
                n.v4
            )
        })
        .collect();
    std::fs::write(
        dir.join("all.yaml"),
        format!(
            "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: 64513{gr}}}\n---\n\
             apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\nspec: {{peerAddress: {}, peerAs: 64512, holdTime: 3s, families: [ipv4-unicast]}}\n---\n\
             apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: vip}}\nspec: {{address: {VIP}/32}}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: default}}\nspec: {{type: LoadBalancer, ports: [{{port: 8080, protocol: TCP}}]}}\n---\n{}",
            lab.router_v4,
            node_docs.join("---\n")
        ),
    )
    .unwrap();
}

/// A client loop: one connection every 10 ms for `secs`, 1 s timeout;
/// prints "ok failed".
fn client_loop(client: &Node, secs: u64) -> std::process::Child {
    let script = format!(
        "import socket, time\nok = fail = 0\nend = time.time() + {secs}\nwhile time.time() < end:\n    try:\n        \
         s = socket.create_connection(('{VIP}', 8080), timeout=1); s.recv(16); s.close(); ok += 1\n    except OSError:\n        \
         fail += 1\n    time.sleep(0.01)\nprint(ok, fail)\n"
    );
    std::process::Command::new("ip")
        .args(["netns", "exec", &client.ns, "python3", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn restart_under_load(id: u8, graceful_restart: bool) {
    let lab = Lab::new(id);
    let nodes: Vec<Node> = ["n1", "n2"].iter().map(|n| lab.node(n)).collect();
    let client = lab.client();
    let frr = edge(&lab, &nodes, graceful_restart);
    let dir = lab.path("manifests");
    manifests(&dir, &lab, &nodes, graceful_restart);
    let mut responders = vec![];
    for (i, n) in nodes.iter().enumerate() {
        run_ok(&["ip", "-n", &n.ns, "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
        responders.push(lab.responder(&n.ns, VIP, 8080, &format!("n{}", i + 1)));
    }
    let drain = chart_drain_seconds();
    let start = |i: usize| {
        let name = format!("n{}", i + 1);
        let state = lab.path(&format!("{name}-state"));
        let args = ["--drain-seconds", drain.as_str(), "--state-dir", state.to_str().unwrap()];
        lab.mooring_standalone(&nodes[i].ns, &name, &name, &dir, &args)
    };
    let first = start(0);
    let _n2 = start(1);
    let both = vec![nodes[0].v4.clone(), nodes[1].v4.clone()];
    poll("VIP via both nodes", Duration::from_secs(20), || (fib_nexthops(&lab.router, VIP) == both).then_some(()));

    let secs = drain.parse::<u64>().unwrap() + 12;
    let loop_proc = client_loop(&client, secs);
    std::thread::sleep(Duration::from_secs(1));
    let t = Instant::now();
    first.signal(libc::SIGTERM);
    let grace = drain.parse::<u64>().unwrap() + 10;
    assert!(lab.wait_exit(&first, Duration::from_secs(grace)), "stopped within the chart's grace period");
    let stopped = t.elapsed();
    if !graceful_restart {
        // The node goes down with its speaker: nothing answers there now.
        lab.stop(&responders[..1], Duration::from_secs(2));
    }
    if graceful_restart {
        assert!(first.output().contains("graceful restart: closing without a NOTIFICATION"), "{}", first.output());
    } else {
        assert!(stopped >= Duration::from_secs(drain.parse().unwrap()), "drained for {drain} s: {stopped:?}");
        if drain != "0" {
            assert!(first.output().contains("graceful shutdown: draining"), "{}", first.output());
        }
    }
    std::thread::sleep(Duration::from_millis(1000)); // the "upgrade"
    if !graceful_restart {
        responders[0] = lab.responder(&nodes[0].ns, VIP, 8080, "n1");
    }
    let _again = start(0);
    poll("n1's session back", Duration::from_secs(20), || {
        (frr.neighbor_state(&nodes[0].v4) == "Established").then_some(())
    });
    poll("VIP via both nodes again", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, VIP) == both).then_some(())
    });
    println!("stop took {stopped:?}, whole cycle {:?}", t.elapsed());
    let out = loop_proc.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u32> = text.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(v.len(), 2, "client loop output: {text}");
    println!("graceful restart {graceful_restart}: {} ok, {} failed", v[0], v[1]);
    assert!(v[0] > 300, "the loop ran");
    assert_eq!(v[1], 0, "connections failed through a restart with the chart's default stop");
}

#[test]
fn a_restart_with_the_charts_default_stop_loses_no_connection_without_graceful_restart() {
    require_lab!();
    restart_under_load(31, false);
}

#[test]
fn a_restart_with_the_charts_default_stop_loses_no_connection_with_graceful_restart() {
    require_lab!();
    restart_under_load(32, true);
}
