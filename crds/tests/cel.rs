//! The Rust parse layer (`mooring_crds::settings`) against admission, rule by rule.
//!
//! Admission is evaluated offline: schema bounds with the checker in `common`, CEL rules with
//! kube's client-side evaluator (kube-cel, via the `kube/cel` feature). The table has one row
//! per rule and per schema bound of the generated CRDs: a manifest breaking it, which
//! admission rejects at the row's path with the row's message, and which the parse layer
//! rejects with exactly the same (path, message) set, or, where the typed spec cannot hold
//! the value at all (an enum, a missing required field, a value outside the Rust type),
//! which fails to deserialize at that path. `every_rule_has_a_row` walks the generated CRDs
//! and fails for a rule or bound no row breaks.

mod common;

use std::collections::BTreeSet;

use common::Rejection;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use mooring_crds::{
    AdvertisementSettings, BgpAdvertisement, BgpConf, BgpPeer, Eip, PeerSettings, PoolSettings, SpeakerSettings,
};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Conf,
    Peer,
    Eip,
    Adv,
}

impl Kind {
    fn crd(self) -> CustomResourceDefinition {
        match self {
            Kind::Conf => BgpConf::crd(),
            Kind::Peer => BgpPeer::crd(),
            Kind::Eip => Eip::crd(),
            Kind::Adv => BgpAdvertisement::crd(),
        }
    }

    /// A valid spec that rows change one field of.
    fn base(self) -> Value {
        match self {
            Kind::Conf => json!({"as": 64512}),
            Kind::Peer => json!({"peerAddress": "192.0.2.1", "peerAs": 65001}),
            Kind::Eip => json!({"address": "203.0.113.0/24"}),
            Kind::Adv => json!({}),
        }
    }
}

/// An object of `kind`: its base spec with `changes` merged in (a `null` removes the field;
/// `changes` null: no spec at all).
fn object(kind: Kind, name: &str, changes: Value) -> Value {
    let kind_name = match kind {
        Kind::Conf => "BgpConf",
        Kind::Peer => "BgpPeer",
        Kind::Eip => "Eip",
        Kind::Adv => "BgpAdvertisement",
    };
    if changes.is_null() {
        return json!({"apiVersion": "mooring.io/v1alpha1", "kind": kind_name, "metadata": {"name": name}});
    }
    let mut spec = kind.base();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            spec.as_object_mut().unwrap().remove(k);
        } else {
            spec[k] = v.clone();
        }
    }
    json!({"apiVersion": "mooring.io/v1alpha1", "kind": kind_name, "metadata": {"name": name}, "spec": spec})
}

/// What the Rust side makes of an object.
#[derive(Debug)]
enum Parsed {
    Ok,
    /// The typed spec could not hold it: the path serde names.
    Undeserializable(String),
    Rejected(BTreeSet<Rejection>),
}

/// The value, or the path at which it does not deserialize (empty: the object itself).
fn de<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(v.clone()).map_err(|e| e.path().to_string().trim_start_matches('.').to_string())
}

fn rejections(r: Result<(), mooring_crds::FieldErrors>) -> Parsed {
    match r {
        Ok(()) => Parsed::Ok,
        Err(e) => Parsed::Rejected(e.errors().iter().map(|e| Rejection::new(&e.path, &e.message)).collect()),
    }
}

fn parse(kind: Kind, v: &Value) -> Parsed {
    let result = match kind {
        Kind::Conf => de::<BgpConf>(v).map(|c| SpeakerSettings::try_from(&c).map(drop)),
        Kind::Peer => de::<BgpPeer>(v).map(|p| PeerSettings::try_from(&p.spec).map(drop)),
        Kind::Eip => de::<Eip>(v).map(|e| PoolSettings::try_from(&e.spec).map(drop)),
        Kind::Adv => de::<BgpAdvertisement>(v).map(|a| AdvertisementSettings::try_from(&a.spec).map(drop)),
    };
    match result {
        Ok(r) => rejections(r),
        Err(path) => Parsed::Undeserializable(path),
    }
}

/// How the parse layer must answer a row.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The same rejections as admission.
    Same,
    /// Deserialization fails at the row's path or a parent of it.
    Undeserializable,
}

struct Row {
    kind: Kind,
    name: &'static str,
    changes: Value,
    path: &'static str,
    message: String,
    expect: Expect,
}

fn row(kind: Kind, changes: Value, path: &'static str, message: impl Into<String>) -> Row {
    Row { kind, name: "x", changes, path, message: message.into(), expect: Expect::Same }
}

impl Row {
    fn undeserializable(mut self) -> Row {
        self.expect = Expect::Undeserializable;
        self
    }

    fn named(mut self, name: &'static str) -> Row {
        self.name = name;
        self
    }
}

fn ge(n: i64) -> String {
    format!("should be greater than or equal to {n}")
}
fn le(n: i64) -> String {
    format!("should be less than or equal to {n}")
}
fn min_len(n: usize) -> String {
    format!("should be at least {n} chars long")
}
fn max_len(n: usize) -> String {
    format!("may not be longer than {n}")
}
fn max_items(n: usize) -> String {
    format!("must have at most {n} items")
}
fn matches(p: &str) -> String {
    format!("should match '{p}'")
}
const DURATION: &str = "^([0-9]{1,5}h)?([0-9]{1,5}m)?([0-9]{1,5}s)?$";
const INTERVAL: &str = "^[0-9]{1,5}(ms|s)$";
const COMMUNITY: &str = "^([0-9]{1,5}:[0-9]{1,5}|graceful-shutdown|accept-own|blackhole|llgr-stale|no-llgr|no-export|no-advertise|no-export-subconfed|no-peer)$";
const LARGE: &str = "^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$";
const REQUIRED: &str = "Required value";
const IFNAME: &str = "^[A-Za-z0-9_-][A-Za-z0-9_.-]*$";
const PROBE_PATH: &str = "^/[!-~]*$";

