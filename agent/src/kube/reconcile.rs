//! The controller's reconcile, pure: from the watched objects (and what it
//! has already published) to the writes it wants — Service status, Eip
//! status, BgpPeer status, Events — as data, built from the typed status
//! structs. `controller.rs` applies them; nothing here talks to the API.
//! When everything is in step the answer is empty.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ObjectReference, ServiceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use mooring_crds::{BgpPeer, BgpPeerNodeStatus, Eip, EipStatus, SessionState};

use crate::model::desired::{self, Desired, Snapshot};
use crate::model::last_good::Rejected;
use crate::model::plan::{self, Objects, Problem};
use crate::model::pool_status::{pool_statuses, PoolStatus};

/// An Event to record on a Service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// One write the controller wants.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Merge-patch a Service's `status.loadBalancer`.
    ServiceStatus { namespace: String, name: String, status: ServiceStatus },
    /// Merge-patch an Eip's status.
    EipStatus { name: String, status: EipStatus },
    /// Merge-patch a BgpPeer's `status.established`, and with `nodes`
    /// replace its per-node list (entries of departed or silent nodes
    /// removed), guarded by `resource_version`.
    BgpPeerStatus {
        name: String,
        resource_version: Option<String>,
        established: i32,
        nodes: Option<Vec<BgpPeerNodeStatus>>,
    },
    /// Record Events on a Service (not yet published for this Service).
    Events { key: String, regarding: ObjectReference, events: Vec<ServiceEvent> },
}

impl Write {
    /// The object written, `Kind/name` or `Kind/namespace/name` (the back-off key).
    pub fn object(&self) -> String {
        match self {
            Write::ServiceStatus { namespace, name, .. } => format!("Service/{namespace}/{name}"),
            Write::EipStatus { name, .. } => format!("Eip/{name}"),
            Write::BgpPeerStatus { name, .. } => format!("BgpPeer/{name}"),
            Write::Events { key, .. } => format!("Events/{key}"),
        }
    }
}

/// What the controller is told besides the objects.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Cordoned nodes stop announcing Cluster services, and which Services are ours.
    pub scope: plan::Scope,
    /// A BgpPeer status entry not updated for this long is a speaker gone
    /// silent: removed.
    pub peer_status_stale: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { scope: plan::Scope::default(), peer_status_stale: Duration::from_secs(300) }
    }
}

/// The answer of one reconcile.
#[derive(Debug, Clone, Default)]
pub struct Reconciled {
    pub writes: Vec<Write>,
    /// Every pool's status (also exported as metrics).
    pub pools: BTreeMap<String, PoolStatus>,
    /// Addresses assigned to Services.
    pub assigned: usize,
    /// Services of ours that lack an address they need.
    pub without_address: usize,
    pub problems: Vec<Problem>,
}

/// Events already published, by Service (`namespace/name/uid`).
pub type Published = HashMap<String, Vec<ServiceEvent>>;

