//! FRR in the lab: the frr.conf writer for a [`Config`], the one way to
//! start an instance (`-N mitX`: zebra, then bgpd, and bfdd when a
//! neighbor has BFD), the lab's usual edge router ([`edge_frr`]), and
//! reading RIB, sessions and BFD peers through `vtysh`.

use std::time::Duration;

use serde_json::Value;

use super::{Bfd, Config, Neighbor};
use crate::cmd::{poll, poll_every, run, run_ok};
use crate::lab::Lab;
use crate::proc::Proc;

/// An FRR instance (`-N mitX`) in a namespace.
pub struct Frr {
    pub inst: String,
    pub ns: String,
    pub asn: u32,
    pub zebra: Proc,
    pub bgpd: Proc,
    pub bfdd: Option<Proc>,
    /// Where its configuration files are.
    dir: String,
    /// Neighbors configured disabled (`shutdown`).
    disabled: Vec<String>,
}

/// How FRR names a neighbor of the config: its address, or for a range
/// the peer group (default `NODES`).
fn peer_id(n: &Neighbor) -> String {
    if n.is_range() {
        n.name.clone().unwrap_or_else(|| "NODES".into())
    } else {
        n.addr.clone()
    }
}

impl Frr {
    /// frr.conf for `cfg` on instance `inst` (`frr defaults datacenter`;
    /// neighbor events logged, so a failed test's bgpd output says why a
    /// session was refused or closed; no
    /// policy needed for eBGP, `maximum-paths 16` with
    /// `multipath-relax`). A neighbor whose address is a prefix is a peer
    /// group with `bgp listen range`.
    pub fn config(inst: &str, cfg: &Config) -> String {
        assert!(cfg.prefixes.is_empty() && cfg.attrs.is_empty(), "FRR originates nothing here");
        let mut c = format!(
            "frr defaults datacenter\nhostname {inst}\ndebug bgp neighbor-events\nrouter bgp {}\n bgp router-id {}\n no bgp ebgp-requires-policy\n \
             no bgp network import-check\n bgp bestpath as-path multipath-relax\n",
            cfg.asn, cfg.router_id
        );
        if let Some(t) = cfg.graceful_restart {
            c.push_str(&format!(" bgp graceful-restart\n bgp graceful-restart restart-time {t}\n"));
        }
        if cfg.neighbors.iter().any(Neighbor::is_range) {
            c.push_str(" bgp listen limit 1000\n");
        }
        for n in &cfg.neighbors {
            let id = peer_id(n);
            let mut line = |s: String| {
                c.push_str(&format!(" neighbor {id} {s}\n"));
            };
            if n.is_range() {
                line("peer-group".into());
            }
            line(match n.peer_as {
                Some(a) => format!("remote-as {a}"),
                None => "remote-as external".into(),
            });
            if n.passive {
                line("passive".into());
            }
            if let Some(pw) = &n.password {
                line(format!("password {pw}"));
            }
            if let Some(h) = n.hold {
                line(format!("timers {} {h}", n.keepalive.unwrap_or((h / 3).max(1))));
            }
            if let Some(r) = n.connect_retry {
                line(format!("timers connect {r}"));
            }
            if let Some(b) = n.bfd {
                line("bfd".into());
                line(format!("bfd profile {}", b.profile()));
            }
            if !n.enabled {
                line("shutdown".into());
            }
            if n.is_range() {
                c.push_str(&format!(" bgp listen range {} peer-group {id}\n", n.addr));
            }
        }
        c.push_str(" address-family ipv4 unicast\n  maximum-paths 16\n exit-address-family\n");
        let v6: Vec<String> = cfg.neighbors.iter().filter(|n| n.v6()).map(peer_id).collect();
        if !v6.is_empty() {
            c.push_str(" address-family ipv6 unicast\n");
            for id in v6 {
                c.push_str(&format!("  neighbor {id} activate\n"));
            }
            c.push_str("  maximum-paths 16\n exit-address-family\n");
        }
        c.push_str(&cfg.extra);
        c
    }

    /// Start zebra and bgpd (and bfdd when a neighbor has BFD) in `ns`
    /// with `cfg`, instance `mitX`; logs `<name>-zebra.log` etc. Returns
    /// once bgpd answers vtysh.
    pub fn start(lab: &Lab, ns: &str, name: &str, cfg: &Config) -> Frr {
        Frr::start_instance(lab, ns, name, &format!("mit{}", lab.id), cfg)
    }

