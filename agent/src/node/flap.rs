//! Flap damping where routes originate (RFC 2439's penalty, applied to the
//! paths this node announces, not to routes received): a path that keeps
//! going away and coming back — a node falling in and out of Ready, an
//! endpoint or a probe flapping — would make every router add and remove it
//! each time, and each add or remove rehashes the flows of the router's
//! ECMP group, breaking connections through the healthy nodes too.
//!
//! Pure and sans-IO: the paths wanted at `now` in, the paths to announce and
//! when to look again out. Holds no clock, timer or speaker; the node loop
//! wakes at [`Damped::next`].
//!
//! The rules, per path (a prefix and its next hop, so a prefix announced by
//! this node with several paths for different peers is damped as one, and a
//! central speaker's path per node would be damped per node):
//! - a withdrawal is always immediate, and each time a wanted path stops
//!   being wanted (announced or held back) its penalty grows by
//!   [`FlapConfig::penalty`], capped so that it decays to the reuse threshold
//!   within [`FlapConfig::max_suppress`];
//! - the penalty halves every [`FlapConfig::half_life`];
//! - a path wanted again is announced at once while its penalty is below
//!   [`FlapConfig::suppress`] — so the first announcement of a new path, and
//!   the first return after a single flap, are immediate — otherwise it is
//!   suppressed: held back until its penalty is below [`FlapConfig::reuse`]
//!   and it has been wanted without a break for [`FlapConfig::stable`];
//! - a history whose penalty is below half the reuse threshold is forgotten,
//!   and so is the history of a path whose address no Service holds any more
//!   ([`FlapDamper::forget_released`]): deleting a Service and creating it
//!   again is an operator's change, not a flap.
//!
//! With the defaults a second flap within a minute of the first
//! (1000 + 1000·2^(-t/60 s) ≥ 1500) keeps the path out: after two quick
//! flaps (penalty ≈ 2000) it comes back about 85 s later, if stable.
//!
//! Not here: weight-only changes ([`super::damping`]), which are paced, not
//! suppressed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;

use super::damping::Routes;

/// The damping parameters (see the module comment for the rules).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlapConfig {
    /// Added to a path's penalty each time it stops being wanted.
    pub penalty: f64,
    /// A path returning with this penalty or more is suppressed.
    pub suppress: f64,
    /// A suppressed path may return once its penalty is below this.
    pub reuse: f64,
    /// The penalty halves in this time (non-zero).
    pub half_life: Duration,
    /// The longest a path stays suppressed after its last flap (through
    /// the penalty's cap; the stable time may add to it).
    pub max_suppress: Duration,
    /// A suppressed path returns only after being wanted this long without a break.
    pub stable: Duration,
}

impl Default for FlapConfig {
    fn default() -> Self {
        FlapConfig {
            penalty: 1000.0,
            suppress: 1500.0,
            reuse: 750.0,
            half_life: Duration::from_secs(60),
            max_suppress: Duration::from_secs(600),
            stable: Duration::from_secs(10),
        }
    }
}

impl FlapConfig {
    /// The highest penalty a path may have: the one that decays to the reuse
    /// threshold in `max_suppress`.
    fn ceiling(&self) -> f64 {
        let halvings = self.max_suppress.as_secs_f64() / self.half_life.as_secs_f64();
        self.reuse * 2f64.powf(halvings.min(64.0))
    }

    fn decayed(&self, penalty: f64, elapsed: Duration) -> f64 {
        penalty * 0.5f64.powf(elapsed.as_secs_f64() / self.half_life.as_secs_f64())
    }

    /// How long `penalty` takes to decay below the reuse threshold.
    fn until_reuse(&self, penalty: f64) -> Duration {
        if penalty < self.reuse {
            return Duration::ZERO;
        }
        // A hair past the crossing, so the wake-up finds it below.
        Duration::from_secs_f64(self.half_life.as_secs_f64() * (penalty / self.reuse).log2()) + Duration::from_millis(1)
    }
}

/// What is damped: a prefix and its next hop (`None`: next-hop self).
pub type PathKey = (IpNetwork, Option<IpAddr>);

