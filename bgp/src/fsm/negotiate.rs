//! Our OPEN, and what two OPENs negotiate.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::wire::{Capability, Family, GrFamily, GracefulRestart, Negotiated, Notification, Open, OpenError};

/// Graceful restart as we advertise it (RFC 4724).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// How long the peer should keep our routes after we go away (seconds, max 4095).
    pub restart_time: u16,
    /// Set the Restart State bit: we restarted and are re-announcing.
    pub restarting: bool,
    /// Our forwarding (the node's data plane) survives our restart.
    pub forwarding_preserved: bool,
}

/// What the local side proposes for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    pub local_as: u32,
    /// The AS the peer must have; `None` accepts any.
    pub remote_as: Option<u32>,
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds: 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    /// Keepalive interval in seconds; `None` is a third of the hold time.
    pub keepalive: Option<u16>,
    pub connect_retry: Duration,
    /// Never connect; wait for the peer.
    pub passive: bool,
    pub families: Vec<Family>,
    pub extended_message: bool,
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Sent in the FQDN capability.
    pub hostname: Option<String>,
}

impl LocalConfig {
    /// Defaults: hold 90 s, connect-retry 5 s (GoBGP and BIRD use about
    /// that; RFC 4271's 120 s is too slow for a load balancer), IPv4 unicast.
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Self {
        LocalConfig {
            local_as,
            remote_as: None,
            router_id,
            hold_time: 90,
            keepalive: None,
            connect_retry: Duration::from_secs(5),
            passive: false,
            families: vec![Family::IPV4_UNICAST],
            extended_message: true,
            graceful_restart: None,
            hostname: None,
        }
    }
}

/// What a session negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    pub remote_as: u32,
    pub remote_id: Ipv4Addr,
    /// Internal session (same AS).
    pub ibgp: bool,
    /// Negotiated hold time; `None` when zero (no keepalives, no hold timer).
    pub hold_time: Option<Duration>,
    pub keepalive: Option<Duration>,
    /// Families both sides support.
    pub families: Vec<Family>,
    /// Wire format of what the peer sends.
    pub rx: Negotiated,
    /// Wire format of what we send.
    pub tx: Negotiated,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// The peer's graceful restart capability, if it sent one.
    pub peer_graceful_restart: Option<GracefulRestart>,
    pub peer_hostname: Option<String>,
}

/// The OPEN we send.
pub fn open_for(c: &LocalConfig) -> Open {
    let mut caps: Vec<Capability> = c.families.iter().map(|f| Capability::Multiprotocol(*f)).collect();
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::EnhancedRouteRefresh);
    caps.push(Capability::FourOctetAs(c.local_as));
    if c.extended_message {
        caps.push(Capability::ExtendedMessage);
    }
    if let Some(gr) = &c.graceful_restart {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restarting: gr.restarting,
            notification: false,
            restart_time: gr.restart_time.min(4095),
            families: c
                .families
                .iter()
                .map(|f| GrFamily { family: *f, forwarding_preserved: gr.forwarding_preserved })
                .collect(),
        }));
    }
    if let Some(h) = &c.hostname {
        caps.push(Capability::Fqdn { hostname: h.clone(), domain: String::new() });
    }
    Open::new(c.local_as, c.hold_time, c.router_id, caps)
}

fn open_error(subcode: OpenError) -> Notification {
    Notification::new(subcode, vec![])
}

/// The keepalive interval for a (non-zero) hold time: the one configured
/// but at most a third of the hold time (RFC 4271 section 10), a third
/// when none is; at least 1 s.
pub fn keepalive_for(hold_time: u16, configured: Option<u16>) -> u16 {
    configured.map_or(hold_time / 3, |k| k.min(hold_time / 3)).max(1)
}

/// Check the peer's OPEN against our configuration and compute what the
/// session uses; an error is the NOTIFICATION to send.
pub fn negotiate(c: &LocalConfig, peer: &Open) -> Result<SessionParams, Notification> {
    let remote_as = peer.asn();
    if let Some(want) = c.remote_as {
        if want != remote_as {
            // Data: the My Autonomous System field as received.
            return Err(Notification::new(OpenError::BadPeerAs, peer.my_as.to_be_bytes().to_vec()));
        }
    }
    let ibgp = remote_as == c.local_as;
    // RFC 6286: an internal peer must not share our identifier.
    if ibgp && peer.bgp_id == c.router_id {
        return Err(open_error(OpenError::BadBgpIdentifier));
    }
    // RFC 4271 section 6.2: a recognized but malformed parameter.
    if peer.capabilities().any(|c| c.malformed().is_some()) {
        return Err(open_error(OpenError::Unspecific));
    }
    let has = |f: &dyn Fn(&Capability) -> bool| peer.capabilities().any(f);
    let four_octet = has(&|c| matches!(c, Capability::FourOctetAs(_)));
    let extended = c.extended_message && has(&|c| matches!(c, Capability::ExtendedMessage));
    let peer_families: Vec<Family> = peer.capabilities().filter_map(Capability::multiprotocol_family).collect();
    // RFC 4760: a peer that sends no multiprotocol capability speaks IPv4 unicast.
    let peer_families = if peer_families.is_empty() { vec![Family::IPV4_UNICAST] } else { peer_families };
    let families: Vec<Family> = c.families.iter().copied().filter(|f| peer_families.contains(f)).collect();

    let hold = c.hold_time.min(peer.hold_time);
    let (hold_time, keepalive) = if hold == 0 {
        (None, None)
    } else {
        let k = keepalive_for(hold, c.keepalive);
        (Some(Duration::from_secs(hold as u64)), Some(Duration::from_secs(k as u64)))
    };
    let wire = Negotiated { four_octet_as: four_octet, extended_message: extended, ..Negotiated::default() };
    Ok(SessionParams {
        remote_as,
        remote_id: peer.bgp_id,
        ibgp,
        hold_time,
        keepalive,
        families,
        rx: wire,
        tx: wire,
        route_refresh: has(&|c| matches!(c, Capability::RouteRefresh)),
        enhanced_route_refresh: has(&|c| matches!(c, Capability::EnhancedRouteRefresh)),
        peer_graceful_restart: peer.capabilities().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g.clone()),
            _ => None,
        }),
        peer_hostname: peer.capabilities().find_map(|c| match c {
            Capability::Fqdn { hostname, .. } => Some(hostname.clone()),
            _ => None,
        }),
    })
}
