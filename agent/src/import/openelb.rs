//! OpenELB's configuration (network.kubesphere.io/v1alpha2) into Mooring's: `Eip` → `Eip`
//! (Mooring's names follow OpenELB's), `BgpConf` → `BgpConf`, `BgpPeer` (GoBGP's peer
//! layout) → `BgpPeer`, a password moved into a Secret.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{dns_name, Doc, Fields, Input};

const GROUP: &str = "network.kubesphere.io/";
/// An Eip OpenELB assigns from when a Service names none.
pub const DEFAULT_EIP: &str = "eip.openelb.kubesphere.io/is-default-eip";
const SECRET_NAMESPACE: &str = "mooring-system";

pub fn convert(inputs: &[Input]) -> Vec<Doc> {
    let mut docs = vec![];
    let of = |kind: &str| {
        let mut v: Vec<&Input> =
            inputs.iter().filter(|i| i.kind() == kind && i.api_version().starts_with(GROUP)).collect();
        v.sort_by_key(|i| i.name());
        v
    };
    for c in of("BgpConf") {
        docs.push(conf(c));
    }
    let mut secrets = vec![];
    for p in of("BgpPeer") {
        docs.push(peer(p, &mut secrets));
    }
    docs.extend(secrets);
    docs.extend(eips(&of("Eip")));
    for i in inputs {
        let known = i.api_version().starts_with(GROUP) && ["BgpConf", "BgpPeer", "Eip"].contains(&i.kind());
        if !known {
            let mut d = Doc::default();
            d.note(format!("{}: not mapped: not an OpenELB BgpConf, BgpPeer or Eip", i.describe()));
            docs.push(d);
        } else if i.api_version() != "network.kubesphere.io/v1alpha2" {
            let mut d = Doc::default();
            d.note(format!("{}: read as v1alpha2 (the version this importer knows)", i.describe()));
            docs.push(d);
        }
    }
    docs
}

fn conf(c: &Input) -> Doc {
    let mut doc = Doc::default();
    doc.note(format!("BgpConf from {}", c.describe()));
    let mut f = Fields::new("spec", Some(&c.value["spec"]));
    let mut spec = json!({});
    if let Some(a) = f.number("as") {
        spec["as"] = json!(a);
    }
    if let Some(r) = f.string("routerId") {
        spec["routerId"] = json!(r);
    }
    if let Some(p) = f.number("listenPort") {
        spec["listenPort"] = json!(p);
        doc.note("spec.listenPort: give the chart's speaker.listenPort the same value");
    }
    let mut gr = f.sub("gracefulRestart");
    if gr.flag("enabled") {
        let mut g = json!({"enabled": true});
        if let Some(t) = gr.number("restartTime") {
            g["restartTime"] = json!(t);
        }
        spec["gracefulRestart"] = g;
    }
    gr.rest(
        "Mooring's graceful restart has the restart time only (it is always a full restarting speaker and helper)",
        &mut doc,
    );
    f.drop_field("asPerRack", "one AS for every node (use BgpPeer spec.localAs per peer)", &mut doc);
    f.drop_field("listenAddresses", "the speaker listens on every address", &mut doc);
    f.drop_field("families", "the address families are per BgpPeer (spec.families)", &mut doc);
    f.drop_field("useMultiplePaths", "Mooring does not receive routes to choose among", &mut doc);
    f.drop_field("policy", "Mooring has no routing policies (route attributes are per Eip and Service)", &mut doc);
    f.rest("OpenELB field unknown to this importer", &mut doc);
    doc.object = Some(
        json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpConf", "metadata": {"name": "default"}, "spec": spec}),
    );
    doc
}

