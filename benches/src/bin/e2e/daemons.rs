//! The speakers (Mooring, GoBGP, BIRD) and receivers (the counting sink,
//! FRR) of the announce-throughput benchmark, each prepared with its N
//! routes loaded and its session to the receiver held back until
//! [`Speaker::enable`], so that the clock only runs from Established.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::lab::{poll, run, run_ok, sleep, Lab, Proc, FRR_INST, RCV_ADDR, SPK_ADDR, SPK_NS};

pub const SPEAKER_AS: u32 = 64513;
pub const RECEIVER_AS: u32 = 64512;
const GOBGP_API_PORT: &str = "50199";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerKind {
    Mooring,
    GoBgp,
    Bird,
}

impl SpeakerKind {
    pub fn name(self) -> &'static str {
        match self {
            SpeakerKind::Mooring => "Mooring",
            SpeakerKind::GoBgp => "GoBGP",
            SpeakerKind::Bird => "BIRD",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverKind {
    Sink,
    Frr,
}

impl ReceiverKind {
    pub fn name(self) -> &'static str {
        match self {
            ReceiverKind::Sink => "sink",
            ReceiverKind::Frr => "FRR",
        }
    }
}

/// The i-th benchmark prefix: 10.0.0.0 + i, as a /32.
pub fn prefix(i: u32) -> String {
    let a = std::net::Ipv4Addr::from(0x0A00_0000 + i);
    format!("{a}/32")
}

/// Paths of our own binaries (next to this one).
#[derive(Debug, Clone)]
pub struct Bins {
    pub mooring: PathBuf,
    pub sink: PathBuf,
    /// The receive benchmark's Mooring receiver.
    pub recv: PathBuf,
    /// The receive benchmark's replaying sender.
    pub replay: PathBuf,
}

impl Bins {
    /// The binaries next to the running one (all built by e2e.sh).
    pub fn here() -> Bins {
        let exe = std::env::current_exe().ok();
        let dir = exe.as_ref().and_then(|p| p.parent()).map(PathBuf::from).unwrap_or_default();
        Bins {
            mooring: dir.join("mooring"),
            sink: dir.join("bgp-sink"),
            recv: dir.join("bgp-recv"),
            replay: dir.join("bgp-replay"),
        }
    }
}

/// Something to wait for proportional to the table size.
pub fn scaled(n: u32, base_secs: u64, per_100k_secs: u64) -> Duration {
    Duration::from_secs(base_secs + per_100k_secs * (n as u64).div_ceil(100_000))
}

pub struct Speaker {
    pub kind: SpeakerKind,
    pub proc: Proc,
    bird_sock: Option<String>,
}

fn gobgp(args: &[&str]) -> (bool, String, String) {
    let mut a = vec!["ip", "netns", "exec", SPK_NS, "gobgp", "-p", GOBGP_API_PORT];
    a.extend_from_slice(args);
    run(&a)
}

/// Write an MRT TABLE_DUMP_V2 file (RFC 6396) with the N prefixes, each
/// with ORIGIN IGP, an empty AS_PATH and NEXT_HOP 0.0.0.0 (GoBGP's "self"),
/// then 4096 repeated records (see below).
pub fn write_mrt(path: &std::path::Path, n: u32) {
    let mut out = Vec::with_capacity(n as usize * 40 + 64);
    let record = |out: &mut Vec<u8>, subtype: u16, body: &[u8]| {
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&13u16.to_be_bytes()); // TABLE_DUMP_V2
        out.extend_from_slice(&subtype.to_be_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    };
    // PEER_INDEX_TABLE: collector id, empty view name, one peer (AS4, IPv4).
    let spk: std::net::Ipv4Addr = SPK_ADDR.parse().unwrap();
    let mut b = Vec::new();
    b.extend_from_slice(&spk.octets());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b.push(0x02);
    b.extend_from_slice(&spk.octets());
    b.extend_from_slice(&spk.octets());
    b.extend_from_slice(&SPEAKER_AS.to_be_bytes());
    record(&mut out, 1, &b);
    let attrs: [u8; 14] = [0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 0, 0, 0, 0];
    // `gobgp mrt inject` (3.10) loses the last few hundred records (its
    // queue is not drained before it exits): pad the file with 4096
    // copies of the first records, which are harmless duplicates.
    for (seq, i) in (0..n).chain((0..n).cycle().take(4096)).enumerate() {
        b.clear();
        b.extend_from_slice(&(seq as u32).to_be_bytes()); // sequence
        b.push(32);
        b.extend_from_slice(&(0x0A00_0000 + i).to_be_bytes());
        b.extend_from_slice(&1u16.to_be_bytes()); // one entry
        b.extend_from_slice(&0u16.to_be_bytes()); // peer index
        b.extend_from_slice(&0u32.to_be_bytes()); // originated
        b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        b.extend_from_slice(&attrs);
        record(&mut out, 2, &b); // RIB_IPV4_UNICAST
    }
    std::fs::write(path, out).expect("writing the MRT file");
}

impl Speaker {
    /// Start a speaker holding `n` routes, its session not yet enabled
    /// (Mooring: started by `enable`).
    pub fn prepare(lab: &Lab, kind: SpeakerKind, n: u32) -> Speaker {
        match kind {
            SpeakerKind::Mooring => {
                let mut text = String::with_capacity(n as usize * 16);
                for i in 0..n {
                    text.push_str(&prefix(i));
                    text.push('\n');
                }
                lab.write("prefixes.txt", &text);
                // Started in `enable`: it loads the table before adding the peer.
                Speaker { kind, proc: Proc { pid: 0, name: "mooring".into(), log: PathBuf::new() }, bird_sock: None }
            }
            SpeakerKind::GoBgp => {
                let conf = lab.write(
                    "gobgpd.toml",
                    &format!("[global.config]\n  as = {SPEAKER_AS}\n  router-id = \"{SPK_ADDR}\"\n  port = -1\n"),
                );
                let proc = lab.spawn(
                    SPK_NS,
                    "gobgpd",
                    &[
                        "gobgpd",
                        "-f",
                        conf.to_str().unwrap(),
                        "-t",
                        "toml",
                        "--api-hosts",
                        &format!("127.0.0.1:{GOBGP_API_PORT}"),
                        "--pprof-disable",
                        "-l",
                        "warn",
                    ],
                    &[],
                );
                poll("gobgpd API", Duration::from_secs(20), Duration::from_millis(100), || {
                    gobgp(&["global"]).0.then_some(())
                });
                let mrt = lab.path("routes.mrt");
                write_mrt(&mrt, n);
                let t = Instant::now();
                run_ok(&[
                    "ip",
                    "netns",
                    "exec",
                    SPK_NS,
                    "gobgp",
                    "-p",
                    GOBGP_API_PORT,
                    "mrt",
                    "inject",
                    "global",
                    mrt.to_str().unwrap(),
                ]);
                poll("GoBGP global RIB holding every route", scaled(n, 30, 60), Duration::from_millis(200), || {
                    let (_, out, _) = gobgp(&["global", "rib", "summary", "-a", "ipv4"]);
                    let dest = out.split("Destination:").nth(1)?.split(',').next()?.trim().parse::<u32>().ok()?;
                    (dest >= n).then_some(())
                });
                eprintln!("    GoBGP: injected {n} routes (MRT) in {:.1} s", t.elapsed().as_secs_f64());
                Speaker { kind, proc, bird_sock: None }
            }
            SpeakerKind::Bird => {
                let mut conf =
                    format!("router id {SPK_ADDR};\nprotocol device {{}}\nprotocol static bench {{\n  ipv4;\n");
                conf.reserve(n as usize * 32);
                for i in 0..n {
                    conf.push_str("  route ");
                    conf.push_str(&prefix(i));
                    conf.push_str(" blackhole;\n");
                }
                conf.push_str(&format!(
                    "}}\nprotocol bgp rcv {{\n  local {SPK_ADDR} as {SPEAKER_AS};\n  neighbor {RCV_ADDR} as {RECEIVER_AS};\n  direct;\n  disabled;\n  connect delay time 1; connect retry time 1;\n  ipv4 {{ import none; export all; }};\n}}\n"
                ));
                let path = lab.write("bird.conf", &conf);
                let sock = lab.path("bird.ctl").to_str().unwrap().to_string();
                let pid = lab.path("bird.pid");
                let proc = lab.spawn(
                    SPK_NS,
                    "bird",
                    &["bird", "-f", "-c", path.to_str().unwrap(), "-s", &sock, "-P", pid.to_str().unwrap()],
                    &[],
                );
                let t = Instant::now();
                poll("BIRD master4 holding every static route", scaled(n, 30, 30), Duration::from_millis(100), || {
                    let (_, out, _) = run(&["birdc", "-s", &sock, "show", "route", "count"]);
                    // "100000 of 100000 routes for 100000 networks in table master4"
                    let c = out
                        .lines()
                        .find(|l| l.contains(" routes for "))?
                        .split_whitespace()
                        .next()?
                        .parse::<u32>()
                        .ok()?;
                    (c >= n).then_some(())
                });
                eprintln!("    BIRD: {n} static routes loaded in {:.1} s", t.elapsed().as_secs_f64());
                Speaker { kind, proc, bird_sock: Some(sock) }
            }
        }
    }

