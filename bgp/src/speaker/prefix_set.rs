//! The prefixes a peer announced, without their attributes: how a peer we
//! do not import from is counted exactly (a re-announcement is not a new
//! prefix), for its prefix limit. And the packed key both this set and
//! the Adj-RIB-In use for the common route (IPv4 unicast, no path
//! identifier): one `u64`, so a set entry is 8 octets.

use std::net::Ipv4Addr;

use ipnetwork::{IpNetwork, Ipv4Network};
use rustc_hash::FxHashSet;

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

/// A set of prefixes.
#[derive(Debug, Default)]
pub(crate) struct PrefixSet {
    v4: FxHashSet<u64>,
    other: FxHashSet<Nlri>,
}

impl PrefixSet {
    /// Add `n`; true when it is new.
    pub fn insert(&mut self, n: &Nlri) -> bool {
        match packed(n) {
            Some(k) => self.v4.insert(k),
            None => self.other.insert(*n),
        }
    }

    /// Remove `n`; true when it was there.
    pub fn remove(&mut self, n: &Nlri) -> bool {
        match packed(n) {
            Some(k) => self.v4.remove(&k),
            None => self.other.remove(n),
        }
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
}
