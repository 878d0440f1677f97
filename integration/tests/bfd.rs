//! BFD (RFC 5880/5881) against FRR's bfdd: with `neighbor X bfd` on the
//! edge and `bfd` on our peer, a silently dead node leaves the edge FIB in
//! well under a second although the BGP hold time is 30 s.

use std::time::{Duration, Instant};

use mooring_lab::{fib_nexthops, poll, require_lab, Config, Frr, Lab, Neighbor, Node};

const ID: u8 = 23;
/// How long BFD may take to drop a silent node: the detection time is 3 x
/// 300 ms after the last packet (0.6-0.9 s after the silence), plus the
/// edge's ~70 ms from session down to FIB; measured 0.79-0.98 s (the
/// failover benchmark's BFD rows, RESULTS.md). 1.5 s leaves half a second
/// for a loaded machine and is 20 times shorter than the BGP hold time.
const BFD_WINDOW: Duration = Duration::from_millis(1500);

/// The edge: AS 64512, n1 and n2 as static neighbours with hold 30 s, BFD
/// (300 ms x 3, bfdd's defaults, spelled out in a profile) with n1 only
/// (the lab starts bfdd for it).
fn edge(lab: &Lab, n1: &Node, n2: &Node) -> Frr {
    let node = |n: &Node| Neighbor::external(&n.v4).timers(10, 30).connect_retry(1);
    let cfg = Config::new(64512, &lab.router_v4).neighbor(node(n1).bfd(300, 3)).neighbor(node(n2));
    Frr::start(lab, &lab.router, "frr", &cfg)
}

#[test]
fn bfd_detects_a_dead_node_fast() {
    require_lab!();
    let lab = Lab::new(ID);
    let vip = "203.0.113.230";
    let n1 = lab.node("n1");
    let n2 = lab.node("n2");
    let frr = edge(&lab, &n1, &n2);
    let r4 = lab.router_v4.clone();
    let prefix = format!("{vip}/32");
    let spk = |n: &Node, name: &str, bfd: &str| {
        let peer = format!("{r4},as=64512,hold=30,connect-retry=1,families=ipv4{bfd}");
        lab.mooring(&n.ns, name, &["--as", "64513", "--router-id", &n.v4, "--peer", &peer, "--prefix", &prefix])
    };
    let m1 = spk(&n1, "mooring-n1", ",bfd=300:3");
    let _m2 = spk(&n2, "mooring-n2", "");
    let mut both = vec![n1.v4.clone(), n2.v4.clone()];
    both.sort();
    poll(&format!("edge FIB {vip} via {both:?}"), Duration::from_secs(20), || {
        (fib_nexthops(&lab.router, vip) == both).then_some(())
    });
    let up =
        poll("FRR bfdd: peer n1 up", Duration::from_secs(15), || frr.bfd_peer(&n1.v4).filter(|p| p["status"] == "up"));
    println!("FRR bfdd peer: {up}");
    assert_eq!(up["detect-multiplier"], 3);
    assert_eq!(up["remote-detect-multiplier"], 3);
    assert_eq!(up["remote-receive-interval"], 300);
    assert_eq!(up["remote-transmit-interval"], 300);
    m1.wait_count("BFD session up", 1, Duration::from_secs(5));
    let nb = frr.neighbor(&n1.v4).unwrap();
    println!("FRR neighbor n1 hold time: {} ms, bfd: {}", nb["bgpTimerHoldTimeMsecs"], nb["peerBfdInfo"]);
    // The session holds: bfdd's uptime reaches 2 s (a flap would reset it),
    // and our side saw it come up once and never go down.
    poll("FRR bfdd: peer n1 up for 2 s", Duration::from_secs(10), || {
        frr.bfd_peer(&n1.v4).filter(|p| p["status"] == "up" && p["uptime"].as_u64() >= Some(2))
    });
    assert_eq!(m1.count("BFD session up"), 1, "BFD flapped:\n{}", m1.output());
    assert_eq!(m1.count("BFD session down"), 0, "BFD flapped:\n{}", m1.output());

    // Silently blackhole n1: nothing between n1 and the edge any more.
    lab.silence(&n1, &r4);
    let t0 = Instant::now();
    let (mut fib_gone, mut ours) = (None, None);
    while t0.elapsed() < Duration::from_secs(10) && (fib_gone.is_none() || ours.is_none()) {
        if fib_gone.is_none() && !fib_nexthops(&lab.router, vip).contains(&n1.v4) {
            fib_gone = Some(t0.elapsed());
        }
        if ours.is_none() && m1.output().contains("BFD session down") {
            ours = Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "blackholed n1: edge FIB dropped its next hop after {fib_gone:?}, mooring's BFD declared the edge down \
         after {ours:?} (BGP hold time 30 s, BFD 300 ms x 3)"
    );
    let fib_gone = fib_gone.unwrap_or_else(|| panic!("edge FIB kept n1 for 10 s; bfdd: {:?}", frr.bfd_peer(&n1.v4)));
    assert!(fib_gone < BFD_WINDOW, "detection took {fib_gone:?}");
    let ours = ours.unwrap_or_else(|| panic!("mooring did not log the BFD down:\n{}", m1.output()));
    assert!(ours < BFD_WINDOW, "our detection took {ours:?}");
    assert_eq!(fib_nexthops(&lab.router, vip), vec![n2.v4.clone()]);
    // Our side tore the BGP session down with Cease / BFD Down (6/10).
    let cease = format!("peer {r4} Established -> Idle (sent NOTIFICATION Cease/BFD Down (6/10))");
    m1.wait_count(&cease, 1, Duration::from_secs(3));
    let out = m1.output();
    let line = out.lines().find(|l| l.contains("BFD session down")).unwrap();
    println!("mooring: {line}\nmooring: {cease}");
    assert!(line.contains("control detection time expired"), "{line}");
    let bfd = frr.bfd_peer(&n1.v4).unwrap();
    println!("FRR bfdd after the blackhole: status {} diagnostic {}", bfd["status"], bfd["diagnostic"]);
    assert_eq!(bfd["status"], "down");

    // Traffic flows again: BFD and the session come back.
    lab.nft_clear(&n1.ns);
    let t1 = Instant::now();
    poll("edge FIB has n1 again", Duration::from_secs(30), || (fib_nexthops(&lab.router, vip) == both).then_some(()));
    poll("FRR bfdd: peer n1 up again", Duration::from_secs(15), || {
        frr.bfd_peer(&n1.v4).filter(|p| p["status"] == "up")
    });
    m1.wait_count("BFD session up", 2, Duration::from_secs(5));
    println!("after removing the filter BGP and BFD were back in {:?}", t1.elapsed());
}
