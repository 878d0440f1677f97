//! `BgpAdvertisement`: which VIPs go to which peers from which nodes, and with
//! which attributes (like MetalLB's `BGPAdvertisement`). The rules for how
//! several of them combine live in the agent's model (`agent/src/model/advertise.rs`)
//! and in `crds/README.md`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::rules;

/// Desired state of a `BgpAdvertisement`.
///
/// A VIP that no `BgpAdvertisement` selects (by pool and Service) is announced as it always
/// was: to every peer of every node that carries it, with its pool's attributes. A VIP that
/// some select goes only to the peers they name, only from the nodes they select.
// The printcolumn(...) lists repeat `type_ = ...`; clippy takes that for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "mooring.io",
    version = "v1alpha1",
    kind = "BgpAdvertisement",
    doc = "Which VIPs are announced to which BGP peers, from which nodes, with which attributes (like MetalLB's BGPAdvertisement).",
    plural = "bgpadvertisements",
    derive = "PartialEq",
    printcolumn(name = "Eips", type_ = "string", json_path = ".spec.eips"),
    printcolumn(name = "Peers", type_ = "string", json_path = ".spec.peers"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct BgpAdvertisementSpec {
    /// Pools (`Eip` names) whose VIPs this selects (with `eipSelector`: either matches).
    /// Neither set: every pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = rules::MAX_SELECTED_NAMES),
        inner(length(min = *rules::OBJECT_NAME_LEN.start(), max = *rules::OBJECT_NAME_LEN.end()))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub eips: Vec<String>,

    /// Pools, by label, whose VIPs this selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip_selector: Option<LabelSelector>,

    /// Services, by label: a VIP is selected when one of the Services behind it matches.
    /// Absent: every Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_selector: Option<LabelSelector>,

    /// Peers (`BgpPeer` names) the selected VIPs are announced to (with `peerSelector`:
    /// either matches). Neither set: every peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = rules::MAX_SELECTED_NAMES),
        inner(length(min = *rules::OBJECT_NAME_LEN.start(), max = *rules::OBJECT_NAME_LEN.end()))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub peers: Vec<String>,

    /// Peers, by the `BgpPeer`'s labels, the selected VIPs are announced to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_selector: Option<LabelSelector>,

    /// Nodes that announce the selected VIPs (among those that carry them). Absent: every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,

    /// Communities (`ASN:VALUE` or well-known names); set, they replace the pool's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = rules::MAX_COMMUNITIES),
        inner(pattern(rules::community_pattern()), length(max = *rules::COMMUNITY_LEN.end()))
    )]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new(rules::communities_rule()).message(rules::COMMUNITIES_MESSAGE)
    )]
    pub communities: Vec<String>,

    /// Large communities (`A:B:C`); set, they replace the pool's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = rules::MAX_COMMUNITIES),
        inner(pattern(rules::large_community_pattern()), length(max = *rules::LARGE_COMMUNITY_LEN.end()))
    )]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new(rules::large_communities_rule()).message(rules::LARGE_COMMUNITIES_MESSAGE)
    )]
    pub large_communities: Vec<String>,

    /// LOCAL_PREF on announcements to iBGP peers; set, it replaces the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,

    /// MULTI_EXIT_DISC; set, it replaces the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,

    /// Times the local AS is prepended to the AS_PATH (0..=16); set, it replaces the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = *rules::AS_PATH_PREPENDS.start(), max = *rules::AS_PATH_PREPENDS.end()))]
    pub as_path_prepend: Option<u8>,

    /// Announce IPv4 VIPs as prefixes of this length (0..=32); set, it replaces the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = *rules::AGGREGATION_V4.start(), max = *rules::AGGREGATION_V4.end()))]
    pub aggregation_length: Option<u8>,

    /// Announce IPv6 VIPs as prefixes of this length (0..=128); set, it replaces the pool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = *rules::AGGREGATION_V6.start(), max = *rules::AGGREGATION_V6.end()))]
    pub aggregation_length_v6: Option<u8>,
}
