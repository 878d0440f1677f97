//! Adj-RIB-Out: what one peer was sent, and the difference between that
//! and the route table, grouped by exported attribute set. Pure: no
//! sockets, no encoding.
//!
//! In a family with ADD-PATH send ([`ExportCtx::sends_all_paths`]) the
//! peer is sent every path of a prefix meant for it, each under its own
//! path id ([`path_ids`]), and what was sent is kept by (prefix, path id):
//! a path that goes is withdrawn by its id alone. In other families the
//! peer is sent the first path meant for it ([`ExportCtx::select`]) and
//! the paths held back are counted ([`AdjRibOut::paths_not_sent`]). A
//! prefix with no path meant for the peer counts as absent.

use std::collections::HashSet;
use std::sync::Arc;

use ipnetwork::IpNetwork;
use rustc_hash::FxHashMap;

use super::export::{path_ids, ExportCtx, Exported, RouteAttrs};
use super::table::{Paths, RouteTable};
use crate::wire::{Family, Nlri};

/// What a peer must be sent to match the table.
#[derive(Debug, Default)]
pub struct Diff {
    /// Prefixes (with the path id, under ADD-PATH send) to withdraw.
    pub withdrawn: Vec<Nlri>,
    /// Prefixes to announce, grouped by their exported attributes.
    pub announced: Vec<(Arc<Exported>, Vec<Nlri>)>,
    /// Families seen for the first time without a next hop on this
    /// session (their routes are not announced).
    pub no_next_hop: Vec<Family>,
    /// Families in which a prefix was seen for the first time with more
    /// paths for this peer than the one it is sent (no ADD-PATH send).
    pub paths_held_back: Vec<Family>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.withdrawn.is_empty() && self.announced.iter().all(|(_, n)| n.is_empty())
    }
}

/// The paths of one prefix sent under ADD-PATH, by path id.
type SentPaths = Box<[(u32, Arc<Exported>)]>;

/// The Adj-RIB-Out of one peer, or of an update group's peers.
#[derive(Debug, Default, Clone)]
pub struct AdjRibOut {
    /// Families without ADD-PATH send: the one path sent per prefix.
    sent: FxHashMap<IpNetwork, Arc<Exported>>,
    /// Families with ADD-PATH send: the paths sent per prefix.
    multi: FxHashMap<IpNetwork, SentPaths>,
    /// Prefixes in `sent` with more paths meant for the peer than the
    /// one sent: how many were held back.
    held_back: FxHashMap<IpNetwork, u32>,
    held_back_total: u64,
    /// The table version `sent` matches, when it matches one.
    synced: Option<u64>,
    warned_no_next_hop: HashSet<Family>,
    warned_held_back: HashSet<Family>,
}

/// A path set of the route table, for one family.
type CacheKey = (*const RouteAttrs, Family);

/// What a path set exports to for this peer, and its group.
#[derive(Debug, Clone)]
enum Hit {
    /// No path is meant for this peer.
    NotForPeer,
    /// No next hop of the family on this session.
    NoNextHop,
    /// One path: its export, its group, and how many other paths meant
    /// for the peer were held back.
    Export(Arc<Exported>, usize, u32),
    /// ADD-PATH send: each path's id, export and group.
    Multi(Arc<[(u32, Arc<Exported>, usize)]>, bool),
}

/// Exports each distinct attribute set once per family and collects the
/// prefixes to announce in one group per exported set. Most routes share
/// a few attribute sets, so the last one is remembered and the maps are
/// only consulted when it changes.
struct Grouper<'a> {
    x: &'a ExportCtx,
    cache: FxHashMap<CacheKey, Hit>,
    /// By content: equal exports of different path sets share a group.
    group_of: FxHashMap<Arc<Exported>, usize>,
    groups: Vec<(Arc<Exported>, Vec<Nlri>)>,
    last: Option<(CacheKey, Hit)>,
}

impl<'a> Grouper<'a> {
    fn new(x: &'a ExportCtx) -> Self {
        Grouper { x, cache: Default::default(), group_of: Default::default(), groups: vec![], last: None }
    }

    /// The shared copy of `e` and its group.
    fn group(&mut self, e: Exported) -> (Arc<Exported>, usize) {
        if let Some((e, g)) = self.group_of.get_key_value(&e) {
            return (e.clone(), *g);
        }
        let e = Arc::new(e);
        self.groups.push((e.clone(), vec![]));
        self.group_of.insert(e.clone(), self.groups.len() - 1);
        (e, self.groups.len() - 1)
    }

