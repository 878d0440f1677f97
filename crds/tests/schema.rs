//! The generated CRDs: scope, names, printer columns, list types, and the
//! `x-kubernetes-validations` the README promises.

mod common;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use mooring_crds::{crds, crds_yaml, rules, BgpConf, BgpPeer, Eip};
use serde::Deserialize;
use serde_json::Value;

fn columns(crd: &CustomResourceDefinition) -> Vec<(String, String, String)> {
    crd.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| (c.name.clone(), c.type_.clone(), c.json_path.clone()))
        .collect()
}

fn col(name: &str, ty: &str, path: &str) -> (String, String, String) {
    (name.into(), ty.into(), path.into())
}

/// The schema node at a dotted path of property names (e.g. `spec.addresses`).
fn node<'a>(schema: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(schema, |s, p| &s["properties"][p])
}

fn rules_at(schema: &Value, path: &str) -> Vec<String> {
    let n = if path.is_empty() { schema } else { node(schema, path) };
    n["x-kubernetes-validations"]
        .as_array()
        .map(|a| a.iter().map(|r| r["rule"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn all_cluster_scoped_in_mooring_io_v1alpha1() {
    let names: Vec<_> = crds().iter().map(|c| c.metadata.name.clone().unwrap()).collect();
    assert_eq!(
        names,
        ["bgpconfs.mooring.io", "bgppeers.mooring.io", "eips.mooring.io", "bgpadvertisements.mooring.io"]
    );
    for crd in crds() {
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.group, "mooring.io");
        assert_eq!(crd.spec.versions.len(), 1);
        assert_eq!(crd.spec.versions[0].name, "v1alpha1");
        assert!(crd.spec.versions[0].served && crd.spec.versions[0].storage);
    }
    assert_eq!(BgpPeer::crd().spec.names.plural, "bgppeers");
    assert_eq!(Eip::crd().spec.names.plural, "eips");
    assert_eq!(BgpConf::crd().spec.names.plural, "bgpconfs");
}

#[test]
fn printer_columns() {
    let peer = columns(&BgpPeer::crd());
    for c in [
        col("Peer Address", "string", ".spec.peerAddress"),
        col("Peer AS", "integer", ".spec.peerAs"),
        col("Established", "integer", ".status.established"),
        col("Age", "date", ".metadata.creationTimestamp"),
    ] {
        assert!(peer.contains(&c), "BgpPeer lacks column {c:?}: {peer:?}");
    }
    let eip = columns(&Eip::crd());
    for c in [
        col("Address", "string", ".spec.address"),
        col("Used", "integer", ".status.used"),
        col("Free", "integer", ".status.free"),
        col("Ready", "boolean", ".status.ready"),
        col("Age", "date", ".metadata.creationTimestamp"),
    ] {
        assert!(eip.contains(&c), "Eip lacks column {c:?}: {eip:?}");
    }
    // Every column's path exists in the schema (or is metadata).
    for crd in crds() {
        let schema = common::schema_of(&crd);
        for (name, _, path) in columns(&crd) {
            if path.starts_with(".metadata.") {
                continue;
            }
            assert!(
                !node(&schema, &path[1..]).is_null(),
                "{}: column {name} points at missing {path}",
                crd.spec.names.kind
            );
        }
    }
}

#[test]
fn status_subresources() {
    assert!(BgpConf::crd().spec.versions[0].subresources.is_none());
    for crd in [BgpPeer::crd(), Eip::crd()] {
        assert!(crd.spec.versions[0].subresources.as_ref().unwrap().status.is_some());
    }
}

#[test]
fn bgpconf_validations() {
    let s = common::schema_of(&BgpConf::crd());
    assert_eq!(rules_at(&s, ""), [rules::BGPCONF_NAME_RULE]);
    assert_eq!(rules_at(&s, "spec.routerId"), [rules::ROUTER_ID_RULE]);
    let asn = node(&s, "spec.as");
    assert_eq!((asn["minimum"].as_f64(), asn["maximum"].as_f64()), (Some(1.0), Some(4294967294.0)));
    let rt = node(&s, "spec.gracefulRestart.restartTime");
    assert_eq!(
        (rt["minimum"].as_f64(), rt["maximum"].as_f64(), rt["default"].as_u64()),
        (Some(1.0), Some(4095.0), Some(120))
    );
    let lp = node(&s, "spec.listenPort");
    assert_eq!((lp["minimum"].as_f64(), lp["maximum"].as_f64()), (Some(0.0), Some(65535.0)));
}

#[test]
fn bgppeer_validations() {
    let s = common::schema_of(&BgpPeer::crd());
    assert_eq!(
        rules_at(&s, "spec"),
        [
            rules::PASSWORD_EXCLUSIVE_RULE.to_string(),
            rules::keepalive_below_hold_rule(),
            rules::VRF_BFD_RULE.to_string()
        ]
    );
    let vrf = node(&s, "spec.vrf");
    assert_eq!((vrf["pattern"].as_str(), vrf["maxLength"].as_u64()), (Some(rules::INTERFACE_NAME_PATTERN), Some(15)));
    assert_eq!(rules_at(&s, "spec.peerAddress"), [rules::IS_IP_RULE]);
    assert_eq!(rules_at(&s, "spec.sourceAddress"), [rules::IS_IP_RULE]);
    assert_eq!(rules_at(&s, "spec.holdTime"), [rules::hold_time_rule()]);
    assert_eq!(rules_at(&s, "spec.keepaliveTime"), [rules::keepalive_time_rule()]);
    assert_eq!(rules_at(&s, "spec.communities"), [rules::communities_rule()]);
    assert_eq!(rules_at(&s, "spec.largeCommunities"), [rules::large_communities_rule()]);
    for f in ["peerAs", "localAs"] {
        let n = node(&s, &format!("spec.{f}"));
        assert_eq!((n["minimum"].as_f64(), n["maximum"].as_f64()), (Some(1.0), Some(4294967294.0)), "{f}");
    }
    assert_eq!(node(&s, "spec.port")["default"], 179);
    assert_eq!(node(&s, "spec.holdTime")["default"], "90s");
    assert_eq!(node(&s, "spec.holdTime")["pattern"], rules::DURATION_PATTERN);
    assert_eq!(node(&s, "spec.families")["default"], serde_json::json!(["ipv4-unicast", "ipv6-unicast"]));
    assert_eq!(node(&s, "spec.families")["items"]["enum"], serde_json::json!(["ipv4-unicast", "ipv6-unicast"]));
    assert_eq!(node(&s, "spec.maxPrefixes.action")["enum"], serde_json::json!(["warn", "teardown"]));
    assert_eq!(node(&s, "spec.maxPrefixes.action")["default"], "teardown");
    let hop = node(&s, "spec.ebgpMultihop");
    assert_eq!((hop["minimum"].as_f64(), hop["maximum"].as_f64()), (Some(1.0), Some(255.0)));
    assert!(node(&s, "spec.nodeSelector")["properties"]["matchLabels"].is_object());
    let nodes = node(&s, "status.nodes");
    assert_eq!(nodes["x-kubernetes-list-type"], "map");
    assert_eq!(nodes["x-kubernetes-list-map-keys"], serde_json::json!(["node"]));
    assert_eq!(
        nodes["items"]["properties"]["state"]["enum"],
        serde_json::json!(["Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established"])
    );
    assert_eq!(nodes["items"]["properties"]["establishedSince"]["format"], "date-time");
}

#[test]
fn eip_validations() {
    let s = common::schema_of(&Eip::crd());
    assert_eq!(rules_at(&s, "spec"), [rules::EIP_HAS_ADDRESS_RULE.to_string(), rules::address_vs_addresses_rule()]);
    assert_eq!(rules_at(&s, "spec.address"), [rules::address_rule(), rules::address_not_reversed_rule()]);
    assert_eq!(
        rules_at(&s, "spec.addresses"),
        [rules::addresses_rule(), rules::addresses_not_reversed_rule(), rules::addresses_no_overlap_rule()]
    );
    let addrs = node(&s, "spec.addresses");
    assert_eq!(addrs["x-kubernetes-list-type"], "set");
    assert_eq!(addrs["maxItems"].as_u64(), Some(rules::MAX_ADDRESSES as u64));
    assert_eq!(addrs["items"]["maxLength"].as_u64(), Some(*rules::ENTRY_LEN.end() as u64));
    for (f, max) in [("asPathPrepend", 16.0), ("aggregationLength", 32.0), ("aggregationLengthV6", 128.0)] {
        let n = node(&s, &format!("spec.{f}"));
        assert_eq!((n["minimum"].as_f64(), n["maximum"].as_f64()), (Some(0.0), Some(max)), "{f}");
    }
    assert_eq!(node(&s, "spec.autoAssign")["default"], true);
    let conds = node(&s, "status.conditions");
    assert_eq!(conds["x-kubernetes-list-type"], "map");
    assert_eq!(conds["x-kubernetes-list-map-keys"], serde_json::json!(["type"]));
    for f in ["type", "status", "reason", "message", "lastTransitionTime"] {
        assert!(conds["items"]["properties"][f].is_object(), "condition lacks {f}");
    }
    for f in ["size", "used", "free"] {
        assert_eq!(node(&s, &format!("status.{f}"))["format"], "int64");
    }
}

/// Every string carrying a CEL rule or a list is bounded, so the apiserver's CEL cost
/// estimate stays finite.
#[test]
fn cel_inputs_are_bounded() {
    fn walk(s: &Value, path: &str, in_rule: bool, bad: &mut Vec<String>) {
        let has_rule = s.get("x-kubernetes-validations").is_some();
        let in_rule = in_rule || has_rule;
        match s.get("type").and_then(Value::as_str) {
            Some("string") if in_rule && s.get("maxLength").is_none() && s.get("enum").is_none() => {
                bad.push(path.into())
            }
            Some("array") if in_rule && s.get("maxItems").is_none() => bad.push(path.into()),
            _ => {}
        }
        if let Some(p) = s.get("properties").and_then(Value::as_object) {
            for (k, v) in p {
                walk(v, &format!("{path}.{k}"), in_rule, bad);
            }
        }
        if let Some(i) = s.get("items") {
            walk(i, &format!("{path}[]"), in_rule, bad);
        }
    }
    for crd in crds() {
        let s = common::schema_of(&crd);
        let mut bad = Vec::new();
        walk(&s["properties"]["spec"], "spec", false, &mut bad);
        // A rule on a struct sees its fields; nodeSelector/namespaceSelector strings are
        // never read by those rules.
        bad.retain(|p| !p.contains("Selector") && !p.contains("passwordSecretRef") && !p.contains("namespaces"));
        assert!(bad.is_empty(), "{}: unbounded under a CEL rule: {bad:?}", crd.spec.names.kind);
    }
}

#[test]
fn generated_yaml_parses_back() {
    let yaml = crds_yaml();
    assert_eq!(yaml, crds_yaml(), "deterministic");
    let docs: Vec<CustomResourceDefinition> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| CustomResourceDefinition::deserialize(d).expect("a CRD"))
        .collect();
    assert_eq!(docs, crds());
}

/// `status.nodes[].state` is the speaker's own `fsm::State`, written by its name.
#[test]
fn session_state_is_the_fsm_state() {
    use mooring_bgp::fsm::State;
    use mooring_crds::BgpPeerNodeStatus;
    for state in State::ALL {
        let v = serde_json::json!({"node": "n1", "state": state.name()});
        let entry: BgpPeerNodeStatus = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(entry.state, state);
        assert_eq!(serde_json::to_value(&entry).unwrap(), v);
    }
    let bad = serde_json::from_value::<BgpPeerNodeStatus>(serde_json::json!({"node": "n1", "state": "Up"}));
    assert!(bad.unwrap_err().to_string().contains("\"Up\" is not a BGP state"));
}
