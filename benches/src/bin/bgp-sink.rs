//! A minimal BGP receiver for the end-to-end benchmarks: our own codec in a
//! tight loop, so that the receiver is never the bottleneck.
//!
//! Accepts one TCP connection, does the OPEN/KEEPALIVE handshake
//! (capabilities: IPv4 unicast, route refresh, 4-octet AS; extended
//! messages only with `--extended`), then frames and decodes every message
//! with `mooring_bgp::wire` and counts the distinct IPv4 prefixes held.
//!
//! Throughput mode (`--count N`): prints
//! `RESULT prefixes=N seconds=S updates=U bytes=B` where S runs from the
//! moment we send the KEEPALIVE that completes Established on the
//! speaker's side (the answer to its OPEN; it sent its own KEEPALIVE on
//! our OPEN, which we send first) to the UPDATE that made the table hold
//! N prefixes, then exits.
//!
//! Event mode (`--events`): runs until killed and prints one line per
//! UPDATE, `UPDATE t=<CLOCK_REALTIME ns> ann=A wd=W held=H`, flushed at
//! once (the change-latency benchmark reads these).
//!
//! Staying mode (`--count N --stay`, the scale benchmark): prints the
//! RESULT line (with `t=<CLOCK_REALTIME ns>` of the last prefix) and stays
//! connected. Each SIGUSR1 sends a ROUTE-REFRESH request (IPv4 unicast)
//! and prints `REFRESH round=K t=<ns>`; once N distinct prefixes have been
//! announced again since that request, it prints `REFRESHED round=K
//! t=<ns> seconds=S updates=U` (S from sending the request).
//!
//! `--record FILE` (with `--count`) writes every UPDATE received after
//! Established, byte for byte, to FILE (what `bgp-replay` sends again).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use clap::Parser;
use ipnetwork::IpNetwork;
use mooring_bgp::wire::{
    frame_len, Capability, Family, Message, Negotiated, Nlri, Open, RouteRefresh, MAX_EXTENDED_MESSAGE_LEN,
};

/// A counting BGP receiver (see the module doc for its modes).
#[derive(Parser)]
#[command(group(clap::ArgGroup::new("mode").required(true).multiple(true).args(["count", "events"])))]
struct Args {
    #[arg(long, default_value = "0.0.0.0:179")]
    listen: SocketAddr,
    #[arg(long = "as", default_value_t = 64512)]
    asn: u32,
    #[arg(long, default_value = "198.18.200.1")]
    router_id: Ipv4Addr,
    /// Throughput mode: report when this many distinct prefixes are held.
    #[arg(long)]
    count: Option<u64>,
    /// Event mode: a line per UPDATE, until killed.
    #[arg(long)]
    events: bool,
    /// Advertise extended messages (RFC 8654).
    #[arg(long)]
    extended: bool,
    /// Hold time of our OPEN, seconds.
    #[arg(long, default_value_t = 180)]
    hold: u16,
    /// With --count: stay connected and re-count on SIGUSR1 (ROUTE-REFRESH).
    #[arg(long, requires = "count")]
    stay: bool,
    /// With --count: write every UPDATE received to this file.
    #[arg(long, requires = "count")]
    record: Option<String>,
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("bgp-sink: {msg}");
    std::process::exit(1)
}

fn realtime_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// The prefixes held: a bitmap for host routes in 10.0.0.0/8 (what the
/// benchmarks announce), a set for anything else.
struct Table {
    bits: Vec<u64>,
    other: HashSet<IpNetwork>,
    held: u64,
}

impl Table {
    fn new() -> Table {
        Table { bits: vec![0; (1 << 24) / 64], other: HashSet::new(), held: 0 }
    }

    fn slot(n: &Nlri) -> Option<usize> {
        match n.prefix {
            IpNetwork::V4(p) if p.prefix() == 32 && p.ip().octets()[0] == 10 => {
                Some((u32::from(p.ip()) & 0x00ff_ffff) as usize)
            }
            _ => None,
        }
    }

    fn add(&mut self, n: &Nlri) {
        match Table::slot(n) {
            Some(i) => {
                let (w, b) = (i / 64, 1u64 << (i % 64));
                if self.bits[w] & b == 0 {
                    self.bits[w] |= b;
                    self.held += 1;
                }
            }
            None => {
                if self.other.insert(n.prefix) {
                    self.held += 1;
                }
            }
        }
    }