/// A path's flap history.
#[derive(Debug, Clone)]
struct History {
    /// The penalty as of `at`.
    penalty: f64,
    at: Instant,
    /// Sent to the speaker at the last evaluation.
    announced: bool,
    /// Wanted without a break since then (`None`: not wanted).
    wanted_since: Option<Instant>,
    /// In the suppressed state: withdrawn with a penalty at the suppress
    /// threshold or above, and not yet announced again.
    suppressed: bool,
    /// Flaps counted since the history began.
    flaps: u32,
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq)]
pub enum FlapEvent {
    /// A path was withdrawn with a penalty at the suppress threshold or
    /// above: when wanted again it is held back until its penalty is below
    /// the reuse threshold (`reuse_in` from now) and it has been stable.
    Suppressed { path: PathKey, flaps: u32, penalty: f64, reuse_in: Duration },
    /// A suppressed path is announced again.
    Reused { path: PathKey, flaps: u32, penalty: f64 },
}

/// The damper's answer for one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Damped {
    /// The routes to announce now (the wanted ones less the suppressed paths).
    pub routes: Routes,
    /// Evaluate again at this time (a suppressed path may return then), even with no change.
    pub next: Option<Instant>,
    /// Paths wanted but held back now.
    pub suppressed: usize,
    pub events: Vec<FlapEvent>,
}

/// The flap damper of one node's paths.
#[derive(Debug, Default)]
pub struct FlapDamper {
    /// `None`: damping is off, routes pass unchanged.
    config: Option<FlapConfig>,
    paths: BTreeMap<PathKey, History>,
}

/// The first and last address of `prefix`.
fn bounds(prefix: &IpNetwork) -> (IpAddr, IpAddr) {
    match prefix {
        IpNetwork::V4(n) => (n.network().into(), n.broadcast().into()),
        IpNetwork::V6(n) => {
            let mask = u128::MAX.checked_shr(u32::from(n.prefix())).unwrap_or(0);
            let first = u128::from(n.network());
            (IpAddr::V6(first.into()), IpAddr::V6((first | mask).into()))
        }
    }
}

fn key(route: &(IpNetwork, mooring_bgp::speaker::RouteAttrs)) -> PathKey {
    (route.0, route.1.next_hop)
}

impl FlapDamper {
    /// A damper with `config`, or one that lets everything through (`None`).
    pub fn new(config: Option<FlapConfig>) -> Self {
        FlapDamper { config, paths: BTreeMap::new() }
    }

    /// Forget the history of every path whose prefix covers no address in
    /// `held` (every address a Service of ours holds): a Service deleted, or
    /// its address released or changed, is an operator's change, not a flap,
    /// and the address given out again starts clean.
    pub fn forget_released(&mut self, held: &BTreeSet<IpAddr>) {
        self.paths.retain(|(prefix, _), _| {
            let (first, last) = bounds(prefix);
            held.range(first..=last).next().is_some()
        });
    }

