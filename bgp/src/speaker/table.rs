//! The speaker's routes, and a bounded log of the prefixes that changed,
//! so that each session can bring its peer up to date in time
//! proportional to the changes rather than to the table.
//!
//! A prefix holds one or more paths ([`Paths`]): each path says which
//! peers it is for ([`RouteAttrs::to`]); a peer is sent the first path
//! meant for it, and nothing when none is.

use std::collections::VecDeque;
use std::sync::Arc;

use ipnetwork::IpNetwork;
use rustc_hash::FxHashMap;

use super::export::RouteAttrs;

/// The paths of one prefix, in order of preference (shared between
/// prefixes with equal paths).
pub type Paths = Arc<[RouteAttrs]>;

/// Routes to announce (prefix → paths) with a change log.
///
/// Every change (a prefix added, given other attributes, or removed)
/// appends the prefix to the log and advances [`RouteTable::version`].
/// A reader that saw version `v` asks [`RouteTable::changed_since`] for
/// the prefixes to look at again; once the log has been trimmed past `v`
/// the answer is `None` and the reader compares the whole table. The log
/// keeps at most `max(4096, table size)` entries: a reader more than a
/// table's worth of changes behind would not gain from it.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: FxHashMap<IpNetwork, Paths>,
    log: VecDeque<IpNetwork>,
    /// The version before the log's first entry.
    log_start: u64,
    /// Prefixes with a path meant for some peers only.
    restricted: usize,
}

/// Whether one of the paths is meant for some peers only.
fn is_restricted(paths: &Paths) -> bool {
    paths.iter().any(|a| a.to.is_some())
}

const MIN_LOG: usize = 4096;

