//! The Mooring receiver of the e2e receive benchmark (issue 6, benchmark
//! 2): the `mooring_bgp::speaker` library with one passive peer, either
//! counting and dropping what it receives or keeping it in an Adj-RIB-In
//! (`--import`).
//!
//!     bgp-recv --listen 198.18.200.1:179 --as 64512 --router-id 198.18.200.1 \
//!              --peer 198.18.200.2 --peer-as 64513 --count 1000000 [--import]
//!
//! Prints `READY` once listening, then, when the peer's
//! `prefixes_received` reaches the count (timed to the millisecond),
//! `RESULT seconds=S updates=U` where seconds runs from the session's
//! `established_since`; then idles until killed (the harness reads its
//! memory and CPU from /proc).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use clap::Parser;
use mooring_bgp::fsm::State;
use mooring_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use mooring_bgp::wire::Family;

/// The Mooring speaker library receiving from one passive peer.
#[derive(Parser)]
struct Args {
    /// Where to listen, ADDR:PORT.
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long = "as")]
    local_as: u32,
    #[arg(long)]
    router_id: Ipv4Addr,
    /// The sender's address.
    #[arg(long)]
    peer: IpAddr,
    #[arg(long)]
    peer_as: u32,
    /// Report when the peer's received prefixes reach this count.
    #[arg(long)]
    count: u64,
    /// Keep what is received in an Adj-RIB-In (else count and drop).
    #[arg(long)]
    import: bool,
}

#[tokio::main]
async fn main() {
    let Args { listen, local_as, router_id, peer, peer_as, count, import } = Args::parse();
    let listen = Some(listen);
    let speaker = Speaker::start(SpeakerConfig { local_as, router_id, listen, hostname: None, graceful_restart: None })
        .await
        .expect("starting the speaker");
    let mut cfg = PeerConfig::new(peer, peer_as);
    cfg.passive = true;
    cfg.import = import;
    cfg.families = vec![Family::IPV4_UNICAST];
    speaker.add_peer(cfg).expect("adding the peer");
    // Let the runtime settle before the baseline.
    tokio::time::sleep(Duration::from_millis(100)).await;
    println!("READY");
    // Polled every millisecond for the first 100 ms of the session and
    // once 90 % of the count is in, every 10 ms in between (a transfer
    // longer than 100 ms spends more than 10 ms on its last 10 %): the end
    // is timed to the millisecond while the probe's wake-ups cost the
    // receiver (whose CPU time is measured) little.
    let mut fine = true;
    let (done, since, updates) = loop {
        tokio::time::sleep(Duration::from_millis(if fine { 1 } else { 10 })).await;
        let Some(st) = speaker.peer_status(peer) else { continue };
        let n = st.prefixes_received.get(&Family::IPV4_UNICAST).copied().unwrap_or(0);
        let young = st.uptime().is_none_or(|u| u < Duration::from_millis(100));
        fine = young || n >= count / 10 * 9;
        if n >= count && st.state == State::Established {
            break (SystemTime::now(), st.established_since.expect("established"), st.updates_received);
        }
    };
    let secs = done.duration_since(since).unwrap_or_default().as_secs_f64();
    println!("RESULT seconds={secs:.4} updates={updates}");
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
