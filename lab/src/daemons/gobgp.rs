//! GoBGP in the lab: the TOML writer for a [`Config`], gobgpd's one
//! command line (gRPC API on 127.0.0.1:50100+X in its namespace), loading
//! the originated prefixes (an MRT file, `gobgp mrt inject`), and reading
//! its RIB and sessions through the `gobgp` CLI.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::Config;
use crate::cmd::{poll, poll_every, run};
use crate::lab::Lab;
use crate::proc::Proc;

/// A gobgpd in a namespace.
pub struct GoBgp {
    pub ns: String,
    /// Its gRPC API port on 127.0.0.1 in `ns`.
    pub port: u16,
    pub proc: Proc,
    /// Addresses of the neighbors to enable once the prefixes are loaded,
    /// and of those held down until [`GoBgp::enable`].
    enabled: Vec<String>,
    disabled: Vec<String>,
    /// The MRT file with the originated prefixes, and how many.
    mrt: Option<(String, usize)>,
}

impl GoBgp {
    /// gobgpd's TOML for `cfg`. Every neighbor starts admin-down: the
    /// originated prefixes are in the RIB before a session can come up (a
    /// restarting gobgpd defers its UPDATEs until the peer's End-of-RIB
    /// only for routes it already holds); [`GoBgp::ready`] enables them.
    pub fn config(cfg: &Config) -> String {
        assert!(cfg.attrs.is_empty(), "GoBGP: the MRT loader gives prefixes no attributes");
        assert!(!cfg.kernel, "GoBGP: no FIB here (gobgpd runs without zebra)");
        let mut t = format!("[global.config]\n  as = {}\n  router-id = \"{}\"\n", cfg.asn, cfg.router_id);
        t.push_str(if cfg.listen { "  port = 179\n" } else { "  port = -1\n" });
        for n in &cfg.neighbors {
            assert!(!n.is_range() && n.bfd.is_none(), "GoBGP: no dynamic neighbors or BFD here ({})", n.addr);
            let asn = n.peer_as.unwrap_or_else(|| panic!("GoBGP needs the AS of peer {}", n.addr));
            t.push_str(&format!(
                "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {asn}\n    admin-down = true\n",
                n.addr
            ));
            if let Some(pw) = &n.password {
                t.push_str(&format!("    auth-password = \"{pw}\"\n"));
            }
            if n.passive {
                t.push_str("  [neighbors.transport.config]\n    passive-mode = true\n");
            }
            if n.connect_retry.is_some() || n.hold.is_some() || n.keepalive.is_some() {
                t.push_str("  [neighbors.timers.config]\n");
                for (k, v) in
                    [("connect-retry", n.connect_retry), ("hold-time", n.hold), ("keepalive-interval", n.keepalive)]
                {
                    if let Some(v) = v {
                        t.push_str(&format!("    {k} = {v}\n"));
                    }
                }
            }
            if let Some(rt) = cfg.graceful_restart {
                t.push_str(&format!(
                    "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = {rt}\n"
                ));
            }
            let family = if n.v6() { "ipv6-unicast" } else { "ipv4-unicast" };
            t.push_str(&format!(
                "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}\"\n"
            ));
            if cfg.graceful_restart.is_some() {
                t.push_str("    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n");
            }
            if n.add_path_rx {
                t.push_str("    [neighbors.afi-safis.add-paths.config]\n      receive = true\n");
            }
        }
        t.push_str(&cfg.extra);
        t
    }

    /// Start gobgpd with `cfg` (`<name>.toml`; `-r` when restarting);
    /// [`GoBgp::ready`] waits for it.
    pub fn spawn(lab: &Lab, ns: &str, name: &str, cfg: &Config) -> GoBgp {
        let port = 50100 + lab.id as u16;
        let conf = lab.write(&format!("{name}.toml"), &GoBgp::config(cfg));
        let api = format!("127.0.0.1:{port}");
        let mut args =
            vec!["gobgpd", "-f", conf.to_str().unwrap(), "-t", "toml", "--api-hosts", &api, "--pprof-disable"];
        if cfg.restarting {
            args.push("-r");
        }
        let proc = lab.spawn(ns, name, &args);
        let mrt = (!cfg.prefixes.is_empty()).then(|| {
            let path = lab.path(&format!("{name}.mrt"));
            let id: Ipv4Addr = cfg.router_id.parse().expect("GoBGP: an IPv4 router id");
            write_mrt(&path, &cfg.prefixes, id, cfg.asn);
            (path.to_str().unwrap().to_string(), cfg.prefixes.len())
        });
        let (enabled, disabled) = cfg.neighbors.iter().partition::<Vec<_>, _>(|n| n.enabled);
        GoBgp {
            ns: ns.to_string(),
            port,
            proc,
            enabled: enabled.iter().map(|n| n.addr.clone()).collect(),
            disabled: disabled.iter().map(|n| n.addr.clone()).collect(),
            mrt,
        }
    }

