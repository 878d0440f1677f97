//! The Adj-RIB-In of a peer we import from: every prefix it announced and
//! the attribute set it came with.
//!
//! Built for full tables: an IPv4 unicast prefix without a path identifier
//! (nearly every route) is one 16-octet hash table entry, its key the
//! address and length packed into a `u64` and its value a 4-octet handle
//! to the attribute set. Attribute sets are stored once each (routers send
//! many UPDATEs with the same attributes) and counted, so a set goes away
//! with the last route that uses it. IPv6 and ADD-PATH routes live in a
//! second, general table. A set is found by the address of its shared
//! [`Attrs`] first (the session's decoder hands out one allocation per
//! distinct attribute octets), by its contents only when that fails.

use rustc_hash::FxHashMap;

use super::prefix_set::{packed, v4_prefix, PathCounts};
use crate::wire::{Attrs, Family, Nlri};

/// A handle to an attribute set of an [`AdjRibIn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttrId(u32);

#[derive(Default)]
pub(crate) struct AdjRibIn {
    /// IPv4 unicast prefixes without a path identifier, by their
    /// [`packed`] key.
    v4: FxHashMap<u64, AttrId>,
    /// Every other prefix.
    other: FxHashMap<Nlri, AttrId>,
    /// ADD-PATH: a prefix with several paths is one prefix.
    paths: PathCounts,
    sets: AttrSets,
}

impl AdjRibIn {
    /// The handle of this attribute set, storing it when it is new. The
    /// set is released again when no route takes it ([`AdjRibIn::insert`]
    /// with it, or [`AdjRibIn::release_if_unused`]).
    pub fn intern(&mut self, attrs: Attrs) -> AttrId {
        self.sets.intern(attrs)
    }

    /// Record that `n` was announced with `attrs`; true when its prefix
    /// is new (not when `n` is another path of a prefix held).
    pub fn insert(&mut self, n: &Nlri, attrs: AttrId) -> bool {
        let old = match packed(n) {
            Some(k) => self.v4.insert(k, attrs),
            None => self.other.insert(*n, attrs),
        };
        self.sets.retain(attrs);
        if let Some(old) = old {
            self.sets.release(old);
        }
        old.is_none() && self.paths.added(n)
    }

    /// Forget `n`; true when it was there and its prefix has no path left.
    pub fn remove(&mut self, n: &Nlri) -> bool {
        let old = match packed(n) {
            Some(k) => self.v4.remove(&k),
            None => self.other.remove(n),
        };
        if let Some(old) = old {
            self.sets.release(old);
        }
        old.is_some() && self.paths.removed(n)
    }

    /// Drop a set from [`AdjRibIn::intern`] that no route took.
    pub fn release_if_unused(&mut self, id: AttrId) {
        self.sets.drop_if_unused(id);
    }

    pub fn clear(&mut self) {
        *self = AdjRibIn::default();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    /// Every prefix held.
    pub fn prefixes(&self) -> impl Iterator<Item = Nlri> + '_ {
        self.v4.keys().map(|&k| v4_prefix(k)).chain(self.other.keys().copied())
    }

    /// How many distinct prefixes of `family` are held (a prefix with
    /// several ADD-PATH paths counts once).
    pub fn count(&self, family: Family) -> u64 {
        let v4 = if family == Family::IPV4_UNICAST { self.v4.len() } else { 0 };
        let plain = self.other.keys().filter(|n| n.path_id.is_none() && n.family() == family).count();
        (v4 + plain + self.paths.count(family)) as u64
    }

    #[cfg(test)]
    /// The attributes `n` was announced with.
    pub fn get(&self, n: &Nlri) -> Option<&Attrs> {
        let id = match packed(n) {
            Some(k) => self.v4.get(&k),
            None => self.other.get(n),
        }?;
        self.sets.get(*id)
    }

    #[cfg(test)]
    /// Distinct attribute sets held.
    pub fn attr_sets(&self) -> usize {
        self.sets.index.len()
    }
}

