//! Admission-time rules, evaluated offline: schema bounds with the checker in `common`, CEL
//! rules with kube's client-side evaluator (kube-cel, via the `kube/cel` feature). Each case
//! is also run through the Rust `validate()`, which must agree (it is stricter only where
//! the README says a rule is status-time).

mod common;

use kube::CustomResourceExt;
use mooring_crds::{BgpConf, BgpPeer, Eip};
use serde_json::{json, Value};

fn obj(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "mooring.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec})
}

fn peer(extra: Value) -> Value {
    let mut spec = json!({"peerAddress": "192.0.2.1", "peerAs": 65001});
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    obj("BgpPeer", "p", spec)
}

/// Admission and `validate()` agree on `v`; returns the admission result.
fn check_peer(v: &Value) -> Result<(), Vec<String>> {
    let adm = common::admit(&BgpPeer::crd(), v);
    let rust = serde_json::from_value::<BgpPeer>(v.clone())
        .map_err(|e| e.to_string())
        .and_then(|p| p.spec.validate().map_err(|e| e.to_string()));
    assert_eq!(adm.is_ok(), rust.is_ok(), "admission {adm:?} vs validate() {rust:?} for {v}");
    adm
}

fn check_eip(v: &Value) -> Result<(), Vec<String>> {
    let adm = common::admit(&Eip::crd(), v);
    let rust = serde_json::from_value::<Eip>(v.clone())
        .map_err(|e| e.to_string())
        .and_then(|p| p.spec.validate().map_err(|e| e.to_string()));
    assert_eq!(adm.is_ok(), rust.is_ok(), "admission {adm:?} vs validate() {rust:?} for {v}");
    adm
}

fn check_conf(v: &Value) -> Result<(), Vec<String>> {
    let adm = common::admit(&BgpConf::crd(), v);
    let rust = serde_json::from_value::<BgpConf>(v.clone()).map_err(|e| e.to_string()).and_then(|p| {
        if p.metadata.name.as_deref() == Some("default") {
            p.spec.validate().map_err(|e| e.to_string())
        } else {
            Err("name".into())
        }
    });
    assert_eq!(adm.is_ok(), rust.is_ok(), "admission {adm:?} vs validate() {rust:?} for {v}");
    adm
}

fn has(errs: Result<(), Vec<String>>, needle: &str) {
    let errs = errs.expect_err("expected rejection");
    assert!(errs.iter().any(|e| e.contains(needle)), "no error containing {needle:?} in {errs:?}");
}

#[test]
fn bgpconf_admission() {
    check_conf(&obj("BgpConf", "default", json!({"as": 64512}))).unwrap();
    check_conf(&obj("BgpConf", "default", json!({"as": 4294967294u32, "routerId": "10.0.0.1", "listenPort": 0})))
        .unwrap();
    has(check_conf(&obj("BgpConf", "other", json!({"as": 64512}))), "must be named 'default'");
    has(check_conf(&obj("BgpConf", "default", json!({"as": 0}))), "below minimum");
    has(check_conf(&obj("BgpConf", "default", json!({"as": 4294967295u32}))), "above maximum");
    has(check_conf(&obj("BgpConf", "default", json!({"as": 1, "routerId": "2001:db8::1"}))), "routerId");
    has(check_conf(&obj("BgpConf", "default", json!({"as": 1, "routerId": "0.0.0.0"}))), "routerId");
    has(check_conf(&obj("BgpConf", "default", json!({"as": 1, "routerId": "10.0.0"}))), "routerId");
    has(check_conf(&obj("BgpConf", "default", json!({"as": 1, "listenPort": 65536}))), "above maximum");
    has(
        check_conf(&obj("BgpConf", "default", json!({"as": 1, "gracefulRestart": {"restartTime": 4096}}))),
        "above maximum",
    );
    has(
        check_conf(&obj("BgpConf", "default", json!({"as": 1, "gracefulRestart": {"restartTime": 0}}))),
        "below minimum",
    );
}

