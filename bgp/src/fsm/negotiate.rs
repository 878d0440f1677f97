//! Our OPEN, and what two OPENs negotiate.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::wire::{
    AddPathFamily, AddPathMode, Capability, ExtendedNextHop, Family, GrFamily, GracefulRestart, Negotiated,
    Notification, Open, OpenError,
};

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
    /// Next hop encodings offered in the extended next hop capability
    /// (RFC 8950); empty: the capability is not sent. Entries for
    /// families not in `families` are not sent either.
    pub extended_next_hop: Vec<ExtendedNextHop>,
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// ADD-PATH (RFC 7911) modes offered, per family; empty: the
    /// capability is not sent. Entries for families not in `families`
    /// are not sent either.
    pub add_path: Vec<AddPathFamily>,
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
            extended_next_hop: vec![],
            graceful_restart: None,
            add_path: vec![],
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
    /// Next hop encodings both sides offered (RFC 8950), for negotiated
    /// families: each may be used in both directions.
    pub extended_next_hop: Vec<ExtendedNextHop>,
    /// ADD-PATH per negotiated family, as it applies to us: `can_send`
    /// when we offered send and the peer receive (our NLRI of that family
    /// carry path ids, `tx`), `can_receive` when we offered receive and
    /// the peer send (`rx`). Families with neither are not listed.
    pub add_path: Vec<AddPathFamily>,
    /// The peer's graceful restart capability, if it sent one.
    pub peer_graceful_restart: Option<GracefulRestart>,
    pub peer_hostname: Option<String>,
}

