//! `Eip`: a pool of addresses for `LoadBalancer` Services.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules;

/// Desired state of an `Eip` (an address pool).
///
/// `spec.address` is one entry (as in OpenELB); `spec.addresses` holds more. Each entry is a
/// CIDR (`203.0.113.0/24`, no host bits set), a range (`203.0.113.10-203.0.113.20`) or one
/// address, IPv4 or IPv6.
// The printcolumn(...) lists repeat `type_ = ...`; clippy takes that for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "mooring.io",
    version = "v1alpha1",
    kind = "Eip",
    doc = "A pool of addresses for LoadBalancer Services, announced over BGP (like OpenELB's Eip).",
    plural = "eips",
    status = "EipStatus",
    derive = "PartialEq",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.address"),
    printcolumn(name = "Used", type_ = "integer", json_path = ".status.used"),
    printcolumn(name = "Free", type_ = "integer", json_path = ".status.free"),
    printcolumn(name = "Ready", type_ = "boolean", json_path = ".status.ready"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses", priority = 1),
    printcolumn(name = "Priority", type_ = "integer", json_path = ".spec.priority", priority = 1)
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(rules::EIP_HAS_ADDRESS_RULE).message(rules::EIP_HAS_ADDRESS_MESSAGE),
    validation = Rule::new(rules::address_vs_addresses_rule())
        .message(rules::ADDRESS_VS_ADDRESSES_MESSAGE)
        .field_path(".address")
)]
pub struct EipSpec {
    /// One pool entry: CIDR, `first-last` range or single address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = *rules::ENTRY_LEN.start(), max = *rules::ENTRY_LEN.end()))]
    #[x_kube(
        validation = Rule::new(rules::address_rule()).message(rules::ADDRESS_MESSAGE),
        validation = Rule::new(rules::address_not_reversed_rule()).message(rules::ADDRESS_REVERSED_MESSAGE)
    )]
    pub address: Option<String>,

    /// More pool entries, same forms as `address`; entries must not overlap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = rules::MAX_ADDRESSES),
        inner(length(min = *rules::ENTRY_LEN.start(), max = *rules::ENTRY_LEN.end()))
    )]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new(rules::addresses_rule()).message(rules::ADDRESSES_MESSAGE),
        validation = Rule::new(rules::addresses_not_reversed_rule()).message(rules::ADDRESSES_REVERSED_MESSAGE),
        validation = Rule::new(rules::addresses_no_overlap_rule()).message(rules::ADDRESSES_OVERLAP_MESSAGE)
    )]
    pub addresses: Vec<String>,

    /// Take the pool out of service: nothing new is allocated from it; allocated addresses stay.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable: bool,

    /// Among pools a Service may use, the one with the highest priority is the default.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,

    /// Namespaces whose Services may use the pool (with `namespaceSelector`: either matches).
    /// Neither set: every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = rules::MAX_NAMESPACES),
        inner(length(min = *rules::NAMESPACE_LEN.start(), max = *rules::NAMESPACE_LEN.end()))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub namespaces: Vec<String>,

    /// Namespaces, by label, whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Allocate from this pool to Services that do not name a pool. Default true.
    #[serde(default = "default_true")]
    pub auto_assign: bool,

    /// Hand out the network and broadcast addresses of the IPv4 CIDR entries shorter than /31
    /// too (the first and last address of `203.0.113.0/24`: `.0` and `.255`). Default false:
    /// they are not given to Services, automatically or on request. Ranges `first-last` are
    /// taken as written. (MetalLB's `avoidBuggyIPs: true` is the opposite, for every `.0` and
    /// `.255`; Cilium calls this `allowFirstLastIPs` too.)
    #[serde(rename = "allowFirstLastIPs", default, skip_serializing_if = "is_false")]
    pub allow_first_last_ips: bool,

    /// Services of different namespaces may share an address of this pool (same
    /// `allow-shared-ip` key and the other sharing rules). Default false: sharing stays
    /// within a namespace.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_sharing_across_namespaces: bool,

    /// Communities (`ASN:VALUE` or well-known names) on the pool's announcements.
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

    /// Large communities (`A:B:C`) on the pool's announcements.
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

    /// LOCAL_PREF on announcements to iBGP peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,

    /// MULTI_EXIT_DISC on announcements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,

    /// Times the local AS is prepended to the AS_PATH (0..=16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = *rules::AS_PATH_PREPENDS.start(), max = *rules::AS_PATH_PREPENDS.end()))]
    pub as_path_prepend: Option<u8>,

    /// Announce IPv4 addresses as prefixes of this length instead of /32 (0..=32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = *rules::AGGREGATION_V4.start(), max = *rules::AGGREGATION_V4.end()))]
    pub aggregation_length: Option<u8>,

    /// Announce IPv6 addresses as prefixes of this length instead of /128 (0..=128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = *rules::AGGREGATION_V6.start(), max = *rules::AGGREGATION_V6.end()))]
    pub aggregation_length_v6: Option<u8>,

    /// Weighted ECMP for the pool's VIPs: `endpoints` makes each node attach
    /// the link-bandwidth extended community in proportion to its ready local
    /// endpoints (a Service can ask for it too, annotation `mooring.io/weighting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighting: Option<Weighting>,

    /// Form of the link-bandwidth community: `transitive` (default; what FRR 8
    /// honours) or `non-transitive` (the draft's original type 0x40).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_bandwidth: Option<LinkBandwidthForm>,
}

/// How VIPs of a pool are weighted across nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Weighting {
    /// By ready local endpoints.
    Endpoints,
}

/// The link-bandwidth extended community's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LinkBandwidthForm {
    /// Type 0x00, subtype 0x04.
    Transitive,
    /// Type 0x40, subtype 0x04.
    NonTransitive,
}

fn default_true() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// Observed state of an `Eip`, written by the controller.
///
/// Counts are `int64` and saturate at 9223372036854775807 (an IPv6 pool larger than 2^63
/// addresses shows that value).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EipStatus {
    /// Addresses in the pool (saturating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Addresses allocated to Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
    /// `size - used` (saturating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<i64>,
    /// The pool passed validation and is in service.
    #[serde(default)]
    pub ready: bool,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions; `Ready` is False (reason `InvalidAddress` or `InvalidSpec`) when
    /// the status-time checks (reversed IPv6 ranges, IPv6 overlaps, an aggregation length
    /// too short) fail; `Overlapping` is True when addresses overlap with other pools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
