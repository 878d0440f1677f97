//! The scale benchmark's two labs and their speakers: the fan-out lab
//! (one speaker node, P counting sinks on the router's bridge) and the
//! fan-in lab (S node namespaces, a tshark capture on the bridge, the FRR
//! edge restarted per speaker kind). No timing here (driver.rs).

use std::collections::HashSet;
use std::time::Duration;

use mooring_lab::{check_interrupted, edge_frr, run_ok, Config, Frr, Lab, Neighbor, Node, Proc, Running};
use serde_json::Value;

use super::{FANIN_LAB, FANIN_VIPS, FANOUT_LAB};
use crate::capture::{tshark_args, wait_capturing};
use crate::common::{prefixes, Bins, SpeakerKind, RECEIVER_AS, SPEAKER_AS};

/// A speaker's session with a sink or the router: hold 3 s, a KEEPALIVE
/// every second.
fn session(addr: &str) -> Neighbor {
    Neighbor::new(addr, RECEIVER_AS).timers(1, 3).connect_retry(1)
}

/// The process name of a speaker kind's `i`-th instance.
fn name(kind: SpeakerKind, what: &str) -> String {
    format!("{}-{what}", kind.name().to_lowercase())
}

/// A: one speaker node and P sinks, each on its own address of the
/// router's bridge, holding V routes each once announced.
pub struct FanOutLab {
    pub lab: Lab,
    pub spk: Node,
    pub sinks: Vec<Proc>,
    addrs: Vec<String>,
}

impl FanOutLab {
    pub fn new(v: u32, p: u32, bins: &Bins) -> FanOutLab {
        let lab = Lab::new(FANOUT_LAB);
        let spk = lab.node_at("spk", 10);
        let addrs: Vec<String> = (0..p).map(|i| format!("198.18.{FANOUT_LAB}.{}", 101 + i)).collect();
        for a in &addrs {
            run_ok(&["ip", "-n", &lab.router, "addr", "add", &format!("{a}/24"), "dev", "br0"]);
        }
        let sinks: Vec<Proc> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let listen = format!("{a}:179");
                let (asn, count) = (RECEIVER_AS.to_string(), v.to_string());
                let args = [
                    bins.sink.to_str().unwrap(),
                    "--listen",
                    &listen,
                    "--as",
                    &asn,
                    "--router-id",
                    a,
                    "--count",
                    &count,
                    "--stay",
                    "--hold",
                    "3",
                ];
                lab.spawn(&lab.router, &format!("sink{}", i + 1), &args)
            })
            .collect();
        for s in &sinks {
            lab.wait_output(s, "LISTENING", Duration::from_secs(10));
        }
        FanOutLab { lab, spk, sinks, addrs }
    }

    /// The speaker with its V routes loaded and its P sessions held down
    /// until [`Running::enable`].
    pub fn speaker(&self, kind: SpeakerKind, v: u32) -> Running {
        let mut cfg = Config::new(SPEAKER_AS, &self.spk.v4).prefixes(prefixes(v));
        for a in &self.addrs {
            cfg = cfg.neighbor(session(a).disabled());
        }
        kind.daemon().start(&self.lab, &self.spk.ns, &name(kind, "spk"), &cfg)
    }
}

/// B: S node namespaces on the router's bridge and a capture of every BGP
/// segment there but lone KEEPALIVEs.
pub struct FanInLab {
    pub lab: Lab,
    pub nodes: Vec<Node>,
    pub capture: Proc,
}

impl FanInLab {
    pub fn new(s: u32) -> FanInLab {
        let lab = Lab::new(FANIN_LAB);
        let nodes: Vec<Node> = (0..s)
            .map(|i| {
                check_interrupted();
                lab.node_at(&format!("n{}", i + 1), (10 + i) as u8)
            })
            .collect();
        // Every BGP segment on the bridge except lone KEEPALIVEs (payload of
        // 19 octets), and ICMP to see the capture running.
        let filter = "icmp or (tcp port 179 and (ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) > 19)";
        let args = tshark_args("br0", filter, &["frame.time_epoch", "ip.src", "ip.dst", "bgp.type"]);
        let capture = lab.spawn(&lab.router, "tshark", &args);
        wait_capturing(&capture, &nodes[0].ns, &lab.router_v4);
        FanInLab { lab, nodes, capture }
    }

    /// The router for one speaker kind: the lab's FRR edge (listen range).
    pub fn router(&self) -> Frr {
        edge_frr(&self.lab, &[], None)
    }

    /// Start the S speakers of `kind` at once; returns them once all are
    /// running with their routes loaded and sessions enabled.
    pub fn speakers(&self, kind: SpeakerKind) -> Vec<Running> {
        let vips = prefixes(FANIN_VIPS);
        let mut v: Vec<Running> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                check_interrupted();
                let cfg = Config::new(SPEAKER_AS, &n.v4).neighbor(session(&self.lab.router_v4)).prefixes(vips.clone());
                kind.daemon().spawn(&self.lab, &n.ns, &name(kind, &format!("n{}", i + 1)), &cfg)
            })
            .collect();
        for r in &mut v {
            r.ready(&self.lab);
        }
        v
    }

    /// (sessions Established, of which holding the VIPs) per FRR's summary.
    pub fn progress(&self, frr: &Frr) -> (usize, usize) {
        let ips: HashSet<&str> = self.nodes.iter().map(|n| n.v4.as_str()).collect();
        let Some(v) = frr.try_json("show bgp ipv4 unicast summary json") else { return (0, 0) };
        let Some(peers) = v.get("peers").and_then(Value::as_object) else { return (0, 0) };
        let mut est = 0;
        let mut full = 0;
        for (ip, p) in peers {
            if !ips.contains(ip.as_str()) || p.get("state").and_then(Value::as_str) != Some("Established") {
                continue;
            }
            est += 1;
            if p.get("pfxRcd").and_then(Value::as_u64).unwrap_or(0) >= FANIN_VIPS as u64 {
                full += 1;
            }
        }
        (est, full)
    }

    /// The captured segments after `after`: (time, source, destination,
    /// BGP message types).
    pub fn segments(&self, after: f64) -> Vec<(f64, String, String, Vec<u8>)> {
        self.capture
            .output()
            .lines()
            .filter_map(|l| {
                let mut it = l.split('\t');
                let t = it.next()?.trim().parse::<f64>().ok()?;
                if t < after {
                    return None;
                }
                let src = it.next()?.to_string();
                let dst = it.next()?.to_string();
                let types = it.next().unwrap_or("").split(',').filter_map(|x| x.trim().parse().ok()).collect();
                Some((t, src, dst, types))
            })
            .collect()
    }
}