    /// Let the session come up.
    pub fn enable(&mut self, lab: &Lab, bins: &Bins) {
        match self.kind {
            SpeakerKind::Mooring => {
                let file = lab.path("prefixes.txt");
                self.proc = lab.spawn(
                    SPK_NS,
                    "mooring",
                    &[
                        bins.mooring.to_str().unwrap(),
                        "announce",
                        "--as",
                        &SPEAKER_AS.to_string(),
                        "--router-id",
                        SPK_ADDR,
                        "--peer",
                        &format!("{RCV_ADDR},as={RECEIVER_AS},families=ipv4,connect-retry=1"),
                        "--prefix-file",
                        file.to_str().unwrap(),
                    ],
                    &[("NO_COLOR", "1")],
                );
            }
            SpeakerKind::GoBgp => {
                run_ok(&[
                    "ip",
                    "netns",
                    "exec",
                    SPK_NS,
                    "gobgp",
                    "-p",
                    GOBGP_API_PORT,
                    "neighbor",
                    "add",
                    RCV_ADDR,
                    "as",
                    &RECEIVER_AS.to_string(),
                ]);
            }
            SpeakerKind::Bird => {
                run_ok(&["birdc", "-s", self.bird_sock.as_ref().unwrap(), "enable", "rcv"]);
            }
        }
    }
}

pub enum Receiver {
    Sink(Proc),
    Frr { capture: Proc },
}

/// `vtysh -N inst -c cmd` as JSON, `None` until bgpd answers.
pub fn vtysh_json_in(inst: &str, cmd: &str) -> Option<Value> {
    let (ok, out, _) = run(&["vtysh", "-N", inst, "-c", cmd]);
    if !ok {
        return None;
    }
    serde_json::from_str(&out).ok()
}

/// FRR (zebra + bgpd, instance `lab.frr_inst`) in the lab's receiver
/// namespace, peering passively with the speaker; returns once bgpd
/// answers vtysh. Returns bgpd.
pub fn start_frr_receiver(lab: &Lab) -> Proc {
    lab.uses_frr();
    let inst = lab.frr_inst.as_str();
    let conf = format!(
        "frr defaults datacenter\nhostname {inst}\nrouter bgp {RECEIVER_AS}\n bgp router-id {RCV_ADDR}\n no bgp ebgp-requires-policy\n neighbor {SPK_ADDR} remote-as {SPEAKER_AS}\n neighbor {SPK_ADDR} passive\n address-family ipv4 unicast\n exit-address-family\n"
    );
    let dir = lab.path("frr");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("frr.conf"), conf).unwrap();
    std::fs::write(dir.join("zebra.conf"), format!("hostname {inst}\n")).unwrap();
    run_ok(&["chown", "-R", "frr:frr", dir.to_str().unwrap()]);
    let d = dir.to_str().unwrap();
    let daemon = |name: &str| {
        let args = [
            format!("/usr/lib/frr/{name}"),
            "-N".into(),
            inst.into(),
            "-f".into(),
            format!("{d}/{}.conf", if name == "zebra" { "zebra" } else { "frr" }),
            "-i".into(),
            format!("{d}/{name}.pid"),
            "--log".into(),
            "stdout".into(),
        ];
        lab.spawn(lab.rcv_ns(), name, &args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    };
    daemon("zebra");
    let zserv = format!("/var/run/frr/{inst}/zserv.api");
    poll("zebra socket", Duration::from_secs(10), Duration::from_millis(50), || {
        std::path::Path::new(&zserv).exists().then_some(())
    });
    let bgpd = daemon("bgpd");
    poll("bgpd answering vtysh", Duration::from_secs(10), Duration::from_millis(100), || {
        vtysh_json_in(inst, "show bgp summary json").map(|_| ())
    });
    bgpd
}

/// tshark on the receiver's eth0 for the Established moment: the kernel's
/// BPF keeps only segments that start with a BGP OPEN or KEEPALIVE (a
/// KEEPALIVE may share its segment with the OPEN before it or the UPDATEs
/// after it), and ICMP: pings tell when the capture really runs, which this
/// waits for.
pub fn start_established_capture(lab: &Lab) -> Proc {
    let filter = "icmp or (tcp port 179 and tcp[((tcp[12]&0xf0)>>2):4] == 0xffffffff \
                  and (tcp[((tcp[12]&0xf0)>>2)+18] == 1 or tcp[((tcp[12]&0xf0)>>2)+18] == 4))";
    let args = tshark_args("eth0", filter, &["frame.time_epoch", "ip.src", "bgp.type"]);
    let capture = lab.spawn(lab.rcv_ns(), "tshark", &args, &[]);
    wait_capturing(&capture, lab.spk_ns(), RCV_ADDR);
    capture
}

/// The command line of a tshark that prints `fields` (tab-separated, a
/// line per packet, flushed at once) of the packets on `iface` that the
/// kernel filter `filter` keeps.
pub fn tshark_args<'a>(iface: &'a str, filter: &'a str, fields: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["tshark", "-i", iface, "-n", "-l", "-f", filter, "-T", "fields"];
    for f in fields {
        a.extend_from_slice(&["-e", f]);
    }
    a
}