    fn remove(&mut self, n: &Nlri) {
        match Table::slot(n) {
            Some(i) => {
                let (w, b) = (i / 64, 1u64 << (i % 64));
                if self.bits[w] & b != 0 {
                    self.bits[w] &= !b;
                    self.held -= 1;
                }
            }
            None => {
                if self.other.remove(&n.prefix) {
                    self.held -= 1;
                }
            }
        }
    }
}

fn send(s: &mut TcpStream, m: &Message) {
    let b = m.to_bytes(&Negotiated::four_octet()).unwrap_or_else(|e| die(format!("encode {}: {e}", m.name())));
    s.write_all(&b).unwrap_or_else(|e| die(format!("write: {e}")));
}

/// `--stay`: SIGUSR1 is blocked in every thread (set before any thread
/// starts) and taken by [`refresher`] with sigwait.
fn block_sigusr1() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset; the mask
    // change only affects this (still single-threaded) process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// The refresh requests sent so far and when the last one was sent.
struct Refresh {
    round: AtomicU64,
    sent: Mutex<Option<Instant>>,
}

/// Waits for SIGUSR1; each one sends a ROUTE-REFRESH request for IPv4 unicast.
fn refresher(set: libc::sigset_t, mut s: TcpStream, r: Arc<Refresh>) {
    let msg = Message::RouteRefresh(RouteRefresh::request(Family::IPV4_UNICAST))
        .to_bytes(&Negotiated::four_octet())
        .unwrap_or_else(|e| die(format!("encode ROUTE-REFRESH: {e}")));
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is a valid signal set, `sig` a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 || sig != libc::SIGUSR1 {
            continue;
        }
        // Bump the round before the request leaves: every answer is read after.
        *r.sent.lock().unwrap() = Some(Instant::now());
        let k = r.round.fetch_add(1, Ordering::SeqCst) + 1;
        if s.write_all(&msg).is_err() {
            return;
        }
        println!("REFRESH round={k} t={}", realtime_ns());
        let _ = std::io::stdout().flush();
    }
}

