//! The Mooring side of the interop tests against FRR, GoBGP and BIRD: the
//! same two speakers and the same session matrix for every daemon, which
//! runs on the router (AS 64512, `lab.router_v4` / `lab.router_v6`).
//!
//! | session | family | type | MD5                   | mooring | daemon  |
//! |---------|--------|------|-----------------------|---------|---------|
//! | n1 v4   | IPv4   | eBGP | no                    | active  | passive |
//! | n1 v6   | IPv6   | eBGP | [`EBGP_V6_PASSWORD`]  | passive | active  |
//! | n2 v4   | IPv4   | iBGP | [`IBGP_V4_PASSWORD`]  | passive | active  |
//! | n2 v6   | IPv6   | iBGP | no                    | active  | passive |

use std::time::{Duration, Instant};

use mooring_lab::{poll, Attrs, Config, Lab, Mooring, Neighbor, Node, Proc};

/// TCP MD5 password of the eBGP IPv6 session (n1 v6).
pub const EBGP_V6_PASSWORD: &str = "s2-secret";
/// TCP MD5 password of the iBGP IPv4 session (n2 v4).
pub const IBGP_V4_PASSWORD: &str = "s3-secret";

/// The prefixes each speaker announces (one test's own, so that the tests
/// can run in parallel without sharing anything).
#[derive(Debug, Clone, Copy)]
pub struct InteropVips<'a> {
    /// Announced by n1 (eBGP, AS 64513) over IPv4.
    pub ebgp_v4: &'a str,
    /// Announced by n1 (eBGP, AS 64513) over IPv6.
    pub ebgp_v6: &'a str,
    /// Announced by n2 (iBGP, AS 64512) over IPv4.
    pub ibgp_v4: &'a str,
    /// Announced by n2 (iBGP, AS 64512) over IPv6.
    pub ibgp_v6: &'a str,
}

/// Start `mooring announce` on `n1` (eBGP, AS 64513: MED 50, communities
/// 64513:100 and no-export, large community 64513:1:2, 2 prepends) and on
/// `n2` (iBGP, AS 64512: MED 7, LOCAL_PREF 300, community 64512:200, large
/// community 64512:3:4, 2 prepends, which iBGP ignores), both peering with
/// the router over IPv4 and IPv6 as in the module table (hold time 9 s).
/// Returns (n1's speaker, n2's speaker).
pub fn start_interop_speakers(lab: &Lab, n1: &Node, n2: &Node, vips: &InteropVips) -> (Proc, Proc) {
    let (r4, r6) = (&lab.router_v4, &lab.router_v6);
    let ebgp = Config::new(64513, &n1.v4)
        .listen()
        .neighbor(Neighbor::new(r4, 64512).hold(9).connect_retry(1))
        .neighbor(Neighbor::new(r6, 64512).passive().password(EBGP_V6_PASSWORD).hold(9))
        .prefixes([vips.ebgp_v4, vips.ebgp_v6])
        .attrs(Attrs {
            med: Some(50),
            communities: vec!["64513:100".into(), "no-export".into()],
            large_communities: vec!["64513:1:2".into()],
            prepend: 2,
            ..Attrs::default()
        });
    let ibgp = Config::new(64512, &n2.v4)
        .listen()
        .neighbor(Neighbor::new(r4, 64512).passive().password(IBGP_V4_PASSWORD).hold(9))
        .neighbor(Neighbor::new(r6, 64512).hold(9).connect_retry(1))
        .prefixes([vips.ibgp_v4, vips.ibgp_v6])
        .attrs(Attrs {
            med: Some(7),
            local_pref: Some(300),
            communities: vec!["64512:200".into()],
            large_communities: vec!["64512:3:4".into()],
            prepend: 2,
            ..Attrs::default()
        });
    let m1 = Mooring::start(lab, &n1.ns, "mooring-n1", &ebgp);
    let m2 = Mooring::start(lab, &n2.ns, "mooring-n2", &ibgp);
    (m1.proc().clone(), m2.proc().clone())
}

/// Wait (30 s each) until `daemon` has every one of `sessions` (peer
/// addresses or protocol names, as `wait` takes them) Established; `wait`
/// panics when one is not after the timeout it is given.
pub fn wait_daemon_established(daemon: &str, sessions: &[impl AsRef<str>], wait: impl Fn(&str, Duration)) {
    let t0 = Instant::now();
    for s in sessions {
        wait(s.as_ref(), Duration::from_secs(30));
    }
    println!("all {} sessions Established in {daemon} after {:?}", sessions.len(), t0.elapsed());
}

/// Wait (5 s each) until both speakers logged their IPv4 and their IPv6
/// session with the router as Established.
pub fn wait_speakers_established(lab: &Lab, m1: &Proc, m2: &Proc) {
    let (r4, r6) = (&lab.router_v4, &lab.router_v6);
    for m in [m1, m2] {
        m.wait_count(&format!("{r4} OpenConfirm -> Established"), 1, Duration::from_secs(5));
        m.wait_count(&format!("{r6} OpenConfirm -> Established"), 1, Duration::from_secs(5));
    }
}

/// Poll (10 s) until `lookup(prefix)` finds the route in `daemon`.
pub fn wait_route<T>(daemon: &str, prefix: &str, mut lookup: impl FnMut(&str) -> Option<T>) -> T {
    poll(&format!("{daemon} has {prefix}"), Duration::from_secs(10), || lookup(prefix))
}

/// How long `daemon` may take to drop a stopped speaker's routes: "at
/// once", on the connection's end (SIGTERM: a Cease; SIGKILL: the kernel
/// closes the socket). With hold time 9 s and KEEPALIVEs every 3 s a
/// hold-timer expiry cannot come before 6 s. Measured: 5-280 ms (FRR
/// slowest, BIRD fastest); 3 s is 10 times the slowest.
const AT_ONCE: Duration = Duration::from_secs(3);

/// Withdrawal: SIGTERM (Cease) n1's speaker, its routes must be gone from
/// `daemon` within [`AT_ONCE`] and it must exit within 5 s; then SIGKILL
/// n2's speaker, its routes must be gone within [`AT_ONCE`] too.
/// `gone(prefix)` is true when `daemon` has no route for `prefix`; the
/// caller has seen every route present.
pub fn check_withdrawal(
    lab: &Lab,
    daemon: &str,
    m1: &Proc,
    m2: &Proc,
    vips: &InteropVips,
    gone: impl Fn(&str) -> bool,
) {
    let t = Instant::now();
    m1.signal(libc::SIGTERM);
    poll(&format!("{daemon} dropped n1's routes"), AT_ONCE, || {
        (gone(vips.ebgp_v4) && gone(vips.ebgp_v6)).then_some(())
    });
    println!("SIGTERM n1: routes gone from {daemon} after {:?}", t.elapsed());
    assert!(lab.wait_exit(m1, Duration::from_secs(5)), "mooring n1 exits on SIGTERM");
    let t = Instant::now();
    m2.signal(libc::SIGKILL);
    poll(&format!("{daemon} dropped n2's routes"), AT_ONCE, || {
        (gone(vips.ibgp_v4) && gone(vips.ibgp_v6)).then_some(())
    });
    println!("SIGKILL n2: routes gone from {daemon} after {:?}", t.elapsed());
}