/// Wait until `capture` (a [`tshark_args`] tshark whose filter keeps ICMP
/// and whose first field is the time) prints packets: pings from `ns` to
/// `target` until one shows up.
pub fn wait_capturing(capture: &Proc, ns: &str, target: &str) {
    poll("tshark capturing", Duration::from_secs(30), Duration::from_millis(10), || {
        run(&["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", target]);
        let pkt = |l: &str| l.split_whitespace().next().is_some_and(|t| t.parse::<f64>().is_ok());
        capture.output().lines().any(pkt).then_some(())
    });
}

/// `bgp-sink` in the receiver namespace with these options added to the
/// address and AS; returns once it listens.
pub fn start_sink(lab: &Lab, bins: &Bins, options: &[&str]) -> Proc {
    let listen = format!("{RCV_ADDR}:179");
    let asn = RECEIVER_AS.to_string();
    let mut args = vec![bins.sink.to_str().unwrap(), "--listen", &listen, "--as", &asn, "--router-id", RCV_ADDR];
    args.extend_from_slice(options);
    let p = lab.spawn(lab.rcv_ns(), "sink", &args, &[]);
    lab.wait_output(&p, "LISTENING", Duration::from_secs(10));
    p
}

/// One throughput measurement.
#[derive(Debug, Clone)]
pub struct Measured {
    pub seconds: f64,
    /// FRR only: the time between the last two pfxRcd polls (the
    /// resolution of the end time).
    pub poll_ms: Option<f64>,
}

