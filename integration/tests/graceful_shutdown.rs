//! Graceful shutdown (RFC 8326) against an abrupt loss: a node that goes
//! away while announcing loses the connections hashed to it until BGP
//! notices; draining it first (`--drain-seconds`: GRACEFUL_SHUTDOWN, the
//! edge's inbound policy sets LOCAL_PREF 0, traffic moves) before it goes
//! away loses none. Both are measured with the same client loop.

use std::path::Path;
use std::time::Duration;

use mooring_lab::{fib_nexthops, poll, require_lab, run_ok, Config, Frr, Lab, Neighbor, Node, Proc};

const ID: u8 = 14;
const VIP: &str = "203.0.113.150";

/// The edge: the nodes in peer-group NODES by listen range (timers 1 3),
/// GRACEFUL_SHUTDOWN (RFC 8326) honoured by an inbound policy setting
/// LOCAL_PREF 0.
fn edge(lab: &Lab) -> Frr {
    let policy = "bgp community-list standard GSHUT permit graceful-shutdown
route-map NODES-IN permit 10
 match community GSHUT
 set local-preference 0
route-map NODES-IN permit 20
router bgp 64512
 address-family ipv4 unicast
  neighbor NODES route-map NODES-IN in
 exit-address-family
";
    let nodes = Neighbor::external(&format!("198.18.{}.0/24", lab.id)).name("NODES").timers(1, 3);
    Frr::start(lab, &lab.router, "frr", &Config::new(64512, &lab.router_v4).neighbor(nodes).extra(policy))
}

fn manifests(dir: &Path, lab: &Lab, nodes: &[Node]) {
    std::fs::create_dir_all(dir).unwrap();
    let node_docs: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("apiVersion: v1\nkind: Node\nmetadata: {{name: n{}}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n", i + 1, n.v4))
        .collect();
    std::fs::write(
        dir.join("all.yaml"),
        format!(
            "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: 64513}}\n---\n\
             apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\nspec: {{peerAddress: {}, peerAs: 64512, holdTime: 3s, families: [ipv4-unicast]}}\n---\n\
             apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: vip}}\nspec: {{address: {VIP}/32}}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: default}}\nspec: {{type: LoadBalancer, ports: [{{port: 8080, protocol: TCP}}]}}\n---\n{}",
            lab.router_v4,
            node_docs.join("---\n")
        ),
    )
    .unwrap();
}

/// The client's timeout for one connection (connect and read the answer).
/// A connection to a node that is gone only fails by this timeout, so it
/// must be long enough that a connection to a live node never takes it:
/// measured, the slowest of ~630 successful connections (two runs, the
/// suite's other labs running) took 17.7 and 35.3 ms, so 1 s is 28 times
/// that (it was 0.3 s); the loop prints its slowest. With 1 s a node that
/// is gone still costs several failed connections before the hold timer
/// (3 failures measured).
const CLIENT_TIMEOUT_S: f64 = 1.0;

/// What a client loop saw.
struct Loop {
    ok: u32,
    failed: u32,
    /// The slowest successful connection, ms.
    slowest_ms: f64,
}

/// A client loop (one connection every 10 ms, [`CLIENT_TIMEOUT_S`]) for `secs`.
fn client_loop(client: &Node, secs: u32) -> std::process::Child {
    let script = format!(
        "import socket, time\nok = fail = 0\nslowest = 0.0\nend = time.time() + {secs}\nwhile time.time() < end:\n    \
         t = time.monotonic()\n    try:\n        s = socket.create_connection(('{VIP}', 8080), timeout={CLIENT_TIMEOUT_S}); \
         s.recv(16); s.close(); ok += 1; slowest = max(slowest, time.monotonic() - t)\n    except OSError:\n        \
         fail += 1\n    time.sleep(0.01)\nprint(ok, fail, slowest * 1000)\n"
    );
    std::process::Command::new("ip")
        .args(["netns", "exec", &client.ns, "python3", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn result(c: std::process::Child) -> Loop {
    let out = c.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(v.len(), 3, "client loop output: {text}");
    Loop { ok: v[0] as u32, failed: v[1] as u32, slowest_ms: v[2] }
}

#[test]
fn draining_before_going_away_loses_fewer_connections() {
    require_lab!();
    let lab = Lab::new(ID);
    let nodes: Vec<Node> = ["n1", "n2"].iter().map(|n| lab.node(n)).collect();
    let client = lab.client();
    let _frr = edge(&lab);
    let dir = lab.path("manifests");
    manifests(&dir, &lab, &nodes);
    let start = |i: usize| -> Proc {
        let name = format!("n{}", i + 1);
        lab.mooring_standalone(&nodes[i].ns, &name, &name, &dir, &["--drain-seconds", "2"])
    };
    for (i, n) in nodes.iter().enumerate() {
        run_ok(&["ip", "-n", &n.ns, "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
        lab.responder(&n.ns, "0.0.0.0", 8080, &format!("n{}", i + 1));
    }
    let both = vec![nodes[0].v4.clone(), nodes[1].v4.clone()];
    let mut n1 = start(0);
    let _n2 = start(1);
    poll("both next hops", Duration::from_secs(20), || (fib_nexthops(&lab.router, VIP) == both).then_some(()));

    // Abrupt: node 1 drops off the network while announcing.
    let c = client_loop(&client, 6);
    std::thread::sleep(Duration::from_secs(1));
    lab.unplug(&nodes[0]);
    let abrupt = result(c);
    println!("abrupt loss: {} ok, {} failed; slowest ok {:.1} ms", abrupt.ok, abrupt.failed, abrupt.slowest_ms);
    lab.nft_clear(&nodes[0].ns);
    n1.signal(libc::SIGKILL);
    assert!(lab.wait_exit(&n1, Duration::from_secs(5)));
    n1 = start(0);
    poll("both next hops again", Duration::from_secs(20), || (fib_nexthops(&lab.router, VIP) == both).then_some(()));

    // Graceful: drain node 1 first (SIGTERM, 2 s of GRACEFUL_SHUTDOWN), then it drops off.
    let c = client_loop(&client, 6);
    std::thread::sleep(Duration::from_secs(1));
    let t = std::time::Instant::now();
    n1.signal(libc::SIGTERM);
    // Within the 2 s drain: the GRACEFUL_SHUTDOWN re-announce moved it, not the withdraw after.
    poll("traffic moved to n2", Duration::from_secs(2), || {
        (fib_nexthops(&lab.router, VIP) == vec![nodes[1].v4.clone()]).then_some(())
    });
    println!("drain: traffic on n2 only {:?} after SIGTERM", t.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    lab.unplug(&nodes[0]);
    let drained = result(c);
    println!("drained first: {} ok, {} failed; slowest ok {:.1} ms", drained.ok, drained.failed, drained.slowest_ms);
    assert!(abrupt.ok > 100 && drained.ok > 100, "the loops ran");
    assert!(abrupt.failed > 0, "an abrupt loss does lose connections (else the test shows nothing)");
    assert_eq!(drained.failed, 0, "draining first loses none");
}
