//! Hitless upgrade: `mooring standalone` on the only node announcing a VIP,
//! with graceful restart enabled in the BgpConf, is stopped (SIGTERM) and
//! started again while a client keeps connecting to the VIP through an FRR
//! edge with `bgp graceful-restart`: not one connection may fail.

use std::time::{Duration, Instant};

use mooring_lab::{edge_frr, fib_nexthops, poll, require_lab, run_ok, Lab};

const ID: u8 = 13;
const VIP: &str = "203.0.113.140";

#[test]
fn graceful_restart_of_the_agent_loses_no_connection() {
    require_lab!();
    let lab = Lab::new(ID);
    let n = lab.node("n1");
    let client = lab.client();
    let frr = edge_frr(&lab, &[&n.v4], Some(60));
    let dir = lab.path("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("all.yaml"),
        format!(
            "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\n\
             spec: {{as: 64513, gracefulRestart: {{enabled: true, restartTime: 60}}}}\n---\n\
             apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\n\
             spec: {{peerAddress: {}, peerAs: 64512, holdTime: 9s, families: [ipv4-unicast]}}\n---\n\
             apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: vip}}\nspec: {{address: {VIP}/32}}\n---\n\
             apiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: default}}\n\
             spec: {{type: LoadBalancer, ports: [{{port: 8080, protocol: TCP}}]}}\n",
            lab.router_v4, n.v4
        ),
    )
    .unwrap();
    run_ok(&["ip", "-n", &n.ns, "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
    lab.responder(&n.ns, VIP, 8080, "n1");
    let state = lab.path("state");
    let args = ["--state-dir", state.to_str().unwrap()];
    let first = lab.mooring_standalone(&n.ns, "mooring", "n1", &dir, &args);
    poll("VIP in the edge FIB", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, VIP) == vec![n.v4.clone()]).then_some(())
    });

    // A steady request loop (one connection every 20 ms for 8 s) during the restart.
    let script = format!(
        "import socket, time\nok = fail = 0\nend = time.time() + 8\nwhile time.time() < end:\n    try:\n        s = socket.create_connection(('{VIP}', 8080), timeout=1); s.recv(16); s.close(); ok += 1\n    except OSError:\n        fail += 1\n    time.sleep(0.02)\nprint(ok, fail)\n"
    );
    let loop_proc = std::process::Command::new("ip")
        .args(["netns", "exec", &client.ns, "python3", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let t = Instant::now();
    first.signal(libc::SIGTERM);
    assert!(lab.wait_exit(&first, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(1500)); // the "upgrade"
    let second = lab.mooring_standalone(&n.ns, "mooring", "n1", &dir, &args);
    second.wait_line("Restart State bit", Duration::from_secs(5));
    poll("session back", Duration::from_secs(20), || (frr.neighbor_state(&n.v4) == "Established").then_some(()));
    println!("restart cycle took {:?}", t.elapsed());
    let out = loop_proc.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u32> = text.split_whitespace().map(|x| x.parse().unwrap()).collect();
    println!("client loop during the restart: {} ok, {} failed", v[0], v[1]);
    assert!(v[0] > 100, "the loop ran");
    assert_eq!(v[1], 0, "connections failed during a graceful restart");
    // The route is fresh again (End-of-RIB cleared the stale flag).
    poll("stale flag cleared", Duration::from_secs(10), || {
        let p = frr.paths(&format!("{VIP}/32"));
        (p.len() == 1 && p[0].get("stale").is_none()).then_some(())
    });
}
