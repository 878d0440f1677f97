//! Adj-RIB-Out: what one peer was sent, and the difference between that
//! and the route table, grouped by exported attribute set. Pure: no
//! sockets, no encoding.

use std::collections::HashSet;
use std::sync::Arc;

use ipnetwork::IpNetwork;
use rustc_hash::FxHashMap;

use super::export::{ExportCtx, Exported, RouteAttrs};
use super::table::RouteTable;
use crate::wire::{Family, Nlri};

/// What a peer must be sent to match the table.
#[derive(Debug, Default)]
pub struct Diff {
    /// Prefixes to withdraw.
    pub withdrawn: Vec<IpNetwork>,
    /// Prefixes to announce, grouped by their exported attributes.
    pub announced: Vec<(Arc<Exported>, Vec<Nlri>)>,
    /// Families seen for the first time without a next hop on this
    /// session (their routes are not announced).
    pub no_next_hop: Vec<Family>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.withdrawn.is_empty() && self.announced.iter().all(|(_, n)| n.is_empty())
    }
}

/// One peer's Adj-RIB-Out.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    sent: FxHashMap<IpNetwork, Arc<Exported>>,
    /// The table version `sent` matches, when it matches one.
    synced: Option<u64>,
    warned_no_next_hop: HashSet<Family>,
}

/// An attribute set of the route table, for one family.
type CacheKey = (*const RouteAttrs, Family);
/// What an attribute set exports to (none: no next hop), and its group.
type Hit = Option<(Arc<Exported>, usize)>;

/// Exports each distinct attribute set once per family and collects the
/// prefixes to announce in one group per exported set. Most routes share
/// a few attribute sets, so the last one is remembered and the maps are
/// only consulted when it changes.
struct Grouper<'a> {
    x: &'a ExportCtx,
    cache: FxHashMap<CacheKey, Option<Arc<Exported>>>,
    group_of: FxHashMap<*const Exported, usize>,
    groups: Vec<(Arc<Exported>, Vec<Nlri>)>,
    last: Option<(CacheKey, Hit)>,
}

impl<'a> Grouper<'a> {
    fn new(x: &'a ExportCtx) -> Self {
        Grouper { x, cache: Default::default(), group_of: Default::default(), groups: vec![], last: None }
    }

    fn export(&mut self, attrs: &Arc<RouteAttrs>, family: Family) -> Hit {
        let key = (Arc::as_ptr(attrs), family);
        if let Some((k, v)) = &self.last {
            if *k == key {
                return v.clone();
            }
        }
        let x = self.x;
        let exported = self.cache.entry(key).or_insert_with(|| x.export(attrs, family).map(Arc::new)).clone();
        let v = exported.map(|e| {
            let g = *self.group_of.entry(Arc::as_ptr(&e)).or_insert_with(|| {
                self.groups.push((e.clone(), vec![]));
                self.groups.len() - 1
            });
            (e, g)
        });
        self.last = Some((key, v.clone()));
        v
    }
}

impl AdjRibOut {
    pub fn new() -> Self {
        Self::default()
    }

    /// Prefixes sent and not withdrawn.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// The session went down: nothing was sent on the next one.
    pub fn clear(&mut self) {
        self.sent.clear();
        self.synced = None;
    }

    /// Forget what was sent of `family` (the peer asked for it again):
    /// the next diff announces all of it.
    pub fn forget_family(&mut self, family: Family) {
        self.sent.retain(|p, _| Family::of(p) != family);
        self.synced = None;
    }

    /// Compare the whole table at the next diff (as after a change of
    /// what the export depends on).
    pub fn compare_all_next(&mut self) {
        self.synced = None;
    }

    /// These prefixes could not be sent after all (encoding failed):
    /// forget them, so that a later diff tries again.
    pub fn unsent(&mut self, prefixes: &[Nlri]) {
        for n in prefixes {
            self.sent.remove(&n.prefix);
        }
        self.synced = None;
    }

