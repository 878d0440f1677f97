//! One peer as the speaker sees it: Adj-RIB-Out (what we sent), inbound
//! accounting (an Adj-RIB-In, a prefix set for a prefix limit, or counts
//! alone), the prefix limit, status and counters. Implements the
//! session's [`Handler`].

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use tokio::sync::{broadcast, watch};
use tracing::warn;

use super::adj_rib_in::AdjRibIn;
use super::export::ExportCtx;
use super::prefix_set::PrefixSet;
use super::update_group::{Membership, Taken};
use super::{HeldDown, HoldDownCause, PeerConfig, PeerEvent, PeerStatus, Shared};
use crate::fsm::{DownReason, SessionParams, State};
use crate::log_limit::{suppressed_note, LogLimit};
use crate::session::{Handler, Teardown};
use crate::wire::{Cease, ExtendedNextHop, Family, Message, Nlri, Notification, RefreshSubtype, RouteRefresh, Update};

pub(crate) struct PeerSession {
    pub cfg: Arc<PeerConfig>,
    pub shared: Arc<Shared>,
    pub status: Arc<Mutex<PeerStatus>>,
    pub events: broadcast::Sender<PeerEvent>,
    params: Option<SessionParams>,
    /// While Established: the update group whose Adj-RIB-Out says what
    /// this peer was sent.
    member: Option<Membership>,
    /// Adj-RIB-In, when importing.
    rib_in: AdjRibIn,
    /// The prefixes announced, when not importing but limiting them.
    announced: Option<PrefixSet>,
    /// Prefixes received per family (exact with import or a limit;
    /// announcements minus withdrawals otherwise).
    received: PrefixCounts,
    /// Families the session negotiated (what arrives for others is ignored).
    families: [bool; 2],
    /// For lines about UPDATEs the peer can send at will (malformed
    /// attributes, families not negotiated).
    update_log: LogLimit,
    /// Messages and UPDATEs received since they were last copied into the
    /// status (they are copied once per batch read, not per message).
    unpublished: (u64, u64),
    /// Routes kept from a peer that is restarting gracefully, and until when.
    stale: HashSet<Nlri>,
    stale_until: Option<Instant>,
    max_prefix_warned: bool,
    prev_state: State,
    /// The local address for this peer's BFD session, when it has one.
    pub bfd_local: Option<watch::Sender<Option<IpAddr>>>,
}

impl PeerSession {
    pub fn new(
        cfg: Arc<PeerConfig>,
        shared: Arc<Shared>,
        status: Arc<Mutex<PeerStatus>>,
        events: broadcast::Sender<PeerEvent>,
    ) -> Self {
        // Without import, prefixes are kept (without attributes) only to
        // enforce a limit exactly: 8 octets an IPv4 prefix, bounded by the
        // limit when exceeding it tears the session down.
        let announced = (!cfg.import && cfg.max_prefixes.is_some()).then(PrefixSet::default);
        PeerSession {
            cfg,
            shared,
            status,
            events,
            params: None,
            member: None,
            rib_in: AdjRibIn::default(),
            announced,
            received: PrefixCounts::default(),
            families: [false; 2],
            update_log: LogLimit::new(10, Duration::from_secs(60)),
            unpublished: (0, 0),
            stale: HashSet::new(),
            stale_until: None,
            max_prefix_warned: false,
            prev_state: State::Idle,
            bfd_local: None,
        }
    }

    /// Send the difference between the speaker's routes and what this
    /// peer was sent (encoded once for its update group).
    fn sync(&mut self, out: &mut BytesMut) {
        let Some(m) = &mut self.member else { return };
        let taken = {
            let table = self.shared.routes.read().expect("route table lock");
            self.shared.groups.sync(m, &table, out)
        };
        self.report(taken);
    }

