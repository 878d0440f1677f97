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

use std::time::{Duration, Instant};

use mooring_integration::{poll, require_lab, Bird, Lab};

const ID: u8 = 3;

fn proto(name: &str, local: &str, addr: &str, asn: u32, v6: bool, passive: bool, password: Option<&str>) -> String {
    let pw = password.map(|p| format!("  password \"{p}\";\n")).unwrap_or_default();
    let passive = if passive { "  passive on;\n" } else { "" };
    let ch = if v6 { "ipv6" } else { "ipv4" };
    format!(
        "protocol bgp {name} {{
  local {local} as 64512;
  neighbor {addr} as {asn};
  direct;
{pw}{passive}  hold time 9; keepalive time 3;
  connect delay time 1; connect retry time 1; error wait time 1, 5;
  {ch} {{ import all; export none; gateway direct; }};
}}
"
    )
}

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
    let conf = format!(
        "router id {r4};\nprotocol device {{}}\n{}{}{}{}",
        proto("n1v4", &r4, &n1.v4, 64513, false, true, None),
        proto("n1v6", &r6, &n1.v6, 64513, true, false, Some("s2-secret")),
        proto("n2v4", &r4, &n2.v4, 64512, false, false, Some("s3-secret")),
        proto("n2v6", &r6, &n2.v6, 64512, true, true, None),
    );
    let bird = Bird::start(&lab, &lab.router, &conf);

    let (vip1, vip1_6) = ("203.0.113.31/32", "2001:db8:ffff:3::1/128");
    let (vip2, vip2_6) = ("203.0.113.32/32", "2001:db8:ffff:103::/64");
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
    for p in ["n1v4", "n1v6", "n2v4", "n2v6"] {
        bird.wait_established(p, Duration::from_secs(30));
    }
    println!("all 4 sessions Established in BIRD after {:?}", t0.elapsed());
    println!("{}", bird.birdc("show protocols"));
    for m in [&m1, &m2] {
        m.wait_count(&format!("{r4} OpenConfirm -> Established"), 1, Duration::from_secs(5));
        m.wait_count(&format!("{r6} OpenConfirm -> Established"), 1, Duration::from_secs(5));
    }
    let route = |p: &str| {
        poll(&format!("BIRD has {p}"), Duration::from_secs(10), || {
            let out = bird.route_all(p);
            (!out.is_empty()).then_some(out)
        })
    };
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
    let t = Instant::now();
    m1.signal(libc::SIGTERM);
    poll("BIRD dropped n1's routes", Duration::from_secs(5), || {
        (bird.route_all(vip1).is_empty() && bird.route_all(vip1_6).is_empty()).then_some(())
    });
    println!("SIGTERM n1: routes gone from BIRD after {:?}", t.elapsed());
    assert!(lab.wait_exit(&m1, Duration::from_secs(5)), "mooring n1 exits on SIGTERM");
    let t = Instant::now();
    m2.signal(libc::SIGKILL);
    poll("BIRD dropped n2's routes", Duration::from_secs(15), || {
        (bird.route_all(vip2).is_empty() && bird.route_all(vip2_6).is_empty()).then_some(())
    });
    println!("SIGKILL n2: routes gone from BIRD after {:?}", t.elapsed());
    println!("{}", bird.birdc("show protocols"));
}
