//! The example objects in crds/examples/ deserialize into our types, pass `validate()`, and
//! pass (offline) admission against the generated CRDs.

mod common;

use kube::CustomResourceExt;
use mooring_crds::{BgpConf, BgpPeer, Eip};
use serde::de::DeserializeOwned;

fn example<T: DeserializeOwned>(name: &str) -> (T, serde_json::Value) {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let obj: T = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let json: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    (obj, json)
}

#[test]
fn bgpconf_example() {
    let (c, json): (BgpConf, _) = example("bgpconf.yaml");
    c.spec.validate().unwrap();
    assert_eq!(c.spec.as_number, 64512);
    common::admit(&BgpConf::crd(), &json).unwrap();
}

#[test]
fn bgppeer_examples() {
    for name in ["bgppeer-tor-a.yaml", "bgppeer-spine-v6.yaml"] {
        let (p, json): (BgpPeer, _) = example(name);
        p.spec.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        common::admit(&BgpPeer::crd(), &json).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    let (p, _): (BgpPeer, _) = example("bgppeer-spine-v6.yaml");
    assert_eq!(p.spec.port, 179, "default port");
    assert_eq!(p.spec.families.len(), 2, "default families");
    assert_eq!(p.spec.hold_time().unwrap().as_secs(), 180);
    assert_eq!(p.spec.keepalive_time().unwrap().as_secs(), 60);
    assert_eq!(p.spec.max_prefixes.unwrap().action, mooring_crds::MaxPrefixAction::Warn);
}

#[test]
fn eip_examples() {
    let (e, json): (Eip, _) = example("eip-public.yaml");
    e.spec.validate().unwrap();
    common::admit(&Eip::crd(), &json).unwrap();
    assert_eq!(e.spec.size(), Some(32 + 11 + 1));
    assert!(e.spec.auto_assign, "default autoAssign");

    let (e, json): (Eip, _) = example("eip-v6-internal.yaml");
    e.spec.validate().unwrap();
    common::admit(&Eip::crd(), &json).unwrap();
    assert_eq!(e.spec.size(), Some(256 + 16));
    assert!(!e.spec.auto_assign);
}