fn main() {
    let a = Args::parse();
    let sigusr1 = a.stay.then(block_sigusr1);
    let listener = TcpListener::bind(a.listen).unwrap_or_else(|e| die(format!("bind {}: {e}", a.listen)));
    println!("LISTENING {}", a.listen);
    let _ = std::io::stdout().flush();
    let (mut s, remote) = listener.accept().unwrap_or_else(|e| die(format!("accept: {e}")));
    drop(listener);
    let _ = s.set_nodelay(true);
    eprintln!("bgp-sink: connection from {remote}");

    let mut caps = vec![Capability::Multiprotocol(Family::IPV4_UNICAST), Capability::RouteRefresh];
    if a.extended {
        caps.push(Capability::ExtendedMessage);
    }
    caps.push(Capability::FourOctetAs(a.asn));
    send(&mut s, &Message::Open(Open::new(a.asn, a.hold, a.router_id, caps)));

    // KEEPALIVEs from a second thread, every hold/3 (at most 30 s).
    let mut ka = s.try_clone().unwrap_or_else(|e| die(format!("clone: {e}")));
    let every = Duration::from_secs((a.hold as u64 / 3).clamp(1, 30));
    std::thread::spawn(move || loop {
        std::thread::sleep(every);
        if ka.write_all(&Message::Keepalive.to_bytes(&Negotiated::default()).unwrap()).is_err() {
            return;
        }
    });

    let refresh = Arc::new(Refresh { round: AtomicU64::new(0), sent: Mutex::new(None) });
    if let Some(set) = sigusr1 {
        let rs = s.try_clone().unwrap_or_else(|e| die(format!("clone: {e}")));
        let r = refresh.clone();
        std::thread::spawn(move || refresher(set, rs, r));
    }
    // Refresh round being counted, the prefixes announced since its request,
    // UPDATEs since, and whether its REFRESHED line is still due.
    let (mut round, mut seen, mut refresh_updates, mut refresh_due) = (0u64, Table::new(), 0u64, false);
    let mut done = false;
    let mut ctx = Negotiated::default();
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut table = Table::new();
    let mut got_keepalive = false;
    let mut t0: Option<Instant> = None;
    let (mut updates, mut bytes) = (0u64, 0u64);
    let out = std::io::stdout();
    let mut rbuf = vec![0u8; 1 << 18];
    let mut record = a.record.as_ref().map(|path| {
        let f = std::fs::File::create(path).unwrap_or_else(|e| die(format!("create {path}: {e}")));
        std::io::BufWriter::with_capacity(1 << 20, f)
    });
    loop {
        // Frame and decode everything buffered.
        loop {
            let len = match frame_len(&buf, MAX_EXTENDED_MESSAGE_LEN) {
                Ok(Some(len)) if buf.len() >= len => len,
                Ok(_) => break,
                Err(e) => die(format!("framing: {e}")),
            };
            let frame = buf.split_to(len);
            let m = Message::decode(&frame, &ctx).unwrap_or_else(|e| die(format!("decode: {e}")));
            match m {
                Message::Open(o) => {
                    let peer_caps: Vec<&Capability> = o.capabilities().collect();
                    ctx.four_octet_as = peer_caps.iter().any(|c| matches!(c, Capability::FourOctetAs(_)));
                    ctx.extended_message =
                        a.extended && peer_caps.iter().any(|c| matches!(c, Capability::ExtendedMessage));
                    eprintln!(
                        "bgp-sink: OPEN from AS {} id {} hold {} (4-octet AS {}, extended messages {})",
                        o.asn(),
                        o.bgp_id,
                        o.hold_time,
                        ctx.four_octet_as,
                        ctx.extended_message
                    );
                    send(&mut s, &Message::Keepalive);
                    // The speaker is Established when this KEEPALIVE arrives:
                    // the clock starts now.
                    t0 = Some(Instant::now());
                }
                Message::Keepalive => {
                    if !got_keepalive && a.events {
                        println!("ESTABLISHED t={}", realtime_ns());
                        let _ = std::io::stdout().flush();
                    }
                    got_keepalive = true;
                }
                Message::Notification(n) => die(format!("NOTIFICATION from the peer: {n:?}")),
                Message::RouteRefresh(_) => {}
                Message::Update(u) => {
                    updates += 1;
                    bytes += len as u64;
                    if let Some(w) = record.as_mut() {
                        w.write_all(&frame).unwrap_or_else(|e| die(format!("record: {e}")));
                    }
                    if sigusr1.is_some() {
                        let r = refresh.round.load(Ordering::SeqCst);
                        if r != round {
                            (round, seen, refresh_updates, refresh_due) = (r, Table::new(), 0, true);
                        }
                        refresh_updates += 1;
                        if refresh_due && !u.is_treat_as_withdraw() {
                            for n in u.announced() {
                                seen.add(n);
                            }
                        }
                    }
                    let (mut ann, mut wd) = (0u64, 0u64);
                    for n in u.withdrawals() {
                        table.remove(n);
                        wd += 1;
                    }
                    let withdraw_all = u.is_treat_as_withdraw();
                    for n in u.announced() {
                        if withdraw_all {
                            table.remove(n);
                        } else {
                            table.add(n);
                        }
                        ann += 1;
                    }
                    if a.events {
                        let mut o = out.lock();
                        let _ = writeln!(o, "UPDATE t={} ann={ann} wd={wd} held={}", realtime_ns(), table.held);
                        let _ = o.flush();
                    }
                    if let (Some(n), Some(t0)) = (a.count, t0) {
                        if table.held >= n && !done {
                            let secs = t0.elapsed().as_secs_f64();
                            if let Some(w) = record.take() {
                                w.into_inner().unwrap_or_else(|e| die(format!("record: {}", e.error())));
                            }
                            println!(
                                "RESULT prefixes={} seconds={secs:.6} updates={updates} bytes={bytes} t={}",
                                table.held,
                                realtime_ns()
                            );
                            let _ = std::io::stdout().flush();
                            if !a.stay {
                                std::process::exit(0);
                            }
                            done = true;
                        }
                        if refresh_due && seen.held >= n {
                            refresh_due = false;
                            let secs = refresh.sent.lock().unwrap().map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
                            println!(
                                "REFRESHED round={round} t={} seconds={secs:.6} updates={refresh_updates}",
                                realtime_ns()
                            );
                            let _ = std::io::stdout().flush();
                        }
                    }
                }
            }
        }
        match s.read(&mut rbuf) {
            Ok(0) => die(format!("connection closed by the peer (held {} prefixes)", table.held)),
            Ok(n) => buf.extend_from_slice(&rbuf[..n]),
            Err(e) => die(format!("read: {e}")),
        }
    }
}
