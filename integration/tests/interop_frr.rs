//! Mooring <-> FRR 8: eBGP and iBGP, IPv4 and IPv6 sessions, with and
//! without TCP MD5, each side active or passive; the attributes FRR
//! receives; withdrawal when the speaker stops.
//!
//! | session | family | type | MD5 | mooring | FRR     |
//! |---------|--------|------|-----|---------|---------|
//! | n1 v4   | IPv4   | eBGP | no  | active  | passive |
//! | n1 v6   | IPv6   | eBGP | yes | passive | active  |
//! | n2 v4   | IPv4   | iBGP | yes | passive | active  |
//! | n2 v6   | IPv6   | iBGP | no  | active  | passive |

use mooring_integration::{
    check_withdrawal, start_interop_speakers, wait_daemon_established, wait_route, wait_speakers_established,
    InteropVips, EBGP_V6_PASSWORD, IBGP_V4_PASSWORD,
};
use mooring_lab::{require_lab, Config, Frr, Lab, Neighbor};
use serde_json::Value;

const ID: u8 = 1;

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn nexthops(p: &Value) -> Vec<String> {
    p["nexthops"].as_array().into_iter().flatten().filter_map(|n| n["ip"].as_str().map(String::from)).collect()
}

#[test]
fn interop_frr() {
    require_lab!();
    let lab = Lab::new(ID);
    let n1 = lab.node("n1");
    let n2 = lab.node("n2");
    let r4 = lab.router_v4.clone();
    // The router's side of the matrix in the module doc (hold time 9 s).
    let cfg = Config::new(64512, &r4)
        .neighbor(Neighbor::new(&n1.v4, 64513).passive().timers(3, 9))
        .neighbor(Neighbor::new(&n1.v6, 64513).password(EBGP_V6_PASSWORD).timers(3, 9).connect_retry(1))
        .neighbor(Neighbor::new(&n2.v4, 64512).password(IBGP_V4_PASSWORD).timers(3, 9).connect_retry(1))
        .neighbor(Neighbor::new(&n2.v6, 64512).passive().timers(3, 9));
    let frr = Frr::start(&lab, &lab.router, "frr", &cfg);

    let vips = InteropVips {
        ebgp_v4: "203.0.113.11/32",
        ebgp_v6: "2001:db8:ffff:1::1/128",
        ibgp_v4: "203.0.113.12/32",
        ibgp_v6: "2001:db8:ffff:101::/64",
    };
    let (vip1, vip1_6, vip2, vip2_6) = (vips.ebgp_v4, vips.ebgp_v6, vips.ibgp_v4, vips.ibgp_v6);
    let (m1, m2) = start_interop_speakers(&lab, &n1, &n2, &vips);
    wait_daemon_established("FRR", &[&n1.v4, &n1.v6, &n2.v4, &n2.v6], |a, t| frr.wait_established(a, t));
    for a in [&n1.v4, &n1.v6, &n2.v4, &n2.v6] {
        let n = frr.neighbor(a).unwrap();
        println!(
            "FRR neighbor {a}: state={} remoteAs={} localAs={} type={} hold={}ms",
            s(&n, "/bgpState"),
            n["remoteAs"],
            n["localAs"],
            if n["remoteAs"] == n["localAs"] { "iBGP" } else { "eBGP" },
            n["bgpTimerHoldTimeMsecs"]
        );
    }
    wait_speakers_established(&lab, &m1, &m2);

    let route = |p: &str| wait_route("FRR", p, |p| frr.paths(p).into_iter().next());
    // eBGP, IPv4 session
    let p = route(vip1);
    println!("FRR {vip1}: {p}");
    assert_eq!(s(&p, "/aspath/string"), "64513 64513 64513", "AS path with 2 prepends");
    assert_eq!(nexthops(&p), vec![n1.v4.clone()], "next hop self");
    assert_eq!(p["metric"], 50);
    let comm = s(&p, "/community/string");
    assert!(comm.contains("64513:100") && comm.contains("no-export"), "communities: {comm}");
    assert_eq!(s(&p, "/largeCommunity/string"), "64513:1:2");
    assert_eq!(p["peer"]["type"], "external");
    // eBGP, IPv6 session (MD5, mooring passive)
    let p = route(vip1_6);
    println!("FRR {vip1_6}: {p}");
    assert_eq!(s(&p, "/aspath/string"), "64513 64513 64513");
    assert!(nexthops(&p).contains(&n1.v6), "IPv6 next hop self: {:?}", nexthops(&p));
    assert_eq!(p["metric"], 50);
    assert_eq!(s(&p, "/largeCommunity/string"), "64513:1:2");
    // iBGP, IPv4 (MD5, mooring passive)
    let p = route(vip2);
    println!("FRR {vip2}: {p}");
    assert_eq!(p["aspath"]["length"], 0, "iBGP: empty AS path, no prepend");
    assert_eq!(nexthops(&p), vec![n2.v4.clone()]);
    assert_eq!(p["metric"], 7);
    assert_eq!(p["locPrf"], 300, "LOCAL_PREF on iBGP");
    assert_eq!(s(&p, "/community/string"), "64512:200");
    assert_eq!(s(&p, "/largeCommunity/string"), "64512:3:4");
    assert_eq!(p["peer"]["type"], "internal");
    // iBGP, IPv6 /64
    let p = route(vip2_6);
    println!("FRR {vip2_6}: {p}");
    assert_eq!(p["aspath"]["length"], 0);
    assert!(nexthops(&p).contains(&n2.v6), "IPv6 next hop: {:?}", nexthops(&p));
    assert_eq!(p["locPrf"], 300);
    assert_eq!(p["metric"], 7);
    // Nothing leaked across families or sessions.
    assert_eq!(frr.paths(vip1).len(), 1);
    assert_eq!(frr.paths(vip2_6).len(), 1);

    // Withdrawal: SIGTERM (Cease) for n1, SIGKILL for n2.
    check_withdrawal(&lab, "FRR", &m1, &m2, &vips, |p| frr.paths(p).is_empty());
    assert!(m1.output().contains("stopping"), "mooring n1 logged its stop on SIGTERM");
}