    /// The difference between `table` and what was sent, for `families`
    /// exported with `x`, recorded as sent. When the previous diff was
    /// against a version the table's change log still reaches, only the
    /// prefixes changed since are looked at; otherwise the whole table.
    pub fn diff(&mut self, table: &RouteTable, families: &[Family], x: &ExportCtx) -> Diff {
        let mut grouper = Grouper::new(x);
        let mut diff = Diff::default();
        match self.synced.and_then(|v| table.changed_since(v)) {
            Some(changed) => {
                for prefix in changed {
                    self.look_at(prefix, table.get(prefix), families, &mut grouper, &mut diff, false);
                }
            }
            None => {
                // Nothing sent yet: nothing to compare or withdraw.
                let fresh = self.sent.is_empty();
                if fresh {
                    self.sent.reserve(table.len());
                }
                for (prefix, attrs) in table.iter() {
                    self.look_at(prefix, Some(attrs), families, &mut grouper, &mut diff, fresh);
                }
                if !fresh {
                    let gone = self.sent.keys().filter(|p| !table.contains(p) || !families.contains(&Family::of(p)));
                    diff.withdrawn = gone.copied().collect();
                    for p in &diff.withdrawn {
                        self.sent.remove(p);
                    }
                }
            }
        }
        self.synced = Some(table.version());
        diff.announced = grouper.groups.into_iter().filter(|(_, n)| !n.is_empty()).collect();
        diff
    }