/// Attribute sets, each stored once, with the number of routes using it.
#[derive(Default)]
struct AttrSets {
    slots: Vec<Slot>,
    /// Empty slots.
    free: Vec<u32>,
    /// By contents.
    index: FxHashMap<Attrs, u32>,
    /// By [`Attrs::addr`] of the copy in the slot (which keeps that
    /// address from being reused while the entry exists).
    by_addr: FxHashMap<usize, u32>,
}

struct Slot {
    attrs: Option<Attrs>,
    routes: u32,
}

impl AttrSets {
    fn intern(&mut self, attrs: Attrs) -> AttrId {
        if let Some(&i) = self.by_addr.get(&attrs.addr()) {
            return AttrId(i);
        }
        if let Some(&i) = self.index.get(&attrs) {
            return AttrId(i);
        }
        let slot = Slot { attrs: Some(attrs.clone()), routes: 0 };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.by_addr.insert(attrs.addr(), i);
        self.index.insert(attrs, i);
        AttrId(i)
    }

    #[cfg(test)]
    fn get(&self, id: AttrId) -> Option<&Attrs> {
        self.slots.get(id.0 as usize)?.attrs.as_ref()
    }

    fn retain(&mut self, id: AttrId) {
        self.slots[id.0 as usize].routes += 1;
    }

    fn release(&mut self, id: AttrId) {
        let s = &mut self.slots[id.0 as usize];
        s.routes -= 1;
        self.drop_if_unused(id);
    }

