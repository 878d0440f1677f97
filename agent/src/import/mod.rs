//! `mooring import --from metallb|openelb FILE...`: another load balancer's custom resources
//! in, Mooring manifests out (on stdout), with a YAML comment for every field that cannot be
//! mapped and why. Pure: [`convert`] takes the files' text and returns the output text;
//! `metallb.rs` and `openelb.rs` hold the two mappings, this module what they share (reading
//! documents, tracking which fields were used, checking and writing the result).

mod metallb;
mod openelb;

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Where the manifests come from.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// MetalLB: IPAddressPool, BGPPeer, BGPAdvertisement, BFDProfile, Community, and the
    /// ConfigMap of MetalLB before 0.13.
    Metallb,
    /// OpenELB (formerly Porter): Eip, BgpConf, BgpPeer (network.kubesphere.io/v1alpha2).
    Openelb,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    #[arg(long = "from", value_enum)]
    pub source: Source,
    /// YAML files (`kubectl get ... -o yaml` output, `List`s included); `-` for standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// One input document.
#[derive(Debug, Clone)]
pub struct Input {
    /// `file` or `file document N`.
    pub origin: String,
    pub value: Value,
}

impl Input {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }

    fn name(&self) -> String {
        self.value["metadata"]["name"].as_str().unwrap_or_default().to_string()
    }

    fn namespace(&self) -> String {
        self.value["metadata"]["namespace"].as_str().unwrap_or_default().to_string()
    }

    /// `apiVersion Kind namespace/name (origin)`.
    fn describe(&self) -> String {
        let ns = self.namespace();
        let name = if ns.is_empty() { self.name() } else { format!("{ns}/{}", self.name()) };
        format!("{} {} {name} ({})", self.api_version(), self.kind(), self.origin)
    }
}

/// One output document: comments, then the object (none: a comment-only document).
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub comments: Vec<String>,
    pub object: Option<Value>,
}

impl Doc {
    fn note(&mut self, n: impl Into<String>) {
        self.comments.push(n.into());
    }
}

/// The fields of one input object, taken as the mapping uses them; what is left at the end
/// could not be mapped.
pub struct Fields {
    path: String,
    map: Map<String, Value>,
}

impl Fields {
    pub fn new(path: &str, v: Option<&Value>) -> Fields {
        let map = v.and_then(Value::as_object).cloned().unwrap_or_default();
        Fields { path: path.to_string(), map }
    }

    /// A field (a `null` counts as absent).
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    pub fn string(&mut self, key: &str) -> Option<String> {
        self.take(key).map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    /// A number, also written as a string (GoBGP's timers).
    pub fn number(&mut self, key: &str) -> Option<i64> {
        let v = self.take(key)?;
        v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    }

    pub fn flag(&mut self, key: &str) -> bool {
        self.take(key).is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
    }

    /// The fields of an object field.
    pub fn sub(&mut self, key: &str) -> Fields {
        let v = self.take(key);
        Fields::new(&self.at(key), v.as_ref())
    }

    /// The path of a field.
    pub fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// Report a field as not mapped, and why.
    pub fn drop_field(&mut self, key: &str, why: &str, doc: &mut Doc) {
        if let Some(v) = self.take(key) {
            doc.note(format!("{} = {}: not mapped: {why}", self.at(key), short(&v)));
        }
    }

    /// Report every field left as not mapped, with `why`.
    pub fn rest(self, why: &str, doc: &mut Doc) {
        for (k, v) in self.map {
            if !v.is_null() {
                doc.note(format!("{}.{k} = {}: not mapped: {why}", self.path, short(&v)));
            }
        }
    }
}

/// A value as one line of text.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        format!("{}...", s.chars().take(117).collect::<String>())
    } else {
        s
    }
}

/// The documents of the input files; `List`s are opened. A document that is not YAML is an
/// error naming the file.
pub fn documents(files: &[(String, String)]) -> Result<Vec<Input>> {
    let mut out = vec![];
    for (name, text) in files {
        for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let v = serde_yaml::Value::deserialize(doc).with_context(|| format!("{name} document {i}: not YAML"))?;
            let v: Value = serde_json::to_value(v).with_context(|| format!("{name} document {i}"))?;
            if v.is_null() {
                continue;
            }
            let origin = if i == 0 { name.clone() } else { format!("{name} document {i}") };
            match v["items"].as_array() {
                Some(items) if v["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                    for (j, item) in items.iter().enumerate() {
                        out.push(Input { origin: format!("{origin} item {j}"), value: item.clone() });
                    }
                }
                _ => out.push(Input { origin, value: v }),
            }
        }
    }
    Ok(out)
}

/// The result of a conversion.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub text: String,
    /// Objects written that do not pass Mooring's checks (each says why in its comments).
    pub invalid: usize,
}

/// Convert the files (name, text) from `source` into Mooring manifests.
pub fn convert(source: Source, files: &[(String, String)]) -> Result<Conversion> {
    let inputs = documents(files)?;
    let docs = match source {
        Source::Metallb => metallb::convert(&inputs),
        Source::Openelb => openelb::convert(&inputs),
    };
    Ok(render(source, docs))
}

/// Check each object against Mooring's own checks, and write the documents.
fn render(source: Source, mut docs: Vec<Doc>) -> Conversion {
    unique_names(&mut docs);
    let mut invalid = 0;
    let mut text = format!(
        "# Converted by `mooring import --from {}`. Every field that could not be mapped is named\n\
         # in a comment above its object, with why; read them before you apply this.\n",
        match source {
            Source::Metallb => "metallb",
            Source::Openelb => "openelb",
        }
    );
    for d in &mut docs {
        if let Some(o) = &d.object {
            if let Err(why) = check(o) {
                invalid += 1;
                d.note(format!("this object does not pass Mooring's checks: {why}"));
            }
        }
    }
    for d in docs {
        text.push_str("---\n");
        for c in &d.comments {
            for line in c.lines() {
                text.push_str("# ");
                text.push_str(line);
                text.push('\n');
            }
        }
        if let Some(o) = d.object {
            text.push_str(&serde_yaml::to_string(&o).unwrap_or_default());
        }
    }
    Conversion { text, invalid }
}

