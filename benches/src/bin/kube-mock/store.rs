//! The mock API server's state: objects per resource as JSON bytes, one
//! resourceVersion counter for all, an event log per resource (what a
//! watch from an older resourceVersion replays) and a broadcast of new
//! events, and the log of every write the clients made.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// An object's place: the API prefix (`/api/v1`, `/apis/<group>/<version>`),
/// the resource, the namespace and the name, and a subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub prefix: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl Target {
    pub fn parse(path: &str) -> Option<Target> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (prefix, rest) = match segs.first() {
            Some(&"api") if segs.len() >= 2 => (format!("/api/{}", segs[1]), &segs[2..]),
            Some(&"apis") if segs.len() >= 3 => (format!("/apis/{}/{}", segs[1], segs[2]), &segs[3..]),
            _ => return None,
        };
        let s = |i: usize| rest.get(i).map(|s| s.to_string());
        let t = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
            Target { prefix, resource: rest[2].into(), namespace: s(1), name: s(3), sub: s(4) }
        } else {
            Target { prefix, resource: rest.first()?.to_string(), namespace: None, name: s(1), sub: s(2) }
        };
        Some(t)
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.prefix, self.resource)
    }

    /// `apiVersion` of the objects.
    pub fn api_version(&self) -> String {
        self.prefix.trim_start_matches("/api/").trim_start_matches("/apis/").to_string()
    }
}

/// The kind of a resource's objects.
pub fn kind_of(resource: &str) -> String {
    match resource {
        "services" => "Service",
        "endpointslices" => "EndpointSlice",
        "nodes" => "Node",
        "namespaces" => "Namespace",
        "leases" => "Lease",
        "events" => "Event",
        "secrets" => "Secret",
        "bgpconfs" => "BgpConf",
        "bgppeers" => "BgpPeer",
        "eips" => "Eip",
        "bgpadvertisements" => "BgpAdvertisement",
        other => other,
    }
    .to_string()
}

/// One watch event: its resourceVersion, the object's namespace, the line.
#[derive(Debug)]
pub struct Ev {
    pub rv: u64,
    pub namespace: Option<String>,
    pub kind: &'static str,
    pub object: Bytes,
}

impl Ev {
    pub fn line(&self) -> Bytes {
        let mut v = Vec::with_capacity(self.object.len() + 32);
        v.extend_from_slice(b"{\"type\":\"");
        v.extend_from_slice(self.kind.as_bytes());
        v.extend_from_slice(b"\",\"object\":");
        v.extend_from_slice(&self.object);
        v.extend_from_slice(b"}\n");
        v.into()
    }
}

pub struct Resource {
    /// (namespace or "", name) → the object's JSON.
    pub objects: BTreeMap<(String, String), Bytes>,
    pub log: Vec<Arc<Ev>>,
    pub tx: broadcast::Sender<Arc<Ev>>,
}

impl Resource {
    fn new() -> Resource {
        Resource { objects: BTreeMap::new(), log: vec![], tx: broadcast::channel(1 << 16).0 }
    }
}

#[derive(Default)]
pub struct Inner {
    pub rv: u64,
    pub resources: HashMap<String, Resource>,
    /// Every write a client made: `METHOD path`.
    pub writes: Vec<String>,
    pub lists: u64,
    pub watches: u64,
    pub gets: u64,
}

/// A failed request: its HTTP status and reason.
#[derive(Debug)]
pub struct Failure(pub u16, pub &'static str, pub String);

impl Failure {
    pub fn body(&self) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.2, "reason": self.1, "code": self.0})
    }
}

#[derive(Clone, Default)]
pub struct Store(pub Arc<Mutex<Inner>>);

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn ns_key(t: &Target) -> String {
    t.namespace.clone().unwrap_or_default()
}

impl Store {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add an object at start (no event).
    pub fn seed(&self, prefix: &str, resource: &str, mut obj: Value) {
        let mut g = self.lock();
        g.rv += 1;
        let rv = g.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let r = g.resources.entry(format!("{prefix}/{resource}")).or_insert_with(Resource::new);
        r.objects.insert((ns, name), serde_json::to_vec(&obj).expect("JSON").into());
    }

    /// Store `obj` (its resourceVersion set to the next one) and tell the watchers.
    fn put(g: &mut Inner, key: &str, ns: String, name: String, mut obj: Value, kind: &'static str) -> Bytes {
        g.rv += 1;
        let rv = g.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let bytes: Bytes = serde_json::to_vec(&obj).expect("JSON").into();
        let r = g.resources.entry(key.to_string()).or_insert_with(Resource::new);
        if key.ends_with("/events") {
            // Events are counted, not kept.
            return bytes;
        }
        r.objects.insert((ns.clone(), name), bytes.clone());
        let ev = Arc::new(Ev { rv, namespace: (!ns.is_empty()).then_some(ns), kind, object: bytes.clone() });
        r.log.push(ev.clone());
        let _ = r.tx.send(ev);
        bytes
    }