fn peer(p: &Input, secrets: &mut Vec<Doc>) -> Doc {
    let mut doc = Doc::default();
    doc.note(format!("BgpPeer from {}", p.describe()));
    let mut f = Fields::new("spec", Some(&p.value["spec"]));
    let mut spec = json!({});
    let mut c = f.sub("conf");
    if let Some(a) = c.string("neighborAddress") {
        spec["peerAddress"] = json!(a);
    }
    if let Some(a) = c.number("peerAs") {
        spec["peerAs"] = json!(a);
    }
    if let Some(a) = c.number("localAs").filter(|a| *a != 0) {
        spec["localAs"] = json!(a);
    }
    if let Some(pw) = c.string("authPassword") {
        let name = format!("bgppeer-{}", dns_name(&p.name()));
        doc.note(format!("spec.conf.authPassword: moved into the Secret {SECRET_NAMESPACE}/{name}"));
        spec["passwordSecretRef"] = json!({"name": name, "namespace": SECRET_NAMESPACE, "key": "password"});
        let mut s = Doc::default();
        s.note(format!("the password of {}", p.describe()));
        s.object = Some(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": SECRET_NAMESPACE},
            "stringData": {"password": pw}}),
        );
        secrets.push(s);
    }
    if c.flag("adminDown") {
        doc.note("spec.conf.adminDown = true: not mapped: Mooring has no shut-down peers; delete the BgpPeer instead");
    }
    c.drop_field("description", "BgpPeers have no description (use an annotation)", &mut doc);
    c.rest("Mooring has no such peer setting", &mut doc);
    let mut m = f.sub("ebgpMultihop");
    if m.flag("enabled") {
        spec["ebgpMultihop"] = json!(m.number("multihopTtl").filter(|t| (1..=255).contains(t)).unwrap_or(255));
    }
    m.rest("not a multihop setting", &mut doc);
    let mut timers = f.sub("timers");
    let mut tc = timers.sub("config");
    if let Some(h) = tc.number("holdTime") {
        spec["holdTime"] = json!(format!("{h}s"));
    }
    if let Some(k) = tc.number("keepaliveInterval") {
        spec["keepaliveTime"] = json!(format!("{k}s"));
    }
    tc.drop_field("connectRetry", "Mooring retries a connection on its own schedule", &mut doc);
    tc.rest("Mooring has no such timer", &mut doc);
    timers.rest("not a timer setting", &mut doc);
    let mut t = f.sub("transport");
    if t.flag("passiveMode") {
        spec["passive"] = json!(true);
    }
    if let Some(port) = t.number("remotePort").filter(|p| *p != 0) {
        spec["port"] = json!(port);
    }
    t.rest("Mooring has no such transport setting", &mut doc);
    let mut families = vec![];
    for (i, a) in f.take("afiSafis").and_then(|v| v.as_array().cloned()).unwrap_or_default().iter().enumerate() {
        let fam = &a["config"]["family"];
        match (fam["afi"].as_str(), fam["safi"].as_str()) {
            (Some("ipv4"), Some("unicast")) => families.push(json!("ipv4-unicast")),
            (Some("ipv6"), Some("unicast")) => families.push(json!("ipv6-unicast")),
            _ => doc
                .note(format!("spec.afiSafis[{i}] = {fam}: not mapped: Mooring announces IPv4 and IPv6 unicast only")),
        }
        for extra in ["addPaths", "mpGracefulRestart"] {
            if !a[extra].is_null() {
                doc.note(format!(
                    "spec.afiSafis[{i}].{extra} = {}: not mapped: Mooring has no such per-family setting",
                    a[extra]
                ));
            }
        }
    }
    if !families.is_empty() {
        spec["families"] = Value::Array(families);
    }
    if let Some(s) = f.take("nodeSelector") {
        spec["nodeSelector"] = s;
    }
    f.drop_field("gracefulRestart", "graceful restart is the BgpConf's, for every session", &mut doc);
    f.rest("OpenELB field unknown to this importer", &mut doc);
    doc.object = Some(
        json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpPeer", "metadata": {"name": p.name()}, "spec": spec}),
    );
    doc
}

fn eips(list: &[&Input]) -> Vec<Doc> {
    // OpenELB assigns automatically from namespace-bound Eips (by their priority, lower first)
    // and then from the default Eip; Mooring from auto-assign pools, highest priority first.
    let bound = |e: &Input| !e.value["spec"]["namespaces"].is_null() || !e.value["spec"]["namespaceSelector"].is_null();
    let priorities: Vec<i64> =
        list.iter().filter(|e| bound(e)).filter_map(|e| e.value["spec"]["priority"].as_i64()).collect();
    let worst = priorities.iter().copied().max().unwrap_or(0);
    let mut out = vec![];
    for e in list {
        let mut doc = Doc::default();
        doc.note(format!("Eip from {}", e.describe()));
        let is_default = e.value["metadata"]["annotations"][DEFAULT_EIP].as_str() == Some("true");
        let mut f = Fields::new("spec", Some(&e.value["spec"]));
        let mut spec = json!({});
        if let Some(a) = f.string("address") {
            if a.split_once('/').is_some_and(|(ip, len)| !ip.contains(':') && len.parse::<u8>().is_ok_and(|l| l < 31)) {
                spec["allowFirstLastIPs"] = json!(true);
                doc.note("spec.allowFirstLastIPs: true, as OpenELB hands out every address of a CIDR; remove it to keep the network and broadcast addresses back");
            }
            spec["address"] = json!(a);
        }
        match f.string("protocol").as_deref() {
            None | Some("bgp") => {}
            Some(other) => {
                doc.note(format!("spec.protocol = {other:?}: not mapped: Mooring announces every Eip over BGP"))
            }
        }
        f.drop_field("interface", "layer 2 only; Mooring announces over BGP", &mut doc);
        if f.flag("disable") {
            spec["disable"] = json!(true);
        }
        f.drop_field(
            "usingKnownIPs",
            "Mooring hands out addresses of the pool without checking the network for them",
            &mut doc,
        );
        let priority = f.number("priority");
        if let Some(ns) = f.take("namespaces") {
            spec["namespaces"] = ns;
        }
        if let Some(sel) = f.take("namespaceSelector") {
            spec["namespaceSelector"] = json!({"matchLabels": sel});
        }
        if bound(e) {
            spec["priority"] = json!(1 + worst - priority.unwrap_or(0));
            doc.note(format!(
                "spec.priority: {} (OpenELB priority {}: lower wins there, higher here; namespace-bound Eips before the default one)",
                spec["priority"],
                priority.unwrap_or(0)
            ));
        } else if !is_default {
            spec["autoAssign"] = json!(false);
            doc.note(format!(
                "spec.autoAssign: false: neither bound to namespaces nor annotated {DEFAULT_EIP}, OpenELB gives its addresses only to Services that name it"
            ));
        }
        f.rest("OpenELB field unknown to this importer", &mut doc);
        let mut meta = json!({"name": e.name()});
        let others: BTreeMap<String, Value> = e.value["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != DEFAULT_EIP && !k.starts_with("kubectl.kubernetes.io/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !others.is_empty() {
            meta["annotations"] = json!(others);
        }
        doc.object = Some(json!({"apiVersion": "mooring.io/v1alpha1", "kind": "Eip", "metadata": meta, "spec": spec}));
        out.push(doc);
    }
    out
}
