//! The example objects in crds/examples/ deserialize into our types, parse into settings,
//! and pass (offline) admission against the generated CRDs.

mod common;

use kube::CustomResourceExt;
use mooring_crds::{BgpConf, BgpPeer, Eip, PeerSettings, PoolSettings, SpeakerSettings};
use serde::de::DeserializeOwned;

fn example<T: DeserializeOwned>(name: &str) -> (T, serde_json::Value) {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let obj: T = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let json: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    (obj, json)
}

fn size(p: &PoolSettings) -> u128 {
    p.ranges.iter().map(|r| r.size()).sum()
}

#[test]
fn bgpconf_example() {
    let (c, json): (BgpConf, _) = example("bgpconf.yaml");
    let s = SpeakerSettings::try_from(&c).unwrap();
    assert_eq!(s.local_as, 64512);
    common::admit(&BgpConf::crd(), &json).unwrap();
}

#[test]
fn bgppeer_examples() {
    for name in ["bgppeer-tor-a.yaml", "bgppeer-spine-v6.yaml"] {
        let (p, json): (BgpPeer, _) = example(name);
        PeerSettings::try_from(&p.spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        common::admit(&BgpPeer::crd(), &json).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    let (p, _): (BgpPeer, _) = example("bgppeer-spine-v6.yaml");
    let s = PeerSettings::try_from(&p.spec).unwrap().config;
    assert_eq!(s.port, 179, "default port");
    assert_eq!(s.families.len(), 2, "default families");
    assert_eq!((s.hold_time, s.keepalive), (180, None), "keepalive: a third of the negotiated hold time");
    assert_eq!(s.max_prefixes.map(|m| m.teardown), Some(false), "action: warn");
    assert_eq!((s.local_as, s.ebgp_multihop), (Some(4200000100), Some(2)));
}

#[test]
fn eip_examples() {
    let (e, json): (Eip, _) = example("eip-public.yaml");
    let s = PoolSettings::try_from(&e.spec).unwrap();
    common::admit(&Eip::crd(), &json).unwrap();
    assert_eq!(size(&s), 32 + 11 + 1);
    assert!(s.auto_assign, "default autoAssign");

    let (e, json): (Eip, _) = example("eip-v6-internal.yaml");
    let s = PoolSettings::try_from(&e.spec).unwrap();
    common::admit(&Eip::crd(), &json).unwrap();
    assert_eq!(size(&s), 256 + 16);
    assert!(!s.auto_assign);
}