    /// The routes wanted at `now` → the routes to announce now.
    pub fn damp(&mut self, wanted: &Routes, now: Instant) -> Damped {
        let Some(cfg) = self.config else {
            return Damped { routes: wanted.clone(), next: None, suppressed: 0, events: vec![] };
        };
        let want: BTreeSet<PathKey> = wanted.iter().map(key).collect();
        let mut keys: BTreeSet<PathKey> = self.paths.keys().copied().collect();
        keys.extend(want.iter().copied());
        let (mut next, mut events, mut held) = (None::<Instant>, vec![], BTreeSet::new());
        for k in keys {
            let h = self.paths.entry(k).or_insert(History {
                penalty: 0.0,
                at: now,
                announced: false,
                wanted_since: None,
                suppressed: false,
                flaps: 0,
            });
            h.penalty = cfg.decayed(h.penalty, now.saturating_duration_since(h.at));
            h.at = now;
            if h.suppressed && h.wanted_since.is_none() && h.penalty < cfg.reuse {
                // Decayed while it was out: it may return at once.
                h.suppressed = false;
            }
            if !want.contains(&k) {
                if h.wanted_since.is_some() {
                    h.penalty = (h.penalty + cfg.penalty).min(cfg.ceiling());
                    h.flaps += 1;
                    if !h.suppressed && h.penalty >= cfg.suppress {
                        h.suppressed = true;
                        let reuse_in = cfg.until_reuse(h.penalty);
                        events.push(FlapEvent::Suppressed { path: k, flaps: h.flaps, penalty: h.penalty, reuse_in });
                    }
                }
                (h.announced, h.wanted_since) = (false, None);
                if !h.suppressed && h.penalty < cfg.reuse / 2.0 {
                    self.paths.remove(&k);
                }
                continue;
            }
            let since = *h.wanted_since.get_or_insert(now);
            if h.announced {
                continue;
            }
            if h.suppressed {
                let at = (now + cfg.until_reuse(h.penalty)).max(since + cfg.stable);
                if at > now {
                    held.insert(k);
                    next = Some(next.map_or(at, |n| n.min(at)));
                    continue;
                }
                events.push(FlapEvent::Reused { path: k, flaps: h.flaps, penalty: h.penalty });
                h.suppressed = false;
            }
            h.announced = true;
        }
        let routes = wanted.iter().filter(|r| !held.contains(&key(r))).cloned().collect();
        Damped { routes, next, suppressed: held.len(), events }
    }
}

/// The command-line flags of flap damping (`mooring standalone` and `mooring speaker`).
#[derive(clap::Args, Debug, Clone)]
pub struct FlapOptions {
    /// Flap damping of this node's paths: withdraw at once, but hold back a
    /// path that keeps coming back (see --flap-* for how long).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub flap_damping: bool,
    /// Each withdrawal adds 1000 to a path's penalty, which halves in this
    /// time; 0 turns damping off.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub flap_half_life_seconds: u64,
    /// A path withdrawn with this penalty or more is suppressed (held back
    /// when it returns).
    #[arg(long, default_value_t = 1500)]
    pub flap_suppress_threshold: u32,
    /// A suppressed path returns once its penalty is below this (and it has
    /// been stable for --flap-stable-seconds).
    #[arg(long, default_value_t = 750)]
    pub flap_reuse_threshold: u32,
    /// A suppressed path returns only after being wanted this long without a break.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub flap_stable_seconds: u64,
    /// The longest the penalty keeps a path suppressed after its last flap.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub flap_max_suppress_seconds: u64,
}

impl Default for FlapOptions {
    fn default() -> Self {
        let d = FlapConfig::default();
        FlapOptions {
            flap_damping: true,
            flap_half_life_seconds: d.half_life.as_secs(),
            flap_suppress_threshold: d.suppress as u32,
            flap_reuse_threshold: d.reuse as u32,
            flap_stable_seconds: d.stable.as_secs(),
            flap_max_suppress_seconds: d.max_suppress.as_secs(),
        }
    }
}

