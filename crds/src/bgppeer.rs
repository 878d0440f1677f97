//! `BgpPeer`: one BGP neighbour that (selected) nodes peer with.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};

use kube::{CustomResource, KubeSchema};
use mooring_bgp::limits;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules;

/// Desired state of a `BgpPeer`.
// The printcolumn(...) lists repeat `type_ = ...`; clippy takes that for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "mooring.io",
    version = "v1alpha1",
    kind = "BgpPeer",
    doc = "A BGP neighbour that the selected nodes peer with (like OpenELB's BgpPeer).",
    plural = "bgppeers",
    status = "BgpPeerStatus",
    derive = "PartialEq",
    printcolumn(name = "Peer Address", type_ = "string", json_path = ".spec.peerAddress"),
    printcolumn(name = "Peer AS", type_ = "integer", json_path = ".spec.peerAs"),
    printcolumn(
        name = "Established",
        type_ = "integer",
        json_path = ".status.established",
        description = "nodes with an Established session"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(rules::PASSWORD_EXCLUSIVE_RULE)
        .message(rules::PASSWORD_EXCLUSIVE_MESSAGE)
        .field_path(".password"),
    validation = Rule::new(rules::keepalive_below_hold_rule())
        .message(rules::keepalive_below_hold_message().as_str())
        .field_path(".keepaliveTime"),
    validation = Rule::new(rules::VRF_BFD_RULE)
        .message(rules::VRF_BFD_MESSAGE)
        .field_path(".bfd")
)]
pub struct BgpPeerSpec {
    /// The neighbour's address, IPv4 or IPv6.
    #[schemars(length(max = *rules::IP_LEN.end()))]
    #[x_kube(validation = Rule::new(rules::IS_IP_RULE).message(rules::PEER_ADDRESS_MESSAGE))]
    pub peer_address: String,

    /// The neighbour's AS number (1..=4294967294).
    #[schemars(range(min = *limits::ASNS.start(), max = *limits::ASNS.end()))]
    pub peer_as: u32,

    /// Our AS number towards this peer; overrides `BgpConf` `spec.as`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = *limits::ASNS.start(), max = *limits::ASNS.end()))]
    pub local_as: Option<u32>,

    /// The neighbour's TCP port.
    #[serde(default = "default_port")]
    #[schemars(range(min = *rules::PEER_PORTS.start(), max = *rules::PEER_PORTS.end()))]
    pub port: i32,

    /// Hold time proposed in OPEN, a duration like `90s` or `3m`: `0s` (no keepalives) or
    /// 3s..=65535s. Default `90s`.
    #[serde(default = "default_hold_time")]
    #[schemars(pattern(rules::DURATION_PATTERN), length(min = *rules::DURATION_LEN.start(), max = *rules::DURATION_LEN.end()))]
    #[x_kube(validation = Rule::new(rules::hold_time_rule()).message(rules::hold_time_message().as_str()))]
    pub hold_time: String,

    /// Keepalive interval; must be below `holdTime`. Absent: a third of the negotiated hold time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(rules::DURATION_PATTERN), length(min = *rules::DURATION_LEN.start(), max = *rules::DURATION_LEN.end()))]
    #[x_kube(validation = Rule::new(rules::keepalive_time_rule()).message(rules::keepalive_time_message().as_str()))]
    pub keepalive_time: Option<String>,

    /// Wait for the neighbour to connect; never connect out.
    #[serde(default, skip_serializing_if = "is_false")]
    pub passive: bool,

    /// Local address to connect from (IPv4 or IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = *rules::IP_LEN.end()))]
    #[x_kube(validation = Rule::new(rules::IS_IP_RULE).message(rules::SOURCE_ADDRESS_MESSAGE))]
    pub source_address: Option<String>,

    /// The Linux VRF device (`ip link add vrf-a type vrf table 10`) the neighbour is reached in:
    /// the session's sockets are bound to it (SO_BINDTODEVICE), so the route to the neighbour
    /// and the source address come from the VRF's table, and when BgpConf `listenPort` is set
    /// the node also listens in the VRF. Absent: the default VRF. The same `peerAddress` may be
    /// used once per VRF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(rules::INTERFACE_NAME_PATTERN), length(min = *rules::INTERFACE_NAME_LEN.start(), max = *rules::INTERFACE_NAME_LEN.end()))]
    pub vrf: Option<String>,

