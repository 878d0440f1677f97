//! The VIP allocator: pure, deterministic IP address management over
//! address pools. It knows pools and requests, not Kubernetes objects
//! (`desired.rs` turns Services into requests).
//!
//! Three passes over the requests, each oldest first (creation time, then
//! `namespace/name`), so the same inputs in any order give the same answer:
//! 1. **Holders keep their addresses** (sticky): an address a Service holds
//!    (its status, or the state directory) stays with it while it is still
//!    valid — inside an enabled pool the Service may use, of a family it
//!    wants, and not held by an older Service it may not share with — and
//!    while the Service does not ask for another one. An invalid one is
//!    reported and replaced in pass 3.
//! 2. **Explicit requests** (`spec.loadBalancerIP`, the IP annotations): the
//!    address must lie in a pool the Service may use and not be a reserved
//!    address of it; a refusal is final (no other address is given instead).
//! 3. **Automatic assignment**: the lowest free address of the requested
//!    pool, or of the eligible auto-assign pools by descending priority then
//!    name. It never takes a pool's reserved addresses (a CIDR's network
//!    and broadcast addresses unless the pool allows them), nor an address
//!    that another Service explicitly asks for and nobody holds yet.
//!
//! Sharing, as MetalLB defines it: two Services may hold one address when
//! both carry the same sharing key, no (protocol, port) is used by both,
//! and both are `externalTrafficPolicy: Cluster` or both `Local` with
//! identical selectors (so the nodes that announce the address have pods
//! of both); across namespaces only when the address's pool allows it. A
//! refusal names the other Service and the rule that failed ([`Refusal`]).

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
    /// Addresses of the ranges that are never handed out, automatically or
    /// on request (a CIDR's network and broadcast addresses); a Service that
    /// already holds one keeps it.
    pub reserved: BTreeSet<IpAddr>,
    pub disabled: bool,
    pub priority: i32,
    pub auto_assign: bool,
    /// Services of different namespaces may share an address of this pool.
    pub share_across_namespaces: bool,
}

impl Pool {
    /// An enabled auto-assign pool of priority 0 with nothing reserved.
    pub fn new(name: impl Into<String>, ranges: Vec<IpRange>) -> Pool {
        Pool {
            name: name.into(),
            ranges,
            reserved: BTreeSet::new(),
            disabled: false,
            priority: 0,
            auto_assign: true,
            share_across_namespaces: false,
        }
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(a))
    }

    /// Addresses that can be handed out: the ranges less the reserved ones.
    pub fn size(&self) -> u128 {
        let total = self.ranges.iter().map(IpRange::size).fold(0u128, u128::saturating_add);
        total.saturating_sub(self.reserved.len() as u128)
    }
}

/// A transport port a service exposes (for IP sharing).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub protocol: String,
    pub port: i32,
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.protocol, self.port)
    }
}

/// Which nodes carry a Service's traffic, as far as sharing is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// `externalTrafficPolicy: Cluster`: every node forwards it.
    #[default]
    Cluster,
    /// `externalTrafficPolicy: Local`, with the Service's pod selector.
    Local(BTreeMap<String, String>),
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
    /// Specific addresses asked for (at most one per family is used).
    pub addresses: Vec<IpAddr>,
    /// Addresses the service already holds (its status).
    pub current: Vec<IpAddr>,
    pub sharing_key: Option<String>,
    pub ports: BTreeSet<PortKey>,
    pub backend: Backend,
}

impl Request {
    /// The namespace part of the key.
    pub fn namespace(&self) -> &str {
        self.key.split_once('/').map_or("", |(ns, _)| ns)
    }

    fn wanted(&self, family: IpFamily) -> Option<IpAddr> {
        self.addresses.iter().copied().find(|a| IpFamily::of(a) == family)
    }

    fn held(&self, family: IpFamily) -> Option<IpAddr> {
        self.current.iter().copied().find(|a| IpFamily::of(a) == family)
    }
}

/// Why two Services may not share an address: the first sharing rule that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// This Service (`namespace/name`) has no sharing key.
    NoKey { service: String },
    /// Both have sharing keys, and they differ.
    DifferentKeys { ours: String, theirs: String },
    /// Different namespaces, and the pool does not allow sharing across them.
    Namespaces { pool: String },
    /// One is `externalTrafficPolicy: Cluster`, the other `Local`.
    TrafficPolicy,
    /// Both are `Local`, with different selectors.
    Selectors,
    /// Both use this port.
    Port(PortKey),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoKey { service } => write!(f, "{service} has no allow-shared-ip key"),
            Refusal::DifferentKeys { ours, theirs } => {
                write!(f, "their allow-shared-ip keys differ ({ours:?} and {theirs:?})")
            }
            Refusal::Namespaces { pool } => write!(
                f,
                "they are in different namespaces, and Eip {pool} does not set spec.allowSharingAcrossNamespaces"
            ),
            Refusal::TrafficPolicy => f.write_str("one has externalTrafficPolicy Cluster, the other Local"),
            Refusal::Selectors => f.write_str(
                "both have externalTrafficPolicy Local but different selectors (their pods may be on different nodes)",
            ),
            Refusal::Port(p) => write!(f, "both use port {p}"),
        }
    }
}

