//! Mooring <-> GoBGP 3: eBGP and iBGP, IPv4 and IPv6 sessions, with and
//! without TCP MD5, each side active or passive; the attributes GoBGP
//! receives (read back with `gobgp global rib -j`); withdrawal.
//!
//! | session | family | type | MD5 | mooring | GoBGP   |
//! |---------|--------|------|-----|---------|---------|
//! | n1 v4   | IPv4   | eBGP | no  | active  | passive |
//! | n1 v6   | IPv6   | eBGP | yes | passive | active  |
//! | n2 v4   | IPv4   | iBGP | yes | passive | active  |
//! | n2 v6   | IPv6   | iBGP | no  | active  | passive |

use mooring_integration::{
    check_withdrawal, start_interop_speakers, wait_daemon_established, wait_route, wait_speakers_established,
    InteropVips, EBGP_V6_PASSWORD, IBGP_V4_PASSWORD,
};
use mooring_lab::{require_lab, Config, GoBgp, Lab, Neighbor};
use serde_json::Value;

const ID: u8 = 2;

/// The attribute of type `t` of a GoBGP path.
fn attr(p: &Value, t: u64) -> Value {
    p["attrs"].as_array().into_iter().flatten().find(|a| a["type"] == t).cloned().unwrap_or(Value::Null)
}

fn as_path(p: &Value) -> Vec<u64> {
    attr(p, 2)["as_paths"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["asns"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_u64())
        .collect()
}

/// IPv4 NEXT_HOP (type 3) or the MP_REACH_NLRI (type 14) next hop.
fn next_hop(p: &Value) -> String {
    let a = attr(p, 3);
    if let Some(n) = a["nexthop"].as_str() {
        return n.to_string();
    }
    attr(p, 14)["nexthop"].as_str().unwrap_or("").to_string()
}

fn communities(p: &Value) -> Vec<String> {
    attr(p, 8)["communities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_u64())
        .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
        .collect()
}

fn large_communities(p: &Value) -> Vec<String> {
    attr(p, 32)["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{}:{}:{}", c["ASN"], c["LocalData1"], c["LocalData2"]))
        .collect()
}

#[test]
fn interop_gobgp() {
    require_lab!();
    let lab = Lab::new(ID);
    let n1 = lab.node("n1");
    let n2 = lab.node("n2");
    let r4 = lab.router_v4.clone();
    // The router's side of the matrix in the module doc (hold time 9 s).
    let nb = |addr: &str, asn| Neighbor::new(addr, asn).timers(3, 9).connect_retry(1);
    let cfg = Config::new(64512, &r4)
        .listen()
        .neighbor(nb(&n1.v4, 64513).passive())
        .neighbor(nb(&n1.v6, 64513).password(EBGP_V6_PASSWORD))
        .neighbor(nb(&n2.v4, 64512).password(IBGP_V4_PASSWORD))
        .neighbor(nb(&n2.v6, 64512).passive());
    let gobgp = GoBgp::start(&lab, &lab.router, "gobgpd", &cfg);

    let vips = InteropVips {
        ebgp_v4: "203.0.113.21/32",
        ebgp_v6: "2001:db8:ffff:2::1/128",
        ibgp_v4: "203.0.113.22/32",
        ibgp_v6: "2001:db8:ffff:102::/64",
    };
    let (vip1, vip1_6, vip2, vip2_6) = (vips.ebgp_v4, vips.ebgp_v6, vips.ibgp_v4, vips.ibgp_v6);
    let (m1, m2) = start_interop_speakers(&lab, &n1, &n2, &vips);
    wait_daemon_established("GoBGP", &[&n1.v4, &n1.v6, &n2.v4, &n2.v6], |a, t| gobgp.wait_established(a, t));
    wait_speakers_established(&lab, &m1, &m2);
    let route = |p: &str| wait_route("GoBGP", p, |p| gobgp.paths(p).into_iter().next());
    // eBGP, IPv4
    let p = route(vip1);
    println!("GoBGP {vip1}: {p}");
    assert_eq!(as_path(&p), vec![64513, 64513, 64513], "AS path with 2 prepends");
    assert_eq!(next_hop(&p), n1.v4, "next hop self");
    assert_eq!(attr(&p, 4)["metric"], 50, "MED");
    assert_eq!(attr(&p, 5), Value::Null, "no LOCAL_PREF from an eBGP peer");
    assert_eq!(communities(&p), vec!["64513:100", "65535:65281"], "communities (65535:65281 = no-export)");
    assert_eq!(large_communities(&p), vec!["64513:1:2"]);
    // eBGP, IPv6 (MD5, mooring passive)
    let p = route(vip1_6);
    println!("GoBGP {vip1_6}: {p}");
    assert_eq!(as_path(&p), vec![64513, 64513, 64513]);
    assert_eq!(next_hop(&p), n1.v6, "IPv6 next hop self");
    assert_eq!(attr(&p, 4)["metric"], 50);
    assert_eq!(communities(&p), vec!["64513:100", "65535:65281"]);
    assert_eq!(large_communities(&p), vec!["64513:1:2"]);
    // iBGP, IPv4 (MD5, mooring passive)
    let p = route(vip2);
    println!("GoBGP {vip2}: {p}");
    assert_eq!(as_path(&p), Vec::<u64>::new(), "iBGP: empty AS path, no prepend");
    assert_eq!(next_hop(&p), n2.v4);
    assert_eq!(attr(&p, 4)["metric"], 7);
    assert_eq!(attr(&p, 5)["value"], 300, "LOCAL_PREF on iBGP");
    assert_eq!(communities(&p), vec!["64512:200"]);
    assert_eq!(large_communities(&p), vec!["64512:3:4"]);
    // iBGP, IPv6 /64
    let p = route(vip2_6);
    println!("GoBGP {vip2_6}: {p}");
    assert_eq!(as_path(&p), Vec::<u64>::new());
    assert_eq!(next_hop(&p), n2.v6);
    assert_eq!(attr(&p, 5)["value"], 300);
    assert_eq!(attr(&p, 4)["metric"], 7);
    assert_eq!(gobgp.paths(vip1).len(), 1);
    assert_eq!(gobgp.paths(vip2_6).len(), 1);

    // Withdrawal: SIGTERM (Cease) for n1, SIGKILL for n2.
    check_withdrawal(&lab, "GoBGP", &m1, &m2, &vips, |p| gobgp.paths(p).is_empty());
}