fn long(n: usize) -> String {
    "a".repeat(n)
}

/// Community rows, the same for BgpPeer and Eip.
fn community_rows(kind: Kind) -> Vec<Row> {
    let many: Vec<String> = (0..33).map(|i| format!("1:{i}")).collect();
    let many_large: Vec<String> = (0..33).map(|i| format!("1:1:{i}")).collect();
    vec![
        row(kind, json!({"communities": many}), "spec.communities", max_items(32)),
        row(kind, json!({"communities": ["1".repeat(21)]}), "spec.communities[0]", max_len(20)),
        row(kind, json!({"communities": ["no-such-thing"]}), "spec.communities[0]", matches(COMMUNITY)),
        row(kind, json!({"communities": ["NO_EXPORT"]}), "spec.communities[0]", matches(COMMUNITY)),
        // Six digits: the pattern's error alone; the CEL rule judges well-formed values only.
        row(kind, json!({"communities": ["123456:1"]}), "spec.communities[0]", matches(COMMUNITY)),
        row(kind, json!({"communities": ["1:2", "1:2"]}), "spec.communities[1]", "Duplicate value: \"1:2\""),
        row(kind, json!({"communities": ["65536:1"]}), "spec.communities", "community halves must be at most 65535"),
        row(kind, json!({"largeCommunities": many_large}), "spec.largeCommunities", max_items(32)),
        row(kind, json!({"largeCommunities": ["1".repeat(33)]}), "spec.largeCommunities[0]", max_len(32)),
        row(kind, json!({"largeCommunities": ["1:1"]}), "spec.largeCommunities[0]", matches(LARGE)),
        row(kind, json!({"largeCommunities": ["12345678901:1:1"]}), "spec.largeCommunities[0]", matches(LARGE)),
        row(
            kind,
            json!({"largeCommunities": ["1:1:1", "1:1:1"]}),
            "spec.largeCommunities[1]",
            "Duplicate value: \"1:1:1\"",
        ),
        row(
            kind,
            json!({"largeCommunities": ["4294967296:1:1"]}),
            "spec.largeCommunities",
            "large community parts must be at most 4294967295",
        ),
    ]
}

/// Label selector rows (`nodeSelector`, `namespaceSelector`): the schema is Kubernetes'.
fn selector_rows(kind: Kind, field: &str, path_key: &'static str, path_op: &'static str) -> Vec<Row> {
    vec![
        row(kind, json!({field: {"matchExpressions": [{"operator": "Exists"}]}}), path_key, REQUIRED),
        row(kind, json!({field: {"matchExpressions": [{"key": "k"}]}}), path_op, REQUIRED),
    ]
}

