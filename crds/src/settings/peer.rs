//! A `BgpPeer` spec into [`PeerSettings`]: the neighbour as the speaker needs it, with
//! timers, BFD and communities checked by the rules of [`mooring_bgp::limits`]. What needs
//! other objects (the Secret behind `passwordSecretRef`, the node the selector picks) is left
//! typed for the planner.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use mooring_bgp::bfd::BfdConfig;
use mooring_bgp::limits::{self, Timers};
use mooring_bgp::speaker::{MaxPrefixes, PeerConfig};
use mooring_bgp::wire::Family;

use super::{ip, large_communities, selector, standard_communities, Errors, FieldErrors};
use crate::bgppeer::{AddressFamily, BfdSpec, BgpPeer, BgpPeerSpec, MaxPrefixAction, PeerMode, SecretKeyRef};
use crate::parse;
use crate::rules;

/// The TCP MD5 key of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Password {
    /// Given in the spec (standalone mode).
    Plain(String),
    /// To be read from a Secret.
    Secret(SecretKeyRef),
}

/// A checked `BgpPeer` spec.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerSettings {
    /// The session as the speaker runs it, with everything the spec says (timers from
    /// [`Timers`], BFD, communities, families...) and the speaker's defaults for the rest.
    /// Not filled in here, because they need other objects: `md5_password` (see `password`)
    /// and the next hops (the node's addresses).
    pub config: PeerConfig,
    /// The TCP MD5 key, or where to read it.
    pub password: Option<Password>,
    /// The nodes that peer with it (mode `Node`) or whose paths go to it (mode `Central`);
    /// `None`: all.
    pub node_selector: Option<LabelSelector>,
    /// Who peers with it: every selected node, or the central speakers.
    pub mode: PeerMode,
}

/// A duration field: its length and pattern, then its value (`None` when malformed).
fn duration(e: &mut Errors, path: &str, s: &str) -> Option<u64> {
    e.length(path, s, &rules::DURATION_LEN);
    e.pattern(path, parse::matches_duration_pattern(s), rules::DURATION_PATTERN);
    parse::parse_duration(s).ok().map(|d| d.as_secs())
}

/// A BFD interval field: length, pattern, then the CEL range rule.
fn interval(e: &mut Errors, path: &str, field: &str, s: &str) -> Option<Duration> {
    e.length(path, s, &rules::BFD_INTERVAL_LEN);
    e.pattern(path, parse::matches_interval_pattern(s), rules::BFD_INTERVAL_PATTERN);
    let d = parse::parse_interval(s).ok()?;
    match limits::check_bfd_interval(d) {
        Ok(d) => Some(d),
        Err(err) => {
            e.push(path, rules::bfd_interval_message(field), Some(err.to_string()));
            None
        }
    }
}

fn bfd(e: &mut Errors, b: &BfdSpec) -> Option<BfdConfig> {
    let tx = interval(e, "spec.bfd.minTxInterval", "minTxInterval", &b.min_tx_interval);
    let rx = interval(e, "spec.bfd.minRxInterval", "minRxInterval", &b.min_rx_interval);
    e.range("spec.bfd.multiplier", b.multiplier, &limits::BFD_MULTIPLIERS);
    let config = limits::bfd_config(tx?, rx?, b.multiplier).ok()?;
    b.enabled.then_some(config)
}

/// Hold time and keepalive: each of the three rules on its own, as the CEL rules are.
fn timers(e: &mut Errors, s: &BgpPeerSpec) -> Option<Timers> {
    let hold = duration(e, "spec.holdTime", &s.hold_time);
    let keepalive = s.keepalive_time.as_deref().map(|k| duration(e, "spec.keepaliveTime", k));
    if let Some(Err(err)) = hold.map(limits::check_hold_time) {
        e.push("spec.holdTime", rules::hold_time_message(), Some(err.to_string()));
    }
    if let Some(Some(ka)) = keepalive {
        if let Err(err) = limits::check_keepalive(ka) {
            e.push("spec.keepaliveTime", rules::keepalive_time_message(), Some(err.to_string()));
        }
        if let Some(Err(err)) = hold.map(|h| limits::check_keepalive_vs_hold(ka, h)) {
            e.push("spec.keepaliveTime", rules::keepalive_below_hold_message(), Some(err.to_string()));
        }
    }
    let keepalive = match keepalive {
        Some(None) => return None,
        Some(Some(ka)) => Some(ka),
        None => None,
    };
    // Every rule Timers::new checks was reported above.
    Timers::new(hold?, keepalive).ok()
}

fn secret_ref(e: &mut Errors, r: &SecretKeyRef) {
    e.length("spec.passwordSecretRef.name", &r.name, &rules::SECRET_NAME_LEN);
    e.length("spec.passwordSecretRef.namespace", &r.namespace, &rules::NAMESPACE_LEN);
    e.length("spec.passwordSecretRef.key", &r.key, &rules::SECRET_NAME_LEN);
}

impl TryFrom<&BgpPeerSpec> for PeerSettings {
    type Error = FieldErrors;

