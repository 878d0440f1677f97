//! What a running node reports about itself on its admin server's `/status` (and what
//! `mooring status` prints): each BGP session and each VIP with the peers it goes to and its
//! attributes. [`Status::of`] reads a speaker; the rest is pure data, serialised as JSON on
//! the wire and deserialised by the command. Which peers a route goes to is decided in one
//! place, [`route_peers`].

use std::net::IpAddr;

use mooring_bgp::fsm::State;
use mooring_bgp::speaker::{PeerConfig, PeerStatus, RouteAttrs, Speaker};
use mooring_bgp::wire::{Community, Family};
use serde::{Deserialize, Serialize};

/// Everything `/status` answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub local_as: u32,
    pub router_id: String,
    pub peers: Vec<PeerReport>,
    pub vips: Vec<VipReport>,
}

/// One BGP session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerReport {
    pub address: String,
    pub remote_as: u32,
    pub state: String,
    /// Seconds Established (absent while it is not).
    pub uptime_seconds: Option<u64>,
    pub remote_id: Option<String>,
    /// Why the session last went down (a NOTIFICATION sent or received, a lost connection).
    pub last_error: Option<String>,
    /// Set while the speaker keeps the session down after the peer broke a limit.
    pub held_down: Option<String>,
    pub prefixes_sent: u64,
    pub prefixes_received: u64,
    /// Paths held back because the session has no ADD-PATH send for their family.
    #[serde(default)]
    pub paths_not_sent: u64,
    /// The prefix limit configured for the peer.
    pub max_prefixes: Option<u64>,
    /// What the session negotiated: its families, graceful restart, the peer's hostname.
    pub capabilities: Vec<String>,
    /// Graceful restart (RFC 4724) negotiated: a restart keeps the routes at the peer.
    pub graceful_restart: bool,
    /// Routes go to this peer with GRACEFUL_SHUTDOWN (RFC 8326): the node is draining.
    pub graceful_shutdown: bool,
    /// The BFD session's state (absent: no BFD with this peer).
    pub bfd: Option<String>,
    pub flaps: u64,
}

/// One announced prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VipReport {
    pub prefix: String,
    /// The peers it is announced to now.
    pub peers: Vec<String>,
    /// `self`, or the next hop configured.
    pub next_hop: String,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub ext_communities: Vec<String>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub as_path_prepend: u8,
}

impl Status {
    /// What `speaker` has now.
    pub fn of(speaker: &Speaker) -> Status {
        let cfg = speaker.config();
        let configs = speaker.peer_configs();
        let peers = speaker.peers();
        let routes = speaker.routes();
        Status::from_parts(cfg.local_as, cfg.router_id.to_string(), &peers, &configs, &routes)
    }

    /// Pure: the report of these sessions, their configurations and the routes.
    pub fn from_parts(
        local_as: u32,
        router_id: String,
        peers: &[PeerStatus],
        configs: &[PeerConfig],
        routes: &[(ipnetwork::IpNetwork, RouteAttrs)],
    ) -> Status {
        let draining =
            !routes.is_empty() && routes.iter().all(|(_, a)| a.communities.contains(&Community::GRACEFUL_SHUTDOWN));
        let mut vips: Vec<VipReport> = routes
            .iter()
            .enumerate()
            .map(|(i, (prefix, a))| VipReport {
                prefix: prefix.to_string(),
                peers: route_peers(routes, i, peers).iter().map(IpAddr::to_string).collect(),
                next_hop: a.next_hop.map(|n| n.to_string()).unwrap_or_else(|| "self".into()),
                communities: a.communities.iter().map(ToString::to_string).collect(),
                large_communities: a.large_communities.iter().map(ToString::to_string).collect(),
                ext_communities: a.ext_communities.iter().map(ToString::to_string).collect(),
                med: a.med,
                local_pref: a.local_pref,
                as_path_prepend: a.as_path_prepend,
            })
            .collect();
        vips.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        let peers = peers
            .iter()
            .map(|p| {
                let cfg = configs.iter().find(|c| c.address == p.address);
                let mut capabilities: Vec<String> = p.families.iter().map(ToString::to_string).collect();
                if p.graceful_restart {
                    capabilities.push("graceful-restart".into());
                }
                for a in p.add_path.iter().filter(|a| a.mode.can_send()) {
                    capabilities.push(format!("add-path send {}", a.family));
                }
                if let Some(h) = &p.peer_hostname {
                    capabilities.push(format!("hostname {h}"));
                }
                PeerReport {
                    address: p.address.to_string(),
                    remote_as: p.remote_as,
                    state: p.state.to_string(),
                    uptime_seconds: (p.state == State::Established).then(|| p.uptime().map(|d| d.as_secs())).flatten(),
                    remote_id: p.remote_id.map(|r| r.to_string()),
                    last_error: p.last_error.clone(),
                    held_down: p.held_down.as_ref().map(|h| h.cause.to_string()),
                    prefixes_sent: p.prefixes_sent,
                    prefixes_received: p.prefixes_received.values().sum(),
                    paths_not_sent: p.paths_not_sent,
                    max_prefixes: cfg.and_then(|c| c.max_prefixes.as_ref()).map(|m| m.limit),
                    capabilities,
                    graceful_restart: p.graceful_restart,
                    graceful_shutdown: draining && p.state == State::Established,
                    bfd: p.bfd.map(|b| b.to_string()),
                    flaps: p.flaps,
                }
            })
            .collect();
        Status { local_as, router_id, peers, vips }
    }
}