    pub fn get(&self, t: &Target) -> Result<Bytes, Failure> {
        let mut g = self.lock();
        g.gets += 1;
        let name = t.name.clone().unwrap_or_default();
        g.resources
            .get(&t.key())
            .and_then(|r| r.objects.get(&(ns_key(t), name.clone())))
            .cloned()
            .ok_or_else(|| Failure(404, "NotFound", format!("{} \"{name}\" not found", t.resource)))
    }

    /// A page of a list: the objects after `offset` (at most `limit`), the
    /// list's resourceVersion and the next offset, if any.
    pub fn list(&self, t: &Target, offset: usize, limit: Option<usize>) -> (Vec<Bytes>, u64, Option<usize>) {
        let mut g = self.lock();
        g.lists += 1;
        let rv = g.rv;
        let Some(r) = g.resources.get(&t.key()) else { return (vec![], rv, None) };
        let ns = t.namespace.clone();
        let mut it = r.objects.iter().filter(|((n, _), _)| ns.as_ref().is_none_or(|ns| ns == n)).skip(offset);
        let limit = limit.filter(|&l| l > 0).unwrap_or(usize::MAX);
        let items: Vec<Bytes> = it.by_ref().take(limit).map(|(_, v)| v.clone()).collect();
        let more = it.next().is_some();
        let n = items.len();
        (items, rv, more.then_some(offset + n))
    }

    /// The events after `rv` and a receiver of the ones to come.
    pub fn watch(&self, t: &Target, rv: u64) -> (Vec<Arc<Ev>>, broadcast::Receiver<Arc<Ev>>) {
        let mut g = self.lock();
        g.watches += 1;
        let r = g.resources.entry(t.key()).or_insert_with(Resource::new);
        let start = r.log.partition_point(|e| e.rv <= rv);
        let past = r.log[start..].to_vec();
        (past, r.tx.subscribe())
    }

    /// A client's write, logged (unless `control`).
    fn log_write(g: &mut Inner, method: &str, path: &str, control: bool) {
        if !control {
            g.writes.push(format!("{method} {path}"));
        }
    }

