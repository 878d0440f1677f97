//! `ip -ts monitor route` in a lab namespace, read as it grows: the kernel
//! FIB's changes, each stamped with gettimeofday when `ip` read the
//! netlink message (the latency and failover benchmarks' clock, and the
//! lab tests' proof that a route did not change).

use std::time::{Duration, Instant};

use crate::cmd::check_interrupted;
use crate::lab::Lab;
use crate::proc::{Follow, Proc};

/// One change of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct FibEvent {
    /// Seconds since the epoch (the `ip -ts` stamp).
    pub t: f64,
    /// The destination as `ip` prints it (`203.0.113.41` for a /32).
    pub dst: String,
    pub deleted: bool,
    pub vias: Vec<String>,
}

impl FibEvent {
    /// The change is about `dst` (an address or a prefix; `ip` prints a
    /// host route without its /32 or /128).
    pub fn is_for(&self, dst: &str) -> bool {
        let bare = |s: &str| s.strip_suffix("/32").or_else(|| s.strip_suffix("/128")).unwrap_or(s).to_string();
        bare(&self.dst) == bare(dst)
    }
}

/// `ip -ts monitor route` running in a namespace.
pub struct RouteMonitor {
    pub proc: Proc,
    out: Follow,
    /// The last record read, held back until a read finds nothing new (a
    /// multipath route's indented `nexthop` lines follow its first line).
    pending: Option<String>,
}

impl RouteMonitor {
    /// Start it in `ns` (TZ=UTC, which [`parse_ts`] expects).
    pub fn start(lab: &Lab, ns: &str) -> RouteMonitor {
        let proc = lab.spawn_env(ns, "monitor", &["ip", "-ts", "monitor", "route"], &[("TZ", "UTC")]);
        let out = Follow::open(&proc);
        RouteMonitor { proc, out, pending: None }
    }

    /// Forget everything printed so far.
    pub fn skip(&mut self) {
        self.out.skip();
        self.pending = None;
    }

    /// The new records. A multipath route is one stamped line followed by
    /// indented `nexthop via ...` lines; the last record is only returned
    /// once a later read finds nothing more (or the next record starts).
    pub fn events(&mut self) -> Vec<FibEvent> {
        let mut records: Vec<String> = self.pending.take().into_iter().collect();
        for l in self.out.lines() {
            if l.starts_with('[') || records.is_empty() {
                records.push(l);
            } else {
                let r = records.last_mut().unwrap();
                r.push(' ');
                r.push_str(l.trim());
            }
        }
        if !self.out.idle() {
            self.pending = records.pop();
        }
        records.iter().filter_map(|r| parse_record(r)).collect()
    }

    /// Everything up to now, the last record included.
    pub fn drain(&mut self) -> Vec<FibEvent> {
        std::thread::sleep(Duration::from_millis(5));
        let mut v = self.events();
        v.extend(self.events());
        v
    }

    /// Wait for the first change at or after `t0` that `hit` accepts; its
    /// time in ms after `t0`, or None after `timeout`. Panics when the
    /// monitor exits.
    pub fn wait_for(&mut self, lab: &Lab, t0: f64, timeout: Duration, hit: impl Fn(&FibEvent) -> bool) -> Option<f64> {
        let seen = self.until(lab, timeout, |e| e.t >= t0 - 0.0005 && hit(e))?;
        seen.last().map(|e| (e.t - t0) * 1e3)
    }

    /// Every change from now until (and with) the first one `hit`
    /// accepts; None after `timeout`. Panics when the monitor exits.
    pub fn until(&mut self, lab: &Lab, timeout: Duration, hit: impl Fn(&FibEvent) -> bool) -> Option<Vec<FibEvent>> {
        let start = Instant::now();
        let mut seen = vec![];
        while start.elapsed() < timeout {
            check_interrupted();
            for e in self.events() {
                let done = hit(&e);
                seen.push(e);
                if done {
                    return Some(seen);
                }
            }
            lab.check_running(&self.proc);
            std::thread::sleep(Duration::from_micros(500));
        }
        None
    }
}

/// One `ip -ts monitor route` record.
pub fn parse_record(r: &str) -> Option<FibEvent> {
    let t = parse_ts(r)?;
    let body = r.split_once(']')?.1.trim_start();
    let (deleted, body) = match body.strip_prefix("Deleted ") {
        Some(b) => (true, b),
        None => (false, body),
    };
    let toks: Vec<&str> = body.split_whitespace().collect();
    let dst = toks.first()?.to_string();
    let vias = toks.windows(2).filter(|w| w[0] == "via").map(|w| w[1].to_string()).collect();
    Some(FibEvent { t, dst, deleted, vias })
}

/// `[2026-11-25T15:37:14.618988]` (UTC) as seconds since the epoch.
pub fn parse_ts(s: &str) -> Option<f64> {
    let s = s.strip_prefix('[')?.split(']').next()?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (hh, mm, ss) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?, t.next()?.parse::<f64>().ok()?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60) as f64 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_ip_monitor() {
        assert_eq!(parse_ts("[1970-01-02T00:00:01.5]"), Some(86_401.5));
        let r = parse_record(
            "[2026-11-25T15:37:14.618988] 203.0.113.41 proto bgp metric 20 nexthop via 198.18.41.11 dev v11 weight 1 \
             nexthop via 198.18.41.12 dev v12 weight 1",
        )
        .unwrap();
        assert_eq!(r.dst, "203.0.113.41");
        assert!(!r.deleted);
        assert_eq!(r.vias, ["198.18.41.11", "198.18.41.12"]);
        let d = parse_record("[2026-11-25T15:37:15.000000] Deleted 203.0.113.41 nhid 30 proto bgp").unwrap();
        assert!(d.deleted && d.vias.is_empty());
        assert!(d.is_for("203.0.113.41/32") && d.is_for("203.0.113.41") && !d.is_for("203.0.113.4"));
        assert!((d.t - r.t - 0.381012).abs() < 1e-6);
        assert_eq!(parse_record("no stamp"), None);
    }
}