/// The peers path `i` of `routes` goes to: every Established session that negotiated the
/// route's family, that the path is for ([`RouteAttrs::to`], BgpAdvertisements) and that no
/// earlier path of the same prefix is for (a peer is sent the first path meant for it).
pub fn route_peers(routes: &[(ipnetwork::IpNetwork, RouteAttrs)], i: usize, peers: &[PeerStatus]) -> Vec<IpAddr> {
    let (prefix, attrs) = &routes[i];
    peers
        .iter()
        .filter(|p| p.state == State::Established)
        .filter(|p| p.families.contains(&Family::of(prefix)))
        .filter(|p| attrs.is_for(p.address))
        .filter(|p| !routes[..i].iter().any(|(q, a)| q == prefix && a.is_for(p.address)))
        .map(|p| p.address)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(addr: &str, state: State, families: Vec<Family>) -> PeerStatus {
        PeerStatus { state, families, ..PeerStatus::new(addr.parse().unwrap(), 64512) }
    }

    #[test]
    fn a_route_goes_to_established_sessions_of_its_family() {
        let peers = [
            peer("198.18.0.1", State::Established, vec![Family::IPV4_UNICAST]),
            peer("198.18.0.2", State::Active, vec![]),
            peer("2001:db8:ffff::1", State::Established, vec![Family::IPV6_UNICAST]),
        ];
        let v4 = "203.0.113.10/32".parse().unwrap();
        let v6 = "2001:db8:ffff:1::10/128".parse().unwrap();
        let routes = [(v4, RouteAttrs::default()), (v6, RouteAttrs::default())];
        assert_eq!(route_peers(&routes, 0, &peers), vec!["198.18.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(route_peers(&routes, 1, &peers), vec!["2001:db8:ffff::1".parse::<IpAddr>().unwrap()]);
        // Paths for named peers: each peer gets the first path meant for it.
        let a: IpAddr = "198.18.0.1".parse().unwrap();
        let both = [peers[0].clone(), peer("198.18.0.3", State::Established, vec![Family::IPV4_UNICAST])];
        let paths = [
            (v4, RouteAttrs { med: Some(1), to: Some(vec![a].into()), ..RouteAttrs::default() }),
            (v4, RouteAttrs::default()),
        ];
        assert_eq!(route_peers(&paths, 0, &both), [a]);
        assert_eq!(route_peers(&paths, 1, &both), ["198.18.0.3".parse::<IpAddr>().unwrap()]);
        let attrs = RouteAttrs { communities: vec![Community::GRACEFUL_SHUTDOWN], ..RouteAttrs::default() };
        let s = Status::from_parts(64513, "192.0.2.1".into(), &peers, &[], &[(v4, attrs)]);
        assert_eq!(s.vips[0].peers, ["198.18.0.1"]);
        assert_eq!(s.vips[0].next_hop, "self");
        assert!(s.peers[0].graceful_shutdown, "every route carries GRACEFUL_SHUTDOWN: draining");
        assert!(!s.peers[1].graceful_shutdown, "not Established: not draining to it");
        assert_eq!(s.peers[1].uptime_seconds, None);
    }
}