    fn try_from(s: &BgpPeerSpec) -> Result<Self, FieldErrors> {
        let mut e = Errors::default();
        let address = ip(&mut e, "spec.peerAddress", &s.peer_address, rules::PEER_ADDRESS_MESSAGE);
        e.range("spec.peerAs", s.peer_as, &limits::ASNS);
        if let Some(a) = s.local_as {
            e.range("spec.localAs", a, &limits::ASNS);
        }
        e.range("spec.port", s.port, &rules::PEER_PORTS);
        let timers = timers(&mut e, s);
        let source = s.source_address.as_deref().and_then(|src| {
            let source = ip(&mut e, "spec.sourceAddress", src, rules::SOURCE_ADDRESS_MESSAGE)?;
            if address.is_some_and(|a| a.is_ipv4() != source.is_ipv4()) {
                e.push("spec.sourceAddress", "must be of the same address family as peerAddress", None);
            }
            Some(source)
        });
        if let Some(v) = &s.vrf {
            e.length("spec.vrf", v, &rules::INTERFACE_NAME_LEN);
            e.pattern("spec.vrf", parse::matches_interface_name_pattern(v), rules::INTERFACE_NAME_PATTERN);
        }
        if s.vrf.is_some() && s.bfd.as_ref().is_some_and(|b| b.enabled) {
            e.push("spec.bfd", rules::VRF_BFD_MESSAGE, None);
        }
        if let Some(ttl) = s.ebgp_multihop {
            e.range("spec.ebgpMultihop", ttl, &rules::MULTIHOP_TTLS);
        }
        if let Some(p) = &s.password {
            e.length("spec.password", p, &rules::PASSWORD_LEN);
        }
        if let Some(r) = &s.password_secret_ref {
            secret_ref(&mut e, r);
        }
        if s.password.is_some() && s.password_secret_ref.is_some() {
            e.push("spec.password", rules::PASSWORD_EXCLUSIVE_MESSAGE, None);
        }
        e.items("spec.families", s.families.len(), &rules::FAMILIES_ITEMS);
        e.unique("spec.families", &s.families);
        let mut prefix_restart = None;
        if let Some(m) = &s.max_prefixes {
            e.range("spec.maxPrefixes.limit", m.limit, &(rules::MIN_PREFIX_LIMIT..=u32::MAX));
            if let Some(r) = &m.restart_time {
                prefix_restart = duration(&mut e, "spec.maxPrefixes.restartTime", r);
            }
        }
        let communities = standard_communities(&mut e, "spec.communities", &s.communities);
        let large_communities = large_communities(&mut e, "spec.largeCommunities", &s.large_communities);
        let bfd = s.bfd.as_ref().and_then(|b| bfd(&mut e, b));
        selector(&mut e, "spec.nodeSelector", s.node_selector.as_ref());
        e.finish(|| {
            let mut config = PeerConfig::new(address?, s.peer_as);
            config.local_as = s.local_as;
            config.port = u16::try_from(s.port).ok()?;
            let timers = timers?;
            (config.hold_time, config.keepalive) = (timers.hold_time(), timers.keepalive());
            config.passive = s.passive;
            config.source = source;
            config.vrf = s.vrf.clone();
            config.ebgp_multihop = s.ebgp_multihop;
            config.families = s
                .families
                .iter()
                .map(|f| match f {
                    AddressFamily::Ipv4Unicast => Family::IPV4_UNICAST,
                    AddressFamily::Ipv6Unicast => Family::IPV6_UNICAST,
                })
                .collect();
            config.max_prefixes = s.max_prefixes.as_ref().map(|m| {
                let mut mp = MaxPrefixes::new(m.limit as u64, m.action == MaxPrefixAction::Teardown);
                if let Some(secs) = prefix_restart {
                    mp.restart = (secs > 0).then(|| Duration::from_secs(secs));
                }
                mp
            });
            (config.communities, config.large_communities) = (communities, large_communities);
            config.bfd = bfd;
            let password = match (&s.password, &s.password_secret_ref) {
                (Some(p), _) => Some(Password::Plain(p.clone())),
                (None, Some(r)) => Some(Password::Secret(r.clone())),
                (None, None) => None,
            };
            Some(PeerSettings { config, password, node_selector: s.node_selector.clone(), mode: s.mode })
        })
    }
}

impl TryFrom<&BgpPeer> for PeerSettings {
    type Error = FieldErrors;

    fn try_from(p: &BgpPeer) -> Result<Self, FieldErrors> {
        PeerSettings::try_from(&p.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_prefixes: &str) -> PeerSettings {
        let spec: BgpPeerSpec =
            serde_yaml::from_str(&format!("{{peerAddress: 198.18.0.1, peerAs: 64512, maxPrefixes: {max_prefixes}}}"))
                .unwrap();
        PeerSettings::try_from(&spec).unwrap()
    }

    #[test]
    fn a_max_prefix_teardown_restarts_after_the_restart_time() {
        let restart = |m: &str| settings(m).config.max_prefixes.unwrap().restart;
        assert_eq!(restart("{limit: 10}"), Some(MaxPrefixes::DEFAULT_RESTART));
        assert_eq!(restart("{limit: 10, restartTime: 5m}"), Some(Duration::from_secs(300)));
        assert_eq!(restart("{limit: 10, restartTime: 0s}"), None, "0s: down until the BgpPeer changes");
    }
}