/// The writes that bring the cluster to the model's answer. `objects` are
/// the versions in force (last good ones); `rejected` the custom resources
/// whose current version failed its checks; `current` the Eips as the API
/// shows them (for their status and generation).
pub fn reconcile(
    objects: &Objects,
    rejected: &[Rejected],
    current_eips: &[Eip],
    published: &Published,
    now: Timestamp,
    settings: &Settings,
) -> Reconciled {
    let mut problems: Vec<Problem> = rejected.iter().flat_map(|r| r.problems()).collect();
    let snap = plan::snapshot(objects, &BTreeMap::new(), &settings.scope, &mut problems);
    let desired = desired::allocate(&snap);
    plan::allocation_problems(&desired, &mut problems);
    let mut writes = vec![];
    for u in service_updates(&snap, &desired) {
        if let Some(ips) = u.ingress {
            writes.push(Write::ServiceStatus {
                namespace: u.namespace.clone(),
                name: u.name.clone(),
                status: service_status(&ips),
            });
        }
        if !u.events.is_empty() && published.get(&u.key) != Some(&u.events) {
            writes.push(Write::Events { key: u.key, regarding: u.regarding, events: u.events });
        }
    }
    let rejected_eips: BTreeMap<String, String> =
        rejected.iter().filter(|r| r.kind == "Eip").map(|r| (r.name.clone(), r.message())).collect();
    let pools = pool_statuses(&objects.eips, &rejected_eips, &desired);
    for eip in current_eips {
        let name = eip.metadata.name.clone().unwrap_or_default();
        if let Some(status) = pools.get(&name).and_then(|st| eip_status(eip, st, now)) {
            writes.push(Write::EipStatus { name, status });
        }
    }
    let nodes: BTreeSet<&str> = objects.nodes.iter().filter_map(|n| n.metadata.name.as_deref()).collect();
    for p in &objects.peers {
        if let Some(w) = peer_status(p, &nodes, now, settings.peer_status_stale) {
            writes.push(w);
        }
    }
    let assigned = desired.allocations.values().map(|a| a.addresses.len()).sum();
    let without_address = desired.allocations.values().filter(|a| !a.complete()).count();
    Reconciled { writes, pools, assigned, without_address, problems }
}

/// One Service whose status must change, and/or that gets Events.
#[derive(Debug, Clone, PartialEq)]
struct ServiceUpdate {
    namespace: String,
    name: String,
    /// `namespace/name/uid`.
    key: String,
    regarding: ObjectReference,
    /// The new `status.loadBalancer.ingress` IPs, when they change.
    ingress: Option<Vec<IpAddr>>,
    events: Vec<ServiceEvent>,
}

/// The changes that bring every Service's status to the model's answer.
/// A Service that is no longer ours loses the addresses of our pools it
/// still shows (Released).
fn service_updates(snap: &Snapshot, desired: &Desired) -> Vec<ServiceUpdate> {
    let mut out = vec![];
    for svc in &snap.services {
        let key = desired::key_of(svc);
        let namespace = svc.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = svc.metadata.name.clone().unwrap_or_default();
        let current = desired::status_ips(svc);
        let mut events = vec![];
        let want: Vec<IpAddr> = if desired::is_ours(svc, &snap.classes) {
            let a = desired.allocations.get(&key).cloned().unwrap_or_default();
            for e in desired.spec_errors.get(&key).into_iter().flatten() {
                events.push(ServiceEvent {
                    warning: true,
                    reason: "InvalidRequest".into(),
                    note: format!("{}: {}", e.field, e.message),
                });
            }
            for e in &a.errors {
                events.push(ServiceEvent { warning: true, reason: e.reason().into(), note: e.to_string() });
            }
            a.addresses.iter().map(|(ip, _)| *ip).collect()
        } else {
            current.iter().copied().filter(|ip| !snap.pools.iter().any(|p| p.pool.contains(*ip))).collect()
        };
        let changed = want != current;
        if changed {
            let old: BTreeSet<IpAddr> = current.iter().copied().collect();
            let new: BTreeSet<IpAddr> = want.iter().copied().collect();
            // One Event per kind listing every address: the recorder folds
            // repeated (reason, note) pairs, so a second Event of a
            // dual-stack Service would be lost.
            let assigned: Vec<String> = new
                .difference(&old)
                .map(|ip| {
                    let pool = desired
                        .allocations
                        .get(&key)
                        .and_then(|a| a.addresses.iter().find(|(x, _)| x == ip).map(|(_, p)| p.clone()))
                        .unwrap_or_default();
                    format!("{ip} from Eip {pool}")
                })
                .collect();
            if !assigned.is_empty() {
                events.push(ServiceEvent {
                    warning: false,
                    reason: "IPAllocated".into(),
                    note: format!("assigned {}", assigned.join(", ")),
                });
            }
            let released: Vec<String> = old.difference(&new).map(|ip| ip.to_string()).collect();
            if !released.is_empty() {
                events.push(ServiceEvent {
                    warning: false,
                    reason: "IPReleased".into(),
                    note: format!("released {}", released.join(", ")),
                });
            }
        }
        if changed || !events.is_empty() {
            let uid = svc.metadata.uid.clone().unwrap_or_default();
            out.push(ServiceUpdate {
                key: format!("{namespace}/{name}/{uid}"),
                regarding: svc.object_ref(&()),
                namespace,
                name,
                ingress: changed.then_some(want),
                events,
            });
        }
    }
    out
}

