//! `mooring status` against a running node: `mooring standalone` in a lab node, peering with
//! an FRR edge and with a second BgpPeer nobody answers for, serving its admin address on the
//! node's loopback. The command, run in the node's namespace, must show the FRR session
//! Established with the VIP sent and the other one down with no route to it — as JSON and as
//! the table — and agree with FRR's own view (the VIP in its FIB via the node).
//!
//! The same run checks the chart's alerts and dashboard (`helm/mooring/files/`): every
//! metric and label they use is one the node's `/metrics` exports (or a label Prometheus adds
//! to a target), and `promtool check rules` accepts the rules.

use std::process::Command;
use std::time::{Duration, Instant};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mooring_lab::{edge_frr, fib_nexthops, find_program, mooring_bin, poll, require_lab, skip_or_fail, Lab};
use serde_json::Value;

const ID: u8 = 61;
const VIP: &str = "203.0.113.61";
const ADMIN: &str = "127.0.0.1:9473";

fn manifests(router: &str, silent: &str, node_ip: &str) -> String {
    format!(
        "apiVersion: mooring.io/v1alpha1
kind: BgpConf
metadata: {{name: default}}
spec: {{as: 64513}}
---
apiVersion: mooring.io/v1alpha1
kind: BgpPeer
metadata: {{name: edge}}
spec: {{peerAddress: {router}, peerAs: 64512, holdTime: 3s, families: [ipv4-unicast], maxPrefixes: {{limit: 100}}}}
---
apiVersion: mooring.io/v1alpha1
kind: BgpPeer
metadata: {{name: silent}}
spec: {{peerAddress: {silent}, peerAs: 64514, holdTime: 3s, families: [ipv4-unicast], bfd: {{}}}}
---
apiVersion: mooring.io/v1alpha1
kind: Eip
metadata: {{name: pool}}
spec: {{address: {VIP}/32, communities: ['64513:100']}}
---
apiVersion: v1
kind: Node
metadata: {{name: n1}}
status: {{addresses: [{{type: InternalIP, address: {node_ip}}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec: {{type: LoadBalancer, ports: [{{port: 80, protocol: TCP}}]}}
"
    )
}

/// `mooring status ARGS` in namespace `ns`: (exit status, stdout, stderr).
fn status(ns: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(mooring_bin())
        .arg("status")
        .args(args)
        .output()
        .expect("ip netns exec mooring status");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn status_shows_sessions_and_vips_of_a_running_node() {
    require_lab!();
    let lab = Lab::new(ID);
    let n1 = lab.node("n1");
    let _frr = edge_frr(&lab, &[], None);
    let silent = format!("{}99", &lab.router_v4[..lab.router_v4.len() - 1]);
    let config = lab.path("manifests");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("lab.yaml"), manifests(&lab.router_v4, &silent, &n1.v4)).unwrap();

    // Nothing serves the admin address yet: a clear error, exit status 1.
    let (ok, _, err) = status(&n1.ns, &[]);
    assert!(!ok && err.contains("connecting to 127.0.0.1:9473"), "{err}");

    let _node = lab.mooring_standalone(&n1.ns, "n1", "n1", &config, &["--metrics-addr", ADMIN]);
    poll("the VIP in FRR's FIB via n1", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, VIP) == vec![n1.v4.clone()]).then_some(())
    });

    let t = Instant::now();
    let (ok, json, err) = status(&n1.ns, &["-o", "json"]);
    println!("mooring status -o json answered in {:.1?}", t.elapsed());
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["localAs"], 64513);
    assert_eq!(v["routerId"], n1.v4.as_str());
    let peer = |addr: &str| {
        v["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["address"] == addr)
            .cloned()
            .unwrap_or_else(|| panic!("{addr} in {v:#}"))
    };
    let edge = peer(&lab.router_v4);
    assert_eq!(edge["state"], "Established", "{edge:#}");
    assert_eq!(edge["remoteAs"], 64512);
    assert_eq!(edge["prefixesSent"], 1, "{edge:#}");
    assert_eq!(edge["maxPrefixes"], 100);
    assert!(edge["uptimeSeconds"].is_u64(), "{edge:#}");
    assert!(edge["capabilities"].as_array().unwrap().contains(&Value::from("ipv4-unicast")), "{edge:#}");
    assert_eq!(edge["gracefulShutdown"], false);
    assert_eq!(edge["bfd"], Value::Null, "no BFD configured");
    let down = peer(&silent);
    assert_ne!(down["state"], "Established", "{down:#}");
    assert_eq!(down["bfd"], "Down", "BFD configured, nobody answers: {down:#}");
    assert_eq!(down["prefixesSent"], 0);
    assert_eq!(down["uptimeSeconds"], Value::Null);
    let vips = v["vips"].as_array().unwrap();
    assert_eq!(vips.len(), 1, "{v:#}");
    assert_eq!(vips[0]["prefix"], format!("{VIP}/32"));
    assert_eq!(vips[0]["peers"], serde_json::json!([lab.router_v4]), "the VIP goes to the Established peer only");
    assert_eq!(vips[0]["communities"], serde_json::json!(["64513:100"]));

    let (ok, table, err) = status(&n1.ns, &[]);
    assert!(ok, "{err}");
    println!("{table}");
    let line = |start: &str| table.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("{start}: {table}"));
    let edge_line: Vec<&str> = line(&format!("{} ", lab.router_v4)).split_whitespace().collect();
    assert_eq!(&edge_line[1..3], ["64512", "Established"], "{table}");
    assert_eq!(edge_line[4..6], ["1", "0/100"], "sent 1, received 0 of at most 100: {table}");
    assert!(line(&format!("{silent} ")).contains("64514"), "{table}");
    let vip_line = line(&format!("{VIP}/32"));
    assert!(vip_line.contains(&lab.router_v4) && !vip_line.contains(&silent), "{table}");
    assert!(vip_line.contains("community 64513:100"), "{table}");

    let out = Command::new("ip")
        .args(["netns", "exec", &n1.ns, "curl", "-sf", &format!("http://{ADMIN}/metrics")])
        .output()
        .expect("curl /metrics");
    assert!(out.status.success(), "curl /metrics: {}", String::from_utf8_lossy(&out.stderr));
    check_alerts_and_dashboard(&String::from_utf8_lossy(&out.stdout));
}

