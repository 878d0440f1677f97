//! A `BgpAdvertisement` spec into [`AdvertisementSettings`]: what it selects (pools, Services,
//! peers, nodes) and the attributes it sets. Whether the pools and peers it names exist, and
//! whether its aggregation lengths suit those pools, needs the other objects: the planner
//! checks that.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use mooring_bgp::wire::{Community, LargeCommunity};

use super::{large_communities, selector, standard_communities, Errors, FieldErrors};
use crate::bgpadvertisement::{BgpAdvertisement, BgpAdvertisementSpec};
use crate::rules;

/// A checked `BgpAdvertisement` spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdvertisementSettings {
    /// Pools by name (with `eip_selector`: either matches; both empty: every pool).
    pub eips: Vec<String>,
    /// Pools by label.
    pub eip_selector: Option<LabelSelector>,
    /// Services by label (absent: every Service).
    pub service_selector: Option<LabelSelector>,
    /// Peers by name (with `peer_selector`: either matches; both empty: every peer).
    pub peers: Vec<String>,
    /// Peers by label.
    pub peer_selector: Option<LabelSelector>,
    /// Nodes by label (absent: every node).
    pub node_selector: Option<LabelSelector>,
    /// Set (non-empty): replace the pool's.
    pub communities: Vec<Community>,
    /// Set (non-empty): replace the pool's.
    pub large_communities: Vec<LargeCommunity>,
    /// Replaces the pool's.
    pub local_pref: Option<u32>,
    /// Replaces the pool's.
    pub med: Option<u32>,
    /// Replaces the pool's.
    pub as_path_prepend: Option<u8>,
    /// Replaces the pool's.
    pub aggregation_length_v4: Option<u8>,
    /// Replaces the pool's.
    pub aggregation_length_v6: Option<u8>,
}

/// A list of object names at `path`: its bounds, no repeats, each name's length.
fn names(e: &mut Errors, path: &str, list: &[String]) {
    e.items(path, list.len(), &(0..=rules::MAX_SELECTED_NAMES));
    e.unique(path, list);
    for (i, n) in list.iter().enumerate() {
        e.length(&format!("{path}[{i}]"), n, &rules::OBJECT_NAME_LEN);
    }
}

impl TryFrom<&BgpAdvertisementSpec> for AdvertisementSettings {
    type Error = FieldErrors;

    fn try_from(s: &BgpAdvertisementSpec) -> Result<Self, FieldErrors> {
        let mut e = Errors::default();
        names(&mut e, "spec.eips", &s.eips);
        names(&mut e, "spec.peers", &s.peers);
        for (path, sel) in [
            ("spec.eipSelector", &s.eip_selector),
            ("spec.serviceSelector", &s.service_selector),
            ("spec.peerSelector", &s.peer_selector),
            ("spec.nodeSelector", &s.node_selector),
        ] {
            selector(&mut e, path, sel.as_ref());
        }
        if let Some(n) = s.as_path_prepend {
            e.range("spec.asPathPrepend", n, &rules::AS_PATH_PREPENDS);
        }
        if let Some(n) = s.aggregation_length {
            e.range("spec.aggregationLength", n, &rules::AGGREGATION_V4);
        }
        if let Some(n) = s.aggregation_length_v6 {
            e.range("spec.aggregationLengthV6", n, &rules::AGGREGATION_V6);
        }
        let communities = standard_communities(&mut e, "spec.communities", &s.communities);
        let large_communities = large_communities(&mut e, "spec.largeCommunities", &s.large_communities);
        e.finish(|| {
            Some(AdvertisementSettings {
                eips: s.eips.clone(),
                eip_selector: s.eip_selector.clone(),
                service_selector: s.service_selector.clone(),
                peers: s.peers.clone(),
                peer_selector: s.peer_selector.clone(),
                node_selector: s.node_selector.clone(),
                communities,
                large_communities,
                local_pref: s.local_pref,
                med: s.med,
                as_path_prepend: s.as_path_prepend,
                aggregation_length_v4: s.aggregation_length,
                aggregation_length_v6: s.aggregation_length_v6,
            })
        })
    }
}

impl TryFrom<&BgpAdvertisement> for AdvertisementSettings {
    type Error = FieldErrors;

    fn try_from(a: &BgpAdvertisement) -> Result<Self, FieldErrors> {
        AdvertisementSettings::try_from(&a.spec)
    }
}
