//! The failover lab and how it is operated: the FRR edge and the route
//! monitor on the router, the speaker under test on A and Mooring on B,
//! graceful-restart and BFD settings of A's speaker, nftables blackholes,
//! and the UDP stream from the client to the VIP. No timing here
//! (driver.rs).

use std::time::Duration;

use mooring_lab::{
    edge_frr, fib_nexthops, poll_every, sleep, Bfd, Config, Frr, Lab, Mooring, Neighbor, Node, Proc, RouteMonitor,
    Running,
};
use serde_json::Value;

use super::{BFD_MS, BFD_MULT, HOLD_S, LAB_ID, NODE_AS, RESTART_TIME, ROUTER_AS, STREAM_INTERVAL_MS, VIP};
use crate::common::SpeakerKind;

/// Graceful restart of the speaker on A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gr {
    /// No GR capability: a dead session is withdrawn at once.
    Off,
    /// GR capability (restart time 60 s), first start.
    On,
    /// GR capability with the Restart State bit: started again.
    Restarting,
}

/// The lab of one speaker kind.
pub struct Scenario {
    pub lab: Lab,
    pub kind: SpeakerKind,
    pub a: Node,
    pub b: Node,
    client: Node,
    pub frr: Frr,
    pub mon: RouteMonitor,
    /// The speaker under test on A, when running.
    spk: Option<Running>,
    /// The Mooring speaker on B, when running.
    spk_b: Option<Proc>,
    /// Streams run so far.
    streams: usize,
    /// Run BFD (300 ms x 3) with the router on the next start of A.
    bfd: bool,
}