    /// TTL for an eBGP session to a neighbour that is not directly connected (1..=255).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = *rules::MULTIHOP_TTLS.start(), max = *rules::MULTIHOP_TTLS.end()))]
    pub ebgp_multihop: Option<u8>,

    /// TCP MD5 password (RFC 2385) read from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,

    /// TCP MD5 password in plain text. Standalone mode only (no Kubernetes to read a Secret
    /// from); in a cluster use `passwordSecretRef`. Not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = *rules::PASSWORD_LEN.start(), max = *rules::PASSWORD_LEN.end()))]
    pub password: Option<String>,

    /// Address families to negotiate. Default: both.
    #[serde(default = "default_families")]
    #[schemars(length(min = *rules::FAMILIES_ITEMS.start(), max = *rules::FAMILIES_ITEMS.end()))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub families: Vec<AddressFamily>,

    /// Nodes that peer with this neighbour (mode `Node`), or whose paths the central speakers
    /// send it (mode `Central`). Absent: every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,

    /// Where the routes to this neighbour come from. `Node` (default): every selected node
    /// peers with it and announces its VIPs with itself as next hop. `Central`: only the
    /// central speakers (`mooring speaker --central`, `mooring standalone --central`) peer
    /// with it, announcing each VIP once per node that should carry it, with that node's
    /// address as next hop (ADD-PATH), while the node probes (BgpConf `spec.nodeProbe`) pass.
    #[serde(default, skip_serializing_if = "PeerMode::is_node")]
    pub mode: PeerMode,

    /// Limit on prefixes accepted from the neighbour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefixes: Option<MaxPrefixes>,

    /// Communities (`ASN:VALUE`, or a well-known name: `no-export`, `no-advertise`, `no-peer`,
    /// `graceful-shutdown`, `blackhole`, ...) added to every route sent to this peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = rules::MAX_COMMUNITIES), inner(pattern(rules::community_pattern()), length(max = *rules::COMMUNITY_LEN.end())))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[x_kube(validation = Rule::new(rules::communities_rule()).message(rules::COMMUNITIES_MESSAGE))]
    pub communities: Vec<String>,

    /// Large communities (`A:B:C`, RFC 8092) added to every route sent to this peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = rules::MAX_COMMUNITIES), inner(pattern(rules::large_community_pattern()), length(max = *rules::LARGE_COMMUNITY_LEN.end())))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[x_kube(validation = Rule::new(rules::large_communities_rule()).message(rules::LARGE_COMMUNITIES_MESSAGE))]
    pub large_communities: Vec<String>,

    /// BFD (RFC 5880, single hop RFC 5881) with the neighbour: when it declares the path down,
    /// the BGP session is torn down at once (Cease / BFD Down) instead of after the hold time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdSpec>,
}

/// BFD settings of a peer.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BfdSpec {
    /// Run BFD with this neighbour. Default `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Desired minimum transmit interval once the session is Up (`300ms`, `1s`; 10ms..=60s).
    /// Default `300ms`.
    #[serde(default = "default_bfd_interval")]
    #[schemars(pattern(rules::BFD_INTERVAL_PATTERN), length(min = *rules::BFD_INTERVAL_LEN.start(), max = *rules::BFD_INTERVAL_LEN.end()))]
    #[x_kube(validation = Rule::new(rules::bfd_interval_rule()).message(rules::bfd_interval_message("minTxInterval").as_str()))]
    pub min_tx_interval: String,
    /// Required minimum receive interval (`300ms`, `1s`; 10ms..=60s). Default `300ms`.
    #[serde(default = "default_bfd_interval")]
    #[schemars(pattern(rules::BFD_INTERVAL_PATTERN), length(min = *rules::BFD_INTERVAL_LEN.start(), max = *rules::BFD_INTERVAL_LEN.end()))]
    #[x_kube(validation = Rule::new(rules::bfd_interval_rule()).message(rules::bfd_interval_message("minRxInterval").as_str()))]
    pub min_rx_interval: String,
    /// Detection multiplier (1..=255): the neighbour is declared down after this many
    /// intervals without a packet. Default 3.
    #[serde(default = "default_bfd_multiplier")]
    #[schemars(range(min = *limits::BFD_MULTIPLIERS.start(), max = *limits::BFD_MULTIPLIERS.end()))]
    pub multiplier: u8,
}

