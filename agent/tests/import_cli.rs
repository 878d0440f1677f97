//! `mooring import`, the binary: the examples in tests/fixtures/import (written after MetalLB's
//! and OpenELB's documentation) convert with a comment for each field that does not map, and
//! `mooring plan` accepts the output, with Services using the old tools' annotations.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn mooring(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mooring")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import").join(name).display().to_string()
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mooring-import-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const NODES: &str =
    "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {kubernetes.io/hostname: n1, rack: frontend, openelb.kubesphere.io/rack: leaf1}}\n\
status: {addresses: [{type: InternalIP, address: 198.18.0.11}]}\n---\n\
apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {kubernetes.io/hostname: n2}}\nstatus: {addresses: [{type: InternalIP, address: 198.18.0.12}]}\n";

fn service(ns: &str, name: &str, annotations: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}, annotations: {{{annotations}}}}}\n\
         spec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"
    )
}

/// Import `files`, and plan the output with `extra` manifests: the plan's JSON.
fn round_trip(from: &str, files: &[&str], extra: &str) -> (String, Value) {
    let mut args = vec!["import", "--from", from];
    let paths: Vec<String> = files.iter().map(|f| fixture(f)).collect();
    args.extend(paths.iter().map(String::as_str));
    let (code, out, err) = mooring(&args);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(!out.contains("does not pass Mooring's checks"), "{out}");
    let d = dir(&format!("{from}-{}", files.len()));
    std::fs::write(d.join("imported.yaml"), &out).unwrap();
    std::fs::write(d.join("cluster.yaml"), format!("{NODES}{extra}")).unwrap();
    let (code, plan, err) = mooring(&["plan", "--config", d.to_str().unwrap(), "-o", "json"]);
    let v: Value = serde_json::from_str(&plan).unwrap_or_else(|e| panic!("{e}: {plan} {err}"));
    assert_eq!(code, 0, "mooring plan does not accept the import:\n{v:#}\n{out}");
    std::fs::remove_dir_all(d).unwrap();
    (out, v)
}

fn address(v: &Value, ns: &str, name: &str) -> String {
    let s = v["services"].as_array().unwrap().iter().find(|s| s["namespace"] == ns && s["name"] == name).unwrap();
    s["addresses"][0].as_str().unwrap().to_string()
}

#[test]
fn metallb_resources_round_trip_through_plan() {
    let services = [
        service("default", "web", "metallb.io/address-pool: first-pool"),
        service("default", "dns", "metallb.universe.tf/loadBalancerIPs: 192.0.2.65"),
        service("namespace-a", "app", ""),
        service("default", "other", ""),
        // The Secret MetalLB's BGPPeer secret-peer names, in MetalLB's namespace.
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: bgp-password, namespace: metallb-system}\nstringData: {password: pw}\n"
            .to_string(),
    ]
    .concat();
    let (out, v) = round_trip("metallb", &["metallb.yaml"], &services);
    for comment in [
        "# spec.vrf = \"red\": not mapped: Mooring has no such setting",
        "# spec.connectTime = \"10s\": not mapped",
        "# BFDProfile full spec.echoMode = true: not mapped",
        "# spec.serviceAllocation.serviceSelectors = ",
        "# metallb.io/v1beta1 L2Advertisement metallb-system/l2 (",
        "# spec.avoidBuggyIPs: the IPv4 entries are written as ranges",
    ] {
        assert!(out.contains(comment), "no {comment:?} in\n{out}");
    }
    // The lowest address of first-pool (its ranges in order).
    assert_eq!(address(&v, "default", "web"), "198.51.100.1");
    assert_eq!(address(&v, "default", "dns"), "192.0.2.65");
    // namespace-a may use ns-pool, which MetalLB preferred (its serviceAllocation).
    assert_eq!(address(&v, "namespace-a", "app"), "192.0.2.128");
    // cheap: no .0 (avoidBuggyIPs).
    assert_eq!(address(&v, "default", "other"), "198.18.144.1");
    let n1 = &v["nodes"][0];
    let route = n1["routes"].as_array().unwrap().iter().find(|r| r["prefix"] == "198.51.100.1/32").unwrap();
    assert_eq!(route["communities"], serde_json::json!(["no-advertise"]), "65535:65282, by its name");
    assert_eq!(route["largeCommunities"], serde_json::json!(["64500:1:2"]));
    assert_eq!(route["peers"], serde_json::json!(["sample", "secret-peer"]), "n1 is in rack frontend");
    assert_eq!(v["nodes"][1]["routes"][0]["peers"], serde_json::json!(["secret-peer"]));
    // BGPAdvertisement premium (pools labelled tier=premium, to peer sample, from n1 only) is a
    // BgpAdvertisement: its pool's VIPs go to sample alone, and only from n1.
    assert!(out.contains("kind: BgpAdvertisement\nmetadata:\n  name: premium\n"), "{out}");
    let premium: Vec<&Value> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["routes"].as_array().unwrap().iter().map(move |r| (n, r)))
        .filter(|(_, r)| r["communities"] == serde_json::json!(["64500:7"]))
        .map(|(n, _)| n)
        .collect();
    assert!(!premium.is_empty(), "no route carries premium's community: {v:#}");
    for n in premium {
        assert_eq!(n["name"], "n1", "premium announces from n1 only");
    }
}

