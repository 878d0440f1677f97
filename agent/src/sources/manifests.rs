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
//!
//! Only what the model reads is kept ([`prune`]): managed fields,
//! annotations Mooring does not read, a Node's images, conditions and node
//! info, an EndpointSlice's targetRefs and addresses, ... are dropped as
//! each document is parsed, and no YAML text or untyped value outlives
//! its parse. A reload ([`Manifests::reload`]) parses again only the files
//! that changed (named by the watcher, or with another size, inode or
//! modification time) and takes the rest as last parsed.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use mooring_crds::{BgpAdvertisement, BgpConf, BgpPeer, Eip};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::model::plan::Objects;
use crate::model::prune as model_prune;

/// One typed object (shared: a reload that does not parse its file again
/// takes it as it was).
#[derive(Debug, Clone)]
pub enum Object {
    BgpConf(Arc<BgpConf>),
    BgpPeer(Arc<BgpPeer>),
    Eip(Arc<Eip>),
    BgpAdvertisement(Arc<BgpAdvertisement>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Node(Arc<Node>),
    Namespace(Arc<Namespace>),
    Secret(Arc<Secret>),
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
    pub objects: BTreeMap<ObjectKey, (Arc<Path>, Object)>,
    pub errors: Vec<ManifestError>,
    /// Files found empty that still give their previous objects, and since when.
    pub empty_since: BTreeMap<PathBuf, Instant>,
    /// Each file's documents as last parsed, with what identified its version.
    parsed: BTreeMap<PathBuf, Parsed>,
    /// The files that gave objects.
    files_with_objects: BTreeSet<PathBuf>,
}

/// Which files may have changed since the previous load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Changed {
    /// Any: every file is parsed again.
    #[default]
    All,
    /// These (canonical paths, or as the watcher named them), and those whose
    /// size, inode or times differ from the last parse.
    Paths(BTreeSet<PathBuf>),
}

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(md: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            len: md.len(),
            dev: md.dev(),
            ino: md.ino(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }
}

/// One document's outcome.
#[derive(Debug, Clone)]
enum Doc {
    /// Document index, key, object.
    Object(usize, ObjectKey, Object),
    /// A problem; `keep`: the object whose last good version stays.
    Error(ManifestError, Option<ObjectKey>),
    /// The YAML itself is broken at this document: the file's previous objects stay.
    Broken(usize, String),
}

