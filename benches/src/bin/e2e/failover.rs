//! Failover (issue 6, benchmark 4), in the integration crate's namespace
//! lab (id 41: router `mit41-r` on 198.18.41.0/24, nodes `mit41-a` .11 and
//! `mit41-b` .12, `mit41-client` 198.19.41.2 behind the router). The router
//! runs FRR (bgpd + zebra, AS 64512, `timers 1 3`, `maximum-paths 16`, both
//! nodes static neighbours, `bgp graceful-restart`). Node A runs the speaker
//! under test (Mooring, GoBGP or BIRD, AS 64513, hold time 3 s, next hop
//! self), node B a Mooring speaker, both announcing the VIP 203.0.113.41/32,
//! so that the router's kernel FIB holds a two-way ECMP route. A fresh lab
//! per speaker kind; graceful restart off on A until part 3.
//!
//! 1. **kill -9**: SIGKILL the speaker on A; the time until the router's
//!    kernel FIB no longer has A's next hop (the kernel closes the dead
//!    process's TCP connection: FRR sees the session end at once).
//! 2. **blackhole**: nftables on A drops everything to and from the router
//!    (both ways); the time until A's next hop leaves the FIB, bounded by
//!    the 3 s hold time (FRR's hold timer fires 2-3 s after the last
//!    keepalive it got; keepalives every second). Then the same with BFD
//!    (FRR's bfdd, 300 ms x 3 on both sides) for Mooring and BIRD (GoBGP
//!    has no BFD).
//! 3. **graceful restart**: B withdraws; A (its speaker restarted with
//!    graceful restart, restart time 60 s) is the VIP's only next hop and
//!    serves it (the VIP is on A's `lo`). The client streams UDP datagrams
//!    with sequence numbers to the VIP, one per millisecond (a Python
//!    sender paced on the monotonic clock; a receiver bound to the VIP on A
//!    counts distinct sequence numbers), while A's speaker stops the
//!    graceful way, stays down 1.5 s and starts again as a restarting
//!    speaker (R bit). The stream runs from 1 s before the stop until 1 s
//!    after FRR holds a fresh (not stale) path again; lost = sent −
//!    received, with the longest run of lost datagrams. Mooring also runs
//!    a baseline without graceful restart (SIGTERM sends a Cease, the
//!    route goes), which shows that the zero is not for free.
//!
//! Times come from `ip -ts monitor route` in the router namespace (started
//! before FRR, TZ=UTC): each line is stamped with gettimeofday when `ip`
//! reads zebra's netlink change, compared with CLOCK_REALTIME taken right
//! before kill(2) / before `nft -f` runs. No polling.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use mooring_integration::{edge_frr, fib_nexthops, run as cmd, run_ok, Frr, Lab, Node, Proc};
use serde_json::Value;

use crate::daemons::{epoch, Bins, SpeakerKind};
use crate::lab::{check_interrupted, poll, sleep};
use crate::latency::parse_ts;
use crate::Opts;

const LAB_ID: u8 = 41;
const VIP: &str = "203.0.113.41";
const NODE_AS: u32 = 64513;
const ROUTER_AS: u32 = 64512;
/// The hold time every speaker on A is configured with (FRR's NODES: 3 s).
const HOLD_S: u64 = 3;
/// How long the speaker stays down in the graceful-restart run.
const DOWN: Duration = Duration::from_millis(1500);
/// Graceful-restart restart time advertised by the restarting speakers.
const RESTART_TIME: u32 = 60;
/// BFD (optional rows): intervals and multiplier on both sides.
const BFD_MS: u32 = 300;
const BFD_MULT: u32 = 3;

/// Graceful restart of the speaker on A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gr {
    /// No GR capability: a dead session is withdrawn at once.
    Off,
    /// GR capability (restart time 60 s), first start.
    On,
    /// GR capability with the Restart State bit: started again.
    Restarting,
}

/// One line of `ip -ts monitor route` about the VIP.
#[derive(Debug)]
struct FibEvent {
    /// Seconds since the epoch (the `ip -ts` stamp).
    t: f64,
    deleted: bool,
    vias: Vec<String>,
}

/// `ip -ts monitor route` in the router namespace, read as it grows.
struct Monitor {
    proc: Proc,
    f: File,
    /// Text after the last complete line.
    partial: String,
    /// The last record read, held back until a read finds nothing new (a
    /// multipath route's indented `nexthop` lines follow its first line).
    pending: Option<String>,
}

impl Monitor {
    fn start(lab: &Lab) -> Monitor {
        let proc = lab.spawn_env(&lab.router, "monitor", &["ip", "-ts", "monitor", "route"], &[("TZ", "UTC")]);
        // The file exists once spawned (the lab creates it).
        let f = File::open(&proc.log).unwrap_or_else(|e| panic!("{}: {e}", proc.log.display()));
        Monitor { proc, f, partial: String::new(), pending: None }
    }

    /// Forget everything printed so far.
    fn skip(&mut self) {
        let _ = self.f.seek(SeekFrom::End(0));
        self.partial.clear();
        self.pending = None;
    }

