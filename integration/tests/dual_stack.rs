//! Dual-stack next hops against FRR, with traffic from a client behind
//! the router to a VIP of each family:
//!
//! - an IPv6 VIP over an IPv4 session: MP_REACH_NLRI (AFI 2) with the
//!   node's IPv6 InternalIP as next hop; FRR activates the IPv4 neighbor
//!   under `address-family ipv6 unicast`. A second node without an IPv6
//!   InternalIP announces its IPv4 VIP but not the IPv6 one, and says so.
//! - an IPv4 VIP from an IPv6-only node (no IPv4 on its link): RFC 8950
//!   extended next hop, FRR with `neighbor X capability extended-nexthop`;
//!   FRR's FIB has `203.0.113.x via inet6 <node>`.
//!
//! Links: 198.18.X.0/24 and fd00:198:18:X::/64 (the client: 198.19.X.0/24
//! and fd00:198:19:X::/64); VIPs from 203.0.113.0/24 and 2001:db8:ffff::/48.

use std::path::Path;
use std::time::{Duration, Instant};

use mooring_lab::{fib_nexthops, poll, require_lab, run_ok, Config, Frr, Lab, Neighbor, Node, Proc};

/// The IPv6 prefix of the lab's link (ULA; 2001:db8:ffff::/48 is for VIPs).
fn link6(lab: &Lab) -> String {
    format!("fd00:198:18:{}::", lab.id)
}

/// The router's address on the IPv6 link: fd00:198:18:X::1 on `br0`.
fn ula_link(lab: &Lab) {
    run_ok(&["ip", "-n", &lab.router, "addr", "add", &format!("{}1/64", link6(lab)), "dev", "br0", "nodad"]);
}