impl RouteTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts every change made so far.
    pub fn version(&self) -> u64 {
        self.log_start + self.log.len() as u64
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Whether a prefix has a path meant for some peers only
    /// ([`RouteAttrs::to`]): then peers are not all sent the same.
    pub fn restricted(&self) -> bool {
        self.restricted > 0
    }

    /// Count `paths` in (`sign` 1) or out (-1) of the restricted prefixes.
    fn count(&mut self, paths: &Paths, sign: isize) {
        if is_restricted(paths) {
            self.restricted = self.restricted.wrapping_add_signed(sign);
        }
    }

    pub fn get(&self, prefix: &IpNetwork) -> Option<&Paths> {
        self.routes.get(prefix)
    }

    pub fn contains(&self, prefix: &IpNetwork) -> bool {
        self.routes.contains_key(prefix)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&IpNetwork, &Paths)> {
        self.routes.iter()
    }

    /// The prefixes changed after version `since` (a prefix may appear
    /// more than once), or `None` when the log no longer reaches back
    /// that far (or `since` is not a version of this table).
    pub fn changed_since(&self, since: u64) -> Option<impl Iterator<Item = &IpNetwork>> {
        if since < self.log_start || since > self.version() {
            return None;
        }
        Some(self.log.range((since - self.log_start) as usize..))
    }

    fn note(&mut self, prefix: IpNetwork) {
        self.log.push_back(prefix);
        let cap = MIN_LOG.max(self.routes.len());
        while self.log.len() > cap {
            self.log.pop_front();
            self.log_start += 1;
        }
    }

    /// Announce `prefix` with `attrs` (a change only if the paths differ).
    pub fn insert(&mut self, prefix: IpNetwork, attrs: Paths) {
        self.count(&attrs, 1);
        match self.routes.insert(prefix, attrs) {
            Some(old) if old == self.routes[&prefix] => self.count(&old, -1),
            Some(old) => {
                self.count(&old, -1);
                self.note(prefix)
            }
            None => self.note(prefix),
        }
    }

    pub fn remove(&mut self, prefix: &IpNetwork) {
        if let Some(old) = self.routes.remove(prefix) {
            self.count(&old, -1);
            self.note(*prefix);
        }
    }

    /// Replace every route: only prefixes that are new, gone, or whose
    /// attributes differ count as changes. Unchanged prefixes keep their
    /// existing attribute handle.
    pub fn replace(&mut self, new: impl IntoIterator<Item = (IpNetwork, Paths)>) {
        let mut old = std::mem::take(&mut self.routes);
        let mut changed = vec![];
        for (p, a) in new {
            let a = match old.remove(&p) {
                Some(o) if o == a => o,
                _ => {
                    changed.push(p);
                    a
                }
            };
            // The same prefix twice in `new`: the last one wins (and counts as changed).
            self.routes.insert(p, a);
        }
        self.restricted = self.routes.values().filter(|a| is_restricted(a)).count();
        changed.extend(old.into_keys());
        for p in changed {
            self.note(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn attrs(med: u32) -> Paths {
        Arc::from([RouteAttrs { med: Some(med), ..RouteAttrs::default() }])
    }

    fn since(t: &RouteTable, v: u64) -> Option<Vec<IpNetwork>> {
        t.changed_since(v).map(|i| i.copied().collect())
    }

    #[test]
    fn logs_only_real_changes() {
        let mut t = RouteTable::new();
        t.insert(p("203.0.113.1/32"), attrs(1));
        let v1 = t.version();
        t.insert(p("203.0.113.1/32"), attrs(1)); // same attributes, another handle
        t.remove(&p("203.0.113.9/32")); // not there
        assert_eq!(t.version(), v1, "no-op changes are not logged");
        t.insert(p("203.0.113.1/32"), attrs(2));
        t.insert(p("203.0.113.2/32"), attrs(2));
        t.remove(&p("203.0.113.1/32"));
        assert_eq!(since(&t, v1).unwrap(), [p("203.0.113.1/32"), p("203.0.113.2/32"), p("203.0.113.1/32")]);
        assert_eq!(since(&t, t.version()).unwrap(), Vec::<IpNetwork>::new());
        assert_eq!(since(&t, t.version() + 1), None, "a version from the future");
    }

    #[test]
    fn replace_logs_the_difference() {
        let mut t = RouteTable::new();
        t.replace([(p("10.0.0.1/32"), attrs(1)), (p("10.0.0.2/32"), attrs(1)), (p("10.0.0.3/32"), attrs(1))]);
        let v = t.version();
        let kept = t.get(&p("10.0.0.1/32")).unwrap().clone();
        t.replace([(p("10.0.0.1/32"), attrs(1)), (p("10.0.0.2/32"), attrs(5)), (p("10.0.0.4/32"), attrs(1))]);
        let mut changed = since(&t, v).unwrap();
        changed.sort();
        assert_eq!(changed, [p("10.0.0.2/32"), p("10.0.0.3/32"), p("10.0.0.4/32")]);
        assert!(Arc::ptr_eq(t.get(&p("10.0.0.1/32")).unwrap(), &kept), "unchanged routes keep their handle");
        assert_eq!(t.len(), 3);
        assert!(!t.contains(&p("10.0.0.3/32")));
    }

    #[test]
    fn counts_prefixes_with_paths_for_some_peers_only() {
        let to = |a: &str| -> Paths {
            Arc::from([RouteAttrs { to: Some(vec![a.parse().unwrap()].into()), ..RouteAttrs::default() }])
        };
        let mut t = RouteTable::new();
        t.insert(p("10.0.0.1/32"), attrs(1));
        assert!(!t.restricted());
        t.insert(p("10.0.0.2/32"), to("198.18.0.1"));
        t.insert(p("10.0.0.2/32"), to("198.18.0.1")); // the same again
        t.insert(p("10.0.0.3/32"), to("198.18.0.2"));
        t.remove(&p("10.0.0.2/32"));
        assert!(t.restricted(), "one left");
        t.insert(p("10.0.0.3/32"), attrs(2)); // no longer restricted
        assert!(!t.restricted());
        t.replace([(p("10.0.0.4/32"), to("198.18.0.1"))]);
        assert!(t.restricted());
        t.replace([(p("10.0.0.4/32"), attrs(1))]);
        assert!(!t.restricted());
    }

    #[test]
    fn log_is_bounded_and_old_readers_fall_back() {
        let mut t = RouteTable::new();
        t.insert(p("10.0.0.1/32"), attrs(0));
        let old = t.version();
        for i in 0..(MIN_LOG as u32 + 10) {
            t.insert(p("10.0.0.1/32"), attrs(i + 1));
        }
        assert!(t.log.len() <= MIN_LOG);
        assert_eq!(since(&t, old), None, "trimmed past: compare the whole table");
        let recent = t.version() - 3;
        assert_eq!(since(&t, recent).unwrap().len(), 3);
    }
}
