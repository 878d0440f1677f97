//! The `BgpConf` into [`SpeakerSettings`]: the speaker's own AS, identifier, listening port,
//! graceful restart and hostname. What depends on the node (the router ID and hostname
//! when absent) is left to the planner.

use std::net::{IpAddr, Ipv4Addr};

use mooring_bgp::limits;

use super::{Errors, FieldErrors};
use crate::bgpconf::{BgpConf, BgpConfSpec};
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
    Some(SpeakerSettings {
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