/// A Service's status with these load-balancer addresses.
pub fn service_status(ips: &[IpAddr]) -> ServiceStatus {
    let ingress = ips
        .iter()
        .map(|ip| LoadBalancerIngress { ip: Some(ip.to_string()), ip_mode: Some("VIP".into()), ..Default::default() })
        .collect();
    ServiceStatus { load_balancer: Some(LoadBalancerStatus { ingress: Some(ingress) }), ..Default::default() }
}

/// The Eip status for `st`, when it differs from what the Eip shows
/// (counts, readiness, conditions or the generation described).
pub fn eip_status(eip: &Eip, st: &PoolStatus, now: Timestamp) -> Option<EipStatus> {
    let cur = eip.status.as_ref();
    let generation = eip.metadata.generation;
    let same = cur.is_some_and(|s| {
        s.size == Some(st.size)
            && s.used == Some(st.used)
            && s.free == Some(st.free)
            && s.ready == st.ready
            && s.observed_generation == generation
            && s.conditions.len() == st.conditions.len()
            && st.conditions.iter().all(|c| {
                s.conditions.iter().any(|p| {
                    p.type_ == c.type_
                        && (p.status == "True") == c.status
                        && p.reason == c.reason
                        && p.message == c.message
                        && p.observed_generation == generation
                })
            })
    });
    if same {
        return None;
    }
    let now = Time(now.round(k8s_openapi::jiff::Unit::Second).unwrap_or(now));
    let conditions = st
        .conditions
        .iter()
        .map(|c| {
            let status = if c.status { "True" } else { "False" };
            // Keep the transition time while the status does not change.
            let prev = cur.and_then(|s| s.conditions.iter().find(|p| p.type_ == c.type_ && p.status == status));
            Condition {
                type_: c.type_.into(),
                status: status.into(),
                reason: c.reason.into(),
                message: c.message.clone(),
                last_transition_time: prev.map_or_else(|| now.clone(), |p| p.last_transition_time.clone()),
                observed_generation: generation,
            }
        })
        .collect();
    Some(EipStatus {
        size: Some(st.size),
        used: Some(st.used),
        free: Some(st.free),
        ready: st.ready,
        observed_generation: generation,
        conditions,
    })
}