/// Why a request could not be (fully) satisfied. Each becomes an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocError {
    /// The pool named by annotation does not exist, is disabled, or is not allowed.
    PoolNotUsable { pool: String },
    /// The requested address is in no pool the service may use.
    AddressNotInPool { address: IpAddr },
    /// The requested address is a reserved address of its pool.
    AddressReserved { address: IpAddr, pool: String },
    /// The requested or previously held address is held by a service it may not share with.
    AddressInUse { address: IpAddr, holder: String, why: Refusal },
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
            AllocError::AddressReserved { .. } => "AddressReserved",
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
            AllocError::AddressReserved { address, pool } => write!(
                f,
                "{address} is the network or broadcast address of a CIDR of Eip {pool}, which hands it out only with spec.allowFirstLastIPs: true"
            ),
            AllocError::AddressInUse { address, holder, why } => {
                write!(f, "{address} is held by {holder}, and the two may not share it: {why}")
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
    /// Families the Service needs and got no address of (a preferred second
    /// family of PreferDualStack is not needed once the first has one).
    pub missing: Vec<IpFamily>,
}

impl Allocation {
    /// The Service has every address it needs.
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Holder {
    key: String,
    namespace: String,
    sharing_key: Option<String>,
    ports: BTreeSet<PortKey>,
    backend: Backend,
    /// The pool it holds the address from allows sharing across namespaces.
    across: bool,
}

impl Holder {
    fn of(r: &Request, pool: &Pool) -> Holder {
        Holder {
            key: r.key.clone(),
            namespace: r.namespace().to_string(),
            sharing_key: r.sharing_key.clone(),
            ports: r.ports.clone(),
            backend: r.backend.clone(),
            across: pool.share_across_namespaces,
        }
    }
}

/// Whether the Service `r` may share an address of `pool` with `h`, by MetalLB's rules.
fn may_share(h: &Holder, r: &Request, pool: &Pool) -> Result<(), Refusal> {
    if h.key == r.key {
        return Ok(());
    }
    let (theirs, ours) = match (&h.sharing_key, &r.sharing_key) {
        (None, _) => return Err(Refusal::NoKey { service: h.key.clone() }),
        (_, None) => return Err(Refusal::NoKey { service: r.key.clone() }),
        (Some(t), Some(o)) => (t, o),
    };
    if theirs != ours {
        return Err(Refusal::DifferentKeys { ours: ours.clone(), theirs: theirs.clone() });
    }
    // Overlapping pools can give one address from two pools: both must allow it.
    if h.namespace != r.namespace() && !(pool.share_across_namespaces && h.across) {
        return Err(Refusal::Namespaces { pool: pool.name.clone() });
    }
    match (&h.backend, &r.backend) {
        (Backend::Cluster, Backend::Cluster) => {}
        (Backend::Local(a), Backend::Local(b)) if a == b => {}
        (Backend::Local(_), Backend::Local(_)) => return Err(Refusal::Selectors),
        _ => return Err(Refusal::TrafficPolicy),
    }
    match h.ports.intersection(&r.ports).next() {
        Some(p) => Err(Refusal::Port(p.clone())),
        None => Ok(()),
    }
}

/// The first holder `r` may not share with, and why.
fn refusal(holders: &[Holder], r: &Request, pool: &Pool) -> Option<(String, Refusal)> {
    holders.iter().find_map(|h| may_share(h, r, pool).err().map(|why| (h.key.clone(), why)))
}

/// One request being worked on.
struct Work<'a> {
    r: &'a Request,
    /// The requested pool, when the annotation names a usable one.
    pool: Option<&'a Pool>,
    taken: BTreeMap<IpFamily, (IpAddr, String)>,
    /// Families decided (an address taken, or a final refusal).
    settled: BTreeSet<IpFamily>,
    errors: Vec<AllocError>,
}

/// Everything the passes share.
struct Allocator<'a> {
    pools: BTreeMap<&'a str, &'a Pool>,
    held: BTreeMap<IpAddr, Vec<Holder>>,
    /// Addresses asked for explicitly, and by whom: automatic assignment leaves them.
    wanted: BTreeMap<IpAddr, BTreeSet<&'a str>>,
    /// Per (pool, range start): every address of the range below this one is held or
    /// reserved, so no request can have it (`held` only grows within one allocation).
    /// Automatic assignment of n Services then scans each range once, not n times.
    cursor: std::cell::RefCell<std::collections::HashMap<(&'a str, u128), u128>>,
}