/// The OPEN we send.
pub fn open_for(c: &LocalConfig) -> Open {
    let mut caps: Vec<Capability> = c.families.iter().map(|f| Capability::Multiprotocol(*f)).collect();
    let enh: Vec<ExtendedNextHop> =
        c.extended_next_hop.iter().copied().filter(|e| c.families.contains(&e.nlri)).collect();
    if !enh.is_empty() {
        caps.push(Capability::ExtendedNextHop(enh));
    }
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::EnhancedRouteRefresh);
    caps.push(Capability::FourOctetAs(c.local_as));
    if c.extended_message {
        caps.push(Capability::ExtendedMessage);
    }
    let add_path: Vec<AddPathFamily> = c.add_path.iter().copied().filter(|a| c.families.contains(&a.family)).collect();
    if !add_path.is_empty() {
        caps.push(Capability::AddPath(add_path));
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

    // RFC 8950 section 3: an encoding is used only when both sides advertised it.
    let peer_enh: Vec<ExtendedNextHop> = peer
        .capabilities()
        .filter_map(|c| match c {
            Capability::ExtendedNextHop(es) => Some(es.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    let extended_next_hop: Vec<ExtendedNextHop> =
        c.extended_next_hop.iter().copied().filter(|e| families.contains(&e.nlri) && peer_enh.contains(e)).collect();

    let add_path = negotiate_add_path(c, peer, &families);

    let hold = c.hold_time.min(peer.hold_time);
    let (hold_time, keepalive) = if hold == 0 {
        (None, None)
    } else {
        let k = keepalive_for(hold, c.keepalive);
        (Some(Duration::from_secs(hold as u64)), Some(Duration::from_secs(k as u64)))
    };
    let wire = Negotiated {
        four_octet_as: four_octet,
        extended_message: extended,
        extended_next_hop_ipv4: extended_next_hop.contains(&ExtendedNextHop::IPV4_OVER_IPV6),
        ..Negotiated::default()
    };
    let ap = |f: Family, dir: fn(AddPathMode) -> bool| add_path.iter().any(|a| a.family == f && dir(a.mode));
    let rx = Negotiated {
        add_path_ipv4: ap(Family::IPV4_UNICAST, AddPathMode::can_receive),
        add_path_ipv6: ap(Family::IPV6_UNICAST, AddPathMode::can_receive),
        ..wire
    };
    let tx = Negotiated {
        add_path_ipv4: ap(Family::IPV4_UNICAST, AddPathMode::can_send),
        add_path_ipv6: ap(Family::IPV6_UNICAST, AddPathMode::can_send),
        ..wire
    };
    Ok(SessionParams {
        remote_as,
        remote_id: peer.bgp_id,
        ibgp,
        hold_time,
        keepalive,
        families,
        rx,
        tx,
        route_refresh: has(&|c| matches!(c, Capability::RouteRefresh)),
        enhanced_route_refresh: has(&|c| matches!(c, Capability::EnhancedRouteRefresh)),
        extended_next_hop,
        add_path,
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

/// RFC 7911 section 4: for each negotiated family, we send path ids when
/// we offered send and the peer receive, and receive them when we offered
/// receive and the peer send. A family the peer lists twice: its last
/// entry counts.
fn negotiate_add_path(c: &LocalConfig, peer: &Open, families: &[Family]) -> Vec<AddPathFamily> {
    let mut peer_modes: Vec<AddPathFamily> = vec![];
    for list in peer.capabilities().filter_map(|c| match c {
        Capability::AddPath(v) => Some(v),
        _ => None,
    }) {
        for a in list {
            peer_modes.retain(|p| p.family != a.family);
            peer_modes.push(*a);
        }
    }
    families
        .iter()
        .filter_map(|f| {
            let ours = c.add_path.iter().find(|a| a.family == *f)?.mode;
            let theirs = peer_modes.iter().find(|a| a.family == *f)?.mode;
            let send = ours.can_send() && theirs.can_receive();
            let receive = ours.can_receive() && theirs.can_send();
            let mode = match (send, receive) {
                (true, true) => AddPathMode::Both,
                (true, false) => AddPathMode::Send,
                (false, true) => AddPathMode::Receive,
                (false, false) => return None,
            };
            Some(AddPathFamily { family: *f, mode })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(add_path: Vec<AddPathFamily>) -> LocalConfig {
        LocalConfig {
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            add_path,
            ..LocalConfig::new(64513, Ipv4Addr::new(198, 18, 0, 11))
        }
    }

    fn theirs(add_path: Option<Vec<AddPathFamily>>) -> Open {
        let mut caps = vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::FourOctetAs(64512),
        ];
        caps.extend(add_path.map(Capability::AddPath));
        Open::new(64512, 90, Ipv4Addr::new(198, 18, 0, 1), caps)
    }

    fn ap(family: Family, mode: AddPathMode) -> AddPathFamily {
        AddPathFamily { family, mode }
    }

    const V4: Family = Family::IPV4_UNICAST;
    const V6: Family = Family::IPV6_UNICAST;

    #[test]
    fn add_path_is_offered_for_configured_families_only() {
        let c = LocalConfig { families: vec![V4], ..ours(vec![ap(V4, AddPathMode::Both), ap(V6, AddPathMode::Both)]) };
        let open = open_for(&c);
        let caps: Vec<&Capability> = open.capabilities().filter(|c| c.code() == 69).collect();
        assert_eq!(caps, [&Capability::AddPath(vec![ap(V4, AddPathMode::Both)])]);
        assert!(!open_for(&ours(vec![])).capabilities().any(|c| c.code() == 69), "none configured: not sent");
    }

    /// FRR 8.4's default: it receives IPv4 paths, sends none.
    #[test]
    fn we_send_when_the_peer_receives_and_receive_when_it_sends() {
        let c = ours(vec![ap(V4, AddPathMode::Both), ap(V6, AddPathMode::Both)]);
        let p = negotiate(&c, &theirs(Some(vec![ap(V4, AddPathMode::Receive)]))).unwrap();
        assert_eq!(p.add_path, [ap(V4, AddPathMode::Send)]);
        assert!(p.tx.add_path_ipv4 && !p.tx.add_path_ipv6, "our IPv4 NLRI carry path ids");
        assert!(!p.rx.add_path_ipv4 && !p.rx.add_path_ipv6, "the peer's do not");

        let p = negotiate(&c, &theirs(Some(vec![ap(V4, AddPathMode::Send), ap(V6, AddPathMode::Both)]))).unwrap();
        assert_eq!(p.add_path, [ap(V4, AddPathMode::Receive), ap(V6, AddPathMode::Both)]);
        assert!(!p.tx.add_path_ipv4 && p.rx.add_path_ipv4);
        assert!(p.tx.add_path_ipv6 && p.rx.add_path_ipv6);
    }

    #[test]
    fn each_side_must_agree_per_direction() {
        // We only send; a peer that only sends gives nothing either way.
        let c = ours(vec![ap(V4, AddPathMode::Send)]);
        let p = negotiate(&c, &theirs(Some(vec![ap(V4, AddPathMode::Send)]))).unwrap();
        assert!(p.add_path.is_empty() && p.tx == p.rx && !p.tx.add_path_ipv4);
        // We only receive; a peer that can do both sends to us, we send plain.
        let c = ours(vec![ap(V4, AddPathMode::Receive)]);
        let p = negotiate(&c, &theirs(Some(vec![ap(V4, AddPathMode::Both)]))).unwrap();
        assert_eq!(p.add_path, [ap(V4, AddPathMode::Receive)]);
        assert!(p.rx.add_path_ipv4 && !p.tx.add_path_ipv4);
        // We offer nothing: whatever the peer offers, no path ids.
        let p = negotiate(&ours(vec![]), &theirs(Some(vec![ap(V4, AddPathMode::Both)]))).unwrap();
        assert!(p.add_path.is_empty() && !p.tx.add_path_ipv4 && !p.rx.add_path_ipv4);
        // The peer offers nothing.
        let p = negotiate(&ours(vec![ap(V4, AddPathMode::Both)]), &theirs(None)).unwrap();
        assert!(p.add_path.is_empty() && !p.tx.add_path_ipv4 && !p.rx.add_path_ipv4);
    }

    #[test]
    fn a_family_not_negotiated_gets_no_add_path() {
        let c = LocalConfig { families: vec![V4], ..ours(vec![ap(V4, AddPathMode::Both), ap(V6, AddPathMode::Both)]) };
        let p = negotiate(&c, &theirs(Some(vec![ap(V6, AddPathMode::Both)]))).unwrap();
        assert!(p.add_path.is_empty() && !p.tx.add_path_ipv6 && !p.rx.add_path_ipv6);
    }

    #[test]
    fn the_last_entry_of_a_family_listed_twice_counts() {
        let c = ours(vec![ap(V4, AddPathMode::Both)]);
        let open = theirs(Some(vec![ap(V4, AddPathMode::Both), ap(V4, AddPathMode::Receive)]));
        assert_eq!(negotiate(&c, &open).unwrap().add_path, [ap(V4, AddPathMode::Send)]);
    }

    /// FRR 8.4's OPEN as captured (`capability 69 00010101`) decodes and
    /// negotiates send with our default.
    #[test]
    fn frr_add_path_receive_octets() {
        let raw = Capability::decode(69, &[0, 1, 1, 1]);
        assert_eq!(raw, Capability::AddPath(vec![ap(V4, AddPathMode::Receive)]));
    }
}
