//! Kubernetes-style manifests from files: the standalone source.
//!
//! Every YAML document under a path (a file, or a directory read
//! recursively for `*.yaml` / `*.yml`) is parsed into a typed object. A
//! document that does not parse is reported with its file, document
//! index, kind/name and field, and the object it described keeps its last
//! good version; a file that is not valid YAML at all keeps every object
//! it last gave, and so does a file larger than [`MAX_FILE_BYTES`].
//!
//! Torn writes: a file rewritten in place (truncated, then written) is
//! empty for a moment. A file that gave objects and is now empty keeps them
//! until it has stayed empty for [`EMPTY_GRACE`]; only then are they
//! removed. Deleting the file removes its objects at once. (Writers that
//! rename a complete file into place never show either state.)
//!
//! Directories are walked at most [`MAX_DEPTH`] levels deep, and a
//! directory reached twice (a symlink loop) is walked once.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use mooring_crds::{BgpAdvertisement, BgpConf, BgpPeer, Eip};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::model::plan::Objects;

/// One typed object.
#[derive(Debug, Clone)]
pub enum Object {
    BgpConf(Box<BgpConf>),
    BgpPeer(Box<BgpPeer>),
    Eip(Box<Eip>),
    BgpAdvertisement(Box<BgpAdvertisement>),
    Service(Box<Service>),
    EndpointSlice(Box<EndpointSlice>),
    Node(Box<Node>),
    Namespace(Box<Namespace>),
    Secret(Box<Secret>),
}

/// kind, namespace, name.
pub type ObjectKey = (String, String, String);

/// A document that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub file: PathBuf,
    /// Index of the document in its file, from 0.
    pub document: usize,
    pub kind: Option<String>,
    pub name: Option<String>,
    /// The field at fault (`spec.peerAs`), or empty.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} document {}", self.file.display(), self.document)?;
        if let Some(k) = &self.kind {
            write!(f, " ({k}")?;
            if let Some(n) = &self.name {
                write!(f, " {n}")?;
            }
            f.write_str(")")?;
        }
        if !self.field.is_empty() {
            write!(f, " field {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Largest manifest file read; a larger one keeps its last good objects.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// How long a file must stay empty before its objects are removed.
pub const EMPTY_GRACE: Duration = Duration::from_secs(1);
/// Deepest directory level read under the config path.
pub const MAX_DEPTH: usize = 16;

/// The objects loaded, where each came from, and what went wrong.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    pub objects: BTreeMap<ObjectKey, (PathBuf, Object)>,
    pub errors: Vec<ManifestError>,
    /// Files found empty that still give their previous objects, and since when.
    pub empty_since: BTreeMap<PathBuf, Instant>,
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<HeadMeta>,
}

#[derive(Deserialize)]
struct HeadMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

/// The kinds this source understands, with the API version each needs.
const KINDS: [(&str, &str); 9] = [
    ("BgpConf", "mooring.io/v1alpha1"),
    ("BgpAdvertisement", "mooring.io/v1alpha1"),
    ("BgpPeer", "mooring.io/v1alpha1"),
    ("Eip", "mooring.io/v1alpha1"),
    ("Service", "v1"),
    ("EndpointSlice", "discovery.k8s.io/v1"),
    ("Node", "v1"),
    ("Namespace", "v1"),
    ("Secret", "v1"),
];

fn typed<T: DeserializeOwned>(v: serde_yaml::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(v).map_err(|e| (e.path().to_string(), e.inner().to_string()))
}

fn parse_object(kind: &str, v: serde_yaml::Value) -> Result<Object, (String, String)> {
    Ok(match kind {
        "BgpConf" => Object::BgpConf(Box::new(typed(v)?)),
        "BgpPeer" => Object::BgpPeer(Box::new(typed(v)?)),
        "Eip" => Object::Eip(Box::new(typed(v)?)),
        "BgpAdvertisement" => Object::BgpAdvertisement(Box::new(typed(v)?)),
        "Service" => Object::Service(Box::new(typed(v)?)),
        "EndpointSlice" => Object::EndpointSlice(Box::new(typed(v)?)),
        "Node" => Object::Node(Box::new(typed(v)?)),
        "Namespace" => Object::Namespace(Box::new(typed(v)?)),
        "Secret" => Object::Secret(Box::new(typed(v)?)),
        _ => unreachable!("kind checked against KINDS"),
    })
}

/// Files to read under `path`, sorted; problems on the way (a symlink
/// loop, too deep, an unreadable directory) are reported, once each.
fn files_under(path: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<(PathBuf, String)>) {
    let mut seen = BTreeSet::new();
    walk(path, 0, &mut seen, out, problems);
}

fn walk(
    path: &Path,
    depth: usize,
    seen: &mut BTreeSet<PathBuf>,
    out: &mut Vec<PathBuf>,
    problems: &mut Vec<(PathBuf, String)>,
) {
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return;
    }
    if depth > MAX_DEPTH {
        problems.push((path.to_path_buf(), format!("deeper than {MAX_DEPTH} directories: not read")));
        return;
    }
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if !seen.insert(real.clone()) {
        problems.push((path.to_path_buf(), format!("{} was read already (a symlink loop?): skipped", real.display())));
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            problems.push((path.to_path_buf(), format!("cannot read: {e}")));
            return;
        }
    };
    entries.sort();
    for e in entries {
        let hidden = e.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if e.is_dir() {
            walk(&e, depth + 1, seen, out, problems);
        } else if e.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(e);
        }
    }
}

