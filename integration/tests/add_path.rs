//! ADD-PATH (RFC 7911) against FRR 8.4, GoBGP 3 and BIRD 2. In each case
//! one `mooring announce` on n1 announces one VIP with three third-party
//! next hops (n2, n3, n4, on the router's link), and a second speaker on
//! n5 announces another VIP with the same three next hops to a session on
//! which the router does not receive ADD-PATH.
//!
//! - The router receives ADD-PATH from n1 — FRR by default, GoBGP with
//!   `add-paths` `receive = true`, BIRD with `add paths rx`
//!   ([`Neighbor::add_path_rx`]) — and gets three paths, path ids = the
//!   next hops as numbers. FRR shows the ids (`addpathRxId`), GoBGP too
//!   (`gobgp neighbor N1 adj-in`); BIRD shows none, so its case reads them
//!   on the wire: a tshark capture on the router's bridge decodes both
//!   OPENs (capability 69: BIRD receive, Mooring send+receive) and the
//!   UPDATEs' path ids, about two seconds of the test's time.
//! - FRR's FIB and BIRD's (its kernel protocol, `merge paths on`) get
//!   three next hops; GoBGP has no FIB here: its RIB holds the three.
//! - Withdrawing one path (the route file read again on SIGHUP) takes
//!   exactly that path away in one UPDATE (BIRD: one withdrawal and no
//!   update received; on the wire, that path id alone): the other two stay.
//! - n5's speaker sends one path (the first) and says so: the warning line
//!   and `paths_not_sent=2` in its status (FRR: `disable-addpath-rx`;
//!   GoBGP and BIRD: their default, no ADD-PATH).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use mooring_lab::{
    fib_nexthops, lab_unavailable, poll, poll_every, require_lab, run, skip_or_fail, Bird, Config, Frr, GoBgp, Lab,
    Mooring, Neighbor, Node, Proc,
};
use serde_json::Value;

const FRR_ID: u8 = 27;
const GOBGP_ID: u8 = 76;
const BIRD_ID: u8 = 77;