#[test]
fn bgppeer_admission_good() {
    check_peer(&peer(json!({}))).unwrap();
    check_peer(&peer(json!({"peerAddress": "2001:db8::1", "sourceAddress": "2001:db8::2"}))).unwrap();
    for (hold, ka) in
        [("0s", None), ("0s", Some("0s")), ("3s", Some("1s")), ("3m", Some("1m")), ("1h", None), ("1m30s", Some("30s"))]
    {
        let mut extra = json!({"holdTime": hold});
        if let Some(ka) = ka {
            extra["keepaliveTime"] = json!(ka);
        }
        check_peer(&peer(extra)).unwrap_or_else(|e| panic!("{hold}/{ka:?}: {e:?}"));
    }
    check_peer(&peer(json!({
        "communities": ["65535:65535", "0:0", "no-export", "no-advertise", "no-peer", "graceful-shutdown", "blackhole"],
        "largeCommunities": ["4294967295:0:4294967295"],
        "passwordSecretRef": {"name": "s", "namespace": "ns"},
        "ebgpMultihop": 255, "localAs": 4200000000u32, "port": 1179, "passive": true,
        "families": ["ipv6-unicast"], "maxPrefixes": {"limit": 10},
        "nodeSelector": {"matchLabels": {"rack": "a"}}
    })))
    .unwrap();
}

#[test]
fn bgppeer_admission_bad() {
    has(check_peer(&peer(json!({"peerAddress": "192.0.2.256"}))), "peerAddress");
    has(check_peer(&peer(json!({"peerAddress": "router.example"}))), "peerAddress");
    has(check_peer(&peer(json!({"peerAs": 0}))), "below minimum");
    has(check_peer(&peer(json!({"peerAs": 4294967295u32}))), "above maximum");
    has(check_peer(&peer(json!({"localAs": 0}))), "below minimum");
    has(check_peer(&peer(json!({"holdTime": "2s"}))), "holdTime must be 0s or between 3s");
    has(check_peer(&peer(json!({"holdTime": "1s"}))), "holdTime must be 0s or between 3s");
    has(check_peer(&peer(json!({"holdTime": "65536s"}))), "holdTime must be 0s or between 3s");
    has(check_peer(&peer(json!({"holdTime": "90"}))), "does not match");
    has(check_peer(&peer(json!({"holdTime": "1.5m"}))), "does not match");
    has(check_peer(&peer(json!({"holdTime": "30s1m"}))), "does not match");
    has(check_peer(&peer(json!({"keepaliveTime": "90s"}))), "keepaliveTime must be above 0s and below holdTime");
    has(check_peer(&peer(json!({"holdTime": "30s", "keepaliveTime": "30s"}))), "below holdTime");
    has(check_peer(&peer(json!({"holdTime": "0s", "keepaliveTime": "10s"}))), "below holdTime");
    has(check_peer(&peer(json!({"keepaliveTime": "0s"}))), "below holdTime");
    has(
        check_peer(&peer(json!({"password": "x", "passwordSecretRef": {"name": "s", "namespace": "ns"}}))),
        "at most one of password and passwordSecretRef",
    );
    has(check_peer(&peer(json!({"sourceAddress": "nope"}))), "sourceAddress");
    has(check_peer(&peer(json!({"ebgpMultihop": 0}))), "below minimum");
    has(check_peer(&peer(json!({"port": 0}))), "below minimum");
    has(check_peer(&peer(json!({"families": ["ipv4-multicast"]}))), "is not one of");
    has(check_peer(&peer(json!({"families": []}))), "fewer than 1");
    has(check_peer(&peer(json!({"families": ["ipv4-unicast", "ipv4-unicast"]}))), "duplicate");
    has(check_peer(&peer(json!({"maxPrefixes": {"limit": 10, "action": "drop"}}))), "is not one of");
    has(check_peer(&peer(json!({"maxPrefixes": {"limit": 0}}))), "below minimum");
    has(check_peer(&peer(json!({"communities": ["65536:1"]}))), "community halves");
    has(check_peer(&peer(json!({"communities": ["no-such-thing"]}))), "does not match");
    has(check_peer(&peer(json!({"communities": ["1:2:3"]}))), "does not match");
    has(check_peer(&peer(json!({"largeCommunities": ["4294967296:1:1"]}))), "large community parts");
    has(check_peer(&peer(json!({"largeCommunities": ["1:1"]}))), "does not match");
}

fn eip(spec: Value) -> Value {
    obj("Eip", "pool", spec)
}

#[test]
fn eip_admission_good() {
    for a in [
        "203.0.113.0/24",
        "203.0.113.7",
        "203.0.113.10-203.0.113.20",
        "203.0.113.10-203.0.113.10",
        "0.0.0.0/0",
        "2001:db8::/64",
        "2001:db8::1",
        "2001:db8::10-2001:db8::1f",
    ] {
        check_eip(&eip(json!({"address": a}))).unwrap_or_else(|e| panic!("{a}: {e:?}"));
    }
    check_eip(&eip(json!({
        "address": "10.0.0.0/25",
        "addresses": ["10.0.0.128/26", "10.0.0.192-10.0.0.200", "10.0.0.201", "2001:db8::/64", "2001:db8:1::1", "2001:db8:2::1-2001:db8:2::9"],
        "asPathPrepend": 16, "aggregationLength": 26, "aggregationLengthV6": 64, "localPref": 100, "med": 0,
        "namespaces": ["a", "b"], "priority": -5, "disable": true
    })))
    .unwrap();
}