/// A node on the router's bridge with host number `host`: IPv6
/// fd00:198:18:X::host always, 198.18.X.host when `v4`; default routes via
/// the router (an IPv6-only node's IPv4 default route goes via the
/// router's IPv6 address).
fn node(lab: &Lab, name: &str, host: u8, v4: bool) -> Node {
    let (r, l6) = (&lab.router, link6(lab));
    let ns = format!("mit{}-{name}", lab.id);
    lab.add_ns(&ns);
    let port = format!("v{host}");
    run_ok(&["ip", "-n", r, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
    run_ok(&["ip", "-n", r, "link", "set", &port, "master", "br0", "up"]);
    let v6 = format!("{l6}{host}");
    run_ok(&["ip", "-n", &ns, "addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"]);
    run_ok(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
    run_ok(&["ip", "-n", &ns, "-6", "route", "add", "default", "via", &format!("{l6}1")]);
    let v4_addr = if v4 {
        let a = format!("198.18.{}.{host}", lab.id);
        run_ok(&["ip", "-n", &ns, "addr", "add", &format!("{a}/24"), "dev", "eth0"]);
        run_ok(&["ip", "-n", &ns, "route", "add", "default", "via", &lab.router_v4]);
        a
    } else {
        // Kernel ≥ 5.2: an IPv4 route via an IPv6 gateway (RFC 8950's data plane).
        run_ok(&["ip", "-n", &ns, "-4", "route", "add", "default", "via", "inet6", &format!("{l6}1"), "dev", "eth0"]);
        String::new()
    };
    Node { ns, v4: v4_addr, v6 }
}

/// The lab's client, with IPv6 too (fd00:198:19:X::2, router ::1).
fn client(lab: &Lab) -> Node {
    let mut c = lab.client();
    let p = format!("fd00:198:19:{}::", lab.id);
    run_ok(&["ip", "-n", &lab.router, "addr", "add", &format!("{p}1/64"), "dev", "vclient", "nodad"]);
    run_ok(&["ip", "-n", &c.ns, "addr", "add", &format!("{p}2/64"), "dev", "eth0", "nodad"]);
    run_ok(&["ip", "-n", &c.ns, "-6", "route", "add", "default", "via", &format!("{p}1")]);
    c.v6 = format!("{p}2");
    c
}

/// FRR on the router, AS 64512, with `neighbors` (timers 1 3, connect 1)
/// and `extra` configuration under `router bgp`.
fn frr(lab: &Lab, neighbors: &[&str], extra: &str) -> Frr {
    let mut cfg = Config::new(64512, &lab.router_v4);
    for n in neighbors {
        cfg = cfg.neighbor(Neighbor::new(n, 64513).timers(1, 3).connect_retry(1));
    }
    Frr::start(lab, &lab.router, "frr", &cfg.extra(extra))
}

fn node_yaml(name: &str, internal_ips: &[&str]) -> String {
    let a: Vec<String> = internal_ips.iter().map(|ip| format!("{{type: InternalIP, address: \"{ip}\"}}")).collect();
    format!("---\napiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\nstatus: {{addresses: [{}]}}\n", a.join(", "))
}

/// A Cluster Service asking for `ip`, port 8080.
fn service_yaml(name: &str, ip: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
         spec: {{type: LoadBalancer, externalTrafficPolicy: Cluster, loadBalancerIP: \"{ip}\", ports: [{{port: 8080, protocol: TCP}}]}}\n"
    )
}

fn start(lab: &Lab, n: &Node, name: &str, config: &Path) -> Proc {
    let state = lab.path(&format!("{name}-state"));
    lab.mooring_standalone(&n.ns, name, name, config, &["--state-dir", state.to_str().unwrap()])
}

/// Put `vip` on the node's `lo` and answer TCP 8080 there with `text`.
fn serve(lab: &Lab, n: &Node, vip: &str, text: &str) -> Proc {
    let len = if vip.contains(':') { 128 } else { 32 };
    run_ok(&["ip", "-n", &n.ns, "addr", "add", &format!("{vip}/{len}"), "dev", "lo"]);
    lab.responder(&n.ns, vip, 8080, text)
}

/// One TCP connection from the client to `vip`:8080; what it answered.
fn connect(client: &Node, vip: &str) -> String {
    let script = format!(
        "import socket\ns = socket.create_connection(('{vip}', 8080), timeout=3)\nprint(s.recv(64).decode().strip())\n"
    );
    run_ok(&["ip", "netns", "exec", &client.ns, "python3", "-c", &script]).trim().to_string()
}

/// The next hop addresses of FRR's paths for `prefix` (its RIB), sorted.
fn rib_nexthops(frr: &Frr, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = frr
        .paths(prefix)
        .iter()
        .flat_map(|p| p["nexthops"].as_array().cloned().unwrap_or_default())
        .filter(|nh| nh["scope"].as_str() != Some("link-local"))
        .filter_map(|nh| nh["ip"].as_str().map(String::from))
        .collect();
    v.sort();
    v
}

const V6_VIP: &str = "2001:db8:ffff::10";
const V4_VIP_DUAL: &str = "203.0.113.40";

#[test]
fn ipv6_vip_over_an_ipv4_session() {
    require_lab!();
    let lab = Lab::new(44);
    ula_link(&lab);
    let n1 = node(&lab, "n1", 11, true);
    // Dual-stack link, but its Node lists no IPv6 InternalIP.
    let n2 = node(&lab, "n2", 12, true);
    let client = client(&lab);
    let (a1, a2) = (n1.v4.clone(), n2.v4.clone());
    let extra = format!(
        " address-family ipv6 unicast\n  neighbor {a1} activate\n  neighbor {a2} activate\n exit-address-family\n"
    );
    let frr = frr(&lab, &[&a1, &a2], &extra);
    let config = lab.path("manifests");
    std::fs::create_dir_all(&config).unwrap();
    let manifests = format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: 64513}}\n\
         ---\napiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\n\
         spec: {{peerAddress: {}, peerAs: 64512, holdTime: 3s, families: [ipv4-unicast, ipv6-unicast]}}\n\
         ---\napiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: v6}}\nspec: {{address: \"{V6_VIP}-2001:db8:ffff::1f\"}}\n\
         ---\napiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: v4}}\nspec: {{address: {V4_VIP_DUAL}-203.0.113.47}}\n{}{}{}{}",
        lab.router_v4,
        service_yaml("web6", V6_VIP),
        service_yaml("web4", V4_VIP_DUAL),
        node_yaml("n1", &[&a1, &n1.v6]),
        node_yaml("n2", &[&a2]),
    );
    std::fs::write(config.join("all.yaml"), manifests).unwrap();
    let _r = [serve(&lab, &n1, V6_VIP, "n1"), serve(&lab, &n1, V4_VIP_DUAL, "n1")];
    let t0 = Instant::now();
    let p1 = start(&lab, &n1, "n1", &config);
    let p2 = start(&lab, &n2, "n2", &config);

    // FRR's RIB and FIB: the IPv6 VIP via n1's IPv6 address (its global
    // next hop), over the IPv4 session.
    poll("the IPv6 VIP in the router's FIB via n1's IPv6 address", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, V6_VIP) == vec![n1.v6.clone()]).then_some(())
    });
    println!("IPv6 VIP in the edge FIB via {} after {:?}", n1.v6, t0.elapsed());
    println!("FRR: {}", frr.vtysh(&format!("show bgp ipv6 unicast {V6_VIP}/128")));
    assert_eq!(rib_nexthops(&frr, &format!("{V6_VIP}/128")), vec![n1.v6.clone()]);
    let nb = frr.neighbor(&a1).expect("FRR has the session with n1");
    assert!(nb["addressFamilyInfo"]["ipv6Unicast"].is_object(), "IPv6 unicast negotiated on the IPv4 session: {nb}");

    // n2 has no IPv6 next hop: its IPv4 VIP arrives (its Adj-RIB-Out was
    // computed: the later positive signal), its IPv6 one never leaves.
    poll("the IPv4 VIP via both nodes", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, V4_VIP_DUAL) == vec![a1.clone(), a2.clone()]).then_some(())
    });
    let line = p2.wait_line("routes of this family not announced", Duration::from_secs(5));
    assert!(line.contains("ipv6-unicast") && line.contains("no IPv6 next hop"), "{line}");
    assert_eq!(rib_nexthops(&frr, &format!("{V6_VIP}/128")), vec![n1.v6.clone()], "nothing from n2");
    let n2_v6 = frr.neighbor(&a2).unwrap()["addressFamilyInfo"]["ipv6Unicast"]["acceptedPrefixCounter"].clone();
    assert_eq!(n2_v6, 0, "n2 sent no IPv6 route");
    assert!(p1.lines_with("routes of this family not announced").is_empty(), "n1 has both next hops");

    // Traffic from the client to the IPv6 VIP through the router.
    assert_eq!(connect(&client, V6_VIP), "n1");
    println!("client -> [{V6_VIP}]:8080 answered by n1");
}

