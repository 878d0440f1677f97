//! The VIP allocator: pure, deterministic IP address management over
//! address pools.
//!
//! Rules, in order:
//! 1. Requests are processed in a fixed order — services that already
//!    hold addresses first (oldest first, then by namespace/name) — so the
//!    same inputs, in any order, give the same allocations.
//! 2. Sticky: an address a service already holds (from its status) stays
//!    with it while it is still valid: inside an enabled pool the service
//!    may use, of a family it wants, and not held by another service it
//!    may not share with. Otherwise the service gets an error event and a
//!    new address by the usual rules.
//! 3. A specific address (`spec.loadBalancerIP`, annotation
//!    `mooring.io/loadBalancerIPs`) must lie in a pool the service may use.
//! 4. Otherwise the lowest free address of the requested pool, or of the
//!    eligible auto-assign pools by descending priority then name.
//! 5. Two services may hold one address when both carry the same
//!    `mooring.io/allow-shared-ip` key and their ports do not clash.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use mooring_crds::parse::{from_u128, to_u128};
pub use mooring_crds::IpRange;

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn of(a: &IpAddr) -> IpFamily {
        if a.is_ipv6() {
            IpFamily::V6
        } else {
            IpFamily::V4
        }
    }
}

/// A pool as the allocator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub ranges: Vec<IpRange>,
    pub disabled: bool,
    pub priority: i32,
    pub auto_assign: bool,
}

impl Pool {
    pub fn contains(&self, a: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(a))
    }

    pub fn size(&self) -> u128 {
        self.ranges.iter().map(IpRange::size).fold(0u128, u128::saturating_add)
    }
}

/// A transport port a service exposes (for IP sharing).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub protocol: String,
    pub port: i32,
}

/// One service's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `namespace/name`.
    pub key: String,
    /// Creation time (RFC 3339 sorts correctly as text); empty if unknown.
    pub created: String,
    /// Families wanted, in order of preference; two for dual-stack.
    pub families: Vec<IpFamily>,
    /// Dual-stack is required (RequireDualStack) rather than preferred.
    pub require_all_families: bool,
    /// Pools the service may use (namespace rules applied), by name.
    pub allowed_pools: BTreeSet<String>,
    /// A pool asked for by annotation.
    pub pool: Option<String>,
    /// Specific addresses asked for.
    pub addresses: Vec<IpAddr>,
    /// Addresses the service already holds (its status).
    pub current: Vec<IpAddr>,
    pub sharing_key: Option<String>,
    pub ports: BTreeSet<PortKey>,
}

/// Why a request could not be (fully) satisfied. Each becomes an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocError {
    /// The pool named by annotation does not exist, is disabled, or is not allowed.
    PoolNotUsable { pool: String },
    /// The requested address is in no pool the service may use.
    AddressNotInPool { address: IpAddr },
    /// The requested or previously held address is held by a service it may not share with.
    AddressInUse { address: IpAddr, holder: String },
    /// The address held in status is no longer valid (pool gone, shrunk, disabled, not allowed).
    HeldAddressInvalid { address: IpAddr },
    /// No pool has a free address of the family.
    Exhausted { family: IpFamily },
    /// No pool at all can serve this service.
    NoPool,
}

impl AllocError {
    /// A short CamelCase reason for Events and conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            AllocError::PoolNotUsable { .. } => "PoolNotUsable",
            AllocError::AddressNotInPool { .. } => "AddressNotInPool",
            AllocError::AddressInUse { .. } => "AddressInUse",
            AllocError::HeldAddressInvalid { .. } => "AddressInvalid",
            AllocError::Exhausted { .. } => "PoolExhausted",
            AllocError::NoPool => "NoPool",
        }
    }
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::PoolNotUsable { pool } => {
                write!(f, "pool {pool:?} does not exist, is disabled, or may not be used from this namespace")
            }
            AllocError::AddressNotInPool { address } => {
                write!(f, "{address} is in no enabled pool this service may use")
            }
            AllocError::AddressInUse { address, holder } => {
                write!(f, "{address} is held by {holder}, and the two may not share it")
            }
            AllocError::HeldAddressInvalid { address } => {
                write!(f, "{address} is no longer in an enabled pool this service may use; it was released")
            }
            AllocError::Exhausted { family } => write!(f, "no free {family:?} address in any usable pool"),
            AllocError::NoPool => f.write_str("no enabled pool may be used by this service"),
        }
    }
}

/// The outcome for one service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocation {
    /// (address, pool) pairs, in the order of the requested families.
    pub addresses: Vec<(IpAddr, String)>,
    pub errors: Vec<AllocError>,
}

#[derive(Debug, Clone)]
struct Holder {
    key: String,
    sharing_key: Option<String>,
    ports: BTreeSet<PortKey>,
}

/// Whether `r` may share an address with every current holder.
fn can_share(holders: &[Holder], r: &Request) -> bool {
    holders.iter().all(|h| {
        h.key == r.key || (h.sharing_key.is_some() && h.sharing_key == r.sharing_key && h.ports.is_disjoint(&r.ports))
    })
}

/// Allocate addresses for every request. Pure and deterministic.
pub fn allocate(pools: &[Pool], requests: &[Request]) -> BTreeMap<String, Allocation> {
    let pools: BTreeMap<&str, &Pool> = pools.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut order: Vec<&Request> = requests.iter().collect();
    // Holders first, oldest first, then by key: who keeps a contested address is stable.
    order.sort_by(|a, b| {
        (a.current.is_empty(), a.created.is_empty(), &a.created, &a.key).cmp(&(
            b.current.is_empty(),
            b.created.is_empty(),
            &b.created,
            &b.key,
        ))
    });
    let mut held: BTreeMap<IpAddr, Vec<Holder>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for r in order {
        let a = allocate_one(&pools, r, &mut held);
        out.insert(r.key.clone(), a);
    }
    out
}

