//! The last good version of every custom resource: an object that fails
//! its checks is replaced by the last version of it that passed, so a bad
//! edit changes nothing (its VIPs, sessions and routes stay) and is
//! reported instead. An object is forgotten only when it is removed.
//! Pure; the node loop and the controller hold one each.

use std::collections::BTreeMap;

use kube::Resource;
use mooring_crds::{
    AdvertisementSettings, BgpAdvertisement, BgpConf, BgpPeer, Eip, FieldErrors, PeerSettings, PoolSettings,
    SpeakerSettings,
};

use super::plan::{Objects, Problem};

/// A custom resource with checks.
pub trait Checked: Resource<DynamicType = ()> + Clone {
    /// The field errors of this object, if it has any.
    fn check(&self) -> Result<(), FieldErrors>;
}

// The checks are the parses of `mooring_crds::settings`: an object passes when it parses.
impl Checked for BgpConf {
    fn check(&self) -> Result<(), FieldErrors> {
        SpeakerSettings::try_from(self).map(drop)
    }
}

impl Checked for BgpPeer {
    fn check(&self) -> Result<(), FieldErrors> {
        PeerSettings::try_from(self).map(drop)
    }
}

impl Checked for Eip {
    fn check(&self) -> Result<(), FieldErrors> {
        PoolSettings::try_from(self).map(drop)
    }
}

impl Checked for BgpAdvertisement {
    fn check(&self) -> Result<(), FieldErrors> {
        AdvertisementSettings::try_from(self).map(drop)
    }
}

/// (name, uid): a deleted and recreated object is a new object.
type Key = (String, Option<String>);

fn key<K: Resource>(o: &K) -> Key {
    (o.meta().name.clone().unwrap_or_default(), o.meta().uid.clone())
}

/// Last good versions of one kind.
#[derive(Debug, Clone)]
struct Kind<K> {
    good: BTreeMap<Key, K>,
}

impl<K> Default for Kind<K> {
    fn default() -> Self {
        Kind { good: BTreeMap::new() }
    }
}

/// An object whose current version failed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// `BgpConf`, `BgpPeer`, `Eip` or `BgpAdvertisement`.
    pub kind: String,
    pub name: String,
    pub errors: FieldErrors,
    /// Whether a last good version stays in force (else the object is left out).
    pub kept: bool,
}

impl Rejected {
    /// One problem per field error.
    pub fn problems(&self) -> impl Iterator<Item = Problem> + '_ {
        let what = if self.kept { "the last good version stays in force" } else { "ignored" };
        self.errors.errors().iter().map(move |e| Problem {
            object: format!("{}/{}", self.kind, self.name),
            field: e.path.clone(),
            message: match &e.detail {
                Some(detail) => format!("{} ({detail}; {what})", e.message),
                None => format!("{} ({what})", e.message),
            },
        })
    }

    /// The errors as one line (`spec.holdTime: ...; spec.port: ...`).
    pub fn message(&self) -> String {
        self.errors.to_string()
    }
}

impl<K: Checked> Kind<K> {
    fn restore(&mut self, objects: Vec<K>) {
        self.good = objects.into_iter().filter(|o| o.check().is_ok()).map(|o| (key(&o), o)).collect();
    }

    fn filter(&mut self, objects: &mut Vec<K>, rejected: &mut Vec<Rejected>) {
        let mut good = BTreeMap::new();
        let mut out = Vec::with_capacity(objects.len());
        for o in objects.drain(..) {
            let k = key(&o);
            match o.check() {
                Ok(()) => {
                    good.insert(k, o.clone());
                    out.push(o);
                }
                Err(errors) => {
                    let kept = self.good.remove(&k);
                    rejected.push(Rejected {
                        kind: K::kind(&()).to_string(),
                        name: k.0.clone(),
                        errors,
                        kept: kept.is_some(),
                    });
                    if let Some(prev) = kept {
                        good.insert(k, prev.clone());
                        out.push(prev);
                    }
                }
            }
        }
        self.good = good;
        *objects = out;
    }
}

/// The last good versions as a document (the state directory keeps it, so
/// they outlive a restart).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    #[serde(default)]
    pub confs: Vec<BgpConf>,
    #[serde(default)]
    pub peers: Vec<BgpPeer>,
    #[serde(default)]
    pub eips: Vec<Eip>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advertisements: Vec<BgpAdvertisement>,
}

/// The last good BgpConfs, BgpPeers, Eips and BgpAdvertisements.
#[derive(Debug, Clone, Default)]
pub struct LastGood {
    confs: Kind<BgpConf>,
    peers: Kind<BgpPeer>,
    eips: Kind<Eip>,
    advertisements: Kind<BgpAdvertisement>,
}

impl LastGood {
    /// Start from saved versions (those that still pass their checks).
    pub fn from_saved(saved: Saved) -> Self {
        let mut lg = LastGood::default();
        lg.confs.restore(saved.confs);
        lg.peers.restore(saved.peers);
        lg.eips.restore(saved.eips);
        lg.advertisements.restore(saved.advertisements);
        lg
    }