impl<'a> Allocator<'a> {
    fn usable(&self, r: &Request, name: &str) -> Option<&'a Pool> {
        self.pools.get(name).copied().filter(|p| !p.disabled && r.allowed_pools.contains(&p.name))
    }

    /// The pool an address may come from: the requested one, or any usable one.
    fn pool_of(&self, w: &Work<'a>, addr: IpAddr) -> Option<&'a Pool> {
        match w.pool {
            Some(p) => p.contains(addr).then_some(p),
            None => w.r.allowed_pools.iter().filter_map(|n| self.usable(w.r, n)).find(|p| p.contains(addr)),
        }
    }

    /// The pool a held address stays in: as [`Self::pool_of`], but a
    /// disabled pool keeps what it gave out (`disable` only stops new
    /// allocations, as the Eip's documentation says and OpenELB does).
    fn holding_pool(&self, w: &Work<'a>, addr: IpAddr) -> Option<&'a Pool> {
        self.pool_of(w, addr).or_else(|| {
            let allowed = |p: &&&'a Pool| w.r.allowed_pools.contains(&p.name) && p.contains(addr);
            match &w.r.pool {
                Some(name) => self.pools.get(name.as_str()).filter(allowed).copied(),
                None => self.pools.values().filter(allowed).copied().next(),
            }
        })
    }

    fn take(&mut self, w: &mut Work<'a>, family: IpFamily, addr: IpAddr, pool: &Pool) {
        self.held.entry(addr).or_default().push(Holder::of(w.r, pool));
        w.taken.insert(family, (addr, pool.name.clone()));
        w.settled.insert(family);
    }

    /// `addr` from `pool` for `w`, unless someone holds it that `w` may not share with.
    fn claim(&mut self, w: &mut Work<'a>, family: IpFamily, addr: IpAddr, pool: &Pool) -> Result<(), AllocError> {
        if let Some((holder, why)) = self.held.get(&addr).and_then(|h| refusal(h, w.r, pool)) {
            return Err(AllocError::AddressInUse { address: addr, holder, why });
        }
        self.take(w, family, addr, pool);
        Ok(())
    }

    /// Pass 1: keep what is held, where the Service does not ask for something else.
    fn keep_held(&mut self, w: &mut Work<'a>) {
        for &family in &w.r.families {
            if w.settled.contains(&family) {
                continue;
            }
            let Some(addr) = w.r.held(family) else { continue };
            let asks = w.r.wanted(family);
            if asks.is_some_and(|x| x != addr) {
                continue; // a new explicit request replaces the held address (pass 2)
            }
            let outcome = match self.holding_pool(w, addr) {
                None => Err(AllocError::HeldAddressInvalid { address: addr }),
                Some(pool) => self.claim(w, family, addr, pool),
            };
            // Asked for explicitly too: pass 2 reports the refusal.
            if let (Err(e), None) = (outcome, asks) {
                w.errors.push(e);
            }
        }
    }

    /// Pass 2: the addresses asked for explicitly.
    fn explicit(&mut self, w: &mut Work<'a>) {
        for &family in &w.r.families {
            if w.settled.contains(&family) {
                continue;
            }
            let Some(addr) = w.r.wanted(family) else { continue };
            w.settled.insert(family);
            let outcome = match self.pool_of(w, addr) {
                None => Err(AllocError::AddressNotInPool { address: addr }),
                Some(pool) if pool.reserved.contains(&addr) => {
                    Err(AllocError::AddressReserved { address: addr, pool: pool.name.clone() })
                }
                Some(pool) => self.claim(w, family, addr, pool),
            };
            if let Err(e) = outcome {
                w.errors.push(e);
            }
        }
    }

    /// Pass 3: a new address for every family still open.
    fn assign(&mut self, w: &mut Work<'a>) {
        let open: Vec<IpFamily> = w.r.families.iter().copied().filter(|f| !w.settled.contains(f)).collect();
        let mut no_pool = vec![];
        for family in open {
            let mut candidates: Vec<&'a Pool> = match w.pool {
                Some(p) => vec![p],
                None => {
                    w.r.allowed_pools.iter().filter_map(|n| self.usable(w.r, n)).filter(|p| p.auto_assign).collect()
                }
            };
            candidates.sort_by(|x, y| (-x.priority, &x.name).cmp(&(-y.priority, &y.name)));
            candidates.retain(|p| p.ranges.iter().any(|rg| rg.is_ipv6() == (family == IpFamily::V6)));
            if candidates.is_empty() {
                no_pool.push(family);
                continue;
            }
            match candidates.iter().find_map(|p| self.free_address(p, family, w.r).map(|x| (x, *p))) {
                Some((addr, pool)) => self.take(w, family, addr, pool),
                None => w.errors.push(AllocError::Exhausted { family }),
            }
        }
        // PreferDualStack: one family is enough when no pool has the other.
        if !no_pool.is_empty() && (w.r.require_all_families || w.taken.is_empty()) {
            w.errors.push(AllocError::NoPool);
        }
    }

    /// The lowest address of the pool that is free, or shareable with `r`.
    fn free_address(&self, pool: &Pool, family: IpFamily, r: &Request) -> Option<IpAddr> {
        let v6 = family == IpFamily::V6;
        // A service with a sharing key joins an address already shared under that key.
        if r.sharing_key.is_some() {
            for (addr, h) in &self.held {
                let joinable = !pool.reserved.contains(addr) && refusal(h, r, pool).is_none();
                if IpFamily::of(addr) == family && pool.contains(*addr) && joinable {
                    return Some(*addr);
                }
            }
        }
        let mut ranges: Vec<&IpRange> = pool.ranges.iter().filter(|rg| rg.is_ipv6() == v6).collect();
        ranges.sort();
        for rg in ranges {
            let (start, end) = (to_u128(rg.start), to_u128(rg.end));
            let name: &'a str = self.pools.get_key_value(pool.name.as_str()).map_or("", |(k, _)| *k);
            let mut cursor = self.cursor.borrow_mut();
            let skip = cursor.entry((name, start)).or_insert(start);
            // Past what nobody can have.
            while *skip < end {
                let addr = from_u128(*skip, rg.start);
                if !(self.held.contains_key(&addr) || pool.reserved.contains(&addr)) {
                    break;
                }
                *skip += 1;
            }
            let mut x = (*skip).max(start);
            drop(cursor);
            loop {
                let addr = from_u128(x, rg.start);
                // Nobody holds it, it is not reserved, and no other Service asks for it.
                let free = !self.held.contains_key(&addr)
                    && !pool.reserved.contains(&addr)
                    && self.wanted.get(&addr).is_none_or(|who| who.iter().all(|k| *k == r.key));
                if free {
                    return Some(addr);
                }
                if x >= end {
                    break;
                }
                x += 1;
            }
        }
        None
    }
}

