//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! One holder at a time: the holder renews `spec.renewTime` every
//! `renew_every`; a candidate takes the Lease over once it has not been
//! renewed for `lease_duration`. Writes use the Lease's resourceVersion,
//! so two candidates never both win. A leader that cannot renew within
//! the lease duration stops leading at once (the [`Leadership`] flips to
//! false before another replica may take over), so a deposed leader never
//! writes after its successor started.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tracing::{info, warn};

/// Whether this replica leads now.
pub type Leadership = watch::Receiver<bool>;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_every: Duration,
}

impl LeaseConfig {
    pub fn new(name: &str, identity: &str) -> Self {
        LeaseConfig {
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
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

fn lease_expired(l: &Lease, now: Timestamp, default: Duration) -> bool {
    let Some(spec) = &l.spec else { return true };
    if spec.holder_identity.as_deref().is_none_or(str::is_empty) {
        return true;
    }
    let secs = spec.lease_duration_seconds.map(|s| s as i64).unwrap_or(default.as_secs() as i64);
    match spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) {
        Some(t) => t.0.checked_add(SignedDuration::from_secs(secs)).is_ok_and(|end| end < now),
        None => true,
    }
}

/// One round: create, renew or take over the Lease if we may.
pub async fn try_acquire(api: &Api<Lease>, cfg: &LeaseConfig) -> Outcome {
    let now = Timestamp::now();
    let mine = |transitions: i32, acquire: Option<MicroTime>| LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(cfg.lease_duration.as_secs() as i32),
        acquire_time: acquire.or(Some(MicroTime(now))),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    match api.get_opt(&cfg.name).await {
        Ok(None) => {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(cfg.name.clone()), ..Default::default() },
                spec: Some(mine(0, None)),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Outcome::Acquired,
                Err(e) => {
                    warn!(lease = %cfg.name, "cannot create the lease: {e}");
                    Outcome::Failed
                }
            }
        }
        Ok(Some(mut l)) => {
            let spec = l.spec.clone().unwrap_or_default();
            let ours = spec.holder_identity.as_deref() == Some(cfg.identity.as_str());
            let outcome = if ours {
                l.spec = Some(mine(spec.lease_transitions.unwrap_or(0), spec.acquire_time.clone()));
                Outcome::Renewed
            } else if lease_expired(&l, now, cfg.lease_duration) {
                l.spec = Some(mine(spec.lease_transitions.unwrap_or(0) + 1, None));
                Outcome::Acquired
            } else {
                return Outcome::HeldByOther;
            };
            // resourceVersion in metadata makes this a compare-and-swap.
            match api.replace(&cfg.name, &PostParams::default(), &l).await {
                Ok(_) => outcome,
                Err(kube::Error::Api(e)) if e.code == 409 => Outcome::HeldByOther,
                Err(e) => {
                    warn!(lease = %cfg.name, "cannot update the lease: {e}");
                    Outcome::Failed
                }
            }
        }
        Err(e) => {
            warn!(lease = %cfg.name, "cannot read the lease: {e}");
            Outcome::Failed
        }
    }
}

/// Run the election forever; the receiver says whether we lead.
pub fn run(api: Api<Lease>, cfg: LeaseConfig) -> Leadership {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut renewed: Option<Instant> = None;
        loop {
            let started = Instant::now();
            let outcome = try_acquire(&api, &cfg).await;
            let leading = match outcome {
                Outcome::Acquired | Outcome::Renewed => {
                    renewed = Some(started);
                    true
                }
                Outcome::HeldByOther => {
                    renewed = None;
                    false
                }
                // Keep leading only while the last renewal is still valid.
                Outcome::Failed => renewed.is_some_and(|t| t.elapsed() < cfg.lease_duration),
            };
            if *tx.borrow() != leading {
                info!(lease = %cfg.name, identity = %cfg.identity, leading, "leadership changed");
                tx.send_replace(leading);
            }
            // Wake up in time to step down before the lease runs out.
            let next = match renewed {
                Some(t) if leading => {
                    cfg.renew_every.min((t + cfg.lease_duration).saturating_duration_since(Instant::now()))
                }
                _ => cfg.renew_every,
            };
            tokio::time::sleep(next.max(Duration::from_millis(100))).await;
            if leading && renewed.is_some_and(|t| t.elapsed() >= cfg.lease_duration) && *tx.borrow() {
                warn!(lease = %cfg.name, "lease not renewed in time: stepping down");
                tx.send_replace(false);
            }
        }
    });
    rx
}