#[test]
fn eip_admission_bad() {
    has(check_eip(&eip(json!({}))), "set spec.address or spec.addresses");
    has(check_eip(&eip(json!({"addresses": []}))), "set spec.address or spec.addresses");
    for a in [
        "203.0.113.0/33",
        "203.0.113.1/24",
        "203.0.113.256",
        "203.0.113.0/",
        "2001:db8::1/64",
        "2001:db8::/129",
        "10.0.0.1-2001:db8::1",
        "10.0.0.1-10.0.0.2-10.0.0.3",
        "10.0.0.1 - 10.0.0.2",
        "pool",
    ] {
        has(check_eip(&eip(json!({"address": a}))), "address must be a CIDR");
        has(check_eip(&eip(json!({"addresses": [a]}))), "each entry must be a CIDR");
    }
    has(check_eip(&eip(json!({"address": "10.0.0.20-10.0.0.10"}))), "reversed");
    has(check_eip(&eip(json!({"addresses": ["10.0.0.20-10.0.0.10"]}))), "reversed");
    has(check_eip(&eip(json!({"address": "10.0.1.0-10.0.0.255"}))), "reversed");
    for pair in [
        ["10.0.0.0/24", "10.0.0.128/25"],
        ["10.0.0.0/24", "10.0.0.7"],
        ["10.0.0.0/24", "10.0.0.250-10.0.1.5"],
        ["10.0.0.250-10.0.1.5", "10.0.1.0/24"],
        ["10.0.0.1-10.0.0.10", "10.0.0.10-10.0.0.20"],
        ["10.0.0.1-10.0.0.10", "10.0.0.5"],
        ["10.0.0.0/16", "10.0.255.255"],
        ["2001:db8::/64", "2001:db8::/96"],
        ["2001:db8::/64", "2001:db8::5"],
        ["2001:db8::5", "2001:db8:0::5"],
        ["2001:db8::/120", "2001:db8::f0-2001:db8::1:0"],
    ] {
        has(check_eip(&eip(json!({"addresses": pair}))), "entries of spec.addresses overlap");
        has(check_eip(&eip(json!({"address": pair[0], "addresses": [pair[1]]}))), "spec.address overlaps");
    }
    has(check_eip(&eip(json!({"addresses": ["10.0.0.1", "10.0.0.1"]}))), "duplicate");
    has(check_eip(&eip(json!({"address": "10.0.0.1", "addresses": ["10.0.0.1"]}))), "spec.address overlaps");
    has(check_eip(&eip(json!({"asPathPrepend": 17, "address": "10.0.0.1"}))), "above maximum");
    has(check_eip(&eip(json!({"aggregationLength": 33, "address": "10.0.0.1"}))), "above maximum");
    has(check_eip(&eip(json!({"aggregationLengthV6": 129, "address": "10.0.0.1"}))), "above maximum");
    has(check_eip(&eip(json!({"communities": ["1:65536"], "address": "10.0.0.1"}))), "community halves");
    let many: Vec<String> = (0..17).map(|i| format!("10.0.{i}.0/24")).collect();
    has(check_eip(&eip(json!({"addresses": many}))), "more than 16 items");
}

/// The rules the README lists as status-time: admission lets them through, `validate()`
/// (and so the controller, which reports them in the Eip's status) rejects them.
#[test]
fn eip_status_time_rules() {
    for spec in [
        json!({"address": "2001:db8::20-2001:db8::10"}),
        json!({"addresses": ["2001:db8::1-2001:db8::10", "2001:db8::5"]}),
        json!({"addresses": ["2001:db8::1-2001:db8::10", "2001:db8::8-2001:db8::20"]}),
        json!({"addresses": ["2001:db8::1-2001:db8::ffff", "2001:db8::100/120"]}),
        json!({"address": "10.0.0.0/24", "aggregationLength": 16}),
    ] {
        let v = eip(spec.clone());
        common::admit(&Eip::crd(), &v)
            .unwrap_or_else(|e| panic!("{spec}: admission now rejects it, update the README: {e:?}"));
        let e: Eip = serde_json::from_value(v).unwrap();
        assert!(e.spec.validate().is_err(), "{spec}");
    }
}