/// A file as last parsed.
#[derive(Debug, Clone)]
struct Parsed {
    stamp: Stamp,
    /// Nothing but blanks, comments and separators.
    empty: bool,
    docs: Arc<Vec<Doc>>,
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

fn pruned<T>(mut o: T, prune: impl FnOnce(&mut T)) -> T {
    prune(&mut o);
    o
}

fn parse_object(kind: &str, v: serde_yaml::Value) -> Result<Object, (String, String)> {
    Ok(match kind {
        "BgpConf" => Object::BgpConf(Arc::new(typed(v)?)),
        "BgpPeer" => Object::BgpPeer(Arc::new(typed(v)?)),
        "Eip" => Object::Eip(Arc::new(typed(v)?)),
        "BgpAdvertisement" => Object::BgpAdvertisement(Arc::new(typed(v)?)),
        // Kept as the model reads them (`model::prune`, as the reflector stores keep them).
        "Service" => Object::Service(Arc::new(pruned(typed(v)?, model_prune::service))),
        "EndpointSlice" => Object::EndpointSlice(Arc::new(pruned(typed(v)?, |s: &mut EndpointSlice| {
            model_prune::endpoint_slice(s, None)
        }))),
        "Node" => Object::Node(Arc::new(pruned(typed(v)?, model_prune::node))),
        "Namespace" => Object::Namespace(Arc::new(typed(v)?)),
        "Secret" => Object::Secret(Arc::new(typed(v)?)),
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
    /// The loaded objects, sorted by kind: the plan's input. The Services, EndpointSlices,
    /// Nodes and Namespaces are shared with these manifests, not copied.
    pub fn objects(&self) -> Objects {
        let mut o = Objects::default();
        for (_, obj) in self.objects.values() {
            match obj {
                Object::BgpConf(x) => o.confs.push((**x).clone()),
                Object::BgpPeer(x) => o.peers.push((**x).clone()),
                Object::Eip(x) => o.eips.push((**x).clone()),
                Object::BgpAdvertisement(x) => o.advertisements.push((**x).clone()),
                Object::Service(x) => o.services.push(Arc::clone(x)),
                Object::EndpointSlice(x) => o.endpoint_slices.push(Arc::clone(x)),
                Object::Node(x) => o.nodes.push(Arc::clone(x)),
                Object::Namespace(x) => o.namespaces.push(Arc::clone(x)),
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
        Self::reload(path, previous, &Changed::All, now)
    }

    /// [`Manifests::load_at`], parsing again only the files `changed` may
    /// name (the others are taken as `previous` parsed them). The result
    /// is the one a full load would give.
    pub fn reload(path: &Path, previous: Option<&Manifests>, changed: &Changed, now: Instant) -> Manifests {
        let mut m = Manifests::default();
        let mut files = vec![];
        let mut problems = vec![];
        files_under(path, &mut files, &mut problems);
        for (file, message) in problems {
            m.errors.push(ManifestError { file, document: 0, kind: None, name: None, field: String::new(), message });
        }
        let mut keep: BTreeSet<ObjectKey> = BTreeSet::new();
        for file in files {
            let md = std::fs::metadata(&file);
            if let Ok(md) = &md {
                if md.len() > MAX_FILE_BYTES {
                    let msg = format!("{} bytes, more than the {MAX_FILE_BYTES} a manifest file may have", md.len());
                    m.file_failed(&file, 0, msg, previous);
                    continue;
                }
            }
            let stamp = md.as_ref().ok().map(Stamp::of);
            let cached = previous
                .and_then(|p| p.parsed.get(&file))
                .filter(|c| Some(c.stamp) == stamp && !is_named(changed, &file))
                .cloned();
            let parsed = match cached {
                Some(c) => c,
                None => {
                    let text = match std::fs::read_to_string(&file) {
                        Ok(t) => t,
                        Err(e) => {
                            m.file_failed(&file, 0, format!("cannot read: {e}"), previous);
                            continue;
                        }
                    };
                    let empty = is_empty(&text);
                    let docs = Arc::new(parse_file(&file, &text));
                    match stamp {
                        Some(stamp) => Parsed { stamp, empty, docs },
                        // Read but not stat'ed: use it once, do not keep it.
                        None => Parsed {
                            stamp: Stamp { len: u64::MAX, dev: 0, ino: 0, mtime: (0, 0), ctime: (0, 0) },
                            empty,
                            docs,
                        },
                    }
                }
            };
            if stamp.is_some() {
                m.parsed.insert(file.clone(), parsed.clone());
            }
            let had_objects = previous.is_some_and(|p| p.files_with_objects.contains(&file));
            if had_objects && parsed.empty {
                let since = previous.and_then(|p| p.empty_since.get(&file).copied()).unwrap_or(now);
                if now.duration_since(since) < EMPTY_GRACE {
                    // Perhaps a rewrite in place, caught between truncate and write.
                    m.empty_since.insert(file.clone(), since);
                    m.restore_file(&file, previous);
                    continue;
                }
            }
            let shared: Arc<Path> = Arc::from(file.as_path());
            for doc in parsed.docs.iter() {
                match doc {
                    Doc::Object(index, key, o) => {
                        if let Some((other, _)) = m.objects.get(key) {
                            let msg = format!("duplicate of an object in {}; this one wins", other.display());
                            m.errors.push(ManifestError {
                                file: file.clone(),
                                document: *index,
                                kind: Some(key.0.clone()),
                                name: Some(key.2.clone()),
                                field: String::new(),
                                message: msg,
                            });
                        }
                        m.objects.insert(key.clone(), (shared.clone(), o.clone()));
                    }
                    Doc::Error(e, k) => {
                        m.errors.push(e.clone());
                        if let Some(k) = k {
                            keep.insert(k.clone());
                        }
                    }
                    Doc::Broken(i, message) => {
                        m.file_failed(&file, *i, message.clone(), previous);
                        break;
                    }
                }
            }
        }
        if let Some(prev) = previous {
            for k in keep {
                if let Some(o) = prev.objects.get(&k) {
                    m.objects.entry(k).or_insert_with(|| o.clone());
                }
            }
        }
        m.files_with_objects = m.objects.values().map(|(f, _)| f.to_path_buf()).collect();
        m
    }

    /// When the objects of a file that is empty now are to be removed (load again then).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.empty_since.values().min().map(|t| *t + EMPTY_GRACE)
    }

    /// The previous objects of `file`, back in force.
    fn restore_file(&mut self, file: &Path, previous: Option<&Manifests>) {
        let Some(prev) = previous.filter(|p| p.files_with_objects.contains(file)) else { return };
        for (k, v) in prev.objects.iter().filter(|(_, (f, _))| &**f == file) {
            self.objects.insert(k.clone(), v.clone());
        }
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
        self.objects.retain(|_, (f, _)| &**f != file);
        self.restore_file(file, previous);
    }
}

/// Whether `changed` names `file` (as the walk found it, or its canonical path).
fn is_named(changed: &Changed, file: &Path) -> bool {
    match changed {
        Changed::All => true,
        Changed::Paths(p) if p.is_empty() => false,
        Changed::Paths(p) => p.contains(file) || std::fs::canonicalize(file).map_or(true, |c| p.contains(&c)),
    }
}

/// Every document of one file.
fn parse_file(file: &Path, text: &str) -> Vec<Doc> {
    let mut out = vec![];
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = match serde_yaml::Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                out.push(Doc::Broken(i, format!("invalid YAML: {e}")));
                break;
            }
        };
        if value.is_null() {
            continue;
        }
        out.push(document(file, i, value));
    }
    out
}

/// The head of a document: only its `apiVersion`, `kind` and `metadata.name/namespace`
/// are copied for it.
fn head_of(value: &serde_yaml::Value) -> Result<Head, serde_yaml::Error> {
    let mut h = serde_yaml::Mapping::new();
    if let serde_yaml::Value::Mapping(m) = value {
        for k in ["apiVersion", "kind"] {
            if let Some(v) = m.get(k) {
                h.insert(k.into(), v.clone());
            }
        }
        if let Some(md) = m.get("metadata") {
            let md = match md {
                serde_yaml::Value::Mapping(md) => {
                    let mut c = serde_yaml::Mapping::new();
                    for k in ["name", "namespace"] {
                        if let Some(v) = md.get(k) {
                            c.insert(k.into(), v.clone());
                        }
                    }
                    serde_yaml::Value::Mapping(c)
                }
                other => other.clone(),
            };
            h.insert("metadata".into(), md);
        }
        serde_yaml::from_value(serde_yaml::Value::Mapping(h))
    } else {
        serde_yaml::from_value(value.clone())
    }
}

fn document(file: &Path, index: usize, mut value: serde_yaml::Value) -> Doc {
    let err = |kind: Option<String>, name: Option<String>, field: String, message: String| ManifestError {
        file: file.to_path_buf(),
        document: index,
        kind,
        name,
        field,
        message,
    };
    let head: Head = match head_of(&value) {
        Ok(h) => h,
        Err(e) => return Doc::Error(err(None, None, String::new(), format!("not a Kubernetes object: {e}")), None),
    };
    let name = head.metadata.as_ref().and_then(|m| m.name.clone());
    let namespace = head.metadata.as_ref().and_then(|m| m.namespace.clone()).unwrap_or_default();
    let Some(kind) = head.kind.clone() else {
        return Doc::Error(err(None, name, "kind".into(), "missing".into()), None);
    };
    let Some((_, api)) = KINDS.iter().find(|(k, _)| *k == kind) else {
        return Doc::Error(err(Some(kind), name, "kind".into(), "not a kind Mooring reads; ignored".into()), None);
    };
    if head.api_version.as_deref() != Some(api) {
        let got = head.api_version.clone().unwrap_or_default();
        // The object is known: its last good version stays.
        let keep = name.clone().filter(|n| !n.is_empty()).map(|n| (kind.clone(), namespace.clone(), n));
        return Doc::Error(err(Some(kind), name, "apiVersion".into(), format!("{got:?}, want {api:?}")), keep);
    }
    let Some(n) = name.clone().filter(|n| !n.is_empty()) else {
        return Doc::Error(err(Some(kind), None, "metadata.name".into(), "missing".into()), None);
    };
    let key = (kind.clone(), namespace, n);
    prune::value(&kind, &mut value);
    match parse_object(&kind, value) {
        Ok(o) => Doc::Object(index, key, o),
        Err((field, message)) => Doc::Error(err(Some(kind), name, field, message), Some(key)),
    }
}

/// Optional fields the model never reads, dropped from a document before its
/// typed parse, so they cost nothing to parse and their errors do not matter.
/// What is kept of the parsed object is `model::prune`'s (applied in
/// `parse_object`), as for the reflector stores.
pub mod prune {
    use serde_yaml::Value;

