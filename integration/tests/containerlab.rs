//! The containerlab topology (`integration/containerlab/mooring.clab.yml`), checked without
//! containerlab: against the topology format as containerlab documents it
//! (<https://containerlab.dev/manual/topo-def-file/>, `/manual/nodes/`, `/manual/kinds/`) —
//! a name, nodes whose kind is known (on the node or in `topology.defaults`), an image for
//! every container, binds `host:container[:options]` whose host side exists (relative to the
//! topology file), exec and cmd as strings, `network-mode: container:<node>` naming another
//! node, links of two endpoints `node:interface` on defined nodes, none used twice — then that
//! every Mooring node runs the image the image test builds (`mooring:<version>`) and that what
//! is mounted as its config directory passes `mooring plan` for the node it runs as, each
//! node announcing the VIPs to both edges. Needs no root and no daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use mooring_integration::image;
use serde_yaml::Value;

/// Node fields of the documented format (`/manual/nodes/`); anything else is a typo.
const NODE_FIELDS: &[&str] = &[
    "kind",
    "type",
    "group",
    "image",
    "image-pull-policy",
    "restart-policy",
    "license",
    "startup-config",
    "startup-delay",
    "enforce-startup-config",
    "suppress-startup-config",
    "auto-remove",
    "binds",
    "ports",
    "mgmt-ipv4",
    "mgmt-ipv6",
    "dns",
    "publish",
    "env",
    "env-files",
    "user",
    "entrypoint",
    "cmd",
    "exec",
    "labels",
    "network-mode",
    "runtime",
    "cpu",
    "cpu-set",
    "memory",
    "cap-add",
    "sysctls",
    "devices",
    "certificate",
    "healthcheck",
    "wait-for",
    "stages",
    "extras",
    "aliases",
    "shm-size",
    "components",
    "config",
];
/// Kinds that are containers of an image the topology names.
const CONTAINER_KINDS: &[&str] = &[
    "linux",
    "nokia_srlinux",
    "arista_ceos",
    "juniper_crpd",
    "cisco_xrd",
    "sonic-vs",
    "keysight_ixia-c-one",
    "rare",
    "ostinato",
    "cumulus_cvx",
    "k8s-kind",
];
/// Kinds without an image.
const OTHER_KINDS: &[&str] = &["bridge", "ovs-bridge", "host", "ext-container"];
const TOP_FIELDS: &[&str] = &["name", "prefix", "mgmt", "topology", "settings", "debug"];
const TOPOLOGY_FIELDS: &[&str] = &["nodes", "links", "kinds", "defaults", "groups"];
/// Endpoints that are not nodes of the topology (`/manual/network/`).
const SPECIAL_ENDPOINTS: &[&str] = &["host", "mgmt-net", "macvlan"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("containerlab")
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

/// A topology node after `topology.defaults` applied.
#[derive(Debug)]
struct ClabNode {
    kind: String,
    image: Option<String>,
    cmd: Option<String>,
    /// (host path, container path)
    binds: Vec<(String, String)>,
    network_mode: Option<String>,
}

/// Every way the topology breaks the documented format (empty: none), and its nodes.
fn check(text: &str, base: &Path) -> (Vec<String>, BTreeMap<String, ClabNode>) {
    let mut errs = vec![];
    let mut nodes = BTreeMap::new();
    let doc: Value = match serde_yaml::from_str(text) {
        Ok(d) => d,
        Err(e) => return (vec![format!("not YAML: {e}")], nodes),
    };
    let Some(top) = doc.as_mapping() else { return (vec!["the topology is not a mapping".into()], nodes) };
    for k in top.keys() {
        if !k.as_str().is_some_and(|k| TOP_FIELDS.contains(&k)) {
            errs.push(format!("unknown top-level field {k:?}"));
        }
    }
    if doc.get("name").and_then(s).is_none_or(|n| n.is_empty()) {
        errs.push("name: a topology needs a name".into());
    }
    let Some(topo) = doc.get("topology").and_then(Value::as_mapping) else {
        errs.push("topology: missing".into());
        return (errs, nodes);
    };
    for k in topo.keys() {
        if !k.as_str().is_some_and(|k| TOPOLOGY_FIELDS.contains(&k)) {
            errs.push(format!("topology: unknown field {k:?}"));
        }
    }
    let defaults = doc["topology"].get("defaults");
    let default = |field: &str| defaults.and_then(|d| d.get(field)).and_then(s).map(String::from);
    let Some(raw) = doc["topology"].get("nodes").and_then(Value::as_mapping) else {
        errs.push("topology.nodes: missing".into());
        return (errs, nodes);
    };
    for (name, n) in raw {
        let Some(name) = name.as_str() else {
            errs.push(format!("node name {name:?} is not a string"));
            continue;
        };
        let at = format!("topology.nodes.{name}");
        let empty = serde_yaml::Mapping::new();
        let fields = n.as_mapping().unwrap_or(&empty);
        for k in fields.keys() {
            if !k.as_str().is_some_and(|k| NODE_FIELDS.contains(&k)) {
                errs.push(format!("{at}: unknown field {k:?}"));
            }
        }
        let kind = n.get("kind").and_then(s).map(String::from).or_else(|| default("kind"));
        let Some(kind) = kind else {
            errs.push(format!("{at}: no kind (on the node or in topology.defaults)"));
            continue;
        };
        if !CONTAINER_KINDS.contains(&kind.as_str()) && !OTHER_KINDS.contains(&kind.as_str()) {
            errs.push(format!("{at}.kind: unknown kind {kind:?}"));
        }
        let image = n.get("image").and_then(s).map(String::from).or_else(|| default("image"));
        if CONTAINER_KINDS.contains(&kind.as_str()) && image.as_deref().is_none_or(str::is_empty) {
            errs.push(format!("{at}.image: a {kind} node needs an image"));
        }
        let cmd = match n.get("cmd") {
            None => None,
            Some(Value::String(c)) => Some(c.clone()),
            Some(other) => {
                errs.push(format!("{at}.cmd: not a string: {other:?}"));
                None
            }
        };
        match n.get("exec") {
            None => {}
            Some(Value::Sequence(lines)) => {
                for (i, l) in lines.iter().enumerate() {
                    if l.as_str().is_none_or(|l| l.trim().is_empty()) {
                        errs.push(format!("{at}.exec[{i}]: not a command line: {l:?}"));
                    }
                }
            }
            Some(other) => errs.push(format!("{at}.exec: not a list: {other:?}")),
        }
        let mut binds = vec![];
        match n.get("binds") {
            None => {}
            Some(Value::Sequence(list)) => {
                for (i, b) in list.iter().enumerate() {
                    let Some(b) = b.as_str() else {
                        errs.push(format!("{at}.binds[{i}]: not a string"));
                        continue;
                    };
                    let parts: Vec<&str> = b.split(':').collect();
                    let (host, inside, opts) = match parts.as_slice() {
                        [h, c] => (*h, *c, None),
                        [h, c, o] => (*h, *c, Some(*o)),
                        _ => {
                            errs.push(format!("{at}.binds[{i}]: {b:?} is not host:container[:options]"));
                            continue;
                        }
                    };
                    if !inside.starts_with('/') {
                        errs.push(format!("{at}.binds[{i}]: container path {inside:?} is not absolute"));
                    }
                    if let Some(o) = opts {
                        for o in o.split(',') {
                            if !["ro", "rw", "z", "Z", "shared", "slave", "private", "rshared", "rslave", "rprivate"]
                                .contains(&o)
                            {
                                errs.push(format!("{at}.binds[{i}]: unknown option {o:?}"));
                            }
                        }
                    }
                    if !base.join(host).exists() {
                        errs.push(format!("{at}.binds[{i}]: {host} does not exist (relative to the topology)"));
                    }
                    binds.push((host.to_string(), inside.to_string()));
                }
            }
            Some(other) => errs.push(format!("{at}.binds: not a list: {other:?}")),
        }
        let network_mode = n.get("network-mode").and_then(s).map(String::from);
        nodes.insert(name.to_string(), ClabNode { kind, image, cmd, binds, network_mode });
    }
    for (name, n) in &nodes {
        match n.network_mode.as_deref() {
            None | Some("host") | Some("none") | Some("bridge") => {}
            Some(m) => match m.strip_prefix("container:") {
                Some(other) if other != name && nodes.get(other).is_some_and(|o| o.network_mode.is_none()) => {}
                Some(other) => errs.push(format!(
                    "topology.nodes.{name}.network-mode: container:{other} must name another node of the topology \
                     (with a network of its own)"
                )),
                None => errs.push(format!("topology.nodes.{name}.network-mode: unknown mode {m:?}")),
            },
        }
    }
    let mut used = BTreeSet::new();
    let links = doc["topology"].get("links").and_then(Value::as_sequence).cloned().unwrap_or_default();
    for (i, l) in links.iter().enumerate() {
        let at = format!("topology.links[{i}]");
        let Some(eps) = l.get("endpoints").and_then(Value::as_sequence) else {
            errs.push(format!("{at}: no endpoints list"));
            continue;
        };
        if eps.len() != 2 {
            errs.push(format!("{at}.endpoints: a link has two endpoints, not {}", eps.len()));
        }
        for e in eps {
            let Some((node, iface)) = e.as_str().and_then(|e| e.split_once(':')) else {
                errs.push(format!("{at}.endpoints: {e:?} is not node:interface"));
                continue;
            };
            if iface.is_empty() || iface.len() > 15 {
                errs.push(format!("{at}.endpoints: interface {iface:?} of {node} is not a Linux interface name"));
            }
            if SPECIAL_ENDPOINTS.contains(&node) {
                continue;
            }
            match nodes.get(node) {
                None => errs.push(format!("{at}.endpoints: {node} is not a node of the topology")),
                Some(n) if n.network_mode.as_deref().is_some_and(|m| m.starts_with("container:")) => {
                    errs.push(format!("{at}.endpoints: {node} shares another node's network; link that node"))
                }
                Some(_) => {}
            }
            if !used.insert((node.to_string(), iface.to_string())) {
                errs.push(format!("{at}.endpoints: {node}:{iface} is used by two links"));
            }
        }
    }
    (errs, nodes)
}

/// The value of `--flag` in a command line.
fn flag<'a>(cmd: &'a str, name: &str) -> Option<&'a str> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    words.windows(2).find(|w| w[0] == name).map(|w| w[1])
}

