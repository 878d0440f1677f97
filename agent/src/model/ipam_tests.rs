use std::collections::BTreeSet;
use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pool(name: &str, start: &str, end: &str, priority: i32) -> Pool {
    Pool { priority, ..Pool::new(name, vec![IpRange { start: ip(start), end: ip(end) }]) }
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
        backend: Backend::Cluster,
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
fn a_disabled_pool_gives_nothing_new_and_keeps_what_it_gave() {
    let mut off = pool("off", "203.0.113.2", "203.0.113.3", 8);
    off.disabled = true;
    let pools = [off, pool("ok", "203.0.113.4", "203.0.113.4", 0)];
    let mut held = req("a/held", &["off", "ok"]);
    held.current = vec![ip("203.0.113.2")];
    let out = allocate(&pools, &[held, req("a/new", &["off", "ok"])]);
    assert_eq!(addrs(&out["a/held"]), vec![ip("203.0.113.2")], "allocated addresses stay");
    assert_eq!(addrs(&out["a/new"]), vec![ip("203.0.113.4")], "nothing new from the disabled pool");
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

#[test]
fn explicit_requests_beat_automatic_assignment() {
    // The "Why": api sorts first and asks for nothing; web asks for .10.
    let pools = [pool("eip", "203.0.113.10", "203.0.113.11", 0)];
    let mut web = req("default/web", &["eip"]);
    web.addresses = vec![ip("203.0.113.10")];
    let mut api = req("default/api", &["eip"]);
    api.backend = Backend::Local(BTreeMap::from([("app".into(), "api".into())]));
    for (a, b) in [(web.clone(), api.clone()), (api.clone(), web.clone())] {
        let out = allocate(&pools, &[a, b]);
        assert_eq!(addrs(&out["default/web"]), vec![ip("203.0.113.10")]);
        assert_eq!(addrs(&out["default/api"]), vec![ip("203.0.113.11")]);
        assert!(out.values().all(|a| a.errors.is_empty() && a.complete()), "{out:?}");
    }
    // Even when api is older and the pool has only the requested address: api waits.
    api.created = "2026-01-01T00:00:00Z".into();
    let one = [pool("eip", "203.0.113.10", "203.0.113.10", 0)];
    let out = allocate(&one, &[api, web]);
    assert_eq!(addrs(&out["default/web"]), vec![ip("203.0.113.10")]);
    assert_eq!(out["default/api"].errors, vec![AllocError::Exhausted { family: IpFamily::V4 }]);
    assert_eq!(out["default/api"].missing, vec![IpFamily::V4]);
}

#[test]
fn explicit_requests_go_oldest_first_and_a_refusal_is_final() {
    let pools = [pool("p", "203.0.113.10", "203.0.113.20", 0)];
    let mut old = req("b/old", &["p"]);
    old.addresses = vec![ip("203.0.113.15")];
    old.created = "2026-01-01T00:00:00Z".into();
    let mut new = req("a/new", &["p"]);
    new.addresses = vec![ip("203.0.113.15")];
    new.created = "2026-01-02T00:00:00Z".into();
    let out = allocate(&pools, &[new, old]);
    assert_eq!(addrs(&out["b/old"]), vec![ip("203.0.113.15")]);
    assert_eq!(
        out["a/new"].errors,
        vec![AllocError::AddressInUse {
            address: ip("203.0.113.15"),
            holder: "b/old".into(),
            why: Refusal::NoKey { service: "b/old".into() }
        }]
    );
    assert!(addrs(&out["a/new"]).is_empty(), "no other address instead of the one asked for");
    assert_eq!(
        out["a/new"].errors[0].to_string(),
        "203.0.113.15 is held by b/old, and the two may not share it: b/old has no allow-shared-ip key"
    );
}

#[test]
fn holders_keep_their_addresses_against_requests() {
    let pools = [pool("p", "203.0.113.10", "203.0.113.20", 0)];
    let mut holder = req("z/holder", &["p"]);
    holder.current = vec![ip("203.0.113.12")];
    let mut asker = req("a/asker", &["p"]);
    asker.addresses = vec![ip("203.0.113.12")];
    asker.created = "2020-01-01T00:00:00Z".into(); // older, but holding wins
    let out = allocate(&pools, &[asker.clone(), holder.clone()]);
    assert_eq!(addrs(&out["z/holder"]), vec![ip("203.0.113.12")]);
    assert_eq!(out["a/asker"].errors[0].reason(), "AddressInUse");
    // A holder that asks for another address moves to it, and its old one is free again.
    holder.addresses = vec![ip("203.0.113.18")];
    let out = allocate(&pools, &[asker, holder]);
    assert_eq!(addrs(&out["z/holder"]), vec![ip("203.0.113.18")]);
    assert_eq!(addrs(&out["a/asker"]), vec![ip("203.0.113.12")]);
}

#[test]
fn automatic_assignment_leaves_addresses_others_ask_for() {
    let pools = [pool("p", "203.0.113.10", "203.0.113.12", 0), pool("q", "203.0.113.13", "203.0.113.13", 0)];
    // The asker may not use p (its namespace is not allowed there): its request fails, and
    // the address stays free for it all the same.
    let mut asker = req("a/asker", &["q"]);
    asker.addresses = vec![ip("203.0.113.10")];
    let out = allocate(&pools, &[asker, req("b/x", &["p"]), req("c/y", &["p"])]);
    assert_eq!(out["a/asker"].errors, vec![AllocError::AddressNotInPool { address: ip("203.0.113.10") }]);
    assert_eq!(addrs(&out["b/x"]), vec![ip("203.0.113.11")]);
    assert_eq!(addrs(&out["c/y"]), vec![ip("203.0.113.12")]);
}

#[test]
fn reserved_addresses_are_not_handed_out_but_stay_with_their_holders() {
    // 203.0.113.0/29 with the network and broadcast addresses reserved.
    let mut p = pool("cidr", "203.0.113.0", "203.0.113.7", 0);
    p.reserved = BTreeSet::from([ip("203.0.113.0"), ip("203.0.113.7")]);
    assert_eq!(p.size(), 6);
    let pools = [p.clone()];
    let out = allocate(&pools, &[req("a/x", &["cidr"])]);
    assert_eq!(addrs(&out["a/x"]), vec![ip("203.0.113.1")]);
    let mut asks = req("a/asks", &["cidr"]);
    asks.addresses = vec![ip("203.0.113.7")];
    let out = allocate(&pools, &[asks]);
    assert_eq!(
        out["a/asks"].errors,
        vec![AllocError::AddressReserved { address: ip("203.0.113.7"), pool: "cidr".into() }]
    );
    assert!(out["a/asks"].errors[0].to_string().contains("spec.allowFirstLastIPs: true"));
    // Handed out before the pool reserved it: kept, also when asked for explicitly.
    let mut holder = req("a/holder", &["cidr"]);
    holder.current = vec![ip("203.0.113.0")];
    let mut both = req("a/both", &["cidr"]);
    both.current = vec![ip("203.0.113.7")];
    both.addresses = vec![ip("203.0.113.7")];
    let out = allocate(&pools, &[holder, both]);
    assert_eq!(addrs(&out["a/holder"]), vec![ip("203.0.113.0")]);
    assert_eq!(addrs(&out["a/both"]), vec![ip("203.0.113.7")]);
    assert!(out.values().all(|a| a.errors.is_empty()));
    // Six Services fill it; the seventh finds it exhausted.
    let reqs: Vec<Request> = (0..7).map(|i| req(&format!("a/s{i}"), &["cidr"])).collect();
    let out = allocate(&pools, &reqs);
    assert_eq!(out["a/s6"].errors, vec![AllocError::Exhausted { family: IpFamily::V4 }]);
    assert_eq!(usage(&pools[0], &out), (6, 6));
}

fn sharer(key: &str, port: i32, backend: Backend) -> Request {
    let mut r = req(key, &["p"]);
    r.sharing_key = Some("k".into());
    r.ports = BTreeSet::from([PortKey { protocol: "TCP".into(), port }]);
    r.backend = backend;
    r
}

#[test]
fn sharing_follows_metallbs_rules_and_a_refusal_names_the_rule() {
    let pools = [pool("p", "203.0.113.10", "203.0.113.20", 0)];
    let local = |app: &str| Backend::Local(BTreeMap::from([("app".to_string(), app.to_string())]));
    let vip = ip("203.0.113.10");
    let mut first = sharer("a/first", 80, Backend::Cluster);
    first.current = vec![vip];
    let why = |first: &Request, other: Request| {
        let mut other = other;
        other.addresses = vec![vip];
        let out = allocate(&pools, &[first.clone(), other.clone()]);
        match &out[&other.key].errors[..] {
            [] => None,
            [AllocError::AddressInUse { holder, why, .. }] => {
                assert_eq!(holder, "a/first");
                Some(why.clone())
            }
            e => panic!("{e:?}"),
        }
    };
    assert_eq!(why(&first, sharer("a/dns", 53, Backend::Cluster)), None, "same key, other port, both Cluster");
    assert_eq!(
        why(&first, sharer("a/web", 80, Backend::Cluster)),
        Some(Refusal::Port(PortKey { protocol: "TCP".into(), port: 80 }))
    );
    assert_eq!(why(&first, sharer("a/local", 53, local("x"))), Some(Refusal::TrafficPolicy));
    assert_eq!(why(&first, sharer("b/dns", 53, Backend::Cluster)), Some(Refusal::Namespaces { pool: "p".into() }));
    let mut no_key = sharer("a/nokey", 53, Backend::Cluster);
    no_key.sharing_key = None;
    assert_eq!(why(&first, no_key), Some(Refusal::NoKey { service: "a/nokey".into() }));
    let mut other_key = sharer("a/otherkey", 53, Backend::Cluster);
    other_key.sharing_key = Some("j".into());
    assert_eq!(why(&first, other_key), Some(Refusal::DifferentKeys { ours: "j".into(), theirs: "k".into() }));
    // Local with Local: only with the same selector.
    first.backend = local("x");
    assert_eq!(why(&first, sharer("a/same", 53, local("x"))), None);
    assert_eq!(why(&first, sharer("a/diff", 53, local("y"))), Some(Refusal::Selectors));
    assert!(Refusal::Selectors.to_string().contains("different selectors"));
    assert_eq!(
        Refusal::Namespaces { pool: "p".into() }.to_string(),
        "they are in different namespaces, and Eip p does not set spec.allowSharingAcrossNamespaces"
    );
    // Across namespaces when both Services' pool allows it.
    let mut open = pools[0].clone();
    open.share_across_namespaces = true;
    first.backend = Backend::Cluster;
    let out = allocate(&[open], &[first.clone(), sharer("b/dns", 53, Backend::Cluster)]);
    assert_eq!(addrs(&out["b/dns"]), vec![vip], "joins the shared address automatically");
}

fn arb_requests() -> impl Strategy<Value = (Vec<Pool>, Vec<Request>)> {
    let pools = prop::collection::vec(
        (0u32..8, 0u32..6, -2i32..3, any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        1..4,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (start, len, prio, disabled, auto, reserve, across))| {
                let (start, end) = (0xCB00_7100 + start, 0xCB00_7100 + start + len);
                Pool {
                    name: format!("p{i}"),
                    ranges: vec![IpRange { start: IpAddr::V4(start.into()), end: IpAddr::V4(end.into()) }],
                    // As for a CIDR: the first and last address.
                    reserved: if reserve {
                        BTreeSet::from([IpAddr::V4(start.into()), IpAddr::V4(end.into())])
                    } else {
                        BTreeSet::new()
                    },
                    disabled,
                    priority: prio,
                    auto_assign: auto,
                    share_across_namespaces: across,
                }
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
            (0u8..3, 0u8..2, 0u8..3),
        ),
        0..12,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (allowed, want, cur, share, ports, (created, ns, backend)))| Request {
                key: format!("ns{ns}/s{i}"),
                created: format!("2026-01-0{}T00:00:00Z", created + 1),
                families: vec![IpFamily::V4],
                require_all_families: false,
                allowed_pools: allowed.into_iter().map(|p| format!("p{p}")).collect(),
                pool: None,
                addresses: want.map(|w| IpAddr::V4((0xCB00_7100 + w).into())).into_iter().collect(),
                current: cur.map(|w| IpAddr::V4((0xCB00_7100 + w).into())).into_iter().collect(),
                sharing_key: share.map(|s| format!("k{s}")),
                ports: ports.into_iter().map(|port| PortKey { protocol: "TCP".into(), port }).collect(),
                backend: match backend {
                    0 => Backend::Cluster,
                    b => Backend::Local(BTreeMap::from([("app".to_string(), format!("a{b}"))])),
                },
            })
            .collect::<Vec<_>>()
    });
    (pools, reqs)
}

