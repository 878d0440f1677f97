use std::collections::BTreeSet;
use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pool(name: &str, start: &str, end: &str, priority: i32) -> Pool {
    Pool {
        name: name.into(),
        ranges: vec![IpRange { start: ip(start), end: ip(end) }],
        disabled: false,
        priority,
        auto_assign: true,
    }
}

fn req(key: &str, pools: &[&str]) -> Request {
    Request {
        key: key.into(),
        created: String::new(),
        families: vec![IpFamily::V4],
        require_all_families: false,
        allowed_pools: pools.iter().map(|s| s.to_string()).collect(),
        pool: None,
        addresses: vec![],
        current: vec![],
        sharing_key: None,
        ports: BTreeSet::from([PortKey { protocol: "TCP".into(), port: 80 }]),
    }
}

fn addrs(a: &Allocation) -> Vec<IpAddr> {
    a.addresses.iter().map(|(x, _)| *x).collect()
}

#[test]
fn lowest_free_address_of_the_highest_priority_pool() {
    let pools = [pool("low", "203.0.113.100", "203.0.113.110", 1), pool("high", "203.0.113.10", "203.0.113.11", 5)];
    let out =
        allocate(&pools, &[req("a/x", &["low", "high"]), req("a/y", &["low", "high"]), req("a/z", &["low", "high"])]);
    assert_eq!(addrs(&out["a/x"]), vec![ip("203.0.113.10")]);
    assert_eq!(addrs(&out["a/y"]), vec![ip("203.0.113.11")]);
    // The high pool is full: the next pool by priority.
    assert_eq!(out["a/z"].addresses, vec![(ip("203.0.113.100"), "low".to_string())]);
}

#[test]
fn sticky_addresses_survive_and_win_contests() {
    let pools = [pool("p", "203.0.113.10", "203.0.113.20", 0)];
    let mut old = req("a/old", &["p"]);
    old.current = vec![ip("203.0.113.15")];
    let new = req("a/new", &["p"]);
    let out = allocate(&pools, &[new.clone(), old.clone()]);
    assert_eq!(addrs(&out["a/old"]), vec![ip("203.0.113.15")]);
    assert_eq!(addrs(&out["a/new"]), vec![ip("203.0.113.10")]);
    // Two services claiming one address: the older keeps it.
    let mut a = req("a/a", &["p"]);
    a.current = vec![ip("203.0.113.12")];
    a.created = "2026-01-02T00:00:00Z".into();
    let mut b = req("a/b", &["p"]);
    b.current = vec![ip("203.0.113.12")];
    b.created = "2026-01-01T00:00:00Z".into();
    let out = allocate(&pools, &[a, b]);
    assert_eq!(addrs(&out["a/b"]), vec![ip("203.0.113.12")]);
    assert_eq!(out["a/a"].errors[0].reason(), "AddressInUse");
    assert_eq!(addrs(&out["a/a"]), vec![ip("203.0.113.10")], "the loser gets a new address");
}

#[test]
fn held_address_outside_the_pools_is_released_with_an_error() {
    let pools = [pool("p", "203.0.113.10", "203.0.113.20", 0)];
    let mut r = req("a/x", &["p"]);
    r.current = vec![ip("203.0.113.99")];
    let out = allocate(&pools, &[r]);
    assert_eq!(out["a/x"].errors, vec![AllocError::HeldAddressInvalid { address: ip("203.0.113.99") }]);
    assert_eq!(addrs(&out["a/x"]), vec![ip("203.0.113.10")]);
}

#[test]
fn requested_address_and_pool() {
    let pools = [pool("p", "203.0.113.10", "203.0.113.20", 0), pool("q", "203.0.113.30", "203.0.113.40", 0)];
    let mut r = req("a/x", &["p", "q"]);
    r.addresses = vec![ip("203.0.113.33")];
    assert_eq!(allocate(&pools, &[r.clone()])["a/x"].addresses, vec![(ip("203.0.113.33"), "q".to_string())]);
    r.addresses = vec![ip("198.51.100.1")];
    assert_eq!(allocate(&pools, &[r])["a/x"].errors[0].reason(), "AddressNotInPool");
    let mut r = req("a/x", &["p", "q"]);
    r.pool = Some("q".into());
    assert_eq!(addrs(&allocate(&pools, &[r.clone()])["a/x"]), vec![ip("203.0.113.30")]);
    r.pool = Some("nope".into());
    assert_eq!(allocate(&pools, &[r])["a/x"].errors[0].reason(), "PoolNotUsable");
}