impl Scenario {
    pub fn new(kind: SpeakerKind) -> Scenario {
        let lab = Lab::new(LAB_ID);
        // The monitor first: it sees every FIB change from FRR's start on.
        let mon = RouteMonitor::start(&lab, &lab.router);
        let a = lab.node("a");
        let b = lab.node("b");
        let client = lab.client();
        mooring_lab::run_ok(&["ip", "-n", &a.ns, "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
        let frr = edge_frr(&lab, &[&a.v4, &b.v4], Some(RESTART_TIME));
        Scenario { lab, kind, a, b, client, frr, mon, spk: None, spk_b: None, streams: 0, bfd: false }
    }

    /// A node's speaker towards the router: hold 3 s, keepalive 1 s, the VIP.
    fn config(&self, node: &Node, bfd: bool) -> Config {
        let mut n = Neighbor::new(&self.lab.router_v4, ROUTER_AS).timers(1, HOLD_S).connect_retry(1);
        if bfd {
            n = n.bfd(BFD_MS, BFD_MULT);
        }
        Config::new(NODE_AS, &node.v4).neighbor(n).prefixes([format!("{VIP}/32")])
    }

    pub fn start_b(&mut self) {
        let cfg = self.config(&self.b, false);
        self.spk_b = Some(Mooring::start(&self.lab, &self.b.ns, "mooring-b", &cfg).proc().clone());
    }

    /// Stop B's speaker (SIGTERM: a Cease, its route goes).
    pub fn stop_b(&mut self) {
        let pb = self.spk_b.take().expect("speaker on B");
        pb.signal(libc::SIGTERM);
        assert!(self.lab.wait_exit(&pb, Duration::from_secs(5)), "mooring on B exits on SIGTERM");
        self.lab.stop(&[pb], Duration::ZERO);
    }

    /// Start the speaker under test on A.
    pub fn start_a(&mut self, gr: Gr) {
        assert!(self.spk.is_none(), "speaker on A already running");
        let mut cfg = self.config(&self.a, self.bfd).restarting(gr == Gr::Restarting);
        if gr != Gr::Off {
            cfg = cfg.graceful_restart(RESTART_TIME);
        }
        let name = format!("{}-a", self.kind.name().to_lowercase());
        self.spk = Some(self.kind.daemon().start(&self.lab, &self.a.ns, &name, &cfg));
    }

    /// The speaker on A.
    pub fn speaker(&self) -> &Proc {
        self.spk.as_ref().expect("speaker on A").proc()
    }

    /// Wait until the FIB's next hops for the VIP are exactly `want`.
    pub fn wait_fib(&self, want: &[&Node], timeout: Duration) {
        let mut want: Vec<String> = want.iter().map(|n| n.v4.clone()).collect();
        want.sort();
        poll_every(&format!("router FIB {VIP} via {want:?}"), timeout, Duration::from_millis(20), || {
            if let Some(s) = &self.spk {
                self.lab.check_running(s.proc());
            }
            (fib_nexthops(&self.lab.router, VIP) == want).then_some(())
        });
    }

    /// Wait until the speaker on A has exited (it was told to), and forget it.
    pub fn wait_gone(&mut self, timeout: Duration) {
        let s = self.spk.take().expect("speaker on A");
        let p = s.proc();
        if !self.lab.wait_exit(p, timeout) {
            panic!("{} did not exit within {timeout:?}:\n{}", p.name, p.output());
        }
        // Forget it: the lab's cleanup must not signal a reused pid.
        self.lab.stop(&s.procs(), Duration::ZERO);
    }

    /// FRR's bfdd's view of the session with A.
    fn bfd_status(&self) -> Option<String> {
        self.frr.bfd_peer(&self.a.v4)?["status"].as_str().map(String::from)
    }

    pub fn wait_bfd_up(&self) {
        poll_every("FRR bfdd: the session with A up", Duration::from_secs(20), Duration::from_millis(50), || {
            (self.bfd_status().as_deref() == Some("up")).then_some(())
        });
    }

    /// BFD between the router and A (bfdd, `neighbor A bfd`, 300 ms x 3 on
    /// both sides); A's speaker is restarted with BFD.
    pub fn enable_bfd(&mut self) {
        let bfd = Bfd { interval_ms: BFD_MS, multiplier: BFD_MULT };
        if self.frr.bfdd.is_none() {
            self.frr.start_bfdd(&self.lab, &[bfd]);
        }
        let a = &self.a.v4;
        self.frr.configure(&[&format!("neighbor {a} bfd"), &format!("neighbor {a} bfd profile {}", bfd.profile())]);
        self.stop_a(false);
        self.bfd = true;
        self.start_a(Gr::Off);
        self.wait_fib(&[&self.a, &self.b], Duration::from_secs(30));
        self.wait_bfd_up();
    }

    pub fn disable_bfd(&mut self) {
        self.frr.configure(&[&format!("no neighbor {} bfd", self.a.v4)]);
        self.bfd = false;
    }

    /// Stop the speaker on A the way its graceful restart is documented
    /// (Mooring: SIGTERM with --graceful-stop; GoBGP: kill -9, as its
    /// SIGTERM sends a Cease; BIRD: `birdc graceful restart`), or with a
    /// Cease when `gr` is false (SIGTERM; Mooring without --graceful-stop).
    pub fn stop_a(&mut self, gr: bool) {
        let s = self.spk.as_ref().expect("speaker on A");
        match (s, gr) {
            (Running::GoBgp(g), true) => g.proc.signal(libc::SIGKILL),
            (Running::Bird(b), true) => {
                b.birdc("graceful restart");
            }
            (s, _) => s.proc().signal(libc::SIGTERM),
        }
        self.wait_gone(Duration::from_secs(10));
    }

    /// FRR's view of A's graceful-restart capability (`remoteGrMode`).
    pub fn gr_mode(&self) -> String {
        self.frr
            .neighbor(&self.a.v4)
            .and_then(|n| n.pointer("/gracefulRestartInfo/remoteGrMode").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| "?".into())
    }

    /// FRR holds one path for the VIP, not stale.
    pub fn fresh_path(&self) -> bool {
        let p = self.frr.paths(&format!("{VIP}/32"));
        p.len() == 1 && p[0].get("stale").is_none()
    }

    /// FRR's path for the VIP: Some(true) stale, Some(false) withdrawn,
    /// None fresh.
    pub fn path_stale(&self) -> Option<bool> {
        match self.frr.paths(&format!("{VIP}/32")).first() {
            Some(p) if p["stale"] == true => Some(true),
            None => Some(false),
            _ => None,
        }
    }

    /// Start the UDP stream client → VIP (receiver on A); waits until it flows.
    pub fn start_stream(&mut self) -> (Proc, Proc) {
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
            self.lab.check_running(p);
        }
        (sender, receiver)
    }

    /// Stop the stream: (sent, received, longest gap in datagrams).
    pub fn end_stream(&self, sender: &Proc, receiver: &Proc) -> (u64, u64, u64) {
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
}

/// The stream's sender (client): one UDP datagram with a sequence number
/// every `STREAM_INTERVAL_MS` (paced on the monotonic clock, no bursts to
/// catch up), unconnected so that ICMP errors do not stop it; prints
/// `SENT n` on SIGTERM. After [`PRELUDE`].
const SENDER: &str = r#"
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
/// longest-gap` (in packets) on SIGTERM. After [`PRELUDE`].
const RECEIVER: &str = r#"
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

/// What both stream scripts start with: SIGTERM sets `stop`; `s` is a UDP socket.
const PRELUDE: &str = r#"
import socket, signal, time
stop = False
def h(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, h)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
"#;

const STREAM_PORT: u16 = 9000;

/// [`PRELUDE`] and `text`, with the VIP, port and interval filled in.
fn script(text: &str) -> String {
    (PRELUDE.to_string() + text)
        .replace("VIP", &format!("'{VIP}'"))
        .replace("PORT", &STREAM_PORT.to_string())
        .replace("INTERVAL", &STREAM_INTERVAL_MS.to_string())
}

/// The number after `word` on the process's output line starting with it.
fn field(p: &Proc, word: &str, i: usize) -> Option<u64> {
    p.output().lines().find(|l| l.starts_with(word))?.split_whitespace().nth(i)?.parse().ok()
}