/// Objects of one kind get distinct names (`-2`, `-3` after the first), said in a comment.
fn unique_names(docs: &mut [Doc]) {
    let mut seen = BTreeSet::new();
    for d in docs.iter_mut() {
        let Some(o) = d.object.as_mut() else { continue };
        let kind = o["kind"].as_str().unwrap_or_default().to_string();
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
        let name = o["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let mut n = 1;
        let mut candidate = name.clone();
        while !seen.insert((kind.clone(), ns.clone(), candidate.clone())) {
            n += 1;
            candidate = format!("{name}-{n}");
        }
        if candidate != name {
            o["metadata"]["name"] = Value::String(candidate.clone());
            d.note(format!("renamed from {name:?} to {candidate:?}: another {kind} has that name"));
        }
    }
}

/// Mooring's checks of an object it reads (the parse layer of the CRDs).
fn check(o: &Value) -> Result<(), String> {
    fn typed<T: serde::de::DeserializeOwned>(o: &Value) -> Result<T, String> {
        serde_path_to_error::deserialize(o.clone()).map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }
    match o["kind"].as_str() {
        Some("Eip") => {
            mooring_crds::PoolSettings::try_from(&typed::<mooring_crds::Eip>(o)?).map(drop).map_err(|e| e.to_string())
        }
        Some("BgpPeer") => mooring_crds::PeerSettings::try_from(&typed::<mooring_crds::BgpPeer>(o)?)
            .map(drop)
            .map_err(|e| e.to_string()),
        Some("BgpConf") => mooring_crds::SpeakerSettings::try_from(&typed::<mooring_crds::BgpConf>(o)?)
            .map(drop)
            .map_err(|e| e.to_string()),
        Some("BgpAdvertisement") => {
            mooring_crds::AdvertisementSettings::try_from(&typed::<mooring_crds::BgpAdvertisement>(o)?)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        Some("Secret") => typed::<k8s_openapi::api::core::v1::Secret>(o).map(drop),
        other => Err(format!("not a kind Mooring reads: {other:?}")),
    }
}

/// A Go duration (`90s`, `1m30s`, `1.5h`, `300ms`) in whole seconds as Mooring writes them
/// (`90s`), and whether it had to be rounded.
pub fn go_duration(s: &str) -> Option<(String, bool)> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(("0s".into(), false));
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        nanos += n * scale;
    }
    let secs = (nanos / 1e9).round();
    Some((format!("{secs}s"), secs * 1e9 != nanos))
}

/// A Kubernetes name from free text (`198.18.0.1` → `198-18-0-1`).
pub fn dns_name(s: &str) -> String {
    let n: String =
        s.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    n.trim_matches('-').to_string()
}

/// Read the files and print the conversion; `Ok(false)` when an object written does not pass
/// Mooring's checks.
pub fn run(args: ImportArgs) -> Result<bool> {
    let mut files = vec![];
    for f in &args.files {
        let text = if f.as_os_str() == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            s
        } else {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        };
        files.push((f.display().to_string(), text));
    }
    let c = convert(args.source, &files)?;
    print!("{}", c.text);
    if c.invalid > 0 {
        eprintln!("{} object(s) written do not pass Mooring's checks; see the comments above them", c.invalid);
    }
    Ok(c.invalid == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let d = |s: &str| go_duration(s);
        assert_eq!(d("90s"), Some(("90s".into(), false)));
        assert_eq!(d("1m30s"), Some(("90s".into(), false)));
        assert_eq!(d("3m0s"), Some(("180s".into(), false)));
        assert_eq!(d("1.5h"), Some(("5400s".into(), false)));
        assert_eq!(d("0"), Some(("0s".into(), false)));
        assert_eq!(d("1500ms"), Some(("2s".into(), true)));
        for bad in ["", "90", "1d", "s", "1..5s"] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    #[test]
    fn lists_are_opened_and_bad_yaml_names_the_file() {
        let list = "apiVersion: v1\nkind: List\nitems:\n- {kind: A}\n- {kind: B}\n---\nkind: C\n";
        let docs = documents(&[("f.yaml".into(), list.into())]).unwrap();
        assert_eq!(docs.iter().map(|d| d.kind().to_string()).collect::<Vec<_>>(), ["A", "B", "C"]);
        assert_eq!(docs[1].origin, "f.yaml item 1");
        assert_eq!(docs[2].origin, "f.yaml document 1");
        let e = documents(&[("bad.yaml".into(), "kind: [unclosed\n".into())]).unwrap_err();
        assert!(format!("{e:#}").starts_with("bad.yaml document 0: not YAML"), "{e:#}");
    }

    #[test]
    fn fields_left_over_are_reported() {
        let v = serde_json::json!({"a": 1, "b": {"c": "x", "d": null}, "e": true});
        let mut f = Fields::new("spec", Some(&v));
        let mut doc = Doc::default();
        assert_eq!(f.number("a"), Some(1));
        let mut b = f.sub("b");
        assert_eq!(b.string("c").as_deref(), Some("x"));
        b.rest("no reason", &mut doc);
        f.rest("not known", &mut doc);
        assert_eq!(doc.comments, ["spec.e = true: not mapped: not known"]);
    }
}