impl Manifests {
    /// The loaded objects, sorted by kind: the plan's input.
    pub fn objects(&self) -> Objects {
        let mut o = Objects::default();
        for (_, obj) in self.objects.values() {
            match obj {
                Object::BgpConf(x) => o.confs.push((**x).clone()),
                Object::BgpPeer(x) => o.peers.push((**x).clone()),
                Object::Eip(x) => o.eips.push((**x).clone()),
                Object::BgpAdvertisement(x) => o.advertisements.push((**x).clone()),
                Object::Service(x) => o.services.push((**x).clone()),
                Object::EndpointSlice(x) => o.endpoint_slices.push((**x).clone()),
                Object::Node(x) => o.nodes.push((**x).clone()),
                Object::Namespace(x) => o.namespaces.push((**x).clone()),
                Object::Secret(x) => o.secrets.push((**x).clone()),
            }
        }
        o
    }

    /// Load everything under `path`; `previous` supplies the last good
    /// version of objects whose documents are broken now.
    pub fn load(path: &Path, previous: Option<&Manifests>) -> Manifests {
        Self::load_at(path, previous, Instant::now())
    }

    /// [`Manifests::load`] at `now` (which the empty-file grace is measured against).
    pub fn load_at(path: &Path, previous: Option<&Manifests>, now: Instant) -> Manifests {
        let mut m = Manifests::default();
        let mut files = vec![];
        let mut problems = vec![];
        files_under(path, &mut files, &mut problems);
        for (file, message) in problems {
            m.errors.push(ManifestError { file, document: 0, kind: None, name: None, field: String::new(), message });
        }
        let mut keep: BTreeSet<ObjectKey> = BTreeSet::new();
        for file in files {
            match std::fs::metadata(&file) {
                Ok(md) if md.len() > MAX_FILE_BYTES => {
                    let msg = format!("{} bytes, more than the {MAX_FILE_BYTES} a manifest file may have", md.len());
                    m.file_failed(&file, 0, msg, previous);
                    continue;
                }
                _ => {}
            }
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    m.file_failed(&file, 0, format!("cannot read: {e}"), previous);
                    continue;
                }
            };
            let had_objects = previous.is_some_and(|p| p.objects.values().any(|(f, _)| *f == file));
            if had_objects && is_empty(&text) {
                let since = previous.and_then(|p| p.empty_since.get(&file).copied()).unwrap_or(now);
                if now.duration_since(since) < EMPTY_GRACE {
                    // Perhaps a rewrite in place, caught between truncate and write.
                    m.empty_since.insert(file.clone(), since);
                    for (k, v) in previous.into_iter().flat_map(|p| p.objects.iter()).filter(|(_, (f, _))| *f == file) {
                        m.objects.insert(k.clone(), v.clone());
                    }
                    continue;
                }
            }
            for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
                let value = match serde_yaml::Value::deserialize(doc) {
                    Ok(v) => v,
                    Err(e) => {
                        // The YAML itself is broken: the file's previous objects stay.
                        m.file_failed(&file, i, format!("invalid YAML: {e}"), previous);
                        break;
                    }
                };
                if value.is_null() {
                    continue;
                }
                m.document(&file, i, value, previous, &mut keep);
            }
        }
        if let Some(prev) = previous {
            for k in keep {
                if let Some(o) = prev.objects.get(&k) {
                    m.objects.entry(k).or_insert_with(|| o.clone());
                }
            }
        }
        m
    }

    /// When the objects of a file that is empty now are to be removed (load again then).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.empty_since.values().min().map(|t| *t + EMPTY_GRACE)
    }

    fn file_failed(&mut self, file: &Path, document: usize, message: String, previous: Option<&Manifests>) {
        self.errors.push(ManifestError {
            file: file.to_path_buf(),
            document,
            kind: None,
            name: None,
            field: String::new(),
            message,
        });
        // Whatever this file parsed before this point is dropped too: keep the previous version whole.
        self.objects.retain(|_, (f, _)| f != file);
        if let Some(prev) = previous {
            for (k, v) in prev.objects.iter().filter(|(_, (f, _))| f == file) {
                self.objects.insert(k.clone(), v.clone());
            }
        }
    }

    fn document(
        &mut self,
        file: &Path,
        index: usize,
        value: serde_yaml::Value,
        _previous: Option<&Manifests>,
        keep: &mut BTreeSet<ObjectKey>,
    ) {
        let err = |kind: Option<String>, name: Option<String>, field: String, message: String| ManifestError {
            file: file.to_path_buf(),
            document: index,
            kind,
            name,
            field,
            message,
        };
        let head: Head = match serde_yaml::from_value(value.clone()) {
            Ok(h) => h,
            Err(e) => {
                self.errors.push(err(None, None, String::new(), format!("not a Kubernetes object: {e}")));
                return;
            }
        };
        let name = head.metadata.as_ref().and_then(|m| m.name.clone());
        let namespace = head.metadata.as_ref().and_then(|m| m.namespace.clone()).unwrap_or_default();
        let Some(kind) = head.kind.clone() else {
            self.errors.push(err(None, name, "kind".into(), "missing".into()));
            return;
        };
        let Some((_, api)) = KINDS.iter().find(|(k, _)| *k == kind) else {
            self.errors.push(err(Some(kind), name, "kind".into(), "not a kind Mooring reads; ignored".into()));
            return;
        };
        if head.api_version.as_deref() != Some(api) {
            let got = head.api_version.clone().unwrap_or_default();
            if let Some(n) = name.clone().filter(|n| !n.is_empty()) {
                // The object is known: its last good version stays.
                keep.insert((kind.clone(), namespace.clone(), n));
            }
            self.errors.push(err(Some(kind), name, "apiVersion".into(), format!("{got:?}, want {api:?}")));
            return;
        }
        let Some(n) = name.clone().filter(|n| !n.is_empty()) else {
            self.errors.push(err(Some(kind), None, "metadata.name".into(), "missing".into()));
            return;
        };
        let key = (kind.clone(), namespace, n);
        match parse_object(&kind, value) {
            Ok(o) => {
                if let Some((other, _)) = self.objects.get(&key) {
                    let msg = format!("duplicate of an object in {}; this one wins", other.display());
                    self.errors.push(err(Some(kind), name, String::new(), msg));
                }
                self.objects.insert(key, (file.to_path_buf(), o));
            }
            Err((field, message)) => {
                self.errors.push(err(Some(kind), name, field, message));
                keep.insert(key);
            }
        }
    }
}