/// Labels Prometheus gives every series of a target (kubernetes_sd with the ServiceMonitor).
const TARGET_LABELS: &[&str] = &["instance", "job", "namespace", "pod", "service", "endpoint", "container"];

/// Each metric family in an exposition and the label names its series carry.
fn exported(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let end = l.find(['{', ' ']).unwrap_or(l.len());
        let labels = out.entry(l[..end].to_string()).or_default();
        if let Some(body) = l[end..].strip_prefix('{').and_then(|b| b.split_once('}')).map(|(b, _)| b) {
            for kv in body.split(',').filter(|kv| !kv.is_empty()) {
                labels.insert(kv.split('=').next().unwrap_or("").trim().to_string());
            }
        }
    }
    out
}

fn ident_end(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len())
}

/// The metrics a PromQL expression reads, with the labels its selectors name, and the labels
/// of its `by`/`on`/`without`/`ignoring` clauses.
fn promql_uses(expr: &str) -> (BTreeMap<String, BTreeSet<String>>, BTreeSet<String>) {
    let mut metrics: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut grouping = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let word_end = i + ident_end(&rest[i..]);
        let word = &rest[i..word_end];
        let after = &rest[word_end..];
        if word.starts_with("mooring_") {
            let labels = metrics.entry(word.to_string()).or_default();
            if let Some(sel) = after.strip_prefix('{').and_then(|a| a.split_once('}')).map(|(a, _)| a) {
                for m in sel.split(',').filter(|m| !m.trim().is_empty()) {
                    labels.insert(m.trim()[..ident_end(m.trim())].to_string());
                }
            }
        } else if ["by", "on", "without", "ignoring"].contains(&word) {
            if let Some(list) = after.trim_start().strip_prefix('(').and_then(|a| a.split_once(')')).map(|(a, _)| a) {
                grouping.extend(list.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()));
            }
        }
        // Skip quoted strings (label values, legends) whole.
        rest = match after.find(['"', '[', '{']) {
            Some(q) if after[..q].trim().is_empty() && after.as_bytes()[q] == b'"' => {
                after[q + 1..].split_once('"').map(|(_, r)| r).unwrap_or("")
            }
            _ => after,
        };
        if let Some(sel) = rest.strip_prefix('{') {
            rest = sel.split_once('}').map(|(_, r)| r).unwrap_or("");
        }
    }
    (metrics, grouping)
}

