//! A BGP sender that replays a recorded UPDATE stream as fast as the
//! receiver takes it, for the receive benchmark (issue 6, benchmark 2).
//!
//! A live sender (BIRD, GoBGP) spends about as long producing a full table
//! as a fast receiver needs to take it in, so with a live sender the
//! receive times measure the sender. This sends the very bytes a live
//! sender produced (recorded by `bgp-sink --record`), so the receiver is
//! the bottleneck and receivers can be compared.
//!
//!     bgp-replay --connect 198.18.200.1:179 --as 64513 --router-id 198.18.200.2 --file bird-1M.bgp
//!
//! Connects, sends its OPEN (IPv4 unicast, route refresh, 4-octet AS: what
//! `bgp-sink` advertised when the stream was recorded, so the recorded
//! UPDATEs mean the same to the receiver), answers the receiver's OPEN with
//! a KEEPALIVE and waits for the receiver's KEEPALIVE. Then it prints
//! `ESTABLISHED t=<CLOCK_REALTIME ns>`, writes the whole recording followed
//! by an End-of-RIB with blocking writes, prints `SENT bytes=B seconds=S`
//! and stays up, sending KEEPALIVEs and reading (and dropping) whatever the
//! receiver sends, until killed. A NOTIFICATION from the receiver or a
//! closed connection ends it with status 1 and says so.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use clap::Parser;
use mooring_bgp::wire::{frame_len, msg_type, Capability, Family, Message, Negotiated, Open, Update, MAX_MESSAGE_LEN};

/// Replays a recorded UPDATE stream to one receiver as fast as it reads.
#[derive(Parser)]
struct Args {
    /// The receiver, ADDR:PORT.
    #[arg(long)]
    connect: SocketAddr,
    /// Our AS (the recording's sender's).
    #[arg(long = "as")]
    asn: u32,
    #[arg(long)]
    router_id: Ipv4Addr,
    /// The recording (`bgp-sink --record`).
    #[arg(long)]
    file: String,
    /// Hold time of our OPEN, seconds.
    #[arg(long, default_value_t = 90)]
    hold: u16,
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("bgp-replay: {msg}");
    std::process::exit(1)
}

fn realtime_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn encode(m: &Message) -> BytesMut {
    m.to_bytes(&Negotiated::four_octet()).unwrap_or_else(|e| die(format!("encode {}: {e}", m.name())))
}

/// Check that `data` is a sequence of whole BGP UPDATE messages (a truncated
/// or foreign file would otherwise show up as a confusing NOTIFICATION from
/// the receiver); returns how many.
fn count_updates(data: &[u8]) -> usize {
    let (mut at, mut n) = (0, 0);
    while at < data.len() {
        let len = match frame_len(&data[at..], MAX_MESSAGE_LEN) {
            Ok(Some(len)) if data.len() - at >= len => len,
            Ok(_) => die(format!("the recording ends inside a message at offset {at}")),
            Err(e) => die(format!("the recording is not BGP at offset {at}: {e}")),
        };
        if data[at + 18] != msg_type::UPDATE {
            die(format!("message {n} of the recording (offset {at}) is not an UPDATE"));
        }
        at += len;
        n += 1;
    }
    n
}

/// The next whole message on the connection, read into `buf` as needed.
fn next_frame(s: &mut TcpStream, buf: &mut BytesMut, closed: &str) -> BytesMut {
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        if let Ok(Some(len)) = frame_len(buf, MAX_MESSAGE_LEN) {
            if buf.len() >= len {
                return buf.split_to(len);
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => die(closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => die(format!("read: {e}")),
        }
    }
}

/// Read one whole message from the connection (the handshake).
fn read_message(s: &mut TcpStream, buf: &mut BytesMut, ctx: &Negotiated) -> Message {
    let frame = next_frame(s, buf, "connection closed during the handshake");
    Message::decode(&frame, ctx).unwrap_or_else(|e| die(format!("decode: {e}")))
}

/// After the handshake: drop what the receiver sends, die on its NOTIFICATION.
fn drain(mut s: TcpStream, mut buf: BytesMut) {
    let ctx = Negotiated::four_octet();
    loop {
        let frame = next_frame(&mut s, &mut buf, "connection closed by the receiver");
        if let Ok(Message::Notification(n)) = Message::decode(&frame, &ctx) {
            die(format!("NOTIFICATION from the receiver: {n:?}"));
        }
    }
}

fn main() {
    let a = Args::parse();
    let data = std::fs::read(&a.file).unwrap_or_else(|e| die(format!("read {}: {e}", a.file)));
    let updates = count_updates(&data);
    eprintln!("bgp-replay: {updates} UPDATEs, {} bytes in {}", data.len(), a.file);

    let mut s = TcpStream::connect_timeout(&a.connect, Duration::from_secs(10))
        .unwrap_or_else(|e| die(format!("connect {}: {e}", a.connect)));
    let _ = s.set_nodelay(true);
    let caps =
        vec![Capability::Multiprotocol(Family::IPV4_UNICAST), Capability::RouteRefresh, Capability::FourOctetAs(a.asn)];
    s.write_all(&encode(&Message::Open(Open::new(a.asn, a.hold, a.router_id, caps))))
        .unwrap_or_else(|e| die(format!("write: {e}")));
    let mut buf = BytesMut::new();
    let open = match read_message(&mut s, &mut buf, &Negotiated::default()) {
        Message::Open(o) => o,
        m => die(format!("expected an OPEN, got {}", m.name())),
    };
    if !open.capabilities().any(|c| matches!(c, Capability::FourOctetAs(_))) {
        die("the receiver does not do 4-octet AS numbers: the recording would mean something else to it");
    }
    s.write_all(&encode(&Message::Keepalive)).unwrap_or_else(|e| die(format!("write: {e}")));
    loop {
        match read_message(&mut s, &mut buf, &Negotiated::four_octet()) {
            Message::Keepalive => break,
            Message::Notification(n) => die(format!("NOTIFICATION from the receiver: {n:?}")),
            _ => {}
        }
    }
    println!("ESTABLISHED t={}", realtime_ns());
    let _ = std::io::stdout().flush();

    // The receiver's KEEPALIVEs (and anything else) are read on their own
    // thread, so a receiver that talks while it is being flooded never
    // blocks on us.
    let reader = s.try_clone().unwrap_or_else(|e| die(format!("clone: {e}")));
    std::thread::spawn(move || drain(reader, buf));

    let start = Instant::now();
    s.write_all(&data).unwrap_or_else(|e| die(format!("write: {e}")));
    s.write_all(&encode(&Message::Update(Update::end_of_rib(Family::IPV4_UNICAST))))
        .unwrap_or_else(|e| die(format!("write: {e}")));
    println!("SENT bytes={} updates={updates} seconds={:.4}", data.len(), start.elapsed().as_secs_f64());
    let _ = std::io::stdout().flush();

    let every = Duration::from_secs((open.hold_time.min(a.hold) as u64 / 3).clamp(1, 30));
    loop {
        std::thread::sleep(every);
        s.write_all(&encode(&Message::Keepalive)).unwrap_or_else(|e| die(format!("write: {e}")));
    }
}
