//! A speaker's entries in BgpPeer status: one per session, each node's
//! written by server-side apply under its own field manager, so nodes never
//! overwrite each other. An entry is rewritten when it changes and at least
//! every [`STATUS_HEARTBEAT`] (with `updatedAt`, so the controller can tell
//! a live speaker from a silent one); it is removed — an apply with an
//! empty list under the same field manager drops what that manager owned —
//! when its session goes and when the speaker stops. What was written is
//! remembered by the BgpPeer's UID, so a BgpPeer deleted and created again
//! gets its entry back.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use mooring_bgp::speaker::{PeerKey, PeerStatus};
use mooring_crds::{BgpPeer, BgpPeerNodeStatus};
use tokio::time::Instant;
use tracing::warn;

use crate::model::plan::Objects;

/// A node's entry is rewritten at least this often.
pub const STATUS_HEARTBEAT: Duration = Duration::from_secs(60);
/// The API server refuses field managers longer than this.
pub const MAX_FIELD_MANAGER: usize = 128;

/// The field manager of one node's entries: `mooring-speaker-<node>`, or,
/// when that would be longer than [`MAX_FIELD_MANAGER`], the node name cut
/// short and followed by a hash of all of it (distinct nodes stay distinct).
pub fn field_manager(node: &str) -> String {
    let full = format!("mooring-speaker-{node}");
    if full.len() <= MAX_FIELD_MANAGER {
        return full;
    }
    // FNV-1a: stable across releases and platforms (std's hasher is not).
    let hash = node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    let suffix = format!("-{hash:016x}");
    let mut cut = MAX_FIELD_MANAGER - suffix.len();
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &full[..cut])
}

fn apply_body(nodes: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpPeer", "status": {"nodes": nodes}})
}

/// The server-side apply body of one node's entry.
pub fn peer_status_apply(entry: &BgpPeerNodeStatus) -> serde_json::Value {
    apply_body(serde_json::json!([entry]))
}

fn now() -> Timestamp {
    let now = Timestamp::now();
    now.round(k8s_openapi::jiff::Unit::Second).unwrap_or(now)
}

#[derive(Debug)]
struct Written {
    name: String,
    /// The entry as written, without `updatedAt`.
    entry: BgpPeerNodeStatus,
    at: Instant,
}

/// Writes one node's entries.
pub struct PeerStatusWriter {
    api: Api<BgpPeer>,
    node: String,
    manager: String,
    /// By BgpPeer UID.
    written: BTreeMap<String, Written>,
}

impl PeerStatusWriter {
    pub fn new(api: Api<BgpPeer>, node: &str) -> Self {
        PeerStatusWriter { api, node: node.into(), manager: field_manager(node), written: BTreeMap::new() }
    }

    async fn apply(&self, name: &str, body: &serde_json::Value) -> bool {
        let pp = PatchParams::apply(&self.manager).force();
        match self.api.patch_status(name, &pp, &Patch::Apply(body)).await {
            Ok(_) => true,
            Err(e) => {
                warn!(bgppeer = %name, "cannot write status: {e}");
                false
            }
        }
    }

    /// Bring this node's entries to `sessions`: write the changed (and the
    /// stale), remove those whose session is gone. Returns the writes made.
    pub async fn publish(&mut self, objects: &Objects, sessions: &[PeerStatus]) -> usize {
        // The BgpPeer (name, UID) of each peer address in its VRF.
        let peers: BTreeMap<PeerKey, (String, String)> = objects
            .peers
            .iter()
            .filter_map(|p| {
                Some((
                    PeerKey { vrf: p.spec.vrf.clone(), address: p.spec.peer_address.parse().ok()? },
                    (p.metadata.name.clone()?, p.metadata.uid.clone().unwrap_or_default()),
                ))
            })
            .collect();
        let mut writes = 0;
        let mut live = vec![];
        for st in sessions {
            let Some((name, uid)) = peers.get(&st.key()) else { continue };
            live.push(uid.clone());
            let now = now();
            let previous = self.written.get(uid);
            let entry = BgpPeerNodeStatus::of_session(&self.node, st, previous.map(|w| &w.entry), Time(now));
            if previous.is_some_and(|w| w.entry == entry && w.at.elapsed() < STATUS_HEARTBEAT) {
                continue;
            }
            let stamped = BgpPeerNodeStatus { updated_at: Some(Time(now)), ..entry.clone() };
            if self.apply(name, &peer_status_apply(&stamped)).await {
                writes += 1;
                self.written.insert(uid.clone(), Written { name: name.clone(), entry, at: Instant::now() });
            }
        }
        // Sessions gone (the BgpPeer no longer selects this node, or is gone).
        let existing: BTreeMap<&str, &str> = peers.values().map(|(n, u)| (u.as_str(), n.as_str())).collect();
        let gone: Vec<String> = self.written.keys().filter(|u| !live.contains(u)).cloned().collect();
        for uid in gone {
            let w = self.written.remove(&uid).expect("listed above");
            if existing.contains_key(uid.as_str()) && self.apply(&w.name, &apply_body(serde_json::json!([]))).await {
                writes += 1;
            }
        }
        writes
    }

    /// Remove every entry this node wrote (the speaker is stopping).
    pub async fn retire(&mut self) -> usize {
        let mut writes = 0;
        for (_, w) in std::mem::take(&mut self.written) {
            if self.apply(&w.name, &apply_body(serde_json::json!([]))).await {
                writes += 1;
            }
        }
        writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_managers_stay_within_the_limit_and_distinct() {
        assert_eq!(field_manager("node1"), "mooring-speaker-node1");
        let a = "a".repeat(120);
        let b = format!("{}b", "a".repeat(119));
        let (ma, mb) = (field_manager(&a), field_manager(&b));
        assert!(ma.len() <= MAX_FIELD_MANAGER && mb.len() <= MAX_FIELD_MANAGER, "{} {}", ma.len(), mb.len());
        assert_ne!(ma, mb);
        assert!(ma.starts_with("mooring-speaker-aaaa"));
        assert!(field_manager(&"ü".repeat(100)).len() <= MAX_FIELD_MANAGER, "cut on a character boundary");
    }
}