    /// Log what the update group said and count what it wrote.
    fn report(&mut self, t: Taken) {
        for family in &t.paths_held_back {
            warn!(
                peer = %self.cfg.address, %family,
                "the peer does not receive ADD-PATH for this family: of prefixes with several paths for it, only the first path is announced (counted in paths_not_sent)"
            );
        }
        for family in &t.no_next_hop {
            let why = if *family == Family::IPV4_UNICAST {
                "no IPv4 next hop is known for this session and extended next hop (RFC 8950) was not negotiated"
            } else {
                "no IPv6 next hop is known for this session"
            };
            warn!(peer = %self.cfg.address, %family, "routes of this family not announced: {why}");
        }
        for e in &t.encode_errors {
            warn!(peer = %self.cfg.address, "{e}");
        }
        let (prefixes, not_sent) = self.member.as_ref().map_or((0, 0), Membership::counts);
        let mut s = self.status.lock().expect("status lock");
        s.updates_sent += t.messages as u64;
        s.messages_sent += t.messages as u64;
        s.prefixes_sent = prefixes as u64;
        s.paths_not_sent = not_sent;
    }

    fn emit(&self, from: State, to: State, reason: Option<String>) {
        let _ = self.events.send(PeerEvent { peer: self.cfg.address, vrf: self.cfg.vrf.clone(), from, to, reason });
    }

    fn purge_stale_if_expired(&mut self, now: Instant) {
        if self.stale_until.is_some_and(|t| now >= t) {
            for n in self.stale.drain() {
                self.rib_in.remove(&n);
            }
            self.stale_until = None;
            self.recount();
        }
    }

    /// Copy the counters into the status, in place (no allocation once
    /// the families are known).
    fn publish_counts(&mut self) {
        let mut s = self.status.lock().expect("status lock");
        let (messages, updates) = std::mem::take(&mut self.unpublished);
        s.messages_received += messages;
        s.updates_received += updates;
        self.received.publish(&mut s.prefixes_received);
    }

    fn recount(&mut self) {
        if self.cfg.import {
            self.received = PrefixCounts::default();
            for f in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
                let c = self.rib_in.count(f);
                if c > 0 {
                    self.received.set(f, c);
                }
            }
        }
        self.publish_counts();
    }
}