    /// [`GoBgp::spawn`], then [`GoBgp::ready`].
    pub fn start(lab: &Lab, ns: &str, name: &str, cfg: &Config) -> GoBgp {
        let mut g = GoBgp::spawn(lab, ns, name, cfg);
        g.ready(lab);
        g
    }

    /// Wait for the API, load the prefixes (until the RIB holds them
    /// all), enable the neighbors not configured disabled.
    pub fn ready(&mut self, lab: &Lab) {
        poll_every(
            &format!("{}: gobgpd API", self.proc.name),
            Duration::from_secs(60),
            Duration::from_millis(50),
            || {
                lab.check_running(&self.proc);
                self.try_cli(&["global"]).map(|_| ())
            },
        );
        if let Some((file, n)) = self.mrt.take() {
            self.cli(&["mrt", "inject", "global", &file]);
            let timeout = Duration::from_secs(30 + 60 * (n as u64).div_ceil(100_000));
            poll_every(
                &format!("{}: RIB holding {n} routes", self.proc.name),
                timeout,
                Duration::from_millis(50),
                || (self.rib_count()? >= n).then_some(()),
            );
        }
        for a in std::mem::take(&mut self.enabled) {
            self.cli(&["neighbor", &a, "enable"]);
        }
    }

    /// Enable the neighbors configured disabled.
    pub fn enable(&mut self) {
        for a in std::mem::take(&mut self.disabled) {
            self.cli(&["neighbor", &a, "enable"]);
        }
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let port = self.port.to_string();
        let mut a = vec!["ip", "netns", "exec", &self.ns, "gobgp", "-u", "127.0.0.1", "-p", &port];
        a.extend_from_slice(args);
        let (ok, out, _) = run(&a);
        ok.then_some(out)
    }

    /// `gobgp ARGS`, which must succeed; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let port = self.port.to_string();
        let mut a = vec!["ip", "netns", "exec", &self.ns, "gobgp", "-u", "127.0.0.1", "-p", &port];
        a.extend_from_slice(args);
        let (ok, out, err) = run(&a);
        assert!(ok, "gobgp {args:?} failed: {err}{out}");
        out
    }

    /// Destinations in the global IPv4 RIB (`gobgp global rib summary`).
    pub fn rib_count(&self) -> Option<usize> {
        let out = self.try_cli(&["global", "rib", "summary", "-a", "ipv4"])?;
        out.split("Destination:").nth(1)?.split(',').next()?.trim().parse().ok()
    }

    /// `gobgp global rib -a ipv4|ipv6 -j`: prefix -> [paths].
    pub fn rib(&self, v6: bool) -> Value {
        let out = self.cli(&["global", "rib", "-a", if v6 { "ipv6" } else { "ipv4" }, "-j"]);
        if out.trim().is_empty() {
            return Value::Object(Default::default());
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("gobgp rib: bad JSON ({e}): {out}"))
    }

    /// The paths for exactly `prefix`, empty when none.
    pub fn paths(&self, prefix: &str) -> Vec<Value> {
        self.rib(prefix.contains(':')).get(prefix).and_then(Value::as_array).cloned().unwrap_or_default()
    }

    /// `gobgp neighbor ADDR adj-in -a ipv4|ipv6`: (path id, prefix, next
    /// hop) of each path received from ADDR, in GoBGP's order; the id is 0
    /// without ADD-PATH. The text form: `-j` shows no path ids.
    pub fn adj_in(&self, addr: &str, v6: bool) -> Vec<(u32, String, String)> {
        let out = self.cli(&["neighbor", addr, "adj-in", "-a", if v6 { "ipv6" } else { "ipv4" }]);
        out.lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                match w.as_slice() {
                    [id, prefix, nh, ..] if prefix.contains('/') => {
                        Some((id.parse().ok()?, prefix.to_string(), nh.to_string()))
                    }
                    [prefix, nh, ..] if prefix.contains('/') => Some((0, prefix.to_string(), nh.to_string())),
                    _ => None,
                }
            })
            .collect()
    }

    /// `gobgp neighbor ADDR -j`.
    pub fn neighbor(&self, addr: &str) -> Value {
        let out = self.cli(&["neighbor", addr, "-j"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("gobgp neighbor {addr}: bad JSON ({e}): {out}"))
    }

    /// UPDATE messages received from `addr` so far.
    pub fn updates_received(&self, addr: &str) -> u64 {
        let v = self.neighbor(addr);
        v.pointer("/state/messages/received/update")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("gobgp neighbor {addr}: no state.messages.received.update: {v}"))
    }

    /// `gobgp neighbor ADDR -j`: the session state as GoBGP names it.
    pub fn neighbor_state(&self, addr: &str) -> String {
        let v = self.neighbor(addr);
        v.pointer("/state/session_state")
            .map(|s| s.as_str().map(String::from).unwrap_or_else(|| s.to_string()))
            .unwrap_or_else(|| "unknown".into())
    }

    pub fn wait_established(&self, addr: &str, timeout: Duration) {
        poll(&format!("GoBGP: neighbor {addr} established"), timeout, || {
            let s = self.neighbor_state(addr);
            (s == "established" || s == "6").then_some(())
        });
    }
}