/// The sharing rules, written out again: may `x` (holding from `px`) and `y` (from `py`) share?
fn compatible(x: &Request, px: &Pool, y: &Request, py: &Pool) -> bool {
    x.sharing_key.is_some()
        && x.sharing_key == y.sharing_key
        && x.ports.is_disjoint(&y.ports)
        && x.backend == y.backend
        && (x.namespace() == y.namespace() || (px.share_across_namespaces && py.share_across_namespaces))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// No address is given to two services that may not share it; every address lies in a
    /// pool the service may use; an address of a disabled pool, or a reserved address, only
    /// stays with a Service that held it.
    #[test]
    fn no_conflicts_and_never_outside_the_pools((pools, reqs) in arb_requests()) {
        let out = allocate(&pools, &reqs);
        let by_key: BTreeMap<&str, &Request> = reqs.iter().map(|r| (r.key.as_str(), r)).collect();
        let mut holders: BTreeMap<IpAddr, Vec<(&Request, &Pool)>> = BTreeMap::new();
        for (key, a) in &out {
            let r = by_key[key.as_str()];
            for (addr, pool) in &a.addresses {
                let p = pools.iter().find(|p| &p.name == pool).unwrap();
                prop_assert!(p.contains(*addr) && r.allowed_pools.contains(pool));
                prop_assert!(!p.disabled || r.current.contains(addr), "{key} got {addr} of disabled {pool}");
                prop_assert!(!p.reserved.contains(addr) || r.current.contains(addr), "{key} got reserved {addr}");
                holders.entry(*addr).or_default().push((r, p));
            }
        }
        for (addr, hs) in &holders {
            for (i, (x, px)) in hs.iter().enumerate() {
                for (y, py) in &hs[i + 1..] {
                    prop_assert!(compatible(x, px, y, py), "{addr} given to {} and {}", x.key, y.key);
                }
            }
        }
        // Automatic assignment never claims an address another Service asks for: a Service
        // that got one without asking or holding it shares it with one that did.
        for (key, a) in &out {
            let r = by_key[key.as_str()];
            for (addr, _) in &a.addresses {
                let own = r.addresses.contains(addr) || r.current.contains(addr);
                let asked = reqs.iter().any(|t| t.key != r.key && t.addresses.contains(addr));
                if !own && asked {
                    let rightful = holders[addr].iter().any(|(u, _)| u.key != r.key && (u.addresses.contains(addr) || u.current.contains(addr)));
                    prop_assert!(rightful, "{key} took {addr}, which another Service asks for");
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The memoised allocation (the node loop's) answers every call in a sequence of
    /// changing and repeated inputs as a fresh allocation does.
    #[test]
    fn the_memo_answers_as_a_fresh_allocation(
        inputs in prop::collection::vec(arb_requests(), 1..4),
        order in prop::collection::vec(0usize..4, 1..10),
    ) {
        for i in order {
            let (pools, reqs) = &inputs[i % inputs.len()];
            let memo = crate::model::desired::allocate_memo(pools.clone(), reqs.clone());
            prop_assert_eq!(memo, allocate(pools, reqs));
        }
    }
}