    use crate::model::annotations::read_by_model as read_annotation;

    fn remove(v: &mut Value, keys: &[&str]) {
        if let Value::Mapping(m) = v {
            for k in keys {
                m.remove(*k);
            }
        }
    }

    /// Drop, from a document of `kind`, the optional fields the model never reads.
    pub fn value(kind: &str, v: &mut Value) {
        let Value::Mapping(m) = v else { return };
        if let Some(md) = m.get_mut("metadata") {
            remove(md, &["managedFields", "ownerReferences", "finalizers", "generateName", "selfLink"]);
            if matches!(kind, "Service") {
                if let Some(Value::Mapping(a)) = md.get_mut("annotations") {
                    a.retain(|k, _| k.as_str().is_some_and(read_annotation));
                }
            }
            if matches!(kind, "Node" | "EndpointSlice") {
                remove(md, &["annotations"]);
            }
        }
        match kind {
            "Node" => {
                if let Some(st) = m.get_mut("status") {
                    remove(
                        st,
                        &[
                            "images",
                            "conditions",
                            "nodeInfo",
                            "allocatable",
                            "capacity",
                            "daemonEndpoints",
                            "volumesAttached",
                            "volumesInUse",
                            "config",
                            "features",
                            "runtimeHandlers",
                        ],
                    );
                }
            }
            "EndpointSlice" => {
                m.remove("ports");
                if let Some(Value::Sequence(eps)) = m.get_mut("endpoints") {
                    for e in eps {
                        remove(e, &["targetRef", "zone", "hints", "deprecatedTopology", "hostname"]);
                    }
                }
            }
            _ => {}
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

    /// The plan's input shares the loaded Nodes (and Services, EndpointSlices, Namespaces)
    /// with the manifests, and so with a reload that found their file unchanged: a change
    /// elsewhere copies none of them.
    #[test]
    fn the_objects_are_shared_with_the_manifests_and_across_reloads() {
        let d = dir("shared");
        std::fs::write(d.join("a.yaml"), PEER).unwrap();
        std::fs::write(d.join("b.yaml"), NODE).unwrap();
        let m = Manifests::load(&d, None);
        let (first, second) = (m.objects(), m.objects());
        assert_eq!(first.nodes.len(), 1);
        assert!(Arc::ptr_eq(&first.nodes[0], &second.nodes[0]));
        std::fs::write(d.join("a.yaml"), PEER.replace("64512", "64513")).unwrap();
        let next = Manifests::reload(&d, Some(&m), &Changed::Paths([d.join("a.yaml")].into()), Instant::now());
        assert_eq!(peer_as(&next), Some(64513));
        assert!(Arc::ptr_eq(&next.objects().nodes[0], &first.nodes[0]), "b.yaml was not read again");
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

    /// What a load gave, in comparable form.
    fn summary(m: &Manifests) -> (Vec<String>, Vec<ManifestError>, Option<Instant>) {
        let objects = m.objects.iter().map(|(k, (f, o))| format!("{k:?} {} {o:?}", f.display())).collect();
        (objects, m.errors.clone(), m.next_deadline())
    }

    const DOCS: [&str; 8] = [
        PEER,
        NODE,
        "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: edge}\nspec: {peerAddress: 198.18.0.1, peerAs: lots}\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop, annotations: {mooring.io/eip: a, kubectl.kubernetes.io/last-applied-configuration: x}, managedFields: [{manager: kubectl}]}\nspec: {type: LoadBalancer}\n",
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web, app: web}}\naddressType: IPv4\nendpoints: [{addresses: [10.0.0.1], nodeName: n1, targetRef: {kind: Pod, name: p}}]\n",
        "apiVersion: v2\nkind: Node\nmetadata: {name: n1}\n",
        "kind: [unclosed\n",
        "# nothing\n",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Parsing again only the file that changed (as the watcher names it)
        /// gives what parsing every file gives, through any sequence of writes,
        /// deletions and time passing.
        #[test]
        fn a_reload_of_the_changed_file_is_a_full_load(
            ops in proptest::collection::vec((0usize..3, proptest::collection::vec(0usize..DOCS.len(), 0..4), 0u8..6), 1..12)
        ) {
            let d = dir("incremental");
            let t0 = Instant::now();
            let mut full = Manifests::default();
            let mut inc = Manifests::default();
            for (step, (file, docs, op)) in ops.into_iter().enumerate() {
                let path = d.join(format!("f{file}.yaml"));
                let now = t0 + Duration::from_millis(400 * step as u64);
                match op {
                    0 => { let _ = std::fs::remove_file(&path); }
                    1 => {}
                    _ => {
                        let text: Vec<&str> = docs.iter().map(|&i| DOCS[i]).collect();
                        std::fs::write(&path, text.join("---\n")).unwrap();
                    }
                }
                full = Manifests::load_at(&d, Some(&full), now);
                let changed = Changed::Paths(BTreeSet::from([path.clone()]));
                inc = Manifests::reload(&d, Some(&inc), &changed, now);
                proptest::prop_assert_eq!(summary(&inc), summary(&full), "step {}", step);
            }
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn unchanged_files_are_not_parsed_again_and_pruned_fields_are_gone() {
        let d = dir("cache");
        std::fs::write(d.join("a.yaml"), DOCS[3]).unwrap();
        std::fs::write(d.join("b.yaml"), DOCS[4]).unwrap();
        let m = Manifests::load(&d, None);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        let svc = |m: &Manifests| {
            m.objects.values().find_map(|(_, o)| match o {
                Object::Service(s) => Some(s.clone()),
                _ => None,
            })
        };
        let s = svc(&m).unwrap();
        assert_eq!(s.metadata.managed_fields, None);
        let kept: Vec<&String> = s.metadata.annotations.as_ref().unwrap().keys().collect();
        assert_eq!(kept, ["mooring.io/eip"], "annotations the model does not read are dropped");
        let slice = m.objects.values().find_map(|(_, o)| match o {
            Object::EndpointSlice(s) => Some(s.clone()),
            _ => None,
        });
        let slice = slice.unwrap();
        assert_eq!(slice.endpoints[0].node_name.as_deref(), Some("n1"));
        assert!(slice.endpoints[0].target_ref.is_none() && slice.endpoints[0].addresses.is_empty());
        assert_eq!(slice.metadata.labels.as_ref().unwrap().len(), 1, "only the Service's name label");
        // b.yaml changes; a.yaml is taken as parsed (the same object, not a new parse).
        std::fs::write(d.join("b.yaml"), DOCS[4].replace("n1", "n2")).unwrap();
        let changed = Changed::Paths(BTreeSet::from([d.join("b.yaml")]));
        let m2 = Manifests::reload(&d, Some(&m), &changed, Instant::now());
        assert!(Arc::ptr_eq(&s, &svc(&m2).unwrap()));
        // A full load parses it again.
        let m3 = Manifests::load(&d, Some(&m2));
        assert!(!Arc::ptr_eq(&s, &svc(&m3).unwrap()));
        std::fs::remove_dir_all(d).unwrap();
    }
}