    fn drop_if_unused(&mut self, id: AttrId) {
        let s = &mut self.slots[id.0 as usize];
        if s.routes == 0 {
            if let Some(a) = s.attrs.take() {
                self.by_addr.remove(&a.addr());
                self.index.remove(&a);
                self.free.push(id.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AttrValue, Origin, PathAttr};

    fn n(s: &str) -> Nlri {
        Nlri::new(s.parse().unwrap())
    }

    fn attrs(med: u32) -> Attrs {
        vec![PathAttr::new(AttrValue::Origin(Origin::Igp)), PathAttr::new(AttrValue::Med(med))].into()
    }

    #[test]
    fn keeps_each_prefix_with_its_attributes() {
        let mut rib = AdjRibIn::default();
        let a = rib.intern(attrs(1));
        let b = rib.intern(attrs(2));
        let with_path_id = Nlri { path_id: Some(7), prefix: "10.0.0.1/32".parse().unwrap() };
        for p in [n("10.0.0.1/32"), n("10.0.0.0/8"), n("2001:db8::/64"), with_path_id] {
            assert!(rib.insert(&p, a));
            assert!(!rib.insert(&p, a), "{p:?} counted twice");
        }
        assert!(!rib.insert(&n("10.0.0.0/8"), b));
        assert_eq!(rib.len(), 4);
        assert_eq!(rib.count(Family::IPV4_UNICAST), 3);
        assert_eq!(rib.count(Family::IPV6_UNICAST), 1);
        assert_eq!(rib.get(&n("10.0.0.1/32")), Some(&attrs(1)));
        assert_eq!(rib.get(&n("10.0.0.0/8")), Some(&attrs(2)));
        assert_eq!(rib.get(&with_path_id), Some(&attrs(1)));
        // /8 and /32 of the same address, and the path identifier, are distinct keys.
        assert_eq!(rib.get(&n("10.0.0.1/31")), None);
        let mut all: Vec<Nlri> = rib.prefixes().collect();
        all.sort();
        let mut want = vec![n("10.0.0.1/32"), n("10.0.0.0/8"), n("2001:db8::/64"), with_path_id];
        want.sort();
        assert_eq!(all, want);
    }

    #[test]
    fn paths_of_one_prefix_are_kept_apart_and_counted_once() {
        let mut rib = AdjRibIn::default();
        let (a, b) = (rib.intern(attrs(1)), rib.intern(attrs(2)));
        let path = |s: &str, id| Nlri::with_path_id(s.parse().unwrap(), id);
        assert!(rib.insert(&path("203.0.113.1/32", 1), a));
        assert!(!rib.insert(&path("203.0.113.1/32", 2), b), "a second path is no new prefix");
        assert!(rib.insert(&path("2001:db8:ffff::1/128", 1), a));
        assert_eq!(rib.len(), 3);
        assert_eq!((rib.count(Family::IPV4_UNICAST), rib.count(Family::IPV6_UNICAST)), (1, 1));
        assert_eq!(rib.get(&path("203.0.113.1/32", 1)), Some(&attrs(1)));
        assert_eq!(rib.get(&path("203.0.113.1/32", 2)), Some(&attrs(2)));
        // Withdrawing one path leaves the other and the prefix.
        assert!(!rib.remove(&path("203.0.113.1/32", 1)));
        assert_eq!(rib.get(&path("203.0.113.1/32", 2)), Some(&attrs(2)));
        assert_eq!(rib.count(Family::IPV4_UNICAST), 1);
        assert!(!rib.remove(&path("203.0.113.1/32", 1)), "gone already");
        assert!(rib.remove(&path("203.0.113.1/32", 2)), "the last path takes the prefix");
        assert_eq!(rib.count(Family::IPV4_UNICAST), 0);
    }

    #[test]
    fn a_set_lives_as_long_as_a_route_uses_it() {
        let mut rib = AdjRibIn::default();
        let a = rib.intern(attrs(1));
        assert_eq!(rib.intern(attrs(1)), a, "one copy per distinct set");
        rib.insert(&n("10.0.0.1/32"), a);
        rib.insert(&n("10.0.0.2/32"), a);
        let b = rib.intern(attrs(2));
        assert_eq!(rib.attr_sets(), 2);
        // Re-announcing with other attributes moves the route to the other set.
        rib.insert(&n("10.0.0.1/32"), b);
        assert!(rib.remove(&n("10.0.0.2/32")));
        assert!(!rib.remove(&n("10.0.0.2/32")));
        assert_eq!(rib.attr_sets(), 1, "set 1 has no route left");
        assert!(rib.remove(&n("10.0.0.1/32")));
        assert_eq!(rib.attr_sets(), 0);
        // A set no route took is dropped on request; its slot is reused.
        let c = rib.intern(attrs(3));
        rib.release_if_unused(c);
        assert_eq!(rib.attr_sets(), 0);
        let d = rib.intern(attrs(4));
        assert!(d == a || d == b || d == c, "a free slot is reused");
        assert!(rib.insert(&n("10.0.0.3/32"), d));
        rib.release_if_unused(d);
        assert_eq!(rib.get(&n("10.0.0.3/32")), Some(&attrs(4)));
    }

    #[test]
    fn equal_sets_are_one_set_whether_shared_or_not() {
        let mut rib = AdjRibIn::default();
        let shared = attrs(1);
        let a = rib.intern(shared.clone());
        assert_eq!(rib.intern(shared.clone()), a, "the same allocation");
        let copy = attrs(1);
        assert!(!Attrs::same(&copy, &shared));
        assert_eq!(rib.intern(copy), a, "an equal list in another allocation");
        rib.insert(&n("10.0.0.1/32"), a);
        assert!(rib.remove(&n("10.0.0.1/32")));
        assert_eq!(rib.attr_sets(), 0);
        assert!(rib.sets.by_addr.is_empty(), "the address entry goes with the set");
    }

    #[test]
    fn churn_does_not_grow_the_sets() {
        let mut rib = AdjRibIn::default();
        for round in 0..1000u32 {
            let id = rib.intern(attrs(round));
            rib.insert(&n("10.0.0.1/32"), id);
        }
        assert_eq!(rib.attr_sets(), 1);
        assert!(rib.sets.slots.len() <= 2, "slots: {}", rib.sets.slots.len());
    }
}