fn rows() -> Vec<Row> {
    use Kind::*;
    let mut rows = vec![
        row(Conf, Value::Null, "spec", REQUIRED).undeserializable(),
        row(Peer, Value::Null, "spec", REQUIRED).undeserializable(),
        row(Eip, Value::Null, "spec", REQUIRED).undeserializable(),
        // BgpConf
        row(Conf, json!({}), "", "there is one BgpConf and it must be named 'default'").named("other"),
        row(Conf, json!({"as": 0}), "spec.as", ge(1)),
        row(Conf, json!({"as": 4294967295u32}), "spec.as", le(4294967294)),
        row(Conf, json!({"as": null}), "spec.as", REQUIRED).undeserializable(),
        row(Conf, json!({"routerId": "100.100.100.1001"}), "spec.routerId", max_len(15)),
        row(Conf, json!({"routerId": "2001:db8::1"}), "spec.routerId", "routerId must be a non-zero IPv4 address"),
        row(Conf, json!({"routerId": "0.0.0.0"}), "spec.routerId", "routerId must be a non-zero IPv4 address"),
        row(Conf, json!({"routerId": "10.0.0"}), "spec.routerId", "routerId must be a non-zero IPv4 address"),
        row(Conf, json!({"listenPort": -1}), "spec.listenPort", ge(0)),
        row(Conf, json!({"listenPort": 65536}), "spec.listenPort", le(65535)),
        row(Conf, json!({"gracefulRestart": {"restartTime": 0}}), "spec.gracefulRestart.restartTime", ge(1)),
        row(Conf, json!({"gracefulRestart": {"restartTime": 4096}}), "spec.gracefulRestart.restartTime", le(4095)),
        row(Conf, json!({"hostname": long(254)}), "spec.hostname", max_len(253)),
        // BgpConf spec.nodeProbe.
        row(
            Conf,
            json!({"nodeProbe": {"http": {"port": 10256}, "tcp": {"port": 22}}}),
            "spec.nodeProbe.tcp",
            "set at most one of http and tcp",
        ),
        row(Conf, json!({"nodeProbe": {"http": {"port": 0}}}), "spec.nodeProbe.http.port", ge(1)),
        row(Conf, json!({"nodeProbe": {"http": {"port": 65536}}}), "spec.nodeProbe.http.port", le(65535)),
        row(Conf, json!({"nodeProbe": {"http": {}}}), "spec.nodeProbe.http.port", REQUIRED).undeserializable(),
        row(Conf, json!({"nodeProbe": {"http": {"port": 1, "path": ""}}}), "spec.nodeProbe.http.path", min_len(1)),
        row(
            Conf,
            json!({"nodeProbe": {"http": {"port": 1, "path": format!("/{}", long(256))}}}),
            "spec.nodeProbe.http.path",
            max_len(256),
        ),
        row(
            Conf,
            json!({"nodeProbe": {"http": {"port": 1, "path": "healthz"}}}),
            "spec.nodeProbe.http.path",
            matches(PROBE_PATH),
        ),
        row(
            Conf,
            json!({"nodeProbe": {"http": {"port": 1, "path": "/a b"}}}),
            "spec.nodeProbe.http.path",
            matches(PROBE_PATH),
        ),
        row(Conf, json!({"nodeProbe": {"tcp": {}}}), "spec.nodeProbe.tcp.port", REQUIRED).undeserializable(),
        row(Conf, json!({"nodeProbe": {"tcp": {"port": 0}}}), "spec.nodeProbe.tcp.port", ge(1)),
        row(Conf, json!({"nodeProbe": {"tcp": {"port": 65536}}}), "spec.nodeProbe.tcp.port", le(65535)),
        row(Conf, json!({"nodeProbe": {"intervalMilliseconds": 9}}), "spec.nodeProbe.intervalMilliseconds", ge(10)),
        row(
            Conf,
            json!({"nodeProbe": {"intervalMilliseconds": 60001}}),
            "spec.nodeProbe.intervalMilliseconds",
            le(60000),
        ),
        row(Conf, json!({"nodeProbe": {"timeoutMilliseconds": 9}}), "spec.nodeProbe.timeoutMilliseconds", ge(10)),
        row(
            Conf,
            json!({"nodeProbe": {"timeoutMilliseconds": 60001}}),
            "spec.nodeProbe.timeoutMilliseconds",
            le(60000),
        ),
        row(Conf, json!({"nodeProbe": {"failures": 0}}), "spec.nodeProbe.failures", ge(1)),
        row(Conf, json!({"nodeProbe": {"failures": 101}}), "spec.nodeProbe.failures", le(100)),
        row(Conf, json!({"nodeProbe": {"successes": 0}}), "spec.nodeProbe.successes", ge(1)),
        row(Conf, json!({"nodeProbe": {"successes": 101}}), "spec.nodeProbe.successes", le(100)),
        row(
            Peer,
            json!({"mode": "central"}),
            "spec.mode",
            "Unsupported value: \"central\": supported values: \"Node\", \"Central\"",
        )
        .undeserializable(),
        // BgpPeer: the spec-level rules, reported at the field they are about.
        row(
            Peer,
            json!({"password": "x", "passwordSecretRef": {"name": "s", "namespace": "ns"}}),
            "spec.password",
            "set at most one of password and passwordSecretRef",
        ),
        row(
            Peer,
            json!({"keepaliveTime": "90s"}),
            "spec.keepaliveTime",
            "keepaliveTime must be above 0s and below holdTime (default 90s), or 0s when holdTime is 0s",
        ),
        row(
            Peer,
            json!({"holdTime": "0s", "keepaliveTime": "10s"}),
            "spec.keepaliveTime",
            "keepaliveTime must be above 0s and below holdTime (default 90s), or 0s when holdTime is 0s",
        ),
        row(
            Peer,
            json!({"keepaliveTime": "0s"}),
            "spec.keepaliveTime",
            "keepaliveTime must be above 0s and below holdTime (default 90s), or 0s when holdTime is 0s",
        ),
        // Addresses and AS numbers.
        row(Peer, json!({"peerAddress": long(46)}), "spec.peerAddress", max_len(45)),
        row(
            Peer,
            json!({"peerAddress": "192.0.2.256"}),
            "spec.peerAddress",
            "peerAddress must be an IPv4 or IPv6 address",
        ),
        row(
            Peer,
            json!({"peerAddress": "router.example"}),
            "spec.peerAddress",
            "peerAddress must be an IPv4 or IPv6 address",
        ),
        row(Peer, json!({"peerAddress": null}), "spec.peerAddress", REQUIRED).undeserializable(),
        row(Peer, json!({"peerAs": 0}), "spec.peerAs", ge(1)),
        row(Peer, json!({"peerAs": 4294967295u32}), "spec.peerAs", le(4294967294)),
        row(Peer, json!({"peerAs": null}), "spec.peerAs", REQUIRED).undeserializable(),
        row(Peer, json!({"localAs": 0}), "spec.localAs", ge(1)),
        row(Peer, json!({"localAs": 4294967295u32}), "spec.localAs", le(4294967294)),
        row(Peer, json!({"port": 0}), "spec.port", ge(1)),
        row(Peer, json!({"port": 65536}), "spec.port", le(65535)),
        row(Peer, json!({"sourceAddress": long(46)}), "spec.sourceAddress", max_len(45)),
        row(
            Peer,
            json!({"sourceAddress": "nope"}),
            "spec.sourceAddress",
            "sourceAddress must be an IPv4 or IPv6 address",
        ),
        // Timers.
        row(Peer, json!({"holdTime": ""}), "spec.holdTime", min_len(2)),
        row(Peer, json!({"holdTime": "1".repeat(21)}), "spec.holdTime", max_len(20)),
        row(Peer, json!({"holdTime": "90"}), "spec.holdTime", matches(DURATION)),
        row(Peer, json!({"holdTime": "1.5m"}), "spec.holdTime", matches(DURATION)),
        row(Peer, json!({"holdTime": "30s1m"}), "spec.holdTime", matches(DURATION)),
        row(Peer, json!({"holdTime": "2s"}), "spec.holdTime", "holdTime must be 0s or between 3s and 65535s"),
        row(Peer, json!({"holdTime": "1s"}), "spec.holdTime", "holdTime must be 0s or between 3s and 65535s"),
        row(Peer, json!({"holdTime": "65536s"}), "spec.holdTime", "holdTime must be 0s or between 3s and 65535s"),
        row(Peer, json!({"keepaliveTime": ""}), "spec.keepaliveTime", min_len(2)),
        row(Peer, json!({"keepaliveTime": "1".repeat(21)}), "spec.keepaliveTime", max_len(20)),
        row(Peer, json!({"keepaliveTime": "30"}), "spec.keepaliveTime", matches(DURATION)),
        row(
            Peer,
            json!({"holdTime": "65535s", "keepaliveTime": "21846s"}),
            "spec.keepaliveTime",
            "keepaliveTime must be at most 21845s",
        ),
        // Session options.
        row(Peer, json!({"vrf": ""}), "spec.vrf", min_len(1)),
        row(Peer, json!({"vrf": long(16)}), "spec.vrf", max_len(15)),
        row(Peer, json!({"vrf": "vrf/a"}), "spec.vrf", matches(IFNAME)),
        row(Peer, json!({"vrf": "vrf a"}), "spec.vrf", matches(IFNAME)),
        row(Peer, json!({"vrf": "vrf:a"}), "spec.vrf", matches(IFNAME)),
        row(Peer, json!({"vrf": ".."}), "spec.vrf", matches(IFNAME)),
        row(Peer, json!({"vrf": "vrf-ä"}), "spec.vrf", matches(IFNAME)),
        row(
            Peer,
            json!({"vrf": "vrf-a", "bfd": {}}),
            "spec.bfd",
            "BFD is not supported yet for a peer in a VRF (spec.vrf)",
        ),
        row(
            Peer,
            json!({"vrf": "vrf-a", "bfd": {"enabled": true}}),
            "spec.bfd",
            "BFD is not supported yet for a peer in a VRF (spec.vrf)",
        ),
        row(Peer, json!({"ebgpMultihop": 0}), "spec.ebgpMultihop", ge(1)),
        row(Peer, json!({"ebgpMultihop": 256}), "spec.ebgpMultihop", le(255)).undeserializable(),
        row(Peer, json!({"password": ""}), "spec.password", min_len(1)),
        row(Peer, json!({"password": long(81)}), "spec.password", max_len(80)),
        row(
            Peer,
            json!({"passwordSecretRef": {"name": "", "namespace": "ns"}}),
            "spec.passwordSecretRef.name",
            min_len(1),
        ),
        row(
            Peer,
            json!({"passwordSecretRef": {"name": long(254), "namespace": "ns"}}),
            "spec.passwordSecretRef.name",
            max_len(253),
        ),
        row(
            Peer,
            json!({"passwordSecretRef": {"name": "s", "namespace": ""}}),
            "spec.passwordSecretRef.namespace",
            min_len(1),
        ),
        row(
            Peer,
            json!({"passwordSecretRef": {"name": "s", "namespace": long(64)}}),
            "spec.passwordSecretRef.namespace",
            max_len(63),
        ),
        row(
            Peer,
            json!({"passwordSecretRef": {"name": "s", "namespace": "n", "key": ""}}),
            "spec.passwordSecretRef.key",
            min_len(1),
        ),
        row(
            Peer,
            json!({"passwordSecretRef": {"name": "s", "namespace": "n", "key": long(254)}}),
            "spec.passwordSecretRef.key",
            max_len(253),
        ),
        row(Peer, json!({"passwordSecretRef": {"namespace": "ns"}}), "spec.passwordSecretRef.name", REQUIRED)
            .undeserializable(),
        row(Peer, json!({"passwordSecretRef": {"name": "s"}}), "spec.passwordSecretRef.namespace", REQUIRED)
            .undeserializable(),
        row(Peer, json!({"families": []}), "spec.families", "should have at least 1 items"),
        row(Peer, json!({"families": ["ipv4-unicast", "ipv6-unicast", "ipv4-unicast"]}), "spec.families", max_items(2)),
        row(
            Peer,
            json!({"families": ["ipv4-unicast", "ipv4-unicast"]}),
            "spec.families[1]",
            "Duplicate value: \"ipv4-unicast\"",
        ),
        row(
            Peer,
            json!({"families": ["ipv4-multicast"]}),
            "spec.families[0]",
            "Unsupported value: \"ipv4-multicast\": supported values: \"ipv4-unicast\", \"ipv6-unicast\"",
        )
        .undeserializable(),
        row(Peer, json!({"maxPrefixes": {"limit": 0}}), "spec.maxPrefixes.limit", ge(1)),
        row(
            Peer,
            json!({"maxPrefixes": {"limit": 10, "restartTime": "5"}}),
            "spec.maxPrefixes.restartTime",
            matches(DURATION),
        ),
        row(Peer, json!({"maxPrefixes": {"limit": 10, "restartTime": ""}}), "spec.maxPrefixes.restartTime", min_len(2)),
        row(
            Peer,
            json!({"maxPrefixes": {"limit": 10, "restartTime": "1".repeat(21)}}),
            "spec.maxPrefixes.restartTime",
            max_len(20),
        ),
        row(Peer, json!({"maxPrefixes": {"action": "warn"}}), "spec.maxPrefixes.limit", REQUIRED).undeserializable(),
        row(
            Peer,
            json!({"maxPrefixes": {"limit": 10, "action": "drop"}}),
            "spec.maxPrefixes.action",
            "Unsupported value: \"drop\": supported values: \"warn\", \"teardown\"",
        )
        .undeserializable(),
        // BFD.
        row(Peer, json!({"bfd": {"minTxInterval": ""}}), "spec.bfd.minTxInterval", min_len(2)),
        row(Peer, json!({"bfd": {"minTxInterval": "123456789s"}}), "spec.bfd.minTxInterval", max_len(8)),
        row(Peer, json!({"bfd": {"minTxInterval": "300"}}), "spec.bfd.minTxInterval", matches(INTERVAL)),
        row(
            Peer,
            json!({"bfd": {"minTxInterval": "5ms"}}),
            "spec.bfd.minTxInterval",
            "minTxInterval must be between 10ms and 60s",
        ),
        row(
            Peer,
            json!({"bfd": {"minTxInterval": "61s"}}),
            "spec.bfd.minTxInterval",
            "minTxInterval must be between 10ms and 60s",
        ),
        row(Peer, json!({"bfd": {"minRxInterval": ""}}), "spec.bfd.minRxInterval", min_len(2)),
        row(Peer, json!({"bfd": {"minRxInterval": "123456789s"}}), "spec.bfd.minRxInterval", max_len(8)),
        row(Peer, json!({"bfd": {"minRxInterval": "1m"}}), "spec.bfd.minRxInterval", matches(INTERVAL)),
        row(
            Peer,
            json!({"bfd": {"minRxInterval": "0ms"}}),
            "spec.bfd.minRxInterval",
            "minRxInterval must be between 10ms and 60s",
        ),
        row(Peer, json!({"bfd": {"multiplier": 0}}), "spec.bfd.multiplier", ge(1)),
        row(Peer, json!({"bfd": {"multiplier": 256}}), "spec.bfd.multiplier", le(255)).undeserializable(),
        // Eip: the spec-level rules.
        row(Eip, json!({"address": null}), "spec", "set spec.address or spec.addresses"),
        row(Eip, json!({"address": null, "addresses": []}), "spec", "set spec.address or spec.addresses"),
        row(
            Eip,
            json!({"address": "10.0.0.0/24", "addresses": ["10.0.0.7"]}),
            "spec.address",
            "spec.address overlaps an entry of spec.addresses",
        ),
        row(
            Eip,
            json!({"address": "10.0.0.1", "addresses": ["10.0.0.1"]}),
            "spec.address",
            "spec.address overlaps an entry of spec.addresses",
        ),
        // Entries.
        row(Eip, json!({"address": ""}), "spec.address", min_len(1)),
        row(Eip, json!({"address": long(81)}), "spec.address", max_len(80)),
        row(
            Eip,
            json!({"address": "203.0.113.1/24"}),
            "spec.address",
            "address must be a CIDR with no host bits set, an IP, or a range first-last of one family",
        ),
        row(Eip, json!({"address": "10.0.0.20-10.0.0.10"}), "spec.address", "address range is reversed (first > last)"),
        row(
            Eip,
            json!({"address": null, "addresses": (0..17).map(|i| format!("10.0.{i}.0/24")).collect::<Vec<_>>()}),
            "spec.addresses",
            max_items(16),
        ),
        row(Eip, json!({"address": null, "addresses": [""]}), "spec.addresses[0]", min_len(1)),
        row(Eip, json!({"address": null, "addresses": ["10.0.0.1", long(81)]}), "spec.addresses[1]", max_len(80)),
        row(
            Eip,
            json!({"address": null, "addresses": ["10.0.0.1", "10.0.0.1"]}),
            "spec.addresses[1]",
            "Duplicate value: \"10.0.0.1\"",
        ),
        row(
            Eip,
            json!({"address": null, "addresses": ["pool"]}),
            "spec.addresses",
            "each entry must be a CIDR with no host bits set, an IP, or a range first-last of one family",
        ),
        row(
            Eip,
            json!({"address": null, "addresses": ["10.0.0.20-10.0.0.10"]}),
            "spec.addresses",
            "an address range is reversed (first > last)",
        ),
        row(
            Eip,
            json!({"address": null, "addresses": ["10.0.0.0/24", "10.0.0.128/25"]}),
            "spec.addresses",
            "entries of spec.addresses overlap",
        ),
        // Pool options.
        row(
            Eip,
            json!({"namespaces": (0..257).map(|i| format!("ns{i}")).collect::<Vec<_>>()}),
            "spec.namespaces",
            max_items(256),
        ),
        row(Eip, json!({"namespaces": [""]}), "spec.namespaces[0]", min_len(1)),
        row(Eip, json!({"namespaces": [long(64)]}), "spec.namespaces[0]", max_len(63)),
        row(Eip, json!({"namespaces": ["a", "a"]}), "spec.namespaces[1]", "Duplicate value: \"a\""),
        row(Eip, json!({"asPathPrepend": 17}), "spec.asPathPrepend", le(16)),
        row(Eip, json!({"asPathPrepend": -1}), "spec.asPathPrepend", ge(0)).undeserializable(),
        row(Eip, json!({"aggregationLength": 33}), "spec.aggregationLength", le(32)),
        row(Eip, json!({"aggregationLength": -1}), "spec.aggregationLength", ge(0)).undeserializable(),
        row(Eip, json!({"aggregationLengthV6": 129}), "spec.aggregationLengthV6", le(128)),
        row(Eip, json!({"aggregationLengthV6": -1}), "spec.aggregationLengthV6", ge(0)).undeserializable(),
        row(Eip, json!({"localPref": -1}), "spec.localPref", ge(0)).undeserializable(),
        row(Eip, json!({"med": -1}), "spec.med", ge(0)).undeserializable(),
        row(
            Eip,
            json!({"weighting": "random"}),
            "spec.weighting",
            "Unsupported value: \"random\": supported values: \"endpoints\"",
        )
        .undeserializable(),
        row(Eip, json!({"allowFirstLastIPs": "yes"}), "spec.allowFirstLastIPs", "must be of type boolean")
            .undeserializable(),
        row(
            Eip,
            json!({"allowSharingAcrossNamespaces": 1}),
            "spec.allowSharingAcrossNamespaces",
            "must be of type boolean",
        )
        .undeserializable(),
        row(
            Eip,
            json!({"linkBandwidth": "both"}),
            "spec.linkBandwidth",
            "Unsupported value: \"both\": supported values: \"transitive\", \"non-transitive\"",
        )
        .undeserializable(),
    ];
    rows.extend(community_rows(Kind::Peer));
    rows.extend(community_rows(Kind::Eip));
    rows.extend(community_rows(Kind::Adv));
    rows.extend(advertisement_rows());
    rows.extend(selector_rows(
        Kind::Peer,
        "nodeSelector",
        "spec.nodeSelector.matchExpressions[0].key",
        "spec.nodeSelector.matchExpressions[0].operator",
    ));
    rows.extend(selector_rows(
        Kind::Eip,
        "namespaceSelector",
        "spec.namespaceSelector.matchExpressions[0].key",
        "spec.namespaceSelector.matchExpressions[0].operator",
    ));
    rows
}

