//! What the controller writes, computed purely from objects and the
//! model's answer: Service status changes and the Events that explain
//! them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

use crate::model::desired::{self, Desired, Snapshot};

/// An Event to record on a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// One Service whose status must change, and/or that gets Events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUpdate {
    pub namespace: String,
    pub name: String,
    /// The new `status.loadBalancer.ingress` IPs, when they change.
    pub ingress: Option<Vec<IpAddr>>,
    pub events: Vec<ServiceEvent>,
}

fn ns_name(svc: &Service) -> (String, String) {
    (svc.metadata.namespace.clone().unwrap_or_else(|| "default".into()), svc.metadata.name.clone().unwrap_or_default())
}

/// The changes that bring every Service's status to the model's answer.
/// A Service that is no longer ours loses the addresses of our pools it
/// still shows (Released).
pub fn service_updates(snap: &Snapshot, desired: &Desired) -> Vec<ServiceUpdate> {
    let mut out = vec![];
    for svc in &snap.services {
        let key = desired::key_of(svc);
        let (namespace, name) = ns_name(svc);
        let current = desired::status_ips(svc);
        let mut events = vec![];
        let want: Vec<IpAddr> = if desired::is_ours(svc) {
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
            for ip in new.difference(&old) {
                let pool = desired
                    .allocations
                    .get(&key)
                    .and_then(|a| a.addresses.iter().find(|(x, _)| x == ip).map(|(_, p)| p.clone()))
                    .unwrap_or_default();
                events.push(ServiceEvent {
                    warning: false,
                    reason: "IPAllocated".into(),
                    note: format!("assigned {ip} from Eip {pool}"),
                });
            }
            for ip in old.difference(&new) {
                events.push(ServiceEvent {
                    warning: false,
                    reason: "IPReleased".into(),
                    note: format!("released {ip}"),
                });
            }
        }
        if changed || !events.is_empty() {
            out.push(ServiceUpdate { namespace, name, ingress: changed.then_some(want), events });
        }
    }
    out
}

/// The merge patch for a Service's status.
pub fn ingress_patch(ips: &[IpAddr]) -> serde_json::Value {
    let ingress: Vec<serde_json::Value> =
        ips.iter().map(|ip| serde_json::json!({"ip": ip.to_string(), "ipMode": "VIP"})).collect();
    serde_json::json!({"status": {"loadBalancer": {"ingress": ingress}}})
}
