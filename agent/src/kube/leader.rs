//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does
//! it, with times on the local monotonic clock only:
//!
//! - A candidate judges a Lease held by another replica expired when its
//!   `resourceVersion` has not changed for the lease duration *as seen
//!   here* — never by comparing the holder's `renewTime` with our clock, so
//!   clock skew between nodes cannot make a standby take a healthy Lease.
//! - Every API call has a deadline (kube's client has no read timeout).
//! - The leader steps down when it has not renewed within the renew
//!   deadline (10 s, measured from the start of its last successful
//!   renewal), before any candidate may take over (15 s after it last saw
//!   the Lease change), so a deposed leader never writes after its
//!   successor started — even when a renewal hangs.
//! - Writes carry the `resourceVersion`, so two candidates never both win.
//! - On shutdown the leader releases the Lease (empty holder) so a standby
//!   takes over at once.

use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Whether this replica leads now.
pub type Leadership = watch::Receiver<bool>;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub identity: String,
    /// How long a Lease that does not change stays held.
    pub lease_duration: Duration,
    /// The leader steps down when it could not renew for this long.
    pub renew_deadline: Duration,
    /// Time between attempts.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's defaults: 15 s, 10 s, 2 s.
    pub fn new(name: &str, identity: &str) -> Self {
        LeaseConfig {
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What one attempt decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Acquired,
    Renewed,
    HeldByOther,
    Failed,
}

/// One replica's view of the Lease and its attempts to hold it.
pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// The Lease's resourceVersion as last seen, and when it last changed (here).
    observed: Option<(String, Instant)>,
}

impl Elector {
    pub fn new(api: Api<Lease>, cfg: LeaseConfig) -> Self {
        Elector { api, cfg, observed: None }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.cfg
    }

    fn spec(&self, transitions: i32, acquire: Option<MicroTime>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration.as_secs() as i32),
            acquire_time: acquire.or(Some(now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One round: create, renew or take over the Lease if we may. Every
    /// call gives up after `deadline` (a hung call is a failed round).
    pub async fn try_acquire(&mut self, deadline: Duration) -> Outcome {
        let name = self.cfg.name.clone();
        let lease = match tokio::time::timeout(deadline, self.api.get_opt(&name)).await {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                warn!(lease = %name, "cannot read the lease: {e}");
                return Outcome::Failed;
            }
            Err(_) => {
                warn!(lease = %name, "reading the lease: no answer in {deadline:?}");
                return Outcome::Failed;
            }
        };
        let Some(mut l) = lease else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() },
                spec: Some(self.spec(0, None)),
            };
            return match tokio::time::timeout(deadline, self.api.create(&PostParams::default(), &lease)).await {
                Ok(Ok(_)) => Outcome::Acquired,
                Ok(Err(kube::Error::Api(e))) if e.code == 409 => Outcome::HeldByOther,
                Ok(Err(e)) => {
                    warn!(lease = %name, "cannot create the lease: {e}");
                    Outcome::Failed
                }
                Err(_) => {
                    warn!(lease = %name, "creating the lease: no answer in {deadline:?}");
                    Outcome::Failed
                }
            };
        };
        let now = Instant::now();
        let rv = l.metadata.resource_version.clone().unwrap_or_default();
        if self.observed.as_ref().is_none_or(|(seen, _)| *seen != rv) {
            self.observed = Some((rv, now));
        }
        let spec = l.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        let transitions = spec.lease_transitions.unwrap_or(0);
        let (spec, outcome) = if holder == self.cfg.identity {
            (self.spec(transitions, spec.acquire_time.clone()), Outcome::Renewed)
        } else {
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.cfg.lease_duration, Duration::from_secs);
            let unchanged_for = self.observed.as_ref().map_or(Duration::ZERO, |(_, t)| now.duration_since(*t));
            if !holder.is_empty() && unchanged_for < duration {
                return Outcome::HeldByOther;
            }
            (self.spec(transitions + 1, None), Outcome::Acquired)
        };
        l.spec = Some(spec);
        // resourceVersion in metadata makes this a compare-and-swap.
        match tokio::time::timeout(deadline, self.api.replace(&name, &PostParams::default(), &l)).await {
            Ok(Ok(_)) => outcome,
            Ok(Err(kube::Error::Api(e))) if e.code == 409 => Outcome::HeldByOther,
            Ok(Err(e)) => {
                warn!(lease = %name, "cannot update the lease: {e}");
                Outcome::Failed
            }
            Err(_) => {
                warn!(lease = %name, "updating the lease: no answer in {deadline:?}");
                Outcome::Failed
            }
        }
    }

    /// Give the Lease up (empty holder), if we hold it.
    pub async fn release(&mut self, deadline: Duration) {
        let name = self.cfg.name.clone();
        let Ok(Ok(Some(mut l))) = tokio::time::timeout(deadline, self.api.get_opt(&name)).await else { return };
        let Some(spec) = l.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match tokio::time::timeout(deadline, self.api.replace(&name, &PostParams::default(), &l)).await {
            Ok(Ok(_)) => info!(lease = %name, "lease released"),
            _ => warn!(lease = %name, "could not release the lease"),
        }
    }
}

/// Run the election until `stop` turns true; the receiver says whether we
/// lead. On stop the Lease is released, then the task ends.
pub fn run(api: Api<Lease>, cfg: LeaseConfig, mut stop: watch::Receiver<bool>) -> (Leadership, JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut elector = Elector::new(api, cfg.clone());
        // The start of the last successful renewal.
        let mut renewed: Option<Instant> = None;
        loop {
            let started = Instant::now();
            let deadline = match renewed {
                Some(t) => (t + cfg.renew_deadline).saturating_duration_since(started),
                None => cfg.renew_deadline,
            };
            let outcome = if deadline.is_zero() { Outcome::Failed } else { elector.try_acquire(deadline).await };
            let leading = match outcome {
                Outcome::Acquired | Outcome::Renewed => {
                    renewed = Some(started);
                    true
                }
                Outcome::HeldByOther => {
                    renewed = None;
                    false
                }
                // Keep leading only while the last renewal is recent enough.
                Outcome::Failed => renewed.is_some_and(|t| t.elapsed() < cfg.renew_deadline),
            };
            if !leading {
                renewed = None;
            }
            if *tx.borrow() != leading {
                if leading {
                    info!(lease = %cfg.name, identity = %cfg.identity, "leading");
                } else {
                    warn!(lease = %cfg.name, identity = %cfg.identity, "not leading");
                }
                tx.send_replace(leading);
            }
            // Wake in time to step down if the next renewals fail.
            let next = match renewed {
                Some(t) => cfg.retry_period.min((t + cfg.renew_deadline).saturating_duration_since(Instant::now())),
                None => cfg.retry_period,
            };
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    tx.send_replace(false);
                    if renewed.is_some() {
                        elector.release(cfg.retry_period).await;
                    }
                    return;
                }
            }
        }
    });
    (rx, task)
}