#[test]
fn the_topology_follows_containerlabs_format() {
    let path = dir().join("mooring.clab.yml");
    let text = std::fs::read_to_string(&path).expect("the topology");
    let (errs, nodes) = check(&text, &dir());
    assert!(errs.is_empty(), "{}:\n{}", path.display(), errs.join("\n"));
    // The lab the issue asks for: two edges, three Mooring nodes, a client.
    let mooring: Vec<&String> = nodes
        .iter()
        .filter(|(_, n)| n.image.as_deref().is_some_and(|i| i.starts_with("mooring:")))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(mooring.len(), 3, "three Mooring nodes: {mooring:?}");
    assert!(nodes.iter().any(|(_, n)| n.image.as_deref().is_some_and(|i| i.contains("frr"))), "an FRR edge");
    assert!(nodes.iter().any(|(_, n)| n.image.as_deref().is_some_and(|i| i.contains("gobgp"))), "a GoBGP edge");
    assert!(nodes.contains_key("client"), "a client");
}

#[test]
fn the_mooring_nodes_run_the_image_the_image_test_builds_with_manifests_that_plan() {
    let text = std::fs::read_to_string(dir().join("mooring.clab.yml")).expect("the topology");
    let (errs, nodes) = check(&text, &dir());
    assert!(errs.is_empty(), "{}", errs.join("\n"));
    let mut planned = 0;
    for (name, n) in nodes.iter().filter(|(_, n)| n.image.as_deref().is_some_and(|i| i.starts_with("mooring"))) {
        assert_eq!(n.image.as_deref(), Some(image::image_tag().as_str()), "{name}: the image the image test builds");
        assert_eq!(n.kind, "linux", "{name}");
        let cmd = n.cmd.as_deref().unwrap_or_else(|| panic!("{name}: no cmd"));
        assert_eq!(cmd.split_whitespace().next(), Some("standalone"), "{name}: {cmd}");
        let node = flag(cmd, "--node").unwrap_or_else(|| panic!("{name}: no --node in {cmd}"));
        let config = flag(cmd, "--config").unwrap_or_else(|| panic!("{name}: no --config in {cmd}"));
        // The config directory as the container sees it: the binds under it.
        let seen = tempfile::tempdir().unwrap();
        let mut mounted = 0;
        for (host, inside) in &n.binds {
            if let Some(rel) = inside.strip_prefix(config).and_then(|r| r.strip_prefix('/')) {
                std::fs::copy(dir().join(host), seen.path().join(rel)).unwrap();
                mounted += 1;
            }
        }
        assert!(mounted >= 3, "{name}: manifests mounted under {config}: {:?}", n.binds);
        let out = Command::new(mooring_lab::mooring_bin())
            .args(["plan", "--config"])
            .arg(seen.path())
            .args(["--node", node, "-o", "json"])
            .output()
            .expect("mooring plan");
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{name}: plan output is not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr))
        });
        assert!(out.status.success(), "{name}: mooring plan fails on what is mounted:\n{plan:#}");
        let routes = plan["nodes"][0]["routes"].as_array().cloned().unwrap_or_default();
        assert!(!routes.is_empty(), "{name} ({node}) announces something: {plan:#}");
        for r in &routes {
            let peers: Vec<&str> = r["peers"].as_array().unwrap().iter().filter_map(|p| p.as_str()).collect();
            assert_eq!(peers, ["edge-frr", "edge-gobgp"], "{name}: {} goes to both edges", r["prefix"]);
        }
        planned += 1;
    }
    assert_eq!(planned, 3);
}