    /// The new records about the VIP. `ip` writes each netlink message
    /// with one flush; a multipath route is one stamped line followed by
    /// indented `nexthop via ...` lines. The last record is only returned
    /// once a later read finds nothing more (or the next record starts).
    fn events(&mut self) -> Vec<FibEvent> {
        let mut s = String::new();
        let _ = self.f.read_to_string(&mut s);
        let quiet = s.is_empty();
        self.partial.push_str(&s);
        let mut records: Vec<String> = self.pending.take().into_iter().collect();
        if let Some(end) = self.partial.rfind('\n') {
            let rest = self.partial.split_off(end + 1);
            let done = std::mem::replace(&mut self.partial, rest);
            for l in done.lines() {
                if l.starts_with('[') || records.is_empty() {
                    records.push(l.to_string());
                } else {
                    let r = records.last_mut().unwrap();
                    r.push(' ');
                    r.push_str(l.trim());
                }
            }
        }
        if !quiet || !self.partial.is_empty() {
            self.pending = records.pop();
        }
        records.iter().filter_map(|r| parse_record(r)).collect()
    }

    /// Everything up to now, the last record included.
    fn drain(&mut self) -> Vec<FibEvent> {
        std::thread::sleep(Duration::from_millis(5));
        let mut v = self.events();
        v.extend(self.events());
        v
    }

    /// Wait for the first VIP change at or after `t0` that leaves `nh` out
    /// of the route (or deletes the route); its time in ms after `t0`.
    fn wait_dropped(&mut self, lab: &Lab, nh: &str, t0: f64, timeout: Duration) -> Option<f64> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            check_interrupted();
            for e in self.events() {
                // A route without any `via` is not ours to judge (a bare
                // `nhid`): only a deletion or an explicit next-hop list counts.
                let dropped = e.deleted || (!e.vias.is_empty() && !e.vias.iter().any(|v| v == nh));
                if e.t >= t0 - 0.0005 && dropped {
                    return Some((e.t - t0) * 1e3);
                }
            }
            if lab.wait_exit(&self.proc, Duration::ZERO) {
                panic!("ip monitor exited:\n{}", self.proc.output());
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        None
    }
}

/// One `ip -ts monitor route` record, if it is about the VIP.
fn parse_record(r: &str) -> Option<FibEvent> {
    let t = parse_ts(r)?;
    let body = r.split_once(']')?.1.trim_start();
    let (deleted, body) = match body.strip_prefix("Deleted ") {
        Some(b) => (true, b),
        None => (false, body),
    };
    let dst = body.split_whitespace().next()?;
    if dst != VIP && dst != format!("{VIP}/32") {
        return None;
    }
    let toks: Vec<&str> = body.split_whitespace().collect();
    let vias = toks.windows(2).filter(|w| w[0] == "via").map(|w| w[1].to_string()).collect();
    Some(FibEvent { t, deleted, vias })
}

/// The lab of one speaker kind.
struct Bench<'a> {
    lab: Lab,
    kind: SpeakerKind,
    bins: &'a Bins,
    a: Node,
    b: Node,
    client: Node,
    frr: Frr,
    mon: Monitor,
    /// The speaker under test on A, when running.
    spk: Option<Proc>,
    /// The Mooring speaker on B, when running.
    spk_b: Option<Proc>,
    /// Streams run so far.
    streams: usize,
    /// Run BFD (300 ms x 3) with the router on the next start of A.
    bfd: bool,
    /// FRR's bfdd, once started.
    bfdd: Option<Proc>,
}

impl Drop for Bench<'_> {
    /// `MBENCH_KEEP_LOGS`: copy the lab's directory (logs, generated
    /// configs) before the lab removes it.
    fn drop(&mut self) {
        if std::env::var_os("MBENCH_KEEP_LOGS").is_some() {
            let to = std::env::temp_dir().join(format!("mbench-failover-{}-{}", std::process::id(), self.kind.name()));
            let _ = std::process::Command::new("cp").arg("-r").arg(self.lab.dir.path()).arg(&to).status();
            eprintln!("logs kept in {}", to.display());
        }
    }
}

fn mooring_args<'a>(bin: &'a str, node: &'a Node, peer: &'a str, prefix: &'a str) -> Vec<&'a str> {
    vec![bin, "announce", "--as", "64513", "--router-id", &node.v4, "--peer", peer, "--prefix", prefix]
}

