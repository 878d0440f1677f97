//! What the speaker tells: each peer's state and counters, why a peer is
//! down, state changes as events, and the speaker's own status.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use super::PeerKey;
use crate::fsm::{DownReason, State};
use crate::wire::{AddPathFamily, Family};

pub use super::listener::ListenerState;

/// A session's state and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub address: IpAddr,
    /// The VRF the session is in; `None`: the default VRF.
    pub vrf: Option<String>,
    pub remote_as: u32,
    pub state: State,
    pub established_since: Option<SystemTime>,
    pub remote_id: Option<Ipv4Addr>,
    pub peer_hostname: Option<String>,
    pub families: Vec<Family>,
    /// Graceful restart (RFC 4724) negotiated on the current session: both
    /// sides sent the capability, so closing without a NOTIFICATION makes
    /// the peer keep our routes for the restart time.
    pub graceful_restart: bool,
    /// Why the session last went down, as text (`down_reason`, displayed).
    pub last_error: Option<String>,
    /// Why the session last left Established (or its handshake failed
    /// after OPEN); kept until it is Established again.
    pub down_reason: Option<DownReason>,
    /// Set while the speaker keeps the session down on purpose after the
    /// peer broke a limit.
    pub held_down: Option<HeldDown>,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub updates_sent: u64,
    pub updates_received: u64,
    /// Prefixes in the Adj-RIB-Out.
    pub prefixes_sent: u64,
    /// ADD-PATH (RFC 7911) as negotiated on the current session, per
    /// family: `can_send`: the peer is sent every path meant for it;
    /// `can_receive`: its paths are told apart by path id.
    pub add_path: Vec<AddPathFamily>,
    /// Paths meant for this peer that were not sent because the session
    /// has no ADD-PATH send for their family: of a prefix with N such
    /// paths only the first goes, and N - 1 count here. Zero when every
    /// path goes.
    pub paths_not_sent: u64,
    /// Distinct prefixes the peer announced and did not withdraw, per
    /// family (exact with import or a prefix limit; without either the
    /// speaker keeps no prefixes, and this counts announcements minus
    /// withdrawals).
    pub prefixes_received: BTreeMap<Family, u64>,
    /// Times the session left Established.
    pub flaps: u64,
    /// The BFD session's state, when BFD runs with the peer.
    pub bfd: Option<crate::bfd::BfdState>,
}

impl PeerStatus {
    /// A peer not started yet: Idle, every counter zero.
    pub fn new(address: IpAddr, remote_as: u32) -> Self {
        PeerStatus {
            address,
            vrf: None,
            remote_as,
            state: State::Idle,
            established_since: None,
            remote_id: None,
            peer_hostname: None,
            families: vec![],
            graceful_restart: false,
            last_error: None,
            down_reason: None,
            held_down: None,
            messages_sent: 0,
            messages_received: 0,
            updates_sent: 0,
            updates_received: 0,
            prefixes_sent: 0,
            add_path: vec![],
            paths_not_sent: 0,
            prefixes_received: BTreeMap::new(),
            flaps: 0,
            bfd: None,
        }
    }

    /// The peer's key: its address in its VRF.
    pub fn key(&self) -> PeerKey {
        PeerKey { vrf: self.vrf.clone(), address: self.address }
    }

    /// How long the session has been Established.
    pub fn uptime(&self) -> Option<Duration> {
        self.established_since.and_then(|t| t.elapsed().ok())
    }
}

/// A session state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEvent {
    pub peer: IpAddr,
    /// The peer's VRF; `None`: the default VRF.
    pub vrf: Option<String>,
    pub from: State,
    pub to: State,
    /// Why the session went down.
    pub reason: Option<String>,
}

impl PeerEvent {
    /// The peer's key: its address in its VRF (displayed `ADDR in vrf V`).
    pub fn key(&self) -> PeerKey {
        PeerKey { vrf: self.vrf.clone(), address: self.peer }
    }
}

/// A session kept down by the speaker after the peer broke a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldDown {
    pub cause: HoldDownCause,
    /// When the session starts again; `None`: not before the peer's
    /// configuration changes ([`super::Speaker::update_peer`]).
    pub until: Option<SystemTime>,
}

/// Why a session is held down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldDownCause {
    /// More than `limit` distinct prefixes of `family` (Cease / Maximum
    /// Number of Prefixes Reached was sent).
    MaxPrefixes { family: Family, limit: u64 },
}

impl std::fmt::Display for HoldDownCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HoldDownCause::MaxPrefixes { family, limit } => write!(f, "more than {limit} prefixes of {family}"),
        }
    }
}

/// The speaker as a whole, for health and readiness checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerStatus {
    /// False once [`super::Speaker::shutdown`] was called.
    pub running: bool,
    pub listener: ListenerState,
    /// Peers configured, and how many of them are Established.
    pub peers: usize,
    pub established: usize,
}