impl PeerSession {
    /// The prefixes an UPDATE announces and withdraws in the families the
    /// session negotiated; what it carries for others is ignored (RFC
    /// 4760 section 6), with a line in the log.
    fn negotiated_parts<'u>(
        &mut self,
        u: &'u Update,
        now: Instant,
    ) -> (impl Iterator<Item = &'u Nlri>, impl Iterator<Item = &'u Nlri>) {
        let [v4, v6] = self.families;
        let ok = |f: Family| (f == Family::IPV4_UNICAST && v4) || (f == Family::IPV6_UNICAST && v6);
        let v4_fields = !u.nlri.is_empty() || !u.withdrawn.is_empty();
        let reach = u.mp_reach().map(|m| (m.family, m.nlri.prefixes()));
        let unreach = u.mp_unreach().map(|m| (m.family, m.withdrawn.prefixes()));
        let ignored = [(Family::IPV4_UNICAST, v4_fields), (Family::IPV6_UNICAST, false)]
            .into_iter()
            .chain(reach.map(|(f, _)| (f, true)))
            .chain(unreach.map(|(f, _)| (f, true)))
            .find(|(f, carried)| *carried && !ok(*f));
        if let Some((family, _)) = ignored {
            if let Some(n) = self.update_log.allow(now) {
                warn!(
                    peer = %self.cfg.address, %family,
                    "UPDATE for a family the session did not negotiate: ignored{}", suppressed_note(n)
                );
            }
        }
        let none: &'u [Nlri] = &[];
        let pick = |f: Family, p: &'u [Nlri]| if ok(f) { p } else { none };
        let announced = pick(Family::IPV4_UNICAST, &u.nlri).iter().chain(reach.map_or(none, |(f, p)| pick(f, p)));
        let withdrawn =
            pick(Family::IPV4_UNICAST, &u.withdrawn).iter().chain(unreach.map_or(none, |(f, p)| pick(f, p)));
        (announced, withdrawn)
    }

    /// Enforce the prefix limit, per family: tear down (and hold the
    /// session down for the restart time) or warn once.
    fn check_limit(&mut self) -> Option<Teardown> {
        let m = self.cfg.max_prefixes?;
        let (family, count) =
            PrefixCounts::FAMILIES.into_iter().map(|f| (f, self.received.get(f))).find(|(_, c)| *c > m.limit)?;
        if !m.teardown {
            if !self.max_prefix_warned {
                self.max_prefix_warned = true;
                warn!(peer = %self.cfg.address, %family, count, limit = m.limit, "maximum prefixes exceeded");
            }
            return None;
        }
        let restart = match m.restart {
            Some(d) => format!("restarting in {d:?}"),
            None => "down until its configuration changes".into(),
        };
        warn!(peer = %self.cfg.address, %family, count, limit = m.limit, "maximum prefixes exceeded: tearing down, {restart}");
        // RFC 4486: AFI, SAFI, upper bound.
        let mut data = family.afi.to_be_bytes().to_vec();
        data.push(family.safi);
        data.extend_from_slice(&(m.limit.min(u32::MAX as u64) as u32).to_be_bytes());
        self.status.lock().expect("status lock").held_down = Some(HeldDown {
            cause: HoldDownCause::MaxPrefixes { family, limit: m.limit },
            until: m.restart.map(|d| SystemTime::now() + d),
        });
        Some(Teardown { notification: Notification::new(Cease::MaxPrefixes, data), restart_after: m.restart })
    }
}

impl Handler for PeerSession {
    fn state_changed(&mut self, from: State, to: State) {
        {
            let mut s = self.status.lock().expect("status lock");
            s.state = to;
            if to != State::Idle {
                // Started again (after a hold-down, say).
                s.held_down = None;
            }
        }
        self.prev_state = from;
        // `established` and `down` report those transitions, with details.
        let reported_by_down =
            to == State::Idle && matches!(from, State::OpenSent | State::OpenConfirm | State::Established);
        if to != State::Established && !reported_by_down {
            self.emit(from, to, None);
        }
    }

    fn established(&mut self, p: &SessionParams, local: SocketAddr, _now: Instant, out: &mut BytesMut) {
        let local_as = self.cfg.local_as.unwrap_or(self.shared.config.local_as);
        let export = ExportCtx {
            peer: self.cfg.address,
            local_as,
            ibgp: p.ibgp,
            local,
            next_hop_v4: self.cfg.next_hop_v4,
            next_hop_v6: self.cfg.next_hop_v6,
            next_hop_v6_link_local: self.cfg.next_hop_v6_link_local,
            extended_next_hop_ipv4: p.extended_next_hop.contains(&ExtendedNextHop::IPV4_OVER_IPV6),
            communities: self.cfg.communities.clone(),
            large_communities: self.cfg.large_communities.clone(),
            add_path: p.add_path.iter().filter(|a| a.mode.can_send()).map(|a| a.family).collect(),
        };
        self.params = Some(p.clone());
        self.families = PrefixCounts::FAMILIES.map(|f| p.families.contains(&f));
        if let Some(b) = &self.bfd_local {
            let ip = local.ip().to_canonical();
            b.send_if_modified(|cur| (*cur != Some(ip)).then(|| *cur = Some(ip)).is_some());
        }
        self.member = None;
        self.max_prefix_warned = false;
        {
            let mut s = self.status.lock().expect("status lock");
            s.established_since = Some(SystemTime::now());
            s.remote_id = Some(p.remote_id);
            s.peer_hostname = p.peer_hostname.clone();
            s.families = p.families.clone();
            s.add_path = p.add_path.clone();
            s.graceful_restart = self.shared.config.graceful_restart.is_some() && p.peer_graceful_restart.is_some();
            s.state = State::Established;
            s.down_reason = None;
        }
        self.emit(State::OpenConfirm, State::Established, None);
        let (m, taken) = {
            let table = self.shared.routes.read().expect("route table lock");
            self.shared.groups.join(&export, &p.families, p.tx, &table, out)
        };
        self.member = Some(m);
        self.report(taken);
        // End-of-RIB for every family (RFC 4724; harmless without GR).
        for f in &p.families {
            if Message::Update(Update::end_of_rib(*f)).encode(&p.tx, out).is_ok() {
                let mut s = self.status.lock().expect("status lock");
                s.messages_sent += 1;
                s.updates_sent += 1;
            }
        }
    }