/// The path id Mooring gives an IPv4 next hop: its address as a number.
fn id(addr: &str) -> u64 {
    u32::from(addr.parse::<std::net::Ipv4Addr>().unwrap()) as u64
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// The lab's nodes: n1 (the speaker), n2..n4 (the next hops), n5 (the
/// speaker towards a peer without ADD-PATH receive).
fn nodes(lab: &Lab) -> (Node, Vec<String>, Node) {
    let n1 = lab.node("n1");
    let hops = ["n2", "n3", "n4"].iter().map(|n| lab.node(n).v4).collect();
    (n1, hops, lab.node("n5"))
}

/// The two speakers of every case: n1's announcing `vip` via the three
/// next hops from a route file (read again on SIGHUP), n5's announcing
/// `plain` via the same three.
struct Speakers {
    m1: Mooring,
    m5: Mooring,
    routes: PathBuf,
    vip: &'static str,
}

impl Speakers {
    fn start(lab: &Lab, n1: &Node, n5: &Node, hops: &[String], vip: &'static str, plain: &str) -> Speakers {
        let routes = lab.path("routes.txt");
        std::fs::write(&routes, format!("{vip} {}\n", hops.join(" "))).unwrap();
        let peer = || Neighbor::new(&lab.router_v4, 64512).hold(3).connect_retry(1);
        let mut c1 = Config::new(64513, &n1.v4).neighbor(peer());
        c1.extra = format!("--prefix-file {} --status-interval 1", routes.display());
        let m1 = Mooring::start(lab, &n1.ns, "mooring-n1", &c1);
        let mut c5 = Config::new(64513, &n5.v4).neighbor(peer()).prefixes([plain]);
        c5.attrs.next_hops = hops.to_vec();
        c5.extra = "--status-interval 1".into();
        let m5 = Mooring::start(lab, &n5.ns, "mooring-n5", &c5);
        Speakers { m1, m5, routes, vip }
    }

    /// n5's speaker said that its peer gets one path of three; n1's said nothing of the kind.
    fn check_paths_not_sent(&self) {
        self.m5.proc().wait_line("does not receive ADD-PATH", Duration::from_secs(10));
        self.m5.proc().wait_line("paths_not_sent=2", Duration::from_secs(10));
        assert_eq!(self.m1.proc().count("does not receive ADD-PATH"), 0, "n1's peer receives ADD-PATH");
    }

    /// n1 announces `keep` alone (the route file rewritten, SIGHUP); returns once it has read it.
    fn keep_only(&self, keep: &[String]) {
        std::fs::write(&self.routes, format!("{} {}\n", self.vip, keep.join(" "))).unwrap();
        self.m1.proc().signal(libc::SIGHUP);
        self.m1.proc().wait_line(&format!("routes read again: {} paths", keep.len()), Duration::from_secs(10));
    }
}

// ---------------------------------------------------------------- FRR

fn frr_next_hop(p: &Value) -> String {
    p["nexthops"][0]["ip"].as_str().unwrap_or("").to_string()
}

/// (next hop, FRR's received path id, last update epoch) of each path FRR has for `prefix`.
fn frr_paths(frr: &Frr, prefix: &str) -> Vec<(String, u64, u64)> {
    let mut v: Vec<(String, u64, u64)> = frr
        .paths(prefix)
        .iter()
        .map(|p| {
            let id = p["addpathRxId"].as_u64().unwrap_or_else(|| panic!("FRR shows no addpathRxId: {p}"));
            (frr_next_hop(p), id, p["lastUpdate"]["epoch"].as_u64().unwrap_or_else(|| panic!("no lastUpdate: {p}")))
        })
        .collect();
    v.sort();
    v
}

fn frr_updates_received(frr: &Frr, addr: &str) -> u64 {
    let n = frr.neighbor(addr).unwrap_or_else(|| panic!("FRR has no neighbor {addr}"));
    n["messageStats"]["updatesRecv"].as_u64().unwrap_or_else(|| panic!("no messageStats.updatesRecv: {n}"))
}

#[test]
fn add_path_with_frr() {
    require_lab!();
    const VIP: &str = "203.0.113.47/32";
    const VIP_PLAIN: &str = "203.0.113.48/32";
    let lab = Lab::new(FRR_ID);
    let (n1, hops, n5) = nodes(&lab);
    let hop = |i: usize| hops[i].clone();
    let mut cfg = Config::new(64512, &lab.router_v4)
        .neighbor(Neighbor::new(&n1.v4, 64513).timers(1, 3).connect_retry(1))
        .neighbor(Neighbor::new(&n5.v4, 64513).timers(1, 3).connect_retry(1));
    cfg.extra = format!(
        "router bgp 64512\n address-family ipv4 unicast\n  neighbor {} disable-addpath-rx\n exit-address-family\n",
        n5.v4
    );
    let frr = Frr::start(&lab, &lab.router, "frr", &cfg);
    let s = Speakers::start(&lab, &n1, &n5, &hops, VIP, VIP_PLAIN);
    frr.wait_established(&n1.v4, Duration::from_secs(20));
    frr.wait_established(&n5.v4, Duration::from_secs(20));

    let n = frr.neighbor(&n1.v4).unwrap();
    let ap = &n["neighborCapabilities"]["addPath"]["ipv4Unicast"];
    println!("FRR's ADD-PATH capability with n1: {ap}");
    assert_eq!(ap["rxAdvertisedAndReceived"], true, "FRR receives paths from n1 and we said we send: {ap}");

    // Three paths, each under the id its next hop gives, and three next hops in the FIB.
    let want: Vec<(String, u64)> = (0..3).map(|i| (hop(i), id(&hop(i)))).collect();
    let three = poll("FRR: three paths for the VIP", Duration::from_secs(20), || {
        let p = frr_paths(&frr, VIP);
        (p.iter().map(|(nh, id, _)| (nh.clone(), *id)).collect::<Vec<_>>() == want).then_some(p)
    });
    println!("FRR paths of {VIP}: {three:?}");
    let vip = VIP.trim_end_matches("/32");
    let fib_want = sorted(&hops);
    poll("router FIB: three next hops", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, vip) == fib_want).then_some(())
    });
    let multipath =
        frr.paths(VIP).iter().filter(|p| p["multipath"] == true || p["bestpath"]["overall"] == true).count();
    assert_eq!(multipath, 3, "all three paths are best or multipath");

    // n5's session has no ADD-PATH receive on FRR's side: one path, the first, and it says so.
    let plain = poll("FRR: n5's VIP", Duration::from_secs(20), || {
        let p = frr.paths(VIP_PLAIN);
        (!p.is_empty()).then_some(p)
    });
    assert_eq!(plain.len(), 1, "one path without ADD-PATH: {plain:?}");
    assert_eq!(frr_next_hop(&plain[0]), hop(0), "the first path");
    s.check_paths_not_sent();

    // Withdraw n3's path. Wait 3 s first so that a re-sent path would show a lastUpdate at
    // least 2 s newer (FRR derives the epoch from its uptime: it moves by a second either way).
    std::thread::sleep(Duration::from_secs(3));
    let before = frr_updates_received(&frr, &n1.v4);
    s.keep_only(&[hop(0), hop(2)]);
    let two = poll("FRR: two paths left", Duration::from_secs(20), || {
        let p = frr_paths(&frr, VIP);
        (p.len() == 2).then_some(p)
    });
    println!("FRR paths of {VIP} after withdrawing {}: {two:?}", hop(1));
    let kept: Vec<_> = three.iter().filter(|(nh, _, _)| *nh != hop(1)).collect();
    let ids = |v: &[&(String, u64, u64)]| v.iter().map(|(nh, id, _)| (nh.clone(), *id)).collect::<Vec<_>>();
    assert_eq!(ids(&two.iter().collect::<Vec<_>>()), ids(&kept), "the other two paths stay, with their ids");
    for ((nh, _, now), (_, _, then)) in two.iter().zip(&kept) {
        assert!(*now <= then + 1, "{nh}'s path was re-sent: last update {now}, was {then}");
    }
    let fib_two = sorted(&[hop(0), hop(2)]);
    poll("router FIB: two next hops", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, vip) == fib_two).then_some(())
    });
    // The withdrawal was one UPDATE; nothing else was re-sent. Later keepalives are no UPDATEs.
    assert_eq!(frr_updates_received(&frr, &n1.v4) - before, 1, "one UPDATE (the withdrawal of one path id)");
}

