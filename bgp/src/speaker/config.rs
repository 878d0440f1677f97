//! What the speaker is told: its own settings and each peer's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::bfd::BfdConfig;
use crate::fsm::{keepalive_for, GracefulRestartConfig};
use crate::wire::{AddPathFamily, AddPathMode, Community, Family, LargeCommunity};

/// Speaker-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Where to accept connections from peers; `None`: only dial out.
    pub listen: Option<SocketAddr>,
    /// Sent in the FQDN capability.
    pub hostname: Option<String>,
    pub graceful_restart: Option<GracefulRestartConfig>,
}

/// What to do when a peer announces more distinct prefixes of one family
/// than allowed (re-announcements of a prefix count once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPrefixes {
    pub limit: u64,
    /// Tear the session down (Cease / Maximum Number of Prefixes Reached);
    /// otherwise log a warning.
    pub teardown: bool,
    /// After a teardown, start the session again after this long (FRR's
    /// `maximum-prefix N restart M`); `None`: keep it down until the
    /// peer's configuration changes.
    pub restart: Option<Duration>,
}

impl MaxPrefixes {
    /// How long a torn-down session stays down by default.
    pub const DEFAULT_RESTART: Duration = Duration::from_secs(60);

    /// A limit, restarting after [`MaxPrefixes::DEFAULT_RESTART`].
    pub fn new(limit: u64, teardown: bool) -> Self {
        MaxPrefixes { limit, teardown, restart: Some(Self::DEFAULT_RESTART) }
    }
}

/// How the speaker tells its peers apart: an address in a VRF. The same
/// address may be a peer in two VRFs (each VRF is a routing table of its
/// own). An address alone is the peer in the default VRF.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey {
    /// The Linux VRF device; `None`: the default VRF.
    pub vrf: Option<String>,
    pub address: IpAddr,
}

impl From<IpAddr> for PeerKey {
    fn from(address: IpAddr) -> Self {
        PeerKey { vrf: None, address }
    }
}

impl std::fmt::Display for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.vrf {
            Some(v) => write!(f, "{} in vrf {v}", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

/// One peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub address: IpAddr,
    /// The Linux VRF device the session is in: its sockets are bound to
    /// it (`SO_BINDTODEVICE`), so the route to the peer and the source
    /// address come from the VRF's table, and connections from the peer
    /// are accepted on a listener bound to it. `None`: the default VRF.
    pub vrf: Option<String>,
    pub port: u16,
    pub remote_as: u32,
    /// Overrides the speaker's AS for this session.
    pub local_as: Option<u32>,
    pub hold_time: u16,
    pub keepalive: Option<u16>,
    pub connect_retry: Duration,
    pub passive: bool,
    pub source: Option<IpAddr>,
    /// eBGP multihop TTL; directly connected eBGP uses TTL 1.
    pub ebgp_multihop: Option<u8>,
    /// GTSM (RFC 5082) with this many hops.
    pub gtsm_hops: Option<u8>,
    pub md5_password: Option<String>,
    pub families: Vec<Family>,
    /// ADD-PATH (RFC 7911) offered per family (families not in
    /// `families` are left out). Send: when the peer receives, every path
    /// of a prefix meant for it goes out, each with its own path id;
    /// otherwise only the first, counted in
    /// [`PeerStatus::paths_not_sent`](super::PeerStatus::paths_not_sent).
    /// Receive: the peer's paths are kept apart by path id. Default: both,
    /// for IPv4 and IPv6 unicast ([`PeerConfig::default_add_path`]).
    pub add_path: Vec<AddPathFamily>,
    pub max_prefixes: Option<MaxPrefixes>,
    /// Keep received routes in an Adj-RIB-In (default: count and drop).
    pub import: bool,
    /// Added to every route sent to this peer.
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    /// Next hops for families whose address the session itself does not give.
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    pub next_hop_v6_link_local: Option<Ipv6Addr>,
    /// Run a single-hop BFD session with the peer (from the BGP
    /// session's local address, or `source` until that is known) and
    /// tear the BGP session down (Cease / BFD Down) when BFD goes down.
    pub bfd: Option<BfdConfig>,
}

impl PeerConfig {
    pub fn new(address: IpAddr, remote_as: u32) -> Self {
        PeerConfig {
            address,
            vrf: None,
            port: 179,
            remote_as,
            local_as: None,
            hold_time: 90,
            keepalive: None,
            connect_retry: Duration::from_secs(5),
            passive: false,
            source: None,
            ebgp_multihop: None,
            gtsm_hops: None,
            md5_password: None,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            add_path: Self::default_add_path(),
            max_prefixes: None,
            import: false,
            communities: vec![],
            large_communities: vec![],
            next_hop_v4: None,
            next_hop_v6: None,
            next_hop_v6_link_local: None,
            bfd: None,
        }
    }

    /// The peer's key: its address in its VRF.
    pub fn key(&self) -> PeerKey {
        PeerKey { vrf: self.vrf.clone(), address: self.address }
    }

    /// Send and receive, for IPv4 and IPv6 unicast.
    pub fn default_add_path() -> Vec<AddPathFamily> {
        [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
            .map(|family| AddPathFamily { family, mode: AddPathMode::Both })
            .into()
    }

    /// Settings that are taken but not as given, each as a sentence for
    /// the log: a keepalive interval above a third of the hold time is cut
    /// to a third ([`keepalive_for`]; one at or above the hold time would
    /// let the session expire).
    pub fn adjustments(&self) -> Vec<String> {
        let mut v = vec![];
        if let Some(k) = self.keepalive {
            let used = keepalive_for(self.hold_time, Some(k));
            if self.hold_time > 0 && used != k {
                v.push(format!(
                    "keepalive {k} s with a hold time of {} s: {used} s is used (at least 1 s, at most a third of the hold time)",
                    self.hold_time
                ));
            }
        }
        v
    }
}
