//! Damping of weight-only changes: during a rolling update the count of
//! ready endpoints per node moves every few seconds; each move would
//! re-announce with a new link bandwidth. Changes that only move weights go
//! out at most once per interval (with the latest values); any other
//! change goes out at once.

use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use mooring_bgp::speaker::RouteAttrs;
use mooring_bgp::wire::ExtCommunity;

pub type Routes = Vec<(IpNetwork, RouteAttrs)>;

fn without_weights(routes: &Routes) -> Routes {
    let mut v: Routes = routes
        .iter()
        .map(|(p, a)| {
            let mut a = a.clone();
            a.ext_communities.retain(|c| !matches!(c, ExtCommunity::LinkBandwidth { .. }));
            (*p, a)
        })
        .collect();
    v.sort_by_key(|r| r.0);
    v
}

#[derive(Debug)]
pub struct WeightDamper {
    interval: Duration,
    applied: Option<Routes>,
    last_weight_change: Option<Instant>,
}

impl WeightDamper {
    pub fn new(interval: Duration) -> Self {
        WeightDamper { interval, applied: None, last_weight_change: None }
    }

    /// May `routes` be applied at `now`? `Err(at)`: a weight-only change
    /// that must wait until `at` (apply the latest routes then).
    pub fn check(&self, routes: &Routes, now: Instant) -> Result<(), Instant> {
        let Some(prev) = &self.applied else { return Ok(()) };
        let mut sorted = routes.clone();
        sorted.sort_by_key(|r| r.0);
        let mut prev_sorted = prev.clone();
        prev_sorted.sort_by_key(|r| r.0);
        if sorted == prev_sorted || without_weights(routes) != without_weights(prev) {
            return Ok(());
        }
        match self.last_weight_change {
            Some(t) if now < t + self.interval => Err(t + self.interval),
            _ => Ok(()),
        }
    }

    /// Record what was applied.
    pub fn applied(&mut self, routes: &Routes, now: Instant) {
        let weights_moved = self.applied.as_ref().is_some_and(|prev| {
            let (mut a, mut b) = (prev.clone(), routes.clone());
            a.sort_by_key(|r| r.0);
            b.sort_by_key(|r| r.0);
            a != b && without_weights(prev) == without_weights(routes)
        });
        if weights_moved {
            self.last_weight_change = Some(now);
        }
        self.applied = Some(routes.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(bw: f32, med: Option<u32>) -> Routes {
        let a = RouteAttrs {
            med,
            ext_communities: vec![ExtCommunity::LinkBandwidth { asn: 1, bytes_per_sec: bw, transitive: true }],
            ..RouteAttrs::default()
        };
        vec![("203.0.113.10/32".parse().unwrap(), a)]
    }

    #[test]
    fn weight_only_changes_are_rate_limited_others_are_not() {
        let t0 = Instant::now();
        let s = Duration::from_secs(2);
        let mut d = WeightDamper::new(s);
        assert_eq!(d.check(&routes(1.0, None), t0), Ok(()));
        d.applied(&routes(1.0, None), t0);
        // The first weight move goes out at once...
        assert_eq!(d.check(&routes(2.0, None), t0), Ok(()));
        d.applied(&routes(2.0, None), t0);
        // ...the next one within the interval waits.
        assert_eq!(d.check(&routes(3.0, None), t0 + Duration::from_millis(500)), Err(t0 + s));
        assert_eq!(d.check(&routes(3.0, None), t0 + s), Ok(()));
        // A change that is not only weights goes out at once.
        assert_eq!(d.check(&routes(3.0, Some(5)), t0 + Duration::from_millis(500)), Ok(()));
        // No change at all is fine.
        assert_eq!(d.check(&routes(2.0, None), t0 + Duration::from_millis(500)), Ok(()));
    }
}