/// A file with no documents at all (nothing, blanks, comments, separators).
fn is_empty(text: &str) -> bool {
    text.lines().map(str::trim).all(|l| l.is_empty() || l.starts_with('#') || l == "---" || l == "...")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mooring-manifests-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const PEER: &str = "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: edge}\nspec: {peerAddress: 198.18.0.1, peerAs: 64512}\n";
    const NODE: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n";

    fn peer_as(m: &Manifests) -> Option<u32> {
        m.objects.values().find_map(|(_, o)| match o {
            Object::BgpPeer(p) => Some(p.spec.peer_as),
            _ => None,
        })
    }

    #[test]
    fn loads_every_document_of_every_file() {
        let d = dir("load");
        std::fs::write(d.join("a.yaml"), format!("{PEER}---\n{NODE}")).unwrap();
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/b.yml"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n").unwrap();
        std::fs::write(d.join("notes.txt"), "not yaml").unwrap();
        let m = Manifests::load(&d, None);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(m.objects.len(), 3);
        assert_eq!(peer_as(&m), Some(64512));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_broken_document_names_file_index_kind_name_and_field_and_keeps_the_last_good() {
        let d = dir("broken");
        std::fs::write(d.join("a.yaml"), format!("{NODE}---\n{PEER}")).unwrap();
        let good = Manifests::load(&d, None);
        std::fs::write(d.join("a.yaml"), format!("{NODE}---\n{}", PEER.replace("64512", "lots"))).unwrap();
        let m = Manifests::load(&d, Some(&good));
        assert_eq!(m.errors.len(), 1);
        let e = &m.errors[0];
        assert_eq!(
            (e.document, e.kind.as_deref(), e.name.as_deref(), e.field.as_str()),
            (1, Some("BgpPeer"), Some("edge"), "spec.peerAs")
        );
        assert!(e.to_string().contains("a.yaml document 1 (BgpPeer edge) field spec.peerAs"), "{e}");
        assert_eq!(peer_as(&m), Some(64512), "the last good version stays in force");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn invalid_yaml_keeps_the_files_previous_objects() {
        let d = dir("yaml");
        std::fs::write(d.join("a.yaml"), PEER).unwrap();
        let good = Manifests::load(&d, None);
        std::fs::write(d.join("a.yaml"), "kind: [unclosed\n").unwrap();
        let m = Manifests::load(&d, Some(&good));
        assert!(m.errors[0].message.contains("invalid YAML"), "{:?}", m.errors);
        assert_eq!(peer_as(&m), Some(64512));
        // Without a previous good version there is nothing to keep.
        assert!(Manifests::load(&d, None).objects.is_empty());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_empty_file_keeps_its_objects_for_the_grace_time_a_deleted_one_does_not() {
        let d = dir("empty");
        std::fs::write(d.join("a.yaml"), PEER).unwrap();
        let t0 = Instant::now();
        let good = Manifests::load_at(&d, None, t0);
        // Truncated (a rewrite in place): the peer stays...
        std::fs::write(d.join("a.yaml"), "").unwrap();
        let m = Manifests::load_at(&d, Some(&good), t0 + Duration::from_millis(10));
        assert_eq!(peer_as(&m), Some(64512));
        assert_eq!(m.next_deadline(), Some(t0 + Duration::from_millis(10) + EMPTY_GRACE));
        let m = Manifests::load_at(&d, Some(&m), t0 + Duration::from_millis(500));
        assert_eq!(peer_as(&m), Some(64512), "still within the grace time");
        // ...and the write that follows replaces it.
        std::fs::write(d.join("a.yaml"), PEER.replace("64512", "64600")).unwrap();
        let w = Manifests::load_at(&d, Some(&m), t0 + Duration::from_millis(600));
        assert_eq!((peer_as(&w), w.next_deadline()), (Some(64600), None));
        // Left empty past the grace time: gone.
        std::fs::write(d.join("a.yaml"), "# nothing here\n---\n").unwrap();
        let m = Manifests::load_at(&d, Some(&w), t0 + Duration::from_secs(2));
        let m = Manifests::load_at(&d, Some(&m), t0 + Duration::from_secs(2) + EMPTY_GRACE);
        assert_eq!(peer_as(&m), None);
        // Deleted: gone at once.
        std::fs::write(d.join("a.yaml"), PEER).unwrap();
        let good = Manifests::load_at(&d, None, t0);
        std::fs::remove_file(d.join("a.yaml")).unwrap();
        assert_eq!(peer_as(&Manifests::load_at(&d, Some(&good), t0)), None);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_oversized_file_keeps_its_last_good_objects() {
        let d = dir("big");
        std::fs::write(d.join("a.yaml"), PEER).unwrap();
        let good = Manifests::load(&d, None);
        let mut big = PEER.replace("64512", "64600");
        big.push_str(&format!("# {}\n", "x".repeat(MAX_FILE_BYTES as usize)));
        std::fs::write(d.join("a.yaml"), big).unwrap();
        let m = Manifests::load(&d, Some(&good));
        assert_eq!(peer_as(&m), Some(64512));
        assert!(m.errors[0].message.contains("more than"), "{:?}", m.errors);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_symlink_loop_is_walked_once_and_reported_once() {
        let d = dir("loop");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a.yaml"), PEER).unwrap();
        std::os::unix::fs::symlink(&d, d.join("sub/back")).unwrap();
        let m = Manifests::load(&d, None);
        assert_eq!(peer_as(&m), Some(64512));
        assert_eq!(m.errors.len(), 1, "{:?}", m.errors);
        assert!(m.errors[0].message.contains("symlink loop"), "{:?}", m.errors);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_wrong_api_version_keeps_the_last_good_object() {
        let d = dir("version");
        std::fs::write(d.join("a.yaml"), PEER).unwrap();
        let good = Manifests::load(&d, None);
        std::fs::write(d.join("a.yaml"), PEER.replace("mooring.io/v1alpha1", "mooring.io/v2")).unwrap();
        let m = Manifests::load(&d, Some(&good));
        assert_eq!(m.errors[0].field, "apiVersion");
        assert_eq!(peer_as(&m), Some(64512));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn unknown_kinds_wrong_versions_and_missing_names_are_reported() {
        let d = dir("kinds");
        std::fs::write(
            d.join("a.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n---\napiVersion: v2\nkind: Node\nmetadata: {name: y}\n---\napiVersion: v1\nkind: Node\nmetadata: {}\n---\n42\n",
        )
        .unwrap();
        let m = Manifests::load(&d, None);
        let fields: Vec<&str> = m.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["kind", "apiVersion", "metadata.name", ""]);
        assert!(m.objects.is_empty());
        std::fs::remove_dir_all(d).unwrap();
    }
}