fn default_true() -> bool {
    true
}

fn default_bfd_interval() -> String {
    "300ms".into()
}

fn default_bfd_multiplier() -> u8 {
    3
}

fn default_port() -> i32 {
    179
}

fn default_hold_time() -> String {
    rules::DEFAULT_HOLD_TIME.into()
}

fn default_families() -> Vec<AddressFamily> {
    vec![AddressFamily::Ipv4Unicast, AddressFamily::Ipv6Unicast]
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A reference to one key of a Secret (the CRD is cluster-scoped, so the namespace is required).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = *rules::SECRET_NAME_LEN.start(), max = *rules::SECRET_NAME_LEN.end()))]
    pub name: String,
    /// Secret namespace.
    #[schemars(length(min = *rules::NAMESPACE_LEN.start(), max = *rules::NAMESPACE_LEN.end()))]
    pub namespace: String,
    /// Key within the Secret's data. Default `password`.
    #[serde(default = "default_secret_key")]
    #[schemars(length(min = *rules::SECRET_NAME_LEN.start(), max = *rules::SECRET_NAME_LEN.end()))]
    pub key: String,
}

fn default_secret_key() -> String {
    "password".into()
}

/// Where a peer's routes come from (BgpPeer `spec.mode`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerMode {
    /// Each selected node peers with the neighbour and announces next-hop self.
    #[default]
    Node,
    /// The central speakers peer with the neighbour and announce every node's paths.
    Central,
}

impl PeerMode {
    /// The default, `Node`.
    pub fn is_node(&self) -> bool {
        *self == PeerMode::Node
    }
}

/// A BGP address family (AFI/SAFI).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressFamily {
    /// IPv4 unicast (AFI 1, SAFI 1).
    #[serde(rename = "ipv4-unicast")]
    Ipv4Unicast,
    /// IPv6 unicast (AFI 2, SAFI 1).
    #[serde(rename = "ipv6-unicast")]
    Ipv6Unicast,
}

/// Maximum-prefix limit.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MaxPrefixes {
    /// Prefixes accepted from the neighbour before `action` is taken.
    #[schemars(range(min = rules::MIN_PREFIX_LIMIT))]
    pub limit: u32,
    /// What to do past the limit. Default `teardown`.
    #[serde(default)]
    pub action: MaxPrefixAction,
    /// After a teardown, start the session again after this long (a
    /// duration like `60s` or `5m`; FRR's `maximum-prefix N restart M`).
    /// `0s`: keep it down until the BgpPeer changes. Default `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(rules::DURATION_PATTERN), length(min = *rules::DURATION_LEN.start(), max = *rules::DURATION_LEN.end()))]
    pub restart_time: Option<String>,
}

/// What to do when a neighbour sends more than `maxPrefixes.limit` prefixes.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MaxPrefixAction {
    /// Log and report in status; keep the session.
    Warn,
    /// Send a CEASE NOTIFICATION (maximum number of prefixes reached) and close the session.
    #[default]
    Teardown,
}

/// Observed state of a `BgpPeer`, written by the agents.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerStatus {
    /// Number of nodes whose session with this peer is Established.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established: Option<i32>,

    /// One entry per node that peers with this neighbour, keyed by node name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["node".into()]))]
    pub nodes: Vec<BgpPeerNodeStatus>,
}