    fn export(&mut self, paths: &Paths, family: Family) -> Hit {
        let key = (paths.as_ptr(), family);
        if let Some((k, v)) = &self.last {
            if *k == key {
                return v.clone();
            }
        }
        let v = match self.cache.get(&key) {
            Some(v) => v.clone(),
            None => {
                let v = self.compute(paths, family);
                self.cache.insert(key, v.clone());
                v
            }
        };
        self.last = Some((key, v.clone()));
        v
    }

    fn compute(&mut self, paths: &Paths, family: Family) -> Hit {
        let x = self.x;
        if x.sends_all_paths(family) {
            let mine: Vec<&RouteAttrs> = x.select_all(paths).collect();
            if mine.is_empty() {
                return Hit::NotForPeer;
            }
            let exported: Vec<(Arc<Exported>, usize)> =
                mine.iter().filter_map(|a| x.export(a, family)).map(|e| self.group(e)).collect();
            let missing = exported.len() < mine.len();
            if exported.is_empty() {
                return Hit::NoNextHop;
            }
            let ids = path_ids(&exported.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>());
            let v: Vec<(u32, Arc<Exported>, usize)> =
                exported.into_iter().zip(ids).filter_map(|((e, g), id)| Some((id?, e, g))).collect();
            return Hit::Multi(v.into(), missing);
        }
        let mut mine = x.select_all(paths);
        let Some(first) = mine.next() else { return Hit::NotForPeer };
        let Some(e) = x.export(first, family) else { return Hit::NoNextHop };
        let (e, g) = self.group(e);
        Hit::Export(e, g, mine.count() as u32)
    }
}

impl AdjRibOut {
    pub fn new() -> Self {
        Self::default()
    }

    /// Prefixes sent and not withdrawn.
    pub fn len(&self) -> usize {
        self.sent.len() + self.multi.len()
    }