#[test]
fn pools_not_allowed_disabled_or_manual_are_skipped() {
    let mut manual = pool("manual", "203.0.113.1", "203.0.113.1", 9);
    manual.auto_assign = false;
    let mut off = pool("off", "203.0.113.2", "203.0.113.2", 8);
    off.disabled = true;
    let other = pool("other-ns", "203.0.113.3", "203.0.113.3", 7);
    let ok = pool("ok", "203.0.113.4", "203.0.113.4", 0);
    let pools = [manual, off, other, ok];
    let out = allocate(&pools, &[req("a/x", &["manual", "off", "ok"])]);
    assert_eq!(addrs(&out["a/x"]), vec![ip("203.0.113.4")]);
    // autoAssign: false pools serve explicit requests.
    let mut r = req("a/y", &["manual"]);
    r.pool = Some("manual".into());
    assert_eq!(addrs(&allocate(&pools, &[r])["a/y"]), vec![ip("203.0.113.1")]);
    assert_eq!(allocate(&pools, &[req("a/z", &[])])["a/z"].errors, vec![AllocError::NoPool]);
}

#[test]
fn exhaustion_is_an_error() {
    let pools = [pool("p", "203.0.113.10", "203.0.113.10", 0)];
    let out = allocate(&pools, &[req("a/x", &["p"]), req("a/y", &["p"])]);
    assert_eq!(usage(&pools[0], &out), (1, 1));
    assert_eq!(addrs(&out["a/x"]), vec![ip("203.0.113.10")]);
    assert_eq!(out["a/y"].errors, vec![AllocError::Exhausted { family: IpFamily::V4 }]);
}

#[test]
fn sharing_needs_the_same_key_and_disjoint_ports() {
    let pools = [pool("p", "203.0.113.10", "203.0.113.20", 0)];
    let mut a = req("a/web", &["p"]);
    a.sharing_key = Some("k".into());
    let mut b = req("a/dns", &["p"]);
    b.sharing_key = Some("k".into());
    b.ports = BTreeSet::from([PortKey { protocol: "UDP".into(), port: 53 }]);
    let mut c = req("a/web2", &["p"]);
    c.sharing_key = Some("k".into()); // port 80 clashes with a/web
    let out = allocate(&pools, &[a, b, c]);
    assert_eq!(addrs(&out["a/web"]), addrs(&out["a/dns"]));
    assert_ne!(addrs(&out["a/web"]), addrs(&out["a/web2"]));
}

#[test]
fn dual_stack() {
    let pools =
        [pool("v4", "203.0.113.10", "203.0.113.20", 0), pool("v6", "2001:db8:ffff::10", "2001:db8:ffff::20", 0)];
    let mut r = req("a/x", &["v4", "v6"]);
    r.families = vec![IpFamily::V6, IpFamily::V4];
    let out = allocate(&pools, &[r.clone()]);
    assert_eq!(addrs(&out["a/x"]), vec![ip("2001:db8:ffff::10"), ip("203.0.113.10")]);
    // PreferDualStack with only IPv4 pools: one address, no error.
    let mut r = req("a/y", &["v4"]);
    r.families = vec![IpFamily::V4, IpFamily::V6];
    let out = allocate(&pools, &[r.clone()]);
    assert!(out["a/y"].errors.is_empty());
    r.require_all_families = true;
    assert_eq!(allocate(&pools, &[r])["a/y"].errors, vec![AllocError::NoPool]);
}