// ---------------------------------------------------------------- GoBGP

/// (next hop, path id) of each path GoBGP received from `from` for `prefix`, sorted.
fn gobgp_adj_in(gobgp: &GoBgp, from: &str, prefix: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = gobgp
        .adj_in(from, false)
        .into_iter()
        .filter(|(_, p, _)| p == prefix)
        .map(|(id, _, nh)| (nh, id as u64))
        .collect();
    v.sort();
    v
}

/// The next hops of GoBGP's Loc-RIB paths for `prefix`, each with the neighbor it came from, sorted.
fn gobgp_rib(gobgp: &GoBgp, prefix: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = gobgp
        .paths(prefix)
        .iter()
        .map(|p| {
            let nh = p["attrs"].as_array().into_iter().flatten().find(|a| a["type"] == 3).map(|a| &a["nexthop"]);
            let nh = nh.and_then(Value::as_str).unwrap_or_else(|| panic!("GoBGP path without NEXT_HOP: {p}"));
            (nh.to_string(), p["neighbor-ip"].as_str().unwrap_or("").to_string())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn add_path_with_gobgp() {
    require_lab!();
    const VIP: &str = "203.0.113.76/32";
    const VIP_PLAIN: &str = "203.0.113.77/32";
    let lab = Lab::new(GOBGP_ID);
    let (n1, hops, n5) = nodes(&lab);
    let hop = |i: usize| hops[i].clone();
    let nb = |a: &str| Neighbor::new(a, 64513).timers(1, 3).connect_retry(1);
    let cfg = Config::new(64512, &lab.router_v4).listen().neighbor(nb(&n1.v4).add_path_rx()).neighbor(nb(&n5.v4));
    let gobgp = GoBgp::start(&lab, &lab.router, "gobgpd", &cfg);
    let s = Speakers::start(&lab, &n1, &n5, &hops, VIP, VIP_PLAIN);
    gobgp.wait_established(&n1.v4, Duration::from_secs(20));
    gobgp.wait_established(&n5.v4, Duration::from_secs(20));

    // Three paths from n1 in its Adj-RIB-In, each under the id its next hop gives; all three in the RIB.
    let want: Vec<(String, u64)> = (0..3).map(|i| (hop(i), id(&hop(i)))).collect();
    let three = poll("GoBGP: three paths from n1 with their ids", Duration::from_secs(20), || {
        let p = gobgp_adj_in(&gobgp, &n1.v4, VIP);
        (p == want).then_some(p)
    });
    println!("GoBGP adj-in of {VIP} from n1: {three:?}");
    let rib: Vec<(String, String)> = (0..3).map(|i| (hop(i), n1.v4.clone())).collect();
    assert_eq!(gobgp_rib(&gobgp, VIP), rib, "the RIB holds the three paths, all from n1");

    // n5's session has no ADD-PATH receive on GoBGP's side: one path, the first, without id.
    let plain = poll("GoBGP: n5's VIP", Duration::from_secs(20), || {
        let p = gobgp_adj_in(&gobgp, &n5.v4, VIP_PLAIN);
        (!p.is_empty()).then_some(p)
    });
    assert_eq!(plain, [(hop(0), 0)], "one path without ADD-PATH, the first");
    assert_eq!(gobgp_rib(&gobgp, VIP_PLAIN), [(hop(0), n5.v4.clone())]);
    s.check_paths_not_sent();

    // Withdraw n3's path: one UPDATE, the other two stay with their ids.
    let before = gobgp.updates_received(&n1.v4);
    s.keep_only(&[hop(0), hop(2)]);
    let kept: Vec<(String, u64)> = want.iter().filter(|(nh, _)| *nh != hop(1)).cloned().collect();
    poll("GoBGP: two paths from n1 left", Duration::from_secs(20), || {
        (gobgp_adj_in(&gobgp, &n1.v4, VIP) == kept).then_some(())
    });
    let rib: Vec<(String, String)> = [hop(0), hop(2)].into_iter().map(|h| (h, n1.v4.clone())).collect();
    poll("GoBGP: two paths in the RIB", Duration::from_secs(10), || (gobgp_rib(&gobgp, VIP) == rib).then_some(()));
    assert_eq!(gobgp.updates_received(&n1.v4) - before, 1, "one UPDATE (the withdrawal of one path id)");
}

// ---------------------------------------------------------------- BIRD

/// The next hops of BIRD's routes for `prefix`, each with the address it came from, sorted.
fn bird_routes(bird: &Bird, prefix: &str) -> Vec<(String, String)> {
    let out = bird.route_all(prefix);
    let mut from = String::new();
    let mut v = vec![];
    for l in out.lines() {
        if let Some((_, f)) = l.split_once(" from ") {
            from = f.split(']').next().unwrap_or("").trim().to_string();
        }
        if let Some(nh) = l.trim().strip_prefix("BGP.next_hop:") {
            v.push((nh.trim().to_string(), from.clone()));
        }
    }
    v.sort();
    v
}

/// One BGP segment of the capture: source, message types, OPEN
/// capability codes and ADD-PATH send/receive values, path ids (withdrawn
/// routes and NLRI, in order), NLRI and withdrawn prefixes.
#[derive(Debug, Default)]
struct Segment {
    src: String,
    types: Vec<u64>,
    caps: Vec<u64>,
    add_path: Vec<u64>,
    ids: Vec<u64>,
    nlri: Vec<String>,
    withdrawn: Vec<String>,
}

const FIELDS: [&str; 8] = [
    "frame.time_epoch",
    "ip.src",
    "bgp.type",
    "bgp.cap.type",
    "bgp.cap.ap.sendreceive",
    "bgp.nlri_path_id",
    "bgp.nlri_prefix",
    "bgp.withdrawn_prefix",
];

/// tshark on the router's bridge, printing [`FIELDS`] of every BGP
/// segment to or from `node` as it sees it; returns once it captures
/// (pings from `node` show up).
fn start_capture(lab: &Lab, node: &Node) -> Proc {
    let filter = format!("icmp or (tcp port 179 and host {})", node.v4);
    let mut a = vec!["tshark", "-i", "br0", "-n", "-l", "-f", &filter, "-T", "fields"];
    a.extend_from_slice(&["-E", "occurrence=a", "-E", "aggregator=,"]);
    for f in FIELDS {
        a.extend_from_slice(&["-e", f]);
    }
    let cap = lab.spawn(&lab.router, "tshark", &a);
    poll_every("tshark capturing", Duration::from_secs(30), Duration::from_millis(100), || {
        lab.check_running(&cap);
        run(&["ip", "netns", "exec", &node.ns, "ping", "-c", "1", "-W", "1", &lab.router_v4]);
        (!segments(&cap).is_empty()).then_some(())
    });
    cap
}

/// The captured packets so far (pings too: no BGP types).
fn segments(cap: &Proc) -> Vec<Segment> {
    let list = |s: &str| s.split(',').filter_map(|x| x.trim().parse().ok()).collect::<Vec<u64>>();
    let strs = |s: &str| s.split(',').filter(|x| !x.is_empty()).map(String::from).collect::<Vec<_>>();
    cap.output()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() != FIELDS.len() || f[0].parse::<f64>().is_err() {
                return None;
            }
            Some(Segment {
                src: f[1].into(),
                types: list(f[2]),
                caps: list(f[3]),
                add_path: list(f[4]),
                ids: list(f[5]),
                nlri: strs(f[6]),
                withdrawn: strs(f[7]),
            })
        })
        .collect()
}

/// Routes as (path id, prefix).
type Paths = BTreeSet<(u64, String)>;

/// The routes `src` announced, and those it withdrew, in the capture.
fn paths_on_the_wire(cap: &Proc, src: &str) -> (Paths, Paths) {
    let (mut reach, mut gone) = (BTreeSet::new(), BTreeSet::new());
    for s in segments(cap).into_iter().filter(|s| s.src == src && s.types.contains(&2)) {
        assert_eq!(s.ids.len(), s.nlri.len() + s.withdrawn.len(), "a path id per route (ADD-PATH): {s:?}");
        let (w, n) = s.ids.split_at(s.withdrawn.len());
        gone.extend(w.iter().copied().zip(s.withdrawn));
        reach.extend(n.iter().copied().zip(s.nlri));
    }
    (reach, gone)
}

#[test]
fn add_path_with_bird() {
    require_lab!();
    if let Some(reason) = lab_unavailable(&["tshark"]) {
        return skip_or_fail("the BIRD ADD-PATH test (its wire check)", &reason);
    }
    const VIP: &str = "203.0.113.78/32";
    const VIP_PLAIN: &str = "203.0.113.79/32";
    let lab = Lab::new(BIRD_ID);
    let (n1, hops, n5) = nodes(&lab);
    let hop = |i: usize| hops[i].clone();
    let nb = |name: &str, a: &str| Neighbor::new(a, 64513).name(name).timers(1, 3).connect_retry(1).receiving();
    let cfg =
        Config::new(64512, &lab.router_v4).kernel().neighbor(nb("n1", &n1.v4).add_path_rx()).neighbor(nb("n5", &n5.v4));
    let bird = Bird::start(&lab, &lab.router, "bird", &cfg);
    let cap = start_capture(&lab, &n1);
    let s = Speakers::start(&lab, &n1, &n5, &hops, VIP, VIP_PLAIN);
    bird.wait_established("n1", Duration::from_secs(20));
    bird.wait_established("n5", Duration::from_secs(20));

    // Three routes from n1, and one FIB route with three next hops (merge paths).
    let from_n1 = |hs: &[String]| sorted(hs).into_iter().map(|h| (h, n1.v4.clone())).collect::<Vec<_>>();
    poll("BIRD: three routes from n1", Duration::from_secs(20), || {
        (bird_routes(&bird, VIP) == from_n1(&hops)).then_some(())
    });
    println!("BIRD {VIP}:\n{}", bird.route_all(VIP));
    let vip = VIP.trim_end_matches("/32");
    poll("router FIB: three next hops", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, vip) == sorted(&hops)).then_some(())
    });

    // On the wire: capability 69 both ways (BIRD receive = 1, Mooring send+receive = 3), and
    // the three paths under the ids their next hops give.
    let open = |src: &str| {
        poll(&format!("the capture: {src}'s OPEN"), Duration::from_secs(10), || {
            segments(&cap).into_iter().find(|s| s.src == src && s.types.contains(&1))
        })
    };
    let (bird_open, our_open) = (open(&lab.router_v4), open(&n1.v4));
    println!("OPENs on the wire: BIRD {bird_open:?}, Mooring {our_open:?}");
    assert!(bird_open.caps.contains(&69) && bird_open.add_path == [1], "BIRD offers ADD-PATH receive: {bird_open:?}");
    assert!(our_open.caps.contains(&69) && our_open.add_path == [3], "Mooring offers send+receive: {our_open:?}");
    let want: Paths = hops.iter().map(|h| (id(h), vip.to_string())).collect();
    let wire = poll("the capture: n1's three paths", Duration::from_secs(10), || {
        let (reach, _) = paths_on_the_wire(&cap, &n1.v4);
        (reach == want).then_some(reach)
    });
    println!("paths on the wire from n1: {wire:?}");

    // n5's session has no ADD-PATH receive on BIRD's side: one route, the first.
    poll("BIRD: n5's VIP", Duration::from_secs(20), || {
        (bird_routes(&bird, VIP_PLAIN) == [(hop(0), n5.v4.clone())]).then_some(())
    });
    s.check_paths_not_sent();

    // Withdraw n3's path: BIRD receives one withdrawal (that path id alone) and no update.
    let (updates, withdraws) = bird.imports_received("n1");
    assert_eq!((updates, withdraws), (3, 0), "BIRD imported the three paths once each");
    s.keep_only(&[hop(0), hop(2)]);
    poll("BIRD: two routes from n1 left", Duration::from_secs(20), || {
        (bird_routes(&bird, VIP) == from_n1(&[hop(0), hop(2)])).then_some(())
    });
    poll("router FIB: two next hops", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, vip) == sorted(&[hop(0), hop(2)])).then_some(())
    });
    assert_eq!(bird.imports_received("n1"), (3, 1), "one withdrawal received, nothing re-sent");
    let gone = poll("the capture: the withdrawal", Duration::from_secs(10), || {
        let (_, gone) = paths_on_the_wire(&cap, &n1.v4);
        (!gone.is_empty()).then_some(gone)
    });
    assert_eq!(gone, BTreeSet::from([(id(&hop(1)), vip.to_string())]), "n3's path id withdrawn alone");
}