/// What an expression uses that the exposition does not have (empty: nothing).
fn unknown_uses(expr: &str, annotations: &[String], exp: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let (metrics, grouping) = promql_uses(expr);
    let mut bad = vec![];
    let mut all_labels: BTreeSet<String> = TARGET_LABELS.iter().map(|l| l.to_string()).collect();
    for (m, labels) in &metrics {
        let Some(have) = exp.get(m) else {
            bad.push(format!("metric {m} is not exported"));
            continue;
        };
        all_labels.extend(have.iter().cloned());
        for l in labels.iter().filter(|l| !have.contains(*l) && !TARGET_LABELS.contains(&l.as_str())) {
            bad.push(format!("{m} has no label {l}"));
        }
    }
    if metrics.is_empty() {
        bad.push(format!("{expr:?} reads no Mooring metric"));
    }
    for l in grouping.iter().filter(|l| !all_labels.contains(*l)) {
        bad.push(format!("grouping by {l}, a label none of {:?} has", metrics.keys()));
    }
    for a in annotations {
        for part in a.split("$labels.").skip(1) {
            let l = &part[..ident_end(part)];
            if !all_labels.contains(l) {
                bad.push(format!("annotation uses $labels.{l}, a label none of {:?} has", metrics.keys()));
            }
        }
    }
    bad
}

/// Every alert and dashboard query against the exposition; and promtool on the rule file.
fn check_alerts_and_dashboard(metrics_text: &str) {
    let exp = exported(metrics_text);
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/mooring/files");
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart.join("alerts.yaml")).unwrap()).unwrap();
    let mut bad = vec![];
    let mut alerts = 0;
    for g in rules["groups"].as_sequence().unwrap() {
        for r in g["rules"].as_sequence().unwrap() {
            let expr = r["expr"].as_str().unwrap();
            let ann: Vec<String> = r["annotations"]
                .as_mapping()
                .map(|m| m.values().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default();
            bad.extend(
                unknown_uses(expr, &ann, &exp)
                    .into_iter()
                    .map(|b| format!("alert {}: {b}", r["alert"].as_str().unwrap())),
            );
            alerts += 1;
        }
    }
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(chart.join("dashboard.json")).unwrap()).unwrap();
    let mut queries = 0;
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let legend = t["legendFormat"].as_str().unwrap_or("").replace("{{", "$labels.").replace("}}", "");
            let expr = t["expr"].as_str().unwrap();
            bad.extend(unknown_uses(expr, &[legend], &exp).into_iter().map(|b| format!("panel {}: {b}", p["title"])));
            queries += 1;
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"].as_str().filter(|q| q.starts_with("label_values(")) {
            bad.extend(unknown_uses(q, &[], &exp).into_iter().map(|b| format!("variable {}: {b}", v["name"])));
        }
    }
    assert!(bad.is_empty(), "the chart uses what the binary does not export:\n{}", bad.join("\n"));
    println!("{alerts} alerts and {queries} dashboard queries use only exported metrics and labels");

    match find_program("promtool") {
        Some(promtool) => {
            let out = Command::new(promtool).args(["check", "rules"]).arg(chart.join("alerts.yaml")).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && text.contains(&format!("SUCCESS: {alerts} rules found")), "{text}");
        }
        None => skip_or_fail("promtool check rules", "promtool not found (Debian package prometheus)"),
    }
}

#[test]
fn the_alert_checker_catches_what_is_not_exported() {
    let exp = exported(
        "mooring_bgp_session_established{peer=\"198.18.0.1\"} 1\nmooring_pool_addresses{pool=\"p\",state=\"used\"} 3\n",
    );
    assert!(unknown_uses(
        "mooring_bgp_session_established == 0",
        &["{{ $labels.peer }} {{ $labels.instance }}".into()],
        &exp
    )
    .is_empty());
    assert!(unknown_uses("max by (pool) (mooring_pool_addresses{state=\"free\"}) == 0", &[], &exp).is_empty());
    let bad = |e: &str, ann: &str| unknown_uses(e, &[ann.to_string()], &exp);
    assert_eq!(bad("mooring_bgp_session_up == 0", ""), ["metric mooring_bgp_session_up is not exported"]);
    assert_eq!(bad("mooring_pool_addresses{kind=\"used\"} > 0", ""), ["mooring_pool_addresses has no label kind"]);
    assert_eq!(bad("sum by (node) (mooring_pool_addresses)", "").len(), 1);
    assert_eq!(bad("mooring_pool_addresses > 0", "{{ $labels.peer }}").len(), 1);
    assert_eq!(bad("up == 0", "").len(), 1, "an expression of no Mooring metric");
}