    /// The versions kept now.
    pub fn saved(&self) -> Saved {
        Saved {
            confs: self.confs.good.values().cloned().collect(),
            peers: self.peers.good.values().cloned().collect(),
            eips: self.eips.good.values().cloned().collect(),
            advertisements: self.advertisements.good.values().cloned().collect(),
        }
    }

    /// Replace every invalid custom resource in `objects` by its last good
    /// version (or leave it out when it never had one); remember the valid
    /// ones; forget the removed ones. Returns what was rejected.
    pub fn filter(&mut self, objects: &mut Objects) -> Vec<Rejected> {
        let mut rejected = vec![];
        self.confs.filter(&mut objects.confs, &mut rejected);
        self.peers.filter(&mut objects.peers, &mut rejected);
        self.eips.filter(&mut objects.eips, &mut rejected);
        self.advertisements.filter(&mut objects.advertisements, &mut rejected);
        rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(hold: &str) -> BgpPeer {
        serde_yaml::from_str(&format!(
            "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\nspec: {{peerAddress: 198.18.0.1, peerAs: 64512, holdTime: {hold}}}\n"
        ))
        .unwrap()
    }

    fn eip(addr: &str) -> Eip {
        serde_yaml::from_str(&format!(
            "apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: pool}}\nspec: {{address: {addr}}}\n"
        ))
        .unwrap()
    }

    fn hold(o: &Objects) -> Vec<&str> {
        o.peers.iter().map(|p| p.spec.hold_time.as_str()).collect()
    }

    #[test]
    fn an_invalid_edit_keeps_the_last_good_version_until_the_object_is_removed() {
        let mut lg = LastGood::default();
        let mut o =
            Objects { peers: vec![peer("9s")], eips: vec![eip("203.0.113.10-203.0.113.11")], ..Default::default() };
        assert!(lg.filter(&mut o).is_empty());
        assert_eq!(hold(&o), ["9s"]);

        // Hold time 1 s and a reversed range: both rejected, both kept as they were.
        let mut o =
            Objects { peers: vec![peer("1s")], eips: vec![eip("203.0.113.11-203.0.113.10")], ..Default::default() };
        let problems: Vec<Problem> = lg.filter(&mut o).iter().flat_map(|r| r.problems()).collect();
        assert_eq!(hold(&o), ["9s"]);
        assert_eq!(o.eips[0].spec.address.as_deref(), Some("203.0.113.10-203.0.113.11"));
        let fields: Vec<(&str, &str)> = problems.iter().map(|p| (p.object.as_str(), p.field.as_str())).collect();
        assert!(fields.contains(&("BgpPeer/edge", "spec.holdTime")), "{problems:?}");
        assert!(fields.iter().any(|(o, _)| *o == "Eip/pool"), "{problems:?}");
        assert!(problems.iter().all(|p| p.message.contains("last good version stays")), "{problems:?}");

        // Still invalid on the next pass: still the last good version.
        let mut o = Objects { peers: vec![peer("1s")], ..Default::default() };
        lg.filter(&mut o);
        assert_eq!(hold(&o), ["9s"]);
        assert!(o.eips.is_empty(), "the Eip was removed: forgotten");

        // Removed, then back invalid: nothing to keep.
        let mut o = Objects::default();
        lg.filter(&mut o);
        let mut o = Objects { peers: vec![peer("1s")], ..Default::default() };
        let rejected = lg.filter(&mut o);
        assert!(o.peers.is_empty());
        assert!(!rejected[0].kept);
        assert!(rejected[0].problems().all(|p| p.message.contains("ignored")), "{rejected:?}");
    }

    #[test]
    fn saved_versions_are_kept_for_objects_invalid_at_start() {
        let mut lg = LastGood::default();
        lg.filter(&mut Objects { peers: vec![peer("9s")], ..Default::default() });
        // A restart: the manifests now hold the invalid edit.
        let mut fresh = LastGood::from_saved(lg.saved());
        let mut o = Objects { peers: vec![peer("1s")], ..Default::default() };
        let rejected = fresh.filter(&mut o);
        assert_eq!(hold(&o), ["9s"]);
        assert!(rejected[0].kept);
    }

    #[test]
    fn a_recreated_object_is_a_new_object() {
        let mut lg = LastGood::default();
        let mut p = peer("9s");
        p.metadata.uid = Some("u1".into());
        let mut o = Objects { peers: vec![p], ..Default::default() };
        lg.filter(&mut o);
        let mut p = peer("1s");
        p.metadata.uid = Some("u2".into());
        let mut o = Objects { peers: vec![p], ..Default::default() };
        lg.filter(&mut o);
        assert!(o.peers.is_empty(), "u2 never had a good version");
    }
}