/// Write an MRT TABLE_DUMP_V2 file (RFC 6396) with `prefixes` (IPv4), each
/// with ORIGIN IGP, an empty AS_PATH and NEXT_HOP 0.0.0.0 (GoBGP's
/// "self"), seen from peer `peer` in AS `asn`, then 4096 repeated records:
/// `gobgp mrt inject` (3.10) loses the last few hundred records (its queue
/// is not drained before it exits), and copies of the first ones are
/// harmless duplicates.
pub fn write_mrt(path: &Path, prefixes: &[String], peer: Ipv4Addr, asn: u32) {
    let mut out = Vec::with_capacity(prefixes.len() * 40 + 64);
    let record = |out: &mut Vec<u8>, subtype: u16, body: &[u8]| {
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&13u16.to_be_bytes()); // TABLE_DUMP_V2
        out.extend_from_slice(&subtype.to_be_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    };
    // PEER_INDEX_TABLE: collector id, empty view name, one peer (AS4, IPv4).
    let mut b = Vec::new();
    b.extend_from_slice(&peer.octets());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b.push(0x02);
    b.extend_from_slice(&peer.octets());
    b.extend_from_slice(&peer.octets());
    b.extend_from_slice(&asn.to_be_bytes());
    record(&mut out, 1, &b);
    let attrs: [u8; 14] = [0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 0, 0, 0, 0];
    let parsed: Vec<(Ipv4Addr, u8)> = prefixes
        .iter()
        .map(|p| {
            let (a, len) = p.split_once('/').unwrap_or((p, "32"));
            let a: Ipv4Addr = a.parse().unwrap_or_else(|_| panic!("GoBGP: not an IPv4 prefix: {p}"));
            let len: u8 = len.parse().ok().filter(|l| *l <= 32).unwrap_or_else(|| panic!("bad prefix length: {p}"));
            (a, len)
        })
        .collect();
    let n = parsed.len();
    for (seq, i) in (0..n).chain((0..n).cycle().take(4096)).enumerate() {
        let (a, len) = parsed[i];
        b.clear();
        b.extend_from_slice(&(seq as u32).to_be_bytes());
        b.push(len);
        b.extend_from_slice(&a.octets()[..(len as usize).div_ceil(8)]);
        b.extend_from_slice(&1u16.to_be_bytes()); // one entry
        b.extend_from_slice(&0u16.to_be_bytes()); // peer index
        b.extend_from_slice(&0u32.to_be_bytes()); // originated
        b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        b.extend_from_slice(&attrs);
        record(&mut out, 2, &b); // RIB_IPV4_UNICAST
    }
    std::fs::write(path, out).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemons::Neighbor;

    #[test]
    fn toml_of_a_speaker_with_graceful_restart() {
        let cfg = Config::new(64513, "198.18.41.11")
            .neighbor(Neighbor::new("198.18.41.1", 64512).timers(1, 3).connect_retry(1).password("pw"))
            .neighbor(Neighbor::new("198.18.41.2", 64512).add_path_rx())
            .graceful_restart(60);
        let t = GoBgp::config(&cfg);
        for line in [
            "port = -1",
            "neighbor-address = \"198.18.41.1\"",
            "admin-down = true",
            "auth-password = \"pw\"",
            "hold-time = 3",
            "keepalive-interval = 1",
            "connect-retry = 1",
            "restart-time = 60",
            "afi-safi-name = \"ipv4-unicast\"",
            "[neighbors.afi-safis.mp-graceful-restart.config]",
        ] {
            assert!(t.contains(line), "{line:?} missing from\n{t}");
        }
        // ADD-PATH receive in the second neighbor's afi-safi only.
        let (first, second) = t.split_once("neighbor-address = \"198.18.41.2\"").unwrap();
        assert!(!first.contains("add-paths"), "{t}");
        assert!(second.contains("[neighbors.afi-safis.add-paths.config]\n      receive = true\n"), "{t}");
    }

    #[test]
    fn mrt_records_carry_the_prefix_octets_of_their_length() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.mrt");
        write_mrt(&p, &["10.1.2.3/32".into(), "10.9.0.0/16".into()], "198.18.0.2".parse().unwrap(), 64513);
        let b = std::fs::read(&p).unwrap();
        // PEER_INDEX_TABLE: 12-octet MRT header + 4 + 2 + 2 + 1 + 4 + 4 + 4.
        let first = 12 + 21;
        // RIB entry: header, sequence 0, length 32, 4 octets.
        assert_eq!(&b[first + 12..first + 12 + 9], &[0, 0, 0, 0, 32, 10, 1, 2, 3]);
        let second = first + 12 + 4 + 1 + 4 + 2 + 2 + 4 + 2 + 14;
        assert_eq!(&b[second + 12..second + 12 + 7], &[0, 0, 0, 1, 16, 10, 9]);
        // 2 records + 4096 copies after the index.
        let mut n = 0;
        let mut at = 0;
        while at < b.len() {
            let len = u32::from_be_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
            at += 12 + len;
            n += 1;
        }
        assert_eq!(n, 1 + 2 + 4096);
    }
}
