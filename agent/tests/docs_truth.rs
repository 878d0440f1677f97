//! The docs cannot drift from the code: every CRD field, command-line flag,
//! annotation, condition type, Helm value (and the defaults the README's
//! values table gives) and metric the Markdown names is checked against the
//! CRD schemas, `mooring <command> --help`, the code and the chart's
//! values.yaml; and every top-level spec field of each CRD is described in
//! crds/README.md. The checks are pure functions of (docs, facts), so a
//! planted mismatch is shown to fail too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use serde_json::Value;

const DOCS: &[&str] = &["README.md", "docs/install.md", "crds/README.md", "helm/README.md"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// What the code says.
struct Facts {
    /// Kind → the schema of its whole object (openAPIV3Schema).
    schemas: BTreeMap<String, Value>,
    /// Command → its flags (`--node`), from `--help`.
    flags: BTreeMap<String, BTreeSet<String>>,
    /// The string literals of the agent's and the crds' sources.
    literals: BTreeSet<String>,
    /// values.yaml.
    values: serde_yaml::Value,
    /// Condition types the code writes.
    conditions: BTreeSet<String>,
    /// Flags of other programs the docs name, and the file that must contain each.
    foreign_flags: BTreeMap<&'static str, &'static str>,
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mooring")).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "mooring {args:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn facts() -> Facts {
    let mut schemas = BTreeMap::new();
    for crd in mooring_crds::crds() {
        let v = serde_json::to_value(&crd).unwrap();
        let kind = v["spec"]["names"]["kind"].as_str().unwrap().to_string();
        schemas.insert(kind, v["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone());
    }
    let flag = Regex::new(r"(?m)^\s+(?:-\w, )?(--[a-z0-9-]+)").unwrap();
    let top = help(&[]);
    let commands: Vec<String> = top
        .split("Commands:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    let mut flags = BTreeMap::new();
    flags.insert(String::new(), flag.captures_iter(&top).map(|c| c[1].to_string()).collect());
    for c in commands {
        let h = help(&[&c]);
        flags.insert(c, flag.captures_iter(&h).map(|c| c[1].to_string()).collect());
    }
    // A string literal, escapes included (a `\` line continuation must not
    // shift the pairing of quotes for the rest of the file).
    let lit = Regex::new(r#"(?s)"((?:[^"\\]|\\.){3,}?)""#).unwrap();
    let mut files = vec![];
    rust_files(&repo().join("agent/src"), &mut files);
    rust_files(&repo().join("crds/src"), &mut files);
    let mut literals = BTreeSet::new();
    let mut conditions = BTreeSet::new();
    let cond = Regex::new(r#"type_: "([A-Z][A-Za-z]+)""#).unwrap();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        literals.extend(lit.captures_iter(&text).map(|c| c[1].to_string()));
        conditions.extend(cond.captures_iter(&text).map(|c| c[1].to_string()));
    }
    let values =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("helm/mooring/values.yaml")).unwrap()).unwrap();
    let foreign_flags = BTreeMap::from([
        ("--keep", "integration/demo.sh"),
        ("--quick", "benches/all.sh"),
        ("--strict", "helm/check.sh"),
        ("--server-side", "README.md"),
    ]);
    Facts { schemas, flags, literals, values, conditions, foreign_flags }
}

/// Whether `path` (`spec.a.b`, `status.x`) is a field of the schema.
fn has_field(schema: &Value, path: &str) -> bool {
    let mut s = schema;
    for part in path.split('.') {
        let part = part.trim_end_matches("[]");
        let next = &s["properties"][part];
        let next = if next.is_null() { &s["items"]["properties"][part] } else { next };
        if next.is_null() {
            return false;
        }
        s = next;
    }
    true
}

fn value_at<'a>(v: &'a serde_yaml::Value, path: &str) -> Option<&'a serde_yaml::Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// Backticked spans of a Markdown text, with the line each is on.
fn spans(text: &str) -> Vec<(usize, String)> {
    let re = Regex::new(r"`([^`\n]+)`").unwrap();
    text.lines().enumerate().flat_map(|(i, l)| re.captures_iter(l).map(move |c| (i + 1, c[1].to_string()))).collect()
}

/// Everything the docs name that the code does not have.
fn problems(docs: &[(String, String)], f: &Facts) -> Vec<String> {
    let mut out = vec![];
    let field = Regex::new(r"^(spec|status)\.[a-zA-Z0-9.\[\]]+$").unwrap();
    // Kubernetes' own fields the docs name (Service, Node, Pod): not ours to check.
    let kubernetes = [
        "spec.loadBalancerClass",
        "spec.loadBalancerIP",
        "spec.ipFamilies",
        "spec.ipFamilyPolicy",
        "spec.externalTrafficPolicy",
        "spec.nodeName",
        "spec.unschedulable",
        "status.loadBalancer.ingress",
        "status.addresses",
    ];
    let only_flag = Regex::new(r"^(--[a-z0-9-]+)(?:[ =].*)?$").unwrap();
    let any_flag = Regex::new(r"(--[a-z][a-z0-9-]+)").unwrap();
    let annotation = Regex::new(r"^(mooring\.io|metallb\.io|metallb\.universe\.tf|eip\.openelb\.kubesphere\.io|lb\.kubesphere\.io|node\.kubernetes\.io|protocol\.openelb\.kubesphere\.io)/[A-Za-z0-9._-]+$").unwrap();
    let condition = Regex::new(r"^([A-Z][A-Za-z]+)=(True|False)$").unwrap();
    let value = Regex::new(r"^(speaker|controller|metrics|quickstart|image|rbac)\.[A-Za-z0-9.]+$").unwrap();
    let metric = Regex::new(r"\b(mooring_[a-z_]+)\b").unwrap();
    let crates = ["mooring_bgp", "mooring_crds", "mooring_agent", "mooring_lab"];
    let all_flags: BTreeSet<&String> = f.flags.values().flatten().collect();
    for (doc, text) in docs {
        // The kind a section is about, from its heading.
        let mut kind_at: Vec<(usize, Option<String>)> = vec![(0, None)];
        for (i, l) in text.lines().enumerate() {
            if l.starts_with('#') {
                let k = f.schemas.keys().find(|k| l.contains(k.as_str())).cloned();
                kind_at.push((i + 1, k));
            }
        }
        let kind_of = |line: usize| kind_at.iter().rev().find(|(l, _)| *l <= line).and_then(|(_, k)| k.clone());
        for (line, span) in spans(text) {
            let at = format!("{doc}:{line}: `{span}`");
            if field.is_match(&span) && !kubernetes.contains(&span.as_str()) {
                // "BgpConf `spec.as`": a field of the kind named just before it.
                let before = text.lines().nth(line - 1).unwrap_or("").split(&format!("`{span}`")).next().unwrap_or("");
                let named = f.schemas.keys().find(|k| before.trim_end().ends_with(k.as_str())).cloned();
                let ok = match named.or_else(|| kind_of(line)) {
                    Some(k) => has_field(&f.schemas[&k], &span),
                    None => f.schemas.values().any(|s| has_field(s, &span)),
                };
                if !ok {
                    out.push(format!("{at}: no such field in {}", kind_of(line).unwrap_or("any CRD".into())));
                }
            }
            if let Some(c) = only_flag.captures(&span) {
                let flag = &c[1];
                match f.foreign_flags.get(flag) {
                    Some(file) if !std::fs::read_to_string(repo().join(file)).unwrap_or_default().contains(flag) => {
                        out.push(format!("{at}: {file} has no {flag}"));
                    }
                    Some(_) => {}
                    None if !all_flags.contains(&flag.to_string()) => {
                        out.push(format!("{at}: no mooring command has {flag}"))
                    }
                    None => {}
                }
            }
            if annotation.is_match(&span) && !f.literals.contains(&span) {
                out.push(format!("{at}: the code does not know this annotation or label"));
            }
            if let Some(c) = condition.captures(&span) {
                if !f.conditions.contains(&c[1]) {
                    out.push(format!("{at}: no condition of type {} is written", &c[1]));
                }
            }
            if value.is_match(&span) && value_at(&f.values, &span).is_none() {
                out.push(format!("{at}: values.yaml has no {span}"));
            }
        }
        for (i, l) in text.lines().enumerate() {
            // Command lines: `mooring <command> --flag ...` (in code blocks and spans).
            if let Some(rest) = l.split("mooring ").nth(1) {
                let cmd = rest.split_whitespace().next().unwrap_or("");
                if let Some(known) = f.flags.get(cmd) {
                    for c in any_flag.captures_iter(rest) {
                        if !known.contains(&c[1]) && !f.flags[""].contains(&c[1]) {
                            out.push(format!("{doc}:{}: `mooring {cmd}` has no {}", i + 1, &c[1]));
                        }
                    }
                }
            }
            for c in metric.captures_iter(l) {
                if crates.contains(&&c[1]) {
                    continue;
                }
                if !f.literals.iter().any(|x| x == &c[1]) {
                    out.push(format!("{doc}:{}: no metric {}", i + 1, &c[1]));
                }
            }
            // The values table: | `path` | `default` | ... |
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            if cells.len() >= 4 && cells[0].is_empty() {
                let strip = |c: &str| c.strip_prefix('`').and_then(|c| c.split('`').next()).map(String::from);
                if let (Some(paths), Some(default)) = (strip(cells[1]), strip(cells[2])) {
                    for path in paths.split(" / ").map(|p| p.trim_matches('`')) {
                        if !value.is_match(path) {
                            continue;
                        }
                        let want: serde_yaml::Value = serde_yaml::from_str(&default).unwrap_or(serde_yaml::Value::Null);
                        let defaults: Vec<&str> = default.split(" / ").collect();
                        let got = value_at(&f.values, path);
                        let ok = got.is_some_and(|g| {
                            *g == want
                                || defaults
                                    .iter()
                                    .any(|d| serde_yaml::from_str::<serde_yaml::Value>(d).ok().as_ref() == Some(g))
                        });
                        if !ok {
                            out.push(format!("{doc}:{}: `{path}` default `{default}`, values.yaml has {got:?}", i + 1));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Top-level spec fields of each CRD that crds/README.md does not describe.
fn undocumented(crds_readme: &str, f: &Facts) -> Vec<String> {
    let mut out = vec![];
    for (kind, schema) in &f.schemas {
        let section: String = crds_readme
            .split("\n### ")
            .find(|s| s.starts_with(kind.as_str()))
            .unwrap_or_else(|| panic!("crds/README.md has no section for {kind}"))
            .to_string();
        for field in schema["properties"]["spec"]["properties"].as_object().unwrap().keys() {
            if !section.contains(&format!("`spec.{field}`")) && !section.contains(&format!("`{field}`")) {
                out.push(format!("crds/README.md: {kind} `spec.{field}` is not described"));
            }
        }
    }
    out
}

fn read_docs() -> Vec<(String, String)> {
    DOCS.iter().map(|d| (d.to_string(), std::fs::read_to_string(repo().join(d)).unwrap())).collect()
}

#[test]
fn the_docs_name_only_what_the_code_has() {
    let f = facts();
    let mut p = problems(&read_docs(), &f);
    p.extend(undocumented(&std::fs::read_to_string(repo().join("crds/README.md")).unwrap(), &f));
    assert!(p.is_empty(), "{} mismatch(es) between the docs and the code:\n{}", p.len(), p.join("\n"));
}

#[test]
fn planted_mismatches_are_caught() {
    let f = facts();
    let planted = "### BgpPeer\n\n\
        Set `spec.holdTimer` to 9s, run `mooring standalone --nodes n1`, pass `--frobnicate`,\n\
        annotate with `mooring.io/pool-name`, look for `Healthy=False`, set `speaker.listenPorts`,\n\
        and watch `mooring_sessions_up`.\n\n\
        | value | default | meaning |\n| --- | --- | --- |\n| `controller.replicas` | `3` | wrong default |\n";
    let p = problems(&[("planted.md".into(), planted.into())], &f);
    for want in [
        "`spec.holdTimer`: no such field in BgpPeer",
        "`mooring standalone` has no --nodes",
        "no mooring command has --frobnicate",
        "`mooring.io/pool-name`: the code does not know",
        "no condition of type Healthy",
        "values.yaml has no speaker.listenPorts",
        "no metric mooring_sessions_up",
        "`controller.replicas` default `3`",
    ] {
        assert!(p.iter().any(|x| x.contains(want)), "{want:?} not caught in {p:#?}");
    }
    // And a README section missing a field is caught.
    let readme = "\n### BgpConf\n`spec.as`\n### BgpPeer\n### Eip\n### BgpAdvertisement\n";
    assert!(undocumented(readme, &f).iter().any(|x| x.contains("BgpConf `spec.routerId`")));
}

#[test]
fn the_readme_codec_example_is_the_example_that_runs() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = readme.split("## The codec in one example\n\n```rust\n").nth(1).unwrap().split("```").next().unwrap();
    let example = std::fs::read_to_string(repo().join("bgp/examples/readme.rs")).unwrap();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        assert!(example.contains(&format!("    {line}")), "bgp/examples/readme.rs lacks README line {line:?}");
    }
    let out = Command::new(env!("CARGO"))
        .args(["run", "-q", "-p", "mooring-bgp", "--example", "readme"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("decoded 1 prefix(es)"));
}

#[test]
fn kubectl_columns_shown_are_the_crds_printer_columns() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let columns = |kind: &str| -> Vec<String> {
        let crd = mooring_crds::crds().into_iter().find(|c| c.spec.names.kind == kind).unwrap();
        let mut cols = vec!["NAME".to_string()];
        cols.extend(
            crd.spec.versions[0]
                .additional_printer_columns
                .iter()
                .flatten()
                .filter(|c| c.priority.unwrap_or(0) == 0)
                .map(|c| c.name.to_uppercase()),
        );
        cols
    };
    // The sample table after `kubectl get bgppeers`.
    let table = readme.split("kubectl get bgppeers\n```\n\n```\n").nth(1).expect("the sample").lines().next().unwrap();
    let shown: Vec<String> = table.split("   ").map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
    assert_eq!(shown, columns("BgpPeer"));
    // The commented column lists: `kubectl get eips   # ADDRESS, USED, ...`.
    for (resource, kind) in [("eips", "Eip"), ("bgpconfs", "BgpConf")] {
        let line = readme.lines().find(|l| l.starts_with(&format!("kubectl get {resource} "))).unwrap();
        let listed: Vec<String> = line.split('#').nth(1).unwrap().split(',').map(|c| c.trim().to_string()).collect();
        assert_eq!(listed, columns(kind)[1..], "{line}");
    }
}
