//! The receivers the announce and receive benchmarks time against in a
//! [`Lab::pair`]: our counting `bgp-sink` and FRR, on the router side,
//! peering with the speaker's node.

use std::time::{Duration, Instant};

use mooring_lab::{check_interrupted, epoch, Config, Frr, Lab, Neighbor, Node, Proc};
use serde_json::Value;

use crate::common::{Bins, RECEIVER_AS, SPEAKER_AS};

/// `bgp-sink` on the router with these options added to the address and
/// AS; returns once it listens.
pub fn start_sink(lab: &Lab, bins: &Bins, options: &[&str]) -> Proc {
    let listen = format!("{}:179", lab.router_v4);
    let asn = RECEIVER_AS.to_string();
    let mut args = vec![bins.sink.to_str().unwrap(), "--listen", &listen, "--as", &asn, "--router-id", &lab.router_v4];
    args.extend_from_slice(options);
    let p = lab.spawn(&lab.router, "sink", &args);
    lab.wait_output(&p, "LISTENING", Duration::from_secs(10));
    p
}

/// FRR (zebra + bgpd) on the router, peering passively with `spk`.
pub fn start_frr(lab: &Lab, spk: &Node) -> Frr {
    let cfg = Config::new(RECEIVER_AS, &lab.router_v4).neighbor(Neighbor::new(&spk.v4, SPEAKER_AS).passive());
    Frr::start(lab, &lab.router, "frr", &cfg)
}

/// Poll `frr` until its peer `peer` has sent `n` prefixes: (when the
/// answer saying so came, as [`epoch`] seconds; the interval between the
/// last two answers in ms, the resolution: the end lies between them).
pub fn wait_frr_received(frr: &Frr, peer: &str, n: u32, timeout: Duration) -> (f64, f64) {
    let start = Instant::now();
    let mut prev_answer = epoch();
    loop {
        check_interrupted();
        if start.elapsed() > timeout {
            panic!("FRR did not receive {n} prefixes within {timeout:?}");
        }
        let v = frr.try_json("show bgp ipv4 unicast summary json");
        let now = epoch();
        let rcvd =
            v.as_ref().and_then(|v| v.pointer(&format!("/peers/{peer}/pfxRcd"))).and_then(Value::as_u64).unwrap_or(0);
        if rcvd >= n as u64 {
            return (now, (now - prev_answer) * 1e3);
        }
        prev_answer = now;
        std::thread::sleep(Duration::from_millis(5));
    }
}