impl Receiver {
    pub fn start(lab: &Lab, kind: ReceiverKind, n: u32, bins: &Bins) -> Receiver {
        match kind {
            ReceiverKind::Sink => Receiver::Sink(start_sink(lab, bins, &["--count", &n.to_string()])),
            ReceiverKind::Frr => {
                start_frr_receiver(lab);
                let capture = start_established_capture(lab);
                Receiver::Frr { capture }
            }
        }
    }

    /// Wait until the receiver holds `n` prefixes; the seconds since Established.
    pub fn wait(&self, lab: &Lab, n: u32) -> Measured {
        let timeout = scaled(n, 60, 60);
        match self {
            Receiver::Sink(p) => {
                let line = lab.wait_output(p, "RESULT", timeout);
                let secs = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("seconds="))
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("bad sink line {line:?}"));
                Measured { seconds: secs, poll_ms: None }
            }
            Receiver::Frr { capture } => {
                let (done_at, poll_ms) = wait_frr_received(FRR_INST, n, timeout);
                Measured { seconds: done_at - established_at(capture), poll_ms: Some(poll_ms) }
            }
        }
    }
}

/// Poll FRR instance `inst` until its peer (the speaker) has sent `n`
/// prefixes: (when the answer saying so came, as [`epoch`] seconds; the
/// interval between the last two answers in ms, the resolution: the end
/// lies between them).
pub fn wait_frr_received(inst: &str, n: u32, timeout: Duration) -> (f64, f64) {
    let start = Instant::now();
    let mut prev_answer = epoch();
    loop {
        crate::lab::check_interrupted();
        if start.elapsed() > timeout {
            panic!("FRR did not receive {n} prefixes within {timeout:?}");
        }
        let v = vtysh_json_in(inst, "show bgp ipv4 unicast summary json");
        let now = epoch();
        let rcvd = v
            .as_ref()
            .and_then(|v| v.pointer(&format!("/peers/{SPK_ADDR}/pfxRcd")))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if rcvd >= n as u64 {
            return (now, (now - prev_answer) * 1e3);
        }
        prev_answer = now;
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// When the session came up, from a [`start_established_capture`]
/// capture: the later of the first KEEPALIVE each way (tshark prints with
/// a lag of up to a second or so, hence the wait).
pub fn established_at(capture: &Proc) -> f64 {
    let first = |out: &str, src: &str| {
        out.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            let t = it.next()?.parse::<f64>().ok()?;
            let keepalive = it.next()? == src && it.next()?.split(',').any(|t| t == "4");
            keepalive.then_some(t)
        })
    };
    let (a, b) = poll("the KEEPALIVEs in the capture", Duration::from_secs(15), Duration::from_millis(20), || {
        let out = capture.output();
        first(&out, SPK_ADDR).zip(first(&out, RCV_ADDR))
    });
    a.max(b)
}

pub fn epoch() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// One (speaker, receiver, N) run in a fresh lab.
pub fn run_one(kind: SpeakerKind, recv: ReceiverKind, n: u32, bins: &Bins) -> Measured {
    let lab = Lab::new("tp");
    let rcv = Receiver::start(&lab, recv, n, bins);
    let mut spk = Speaker::prepare(&lab, kind, n);
    spk.enable(&lab, bins);
    let m = rcv.wait(&lab, n);
    let _ = std::io::stderr().flush();
    // Let FRR settle a moment is not needed: the lab is torn down here.
    sleep(Duration::from_millis(10));
    m
}