impl FlapOptions {
    /// The damping these flags ask for (`None`: off), or why they do not make sense.
    pub fn config(&self) -> Result<Option<FlapConfig>, String> {
        if !self.flap_damping || self.flap_half_life_seconds == 0 {
            return Ok(None);
        }
        if self.flap_reuse_threshold == 0 || self.flap_reuse_threshold >= self.flap_suppress_threshold {
            return Err(format!(
                "--flap-reuse-threshold ({}) must be above 0 and below --flap-suppress-threshold ({})",
                self.flap_reuse_threshold, self.flap_suppress_threshold
            ));
        }
        Ok(Some(FlapConfig {
            penalty: FlapConfig::default().penalty,
            suppress: self.flap_suppress_threshold.into(),
            reuse: self.flap_reuse_threshold.into(),
            half_life: Duration::from_secs(self.flap_half_life_seconds),
            max_suppress: Duration::from_secs(self.flap_max_suppress_seconds),
            stable: Duration::from_secs(self.flap_stable_seconds),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mooring_bgp::speaker::RouteAttrs;

    const S: Duration = Duration::from_secs(1);

    fn ms() -> Duration {
        Duration::from_millis(1)
    }

    fn route(p: &str) -> (IpNetwork, RouteAttrs) {
        (p.parse().unwrap(), RouteAttrs::default())
    }

    fn vip() -> Routes {
        vec![route("203.0.113.10/32")]
    }

    fn prefixes(d: &Damped) -> Vec<String> {
        d.routes.iter().map(|r| r.0.to_string()).collect()
    }

    /// Announce at `t`, withdraw at `t + up`: one flap.
    fn flap(d: &mut FlapDamper, t: Instant, up: Duration) -> Damped {
        d.damp(&vip(), t);
        d.damp(&vec![], t + up)
    }

    #[test]
    fn a_new_path_is_announced_at_once_and_withdrawn_at_once() {
        let t0 = Instant::now();
        let mut d = FlapDamper::new(Some(FlapConfig::default()));
        let a = d.damp(&vip(), t0);
        assert_eq!((prefixes(&a), a.next, a.suppressed), (vec!["203.0.113.10/32".to_string()], None, 0));
        let w = d.damp(&vec![], t0 + S);
        assert!(w.routes.is_empty() && w.next.is_none() && w.events.is_empty());
    }

    /// Two quick flaps: the path would be suppressed on its return.
    fn flapped_twice(d: &mut FlapDamper, t0: Instant) {
        flap(d, t0, S);
        let w = flap(d, t0 + 2 * S, S);
        assert!(matches!(w.events[..], [FlapEvent::Suppressed { .. }]), "{w:?}");
    }

    #[test]
    fn a_service_that_goes_and_comes_back_is_not_a_flap() {
        let t0 = Instant::now();
        let mut d = FlapDamper::new(Some(FlapConfig::default()));
        flapped_twice(&mut d, t0);
        // The address is still held (an endpoint flapping): the history stays.
        let held: BTreeSet<IpAddr> = ["203.0.113.10".parse().unwrap()].into();
        d.forget_released(&held);
        assert_eq!(d.damp(&vip(), t0 + 5 * S).suppressed, 1);
        d.damp(&vec![], t0 + 6 * S);
        // The Service is gone, its address released: when it comes back it starts clean.
        d.forget_released(&["203.0.113.11".parse().unwrap()].into());
        let back = d.damp(&vip(), t0 + 7 * S);
        assert_eq!((prefixes(&back), back.suppressed), (vec!["203.0.113.10/32".to_string()], 0));
    }

    #[test]
    fn an_aggregate_is_kept_while_any_address_in_it_is_held() {
        let t0 = Instant::now();
        let mut d = FlapDamper::new(Some(FlapConfig::default()));
        let agg = || vec![route("203.0.113.0/24"), route("2001:db8:ffff::/64")];
        for i in 0..2 {
            d.damp(&agg(), t0 + 2 * i * S);
            d.damp(&vec![], t0 + (2 * i + 1) * S);
        }
        d.forget_released(&["203.0.113.200".parse().unwrap(), "2001:db8:ffff::ffff".parse().unwrap()].into());
        assert_eq!(d.damp(&agg(), t0 + 5 * S).suppressed, 2, "both held: both still suppressed");
        d.damp(&vec![], t0 + 6 * S);
        d.forget_released(&["203.0.114.1".parse().unwrap(), "2001:db8:ffff:1::1".parse().unwrap()].into());
        assert_eq!(d.damp(&agg(), t0 + 7 * S).suppressed, 0, "neither held: both forgotten");
    }

    #[test]
    fn the_first_return_after_one_flap_is_immediate() {
        let t0 = Instant::now();
        let mut d = FlapDamper::new(Some(FlapConfig::default()));
        flap(&mut d, t0, S);
        let back = d.damp(&vip(), t0 + 2 * S);
        assert_eq!(prefixes(&back), ["203.0.113.10/32"]);
        assert!(back.events.is_empty());
    }

    #[test]
    fn after_the_second_flap_the_path_stays_out_until_decayed_and_stable() {
        let t0 = Instant::now();
        let cfg = FlapConfig::default();
        let mut d = FlapDamper::new(Some(cfg));
        flap(&mut d, t0, S); // penalty 1000 at 1 s
        d.damp(&vip(), t0 + 2 * S); // back at once
        let w = d.damp(&vec![], t0 + 3 * S); // second flap: penalty ≈ 1977
        assert!(w.routes.is_empty(), "withdrawn at once");
        let penalty = 1000.0 * 0.5f64.powf(2.0 / 60.0) + 1000.0;
        match &w.events[..] {
            [FlapEvent::Suppressed { flaps: 2, penalty: p, reuse_in, .. }] => {
                assert!((p - penalty).abs() < 0.01, "{p}");
                assert!(reuse_in.abs_diff(Duration::from_secs_f64(60.0 * (penalty / 750.0).log2())) < 10 * ms());
            }
            e => panic!("{e:?}"),
        }
        let held = d.damp(&vip(), t0 + 4 * S);
        assert!(held.routes.is_empty() && held.events.is_empty(), "suppressed");
        assert_eq!(held.suppressed, 1);
        let reuse_at = t0 + 3 * S + Duration::from_secs_f64(60.0 * (penalty / 750.0).log2());
        let Some(next) = held.next else { panic!("no re-evaluation time") };
        let off = next.max(reuse_at) - next.min(reuse_at);
        assert!(off < 10 * ms(), "{off:?}");
        assert!(next > t0 + Duration::from_secs(80), "about 84 s after the second flap");
        // Still out just before; nothing is logged again.
        let before = d.damp(&vip(), next - Duration::from_millis(100));
        assert!(before.routes.is_empty() && before.events.is_empty());
        assert_eq!(before.next, Some(next));
        let after = d.damp(&vip(), next);
        assert_eq!(prefixes(&after), ["203.0.113.10/32"]);
        assert!(matches!(after.events[..], [FlapEvent::Reused { flaps: 2, .. }]), "{:?}", after.events);
        assert_eq!((after.next, after.suppressed), (None, 0));
    }

    #[test]
    fn a_suppressed_path_needs_the_stable_time_after_its_last_flap() {
        let t0 = Instant::now();
        let cfg =
            FlapConfig { stable: Duration::from_secs(30), half_life: Duration::from_secs(5), ..FlapConfig::default() };
        let mut d = FlapDamper::new(Some(cfg));
        flap(&mut d, t0, S);
        d.damp(&vip(), t0 + 2 * S);
        d.damp(&vec![], t0 + 3 * S);
        let held = d.damp(&vip(), t0 + 4 * S);
        // The penalty reaches the reuse threshold ~7 s later; the stable time rules.
        assert_eq!(held.next, Some(t0 + 34 * S));
        // Flapping while suppressed restarts the stable time (and adds penalty).
        d.damp(&vec![], t0 + 20 * S);
        let again = d.damp(&vip(), t0 + 21 * S);
        assert!(again.routes.is_empty() && again.events.is_empty(), "still suppressed, no new log line");
        assert_eq!(again.next, Some(t0 + 51 * S));
        assert_eq!(prefixes(&d.damp(&vip(), t0 + 51 * S)), ["203.0.113.10/32"]);
    }

    #[test]
    fn the_penalty_decays_a_slow_flapper_is_never_suppressed() {
        let t0 = Instant::now();
        let mut d = FlapDamper::new(Some(FlapConfig::default()));
        // A flap every 2 minutes: 1000 + 1000/4 + ... < 1500.
        for i in 0..10u32 {
            let t = t0 + i * Duration::from_secs(120);
            let a = d.damp(&vip(), t);
            assert_eq!(a.routes.len(), 1, "round {i}");
            d.damp(&vec![], t + S);
        }
        // Long after, the history is forgotten: no penalty left at all.
        d.damp(&vec![], t0 + Duration::from_secs(3600));
        assert!(d.paths.is_empty());
    }

    #[test]
    fn suppression_is_capped_by_max_suppress() {
        let t0 = Instant::now();
        let cfg = FlapConfig { max_suppress: Duration::from_secs(120), ..FlapConfig::default() };
        let mut d = FlapDamper::new(Some(cfg));
        // 50 flaps a second apart: the penalty is capped at 750 · 2^(120/60).
        let mut t = t0;
        for _ in 0..50 {
            flap(&mut d, t, Duration::from_millis(500));
            t += S;
        }
        let held = d.damp(&vip(), t);
        let next = held.next.unwrap();
        assert!(held.routes.is_empty());
        assert!(next <= t + cfg.max_suppress + Duration::from_millis(10), "{:?}", next - t);
        assert!(next >= t + cfg.max_suppress - Duration::from_secs(2), "{:?}", next - t);
        assert_eq!(d.damp(&vip(), next).routes.len(), 1);
    }

    #[test]
    fn damped_by_path_other_paths_untouched() {
        let t0 = Instant::now();
        let mut d = FlapDamper::new(Some(FlapConfig::default()));
        let peer = |ip: &str| -> Option<std::sync::Arc<[IpAddr]>> { Some(vec![ip.parse().unwrap()].into()) };
        // One prefix, two paths for different peers (same next hop: one path key), and another prefix.
        let mut a = route("203.0.113.10/32");
        a.1.to = peer("198.18.0.1");
        let mut b = route("203.0.113.10/32");
        b.1.to = peer("198.18.0.2");
        b.1.med = Some(5);
        let other = route("203.0.113.20/32");
        let all: Routes = vec![a.clone(), b.clone(), other.clone()];
        let only_other: Routes = vec![other.clone()];
        for i in 0..2u32 {
            d.damp(&all, t0 + 2 * i * S);
            d.damp(&only_other, t0 + (2 * i + 1) * S);
        }
        let held = d.damp(&all, t0 + 4 * S);
        assert_eq!(held.routes, only_other, "both paths of the flapping prefix held back, the other kept");
        assert_eq!(held.suppressed, 1);
        // A central speaker's paths per next hop are damped apart.
        let via = |nh: &str| {
            let mut r = route("203.0.113.30/32");
            r.1.next_hop = Some(nh.parse().unwrap());
            r
        };
        let (n1, n2) = (via("198.18.0.11"), via("198.18.0.12"));
        let mut d = FlapDamper::new(Some(FlapConfig::default()));
        for i in 0..2u32 {
            d.damp(&vec![n1.clone(), n2.clone()], t0 + 2 * i * S);
            d.damp(&vec![n2.clone()], t0 + (2 * i + 1) * S);
        }
        assert_eq!(d.damp(&vec![n1, n2.clone()], t0 + 4 * S).routes, vec![n2]);
    }

    #[test]
    fn the_flags_defaults_are_the_documented_defaults() {
        assert_eq!(FlapOptions::default().config(), Ok(Some(FlapConfig::default())));
        let off = FlapOptions { flap_damping: false, ..FlapOptions::default() };
        assert_eq!(off.config(), Ok(None));
        assert_eq!(FlapOptions { flap_half_life_seconds: 0, ..FlapOptions::default() }.config(), Ok(None));
        assert!(FlapOptions { flap_reuse_threshold: 1500, ..FlapOptions::default() }.config().is_err());
        // Clap's defaults are these too.
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            f: FlapOptions,
        }
        let parsed = <Cli as clap::Parser>::parse_from(["x"]).f;
        assert_eq!(parsed.config(), FlapOptions::default().config());
        let parsed = <Cli as clap::Parser>::parse_from(["x", "--flap-damping=false"]).f;
        assert_eq!(parsed.config(), Ok(None));
    }

    #[test]
    fn off_lets_everything_through() {
        let t0 = Instant::now();
        let mut d = FlapDamper::new(None);
        for i in 0..5u32 {
            flap(&mut d, t0 + 2 * i * S, S);
        }
        let a = d.damp(&vip(), t0 + 10 * S);
        assert_eq!((a.routes, a.next, a.suppressed), (vip(), None, 0));
    }
}