/// BgpAdvertisement: name lists, selectors and the attribute bounds.
fn advertisement_rows() -> Vec<Row> {
    use Kind::Adv;
    let many: Vec<String> = (0..65).map(|i| format!("p{i}")).collect();
    let mut rows = vec![
        row(Adv, Value::Null, "spec", REQUIRED).undeserializable(),
        row(Adv, json!({"asPathPrepend": 17}), "spec.asPathPrepend", le(16)),
        row(Adv, json!({"asPathPrepend": -1}), "spec.asPathPrepend", ge(0)).undeserializable(),
        row(Adv, json!({"aggregationLength": 33}), "spec.aggregationLength", le(32)),
        row(Adv, json!({"aggregationLength": -1}), "spec.aggregationLength", ge(0)).undeserializable(),
        row(Adv, json!({"aggregationLengthV6": 129}), "spec.aggregationLengthV6", le(128)),
        row(Adv, json!({"aggregationLengthV6": -1}), "spec.aggregationLengthV6", ge(0)).undeserializable(),
        row(Adv, json!({"localPref": -1}), "spec.localPref", ge(0)).undeserializable(),
        row(Adv, json!({"med": -1}), "spec.med", ge(0)).undeserializable(),
    ];
    for (field, path, item, second) in [
        ("eips", "spec.eips", "spec.eips[0]", "spec.eips[1]"),
        ("peers", "spec.peers", "spec.peers[0]", "spec.peers[1]"),
    ] {
        rows.push(row(Adv, json!({field: many.clone()}), path, max_items(64)));
        rows.push(row(Adv, json!({field: [""]}), item, min_len(1)));
        rows.push(row(Adv, json!({field: [long(254)]}), item, max_len(253)));
        rows.push(row(Adv, json!({field: ["a", "a"]}), second, "Duplicate value: \"a\""));
    }
    for (field, key, op) in [
        ("eipSelector", "spec.eipSelector.matchExpressions[0].key", "spec.eipSelector.matchExpressions[0].operator"),
        (
            "serviceSelector",
            "spec.serviceSelector.matchExpressions[0].key",
            "spec.serviceSelector.matchExpressions[0].operator",
        ),
        ("peerSelector", "spec.peerSelector.matchExpressions[0].key", "spec.peerSelector.matchExpressions[0].operator"),
        ("nodeSelector", "spec.nodeSelector.matchExpressions[0].key", "spec.nodeSelector.matchExpressions[0].operator"),
    ] {
        rows.extend(selector_rows(Adv, field, key, op));
    }
    rows
}