#[test]
fn the_check_finds_what_the_format_forbids() {
    let base = dir();
    let bad = |yaml: &str, expect: &str| {
        let (errs, _) = check(yaml, &base);
        assert!(errs.iter().any(|e| e.contains(expect)), "expected {expect:?} in {errs:?}");
    };
    let ok = "name: t\ntopology:\n  nodes:\n    a: {kind: linux, image: x}\n    b: {kind: linux, image: x}\n  \
              links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    assert_eq!(check(ok, &base).0, Vec::<String>::new());
    bad("topology: {nodes: {a: {kind: linux, image: x}}}", "needs a name");
    bad("name: t\ntopology: {nodes: {a: {kind: linux}}}", "needs an image");
    bad("name: t\ntopology: {nodes: {a: {image: x}}}", "no kind");
    bad("name: t\ntopology: {nodes: {a: {kind: linx, image: x}}}", "unknown kind");
    bad("name: t\ntopology: {nodes: {a: {kind: linux, image: x, bind: []}}}", "unknown field");
    bad("name: t\ntopology: {nodes: {a: {kind: linux, image: x, binds: [nope:/x]}}}", "does not exist");
    bad("name: t\ntopology: {nodes: {a: {kind: linux, image: x, binds: [manifests:x]}}}", "not absolute");
    bad("name: t\ntopology: {nodes: {a: {kind: linux, image: x, exec: ls}}}", "not a list");
    bad("name: t\ntopology: {nodes: {a: {kind: linux, image: x, network-mode: 'container:b'}}}", "another node");
    bad(&ok.replace("b:eth1", "c:eth1"), "c is not a node");
    bad(&ok.replace("\"b:eth1\"", "\"b:eth1\", \"a:eth2\""), "two endpoints");
    bad(&format!("{ok}    - endpoints: [\"a:eth1\", \"b:eth2\"]\n"), "used by two links");
    bad("name: t\ntopology:\n  nodes: {a: {kind: linux, image: x}}\n  links: [{endpoints: [a]}]\n", "node:interface");
    bad("[1, 2]", "not a mapping");
}
