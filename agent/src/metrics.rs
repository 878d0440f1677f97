//! The Prometheus metrics of a node or the controller, and the readiness
//! the node loop reports. Served by [`crate::admin`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use mooring_bgp::fsm::State;
use mooring_bgp::speaker::{ListenerState, Speaker};
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use tracing::warn;

use crate::model::pool_status::PoolStatus;
use crate::node::Readiness;

pub struct Metrics {
    registry: Registry,
    pub manifest_errors: IntGauge,
    pub vips: IntGauge,
    pub routes: IntGauge,
    pub reloads: IntCounter,
    pub ready: IntGauge,
    pub services_without_address: IntGauge,
    /// Paths held back by flap damping now, and how often a path was suppressed.
    pub paths_suppressed: IntGauge,
    pub path_suppressions: IntCounter,
    /// Central speaker: paths left out because their node probes are down.
    pub paths_probe_down: IntGauge,
    session_up: IntGaugeVec,
    session_down: IntGaugeVec,
    prefixes_sent: IntGaugeVec,
    prefixes_received: IntGaugeVec,
    paths_not_sent: IntGaugeVec,
    add_path_send: IntGaugeVec,
    messages_sent: IntCounterVec,
    messages_received: IntCounterVec,
    updates_sent: IntCounterVec,
    updates_received: IntCounterVec,
    flaps: IntCounterVec,
    max_prefixes: IntGaugeVec,
    bfd_up: IntGaugeVec,
    pool_addresses: IntGaugeVec,
    speakers: Mutex<Vec<Speaker>>,
    /// One render at a time (it resets and refills the per-peer families).
    render_lock: Mutex<()>,
    /// Why `/readyz` fails (`None`: ready).
    not_ready: Mutex<Option<String>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let gauge = |n: &str, h: &str| {
            let g = IntGauge::new(n, h).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let per_peer = |n: &str, h: &str| {
            let g = IntGaugeVec::new(Opts::new(n, h), &["peer", "vrf"]).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let per_peer_total = |n: &str, h: &str| {
            let c = IntCounterVec::new(Opts::new(n, h), &["peer", "vrf"]).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let reloads = IntCounter::new("mooring_config_reloads_total", "Configuration reloads").expect("valid metric");
        registry.register(Box::new(reloads.clone())).expect("unique metric");
        let path_suppressions = IntCounter::new(
            "mooring_path_suppressions_total",
            "Times flap damping suppressed a path (withdrawn with a penalty at the suppress threshold)",
        )
        .expect("valid metric");
        registry.register(Box::new(path_suppressions.clone())).expect("unique metric");
        Metrics {
            manifest_errors: gauge("mooring_manifest_errors", "Manifest documents that could not be used"),
            vips: gauge("mooring_vips_allocated", "Addresses assigned to Services"),
            routes: gauge("mooring_routes_announced", "Routes this node announces"),
            ready: gauge(
                "mooring_ready",
                "1 while the node serves: its speaker runs and every configured peer was started",
            ),
            services_without_address: gauge(
                "mooring_services_without_address",
                "Services of ours that lack an address they need (no pool, pool exhausted, a refused request)",
            ),
            max_prefixes: per_peer("mooring_bgp_max_prefixes", "The prefix limit configured for the peer"),
            bfd_up: per_peer(
                "mooring_bfd_session_up",
                "1 when the BFD session with the peer is Up (peers with BFD only)",
            ),
            paths_suppressed: gauge(
                "mooring_paths_suppressed",
                "Paths this node would announce that flap damping holds back now",
            ),
            path_suppressions,
            paths_probe_down: gauge(
                "mooring_paths_probe_down",
                "Central speaker: paths left out now because their next-hop node fails its probes",
            ),
            session_up: per_peer("mooring_bgp_session_established", "1 when the session is Established"),
            session_down: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "mooring_bgp_session_down",
                        "1 while the session is not Established, labelled with why it last went down \
                         (reason; notification as code/subcode) and whether it is held down after a limit",
                    ),
                    &["peer", "vrf", "reason", "notification", "held_down"],
                )
                .expect("valid metric");
                registry.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            prefixes_sent: per_peer("mooring_bgp_prefixes_sent", "Prefixes in the Adj-RIB-Out"),
            prefixes_received: per_peer("mooring_bgp_prefixes_received", "Prefixes received"),
            paths_not_sent: per_peer(
                "mooring_bgp_paths_not_sent",
                "Paths meant for the peer not sent because it does not receive ADD-PATH \
                 (of a prefix with N paths for it only the first goes; N - 1 count)",
            ),
            add_path_send: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "mooring_bgp_add_path_send",
                        "1 when the session negotiated ADD-PATH send for the family (every path goes to the peer)",
                    ),
                    &["peer", "vrf", "family"],
                )
                .expect("valid metric");
                registry.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            messages_sent: per_peer_total("mooring_bgp_messages_sent_total", "BGP messages sent to the peer"),
            messages_received: per_peer_total(
                "mooring_bgp_messages_received_total",
                "BGP messages received from the peer",
            ),
            updates_sent: per_peer_total("mooring_bgp_updates_sent_total", "UPDATE messages sent to the peer"),
            updates_received: per_peer_total(
                "mooring_bgp_updates_received_total",
                "UPDATE messages received from the peer",
            ),
            flaps: per_peer_total("mooring_bgp_session_flaps_total", "Times the session left Established"),
            pool_addresses: {
                let g = IntGaugeVec::new(
                    Opts::new("mooring_pool_addresses", "Addresses of a pool by state"),
                    &["pool", "state"],
                )
                .expect("valid metric");
                registry.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            reloads,
            registry,
            speakers: Mutex::new(vec![]),
            render_lock: Mutex::new(()),
            not_ready: Mutex::new(Some("starting".into())),
        }
    }

    /// Every pool's used and free address counts (pools no longer there
    /// disappear from the metrics).
    pub fn pools(&self, pools: &BTreeMap<String, PoolStatus>) {
        self.pool_addresses.reset();
        for (name, st) in pools {
            self.pool_addresses.with_label_values(&[name, "used"]).set(st.used);
            self.pool_addresses.with_label_values(&[name, "free"]).set(st.free);
        }
    }

    /// Report this speaker's sessions (replacing any earlier speaker).
    pub fn watch(&self, speaker: Speaker) {
        *self.speakers.lock().expect("lock") = vec![speaker];
    }

    /// The speaker reported on (for `/status`).
    pub fn speaker(&self) -> Option<Speaker> {
        self.speakers.lock().expect("lock").first().cloned()
    }

    /// Stop reporting (and holding) the speaker: it is being replaced.
    pub fn unwatch(&self) {
        self.speakers.lock().expect("lock").clear();
    }

    /// What `/readyz` answers.
    pub fn set_readiness(&self, r: &Readiness) {
        let why = match r {
            Readiness::Ready => None,
            Readiness::NotReady(why) => Some(why.clone()),
        };
        self.ready.set(why.is_none() as i64);
        *self.not_ready.lock().expect("lock") = why;
    }

    /// `None` when ready, else why not: what the node loop last reported,
    /// or, live, that the speaker's listener is not bound yet (the speaker
    /// retries binding it on its own).
    pub fn not_ready(&self) -> Option<String> {
        let reported = self.not_ready.lock().expect("lock").clone();
        reported.or_else(|| {
            self.speakers.lock().expect("lock").iter().find_map(|s| match s.listener_state() {
                ListenerState::Retrying { addr, error, .. } => {
                    Some(format!("the BGP speaker cannot start listening on {addr}: {error} (retrying)"))
                }
                _ => None,
            })
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let _one_at_a_time = self.render_lock.lock().expect("lock");
        self.ready.set(self.not_ready().is_none() as i64);
        for g in [
            &self.session_up,
            &self.session_down,
            &self.prefixes_sent,
            &self.prefixes_received,
            &self.max_prefixes,
            &self.bfd_up,
            &self.paths_not_sent,
            &self.add_path_send,
        ] {
            g.reset();
        }
        // The speaker keeps the totals; a peer that is gone disappears.
        for c in [&self.messages_sent, &self.messages_received, &self.updates_sent, &self.updates_received, &self.flaps]
        {
            c.reset();
        }
        for s in self.speakers.lock().expect("lock").iter() {
            for c in s.peer_configs() {
                if let Some(m) = &c.max_prefixes {
                    let vrf = c.vrf.as_deref().unwrap_or("default");
                    self.max_prefixes.with_label_values(&[c.address.to_string().as_str(), vrf]).set(m.limit as i64);
                }
            }
            for p in s.peers() {
                let peer = p.address.to_string();
                // The peer's VRF device; `default` for the default VRF.
                let vrf = p.vrf.as_deref().unwrap_or("default");
                let l = [peer.as_str(), vrf];
                self.session_up.with_label_values(&l).set((p.state == State::Established) as i64);
                if p.state != State::Established {
                    let (reason, notification) = down_labels(p.down_reason.as_ref());
                    let held = if p.held_down.is_some() { "true" } else { "false" };
                    self.session_down.with_label_values(&[peer.as_str(), vrf, reason, &notification, held]).set(1);
                }
                self.prefixes_sent.with_label_values(&l).set(p.prefixes_sent as i64);
                self.prefixes_received.with_label_values(&l).set(p.prefixes_received.values().sum::<u64>() as i64);
                self.paths_not_sent.with_label_values(&l).set(p.paths_not_sent as i64);
                if p.state == State::Established {
                    for f in &p.families {
                        let send = p.add_path.iter().any(|a| a.family == *f && a.mode.can_send());
                        self.add_path_send.with_label_values(&[peer.as_str(), vrf, &f.to_string()]).set(send as i64);
                    }
                }
                self.messages_sent.with_label_values(&l).inc_by(p.messages_sent);
                self.messages_received.with_label_values(&l).inc_by(p.messages_received);
                self.updates_sent.with_label_values(&l).inc_by(p.updates_sent);
                self.updates_received.with_label_values(&l).inc_by(p.updates_received);
                self.flaps.with_label_values(&l).inc_by(p.flaps);
                if let Some(b) = p.bfd {
                    self.bfd_up.with_label_values(&l).set((b == mooring_bgp::bfd::BfdState::Up) as i64);
                }
            }
        }
        let mut buf = vec![];
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            warn!("metrics encoding: {e}");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The `reason` and `notification` labels of a session that is down.
fn down_labels(r: Option<&mooring_bgp::fsm::DownReason>) -> (&'static str, String) {
    use mooring_bgp::fsm::DownReason;
    match r {
        None => ("never-established", String::new()),
        Some(DownReason::Sent(n)) => ("notification-sent", format!("{}/{}", n.code(), n.subcode())),
        Some(DownReason::Received(n)) => ("notification-received", format!("{}/{}", n.code(), n.subcode())),
        Some(DownReason::ConnectionLost) => ("connection-lost", String::new()),
        Some(DownReason::Stopped) => ("stopped", String::new()),
        Some(DownReason::PeerRestarted) => ("peer-restarted", String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mooring_bgp::speaker::{PeerConfig, SpeakerConfig};

    #[tokio::test]
    async fn a_session_that_is_down_says_why() {
        let cfg = SpeakerConfig {
            local_as: 64513,
            router_id: "192.0.2.1".parse().unwrap(),
            listen: None,
            hostname: None,
            graceful_restart: None,
        };
        let s = Speaker::start(cfg).await.unwrap();
        let mut p = PeerConfig::new("127.0.0.1".parse().unwrap(), 64512);
        p.passive = true;
        p.max_prefixes = Some(mooring_bgp::speaker::MaxPrefixes::new(100, true));
        s.add_peer(p).unwrap();
        let m = Metrics::new();
        m.watch(s.clone());
        let text = m.render();
        assert!(text.contains("mooring_bgp_session_established{peer=\"127.0.0.1\",vrf=\"default\"} 0"), "{text}");
        assert!(text.contains("mooring_bgp_max_prefixes{peer=\"127.0.0.1\",vrf=\"default\"} 100"), "{text}");
        assert!(
            text.contains(
                "mooring_bgp_session_down{held_down=\"false\",notification=\"\",peer=\"127.0.0.1\",reason=\"never-established\",vrf=\"default\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("mooring_bgp_paths_not_sent{peer=\"127.0.0.1\",vrf=\"default\"} 0"), "{text}");
        s.shutdown(None).await;
    }
}
