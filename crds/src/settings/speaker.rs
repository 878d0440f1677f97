//! The `BgpConf` into [`SpeakerSettings`]: the speaker's own AS, identifier, listening port,
//! graceful restart, hostname, and the central speakers' node probe ([`NodeProbeSettings`]). What depends on the node (the router ID and hostname
//! when absent) is left to the planner.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use mooring_bgp::limits;

use super::{Errors, FieldErrors};
use crate::bgpconf::{BgpConf, BgpConfSpec, NodeProbe};
use crate::parse;
use crate::rules;

/// A checked `BgpConf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeakerSettings {
    /// Local AS number.
    pub local_as: u32,
    /// BGP identifier; `None`: the node's first IPv4 InternalIP.
    pub router_id: Option<Ipv4Addr>,
    /// Port to accept connections on; `None`: do not listen.
    pub listen_port: Option<u16>,
    /// Graceful restart time in seconds, when graceful restart is enabled.
    pub graceful_restart: Option<u16>,
    /// FQDN capability hostname; `None`: the node name.
    pub hostname: Option<String>,
    /// How central speakers probe the nodes (the defaults when `spec.nodeProbe` is absent).
    pub node_probe: NodeProbeSettings,
}

/// What a node probe checks on a node's address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeCheck {
    /// HTTP GET `path` on `port`, expecting 200.
    Http {
        /// TCP port.
        port: u16,
        /// Request path.
        path: String,
    },
    /// A TCP connection to `port` that is accepted.
    Tcp {
        /// TCP port.
        port: u16,
    },
}

/// A checked BgpConf `spec.nodeProbe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeProbeSettings {
    /// The check of paths not gated by a Service's `healthCheckNodePort`.
    pub check: NodeCheck,
    /// Time between two probes of one target.
    pub interval: Duration,
    /// Time a probe may take.
    pub timeout: Duration,
    /// Failures in a row that take a target down.
    pub failures: u32,
    /// Passes in a row that bring it back.
    pub successes: u32,
}

impl Default for NodeProbeSettings {
    fn default() -> Self {
        NodeProbeSettings {
            check: NodeCheck::Http {
                port: rules::DEFAULT_NODE_PROBE_PORT,
                path: rules::DEFAULT_NODE_PROBE_PATH.into(),
            },
            interval: Duration::from_millis(rules::DEFAULT_PROBE_INTERVAL_MS.into()),
            timeout: Duration::from_millis(rules::DEFAULT_PROBE_TIMEOUT_MS.into()),
            failures: rules::DEFAULT_PROBE_FAILURES,
            successes: rules::DEFAULT_PROBE_SUCCESSES,
        }
    }
}

fn port(e: &mut Errors, path: &str, p: i32) -> Option<u16> {
    e.range(path, p, &rules::PEER_PORTS).then(|| u16::try_from(p).ok()).flatten()
}

fn node_probe(e: &mut Errors, p: &NodeProbe) -> Option<NodeProbeSettings> {
    if p.http.is_some() && p.tcp.is_some() {
        e.push("spec.nodeProbe.tcp", rules::PROBE_EXCLUSIVE_MESSAGE, None);
    }
    let check = match (&p.http, &p.tcp) {
        (Some(h), _) => {
            let port = port(e, "spec.nodeProbe.http.port", h.port);
            let path = "spec.nodeProbe.http.path";
            e.length(path, &h.path, &rules::PROBE_PATH_LEN);
            e.pattern(path, parse::matches_probe_path_pattern(&h.path), rules::PROBE_PATH_PATTERN);
            port.map(|port| NodeCheck::Http { port, path: h.path.clone() })
        }
        (None, Some(t)) => port(e, "spec.nodeProbe.tcp.port", t.port).map(|port| NodeCheck::Tcp { port }),
        (None, None) => Some(NodeProbeSettings::default().check),
    };
    let ms = |e: &mut Errors, path: &str, v: u32| {
        e.range(path, v, &rules::PROBE_MILLISECONDS).then(|| Duration::from_millis(v.into()))
    };
    let interval = ms(e, "spec.nodeProbe.intervalMilliseconds", p.interval_milliseconds);
    let timeout = ms(e, "spec.nodeProbe.timeoutMilliseconds", p.timeout_milliseconds);
    let failures = e.range("spec.nodeProbe.failures", p.failures, &rules::PROBE_THRESHOLDS);
    let successes = e.range("spec.nodeProbe.successes", p.successes, &rules::PROBE_THRESHOLDS);
    (failures && successes).then_some(())?;
    Some(NodeProbeSettings {
        check: check?,
        interval: interval?,
        timeout: timeout?,
        failures: p.failures,
        successes: p.successes,
    })
}

fn check(e: &mut Errors, s: &BgpConfSpec) -> Option<SpeakerSettings> {
    e.range("spec.as", s.as_number, &limits::ASNS);
    let router_id = s.router_id.as_deref().map(|r| {
        e.length("spec.routerId", r, &rules::ROUTER_ID_LEN);
        match parse::parse_ip(r) {
            Ok(IpAddr::V4(v4)) if !v4.is_unspecified() => Some(v4),
            Ok(ip) => {
                let why = if ip.is_ipv4() { "0.0.0.0 is not an identifier" } else { "not IPv4" };
                e.push("spec.routerId", rules::ROUTER_ID_MESSAGE, Some(format!("{r:?}: {why}")));
                None
            }
            Err(reason) => {
                e.push("spec.routerId", rules::ROUTER_ID_MESSAGE, Some(reason));
                None
            }
        }
    });
    let listen_port = s.listen_port.and_then(|p| e.range("spec.listenPort", p, &rules::LISTEN_PORTS).then_some(p));
    let graceful_restart = s.graceful_restart.as_ref().and_then(|g| {
        let ok = e.range("spec.gracefulRestart.restartTime", g.restart_time, &limits::RESTART_TIMES);
        (ok && g.enabled).then_some(g.restart_time)
    });
    if let Some(h) = &s.hostname {
        e.length("spec.hostname", h, &rules::HOSTNAME_LEN);
    }
    let probe = match &s.node_probe {
        Some(p) => node_probe(e, p),
        None => Some(NodeProbeSettings::default()),
    };
    Some(SpeakerSettings {
        node_probe: probe?,
        local_as: s.as_number,
        router_id: router_id.flatten(),
        listen_port: listen_port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0),
        graceful_restart,
        hostname: s.hostname.clone(),
    })
}

impl TryFrom<&BgpConfSpec> for SpeakerSettings {
    type Error = FieldErrors;

    fn try_from(s: &BgpConfSpec) -> Result<Self, FieldErrors> {
        let mut e = Errors::default();
        let settings = check(&mut e, s);
        e.finish(|| settings)
    }
}

/// The whole object: the spec, and the rule that the one BgpConf is named `default`
/// (a rule on the object, so its path is empty).
impl TryFrom<&BgpConf> for SpeakerSettings {
    type Error = FieldErrors;

    fn try_from(c: &BgpConf) -> Result<Self, FieldErrors> {
        let mut e = Errors::default();
        if c.metadata.name.as_deref() != Some("default") {
            e.push("", rules::BGPCONF_NAME_MESSAGE, c.metadata.name.as_ref().map(|n| format!("it is named {n:?}")));
        }
        let settings = check(&mut e, &c.spec);
        e.finish(|| settings)
    }
}