const V4_VIP: &str = "203.0.113.41";

#[test]
fn ipv4_vip_from_an_ipv6_only_node() {
    require_lab!();
    let lab = Lab::new(45);
    ula_link(&lab);
    let n1 = node(&lab, "n1", 18, false);
    let client = client(&lab);
    let extra = format!(
        " neighbor {v6} capability extended-nexthop\n address-family ipv4 unicast\n  neighbor {v6} activate\n \
         exit-address-family\n",
        v6 = n1.v6
    );
    let frr = frr(&lab, &[&n1.v6], &extra);
    let config = lab.path("manifests");
    std::fs::create_dir_all(&config).unwrap();
    // No IPv4 InternalIP: the router ID is set.
    let manifests = format!(
        "apiVersion: mooring.io/v1alpha1\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: 64513, routerId: 198.18.{}.18}}\n\
         ---\napiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {{name: edge}}\n\
         spec: {{peerAddress: \"{}1\", peerAs: 64512, holdTime: 3s, families: [ipv4-unicast]}}\n\
         ---\napiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: v4}}\nspec: {{address: {V4_VIP}-203.0.113.47}}\n{}{}",
        lab.id,
        link6(&lab),
        service_yaml("web4", V4_VIP),
        node_yaml("n1", &[&n1.v6]),
    );
    std::fs::write(config.join("all.yaml"), manifests).unwrap();
    let _r = serve(&lab, &n1, V4_VIP, "n1");
    let t0 = Instant::now();
    let p1 = start(&lab, &n1, "n1", &config);

    poll("the IPv4 VIP in the router's FIB via inet6 n1", Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, V4_VIP) == vec![n1.v6.clone()]).then_some(())
    });
    println!("IPv4 VIP in the edge FIB via {} after {:?}", n1.v6, t0.elapsed());
    let route = run_ok(&["ip", "-n", &lab.router, "-4", "route", "show", V4_VIP]);
    println!("router: ip -4 route show {V4_VIP}: {}", route.trim());
    assert!(route.contains(&format!("via inet6 {}", n1.v6)), "{route}");
    println!("FRR: {}", frr.vtysh(&format!("show bgp ipv4 unicast {V4_VIP}/32")));
    assert_eq!(rib_nexthops(&frr, &format!("{V4_VIP}/32")), vec![n1.v6.clone()]);
    let nb = frr.neighbor(&n1.v6).expect("FRR has the session with n1");
    let caps = &nb["neighborCapabilities"];
    assert_eq!(caps["extendedNexthop"], "advertisedAndReceived", "RFC 8950 negotiated, as FRR sees it: {caps}");
    assert!(p1.lines_with("routes of this family not announced").is_empty());

    // Traffic from the client (IPv4) to the VIP, through the router and an
    // IPv6 next hop; the node answers over its IPv4-via-IPv6 default route.
    assert_eq!(connect(&client, V4_VIP), "n1");
    println!("client -> {V4_VIP}:8080 answered by n1");

    // Withdrawal (MP_UNREACH_NLRI once RFC 8950 is negotiated): the
    // Service goes, the route leaves FRR's FIB.
    let t = Instant::now();
    let without = std::fs::read_to_string(config.join("all.yaml")).unwrap().replace(&service_yaml("web4", V4_VIP), "");
    std::fs::write(config.join(".all.yaml.tmp"), without).unwrap();
    std::fs::rename(config.join(".all.yaml.tmp"), config.join("all.yaml")).unwrap();
    poll("the IPv4 VIP withdrawn from the router's FIB", Duration::from_secs(10), || {
        fib_nexthops(&lab.router, V4_VIP).is_empty().then_some(())
    });
    println!("withdrawn from the edge FIB after {:?}", t.elapsed());
    assert_eq!(frr.neighbor_state(&n1.v6), "Established", "withdrawn, not torn down");
}
