//! MetalLB's configuration into Mooring's: `IPAddressPool` → `Eip`, `BGPAdvertisement` →
//! `BgpAdvertisement` (community aliases of `Community` resolved), `BGPPeer`
//! → `BgpPeer` (with its `BFDProfile`, a password moved into a Secret) and one `BgpConf`. The
//! ConfigMap of MetalLB before 0.13 is first rewritten into those resources.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{json, Value};

use super::{dns_name, go_duration, Doc, Fields, Input};

/// The namespace the Secrets holding BGP passwords are written to (the chart's release
/// namespace by default; the speaker may read Secrets there).
const SECRET_NAMESPACE: &str = "mooring-system";

pub fn convert(inputs: &[Input]) -> Vec<Doc> {
    let mut docs = vec![];
    let mut all = vec![];
    for i in inputs {
        if i.kind() == "ConfigMap" && i.value["data"]["config"].is_string() {
            let mut doc = Doc::default();
            doc.note(format!(
                "{}: MetalLB's configuration before 0.13, read as the resources it stands for",
                i.describe()
            ));
            all.extend(legacy(i, &mut doc));
            docs.push(doc);
        } else {
            all.push(i.clone());
        }
    }
    let of = |kind: &str| {
        let mut v: Vec<&Input> =
            all.iter().filter(|i| i.kind() == kind && i.api_version().starts_with("metallb.io/")).collect();
        v.sort_by_key(|i| i.name());
        v
    };
    let (pools, peers, advs) = (of("IPAddressPool"), of("BGPPeer"), of("BGPAdvertisement"));
    let aliases: BTreeMap<String, String> = of("Community")
        .iter()
        .flat_map(|c| c.value["spec"]["communities"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| Some((a["name"].as_str()?.to_string(), a["value"].as_str()?.to_string())))
        .collect();
    let bfd: BTreeMap<String, Value> = of("BFDProfile").iter().map(|b| (b.name(), b.value["spec"].clone())).collect();

    docs.extend(peer_docs(&peers, &bfd));
    docs.extend(pool_docs(&pools, &advs));
    docs.extend(advertisement_docs(&advs, &aliases));
    let mut used_bfd = BTreeSet::new();
    for p in &peers {
        if let Some(b) = p.value["spec"]["bfdProfile"].as_str() {
            used_bfd.insert(b.to_string());
        }
    }
    for i in &all {
        let mut doc = Doc::default();
        match i.kind() {
            _ if !i.api_version().starts_with("metallb.io/") && i.kind() != "ConfigMap" => {
                doc.note(format!("{}: not a MetalLB resource; skipped", i.describe()))
            }
            "IPAddressPool" | "BGPPeer" | "BGPAdvertisement" => continue,
            "Community" => {
                doc.note(format!("{}: its aliases are resolved in the BgpAdvertisements' communities", i.describe()))
            }
            "BFDProfile" if used_bfd.contains(&i.name()) => continue,
            "BFDProfile" => doc.note(format!(
                "{}: no BGPPeer names it; Mooring's BFD settings are per BgpPeer (spec.bfd)",
                i.describe()
            )),
            "L2Advertisement" => doc.note(format!("{}: not mapped: Mooring announces over BGP only", i.describe())),
            "ConfigMap" => continue,
            _ => doc.note(format!("{}: not mapped: Mooring has no such resource", i.describe())),
        }
        docs.push(doc);
    }
    docs
}

// ---- BGPPeer ----

fn peer_docs(peers: &[&Input], bfd: &BTreeMap<String, Value>) -> Vec<Doc> {
    let mut out = vec![];
    let Some(first) = peers.first() else { return out };
    let local_as = first.value["spec"]["myASN"].as_u64().unwrap_or(0);
    let mut conf = Doc::default();
    conf.note(format!(
        "BgpConf default: spec.as from {}'s spec.myASN (the first BGPPeer by name); a BGPPeer with another myASN gets spec.localAs",
        first.describe()
    ));
    conf.note("spec.routerId is not set: each node uses its first IPv4 InternalIP (MetalLB's per-peer spec.routerID does not map)");
    let mut graceful = vec![];
    let mut secrets = vec![];
    let mut bgp_peers = vec![];
    for p in peers {
        let mut doc = Doc::default();
        doc.note(format!("BgpPeer from {}", p.describe()));
        let mut f = Fields::new("spec", Some(&p.value["spec"]));
        let my = f.take("myASN").and_then(|v| v.as_u64());
        let mut spec = json!({});
        let peer_as = match (f.take("peerASN").and_then(|v| v.as_u64()), f.string("dynamicASN").as_deref()) {
            (Some(a), _) => Some(a),
            (None, Some("internal")) => {
                doc.note("spec.dynamicASN = internal: peerAs is our own AS (iBGP)");
                my
            }
            (None, other) => {
                doc.note(format!(
                    "spec.dynamicASN = {other:?}: not mapped: Mooring needs the peer's AS number; write spec.peerAs and uncomment"
                ));
                None
            }
        };
        if let Some(a) = peer_as {
            spec["peerAs"] = json!(a);
        }
        if let Some(m) = my.filter(|m| *m != local_as) {
            spec["localAs"] = json!(m);
        }
        if let Some(a) = f.string("peerAddress") {
            spec["peerAddress"] = json!(a);
        }
        if let Some(a) = f.string("sourceAddress") {
            spec["sourceAddress"] = json!(a);
        }
        if let Some(port) = f.number("peerPort") {
            spec["port"] = json!(port);
        }
        for (from, to) in [("holdTime", "holdTime"), ("keepaliveTime", "keepaliveTime")] {
            if let Some(d) = f.string(from) {
                match go_duration(&d) {
                    Some((s, rounded)) => {
                        if rounded {
                            doc.note(format!(
                                "spec.{from} = {d:?}: rounded to {s} (Mooring's timers are whole seconds)"
                            ));
                        }
                        spec[to] = json!(s);
                    }
                    None => doc.note(format!("spec.{from} = {d:?}: not mapped: not a duration")),
                }
            }
        }
        f.drop_field("connectTime", "Mooring retries a connection on its own schedule", &mut doc);
        f.drop_field("routerID", "the router ID is the BgpConf's (default: each node's address)", &mut doc);
        if let Some(sel) = f.take("nodeSelectors").and_then(|v| v.as_array().cloned()) {
            if let Some(s) = sel.first() {
                spec["nodeSelector"] = s.clone();
            }
            if sel.len() > 1 {
                doc.note(format!(
                    "spec.nodeSelectors[1..] = {}: not mapped: a BgpPeer has one spec.nodeSelector; the first is used",
                    Value::Array(sel[1..].to_vec())
                ));
            }
        }
        if let Some(pw) = f.string("password") {
            let secret = format!("bgppeer-{}", dns_name(&p.name()));
            doc.note(format!("spec.password: moved into the Secret {SECRET_NAMESPACE}/{secret} (the speaker reads passwords from Secrets)"));
            spec["passwordSecretRef"] = json!({"name": secret, "namespace": SECRET_NAMESPACE, "key": "password"});
            secrets.push((secret, pw, p.describe()));
        }
        let mut ps = f.sub("passwordSecret");
        if let Some(name) = ps.string("name") {
            let ns = ps.string("namespace").unwrap_or_else(|| p.namespace());
            doc.note(format!("spec.passwordSecret: the speaker must be allowed to read Secrets in {ns} (Helm value speaker.secrets.namespaces)"));
            spec["passwordSecretRef"] = json!({"name": name, "namespace": ns, "key": "password"});
        }
        ps.rest("not a field of a Secret reference", &mut doc);
        if let Some(profile) = f.string("bfdProfile") {
            match bfd.get(&profile) {
                Some(b) => spec["bfd"] = bfd_spec(&profile, b, &mut doc),
                None => doc.note(format!(
                    "spec.bfdProfile = {profile:?}: not mapped: no BFDProfile of that name in the input"
                )),
            }
        }
        if f.flag("enableGracefulRestart") {
            graceful.push(p.name());
        }
        if f.flag("ebgpMultiHop") {
            spec["ebgpMultihop"] = json!(255);
        }
        f.rest("Mooring has no such setting", &mut doc);
        let object = json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpPeer", "metadata": {"name": p.name()}, "spec": spec});
        if peer_as.is_none() {
            doc.note(serde_yaml::to_string(&object).unwrap_or_default());
        } else {
            doc.object = Some(object);
        }
        bgp_peers.push(doc);
    }
    let mut conf_spec = json!({"as": local_as});
    if !graceful.is_empty() {
        conf.note(format!(
            "spec.gracefulRestart: on, as BGPPeer(s) {} have enableGracefulRestart (Mooring's is for every session)",
            graceful.join(", ")
        ));
        conf_spec["gracefulRestart"] = json!({"enabled": true});
    }
    conf.object = Some(
        json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpConf", "metadata": {"name": "default"}, "spec": conf_spec}),
    );
    out.push(conf);
    out.extend(bgp_peers);
    for (name, pw, from) in secrets {
        let mut d = Doc::default();
        d.note(format!("the password of {from}"));
        d.object = Some(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": SECRET_NAMESPACE}, "stringData": {"password": pw}}));
        out.push(d);
    }
    out
}

/// A BFDProfile as a BgpPeer's `spec.bfd`.
fn bfd_spec(profile: &str, spec: &Value, doc: &mut Doc) -> Value {
    let mut f = Fields::new(&format!("BFDProfile {profile} spec"), Some(spec));
    let mut out = json!({"enabled": true});
    if let Some(ms) = f.number("receiveInterval") {
        out["minRxInterval"] = json!(format!("{ms}ms"));
    }
    if let Some(ms) = f.number("transmitInterval") {
        out["minTxInterval"] = json!(format!("{ms}ms"));
    }
    if let Some(m) = f.number("detectMultiplier") {
        out["multiplier"] = json!(m);
    }
    f.rest("Mooring's BFD is single-hop asynchronous mode, with no echo, passive mode or minimum TTL settings", doc);
    out
}

// ---- IPAddressPool and BGPAdvertisement ----

/// An address entry as Mooring writes it, with a note when it had to change.
fn entry(text: &str, doc: &mut Doc) -> Option<String> {
    let t: String = text.split('-').map(str::trim).collect::<Vec<_>>().join("-");
    if let Some((addr, len)) = t.split_once('/') {
        let (ip, len): (IpAddr, u8) = (addr.parse().ok()?, len.parse().ok()?);
        let net = ipnetwork::IpNetwork::new(ip, len).ok()?;
        let canonical = format!("{}/{len}", net.network());
        if canonical != t {
            doc.note(format!("{text:?}: written {canonical:?} (the network MetalLB takes it for)"));
        }
        return Some(canonical);
    }
    Some(t)
}

/// An IPv4 entry without its addresses ending in .0 or .255 (MetalLB's avoidBuggyIPs), as
/// ranges; `None` when it is not IPv4 or would take more than `room` entries.
fn without_buggy(e: &str, room: usize) -> Option<Vec<String>> {
    let r: mooring_crds::IpRange = e.parse().ok()?;
    let (IpAddr::V4(s), IpAddr::V4(end)) = (r.start, r.end) else { return None };
    let (s, end) = (u32::from(s), u32::from(end));
    let blocks = (end >> 8) - (s >> 8) + 1;
    if blocks as usize > room {
        return None;
    }
    let mut out = vec![];
    for b in (s >> 8)..=(end >> 8) {
        let lo = s.max((b << 8) + 1);
        let hi = end.min((b << 8) + 254);
        if lo <= hi {
            let (lo, hi) = (Ipv4Addr::from(lo), Ipv4Addr::from(hi));
            out.push(if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") });
        }
    }
    Some(out)
}

fn pool_docs(pools: &[&Input], advs: &[&Input]) -> Vec<Doc> {
    // MetalLB: a lower serviceAllocation.priority wins, 0 is none; pools with a
    // serviceAllocation come before the others. Mooring: the highest priority wins.
    let ranked: BTreeSet<i64> = pools
        .iter()
        .filter_map(|p| p.value["spec"]["serviceAllocation"]["priority"].as_i64())
        .filter(|p| *p > 0)
        .collect();
    let mut out = vec![];
    for p in pools {
        let mut doc = Doc::default();
        doc.note(format!("Eip from {}", p.describe()));
        let mut f = Fields::new("spec", Some(&p.value["spec"]));
        let mut spec = json!({"allowSharingAcrossNamespaces": true});
        doc.note("spec.allowSharingAcrossNamespaces: true, as MetalLB lets Services of any namespace share an address");
        let raw: Vec<String> = f
            .take("addresses")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        let mut entries: Vec<String> = raw
            .iter()
            .filter_map(|a| {
                let e = entry(a, &mut doc);
                if e.is_none() {
                    doc.note(format!("spec.addresses: {a:?}: not mapped: not an address, range or CIDR"));
                }
                e
            })
            .collect();
        let avoid = f.flag("avoidBuggyIPs");
        let cidr_v4 = entries
            .iter()
            .any(|e| e.split_once('/').is_some_and(|(a, l)| !a.contains(':') && l.parse::<u8>().is_ok_and(|l| l < 31)));
        if avoid {
            let v4: Vec<&String> = entries.iter().filter(|e| !e.contains(':')).collect();
            let others = entries.len() - v4.len();
            let split: Option<Vec<String>> = v4.iter().try_fold(vec![], |mut acc: Vec<String>, e| {
                acc.extend(without_buggy(e, 16usize.saturating_sub(others + acc.len()))?);
                Some(acc)
            });
            match split {
                Some(v) if v.len() + others <= 16 => {
                    doc.note("spec.avoidBuggyIPs: the IPv4 entries are written as ranges without their addresses ending in .0 or .255");
                    entries = v.into_iter().chain(entries.iter().filter(|e| e.contains(':')).cloned()).collect();
                }
                _ => doc.note(
                    "spec.avoidBuggyIPs = true: not mapped in full: the entries are too large to be written without every .0 and .255 \
                     (16 entries at most); the network and broadcast addresses of each CIDR are still not handed out, the others are",
                ),
            }
        } else if cidr_v4 {
            spec["allowFirstLastIPs"] = json!(true);
            doc.note("spec.allowFirstLastIPs: true, as MetalLB hands out the network and broadcast addresses of a CIDR (no avoidBuggyIPs); Services holding one keep it. Remove it to keep them back");
        }
        if entries.len() > 16 {
            doc.note(format!(
                "spec.addresses[16..] = {:?}: not mapped: an Eip has 16 entries at most; write another Eip",
                &entries[16..]
            ));
            entries.truncate(16);
        }
        match entries.len() {
            1 => spec["address"] = json!(entries[0]),
            _ => spec["addresses"] = json!(entries),
        }
        if let Some(a) = f.take("autoAssign") {
            spec["autoAssign"] = a;
        }
        let mut sa = f.sub("serviceAllocation");
        let pinned = !sa.map.is_empty();
        let priority = sa.number("priority").unwrap_or(0);
        spec["priority"] = json!(match (pinned, priority) {
            (false, _) => 0,
            (true, p) if p > 0 => 2 + ranked.iter().filter(|x| **x > p).count() as i64,
            (true, _) => 1,
        });
        if pinned {
            doc.note(format!(
                "spec.priority: {} (MetalLB serviceAllocation.priority {priority}: lower wins there, higher here; pools with a serviceAllocation before the others)",
                spec["priority"]
            ));
        }
        let namespaces = sa.take("namespaces");
        if let Some(ns) = &namespaces {
            spec["namespaces"] = ns.clone();
        }
        let selectors = sa.take("namespaceSelectors").and_then(|v| v.as_array().cloned()).unwrap_or_default();
        if let Some(s) = selectors.first() {
            spec["namespaceSelector"] = s.clone();
        }
        if selectors.len() > 1 {
            doc.note(format!(
                "spec.serviceAllocation.namespaceSelectors[1..] = {}: not mapped: an Eip has one namespaceSelector; the first is used",
                Value::Array(selectors[1..].to_vec())
            ));
        }
        if let Some(s) = sa.take("serviceSelectors") {
            doc.note(format!(
                "spec.serviceAllocation.serviceSelectors = {s}: not mapped: Mooring picks pools by namespace; pin Services with the annotation mooring.io/eip or metallb.io/address-pool"
            ));
            if namespaces.is_none() && selectors.is_empty() {
                spec["autoAssign"] = json!(false);
                doc.note("spec.autoAssign: false, so that only Services that name this pool get its addresses, as only the selected ones did");
            }
        }
        sa.rest("MetalLB field unknown to this importer", &mut doc);
        f.rest("MetalLB field unknown to this importer", &mut doc);
        advertise(p, advs, &mut doc);
        // The labels stay: BgpAdvertisements select pools by them, as BGPAdvertisements did.
        let mut metadata = json!({"name": p.name()});
        if let Some(l) = p.value["metadata"]["labels"].as_object().filter(|l| !l.is_empty()) {
            metadata["labels"] = Value::Object(l.clone());
        }
        doc.object =
            Some(json!({"apiVersion": "mooring.io/v1alpha1", "kind": "Eip", "metadata": metadata, "spec": spec}));
        out.push(doc);
    }
    out
}

/// Whether the advertisement selects the pool.
fn selects(adv: &Value, pool: &Input) -> bool {
    let names: Vec<&str> = adv["ipAddressPools"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let selectors: Vec<LabelSelector> = adv["ipAddressPoolSelectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| serde_json::from_value(s.clone()).ok())
        .collect();
    if names.is_empty() && selectors.is_empty() {
        return true;
    }
    let labels: BTreeMap<String, String> =
        serde_json::from_value(pool.value["metadata"]["labels"].clone()).unwrap_or_default();
    names.contains(&pool.name().as_str()) || selectors.iter().any(|s| crate::model::selector::matches(s, &labels))
}

/// A note on a pool no BGPAdvertisement selects: MetalLB does not announce it, Mooring does.
fn advertise(pool: &Input, advs: &[&Input], doc: &mut Doc) {
    if !advs.iter().any(|a| selects(&a.value["spec"], pool)) {
        doc.note("no BGPAdvertisement in the input selects this pool: MetalLB does not announce it over BGP; Mooring announces a pool no BgpAdvertisement selects to every peer");
    }
}

/// Each BGPAdvertisement as a BgpAdvertisement: pools, peers and the node selector as they
/// are, communities with their `Community` aliases resolved. MetalLB's lists of pool and node
/// selectors (either matches) become one BgpAdvertisement per combination, with the same
/// attributes, which Mooring unites.
fn advertisement_docs(advs: &[&Input], aliases: &BTreeMap<String, String>) -> Vec<Doc> {
    let mut out = vec![];
    for a in advs {
        let mut doc = Doc::default();
        let from = format!("BGPAdvertisement {}", a.name());
        doc.note(format!("{}: the BgpAdvertisement(s) of the same name", a.describe()));
        let mut f = Fields::new(&format!("{from} spec"), Some(&a.value["spec"]));
        let mut spec = json!({});
        let list = |v: Option<Value>| v.and_then(|v| v.as_array().cloned()).unwrap_or_default();
        let pools = list(f.take("ipAddressPools"));
        if !pools.is_empty() {
            spec["eips"] = Value::Array(pools);
        }
        let pool_selectors = list(f.take("ipAddressPoolSelectors"));
        let peers = list(f.take("peers"));
        if !peers.is_empty() {
            spec["peers"] = Value::Array(peers);
        }
        let node_selectors = list(f.take("nodeSelectors"));
        if let Some(l) = f.number("aggregationLength").filter(|l| *l != 32) {
            spec["aggregationLength"] = json!(l);
        }
        if let Some(l) = f.number("aggregationLengthV6").filter(|l| *l != 128) {
            spec["aggregationLengthV6"] = json!(l);
        }
        if let Some(l) = f.number("localPref").filter(|l| *l != 0) {
            spec["localPref"] = json!(l);
        }
        let (mut std, mut large) = (vec![], vec![]);
        for c in list(f.take("communities")) {
            let c = c.as_str().unwrap_or_default().to_string();
            let value = aliases.get(&c).cloned().unwrap_or(c.clone());
            match value.strip_prefix("large:") {
                Some(l) => large.push(json!(l)),
                None if value.contains(':') => std.push(json!(value)),
                None => doc
                    .note(format!("{from}: community {c:?}: not mapped: no Community alias of that name in the input")),
            }
        }
        if !std.is_empty() {
            spec["communities"] = Value::Array(std);
        }
        if !large.is_empty() {
            spec["largeCommunities"] = Value::Array(large);
        }
        f.rest("MetalLB field unknown to this importer", &mut doc);
        // One object per (pool selector, node selector) pair; none of either: no such field.
        let or_none = |v: Vec<Value>| if v.is_empty() { vec![Value::Null] } else { v };
        let combos: Vec<(Value, Value)> = or_none(pool_selectors)
            .into_iter()
            .flat_map(|p| or_none(node_selectors.clone()).into_iter().map(move |n| (p.clone(), n)))
            .collect();
        if combos.len() > 1 {
            doc.note(format!(
                "{from}: {} BgpAdvertisements, one per pool selector and node selector (MetalLB takes any of its selectors)",
                combos.len()
            ));
        }
        let base = dns_name(&a.name());
        for (i, (pool_sel, node_sel)) in combos.iter().enumerate() {
            let mut spec = spec.clone();
            if !pool_sel.is_null() {
                spec["eipSelector"] = pool_sel.clone();
            }
            if !node_sel.is_null() {
                spec["nodeSelector"] = node_sel.clone();
            }
            let name = if combos.len() > 1 { format!("{base}-{i}") } else { base.clone() };
            let mut d = if i == 0 { std::mem::take(&mut doc) } else { Doc::default() };
            d.object = Some(json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpAdvertisement",
                "metadata": {"name": name}, "spec": spec}));
            out.push(d);
        }
    }
    out
}

// ---- the ConfigMap of MetalLB before 0.13 ----

fn rename(v: &Value, table: &[(&str, &str)], path: &str, doc: &mut Doc) -> Value {
    let mut out = serde_json::Map::new();
    for (k, x) in v.as_object().into_iter().flatten() {
        match table.iter().find(|(from, _)| from == k) {
            Some((_, to)) => {
                out.insert(to.to_string(), x.clone());
            }
            None => doc.note(format!("{path}.{k} = {}: not mapped: unknown to this importer", super::short(x))),
        }
    }
    Value::Object(out)
}

fn selector(v: &Value, path: &str, doc: &mut Doc) -> Value {
    rename(v, &[("match-labels", "matchLabels"), ("match-expressions", "matchExpressions")], path, doc)
}

/// The resources a pre-0.13 ConfigMap stands for.
fn legacy(cm: &Input, doc: &mut Doc) -> Vec<Input> {
    let text = cm.value["data"]["config"].as_str().unwrap_or_default();
    let config: Value = match serde_yaml::from_str::<serde_yaml::Value>(text).map(serde_json::to_value) {
        Ok(Ok(v)) => v,
        _ => {
            doc.note("data.config: not mapped: not YAML");
            return vec![];
        }
    };
    let at = |what: String, value: Value| Input { origin: format!("{} data.config {what}", cm.origin), value };
    let mut out = vec![];
    let mut f = Fields::new("data.config", Some(&config));
    for (i, p) in f.take("peers").and_then(|v| v.as_array().cloned()).unwrap_or_default().iter().enumerate() {
        let path = format!("data.config.peers[{i}]");
        let mut spec = rename(
            p,
            &[
                ("my-asn", "myASN"),
                ("peer-asn", "peerASN"),
                ("peer-address", "peerAddress"),
                ("source-address", "sourceAddress"),
                ("peer-port", "peerPort"),
                ("hold-time", "holdTime"),
                ("keepalive-time", "keepaliveTime"),
                ("router-id", "routerID"),
                ("node-selectors", "nodeSelectors"),
                ("password", "password"),
                ("bfd-profile", "bfdProfile"),
                ("ebgp-multihop", "ebgpMultiHop"),
            ],
            &path,
            doc,
        );
        if let Some(sel) = spec["nodeSelectors"].as_array().cloned() {
            spec["nodeSelectors"] =
                Value::Array(sel.iter().map(|s| selector(s, &format!("{path}.node-selectors"), doc)).collect());
        }
        let name = format!("peer-{}", dns_name(p["peer-address"].as_str().unwrap_or(&i.to_string())));
        out.push(at(
            format!("peers[{i}]"),
            json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": name}, "spec": spec}),
        ));
    }
    if let Some(c) = f.take("bgp-communities").and_then(|v| v.as_object().cloned()) {
        let list: Vec<Value> = c.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
        out.push(at("bgp-communities".into(), json!({"apiVersion": "metallb.io/v1beta1", "kind": "Community", "metadata": {"name": "bgp-communities"}, "spec": {"communities": list}})));
    }
    for (i, p) in f.take("address-pools").and_then(|v| v.as_array().cloned()).unwrap_or_default().iter().enumerate() {
        let path = format!("data.config.address-pools[{i}]");
        let mut pf = Fields::new(&path, Some(p));
        let name = pf.string("name").unwrap_or_else(|| format!("pool-{i}"));
        let protocol = pf.string("protocol").unwrap_or_else(|| "bgp".into());
        let advs = pf.take("bgp-advertisements").and_then(|v| v.as_array().cloned());
        let rest = Value::Object(pf.map.clone());
        let spec = rename(
            &rest,
            &[("addresses", "addresses"), ("avoid-buggy-ips", "avoidBuggyIPs"), ("auto-assign", "autoAssign")],
            &path,
            doc,
        );
        out.push(at(format!("address-pools[{i}]"), json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": name}, "spec": spec})));
        if protocol != "bgp" {
            doc.note(format!(
                "{path}.protocol = {protocol:?}: not announced over BGP by MetalLB; Mooring announces it over BGP"
            ));
            continue;
        }
        // A BGP pool without advertisements is announced as /32 and /128 by MetalLB.
        let advs = advs.unwrap_or_else(|| vec![json!({})]);
        for (j, a) in advs.iter().enumerate() {
            let mut spec = rename(
                a,
                &[
                    ("aggregation-length", "aggregationLength"),
                    ("aggregation-length-v6", "aggregationLengthV6"),
                    ("localpref", "localPref"),
                    ("communities", "communities"),
                ],
                &format!("{path}.bgp-advertisements[{j}]"),
                doc,
            );
            spec["ipAddressPools"] = json!([name]);
            out.push(at(format!("address-pools[{i}].bgp-advertisements[{j}]"),
                json!({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": format!("{name}-{j}")}, "spec": spec})));
        }
    }
    for (i, b) in f.take("bfd-profiles").and_then(|v| v.as_array().cloned()).unwrap_or_default().iter().enumerate() {
        let mut spec = rename(
            b,
            &[
                ("name", "name"),
                ("receive-interval", "receiveInterval"),
                ("transmit-interval", "transmitInterval"),
                ("detect-multiplier", "detectMultiplier"),
                ("echo-interval", "echoInterval"),
                ("echo-mode", "echoMode"),
                ("passive-mode", "passiveMode"),
                ("minimum-ttl", "minimumTtl"),
            ],
            &format!("data.config.bfd-profiles[{i}]"),
            doc,
        );
        let name = spec
            .as_object_mut()
            .and_then(|m| m.remove("name"))
            .and_then(|n| n.as_str().map(String::from))
            .unwrap_or_default();
        out.push(at(
            format!("bfd-profiles[{i}]"),
            json!({"apiVersion": "metallb.io/v1beta1", "kind": "BFDProfile", "metadata": {"name": name}, "spec": spec}),
        ));
    }
    f.rest("unknown to this importer", doc);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buggy_addresses_are_cut_out() {
        assert_eq!(without_buggy("203.0.113.0/24", 16), Some(vec!["203.0.113.1-203.0.113.254".to_string()]));
        assert_eq!(
            without_buggy("10.0.0.250-10.0.1.5", 16),
            Some(vec!["10.0.0.250-10.0.0.254".to_string(), "10.0.1.1-10.0.1.5".to_string()])
        );
        assert_eq!(without_buggy("10.0.0.128/25", 16), Some(vec!["10.0.0.128-10.0.0.254".to_string()]));
        assert_eq!(without_buggy("10.0.0.255", 16), Some(vec![]));
        assert_eq!(without_buggy("10.0.0.0/16", 16), None, "256 blocks do not fit");
        assert_eq!(without_buggy("2001:db8::/64", 16), None);
    }

    #[test]
    fn entries_are_written_as_mooring_reads_them() {
        let mut d = Doc::default();
        assert_eq!(entry("10.0.0.1 - 10.0.0.9", &mut d).as_deref(), Some("10.0.0.1-10.0.0.9"));
        assert_eq!(entry("10.0.0.5/24", &mut d).as_deref(), Some("10.0.0.0/24"));
        assert_eq!(d.comments, ["\"10.0.0.5/24\": written \"10.0.0.0/24\" (the network MetalLB takes it for)"]);
    }
}