impl<'a> Bench<'a> {
    fn new(kind: SpeakerKind, bins: &'a Bins) -> Bench<'a> {
        let lab = Lab::new(LAB_ID);
        // The monitor first: it sees every FIB change from FRR's start on.
        let mon = Monitor::start(&lab);
        let a = lab.node("a");
        let b = lab.node("b");
        let client = lab.client();
        run_ok(&["ip", "-n", &a.ns, "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
        let frr = edge_frr(
            &lab,
            &[&a.v4, &b.v4],
            &format!(" bgp graceful-restart\n bgp graceful-restart restart-time {RESTART_TIME}"),
        );
        Bench { lab, kind, bins, a, b, client, frr, mon, spk: None, spk_b: None, streams: 0, bfd: false, bfdd: None }
    }

    fn peer_spec(&self) -> String {
        format!("{},as={ROUTER_AS},hold={HOLD_S},connect-retry=1,families=ipv4", self.lab.router_v4)
    }

    fn start_b(&mut self) {
        let bin = self.bins.mooring.to_str().unwrap();
        let (peer, prefix) = (self.peer_spec(), format!("{VIP}/32"));
        let args = mooring_args(bin, &self.b, &peer, &prefix);
        self.spk_b =
            Some(self.lab.spawn_env(&self.b.ns, "mooring-b", &args, &[("MOORING_LOG", "info"), ("NO_COLOR", "1")]));
    }

    fn gobgp(&self, args: &[&str]) -> (bool, String, String) {
        let port = (50100 + LAB_ID as u16).to_string();
        let mut a = vec!["ip", "netns", "exec", &self.a.ns, "gobgp", "-p", &port];
        a.extend_from_slice(args);
        cmd(&a)
    }

    fn bird_sock(&self) -> String {
        self.lab.path("bird-a.ctl").to_str().unwrap().to_string()
    }

    /// Start the speaker under test on A.
    fn start_a(&mut self, gr: Gr) {
        assert!(self.spk.is_none(), "speaker on A already running");
        let r4 = self.lab.router_v4.clone();
        let ns = self.a.ns.clone();
        let p = match self.kind {
            SpeakerKind::Mooring => {
                let bin = self.bins.mooring.to_str().unwrap();
                let bfd = if self.bfd { format!(",bfd={BFD_MS}:{BFD_MULT}") } else { String::new() };
                let (peer, prefix) = (self.peer_spec() + &bfd, format!("{VIP}/32"));
                let rt = RESTART_TIME.to_string();
                let mut args = mooring_args(bin, &self.a, &peer, &prefix);
                if gr != Gr::Off {
                    args.extend_from_slice(&["--graceful-restart", &rt, "--graceful-stop"]);
                }
                if gr == Gr::Restarting {
                    args.push("--restarting");
                }
                self.lab.spawn_env(&ns, "mooring-a", &args, &[("MOORING_LOG", "info"), ("NO_COLOR", "1")])
            }
            SpeakerKind::GoBgp => {
                // The neighbour starts admin-down: the VIP is in the RIB
                // before the session can come up (a restarting gobgpd
                // defers its UPDATEs until the router's End-of-RIB only
                // for routes it already holds).
                let (grc, afgr) = if gr == Gr::Off {
                    (String::new(), "")
                } else {
                    (
                        format!(
                            "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = {RESTART_TIME}\n"
                        ),
                        "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n",
                    )
                };
                let conf = format!(
                    "[global.config]\n  as = {NODE_AS}\n  router-id = \"{a}\"\n\
                     [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{r4}\"\n    peer-as = {ROUTER_AS}\n    admin-down = true\n\
                     \x20 [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = {HOLD_S}\n    keepalive-interval = 1\n\
                     {grc}  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n{afgr}",
                    a = self.a.v4
                );
                let path = self.lab.path("gobgpd-a.toml");
                std::fs::write(&path, conf).unwrap();
                let api = format!("127.0.0.1:{}", 50100 + LAB_ID as u16);
                let mut args =
                    vec!["gobgpd", "-f", path.to_str().unwrap(), "-t", "toml", "--api-hosts", &api, "--pprof-disable"];
                if gr == Gr::Restarting {
                    args.push("-r");
                }
                let p = self.lab.spawn(&ns, "gobgpd-a", &args);
                poll("gobgpd API", Duration::from_secs(10), Duration::from_millis(50), || {
                    if self.lab.wait_exit(&p, Duration::ZERO) {
                        panic!("gobgpd exited:\n{}", p.output());
                    }
                    self.gobgp(&["global"]).0.then_some(())
                });
                let (ok, _, err) =
                    self.gobgp(&["global", "rib", "add", "-a", "ipv4", &format!("{VIP}/32"), "origin", "igp"]);
                assert!(ok, "gobgp global rib add: {err}");
                let (ok, _, err) = self.gobgp(&["neighbor", &r4, "enable"]);
                assert!(ok, "gobgp neighbor enable: {err}");
                p
            }
            SpeakerKind::Bird => {
                let gr_conf = match gr {
                    Gr::Off => "graceful restart off;".to_string(),
                    _ => format!("graceful restart on; graceful restart time {RESTART_TIME};"),
                };
                let (bfd_proto, bfd) = if self.bfd {
                    (
                        format!(
                            "protocol bfd {{ interface \"*\" {{ min rx interval {BFD_MS} ms; min tx interval {BFD_MS} ms; \
                             multiplier {BFD_MULT}; }}; }}\n"
                        ),
                        "bfd on;",
                    )
                } else {
                    (String::new(), "")
                };
                let conf = format!(
                    "router id {a};\nprotocol device {{}}\n{bfd_proto}protocol static vip {{ ipv4; route {VIP}/32 blackhole; }}\n\
                     protocol bgp edge {{\n  local {a} as {NODE_AS};\n  neighbor {r4} as {ROUTER_AS};\n  direct;\n\
                     \x20 hold time {HOLD_S}; keepalive time 1;\n  connect delay time 1; connect retry time 1; error wait time 1, 5;\n\
                     \x20 {gr_conf} {bfd}\n  ipv4 {{ import none; export all; }};\n}}\n",
                    a = self.a.v4
                );
                let path = self.lab.path("bird-a.conf");
                std::fs::write(&path, conf).unwrap();
                let sock = self.bird_sock();
                let _ = std::fs::remove_file(&sock);
                let pid = self.lab.path("bird-a.pid");
                let mut args =
                    vec!["bird", "-f", "-c", path.to_str().unwrap(), "-s", &sock, "-P", pid.to_str().unwrap()];
                if gr == Gr::Restarting {
                    args.push("-R");
                }
                let p = self.lab.spawn(&ns, "bird-a", &args);
                poll("bird control socket", Duration::from_secs(10), Duration::from_millis(50), || {
                    if self.lab.wait_exit(&p, Duration::ZERO) {
                        panic!("bird exited:\n{}", p.output());
                    }
                    let (ok, out, _) = cmd(&["birdc", "-s", &sock, "show", "status"]);
                    (ok && out.contains("Daemon is up")).then_some(())
                });
                p
            }
        };
        self.spk = Some(p);
    }

    /// Wait until the FIB's next hops for the VIP are exactly `want`.
    fn wait_fib(&self, want: &[&Node], timeout: Duration) {
        let mut want: Vec<String> = want.iter().map(|n| n.v4.clone()).collect();
        want.sort();
        poll(&format!("router FIB {VIP} via {want:?}"), timeout, Duration::from_millis(20), || {
            if let Some(p) = &self.spk {
                if self.lab.wait_exit(p, Duration::ZERO) {
                    panic!("{} exited:\n{}", p.name, p.output());
                }
            }
            (fib_nexthops(&self.lab.router, VIP) == want).then_some(())
        });
    }

    fn wait_gone(&mut self, timeout: Duration) {
        let p = self.spk.take().expect("speaker on A");
        if !self.lab.wait_exit(&p, timeout) {
            panic!("{} did not exit within {timeout:?}:\n{}", p.name, p.output());
        }
        // Forget it: the lab's cleanup must not signal a reused pid.
        self.lab.stop(&[p], Duration::ZERO);
    }

    /// FRR's bfdd's view of the session with A.
    fn bfd_status(&self) -> Option<String> {
        let (ok, out, _) = cmd(&["vtysh", "-N", &self.frr.inst, "-c", "show bfd peers json"]);
        if !ok {
            return None;
        }
        let v: Value = serde_json::from_str(&out).ok()?;
        let p = v.as_array()?.iter().find(|p| p["peer"] == self.a.v4.as_str())?;
        p["status"].as_str().map(String::from)
    }

    fn wait_bfd_up(&self) {
        poll("FRR bfdd: the session with A up", Duration::from_secs(20), Duration::from_millis(50), || {
            (self.bfd_status().as_deref() == Some("up")).then_some(())
        });
    }

    /// BFD between the router and A (bfdd, `neighbor A bfd`, 300 ms x 3 on
    /// both sides); A's speaker is restarted with BFD.
    fn enable_bfd(&mut self) {
        if self.bfdd.is_none() {
            let d = self.lab.path(&format!("frr-{}", self.frr.inst));
            let d = d.to_str().unwrap();
            // bfdd reads its own file (as in integration/tests/bfd.rs).
            std::fs::write(
                format!("{d}/bfdd.conf"),
                format!(
                    "bfd\n profile fast\n  receive-interval {BFD_MS}\n  transmit-interval {BFD_MS}\n  \
                     detect-multiplier {BFD_MULT}\n exit\nexit\n"
                ),
            )
            .unwrap();
            run_ok(&["chown", "frr:frr", &format!("{d}/bfdd.conf")]);
            let args = [
                "/usr/lib/frr/bfdd",
                "-N",
                &self.frr.inst,
                "-f",
                &format!("{d}/bfdd.conf"),
                "-i",
                &format!("{d}/bfdd.pid"),
                "--log",
                "stdout",
            ];
            self.bfdd = Some(self.lab.spawn(&self.lab.router, "bfdd", &args));
        }
        self.router_bgp(&[&format!("neighbor {} bfd", self.a.v4), &format!("neighbor {} bfd profile fast", self.a.v4)]);
        self.stop_a(false);
        self.bfd = true;
        self.start_a(Gr::Off);
        self.wait_fib(&[&self.a, &self.b], Duration::from_secs(30));
        self.wait_bfd_up();
    }

    fn disable_bfd(&mut self) {
        self.router_bgp(&[&format!("no neighbor {} bfd", self.a.v4)]);
        self.bfd = false;
    }

    /// `router bgp` configuration commands through vtysh.
    fn router_bgp(&self, lines: &[&str]) {
        let mut a = vec!["vtysh", "-N", &self.frr.inst, "-c", "configure terminal", "-c", "router bgp 64512"];
        for l in lines {
            a.extend_from_slice(&["-c", l]);
        }
        run_ok(&a);
    }

    /// kill -9 the speaker on A: ms until its next hop leaves the FIB.
    fn kill_sample(&mut self) -> f64 {
        let p = self.spk.as_ref().expect("speaker on A").clone();
        self.mon.skip();
        let t0 = epoch();
        p.signal(libc::SIGKILL);
        let ms = self.mon.wait_dropped(&self.lab, &self.a.v4, t0, Duration::from_secs(10));
        let ms = ms.unwrap_or_else(|| panic!("the FIB kept A's next hop 10 s after kill -9"));
        self.wait_gone(Duration::from_secs(5));
        ms
    }

    /// Blackhole A (nftables, both ways): ms until its next hop leaves the FIB.
    fn blackhole_sample(&mut self) -> f64 {
        self.mon.skip();
        let t0 = epoch();
        self.lab.silence(&self.a, &self.lab.router_v4);
        let ms = self.mon.wait_dropped(&self.lab, &self.a.v4, t0, Duration::from_secs(15));
        let ms = ms.unwrap_or_else(|| panic!("the FIB kept the blackholed node's next hop for 15 s"));
        self.lab.nft_clear(&self.a.ns);
        ms
    }

    /// Stop the speaker on A the way its graceful restart is documented
    /// (Mooring: SIGTERM with --graceful-stop; GoBGP: kill -9, as its
    /// SIGTERM sends a Cease; BIRD: `birdc graceful restart`), or with a
    /// Cease when `gr` is false (Mooring: SIGTERM without --graceful-stop).
    fn stop_a(&mut self, gr: bool) {
        let p = self.spk.as_ref().expect("speaker on A").clone();
        match (self.kind, gr) {
            (SpeakerKind::Mooring, _) => p.signal(libc::SIGTERM),
            (SpeakerKind::GoBgp, true) => p.signal(libc::SIGKILL),
            (SpeakerKind::Bird, true) => {
                run_ok(&["birdc", "-s", &self.bird_sock(), "graceful", "restart"]);
            }
            (_, false) => p.signal(libc::SIGTERM),
        }
        self.wait_gone(Duration::from_secs(10));
    }

    /// Start the UDP stream client → VIP (receiver on A); waits until it flows.
    fn start_stream(&mut self) -> (Proc, Proc) {
        // Own log files: a restarted process appends to its name's file.
        self.streams += 1;
        let n = self.streams;
        let receiver =
            self.lab.spawn(&self.a.ns, &format!("stream-receiver-{n}"), &["python3", "-c", &script(RECEIVER)]);
        receiver.wait_line("LISTENING", Duration::from_secs(10));
        let sender =
            self.lab.spawn(&self.client.ns, &format!("stream-sender-{n}"), &["python3", "-c", &script(SENDER)]);
        sender.wait_line("SENDING", Duration::from_secs(10));
        sleep(Duration::from_secs(1));
        for p in [&receiver, &sender] {
            assert!(!self.lab.wait_exit(p, Duration::ZERO), "{} exited:\n{}", p.name, p.output());
        }
        (sender, receiver)
    }

    /// Stop the stream: (sent, received, longest gap in datagrams).
    fn end_stream(&self, sender: &Proc, receiver: &Proc) -> (u64, u64, u64) {
        sender.signal(libc::SIGTERM);
        assert!(self.lab.wait_exit(sender, Duration::from_secs(5)), "the stream sender did not stop");
        sleep(Duration::from_millis(200));
        receiver.signal(libc::SIGTERM);
        assert!(self.lab.wait_exit(receiver, Duration::from_secs(5)), "the stream receiver did not stop");
        self.lab.stop(&[sender.clone(), receiver.clone()], Duration::ZERO);
        let sent = field(sender, "SENT", 1).unwrap_or_else(|| panic!("sender output:\n{}", sender.output()));
        let received = field(receiver, "RECEIVED", 1).unwrap_or_else(|| panic!("receiver:\n{}", receiver.output()));
        let gap = field(receiver, "RECEIVED", 2).unwrap_or(0);
        (sent, received, gap)
    }

    /// The client streams to the VIP through a restart of A's speaker.
    fn stream(&mut self, gr: bool) -> Stream {
        let prefix = format!("{VIP}/32");
        let (sender, receiver) = self.start_stream();
        self.mon.skip();
        let t0 = Instant::now();
        self.stop_a(gr);
        let stopped = t0.elapsed();
        if gr {
            let stale = poll("FRR keeps the path, stale", Duration::from_secs(5), Duration::from_millis(20), || {
                let p = self.frr.paths(&prefix);
                match p.first() {
                    Some(p) if p["stale"] == true => Some(true),
                    // Withdrawn: GR did not hold it.
                    None => Some(false),
                    _ => None,
                }
            });
            if !stale {
                eprintln!("    {}: FRR did not keep the path after the graceful stop", self.kind.name());
            }
        }
        sleep(DOWN.saturating_sub(t0.elapsed() - stopped));
        self.start_a(if gr { Gr::Restarting } else { Gr::Off });
        self.frr.wait_established(&self.a.v4, Duration::from_secs(20));
        poll("FRR holds a fresh (not stale) path", Duration::from_secs(20), Duration::from_millis(20), || {
            let p = self.frr.paths(&prefix);
            (p.len() == 1 && p[0].get("stale").is_none()).then_some(())
        });
        self.wait_fib(&[&self.a], Duration::from_secs(10));
        let restart = t0.elapsed();
        sleep(Duration::from_secs(1));
        let (sent, received, max_gap) = self.end_stream(&sender, &receiver);
        // FIB changes of the VIP meanwhile: deletions and how long it was out.
        let (mut gaps, mut out_ms, mut gone_at) = (0, 0.0, None);
        for e in self.mon.drain() {
            let gone = e.deleted || e.vias.is_empty();
            match (gone, gone_at) {
                (true, None) => {
                    gaps += 1;
                    gone_at = Some(e.t);
                }
                (false, Some(t)) => {
                    out_ms += (e.t - t) * 1e3;
                    gone_at = None;
                }
                _ => {}
            }
        }
        Stream { sent, received, max_gap, fib_gaps: gaps, fib_out_ms: out_ms, restart_s: restart.as_secs_f64() }
    }
}

/// The stream's sender (client): one UDP datagram with a sequence number
/// every `STREAM_INTERVAL_MS` (paced on the monotonic clock, no bursts to
/// catch up), unconnected so that ICMP errors do not stop it; prints
/// `SENT n` on SIGTERM.
const SENDER: &str = r#"
import socket, signal, time
stop = False
def h(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, h)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst, iv, n = (VIP, PORT), INTERVAL / 1000.0, 0
print('SENDING', flush=True)
t = time.monotonic()
while not stop:
    try:
        s.sendto(n.to_bytes(8, 'big'), dst)
    except OSError:
        pass
    n += 1
    t += iv
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)
    else:
        t = time.monotonic()
print('SENT', n, flush=True)
"#;

/// The receiver on node A (bound to the VIP): prints `RECEIVED distinct
/// longest-gap` (in packets) on SIGTERM.
const RECEIVER: &str = r#"
import socket, signal
stop = False
def h(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, h)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((VIP, PORT))
s.settimeout(0.05)
seen = set()
print('LISTENING', flush=True)
while not stop:
    try:
        seen.add(int.from_bytes(s.recv(64)[:8], 'big'))
    except (socket.timeout, InterruptedError):
        pass
v = sorted(seen)
gap = max([b - a - 1 for a, b in zip(v, v[1:])], default=0)
print('RECEIVED', len(v), gap, flush=True)
"#;

const STREAM_PORT: u16 = 9000;
/// One datagram per millisecond.
const STREAM_INTERVAL_MS: f64 = 1.0;

fn script(text: &str) -> String {
    text.replace("VIP", &format!("'{VIP}'"))
        .replace("PORT", &STREAM_PORT.to_string())
        .replace("INTERVAL", &STREAM_INTERVAL_MS.to_string())
}

/// The number after `word` on the process's output line starting with it.
fn field(p: &Proc, word: &str, i: usize) -> Option<u64> {
    p.output().lines().find(|l| l.starts_with(word))?.split_whitespace().nth(i)?.parse().ok()
}

#[derive(Debug, Clone)]
struct Stream {
    sent: u64,
    received: u64,
    /// The longest run of consecutive datagrams lost.
    max_gap: u64,
    /// Times the VIP left the router's FIB.
    fib_gaps: usize,
    fib_out_ms: f64,
    /// From the stop to the restarted speaker's route being fresh in FRR.
    restart_s: f64,
}

impl Stream {
    fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

#[derive(Debug, Default)]
struct Row {
    kill: Vec<f64>,
    blackhole: Vec<f64>,
    /// Blackhole with BFD between the router and A.
    bfd: Vec<f64>,
    gr: Option<Stream>,
    /// FRR's view of A's GR capability (`remoteGrMode`).
    gr_mode: String,
    /// Mooring only: the same restart without graceful restart.
    no_gr: Option<Stream>,
    error: Option<String>,
}

fn how_stopped(kind: SpeakerKind) -> &'static str {
    match kind {
        SpeakerKind::Mooring => "SIGTERM (`--graceful-stop`), restarted with `--restarting`",
        SpeakerKind::GoBgp => "kill -9 (gobgpd's SIGTERM sends a Cease), restarted with `gobgpd -r`",
        SpeakerKind::Bird => "`birdc graceful restart`, restarted with `bird -R`",
    }
}

fn measure(kind: SpeakerKind, o: &Opts, bins: &Bins, row: &mut Row) {
    let (kills, blackholes, bfds) = if o.quick { (3, 1, 1) } else { (10, 5, 5) };
    let name = kind.name();
    let t = Instant::now();
    let mut b = Bench::new(kind, bins);
    b.start_b();
    b.start_a(Gr::Off);
    b.wait_fib(&[&b.a, &b.b], Duration::from_secs(30));
    eprintln!("  failover {name}: both next hops in the FIB after {:.1} s", t.elapsed().as_secs_f64());
    for i in 0..kills {
        // Let the new session settle (keepalives flowing) before the kill.
        sleep(Duration::from_millis(300));
        let ms = b.kill_sample();
        eprintln!("  failover {name}: kill -9 #{}: A's next hop left the FIB after {ms:.1} ms", i + 1);
        row.kill.push(ms);
        assert_eq!(fib_nexthops(&b.lab.router, VIP), vec![b.b.v4.clone()], "B still serves the VIP");
        b.start_a(Gr::Off);
        b.wait_fib(&[&b.a, &b.b], Duration::from_secs(30));
    }
    for i in 0..blackholes {
        sleep(Duration::from_millis(500));
        let ms = b.blackhole_sample();
        eprintln!(
            "  failover {name}: blackhole #{}: A's next hop left the FIB after {ms:.0} ms (hold {HOLD_S} s)",
            i + 1
        );
        row.blackhole.push(ms);
        b.wait_fib(&[&b.a, &b.b], Duration::from_secs(30));
    }
    // The same with BFD (GoBGP has none).
    if kind != SpeakerKind::GoBgp && bfds > 0 && std::path::Path::new("/usr/lib/frr/bfdd").exists() {
        b.enable_bfd();
        for i in 0..bfds {
            sleep(Duration::from_millis(500));
            let ms = b.blackhole_sample();
            eprintln!(
                "  failover {name}: blackhole with BFD #{}: A's next hop left the FIB after {ms:.0} ms \
                 ({BFD_MS} ms x {BFD_MULT})",
                i + 1
            );
            row.bfd.push(ms);
            b.wait_fib(&[&b.a, &b.b], Duration::from_secs(30));
            b.wait_bfd_up();
        }
        b.disable_bfd();
    }

    // Graceful restart: A alone, with GR.
    let pb = b.spk_b.take().unwrap();
    pb.signal(libc::SIGTERM);
    assert!(b.lab.wait_exit(&pb, Duration::from_secs(5)), "mooring on B exits on SIGTERM");
    b.lab.stop(&[pb], Duration::ZERO);
    b.stop_a(false);
    b.start_a(Gr::On);
    b.wait_fib(&[&b.a], Duration::from_secs(30));
    b.frr.wait_established(&b.a.v4, Duration::from_secs(10));
    row.gr_mode = b
        .frr
        .neighbor(&b.a.v4)
        .and_then(|n| n.pointer("/gracefulRestartInfo/remoteGrMode").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| "?".into());
    sleep(Duration::from_millis(500));
    let s = b.stream(true);
    eprintln!(
        "  failover {name}: graceful restart ({}; FRR sees GR mode {}): {} sent, {} lost; VIP left the FIB {} \
         time(s); route fresh again {:.1} s after the stop",
        how_stopped(kind),
        row.gr_mode,
        s.sent,
        s.lost(),
        s.fib_gaps,
        s.restart_s
    );
    row.gr = Some(s);
    if kind == SpeakerKind::Mooring {
        b.stop_a(true);
        b.start_a(Gr::Off);
        b.wait_fib(&[&b.a], Duration::from_secs(30));
        let prefix = format!("{VIP}/32");
        poll("a fresh path", Duration::from_secs(20), Duration::from_millis(20), || {
            let p = b.frr.paths(&prefix);
            (p.len() == 1 && p[0].get("stale").is_none()).then_some(())
        });
        sleep(Duration::from_millis(500));
        let s = b.stream(false);
        eprintln!(
            "  failover {name}: restart without GR (SIGTERM, Cease): {} sent, {} lost; VIP out of the FIB for {:.0} ms",
            s.sent,
            s.lost(),
            s.fib_out_ms
        );
        row.no_gr = Some(s);
    }
    eprintln!("  failover {name}: done in {:.1} s", t.elapsed().as_secs_f64());
}

fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    let p50 = crate::median(&mut s);
    Some((s[0], p50, s[s.len() - 1]))
}

pub fn run(o: &Opts, bins: &Bins) -> bool {
    let started = Instant::now();
    let mut rows: Vec<(SpeakerKind, Row)> = vec![];
    for &kind in &o.speakers {
        let mut row = Row::default();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| measure(kind, o, bins, &mut row)));
        if let Err(e) = r {
            // Ctrl-C ends the whole run.
            check_interrupted();
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            let msg = msg.lines().next().unwrap_or("").to_string();
            eprintln!("  failover {}: FAILED: {msg}", kind.name());
            row.error = Some(msg);
        }
        rows.push((kind, row));
    }
    eprintln!("  failover: {:.0} s", started.elapsed().as_secs_f64());
    report(&rows)
}

