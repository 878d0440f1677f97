//! The prefixes a peer announced, without their attributes: how a peer we
//! do not import from is counted exactly (a re-announcement is not a new
//! prefix, nor is another ADD-PATH path of a prefix), for its prefix
//! limit. And the packed key both this set and the Adj-RIB-In use for the
//! common route (IPv4 unicast, no path identifier): one `u64`, so a set
//! entry is 8 octets; and [`PathCounts`], how both count a prefix with
//! several paths once.

use std::net::Ipv4Addr;

use ipnetwork::{IpNetwork, Ipv4Network};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::wire::Nlri;

/// An IPv4 prefix as a key: the length above the address, so that
/// neighbouring addresses differ in the low bits.
fn v4_key(p: &Ipv4Network) -> u64 {
    (p.prefix() as u64) << 32 | u32::from(p.ip()) as u64
}

/// The prefix of a key from [`packed`].
pub(crate) fn v4_prefix(key: u64) -> Nlri {
    let net = Ipv4Network::new(Ipv4Addr::from(key as u32), (key >> 32) as u8).expect("valid length in key");
    Nlri::new(IpNetwork::V4(net))
}

/// The packed key of `n`, when it has one.
pub(crate) fn packed(n: &Nlri) -> Option<u64> {
    match (&n.prefix, n.path_id) {
        (IpNetwork::V4(p), None) => Some(v4_key(p)),
        _ => None,
    }
}

/// How many paths (entries with a path id, RFC 7911) each prefix has,
/// so that a prefix counts once however many paths it has.
#[derive(Debug, Default)]
pub(crate) struct PathCounts(FxHashMap<IpNetwork, u32>);

impl PathCounts {
    /// A new entry `n` was stored: true when it is its prefix's first
    /// (always, without a path id).
    pub fn added(&mut self, n: &Nlri) -> bool {
        if n.path_id.is_none() {
            return true;
        }
        let c = self.0.entry(n.prefix).or_insert(0);
        *c += 1;
        *c == 1
    }

    /// The entry `n` was removed: true when its prefix has none left.
    pub fn removed(&mut self, n: &Nlri) -> bool {
        if n.path_id.is_none() {
            return true;
        }
        match self.0.get_mut(&n.prefix) {
            Some(c) if *c > 1 => {
                *c -= 1;
                false
            }
            _ => {
                self.0.remove(&n.prefix);
                true
            }
        }
    }

    /// Prefixes with path ids of `family`.
    pub fn count(&self, family: crate::wire::Family) -> usize {
        self.0.keys().filter(|p| crate::wire::Family::of(p) == family).count()
    }
}

/// A set of prefixes (each ADD-PATH path an entry of its own).
#[derive(Debug, Default)]
pub(crate) struct PrefixSet {
    v4: FxHashSet<u64>,
    other: FxHashSet<Nlri>,
    paths: PathCounts,
}

impl PrefixSet {
    /// Add `n`; true when its prefix is new (a re-announcement, or
    /// another path of a prefix held, is not).
    pub fn insert(&mut self, n: &Nlri) -> bool {
        let new = match packed(n) {
            Some(k) => self.v4.insert(k),
            None => self.other.insert(*n),
        };
        new && self.paths.added(n)
    }

    /// Remove `n`; true when it was there and was its prefix's last path.
    pub fn remove(&mut self, n: &Nlri) -> bool {
        let was = match packed(n) {
            Some(k) => self.v4.remove(&k),
            None => self.other.remove(n),
        };
        was && self.paths.removed(n)
    }

    pub fn clear(&mut self) {
        *self = PrefixSet::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Nlri {
        Nlri::new(s.parse().unwrap())
    }

    #[test]
    fn counts_each_prefix_once() {
        let mut s = PrefixSet::default();
        let with_path_id = Nlri { path_id: Some(7), prefix: "10.0.0.1/32".parse().unwrap() };
        for p in [n("10.0.0.1/32"), n("10.0.0.0/8"), n("2001:db8::/64"), with_path_id] {
            assert!(s.insert(&p), "{p:?}");
            assert!(!s.insert(&p), "{p:?} counted twice");
        }
        assert!(!s.remove(&n("10.0.0.1/31")), "another length is another prefix");
        assert!(s.remove(&n("10.0.0.1/32")));
        assert!(!s.remove(&n("10.0.0.1/32")));
        assert!(s.remove(&with_path_id) && s.remove(&n("2001:db8::/64")));
        assert_eq!(v4_prefix(packed(&n("10.0.0.0/8")).unwrap()), n("10.0.0.0/8"));
        assert_eq!(packed(&n("2001:db8::/64")), None);
    }

    #[test]
    fn a_prefix_with_several_paths_counts_once() {
        let mut s = PrefixSet::default();
        let path = |id| Nlri::with_path_id("203.0.113.1/32".parse().unwrap(), id);
        assert!(s.insert(&path(1)));
        assert!(!s.insert(&path(2)), "another path of a prefix held");
        assert!(!s.insert(&path(2)), "a re-announcement");
        assert!(!s.remove(&path(1)), "one path left");
        assert!(!s.remove(&path(1)), "not there");
        assert!(s.remove(&path(2)), "the last path");
        assert!(s.insert(&path(3)), "new again");
    }
}