/// One node's session with the peer.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerNodeStatus {
    /// Node name.
    pub node: String,
    /// BGP finite-state-machine state.
    #[serde(with = "session_state")]
    #[schemars(schema_with = "session_state::schema")]
    pub state: SessionState,
    /// When the session last became Established (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established_since: Option<Time>,
    /// Prefixes currently advertised to the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefixes_sent: Option<i64>,
    /// Prefixes currently accepted from the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefixes_received: Option<i64>,
    /// The last error (NOTIFICATION sent or received, connection failure), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Paths meant for the peer that are not sent because the session did not negotiate
    /// ADD-PATH send for their family (the peer does not receive it): of a prefix with N
    /// paths only the first goes, and N - 1 count here. Absent when every path goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths_not_sent: Option<i64>,
    /// Conditions of this node's session, while it is Established: `AllPathsSent` is False
    /// (reason `PeerDoesNotReceiveAddPath`) while paths are held back for want of ADD-PATH,
    /// True otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When the agent last wrote this entry (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Time>,
}

/// The condition type of [`BgpPeerNodeStatus::conditions`] about ADD-PATH.
pub const ALL_PATHS_SENT: &str = "AllPathsSent";

/// BGP session state (RFC 4271 section 8): the speaker's own state type, written in
/// status by its name (`Established`).
pub use mooring_bgp::fsm::State as SessionState;

/// `status.nodes[].state` as text: the names of [`SessionState`], and the schema listing them.
mod session_state {
    use serde::{de, Deserialize, Deserializer, Serializer};

    use super::SessionState;

    pub fn serialize<S: Serializer>(state: &SessionState, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(state.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SessionState, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }

    pub fn schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = SessionState::ALL.iter().map(|s| s.name()).collect();
        schemars::json_schema!({"type": "string", "enum": names})
    }
}

impl BgpPeerNodeStatus {
    /// `node`'s entry for one session, from the speaker's view of it. A condition keeps
    /// its `lastTransitionTime` from `previous` (the entry written before) while its status
    /// does not change; otherwise it is `now`.
    pub fn of_session(
        node: &str,
        session: &mooring_bgp::speaker::PeerStatus,
        previous: Option<&BgpPeerNodeStatus>,
        now: Time,
    ) -> Self {
        let since = session.established_since.and_then(|t| {
            let secs = t.duration_since(std::time::SystemTime::UNIX_EPOCH).ok()?.as_secs();
            k8s_openapi::jiff::Timestamp::from_second(i64::try_from(secs).ok()?).ok()
        });
        BgpPeerNodeStatus {
            node: node.to_string(),
            state: session.state,
            established_since: since.map(Time),
            prefixes_sent: i64::try_from(session.prefixes_sent).ok(),
            prefixes_received: i64::try_from(session.prefixes_received.values().sum::<u64>()).ok(),
            last_error: session.last_error.clone(),
            paths_not_sent: (session.paths_not_sent > 0).then(|| i64::try_from(session.paths_not_sent).ok()).flatten(),
            conditions: all_paths_sent(session)
                .into_iter()
                .map(|(status, reason, message)| {
                    let status = if status { "True" } else { "False" };
                    let prev = previous
                        .and_then(|p| p.conditions.iter().find(|c| c.type_ == ALL_PATHS_SENT && c.status == status));
                    Condition {
                        type_: ALL_PATHS_SENT.into(),
                        status: status.into(),
                        reason: reason.into(),
                        message,
                        last_transition_time: prev.map_or_else(|| now.clone(), |p| p.last_transition_time.clone()),
                        observed_generation: None,
                    }
                })
                .collect(),
            updated_at: None,
        }
    }
}

/// The `AllPathsSent` condition of an Established session: (status, reason, message).
fn all_paths_sent(s: &mooring_bgp::speaker::PeerStatus) -> Option<(bool, &'static str, String)> {
    if s.state != SessionState::Established {
        return None;
    }
    if s.paths_not_sent == 0 {
        return Some((true, "AllSent", "every path meant for the peer is sent".into()));
    }
    let without: Vec<String> = s
        .families
        .iter()
        .filter(|f| !s.add_path.iter().any(|a| a.family == **f && a.mode.can_send()))
        .map(ToString::to_string)
        .collect();
    Some((
        false,
        "PeerDoesNotReceiveAddPath",
        format!(
            "the peer does not receive ADD-PATH (RFC 7911) for {}: {} paths not sent, one path per prefix goes \
             (FRR receives by default for IPv4 unicast; GoBGP: add-paths receive; BIRD: add paths rx)",
            without.join(", "),
            s.paths_not_sent
        ),
    ))
}