/// (no creation time, creation time, key): the oldest first, those without a time last.
fn age(r: &Request) -> (bool, &str, &str) {
    (r.created.is_empty(), r.created.as_str(), r.key.as_str())
}

/// Allocate addresses for every request. Pure and deterministic.
pub fn allocate(pools: &[Pool], requests: &[Request]) -> BTreeMap<String, Allocation> {
    let mut order: Vec<&Request> = requests.iter().collect();
    order.sort_by(|a, b| age(a).cmp(&age(b)));
    let mut wanted: BTreeMap<IpAddr, BTreeSet<&str>> = BTreeMap::new();
    for r in &order {
        for a in &r.addresses {
            wanted.entry(*a).or_default().insert(r.key.as_str());
        }
    }
    let mut al = Allocator {
        pools: pools.iter().map(|p| (p.name.as_str(), p)).collect(),
        held: BTreeMap::new(),
        wanted,
        cursor: Default::default(),
    };
    let mut work: Vec<Work> = vec![];
    for r in order {
        let mut w = Work { r, pool: None, taken: BTreeMap::new(), settled: BTreeSet::new(), errors: vec![] };
        if let Some(p) = &r.pool {
            match al.usable(r, p) {
                Some(pool) => w.pool = Some(pool),
                None => {
                    w.errors.push(AllocError::PoolNotUsable { pool: p.clone() });
                    w.settled.extend(r.families.iter().copied());
                }
            }
        }
        work.push(w);
    }
    for w in work.iter_mut().filter(|w| !w.r.current.is_empty()) {
        al.keep_held(w);
    }
    for w in &mut work {
        al.explicit(w);
    }
    for w in &mut work {
        al.assign(w);
    }
    work.into_iter()
        .map(|w| {
            let addresses: Vec<(IpAddr, String)> =
                w.r.families.iter().filter_map(|f| w.taken.get(f).cloned()).collect();
            let needed = w.r.require_all_families || addresses.is_empty();
            let missing = if needed {
                w.r.families.iter().copied().filter(|f| !w.taken.contains_key(f)).collect()
            } else {
                vec![]
            };
            (w.r.key.clone(), Allocation { addresses, errors: w.errors, missing })
        })
        .collect()
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

#[cfg(test)]
#[path = "ipam_tests.rs"]
mod tests;