fn arb_requests() -> impl Strategy<Value = (Vec<Pool>, Vec<Request>)> {
    let pools = prop::collection::vec((0u8..3, 0u32..8, 0u32..6, -2i32..3, any::<bool>(), any::<bool>()), 1..4)
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (_, start, len, prio, disabled, auto))| Pool {
                    name: format!("p{i}"),
                    ranges: vec![IpRange {
                        start: IpAddr::V4((0xCB00_7100 + start).into()),
                        end: IpAddr::V4((0xCB00_7100 + start + len).into()),
                    }],
                    disabled,
                    priority: prio,
                    auto_assign: auto,
                })
                .collect::<Vec<_>>()
        });
    let reqs = prop::collection::vec(
        (
            prop::collection::btree_set(0usize..4, 0..4),
            prop::option::of(0u32..16),
            prop::option::of(0u32..16),
            prop::option::of(0u8..2),
            prop::collection::btree_set(0i32..3, 1..3),
            0u8..3,
        ),
        0..12,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (allowed, want, cur, share, ports, created))| Request {
                key: format!("ns/s{i}"),
                created: format!("2026-01-0{}T00:00:00Z", created + 1),
                families: vec![IpFamily::V4],
                require_all_families: false,
                allowed_pools: allowed.into_iter().map(|p| format!("p{p}")).collect(),
                pool: None,
                addresses: want.map(|w| IpAddr::V4((0xCB00_7100 + w).into())).into_iter().collect(),
                current: cur.map(|w| IpAddr::V4((0xCB00_7100 + w).into())).into_iter().collect(),
                sharing_key: share.map(|s| format!("k{s}")),
                ports: ports.into_iter().map(|port| PortKey { protocol: "TCP".into(), port }).collect(),
            })
            .collect::<Vec<_>>()
    });
    (pools, reqs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// No address is given to two services that may not share it, and
    /// every address lies in an enabled pool the service may use.
    #[test]
    fn no_conflicts_and_never_outside_the_pools((pools, reqs) in arb_requests()) {
        let out = allocate(&pools, &reqs);
        let by_key: BTreeMap<&str, &Request> = reqs.iter().map(|r| (r.key.as_str(), r)).collect();
        let mut holders: BTreeMap<IpAddr, Vec<&Request>> = BTreeMap::new();
        for (key, a) in &out {
            let r = by_key[key.as_str()];
            for (addr, pool) in &a.addresses {
                let p = pools.iter().find(|p| &p.name == pool).unwrap();
                prop_assert!(p.contains(*addr) && !p.disabled && r.allowed_pools.contains(pool));
                holders.entry(*addr).or_default().push(r);
            }
        }
        for (addr, hs) in holders {
            for (i, x) in hs.iter().enumerate() {
                for y in &hs[i + 1..] {
                    let ok = x.sharing_key.is_some() && x.sharing_key == y.sharing_key && x.ports.is_disjoint(&y.ports);
                    prop_assert!(ok, "{addr} given to {} and {}", x.key, y.key);
                }
            }
        }
    }

    /// The same inputs in any order give the same result.
    #[test]
    fn order_does_not_matter((pools, reqs) in arb_requests(), seed in any::<u64>()) {
        let a = allocate(&pools, &reqs);
        let mut shuffled = reqs.clone();
        let mut pools2 = pools.clone();
        let n = shuffled.len().max(1);
        shuffled.rotate_left((seed as usize) % n);
        shuffled.reverse();
        pools2.reverse();
        prop_assert_eq!(a, allocate(&pools2, &shuffled));
    }

    /// A valid held address is kept.
    #[test]
    fn held_addresses_are_sticky((pools, mut reqs) in arb_requests()) {
        let first = allocate(&pools, &reqs);
        for r in &mut reqs {
            r.current = first[&r.key].addresses.iter().map(|(a, _)| *a).collect();
        }
        let second = allocate(&pools, &reqs);
        for r in &reqs {
            let before: Vec<IpAddr> = first[&r.key].addresses.iter().map(|(a, _)| *a).collect();
            let after: Vec<IpAddr> = second[&r.key].addresses.iter().map(|(a, _)| *a).collect();
            prop_assert_eq!(before, after, "{} moved", r.key);
        }
    }
}
