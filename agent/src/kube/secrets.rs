//! The speaker's cache of the Secrets its BgpPeers name (TCP MD5
//! passwords). Read one by one with `get` — the speaker never lists or
//! watches Secrets — when a reference appears and then every
//! [`REFRESH`]. A Secret read once is kept through any error but a 404, so
//! an API server blip (a 429 from priority and fairness, a rollout) never
//! tears down an MD5 session; a 403 is reported as what it is.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::model::plan::Objects;

/// How often a cached Secret is read again (password changes).
pub const REFRESH: Duration = Duration::from_secs(60);
/// How soon a Secret that could not be read is tried again.
pub const RETRY: Duration = Duration::from_secs(5);

/// (namespace, name).
pub type SecretKey = (String, String);

#[derive(Debug)]
struct Entry {
    secret: Option<Secret>,
    /// Why the last read failed, if it did.
    error: Option<String>,
    next_read: Instant,
}

#[derive(Debug, Default)]
pub struct SecretCache {
    entries: BTreeMap<SecretKey, Entry>,
}

/// The Secrets `objects`' BgpPeers name.
pub fn references(objects: &Objects) -> BTreeSet<SecretKey> {
    objects
        .peers
        .iter()
        .filter_map(|p| p.spec.password_secret_ref.as_ref().map(|r| (r.namespace.clone(), r.name.clone())))
        .collect()
}

impl SecretCache {
    /// Bring the cache to the Secrets `objects` name (reading those due),
    /// and put them into `objects.secrets`; Secrets that cannot be used go
    /// into `objects.secret_errors` with the reason.
    pub async fn fill(&mut self, client: &Client, objects: &mut Objects) {
        let refs = references(objects);
        self.entries.retain(|k, _| refs.contains(k));
        let now = Instant::now();
        for key in refs {
            let due = self.entries.get(&key).is_none_or(|e| e.next_read <= now);
            if due {
                self.read(client, key.clone(), now).await;
            }
            let e = &self.entries[&key];
            match (&e.secret, &e.error) {
                (Some(s), _) => objects.secrets.push(s.clone()),
                (None, Some(why)) => {
                    objects.secret_errors.insert(key, why.clone());
                }
                (None, None) => {}
            }
        }
    }

    async fn read(&mut self, client: &Client, key: SecretKey, now: Instant) {
        let (ns, name) = &key;
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let prev = self.entries.remove(&key);
        let kept = prev.and_then(|e| e.secret);
        let entry = match api.get_opt(name).await {
            Ok(Some(s)) => Entry { secret: Some(s), error: None, next_read: now + REFRESH },
            Ok(None) => {
                if kept.is_some() {
                    info!(secret = %format!("{ns}/{name}"), "deleted");
                }
                Entry { secret: None, error: Some("not found".into()), next_read: now + RETRY }
            }
            Err(e) => {
                let why = match &e {
                    kube::Error::Api(s) if s.code == 403 => format!(
                        "forbidden: the speaker may not read it (the chart grants `get` only on the Secrets \
                         listed in speaker.secrets): {}",
                        s.message
                    ),
                    _ => format!("cannot be read: {e}"),
                };
                if kept.is_some() {
                    warn!(secret = %format!("{ns}/{name}"), "{why}; the password read before stays in use");
                } else {
                    warn!(secret = %format!("{ns}/{name}"), "{why}");
                }
                Entry { secret: kept, error: Some(why), next_read: now + RETRY }
            }
        };
        self.entries.insert(key, entry);
    }
}