#[test]
fn each_row_is_rejected_by_both_at_the_same_path_with_the_same_message() {
    let mut failures = vec![];
    for r in rows() {
        let v = object(r.kind, r.name, r.changes.clone());
        let want = Rejection::new(r.path, r.message.clone());
        let admission: BTreeSet<Rejection> = match common::admit(&r.kind.crd(), &v) {
            Ok(()) => {
                failures.push(format!("{v}: admission accepts it"));
                continue;
            }
            Err(e) => e.into_iter().collect(),
        };
        if !admission.contains(&want) {
            failures.push(format!("{v}: admission says {admission:?}, not {want:?}"));
            continue;
        }
        match (r.expect, parse(r.kind, &v)) {
            (Expect::Same, Parsed::Rejected(rust)) if rust == admission => {}
            (Expect::Undeserializable, Parsed::Undeserializable(path)) if r.path.starts_with(&path) => {}
            (_, other) => failures.push(format!("{v}: admission says {admission:?}, the parse layer {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{} rows disagree:\n{}", failures.len(), failures.join("\n"));
}

/// A constraint of the generated schema: where it applies (`[*]` for any list index) and
/// the message that tells it.
fn constraints(schema: &Value, path: &str, out: &mut Vec<(String, String)>) {
    for rule in schema["x-kubernetes-validations"].as_array().into_iter().flatten() {
        let at = match rule["fieldPath"].as_str() {
            Some(f) => format!("{path}{f}"),
            None => path.to_string(),
        };
        out.push((at, rule["message"].as_str().unwrap().to_string()));
    }
    let n = |k: &str| schema[k].as_f64().map(|v| v as i64);
    if let Some(v) = n("minimum") {
        out.push((path.into(), ge(v)));
    }
    if let Some(v) = n("maximum") {
        out.push((path.into(), le(v)));
    }
    if let Some(v) = n("minLength") {
        out.push((path.into(), min_len(v as usize)));
    }
    if let Some(v) = n("maxLength") {
        out.push((path.into(), max_len(v as usize)));
    }
    if let Some(v) = n("minItems") {
        out.push((path.into(), format!("should have at least {v} items")));
    }
    if let Some(v) = n("maxItems") {
        out.push((path.into(), max_items(v as usize)));
    }
    if let Some(p) = schema["pattern"].as_str() {
        out.push((path.into(), matches(p)));
    }
    if schema["enum"].is_array() {
        out.push((path.into(), "Unsupported value".into()));
    }
    if schema["x-kubernetes-list-type"] == "set" {
        out.push((format!("{path}[*]"), "Duplicate value".into()));
    }
    for r in schema["required"].as_array().into_iter().flatten() {
        out.push((common::join(path, r.as_str().unwrap()), REQUIRED.into()));
    }
    for (k, s) in schema["properties"].as_object().into_iter().flatten() {
        if path.is_empty() && (k == "status" || k == "metadata") {
            continue; // the parse layer reads specs; status is written by Mooring itself
        }
        constraints(s, &common::join(path, k), out);
    }
    if schema["items"].is_object() {
        constraints(&schema["items"], &format!("{path}[*]"), out);
    }
}

/// `spec.addresses[3]` as `spec.addresses[*]`.
fn template(path: &str) -> String {
    regex::Regex::new(r"\[[0-9]+\]").unwrap().replace_all(path, "[*]").into_owned()
}

#[test]
fn every_rule_has_a_row() {
    let rows = rows();
    let mut missing = vec![];
    for kind in [Kind::Conf, Kind::Peer, Kind::Eip, Kind::Adv] {
        let mut all = vec![];
        constraints(&common::schema_of(&kind.crd()), "", &mut all);
        for (path, message) in all {
            let covered = rows.iter().any(|r| {
                r.kind == kind
                    && template(r.path) == path
                    && (r.message == message || (message.ends_with("value") && r.message.starts_with(&message)))
            });
            if !covered {
                missing.push(format!("{kind:?} {path}: {message}"));
            }
        }
    }
    assert!(missing.is_empty(), "rules and bounds no row breaks:\n{}", missing.join("\n"));
}

/// Valid objects: admission and the parse layer both accept them.
#[test]
fn valid_objects_pass_both() {
    let peers = [
        json!({}),
        json!({"peerAddress": "2001:db8::1", "sourceAddress": "2001:db8::2"}),
        json!({"holdTime": "0s"}),
        json!({"holdTime": "0s", "keepaliveTime": "0s"}),
        json!({"holdTime": "3s", "keepaliveTime": "1s"}),
        json!({"holdTime": "3m", "keepaliveTime": "1m"}),
        json!({"holdTime": "1h"}),
        json!({"holdTime": "1m30s", "keepaliveTime": "30s"}),
        json!({"holdTime": "65535s", "keepaliveTime": "21845s"}),
        json!({
            "communities": ["65535:65535", "0:0", "no-export", "no-advertise", "no-peer", "graceful-shutdown", "blackhole",
                            "accept-own", "llgr-stale", "no-llgr", "no-export-subconfed", "00001:1"],
            "largeCommunities": ["4294967295:0:4294967295"],
            "passwordSecretRef": {"name": "s", "namespace": "ns"},
            "ebgpMultihop": 255, "localAs": 4200000000u32, "port": 1179, "passive": true,
            "families": ["ipv6-unicast"], "maxPrefixes": {"limit": 10},
            "nodeSelector": {"matchLabels": {"rack": "a"}, "matchExpressions": [{"key": "k", "operator": "Exists"}]},
            "bfd": {"minTxInterval": "10ms", "minRxInterval": "60s", "multiplier": 255}
        }),
        json!({"bfd": {"enabled": false}}),
        json!({"vrf": "vrf-a", "sourceAddress": "192.0.2.2", "passive": true, "password": "pw"}),
        json!({"vrf": "a".repeat(15), "bfd": {"enabled": false}}),
        json!({"vrf": "eth0.100"}),
        json!({"vrf": "_x-1"}),
        json!({"port": 65535, "peerAs": 4294967294u32, "localAs": 1, "ebgpMultihop": 1, "password": "a".repeat(80)}),
        json!({"port": 1, "peerAs": 1, "peerAddress": "2001:db8:ffff:ffff:ffff:ffff:255.255.255.255"}),
        json!({"bfd": {"minTxInterval": "60000ms", "minRxInterval": "1s", "multiplier": 1}}),
        json!({"mode": "Central", "nodeSelector": {"matchLabels": {"rack": "a"}}}),
        json!({"mode": "Node"}),
    ];
    let eips = [
        json!({"address": "203.0.113.7"}),
        json!({"address": "203.0.113.10-203.0.113.20"}),
        json!({"address": "203.0.113.10-203.0.113.10"}),
        json!({"address": "0.0.0.0/0"}),
        json!({"address": "2001:db8::/64"}),
        json!({"address": "2001:db8::10-2001:db8::1f"}),
        json!({
            "address": "10.0.0.0/25",
            "addresses": ["10.0.0.128/26", "10.0.0.192-10.0.0.200", "10.0.0.201", "2001:db8::/64", "2001:db8:1::1",
                          "2001:db8:2::1-2001:db8:2::9"],
            "asPathPrepend": 16, "aggregationLength": 26, "aggregationLengthV6": 64, "localPref": 100, "med": 0,
            "namespaces": ["a", "b"], "priority": -5, "disable": true, "weighting": "endpoints",
            "linkBandwidth": "non-transitive", "communities": ["no-export"]
        }),
        json!({"address": "0.0.0.1", "addresses": ["::1"]}),
        json!({"address": "203.0.113.0/24", "aggregationLength": 32, "aggregationLengthV6": 128, "asPathPrepend": 0}),
        json!({"address": "203.0.113.0/24", "aggregationLength": 24}),
        json!({"address": "203.0.113.0/24", "allowFirstLastIPs": true, "allowSharingAcrossNamespaces": true}),
        json!({"address": "203.0.113.0/24", "allowFirstLastIPs": false, "allowSharingAcrossNamespaces": false}),
    ];
    let confs = [
        json!({"as": 4294967294u32, "routerId": "10.0.0.1", "listenPort": 0}),
        json!({"as": 1, "listenPort": 65535, "gracefulRestart": {"enabled": true, "restartTime": 4095}, "hostname": "n1"}),
        json!({"as": 1, "gracefulRestart": {"restartTime": 1}, "hostname": "a".repeat(253), "routerId": "255.255.255.255"}),
        json!({"as": 1, "nodeProbe": {}}),
        json!({"as": 1, "nodeProbe": {"http": {"port": 65535, "path": format!("/{}", "~".repeat(255))},
               "intervalMilliseconds": 10, "timeoutMilliseconds": 60000, "failures": 1, "successes": 100}}),
        json!({"as": 1, "nodeProbe": {"tcp": {"port": 1}, "intervalMilliseconds": 60000, "timeoutMilliseconds": 10,
               "failures": 100, "successes": 1}}),
    ];
    let advertisements = [
        json!({}),
        json!({
            "eips": ["public"], "eipSelector": {"matchLabels": {"tier": "public"}},
            "serviceSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
            "peers": ["edge-a", "edge-b"], "peerSelector": {"matchLabels": {"role": "edge"}},
            "nodeSelector": {"matchLabels": {"rack": "r1"}},
            "communities": ["64512:100", "no-export"], "largeCommunities": ["64512:1:2"],
            "localPref": 200, "med": 10, "asPathPrepend": 16, "aggregationLength": 24, "aggregationLengthV6": 64
        }),
        json!({"aggregationLength": 0, "aggregationLengthV6": 128, "asPathPrepend": 0}),
    ];
    let objects = peers
        .into_iter()
        .map(|p| (Kind::Peer, p))
        .chain(advertisements.into_iter().map(|a| (Kind::Adv, a)))
        .chain(eips.into_iter().map(|e| (Kind::Eip, e)))
        .chain(confs.into_iter().map(|c| (Kind::Conf, c)));
    for (kind, changes) in objects {
        let v = object(kind, "default", changes);
        common::admit(&kind.crd(), &v).unwrap_or_else(|e| panic!("admission rejects {v}: {e:?}"));
        assert!(matches!(parse(kind, &v), Parsed::Ok), "{v}: {:?}", parse(kind, &v));
    }
}

/// More broken Eip entries and overlapping pairs: both reject, with the same errors.
#[test]
fn eip_entries_and_overlaps_agree() {
    let mut objects = vec![];
    for a in [
        "203.0.113.0/33",
        "203.0.113.256",
        "203.0.113.0/",
        "203.0.113.0/024",
        "2001:db8::1/64",
        "2001:db8::/129",
        "10.0.0.1-2001:db8::1",
        "10.0.0.1-10.0.0.2-10.0.0.3",
        "10.0.0.1 - 10.0.0.2",
        "fe80::1%eth0",
        "::ffff:10.0.0.1",
        "010.0.0.1",
        "10.0.1.0-10.0.0.255",
    ] {
        objects.push(json!({"address": a}));
        objects.push(json!({"address": null, "addresses": [a]}));
    }
    for pair in [
        ["10.0.0.0/24", "10.0.0.7"],
        ["10.0.0.0/24", "10.0.0.250-10.0.1.5"],
        ["10.0.0.250-10.0.1.5", "10.0.1.0/24"],
        ["10.0.0.1-10.0.0.10", "10.0.0.10-10.0.0.20"],
        ["10.0.0.1-10.0.0.10", "10.0.0.5"],
        ["10.0.0.0/16", "10.0.255.255"],
        ["10.0.0.1", "10.0.0.1/32"],
        ["2001:db8::/64", "2001:db8::/96"],
        ["2001:db8::/64", "2001:db8::5"],
        ["2001:db8::5", "2001:db8:0::5"],
        ["2001:db8::/120", "2001:db8::f0-2001:db8::1:0"],
    ] {
        objects.push(json!({"address": null, "addresses": pair}));
        objects.push(json!({"address": pair[0], "addresses": [pair[1]]}));
    }
    for changes in objects {
        let v = object(Kind::Eip, "pool", changes);
        let admission: BTreeSet<Rejection> =
            common::admit(&Eip::crd(), &v).expect_err(&format!("admission accepts {v}")).into_iter().collect();
        match parse(Kind::Eip, &v) {
            Parsed::Rejected(rust) => assert_eq!(rust, admission, "{v}"),
            other => panic!("{v}: {other:?}"),
        }
    }
}

/// The rules the README lists as status-time: admission lets them through, the parse layer
/// (and so standalone mode and the controller, which reports them in status) rejects them.
#[test]
fn status_time_rules() {
    let at = |path: &'static str, m: &'static str| Some((path, m));
    for (kind, changes, want) in [
        (
            Kind::Eip,
            json!({"address": "2001:db8::20-2001:db8::10"}),
            at("spec.address", "address range is reversed (first > last)"),
        ),
        (
            Kind::Eip,
            json!({"address": null, "addresses": ["2001:db8::1-2001:db8::10", "2001:db8::5"]}),
            at("spec.addresses", "entries of spec.addresses overlap"),
        ),
        (
            Kind::Eip,
            json!({"address": null, "addresses": ["2001:db8::1-2001:db8::10", "2001:db8::8-2001:db8::20"]}),
            at("spec.addresses", "entries of spec.addresses overlap"),
        ),
        (
            Kind::Eip,
            json!({"address": null, "addresses": ["2001:db8::1-2001:db8::ffff", "2001:db8::100/120"]}),
            at("spec.addresses", "entries of spec.addresses overlap"),
        ),
        (
            Kind::Eip,
            json!({"address": "10.0.0.0/24", "aggregationLength": 16}),
            at(
                "spec.aggregationLength",
                "shorter than the prefix of an entry: announcements would cover addresses outside the pool",
            ),
        ),
        (
            Kind::Peer,
            json!({"peerAddress": "2001:db8::1", "sourceAddress": "10.0.0.1"}),
            at("spec.sourceAddress", "must be of the same address family as peerAddress"),
        ),
    ] {
        let v = object(kind, "x", changes);
        common::admit(&kind.crd(), &v)
            .unwrap_or_else(|e| panic!("{v}: admission now rejects it, update the README: {e:?}"));
        let (path, message) = want.unwrap();
        match parse(kind, &v) {
            Parsed::Rejected(rust) => assert_eq!(rust, BTreeSet::from([Rejection::new(path, message)]), "{v}"),
            other => panic!("{v}: {other:?}"),
        }
    }
}