    /// PATCH (merge, strategic merge and server-side apply alike: merged
    /// into the stored object); a `metadata.resourceVersion` in the patch
    /// must match (compare-and-swap).
    pub fn patch(&self, t: &Target, path: &str, mut patch: Value, control: bool) -> Result<Bytes, Failure> {
        let mut g = self.lock();
        Self::log_write(&mut g, "PATCH", path, control);
        let name = t.name.clone().unwrap_or_default();
        let key = (ns_key(t), name.clone());
        let cur = g
            .resources
            .get(&t.key())
            .and_then(|r| r.objects.get(&key))
            .ok_or_else(|| Failure(404, "NotFound", format!("{} \"{name}\" not found", t.resource)))?;
        let mut obj: Value = serde_json::from_slice(cur).expect("stored JSON");
        if let Some(want) = patch.pointer("/metadata/resourceVersion").and_then(|v| v.as_str()) {
            if Some(want) != obj["metadata"]["resourceVersion"].as_str() {
                return Err(Failure(409, "Conflict", format!("the object has been modified; resourceVersion {want}")));
            }
        }
        if let Some(m) = patch.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            m.remove("resourceVersion");
        }
        merge(&mut obj, &patch);
        Ok(Self::put(&mut g, &t.key(), key.0, key.1, obj, "MODIFIED"))
    }

    /// Set the value at a JSON pointer of a stored object (a control request).
    pub fn set(&self, t: &Target, pointer: &str, value: Value) -> Result<Bytes, Failure> {
        let mut g = self.lock();
        let name = t.name.clone().unwrap_or_default();
        let key = (ns_key(t), name.clone());
        let cur = g
            .resources
            .get(&t.key())
            .and_then(|r| r.objects.get(&key))
            .ok_or_else(|| Failure(404, "NotFound", format!("{} \"{name}\" not found", t.resource)))?;
        let mut obj: Value = serde_json::from_slice(cur).expect("stored JSON");
        let (parent, last) = pointer.rsplit_once('/').ok_or(Failure(400, "BadRequest", "pointer".into()))?;
        let last = last.replace("~1", "/").replace("~0", "~");
        let p = obj.pointer_mut(parent).ok_or_else(|| Failure(400, "BadRequest", format!("no {parent}")))?;
        match p {
            Value::Object(m) => {
                m.insert(last, value);
            }
            Value::Array(a) => {
                let i: usize = last.parse().map_err(|_| Failure(400, "BadRequest", "index".into()))?;
                *a.get_mut(i).ok_or(Failure(400, "BadRequest", "index".into()))? = value;
            }
            _ => return Err(Failure(400, "BadRequest", format!("{parent} is no object"))),
        }
        Ok(Self::put(&mut g, &t.key(), key.0, key.1, obj, "MODIFIED"))
    }

    /// PUT: replace (a resourceVersion in the body must match).
    pub fn replace(&self, t: &Target, path: &str, obj: Value) -> Result<Bytes, Failure> {
        let mut g = self.lock();
        Self::log_write(&mut g, "PUT", path, false);
        let name = t.name.clone().unwrap_or_default();
        let key = (ns_key(t), name.clone());
        let cur = g
            .resources
            .get(&t.key())
            .and_then(|r| r.objects.get(&key))
            .ok_or_else(|| Failure(404, "NotFound", format!("{} \"{name}\" not found", t.resource)))?;
        if let Some(want) = obj.pointer("/metadata/resourceVersion").and_then(|v| v.as_str()) {
            let cur: Value = serde_json::from_slice(cur).expect("stored JSON");
            if Some(want) != cur["metadata"]["resourceVersion"].as_str() {
                return Err(Failure(409, "Conflict", "the object has been modified".into()));
            }
        }
        Ok(Self::put(&mut g, &t.key(), key.0, key.1, obj, "MODIFIED"))
    }

    /// POST: create in the collection `t`.
    pub fn create(&self, t: &Target, path: &str, mut obj: Value, control: bool) -> Result<Bytes, Failure> {
        let mut g = self.lock();
        Self::log_write(&mut g, "POST", path, control);
        let n = g.rv;
        let name = match obj["metadata"]["name"].as_str() {
            Some(n) => n.to_string(),
            None => format!("{}{n:x}", obj["metadata"]["generateName"].as_str().unwrap_or("obj-")),
        };
        obj["metadata"]["name"] = json!(name);
        if let Some(ns) = &t.namespace {
            obj["metadata"]["namespace"] = json!(ns);
        }
        obj["metadata"]["uid"] = json!(format!("00000009-0000-4000-8000-{n:012x}"));
        let key = (ns_key(t), name.clone());
        if g.resources.get(&t.key()).is_some_and(|r| r.objects.contains_key(&key)) {
            return Err(Failure(409, "AlreadyExists", format!("{} \"{name}\" already exists", t.resource)));
        }
        Ok(Self::put(&mut g, &t.key(), key.0, key.1, obj, "ADDED"))
    }

    /// The stored keys of a resource (for the scripted changes).
    pub fn keys(&self, key: &str) -> Vec<(String, String)> {
        self.lock().resources.get(key).map(|r| r.objects.keys().cloned().collect()).unwrap_or_default()
    }

    pub fn object(&self, key: &str, k: &(String, String)) -> Option<Value> {
        let g = self.lock();
        g.resources.get(key)?.objects.get(k).map(|b| serde_json::from_slice(b).expect("stored JSON"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = Target::parse("/api/v1/namespaces/shop/services/web/status").unwrap();
        assert_eq!(
            (t.resource.as_str(), t.namespace.as_deref(), t.name.as_deref()),
            ("services", Some("shop"), Some("web"))
        );
        assert_eq!(t.sub.as_deref(), Some("status"));
        let t = Target::parse("/api/v1/namespaces").unwrap();
        assert_eq!((t.resource.as_str(), t.name), ("namespaces", None));
        let t = Target::parse("/api/v1/namespaces/shop").unwrap();
        assert_eq!((t.resource.as_str(), t.name.as_deref()), ("namespaces", Some("shop")));
        let t = Target::parse("/apis/discovery.k8s.io/v1/endpointslices").unwrap();
        assert_eq!(
            (t.key().as_str(), t.api_version().as_str()),
            ("/apis/discovery.k8s.io/v1/endpointslices", "discovery.k8s.io/v1")
        );
    }

    #[test]
    fn patches_merge_and_compare_and_swap() {
        let s = Store::default();
        s.seed("/api/v1", "services", json!({"metadata": {"name": "a", "namespace": "n"}, "spec": {"x": 1}}));
        let t = Target::parse("/api/v1/namespaces/n/services/a/status").unwrap();
        let (past, _rx) = s.watch(&t, 0);
        assert!(past.is_empty());
        let out = s.patch(&t, "p", json!({"status": {"y": 2}}), false).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!((v["spec"]["x"].clone(), v["status"]["y"].clone()), (json!(1), json!(2)));
        assert!(s.patch(&t, "p", json!({"metadata": {"resourceVersion": "1"}}), false).is_err());
        let (past, _) = s.watch(&t, 1);
        assert_eq!(past.len(), 1);
        assert_eq!(s.lock().writes.len(), 2);
        let (items, _, more) = s.list(&Target::parse("/api/v1/services").unwrap(), 0, Some(1));
        assert_eq!((items.len(), more), (1, None));
    }
}