    fn routes_changed(&mut self, out: &mut BytesMut) {
        self.sync(out);
    }

    fn update(&mut self, u: Update, now: Instant) -> Option<Teardown> {
        self.purge_stale_if_expired(now);
        if let Some(f) = u.as_end_of_rib() {
            // The peer finished re-sending: what is still stale is gone.
            let gone: Vec<Nlri> = self.stale.iter().filter(|n| n.family() == f).copied().collect();
            for n in gone {
                self.stale.remove(&n);
                self.rib_in.remove(&n);
            }
            self.recount();
            return None;
        }
        if !u.attr_errors.is_empty() {
            if let Some(n) = self.update_log.allow(now) {
                warn!(peer = %self.cfg.address, update = %u, "UPDATE with malformed attributes (RFC 7606){}", suppressed_note(n));
            }
        }
        let (announced, withdrawn) = self.negotiated_parts(&u, now);
        let withdraw_all = u.is_treat_as_withdraw();
        if self.cfg.import {
            // Counts follow each insert and remove (a full recount per
            // UPDATE would make a full table quadratic).
            let (rib, received, stale) = (&mut self.rib_in, &mut self.received, &mut self.stale);
            let mut gone = |n: &Nlri| {
                if rib.remove(n) {
                    received.sub(n.family(), 1);
                }
                if !stale.is_empty() {
                    stale.remove(n);
                }
            };
            withdrawn.for_each(&mut gone);
            let mut announced = announced.peekable();
            if withdraw_all {
                announced.for_each(&mut gone);
            } else if announced.peek().is_some() {
                // A clone of the shared list: a reference-count increment.
                let attrs = rib.intern(u.attrs.clone());
                for n in announced {
                    if !stale.is_empty() {
                        stale.remove(n);
                    }
                    if rib.insert(n, attrs) {
                        received.add(n.family(), 1);
                    }
                }
                rib.release_if_unused(attrs);
            }
        } else if let Some(set) = &mut self.announced {
            // Not imported but limited: each prefix counted once.
            for n in withdrawn {
                if set.remove(n) {
                    self.received.sub(n.family(), 1);
                }
            }
            for n in announced {
                if withdraw_all {
                    if set.remove(n) {
                        self.received.sub(n.family(), 1);
                    }
                } else if set.insert(n) {
                    self.received.add(n.family(), 1);
                }
            }
        } else {
            for n in withdrawn {
                self.received.sub(n.family(), 1);
            }
            for n in announced {
                if withdraw_all {
                    self.received.sub(n.family(), 1);
                } else {
                    self.received.add(n.family(), 1);
                }
            }
        }
        self.check_limit()
    }

    fn route_refresh(&mut self, family: Family, out: &mut BytesMut) {
        let (Some(p), Some(m)) = (self.params.clone(), &mut self.member) else { return };
        let marker = |subtype| Message::RouteRefresh(RouteRefresh { family, subtype });
        if p.enhanced_route_refresh {
            let _ = marker(RefreshSubtype::BoRR).encode(&p.tx, out);
        }
        let taken = {
            let table = self.shared.routes.read().expect("route table lock");
            self.shared.groups.refresh(m, family, &table, out)
        };
        self.report(taken);
        if p.enhanced_route_refresh {
            let _ = marker(RefreshSubtype::EoRR).encode(&p.tx, out);
        }
    }