fn report(rows: &[(SpeakerKind, Row)]) -> bool {
    let mooring = rows.iter().find(|(k, _)| *k == SpeakerKind::Mooring).map(|(_, r)| r);
    let fmt_runs = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ");
    // One table: a line per (speaker, what, samples, why not measured),
    // the ratio against Mooring's line of the same `what`.
    type Line<'r> = (SpeakerKind, &'r str, &'r [f64], Option<String>);
    let table = |title: &str, lines: &[Line], decimals: usize| {
        println!("\n### {title}\n");
        println!("| speaker on the node | detection | samples | min ms | p50 ms | max ms | this/Mooring (p50) | samples (ms) |");
        println!("|---|---|---|---|---|---|---|---|");
        for (k, what, v, why) in lines {
            let m50 = lines
                .iter()
                .find(|(mk, mw, ..)| *mk == SpeakerKind::Mooring && mw == what)
                .and_then(|(_, _, mv, _)| stats(mv))
                .map(|s| s.1);
            match stats(v) {
                Some((min, p50, max)) => {
                    let ratio = match (k, m50) {
                        (SpeakerKind::Mooring, _) => String::new(),
                        (_, Some(m)) => format!("{:.2}×", p50 / m),
                        _ => "-".into(),
                    };
                    let d = decimals;
                    println!(
                        "| {} | {what} | {} | {min:.d$} | {p50:.d$} | {max:.d$} | {ratio} | {} |",
                        k.name(),
                        v.len(),
                        fmt_runs(v)
                    );
                }
                None => println!(
                    "| {} | {what} | 0 | - | - | - | - | {} |",
                    k.name(),
                    why.clone().map(|e| format!("not measured: {e}")).unwrap_or_default()
                ),
            }
        }
    };
    let why = |r: &Row| r.error.clone();
    let kill: Vec<Line> = rows.iter().map(|(k, r)| (*k, "TCP connection closed", &r.kill[..], why(r))).collect();
    table("Failover: kill -9 of the node's speaker → the router's kernel FIB drops its next hop", &kill, 1);
    let hold = format!("hold timer ({HOLD_S} s)");
    let bfd = format!("BFD ({BFD_MS} ms × {BFD_MULT})");
    let mut bh: Vec<Line> = rows.iter().map(|(k, r)| (*k, hold.as_str(), &r.blackhole[..], why(r))).collect();
    for (k, r) in rows {
        let why = match k {
            SpeakerKind::GoBgp => Some("GoBGP has no BFD".to_string()),
            _ => why(r),
        };
        bh.push((*k, bfd.as_str(), &r.bfd[..], why));
    }
    table("Failover: node blackholed (nftables drops both ways) → its next hop leaves the router's kernel FIB", &bh, 0);

    println!(
        "\n### Graceful restart: a client streams UDP to the VIP (1 datagram/ms) through a restart of its only \
         node's speaker\n"
    );
    println!(
        "| speaker on the node | graceful restart | stopped / started | down | sent | lost | longest gap | \
         lost vs Mooring | VIP left the FIB | route fresh again after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let m_lost = mooring.and_then(|m| m.gr.as_ref()).map(|s| s.lost());
    let line = |k: SpeakerKind, gr: &str, how: &str, s: &Stream, vs: String| {
        let fib =
            if s.fib_gaps == 0 { "never".to_string() } else { format!("{}× ({:.0} ms)", s.fib_gaps, s.fib_out_ms) };
        println!(
            "| {} | {gr} | {how} | {:.1} s | {} | {} | {:.0} ms | {vs} | {fib} | {:.1} s |",
            k.name(),
            DOWN.as_secs_f64(),
            s.sent,
            s.lost(),
            s.max_gap as f64 * STREAM_INTERVAL_MS,
            s.restart_s
        );
    };
    for (k, r) in rows {
        match &r.gr {
            Some(s) => {
                let vs = match (k, m_lost) {
                    (SpeakerKind::Mooring, _) => String::new(),
                    (_, Some(m)) if m == s.lost() => "same".into(),
                    (_, Some(m)) => format!("{:+}", s.lost() as i64 - m as i64),
                    _ => "-".into(),
                };
                line(*k, &format!("on (FRR sees `{}`)", r.gr_mode), how_stopped(*k), s, vs);
            }
            None => println!(
                "| {} | on | {} | - | - | - | - | - | - | {} |",
                k.name(),
                how_stopped(*k),
                r.error.as_deref().map(|e| format!("not measured: {e}")).unwrap_or_default()
            ),
        }
        if let Some(s) = &r.no_gr {
            line(*k, "**off** (baseline)", "SIGTERM (Cease), started again", s, String::new());
        }
    }

    println!("\n### Targets (failover)\n");
    let mut all_met = true;
    // Not measured because Mooring's run failed counts as missed; because
    // it was not asked for (`--speakers`) or bfdd is missing, not.
    let failed = mooring.and_then(|m| m.error.as_ref());
    let mut check = |what: String, ok: Option<bool>| {
        let verdict = match (ok, failed) {
            (Some(true), _) => "met",
            (Some(false), _) => {
                all_met = false;
                "MISSED"
            }
            (None, Some(_)) => {
                all_met = false;
                "not measured (the run failed)"
            }
            (None, None) => "not measured",
        };
        println!("- {what}: {verdict}");
    };
    let m_kill = mooring.and_then(|m| stats(&m.kill));
    check(
        format!(
            "Mooring kill -9: the router drops the next hop on the connection's end, not the hold timer \
             (max < {HOLD_S} s; got {})",
            m_kill.map(|s| format!("max {:.0} ms", s.2)).unwrap_or("-".into())
        ),
        m_kill.map(|s| s.2 < HOLD_S as f64 * 1e3),
    );
    let m_bh = mooring.and_then(|m| stats(&m.blackhole));
    check(
        format!(
            "Mooring blackholed: withdrawn within the hold time + 1 s (≤ {} s; got {})",
            HOLD_S + 1,
            m_bh.map(|s| format!("max {:.2} s", s.2 / 1e3)).unwrap_or("-".into())
        ),
        m_bh.map(|s| s.2 <= (HOLD_S + 1) as f64 * 1e3),
    );
    let m_bfd = mooring.and_then(|m| stats(&m.bfd));
    let bfd_detect = (BFD_MS * BFD_MULT) as f64;
    check(
        format!(
            "Mooring blackholed, BFD {BFD_MS} ms × {BFD_MULT}: withdrawn within the detection time + 1 s (≤ {:.1} s; \
             got {})",
            (bfd_detect + 1e3) / 1e3,
            m_bfd.map(|s| format!("max {:.2} s", s.2 / 1e3)).unwrap_or("-".into())
        ),
        m_bfd.map(|s| s.2 <= bfd_detect + 1e3),
    );
    let m_gr = mooring.and_then(|m| m.gr.as_ref());
    check(
        format!(
            "Mooring graceful restart: zero packets lost (got {})",
            m_gr.map(|s| format!("{} of {}", s.lost(), s.sent)).unwrap_or("-".into())
        ),
        m_gr.map(|s| s.lost() == 0),
    );
    let m_base = mooring.and_then(|m| m.no_gr.as_ref());
    check(
        format!(
            "(control) the same restart without graceful restart loses packets (got {})",
            m_base.map(|s| format!("{} of {}", s.lost(), s.sent)).unwrap_or("-".into())
        ),
        m_base.map(|s| s.lost() > 0),
    );
    all_met
}