#[test]
fn the_old_metallb_configmap_round_trips_through_plan() {
    let (out, v) = round_trip("metallb", &["metallb-configmap.yaml"], &service("default", "web", ""));
    assert!(out.contains("kind: BgpAdvertisement\nmetadata:\n  name: default-1\n"), "{out}");
    assert!(out.contains("# data.config.address-pools[1].protocol = \"layer2\""), "{out}");
    // MetalLB hands out a CIDR's network address (no avoidBuggyIPs): so does the import.
    assert_eq!(address(&v, "default", "web"), "203.0.113.0");
    // Both advertisements of the pool: the host route with its community, and the /24.
    let prefixes: Vec<&str> =
        v["nodes"][0]["routes"].as_array().unwrap().iter().map(|r| r["prefix"].as_str().unwrap()).collect();
    assert_eq!(prefixes, ["203.0.113.0/24", "203.0.113.0/32"], "aggregation-length 24 and 32");
    assert_eq!(v["nodes"][0]["routes"][1]["communities"], serde_json::json!(["no-advertise"]));
}

#[test]
fn openelb_resources_round_trip_through_plan() {
    let services = [
        service(
            "default",
            "pinned",
            "lb.kubesphere.io/v1alpha1: openelb, eip.openelb.kubesphere.io/v1alpha2: layer2-eip",
        ),
        service(
            "default",
            "fixed",
            "lb.kubesphere.io/v1alpha1: openelb, eip.openelb.kubesphere.io/v1alpha1: 203.0.113.95",
        ),
        service("default", "auto", "lb.kubesphere.io/v1alpha1: openelb"),
        service("elsewhere", "auto", "lb.kubesphere.io/v1alpha1: openelb"),
    ]
    .concat();
    let (out, v) = round_trip("openelb", &["openelb.yaml"], &services);
    for comment in [
        "# spec.protocol = \"layer2\": not mapped",
        "# spec.usingKnownIPs = true: not mapped",
        "# spec.timers.config.connectRetry = 10: not mapped",
        "# spec.afiSafis[0].addPaths = ",
    ] {
        assert!(out.contains(comment), "no {comment:?} in\n{out}");
    }
    assert_eq!(address(&v, "default", "pinned"), "198.51.100.91");
    assert_eq!(address(&v, "default", "fixed"), "203.0.113.95");
    // default may use the namespace-bound eip-ns, which OpenELB prefers to the default Eip.
    assert_eq!(address(&v, "default", "auto"), "203.0.113.32");
    assert_eq!(address(&v, "elsewhere", "auto"), "203.0.113.91");
}

#[test]
fn bad_input_is_an_error_naming_the_file() {
    let d = dir("bad");
    let f = d.join("bad.yaml");
    std::fs::write(&f, "kind: [unclosed\n").unwrap();
    let (code, _, err) = mooring(&["import", "--from", "openelb", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.yaml document 0: not YAML"), "{err}");
    // An object that Mooring's checks reject is written with why, and the exit status says so.
    std::fs::write(&f, "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {name: p}\nspec: {conf: {peerAs: 1, neighborAddress: nope}}\n").unwrap();
    let (code, out, err) = mooring(&["import", "--from", "openelb", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("# this object does not pass Mooring's checks: spec.peerAddress: peerAddress must be an IPv4 or IPv6 address"), "{out}");
    assert!(err.contains("1 object(s) written do not pass Mooring's checks"), "{err}");
    std::fs::remove_dir_all(d).unwrap();
}