    /// Paths sent and not withdrawn (a prefix's paths each count).
    pub fn paths(&self) -> usize {
        self.sent.len() + self.multi.values().map(|v| v.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty() && self.multi.is_empty()
    }

    /// Paths meant for the peer and not sent because the session has no
    /// ADD-PATH send for their family (a prefix with three paths for the
    /// peer counts two).
    pub fn paths_not_sent(&self) -> u64 {
        self.held_back_total
    }

    /// Prefixes some of whose paths meant for the peer were not sent.
    pub fn prefixes_with_paths_not_sent(&self) -> usize {
        self.held_back.len()
    }

    /// The table version this matches, when it matches one.
    pub fn synced(&self) -> Option<u64> {
        self.synced
    }

    /// The families warned about so far: seen without a next hop, and
    /// with paths held back.
    pub fn warned(&self) -> (impl Iterator<Item = Family> + '_, impl Iterator<Item = Family> + '_) {
        (self.warned_no_next_hop.iter().copied(), self.warned_held_back.iter().copied())
    }

    /// Everything sent (of `family`, or of every family) as announcements
    /// grouped by exported attributes: what a peer new to it, or one
    /// asking for a family again, is sent.
    pub fn dump(&self, family: Option<Family>) -> Diff {
        let wanted = |p: &IpNetwork| family.is_none_or(|f| Family::of(p) == f);
        let mut by_ptr: FxHashMap<*const Exported, usize> = FxHashMap::default();
        let mut by_value: FxHashMap<Arc<Exported>, usize> = FxHashMap::default();
        let mut groups: Vec<(Arc<Exported>, Vec<Nlri>)> = vec![];
        let mut add = |e: &Arc<Exported>, n: Nlri| {
            let i = match by_ptr.get(&Arc::as_ptr(e)) {
                Some(&i) => i,
                None => {
                    let i = *by_value.entry(e.clone()).or_insert_with(|| {
                        groups.push((e.clone(), vec![]));
                        groups.len() - 1
                    });
                    by_ptr.insert(Arc::as_ptr(e), i);
                    i
                }
            };
            groups[i].1.push(n);
        };
        for (p, e) in self.sent.iter().filter(|(p, _)| wanted(p)) {
            add(e, Nlri::new(*p));
        }
        for (p, paths) in self.multi.iter().filter(|(p, _)| wanted(p)) {
            for (id, e) in paths.iter() {
                add(e, Nlri::with_path_id(*p, *id));
            }
        }
        Diff { announced: groups, ..Diff::default() }
    }

    /// The session went down: nothing was sent on the next one.
    pub fn clear(&mut self) {
        self.sent.clear();
        self.multi.clear();
        self.held_back.clear();
        self.held_back_total = 0;
        self.warned_held_back.clear();
        self.synced = None;
    }

    /// Forget what was sent of `family` (the peer asked for it again):
    /// the next diff announces all of it.
    pub fn forget_family(&mut self, family: Family) {
        self.sent.retain(|p, _| Family::of(p) != family);
        self.multi.retain(|p, _| Family::of(p) != family);
        self.set_held_back_where(|p| Family::of(p) == family);
        self.synced = None;
    }

    /// Drop the held-back counts of the prefixes `gone` says.
    fn set_held_back_where(&mut self, gone: impl Fn(&IpNetwork) -> bool) {
        let total = &mut self.held_back_total;
        self.held_back.retain(|p, n| {
            let keep = !gone(p);
            if !keep {
                *total -= *n as u64;
            }
            keep
        });
    }

    fn note_held_back(&mut self, prefix: &IpNetwork, n: u32) {
        let old = if n == 0 { self.held_back.remove(prefix) } else { self.held_back.insert(*prefix, n) };
        self.held_back_total = self.held_back_total + n as u64 - old.unwrap_or(0) as u64;
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
            match n.path_id {
                None => {
                    self.sent.remove(&n.prefix);
                }
                Some(id) => {
                    if let Some(v) = self.multi.get_mut(&n.prefix) {
                        let kept: SentPaths = v.iter().filter(|(i, _)| *i != id).cloned().collect();
                        if kept.is_empty() {
                            self.multi.remove(&n.prefix);
                        } else {
                            *v = kept;
                        }
                    }
                }
            }
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
                let fresh = self.is_empty();
                if fresh {
                    self.sent.reserve(table.len());
                }
                for (prefix, attrs) in table.iter() {
                    self.look_at(prefix, Some(attrs), families, &mut grouper, &mut diff, fresh);
                }
                if !fresh {
                    let gone = |p: &IpNetwork| !table.contains(p) || !families.contains(&Family::of(p));
                    let single: Vec<IpNetwork> = self.sent.keys().filter(|p| gone(p)).copied().collect();
                    for p in single {
                        self.sent.remove(&p);
                        diff.withdrawn.push(Nlri::new(p));
                    }
                    let multi: Vec<IpNetwork> = self.multi.keys().filter(|p| gone(p)).copied().collect();
                    for p in multi {
                        for (id, _) in self.multi.remove(&p).into_iter().flatten() {
                            diff.withdrawn.push(Nlri::with_path_id(p, id));
                        }
                    }
                    self.set_held_back_where(gone);
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
        attrs: Option<&Paths>,
        families: &[Family],
        grouper: &mut Grouper,
        diff: &mut Diff,
        fresh: bool,
    ) {
        let family = Family::of(prefix);
        let hit = match attrs {
            Some(a) if families.contains(&family) => grouper.export(a, family),
            _ => Hit::NotForPeer,
        };
        match hit {
            Hit::Multi(paths, missing) => {
                if missing && self.warned_no_next_hop.insert(family) {
                    diff.no_next_hop.push(family);
                }
                self.look_at_multi(prefix, &paths, grouper, diff, fresh)
            }
            Hit::Export(exported, g, held_back) => {
                if held_back > 0 && self.warned_held_back.insert(family) {
                    diff.paths_held_back.push(family);
                }
                if held_back > 0 || self.held_back.contains_key(prefix) {
                    self.note_held_back(prefix, held_back);
                }
                if !fresh
                    && self.sent.get(prefix).is_some_and(|sent| Arc::ptr_eq(sent, &exported) || **sent == *exported)
                {
                    return;
                }
                self.sent.insert(*prefix, exported);
                grouper.groups[g].1.push(Nlri::new(*prefix));
            }
            Hit::NotForPeer | Hit::NoNextHop => {
                if matches!(hit, Hit::NoNextHop) && self.warned_no_next_hop.insert(family) {
                    diff.no_next_hop.push(family);
                }
                if fresh {
                    return;
                }
                if self.held_back.contains_key(prefix) {
                    self.note_held_back(prefix, 0);
                }
                if self.sent.remove(prefix).is_some() {
                    diff.withdrawn.push(Nlri::new(*prefix));
                }
                for (id, _) in self.multi.remove(prefix).into_iter().flatten() {
                    diff.withdrawn.push(Nlri::with_path_id(*prefix, id));
                }
            }
        }
    }

    /// ADD-PATH send: withdraw the ids no longer wanted, announce the new
    /// or changed ones, leave the others alone.
    fn look_at_multi(
        &mut self,
        prefix: &IpNetwork,
        paths: &[(u32, Arc<Exported>, usize)],
        grouper: &mut Grouper,
        diff: &mut Diff,
        fresh: bool,
    ) {
        let old = if fresh { None } else { self.multi.get(prefix) };
        if let Some(old) = old {
            for (id, _) in old.iter() {
                if !paths.iter().any(|(i, _, _)| i == id) {
                    diff.withdrawn.push(Nlri::with_path_id(*prefix, *id));
                }
            }
        }
        for (id, e, g) in paths {
            let same =
                old.is_some_and(|old| old.iter().any(|(i, sent)| i == id && (Arc::ptr_eq(sent, e) || **sent == **e)));
            if !same {
                grouper.groups[*g].1.push(Nlri::with_path_id(*prefix, *id));
            }
        }
        let now: SentPaths = paths.iter().map(|(id, e, _)| (*id, e.clone())).collect();
        self.multi.insert(*prefix, now);
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn ctx() -> ExportCtx {
        ExportCtx::new(64513, false, "198.18.0.11:40000".parse().unwrap())
    }

    fn p(i: u32) -> IpNetwork {
        IpNetwork::new(std::net::Ipv4Addr::from(0xCB00_7100 + i).into(), 32).unwrap()
    }

    fn attrs(med: u32) -> Paths {
        Arc::from([RouteAttrs { med: Some(med), ..RouteAttrs::default() }])
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
        (announced(&d), withdrawn(&d))
    }

    fn withdrawn(d: &Diff) -> Vec<IpNetwork> {
        let mut w: Vec<IpNetwork> = d.withdrawn.iter().map(|n| n.prefix).collect();
        w.sort();
        w
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
        assert_eq!(withdrawn(&d), [p(6)]);
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
        assert_eq!((announced(&d), withdrawn(&d)), expect);
        assert_eq!(withdrawn(&d), [p(9)]);
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
        let sets: Vec<Paths> = (0..4).map(attrs).collect();
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
            assert_eq!((announced(&d), withdrawn(&d)), expect);
            let mut sent: Vec<IpNetwork> = out.sent.keys().copied().collect();
            sent.sort();
            let mut want: Vec<IpNetwork> = t.iter().map(|(p, _)| *p).collect();
            want.sort();
            assert_eq!(sent, want);
        }
    }

    /// A prefix's paths each name their peers: a peer is sent the first
    /// path meant for it, nothing (and no warning) when none is, and a
    /// withdrawal when its path goes while the others' stay.
    #[test]
    fn each_peer_is_sent_the_first_path_meant_for_it() {
        let (a, b, c): (IpAddr, IpAddr, IpAddr) =
            ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap(), "198.18.0.3".parse().unwrap());
        let peer = |ip| ExportCtx { peer: ip, ..ctx() };
        let path = |med, to: &[IpAddr]| RouteAttrs { med: Some(med), to: Some(to.into()), ..RouteAttrs::default() };
        let mut t = RouteTable::new();
        t.insert(p(1), Arc::from([path(1, &[a]), path(2, &[a, b])]));
        let (mut out_a, mut out_b, mut out_c) = (AdjRibOut::new(), AdjRibOut::new(), AdjRibOut::new());
        let med_of = |d: &Diff| {
            d.announced.iter().flat_map(|(e, _)| e.attrs.iter()).find_map(|x| match x.value {
                crate::wire::AttrValue::Med(m) => Some(m),
                _ => None,
            })
        };
        let d = out_a.diff(&t, V4, &peer(a));
        assert_eq!((announced(&d), med_of(&d)), (vec![p(1)], Some(1)), "a: the first path");
        let d = out_b.diff(&t, V4, &peer(b));
        assert_eq!((announced(&d), med_of(&d)), (vec![p(1)], Some(2)), "b: the second");
        let d = out_c.diff(&t, V4, &peer(c));
        assert!(d.is_empty() && d.no_next_hop.is_empty(), "c: nothing, and it is not a missing next hop");
        // b's path goes: b withdraws, a keeps its route untouched.
        t.insert(p(1), Arc::from([path(1, &[a])]));
        assert!(out_a.diff(&t, V4, &peer(a)).is_empty());
        assert_eq!(out_b.diff(&t, V4, &peer(b)).withdrawn, [Nlri::new(p(1))]);
        // A path for every peer reaches c too.
        t.insert(p(1), Arc::from([path(1, &[a]), RouteAttrs::default()]));
        assert_eq!(announced(&out_c.diff(&t, V4, &peer(c))), [p(1)]);
        assert!(out_a.diff(&t, V4, &peer(a)).is_empty(), "a's path is unchanged");
    }

    fn via(nh: &str) -> RouteAttrs {
        RouteAttrs { next_hop: Some(nh.parse().unwrap()), ..RouteAttrs::default() }
    }

    fn add_path_ctx() -> ExportCtx {
        ExportCtx { add_path: vec![Family::IPV4_UNICAST], ..ctx() }
    }

    /// (path id, next hop) of each path announced, sorted.
    fn announced_paths(d: &Diff) -> Vec<(IpNetwork, u32, IpAddr)> {
        let mut v: Vec<_> = d
            .announced
            .iter()
            .flat_map(|(e, n)| n.iter().map(|n| (n.prefix, n.path_id.unwrap(), e.next_hop().unwrap())))
            .collect();
        v.sort();
        v
    }

    fn id(nh: &str) -> u32 {
        u32::from(nh.parse::<std::net::Ipv4Addr>().unwrap())
    }

    #[test]
    fn add_path_sends_every_path_and_withdraws_one_by_its_id() {
        let (n1, n2, n3) = ("198.18.0.21", "198.18.0.22", "198.18.0.23");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut t = RouteTable::new();
        t.insert(p(1), Arc::from([via(n1), via(n2), via(n3)]));
        t.insert(p(2), Arc::from([via(n1), via(n2), via(n3)]));
        let mut out = AdjRibOut::new();
        let d = out.diff(&t, V4, &add_path_ctx());
        let want: Vec<_> =
            [p(1), p(2)].iter().flat_map(|&q| [n1, n2, n3].map(|n| (q, id(n), ip(n)))).collect::<Vec<_>>();
        let mut want = want;
        want.sort();
        assert_eq!(announced_paths(&d), want);
        assert_eq!(d.announced.len(), 3, "one group per next hop, both prefixes in each");
        assert_eq!((out.len(), out.paths(), out.paths_not_sent()), (2, 6, 0));

        // n2's path of p(1) goes: only (p(1), id(n2)) is withdrawn, nothing is re-announced.
        t.insert(p(1), Arc::from([via(n1), via(n3)]));
        let d = out.diff(&t, V4, &add_path_ctx());
        assert_eq!(d.withdrawn, [Nlri::with_path_id(p(1), id(n2))]);
        assert!(d.announced.is_empty(), "the other paths are untouched: {:?}", d.announced);
        assert_eq!(out.paths(), 5);

        // One path changes its attributes: that path alone is re-announced, under the same id.
        t.insert(p(1), Arc::from([via(n1), RouteAttrs { med: Some(7), ..via(n3) }]));
        let d = out.diff(&t, V4, &add_path_ctx());
        assert!(d.withdrawn.is_empty());
        assert_eq!(announced_paths(&d), [(p(1), id(n3), ip(n3))]);

        // The prefix goes: each of its paths is withdrawn by id.
        t.remove(&p(1));
        let d = out.diff(&t, V4, &add_path_ctx());
        let mut w = d.withdrawn.clone();
        w.sort();
        assert_eq!(w, [Nlri::with_path_id(p(1), id(n1)), Nlri::with_path_id(p(1), id(n3))]);
        assert!(d.announced.is_empty());

        // A full comparison (log trimmed) finds nothing to change and withdraws by id too.
        out.compare_all_next();
        assert!(out.diff(&t, V4, &add_path_ctx()).is_empty());
        t.remove(&p(2));
        out.compare_all_next();
        assert_eq!(out.diff(&t, V4, &add_path_ctx()).withdrawn.len(), 3);
        assert!(out.is_empty());
    }

    #[test]
    fn add_path_sends_only_the_paths_meant_for_the_peer() {
        let (a, b): (IpAddr, IpAddr) = ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
        let for_b = RouteAttrs { to: Some(Arc::from([b])), ..via("198.18.0.22") };
        let mut t = RouteTable::new();
        t.insert(p(1), Arc::from([via("198.18.0.21"), for_b, via("198.18.0.23")]));
        let mut out = AdjRibOut::new();
        let d = out.diff(&t, V4, &ExportCtx { peer: a, ..add_path_ctx() });
        let ids: Vec<u32> = announced_paths(&d).iter().map(|x| x.1).collect();
        assert_eq!(ids, [id("198.18.0.21"), id("198.18.0.23")]);
    }

    /// Without ADD-PATH send: the first path, and the others counted.
    #[test]
    fn without_add_path_the_first_path_goes_and_the_rest_are_counted() {
        let mut t = RouteTable::new();
        t.insert(p(1), Arc::from([via("198.18.0.21"), via("198.18.0.22"), via("198.18.0.23")]));
        t.insert(p(2), Arc::from([via("198.18.0.21")]));
        let mut out = AdjRibOut::new();
        let d = out.diff(&t, V4, &ctx());
        assert_eq!(d.paths_held_back, [Family::IPV4_UNICAST], "reported, once per family");
        let first = d.announced.iter().find(|(_, n)| n.contains(&Nlri::new(p(1)))).unwrap();
        assert_eq!(first.0.next_hop(), Some("198.18.0.21".parse().unwrap()), "the first path");
        assert!(d.announced.iter().all(|(_, n)| n.iter().all(|n| n.path_id.is_none())));
        assert_eq!((out.paths_not_sent(), out.prefixes_with_paths_not_sent()), (2, 1));
        // Another prefix with two paths: counted, not reported again.
        t.insert(p(3), Arc::from([via("198.18.0.21"), via("198.18.0.22")]));
        let d = out.diff(&t, V4, &ctx());
        assert!(d.paths_held_back.is_empty());
        assert_eq!((out.paths_not_sent(), out.prefixes_with_paths_not_sent()), (3, 2));
        // A path goes: the count follows, what was sent (the first path) stays.
        t.insert(p(1), Arc::from([via("198.18.0.21"), via("198.18.0.23")]));
        assert!(out.diff(&t, V4, &ctx()).is_empty());
        assert_eq!(out.paths_not_sent(), 2);
        t.remove(&p(3));
        t.insert(p(1), Arc::from([via("198.18.0.21")]));
        out.diff(&t, V4, &ctx());
        assert_eq!((out.paths_not_sent(), out.prefixes_with_paths_not_sent()), (0, 0));
        // A full comparison counts the same.
        t.insert(p(1), Arc::from([via("198.18.0.21"), via("198.18.0.22")]));
        out.compare_all_next();
        out.diff(&t, V4, &ctx());
        assert_eq!(out.paths_not_sent(), 1);
        out.clear();
        assert_eq!(out.paths_not_sent(), 0);
    }

    /// Random changes under ADD-PATH: the incremental diff leaves what a
    /// fresh Adj-RIB-Out would hold, path for path.
    #[test]
    fn add_path_incremental_equals_fresh_on_random_changes() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as u32
        };
        let hops: Vec<RouteAttrs> = (0..4).map(|i| via(&format!("198.18.0.{}", 21 + i))).collect();
        let x = add_path_ctx();
        let mut t = RouteTable::new();
        let mut out = AdjRibOut::new();
        let mut seen: FxHashMap<(IpNetwork, u32), IpAddr> = FxHashMap::default();
        for _round in 0..300 {
            for _ in 0..rnd(10) {
                let i = rnd(16);
                match rnd(3) {
                    0 => t.remove(&p(i)),
                    _ => {
                        let v: Vec<RouteAttrs> = hops.iter().filter(|_| rnd(2) == 0).cloned().collect();
                        if v.is_empty() {
                            t.remove(&p(i))
                        } else {
                            t.insert(p(i), v.into())
                        }
                    }
                }
            }
            let d = out.diff(&t, V4, &x);
            for n in &d.withdrawn {
                assert!(seen.remove(&(n.prefix, n.path_id.unwrap())).is_some(), "withdrew what was not sent: {n}");
            }
            for (e, ns) in &d.announced {
                for n in ns {
                    seen.insert((n.prefix, n.path_id.unwrap()), e.next_hop().unwrap());
                }
            }
            let mut fresh = AdjRibOut::new();
            let want = announced_paths(&fresh.diff(&t, V4, &x));
            let mut have: Vec<_> = seen.iter().map(|((p, i), nh)| (*p, *i, *nh)).collect();
            have.sort();
            assert_eq!(have, want);
        }
    }
}