    /// Bring one prefix up to date: `attrs` is its route (`None`: gone).
    /// `fresh`: nothing was sent yet (no comparison needed).
    fn look_at(
        &mut self,
        prefix: &IpNetwork,
        attrs: Option<&Arc<RouteAttrs>>,
        families: &[Family],
        grouper: &mut Grouper,
        diff: &mut Diff,
        fresh: bool,
    ) {
        let family = Family::of(prefix);
        let hit = match attrs {
            Some(a) if families.contains(&family) => grouper.export(a, family),
            _ => None,
        };
        let Some((exported, g)) = hit else {
            if attrs.is_some() && families.contains(&family) && self.warned_no_next_hop.insert(family) {
                diff.no_next_hop.push(family);
            }
            if !fresh && self.sent.remove(prefix).is_some() {
                diff.withdrawn.push(*prefix);
            }
            return;
        };
        if !fresh && self.sent.get(prefix).is_some_and(|sent| Arc::ptr_eq(sent, &exported) || **sent == *exported) {
            return;
        }
        self.sent.insert(*prefix, exported);
        grouper.groups[g].1.push(Nlri::new(*prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ExportCtx {
        ExportCtx::new(64513, false, "198.18.0.11:40000".parse().unwrap())
    }

    fn p(i: u32) -> IpNetwork {
        IpNetwork::new(std::net::Ipv4Addr::from(0xCB00_7100 + i).into(), 32).unwrap()
    }

    fn attrs(med: u32) -> Arc<RouteAttrs> {
        Arc::new(RouteAttrs { med: Some(med), ..RouteAttrs::default() })
    }

    const V4: &[Family] = &[Family::IPV4_UNICAST];
    const BOTH: &[Family] = &[Family::IPV4_UNICAST, Family::IPV6_UNICAST];

    fn announced(d: &Diff) -> Vec<IpNetwork> {
        let mut v: Vec<IpNetwork> = d.announced.iter().flat_map(|(_, n)| n.iter().map(|n| n.prefix)).collect();
        v.sort();
        v
    }

    /// The reference: what a full comparison would send.
    fn full(table: &RouteTable, sent: &AdjRibOut, families: &[Family]) -> (Vec<IpNetwork>, Vec<IpNetwork>) {
        let mut fresh = AdjRibOut { sent: sent.sent.clone(), synced: None, ..Default::default() };
        let d = fresh.diff(table, families, &ctx());
        let mut w = d.withdrawn.clone();
        w.sort();
        (announced(&d), w)
    }

    #[test]
    fn first_diff_sends_the_table_in_one_group_per_attribute_set() {
        let mut t = RouteTable::new();
        let (a, b) = (attrs(1), attrs(2));
        for i in 0..10 {
            t.insert(p(i), if i % 2 == 0 { a.clone() } else { b.clone() });
        }
        let mut out = AdjRibOut::new();
        let d = out.diff(&t, V4, &ctx());
        assert_eq!(d.announced.len(), 2);
        assert_eq!(announced(&d), (0..10).map(p).collect::<Vec<_>>());
        assert!(d.withdrawn.is_empty());
        assert_eq!(out.len(), 10);
        assert!(out.diff(&t, V4, &ctx()).is_empty(), "nothing changed");
    }

    #[test]
    fn incremental_diff_sends_only_changes() {
        let mut t = RouteTable::new();
        for i in 0..100 {
            t.insert(p(i), attrs(1));
        }
        let mut out = AdjRibOut::new();
        out.diff(&t, V4, &ctx());
        t.insert(p(5), attrs(2)); // re-attributed
        t.remove(&p(6)); // gone
        t.insert(p(200), attrs(1)); // new
        t.insert(p(7), attrs(3));
        t.insert(p(7), attrs(1)); // changed and changed back
        t.remove(&p(8));
        t.insert(p(8), attrs(1)); // removed and back
        let d = out.diff(&t, V4, &ctx());
        assert_eq!(announced(&d), [p(5), p(200)]);
        assert_eq!(d.withdrawn, [p(6)]);
        assert_eq!(out.len(), 100);
    }

    #[test]
    fn families_not_negotiated_are_not_sent_and_withdrawn_when_removed() {
        let mut t = RouteTable::new();
        t.insert("2001:db8:ffff::1/128".parse().unwrap(), attrs(1));
        t.insert(p(1), attrs(1));
        let mut out = AdjRibOut::new();
        let d = out.diff(&t, BOTH, &ctx());
        // An IPv4 session with no IPv6 next hop: the IPv6 route is held back, once reported.
        assert_eq!(d.no_next_hop, [Family::IPV6_UNICAST]);
        assert_eq!(announced(&d), [p(1)]);
        t.insert("2001:db8:ffff::2/128".parse().unwrap(), attrs(1));
        let d = out.diff(&t, BOTH, &ctx());
        assert!(d.no_next_hop.is_empty(), "reported once");
        assert!(d.is_empty());
    }

    #[test]
    fn forget_family_resends_it() {
        let mut t = RouteTable::new();
        t.insert(p(1), attrs(1));
        let mut out = AdjRibOut::new();
        out.diff(&t, V4, &ctx());
        out.forget_family(Family::IPV4_UNICAST);
        assert_eq!(announced(&out.diff(&t, V4, &ctx())), [p(1)]);
    }

    #[test]
    fn falls_back_to_a_full_comparison_when_the_log_is_trimmed() {
        let mut t = RouteTable::new();
        for i in 0..10 {
            t.insert(p(i), attrs(0));
        }
        let mut out = AdjRibOut::new();
        out.diff(&t, V4, &ctx());
        for round in 1..=5000u32 {
            t.insert(p(round % 10), attrs(round));
        }
        t.remove(&p(9));
        assert!(t.changed_since(0).is_none());
        let expect = full(&t, &out, V4);
        let d = out.diff(&t, V4, &ctx());
        assert_eq!((announced(&d), d.withdrawn.clone()), expect);
        assert_eq!(d.withdrawn, [p(9)]);
    }

    /// Random change sequences: the incremental diff always sends what a
    /// full comparison would, and leaves the same Adj-RIB-Out.
    #[test]
    fn incremental_equals_full_on_random_changes() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as u32
        };
        let sets: Vec<Arc<RouteAttrs>> = (0..4).map(attrs).collect();
        let mut t = RouteTable::new();
        let mut out = AdjRibOut::new();
        for _round in 0..300 {
            for _ in 0..rnd(20) {
                let i = rnd(64);
                match rnd(3) {
                    0 => t.remove(&p(i)),
                    _ => t.insert(p(i), sets[rnd(4) as usize].clone()),
                }
            }
            let expect = full(&t, &out, V4);
            let d = out.diff(&t, V4, &ctx());
            let mut w = d.withdrawn.clone();
            w.sort();
            assert_eq!((announced(&d), w), expect);
            let mut sent: Vec<IpNetwork> = out.sent.keys().copied().collect();
            sent.sort();
            let mut want: Vec<IpNetwork> = t.iter().map(|(p, _)| *p).collect();
            want.sort();
            assert_eq!(sent, want);
        }
    }
}
