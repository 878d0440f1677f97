//! `BgpConf`: the speaker's own BGP settings, one object named `default`.

use kube::{CustomResource, KubeSchema};
use mooring_bgp::limits;
use serde::{Deserialize, Serialize};

use crate::rules;

/// Desired state of the `BgpConf`.
// The printcolumn(...) lists repeat `type_ = ...`; clippy takes that for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "mooring.io",
    version = "v1alpha1",
    kind = "BgpConf",
    doc = "The BGP speaker settings of the cluster: one object, named default (like OpenELB's BgpConf).",
    plural = "bgpconfs",
    derive = "PartialEq",
    validation = Rule::new(rules::BGPCONF_NAME_RULE).message(rules::BGPCONF_NAME_MESSAGE),
    printcolumn(name = "AS", type_ = "integer", json_path = ".spec.as"),
    printcolumn(name = "Router ID", type_ = "string", json_path = ".spec.routerId"),
    printcolumn(name = "Listen Port", type_ = "integer", json_path = ".spec.listenPort"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct BgpConfSpec {
    /// Local AS number (1..=4294967294; 4-byte ASNs are supported).
    #[serde(rename = "as")]
    #[schemars(range(min = *limits::ASNS.start(), max = *limits::ASNS.end()))]
    pub as_number: u32,

    /// BGP identifier, an IPv4 address. Absent: each node uses its first IPv4 `InternalIP`
    /// (from the Node object's `status.addresses`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = *rules::ROUTER_ID_LEN.end()))]
    #[x_kube(validation = Rule::new(rules::ROUTER_ID_RULE).message(rules::ROUTER_ID_MESSAGE))]
    pub router_id: Option<String>,

    /// TCP port to accept BGP connections on. 0 or absent: do not listen (Mooring then
    /// only connects out; peers must not be `passive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = *rules::LISTEN_PORTS.start(), max = *rules::LISTEN_PORTS.end()))]
    pub listen_port: Option<i32>,

    /// Graceful restart (RFC 4724) advertised to every peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_restart: Option<GracefulRestart>,

    /// Hostname advertised in the FQDN capability. Absent: the node name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = *rules::HOSTNAME_LEN.end()))]
    pub hostname: Option<String>,

    /// How the central speakers (BgpPeer `mode: Central`) probe the nodes they announce as
    /// next hops. A path of a `Local` Service is gated by the Service's `healthCheckNodePort`
    /// (HTTP 200 while the node has local endpoints); every other path by the check given
    /// here (default: HTTP GET `:10256/healthz`, kube-proxy's health server). Interval,
    /// timeout and thresholds apply to both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_probe: Option<NodeProbe>,
}

/// The node probe of the central speakers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(rules::PROBE_EXCLUSIVE_RULE)
        .message(rules::PROBE_EXCLUSIVE_MESSAGE)
        .field_path(".tcp")
)]
pub struct NodeProbe {
    /// An HTTP GET that must answer 200. Neither `http` nor `tcp`: HTTP `:10256/healthz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    /// A TCP connection that must be accepted. Not with `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpProbe>,
    /// Milliseconds between two probes of one node (10..=60000, default 200).
    #[serde(default = "default_probe_interval")]
    #[schemars(range(min = *rules::PROBE_MILLISECONDS.start(), max = *rules::PROBE_MILLISECONDS.end()))]
    pub interval_milliseconds: u32,
    /// Milliseconds a probe may take before it counts as failed (10..=60000, default 150).
    #[serde(default = "default_probe_timeout")]
    #[schemars(range(min = *rules::PROBE_MILLISECONDS.start(), max = *rules::PROBE_MILLISECONDS.end()))]
    pub timeout_milliseconds: u32,
    /// Failed probes in a row after which the node's paths are withdrawn (1..=100, default 3).
    #[serde(default = "default_probe_failures")]
    #[schemars(range(min = *rules::PROBE_THRESHOLDS.start(), max = *rules::PROBE_THRESHOLDS.end()))]
    pub failures: u32,
    /// Passed probes in a row after which they are announced again (1..=100, default 2).
    #[serde(default = "default_probe_successes")]
    #[schemars(range(min = *rules::PROBE_THRESHOLDS.start(), max = *rules::PROBE_THRESHOLDS.end()))]
    pub successes: u32,
}

/// An HTTP probe.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HttpProbe {
    /// TCP port on the node (1..=65535).
    #[schemars(range(min = *rules::PEER_PORTS.start(), max = *rules::PEER_PORTS.end()))]
    pub port: i32,
    /// Request path. Default `/healthz`.
    #[serde(default = "default_probe_path")]
    #[schemars(pattern(rules::PROBE_PATH_PATTERN), length(min = *rules::PROBE_PATH_LEN.start(), max = *rules::PROBE_PATH_LEN.end()))]
    pub path: String,
}

/// A TCP probe.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TcpProbe {
    /// TCP port on the node (1..=65535).
    #[schemars(range(min = *rules::PEER_PORTS.start(), max = *rules::PEER_PORTS.end()))]
    pub port: i32,
}

fn default_probe_interval() -> u32 {
    rules::DEFAULT_PROBE_INTERVAL_MS
}

fn default_probe_timeout() -> u32 {
    rules::DEFAULT_PROBE_TIMEOUT_MS
}

fn default_probe_failures() -> u32 {
    rules::DEFAULT_PROBE_FAILURES
}

fn default_probe_successes() -> u32 {
    rules::DEFAULT_PROBE_SUCCESSES
}

fn default_probe_path() -> String {
    rules::DEFAULT_NODE_PROBE_PATH.into()
}

/// Graceful restart settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GracefulRestart {
    /// Advertise the graceful restart capability.
    #[serde(default)]
    pub enabled: bool,

    /// Seconds a peer should keep our routes while we restart (1..=4095, default 120).
    #[serde(default = "default_restart_time")]
    #[schemars(range(min = *limits::RESTART_TIMES.start(), max = *limits::RESTART_TIMES.end()))]
    pub restart_time: u16,
}

fn default_restart_time() -> u16 {
    120
}

impl Default for GracefulRestart {
    fn default() -> Self {
        Self { enabled: false, restart_time: default_restart_time() }
    }
}
