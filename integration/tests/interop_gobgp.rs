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

use std::time::{Duration, Instant};

use mooring_integration::{poll, require_lab, GoBgp, Lab};
use serde_json::Value;

const ID: u8 = 2;

fn neighbor(addr: &str, asn: u32, family: &str, passive: bool, password: Option<&str>) -> String {
    let pw = password.map(|p| format!("    auth-password = \"{p}\"\n")).unwrap_or_default();
    format!(
        "[[neighbors]]
  [neighbors.config]
    neighbor-address = \"{addr}\"
    peer-as = {asn}
{pw}  [neighbors.transport.config]
    passive-mode = {passive}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = \"{family}-unicast\"
"
    )
}

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
    let (r4, r6) = (lab.router_v4.clone(), lab.router_v6.clone());
    let conf = format!(
        "[global.config]\n  as = 64512\n  router-id = \"{r4}\"\n  port = 179\n{}{}{}{}",
        neighbor(&n1.v4, 64513, "ipv4", true, None),
        neighbor(&n1.v6, 64513, "ipv6", false, Some("s2-secret")),
        neighbor(&n2.v4, 64512, "ipv4", false, Some("s3-secret")),
        neighbor(&n2.v6, 64512, "ipv6", true, None),
    );
    let gobgp = GoBgp::start(&lab, &lab.router, &conf);

    let (vip1, vip1_6) = ("203.0.113.21/32", "2001:db8:ffff:2::1/128");
    let (vip2, vip2_6) = ("203.0.113.22/32", "2001:db8:ffff:102::/64");
    let m1 = lab.mooring(
        &n1.ns,
        "mooring-n1",
        &[
            "--as",
            "64513",
            "--router-id",
            &n1.v4,
            "--listen",
            "[::]:179",
            "--peer",
            &format!("{r4},as=64512,hold=9,connect-retry=1,families=ipv4"),
            "--peer",
            &format!("{r6},as=64512,passive,md5=s2-secret,hold=9,families=ipv6"),
            "--prefix",
            vip1,
            "--prefix",
            vip1_6,
            "--med",
            "50",
            "--community",
            "64513:100",
            "--community",
            "no-export",
            "--large-community",
            "64513:1:2",
            "--prepend",
            "2",
        ],
    );
    let m2 = lab.mooring(
        &n2.ns,
        "mooring-n2",
        &[
            "--as",
            "64512",
            "--router-id",
            &n2.v4,
            "--listen",
            "[::]:179",
            "--peer",
            &format!("{r4},as=64512,passive,md5=s3-secret,hold=9,families=ipv4"),
            "--peer",
            &format!("{r6},as=64512,hold=9,connect-retry=1,families=ipv6"),
            "--prefix",
            vip2,
            "--prefix",
            vip2_6,
            "--med",
            "7",
            "--local-pref",
            "300",
            "--community",
            "64512:200",
            "--large-community",
            "64512:3:4",
            "--prepend",
            "2",
        ],
    );
    let t0 = Instant::now();
    for a in [&n1.v4, &n1.v6, &n2.v4, &n2.v6] {
        gobgp.wait_established(a, Duration::from_secs(30));
    }
    println!("all 4 sessions established in GoBGP after {:?}", t0.elapsed());
    for m in [&m1, &m2] {
        m.wait_count(&format!("{r4} OpenConfirm -> Established"), 1, Duration::from_secs(5));
        m.wait_count(&format!("{r6} OpenConfirm -> Established"), 1, Duration::from_secs(5));
    }
    let route = |p: &str| {
        poll(&format!("GoBGP has {p}"), Duration::from_secs(10), || {
            let paths = gobgp.paths(p);
            (!paths.is_empty()).then(|| paths[0].clone())
        })
    };
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
    let t = Instant::now();
    m1.signal(libc::SIGTERM);
    poll("GoBGP dropped n1's routes", Duration::from_secs(5), || {
        (gobgp.paths(vip1).is_empty() && gobgp.paths(vip1_6).is_empty()).then_some(())
    });
    println!("SIGTERM n1: routes gone from GoBGP after {:?}", t.elapsed());
    assert!(lab.wait_exit(&m1, Duration::from_secs(5)), "mooring n1 exits on SIGTERM");
    let t = Instant::now();
    m2.signal(libc::SIGKILL);
    poll("GoBGP dropped n2's routes", Duration::from_secs(15), || {
        (gobgp.paths(vip2).is_empty() && gobgp.paths(vip2_6).is_empty()).then_some(())
    });
    println!("SIGKILL n2: routes gone from GoBGP after {:?}", t.elapsed());
}
