//! Mooring <-> BIRD 2: eBGP and iBGP, IPv4 and IPv6 sessions, with and
//! without TCP MD5, each side active or passive; the attributes BIRD
//! receives (read back with `birdc show route all`); withdrawal.
//!
//! | session | family | type | MD5 | mooring | BIRD    |
//! |---------|--------|------|-----|---------|---------|
//! | n1 v4   | IPv4   | eBGP | no  | active  | passive |
//! | n1 v6   | IPv6   | eBGP | yes | passive | active  |
//! | n2 v4   | IPv4   | iBGP | yes | passive | active  |
//! | n2 v6   | IPv6   | iBGP | no  | active  | passive |

use mooring_integration::{
    check_withdrawal, start_interop_speakers, wait_daemon_established, wait_route, wait_speakers_established,
    InteropVips, EBGP_V6_PASSWORD, IBGP_V4_PASSWORD,
};
use mooring_lab::{require_lab, Bird, Config, Lab, Neighbor};

const ID: u8 = 3;

/// The value of attribute line `key:` in `show route all` output.
fn field(out: &str, key: &str) -> String {
    out.lines().find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string())).unwrap_or_default()
}

#[test]
fn interop_bird() {
    require_lab!();
    let lab = Lab::new(ID);
    let n1 = lab.node("n1");
    let n2 = lab.node("n2");
    let (r4, r6) = (lab.router_v4.clone(), lab.router_v6.clone());
    // The router's side of the matrix in the module doc (hold time 9 s),
    // importing what the speakers send.
    let nb = |name: &str, local: &str, addr: &str, asn| {
        Neighbor::new(addr, asn).name(name).local(local).timers(3, 9).connect_retry(1).receiving()
    };
    let cfg = Config::new(64512, &r4)
        .neighbor(nb("n1v4", &r4, &n1.v4, 64513).passive())
        .neighbor(nb("n1v6", &r6, &n1.v6, 64513).password(EBGP_V6_PASSWORD))
        .neighbor(nb("n2v4", &r4, &n2.v4, 64512).password(IBGP_V4_PASSWORD))
        .neighbor(nb("n2v6", &r6, &n2.v6, 64512).passive());
    let bird = Bird::start(&lab, &lab.router, "bird", &cfg);

    let vips = InteropVips {
        ebgp_v4: "203.0.113.31/32",
        ebgp_v6: "2001:db8:ffff:3::1/128",
        ibgp_v4: "203.0.113.32/32",
        ibgp_v6: "2001:db8:ffff:103::/64",
    };
    let (vip1, vip1_6, vip2, vip2_6) = (vips.ebgp_v4, vips.ebgp_v6, vips.ibgp_v4, vips.ibgp_v6);
    let (m1, m2) = start_interop_speakers(&lab, &n1, &n2, &vips);
    wait_daemon_established("BIRD", &["n1v4", "n1v6", "n2v4", "n2v6"], |p, t| bird.wait_established(p, t));
    println!("{}", bird.birdc("show protocols"));
    wait_speakers_established(&lab, &m1, &m2);
    let route = |p: &str| wait_route("BIRD", p, |p| Some(bird.route_all(p)).filter(|out| !out.is_empty()));
    // eBGP, IPv4
    let out = route(vip1);
    println!("BIRD {vip1}:\n{out}");
    assert_eq!(field(&out, "BGP.as_path:"), "64513 64513 64513", "AS path with 2 prepends");
    assert_eq!(field(&out, "BGP.next_hop:"), n1.v4, "next hop self");
    assert_eq!(field(&out, "BGP.med:"), "50");
    assert_eq!(field(&out, "BGP.local_pref:"), "100", "BIRD's default for eBGP routes (none received)");
    assert_eq!(field(&out, "BGP.community:"), "(64513,100) (65535,65281)", "communities incl. no-export");
    assert_eq!(field(&out, "BGP.large_community:"), "(64513, 1, 2)");
    assert!(out.contains(&format!("via {} on br0", n1.v4)), "BIRD resolved the next hop");
    // eBGP, IPv6 (MD5, mooring passive)
    let out = route(vip1_6);
    println!("BIRD {vip1_6}:\n{out}");
    assert_eq!(field(&out, "BGP.as_path:"), "64513 64513 64513");
    assert_eq!(field(&out, "BGP.next_hop:"), n1.v6, "IPv6 next hop self (global only)");
    assert_eq!(field(&out, "BGP.med:"), "50");
    assert_eq!(field(&out, "BGP.community:"), "(64513,100) (65535,65281)");
    assert_eq!(field(&out, "BGP.large_community:"), "(64513, 1, 2)");
    // iBGP, IPv4 (MD5, mooring passive)
    let out = route(vip2);
    println!("BIRD {vip2}:\n{out}");
    assert_eq!(field(&out, "BGP.as_path:"), "", "iBGP: empty AS path, no prepend");
    assert!(out.contains("BGP.as_path:"));
    assert_eq!(field(&out, "BGP.next_hop:"), n2.v4);
    assert_eq!(field(&out, "BGP.med:"), "7");
    assert_eq!(field(&out, "BGP.local_pref:"), "300", "LOCAL_PREF on iBGP");
    assert_eq!(field(&out, "BGP.community:"), "(64512,200)");
    assert_eq!(field(&out, "BGP.large_community:"), "(64512, 3, 4)");
    // iBGP, IPv6 /64
    let out = route(vip2_6);
    println!("BIRD {vip2_6}:\n{out}");
    assert_eq!(field(&out, "BGP.as_path:"), "");
    assert_eq!(field(&out, "BGP.next_hop:"), n2.v6);
    assert_eq!(field(&out, "BGP.local_pref:"), "300");
    assert_eq!(field(&out, "BGP.med:"), "7");

    // Withdrawal: SIGTERM (Cease) for n1, SIGKILL for n2.
    check_withdrawal(&lab, "BIRD", &m1, &m2, &vips, |p| bird.route_all(p).is_empty());
    println!("{}", bird.birdc("show protocols"));
}