    /// [`Frr::start`] as instance `inst` (several FRRs in one lab need one
    /// each; start it with `mitX` to keep the lab's cleanup prefix).
    pub fn start_instance(lab: &Lab, ns: &str, name: &str, inst: &str, cfg: &Config) -> Frr {
        assert!(inst.starts_with(&format!("mit{}", lab.id)), "FRR instance {inst} outside lab {}", lab.id);
        let inst = inst.to_string();
        lab.register_frr(&inst);
        let dir = lab.path(&format!("frr-{inst}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("frr.conf"), Frr::config(&inst, cfg)).unwrap();
        std::fs::write(dir.join("zebra.conf"), format!("hostname {inst}\n")).unwrap();
        let dir = dir.to_str().unwrap().to_string();
        run_ok(&["chown", "-R", "frr:frr", &dir]);
        // The socket of an earlier zebra of this instance (a benchmark
        // restarting FRR) would pass the wait below before the new zebra
        // listens: bgpd would then find no zebra and retry only seconds
        // later, with its routes out of the FIB until then.
        let zserv = format!("/var/run/frr/{inst}/zserv.api");
        let _ = std::fs::remove_file(&zserv);
        let zebra = Frr::daemon(lab, ns, name, &inst, &dir, "zebra", "zebra.conf");
        poll_every("zebra socket", Duration::from_secs(10), Duration::from_millis(50), || {
            lab.check_running(&zebra);
            std::path::Path::new(&zserv).exists().then_some(())
        });
        let bgpd = Frr::daemon(lab, ns, name, &inst, &dir, "bgpd", "frr.conf");
        let disabled = cfg.neighbors.iter().filter(|n| !n.enabled).map(peer_id).collect();
        let mut frr = Frr { inst, ns: ns.to_string(), asn: cfg.asn, zebra, bgpd, bfdd: None, dir, disabled };
        poll("bgpd answering vtysh", Duration::from_secs(10), || {
            lab.check_running(&frr.bgpd);
            frr.try_json("show bgp summary json").map(|_| ())
        });
        let bfd = cfg.bfd_profiles();
        if !bfd.is_empty() {
            frr.start_bfdd(lab, &bfd);
        }
        frr
    }

    /// One FRR daemon of the instance: `/usr/lib/frr/<daemon> -N inst -f conf`.
    fn daemon(lab: &Lab, ns: &str, name: &str, inst: &str, dir: &str, daemon: &str, conf: &str) -> Proc {
        let args = [
            &format!("/usr/lib/frr/{daemon}"),
            "-N",
            inst,
            "-f",
            &format!("{dir}/{conf}"),
            "-i",
            &format!("{dir}/{daemon}.pid"),
            "--log",
            "stdout",
        ];
        lab.spawn(ns, &format!("{name}-{daemon}"), &args)
    }

    /// Start bfdd with a profile per setting in `bfd` (named by
    /// [`Bfd::profile`]); bgpd registers its BFD peers with it when it
    /// comes up. bfdd reads its own file: bgpd stops parsing at the
    /// unknown `bfd` node.
    pub fn start_bfdd(&mut self, lab: &Lab, bfd: &[Bfd]) {
        assert!(self.bfdd.is_none(), "bfdd already runs");
        let mut conf = String::from("bfd\n");
        for b in bfd {
            conf.push_str(&format!(
                " profile {}\n  receive-interval {ms}\n  transmit-interval {ms}\n  detect-multiplier {}\n exit\n",
                b.profile(),
                b.multiplier,
                ms = b.interval_ms
            ));
        }
        conf.push_str("exit\n");
        let path = format!("{}/bfdd.conf", self.dir);
        std::fs::write(&path, conf).unwrap();
        run_ok(&["chown", "frr:frr", &path]);
        let name = self.bgpd.name.trim_end_matches("-bgpd").to_string();
        self.bfdd = Some(Frr::daemon(lab, &self.ns, &name, &self.inst, &self.dir, "bfdd", "bfdd.conf"));
    }

    /// Every process of the instance.
    pub fn procs(&self) -> Vec<Proc> {
        let mut v = vec![self.bgpd.clone(), self.zebra.clone()];
        v.extend(self.bfdd.clone());
        v
    }

    /// `no shutdown` for the neighbors configured disabled.
    pub fn enable(&mut self) {
        let lines: Vec<String> =
            std::mem::take(&mut self.disabled).iter().map(|id| format!("no neighbor {id} shutdown")).collect();
        if !lines.is_empty() {
            self.configure(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }

    /// Configuration commands in `router bgp ASN`, through vtysh.
    pub fn configure(&self, lines: &[&str]) {
        let rb = format!("router bgp {}", self.asn);
        let mut a = vec!["vtysh", "-N", &self.inst, "-c", "configure terminal", "-c", &rb];
        for l in lines {
            a.extend_from_slice(&["-c", l]);
        }
        run_ok(&a);
    }

    pub fn vtysh(&self, cmd: &str) -> String {
        run_ok(&["vtysh", "-N", &self.inst, "-c", cmd])
    }

    /// `vtysh -c CMD` as JSON; `None` while bgpd does not answer.
    pub fn try_json(&self, cmd: &str) -> Option<Value> {
        let (ok, out, _) = run(&["vtysh", "-N", &self.inst, "-c", cmd]);
        if !ok {
            return None;
        }
        serde_json::from_str(&out).ok()
    }

    pub fn json(&self, cmd: &str) -> Value {
        let out = self.vtysh(cmd);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("vtysh {cmd:?}: bad JSON ({e}): {out}"))
    }

    /// `show bgp ipv4|ipv6 unicast json` (the whole table).
    pub fn table(&self, v6: bool) -> Value {
        self.json(&format!("show bgp {} unicast json", if v6 { "ipv6" } else { "ipv4" }))
    }

    /// The paths FRR has for exactly `prefix` (detail JSON), empty when none.
    pub fn paths(&self, prefix: &str) -> Vec<Value> {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let v = self.json(&format!("show bgp {afi} unicast {prefix} json"));
        if v.get("prefix").and_then(Value::as_str) != Some(prefix) {
            return vec![];
        }
        v.get("paths").and_then(Value::as_array).cloned().unwrap_or_default()
    }

    /// `show bgp neighbors json`, one neighbor.
    pub fn neighbor(&self, addr: &str) -> Option<Value> {
        self.json("show bgp neighbors json").get(addr).cloned()
    }

    pub fn neighbor_state(&self, addr: &str) -> String {
        self.neighbor(addr)
            .and_then(|n| n.get("bgpState").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| "absent".into())
    }

    pub fn wait_established(&self, addr: &str, timeout: Duration) {
        poll(&format!("FRR {}: neighbor {addr} Established", self.inst), timeout, || {
            (self.neighbor_state(addr) == "Established").then_some(())
        });
    }

    /// bfdd's view of the session with `addr` (`show bfd peers json`);
    /// `None` while bfdd does not answer or has no such peer.
    pub fn bfd_peer(&self, addr: &str) -> Option<Value> {
        let v = self.try_json("show bfd peers json")?;
        v.as_array()?.iter().find(|p| p["peer"] == addr).cloned()
    }
}

/// The lab's FRR edge on the router: AS 64512, the nodes' sessions in
/// peer-group NODES (remote-as external, timers 1 3, connect 1),
/// `maximum-paths 16`, `multipath-relax`. With `neighbors` empty the
/// nodes come in through `bgp listen range 198.18.X.0/24`; otherwise those
/// addresses are configured one by one (needed for graceful restart,
/// which FRR does not keep for dynamic neighbors). `graceful_restart`:
/// `bgp graceful-restart` with this restart time.
pub fn edge_frr(lab: &Lab, neighbors: &[&str], graceful_restart: Option<u32>) -> Frr {
    let mut cfg = Config::new(64512, &lab.router_v4);
    cfg.graceful_restart = graceful_restart;
    let node = |addr: &str| Neighbor::external(addr).timers(1, 3).connect_retry(1);
    if neighbors.is_empty() {
        cfg = cfg.neighbor(node(&format!("198.18.{}.0/24", lab.id)));
    }
    for n in neighbors {
        cfg = cfg.neighbor(node(n));
    }
    Frr::start(lab, &lab.router, "frr", &cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frr_conf_of_an_edge_with_a_listen_range_and_a_bfd_neighbor() {
        let cfg = Config::new(64512, "198.18.5.1")
            .neighbor(Neighbor::external("198.18.5.0/24").timers(1, 3).connect_retry(1))
            .neighbor(Neighbor::new("198.18.5.20", 64513).hold(30).bfd(300, 3))
            .neighbor(Neighbor::new("2001:db8:ffff:ff05::11", 64513).passive().password("pw"))
            .graceful_restart(60);
        let c = Frr::config("mit5", &cfg);
        for line in [
            "hostname mit5\ndebug bgp neighbor-events\nrouter bgp 64512\n bgp router-id 198.18.5.1\n",
            " bgp graceful-restart\n bgp graceful-restart restart-time 60\n",
            " bgp listen limit 1000\n",
            " neighbor NODES peer-group\n neighbor NODES remote-as external\n neighbor NODES timers 1 3\n \
             neighbor NODES timers connect 1\n bgp listen range 198.18.5.0/24 peer-group NODES\n",
            " neighbor 198.18.5.20 remote-as 64513\n neighbor 198.18.5.20 timers 10 30\n \
             neighbor 198.18.5.20 bfd\n neighbor 198.18.5.20 bfd profile p300x3\n",
            " neighbor 2001:db8:ffff:ff05::11 passive\n neighbor 2001:db8:ffff:ff05::11 password pw\n",
            " address-family ipv6 unicast\n  neighbor 2001:db8:ffff:ff05::11 activate\n",
        ] {
            assert!(c.contains(line), "{line:?} missing from\n{c}");
        }
    }
}