    fn down(&mut self, reason: &DownReason, now: Instant) {
        if let Some(a) = &mut self.announced {
            a.clear();
        }
        let gr = self.params.as_ref().and_then(|p| p.peer_graceful_restart.clone());
        self.params = None;
        self.member = None;
        // RFC 4724: a peer that can restart gracefully keeps its routes
        // (stale) for its restart time when the session just drops.
        let graceful = matches!(reason, DownReason::ConnectionLost | DownReason::PeerRestarted)
            && gr.as_ref().is_some_and(|g| g.restart_time > 0);
        if graceful && self.cfg.import {
            self.stale = self.rib_in.prefixes().collect();
            self.stale_until = Some(now + std::time::Duration::from_secs(gr.map_or(0, |g| g.restart_time) as u64));
        } else {
            self.rib_in.clear();
            self.stale.clear();
            self.received = PrefixCounts::default();
        }
        self.recount();
        let mut s = self.status.lock().expect("status lock");
        s.established_since = None;
        s.graceful_restart = false;
        s.prefixes_sent = 0;
        s.add_path.clear();
        s.paths_not_sent = 0;
        s.flaps += 1;
        s.last_error = Some(reason.to_string());
        s.down_reason = Some(reason.clone());
        drop(s);
        self.emit(self.prev_state, State::Idle, Some(reason.to_string()));
    }

    fn tick(&mut self, now: Instant) {
        self.purge_stale_if_expired(now);
    }

    fn wants_tick(&self) -> bool {
        self.stale_until.is_some()
    }

    fn count_sent(&mut self, messages: usize, updates: usize) {
        let mut s = self.status.lock().expect("status lock");
        s.messages_sent += messages as u64;
        s.updates_sent += updates as u64;
    }

    fn count_received(&mut self, m: &Message) {
        self.unpublished.0 += 1;
        if matches!(m, Message::Update(_)) {
            self.unpublished.1 += 1;
        }
    }

    fn input_drained(&mut self) {
        self.publish_counts();
    }
}

/// Prefixes received, per family (IPv4 and IPv6 unicast: the families
/// whose prefixes are decoded). A family is listed once a prefix of it
/// was seen, even when its count went back to zero.
#[derive(Debug, Default, Clone, Copy)]
struct PrefixCounts([Option<u64>; 2]);

impl PrefixCounts {
    const FAMILIES: [Family; 2] = [Family::IPV4_UNICAST, Family::IPV6_UNICAST];

    fn slot(&mut self, f: Family) -> &mut u64 {
        let i = usize::from(f != Family::IPV4_UNICAST);
        self.0[i].get_or_insert(0)
    }

    fn add(&mut self, f: Family, n: u64) {
        *self.slot(f) += n;
    }

    fn sub(&mut self, f: Family, n: u64) {
        let c = self.slot(f);
        *c = c.saturating_sub(n);
    }

    fn set(&mut self, f: Family, n: u64) {
        *self.slot(f) = n;
    }

    fn get(&self, f: Family) -> u64 {
        let i = usize::from(f != Family::IPV4_UNICAST);
        self.0[i].unwrap_or(0)
    }

    /// Make `shown` say the same, in place.
    fn publish(&self, shown: &mut BTreeMap<Family, u64>) {
        for (f, c) in Self::FAMILIES.iter().zip(self.0) {
            match (c, shown.get_mut(f)) {
                (Some(c), Some(x)) => *x = c,
                (Some(c), None) => {
                    shown.insert(*f, c);
                }
                (None, Some(_)) => {
                    shown.remove(f);
                }
                (None, None) => {}
            }
        }
    }
}