/// The BgpPeer status write, when something differs: `established` (nodes
/// whose session is Established) and, when entries must go, the per-node
/// list without entries of nodes that no longer exist or whose speaker has
/// not updated its entry for `stale`.
pub fn peer_status(p: &BgpPeer, nodes: &BTreeSet<&str>, now: Timestamp, stale: Duration) -> Option<Write> {
    let st = p.status.clone().unwrap_or_default();
    let stale = SignedDuration::try_from(stale).unwrap_or(SignedDuration::MAX);
    let keep = |e: &BgpPeerNodeStatus| {
        nodes.contains(e.node.as_str()) && e.updated_at.as_ref().is_none_or(|t| now.duration_since(t.0) <= stale)
    };
    let kept: Vec<BgpPeerNodeStatus> = st.nodes.iter().filter(|e| keep(e)).cloned().collect();
    let established = kept.iter().filter(|e| e.state == SessionState::Established).count() as i32;
    let removed = kept.len() != st.nodes.len();
    if !removed && st.established == Some(established) {
        return None;
    }
    Some(Write::BgpPeerStatus {
        name: p.metadata.name.clone().unwrap_or_default(),
        resource_version: removed.then(|| p.metadata.resource_version.clone()).flatten(),
        established,
        nodes: removed.then_some(kept),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(entries: serde_json::Value, established: Option<i32>) -> BgpPeer {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "mooring.io/v1alpha1", "kind": "BgpPeer",
            "metadata": {"name": "edge", "resourceVersion": "42"},
            "spec": {"peerAddress": "198.18.0.1", "peerAs": 64512},
            "status": {"established": established, "nodes": entries},
        }))
        .unwrap()
    }

    /// A refused request is a Warning Event on the Service that names the other Service and
    /// the sharing rule that failed; the Service that asked first by age keeps the address.
    #[test]
    fn a_refusal_is_an_event_naming_the_other_service_and_the_rule() {
        let o: Objects = Objects {
            eips: vec![serde_json::from_value(serde_json::json!({"apiVersion": "mooring.io/v1alpha1", "kind": "Eip",
                "metadata": {"name": "eip"}, "spec": {"address": "203.0.113.10-203.0.113.11"}})).unwrap()],
            services: ["old", "new"]
                .iter()
                .enumerate()
                .map(|(i, n)| serde_json::from_value(serde_json::json!({
                    "metadata": {"name": n, "namespace": "shop", "uid": n, "creationTimestamp": format!("2026-01-0{}T00:00:00Z", i + 1),
                                 "annotations": {"metallb.io/allow-shared-ip": n}},
                    "spec": {"type": "LoadBalancer", "loadBalancerIP": "203.0.113.10", "ports": [{"port": 80}]}})).unwrap())
                .map(std::sync::Arc::new)
                .collect(),
            ..Objects::default()
        };
        let r = reconcile(&o, &[], &[], &Published::new(), Timestamp::now(), &Settings::default());
        let events: Vec<&ServiceEvent> = r
            .writes
            .iter()
            .filter_map(|w| match w {
                Write::Events { key, events, .. } if key == "shop/new/new" => Some(events),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(
            events,
            [&ServiceEvent {
                warning: true,
                reason: "AddressInUse".into(),
                note: "203.0.113.10 is held by shop/old, and the two may not share it: their allow-shared-ip keys differ (\"new\" and \"old\")".into()
            }]
        );
        // What the controller exports as mooring_vips_allocated and
        // mooring_services_without_address.
        assert_eq!((r.assigned, r.without_address), (1, 1));
    }

    #[test]
    fn peer_status_counts_established_and_removes_departed_and_silent_nodes() {
        let now: Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        let nodes = BTreeSet::from(["n1", "n2"]);
        let stale = Duration::from_secs(300);
        let fresh = "2026-12-02T11:59:00Z";
        let old = "2026-12-02T11:00:00Z";
        let e = |node: &str, state: &str, at: &str| serde_json::json!({"node": node, "state": state, "updatedAt": at});
        // In step: nothing to write.
        let p = peer(serde_json::json!([e("n1", "Established", fresh), e("n2", "Active", fresh)]), Some(1));
        assert_eq!(peer_status(&p, &nodes, now, stale), None);
        // The count is wrong: only the count is written.
        let p = peer(serde_json::json!([e("n1", "Established", fresh), e("n2", "Established", fresh)]), Some(1));
        let Some(Write::BgpPeerStatus { established: 2, nodes: None, resource_version: None, .. }) =
            peer_status(&p, &nodes, now, stale)
        else {
            panic!("{:?}", peer_status(&p, &nodes, now, stale))
        };
        // n3 is gone and n2 has been silent for an hour: both removed, guarded by the resourceVersion.
        let p = peer(
            serde_json::json!([
                e("n1", "Established", fresh),
                e("n2", "Established", old),
                e("n3", "Established", fresh)
            ]),
            Some(3),
        );
        let Some(Write::BgpPeerStatus { established, nodes: Some(kept), resource_version, .. }) =
            peer_status(&p, &nodes, now, stale)
        else {
            panic!()
        };
        assert_eq!((established, resource_version.as_deref()), (1, Some("42")));
        assert_eq!(kept.iter().map(|e| e.node.as_str()).collect::<Vec<_>>(), ["n1"]);
    }
}
