//! `mooring plan`, the binary: its JSON on the lab's manifests (integration/lab/), the issue's
//! "Why" scenario, held addresses from a state directory, invalid objects and the exit status.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

fn plan(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mooring")).arg("plan").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty() || out.status.code() == Some(1), "{stderr}");
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap())
}

fn plan_json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (code, out) = plan(&all);
    (code, serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")))
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mooring-plan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn lab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../integration/lab")
}

#[test]
fn the_lab_manifests_as_json() {
    let lab = lab();
    let (code, v) = plan_json(&["--config", lab.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    let route = |vip: &str| {
        json!({"prefix": format!("{vip}/32"), "service": if vip.ends_with(".10") { "default/web-cluster" } else { "default/web-local" },
               "services": [if vip.ends_with(".10") { "default/web-cluster" } else { "default/web-local" }],
               "peers": ["edge"], "communities": ["64513:100"], "largeCommunities": [], "med": null, "localPref": null,
               "linkBandwidth": null, "asPathPrepend": 0})
    };
    let want = json!({
        "services": [
            {"namespace": "default", "name": "web-cluster", "addresses": ["203.0.113.10"], "pool": "lab-pool", "problems": [], "complete": true},
            {"namespace": "default", "name": "web-local", "addresses": ["203.0.113.11"], "pool": "lab-pool", "problems": [], "complete": true},
        ],
        "pools": [{"name": "lab-pool", "size": 11, "used": 2, "free": 9, "ready": true}],
        "nodes": [
            {"name": "demo-node1", "routes": [route("203.0.113.10"), route("203.0.113.11")], "problems": []},
            {"name": "demo-node2", "routes": [route("203.0.113.10"), route("203.0.113.11")], "problems": []},
            // node3's endpoint of web-local is not ready.
            {"name": "demo-node3", "routes": [route("203.0.113.10")], "problems": []},
        ],
        "invalid": [],
    });
    assert_eq!(v, want);
    let (code, one) = plan_json(&["--config", lab.to_str().unwrap(), "--node", "demo-node3"]);
    assert_eq!(code, 0);
    assert_eq!(one["nodes"], json!([want["nodes"][2]]));
    let (code, table) = plan(&["--config", lab.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(table.contains("demo-node3  203.0.113.10/32  default/web-cluster  edge   64513:100"), "{table}");
}

const WHY: &str = "apiVersion: mooring.io/v1alpha1
kind: BgpConf
metadata: {name: default}
spec: {as: 64513}
---
apiVersion: mooring.io/v1alpha1
kind: BgpPeer
metadata: {name: edge}
spec: {peerAddress: 198.18.0.1, peerAs: 64512}
---
apiVersion: mooring.io/v1alpha1
kind: Eip
metadata: {name: eip}
spec: {address: 203.0.113.10-203.0.113.11}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, externalTrafficPolicy: Cluster, loadBalancerIP: 203.0.113.10, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec: {type: LoadBalancer, externalTrafficPolicy: Local, selector: {app: api}, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-1, namespace: default, labels: {kubernetes.io/service-name: api}}
addressType: IPv4
endpoints:
- {addresses: [10.1.0.1], nodeName: n1, conditions: {ready: true}}
- {addresses: [10.1.0.2], nodeName: n2, conditions: {ready: true}}
";

fn nodes() -> String {
    (1..=3)
        .map(|i| format!("apiVersion: v1\nkind: Node\nmetadata: {{name: n{i}}}\nstatus: {{addresses: [{{type: InternalIP, address: 198.18.0.{}}}]}}\n", 10 + i))
        .collect::<Vec<_>>()
        .join("---\n")
}

fn addresses(v: &Value) -> Vec<(String, Value)> {
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["addresses"].clone()))
        .collect()
}

#[test]
fn the_service_that_asks_for_an_address_gets_it() {
    let d = dir("why");
    std::fs::write(d.join("why.yaml"), WHY).unwrap();
    std::fs::write(d.join("nodes.yaml"), nodes()).unwrap();
    let (code, v) = plan_json(&["--config", d.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(addresses(&v), [("api".into(), json!(["203.0.113.11"])), ("web".into(), json!(["203.0.113.10"]))]);
    let prefixes = |node: usize| -> Vec<String> {
        v["nodes"][node]["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["prefix"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(prefixes(0), ["203.0.113.10/32", "203.0.113.11/32"]);
    assert_eq!(prefixes(2), ["203.0.113.10/32"], "api has no endpoint on n3");
    assert_eq!(v["pools"], json!([{"name": "eip", "size": 2, "used": 2, "free": 0, "ready": false}]));

    // A state directory where api held .10 from before (an older allocator gave it away):
    // api keeps it, web is refused, named with the rule, and the exit status says so.
    let state = dir("why-state");
    std::fs::write(state.join("allocations.json"), r#"{"default/api": ["203.0.113.10"]}"#).unwrap();
    let (code, v) = plan_json(&["--config", d.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(addresses(&v), [("api".into(), json!(["203.0.113.10"])), ("web".into(), json!([]))]);
    assert_eq!(
        v["services"][1]["problems"],
        json!(["AddressInUse: 203.0.113.10 is held by default/api, and the two may not share it: default/api has no allow-shared-ip key"])
    );
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1, "the state directory is left as it was");
    std::fs::remove_dir_all(d).unwrap();
    std::fs::remove_dir_all(state).unwrap();
}

#[test]
fn invalid_objects_and_missing_nodes_fail_the_plan() {
    let d = dir("invalid");
    std::fs::write(d.join("why.yaml"), WHY.replace("203.0.113.10-203.0.113.11", "203.0.113.11-203.0.113.10")).unwrap();
    std::fs::write(d.join("broken.yaml"), "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: other}\nspec: {peerAddress: 198.18.0.2, peerAs: lots}\n").unwrap();
    std::fs::write(d.join("nodes.yaml"), nodes()).unwrap();
    let (code, v) = plan_json(&["--config", d.to_str().unwrap()]);
    assert_eq!(code, 1);
    let invalid = v["invalid"].as_array().unwrap();
    let file = |f: &str| d.join(f).display().to_string();
    assert!(
        invalid.iter().any(|i| i["file"] == file("broken.yaml")
            && i["kind"] == "BgpPeer"
            && i["name"] == "other"
            && i["field"] == "spec.peerAs"),
        "{invalid:?}"
    );
    assert!(
        invalid.iter().any(|i| i["file"] == file("why.yaml")
            && i["kind"] == "Eip"
            && i["name"] == "eip"
            && i["field"] == "spec.address"
            && i["message"].as_str().unwrap().starts_with("address range is reversed")),
        "{invalid:?}"
    );
    assert_eq!(v["services"][0]["problems"], json!(["NoPool: no enabled pool may be used by this service"]));
    assert_eq!(
        v["services"][1]["problems"],
        json!(["AddressNotInPool: 203.0.113.10 is in no enabled pool this service may use"])
    );
    // A node with no Node object.
    std::fs::write(d.join("why.yaml"), WHY).unwrap();
    std::fs::remove_file(d.join("broken.yaml")).unwrap();
    let (code, v) = plan_json(&["--config", d.to_str().unwrap(), "--node", "ghost"]);
    assert_eq!(code, 1);
    assert!(
        v["nodes"][0]["problems"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().starts_with("Node/ghost")),
        "{v:#}"
    );
    // No such --config: an error, exit status 1.
    let out = Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(["plan", "--config", "/nonexistent/mooring"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file or directory"));
    std::fs::remove_dir_all(d).unwrap();
}