fn usable<'a>(pools: &BTreeMap<&str, &'a Pool>, r: &Request, name: &str) -> Option<&'a Pool> {
    pools.get(name).copied().filter(|p| !p.disabled && r.allowed_pools.contains(&p.name))
}

fn allocate_one(pools: &BTreeMap<&str, &Pool>, r: &Request, held: &mut BTreeMap<IpAddr, Vec<Holder>>) -> Allocation {
    let mut a = Allocation::default();
    let holder = Holder { key: r.key.clone(), sharing_key: r.sharing_key.clone(), ports: r.ports.clone() };
    let requested_pool = match &r.pool {
        Some(p) => match usable(pools, r, p) {
            Some(pool) => Some(pool),
            None => {
                a.errors.push(AllocError::PoolNotUsable { pool: p.clone() });
                return a;
            }
        },
        None => None,
    };
    // The pool an address may come from: the requested one, or any usable one.
    let pool_of = |addr: IpAddr| -> Option<&Pool> {
        match requested_pool {
            Some(p) => p.contains(addr).then_some(p),
            None => r.allowed_pools.iter().filter_map(|n| usable(pools, r, n)).find(|p| p.contains(addr)),
        }
    };
    let take = |addr: IpAddr, pool: &Pool, held: &mut BTreeMap<IpAddr, Vec<Holder>>, a: &mut Allocation| {
        held.entry(addr).or_default().push(holder.clone());
        a.addresses.push((addr, pool.name.clone()));
    };
    for &family in &r.families {
        // 1. Specific addresses asked for.
        let wanted: Vec<IpAddr> = r.addresses.iter().copied().filter(|x| IpFamily::of(x) == family).collect();
        if let Some(&addr) = wanted.first() {
            match pool_of(addr) {
                None => a.errors.push(AllocError::AddressNotInPool { address: addr }),
                Some(pool) => match held.get(&addr) {
                    Some(h) if !can_share(h, r) => {
                        a.errors.push(AllocError::AddressInUse { address: addr, holder: h[0].key.clone() })
                    }
                    _ => take(addr, pool, held, &mut a),
                },
            }
            continue;
        }
        // 2. Sticky: what the service holds already.
        if let Some(&addr) = r.current.iter().find(|x| IpFamily::of(x) == family) {
            match pool_of(addr) {
                None => a.errors.push(AllocError::HeldAddressInvalid { address: addr }),
                Some(pool) => match held.get(&addr) {
                    Some(h) if !can_share(h, r) => {
                        a.errors.push(AllocError::AddressInUse { address: addr, holder: h[0].key.clone() })
                    }
                    _ => {
                        take(addr, pool, held, &mut a);
                        continue;
                    }
                },
            }
        }
        // 3. A new address: the requested pool, or usable auto-assign pools by priority.
        let mut candidates: Vec<&Pool> = match requested_pool {
            Some(p) => vec![p],
            None => r.allowed_pools.iter().filter_map(|n| usable(pools, r, n)).filter(|p| p.auto_assign).collect(),
        };
        candidates.sort_by(|x, y| (-x.priority, &x.name).cmp(&(-y.priority, &y.name)));
        candidates.retain(|p| p.ranges.iter().any(|rg| (rg.is_ipv6()) == (family == IpFamily::V6)));
        if candidates.is_empty() {
            if !r.require_all_families && !a.addresses.is_empty() {
                continue; // PreferDualStack: one family is enough.
            }
            a.errors.push(AllocError::NoPool);
            continue;
        }
        match candidates.iter().find_map(|p| free_address(p, family, r, held).map(|x| (x, *p))) {
            Some((addr, pool)) => take(addr, pool, held, &mut a),
            None => a.errors.push(AllocError::Exhausted { family }),
        }
    }
    a
}

/// Size and number of addresses in use of a pool, after allocation.
pub fn usage(pool: &Pool, allocations: &BTreeMap<String, Allocation>) -> (u128, u128) {
    let used: BTreeSet<IpAddr> = allocations
        .values()
        .flat_map(|a| a.addresses.iter())
        .filter(|(addr, name)| *name == pool.name && pool.contains(*addr))
        .map(|(addr, _)| *addr)
        .collect();
    (pool.size(), used.len() as u128)
}

/// The lowest address of the pool that is free, or shareable with `r`.
fn free_address(pool: &Pool, family: IpFamily, r: &Request, held: &BTreeMap<IpAddr, Vec<Holder>>) -> Option<IpAddr> {
    let v6 = family == IpFamily::V6;
    let mut ranges: Vec<&IpRange> = pool.ranges.iter().filter(|rg| rg.is_ipv6() == v6).collect();
    ranges.sort();
    // A service with a sharing key joins an address already shared under that key.
    if r.sharing_key.is_some() {
        for (addr, h) in held.range(..) {
            if IpFamily::of(addr) == family && pool.contains(*addr) && can_share(h, r) {
                return Some(*addr);
            }
        }
    }
    for rg in ranges {
        let (mut x, end) = (to_u128(rg.start), to_u128(rg.end));
        // Skip held addresses in order; BTreeMap range keeps this linear in the held count.
        let mut holds = held.range(rg.start..=rg.end).map(|(a, _)| to_u128(*a)).peekable();
        while x <= end {
            match holds.peek() {
                Some(&h) if h == x => {
                    holds.next();
                    if x == u128::MAX {
                        break;
                    }
                    x += 1;
                }
                Some(&h) if h < x => {
                    holds.next();
                }
                _ => return Some(from_u128(x, rg.start)),
            }
        }
    }
    None
}

#[cfg(test)]
#[path = "ipam_tests.rs"]
mod tests;
