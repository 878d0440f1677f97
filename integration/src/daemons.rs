//! The routing daemons: FRR (zebra + bgpd, one instance per test with
//! `-N`), GoBGP (API on a per-test port) and BIRD 2 (own control socket).

use std::time::Duration;

use serde_json::Value;

use crate::lab::{Lab, Proc};
use crate::util::{poll, run, run_ok};

/// An FRR instance (`-N mitX`) in a namespace.
pub struct Frr {
    pub inst: String,
    pub ns: String,
    pub zebra: Proc,
    pub bgpd: Proc,
}

impl Frr {
    /// Start zebra and bgpd in `ns` with `config` (a full frr.conf body).
    pub fn start(lab: &Lab, ns: &str, config: &str) -> Frr {
        let inst = format!("mit{}", lab.id);
        lab.register_frr(&inst);
        let dir = lab.path(&format!("frr-{inst}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("frr.conf"), config).unwrap();
        std::fs::write(dir.join("zebra.conf"), format!("hostname {inst}\n")).unwrap();
        run_ok(&["chown", "-R", "frr:frr", dir.to_str().unwrap()]);
        let d = dir.to_str().unwrap().to_string();
        let zebra = lab.spawn(
            ns,
            "zebra",
            &[
                "/usr/lib/frr/zebra",
                "-N",
                &inst,
                "-f",
                &format!("{d}/zebra.conf"),
                "-i",
                &format!("{d}/zebra.pid"),
                "--log",
                "stdout",
            ],
        );
        let zserv = format!("/var/run/frr/{inst}/zserv.api");
        poll("zebra socket", Duration::from_secs(10), || std::path::Path::new(&zserv).exists().then_some(()));
        let bgpd = lab.spawn(
            ns,
            "bgpd",
            &[
                "/usr/lib/frr/bgpd",
                "-N",
                &inst,
                "-f",
                &format!("{d}/frr.conf"),
                "-i",
                &format!("{d}/bgpd.pid"),
                "--log",
                "stdout",
            ],
        );
        let frr = Frr { inst, ns: ns.to_string(), zebra, bgpd };
        poll("bgpd answering vtysh", Duration::from_secs(10), || {
            let (ok, out, _) = run(&["vtysh", "-N", &frr.inst, "-c", "show bgp summary json"]);
            (ok && serde_json::from_str::<Value>(&out).is_ok()).then_some(())
        });
        frr
    }

    pub fn vtysh(&self, cmd: &str) -> String {
        run_ok(&["vtysh", "-N", &self.inst, "-c", cmd])
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
}

/// A gobgpd in a namespace; its gRPC API on 127.0.0.1:`port` there.
pub struct GoBgp {
    pub ns: String,
    pub port: u16,
    pub proc: Proc,
}

impl GoBgp {
    pub fn start(lab: &Lab, ns: &str, toml: &str) -> GoBgp {
        let port = 50100 + lab.id as u16;
        let conf = lab.path("gobgpd.toml");
        std::fs::write(&conf, toml).unwrap();
        let proc = lab.spawn(
            ns,
            "gobgpd",
            &[
                "gobgpd",
                "-f",
                conf.to_str().unwrap(),
                "-t",
                "toml",
                "--api-hosts",
                &format!("127.0.0.1:{port}"),
                "--pprof-disable",
            ],
        );
        let g = GoBgp { ns: ns.to_string(), port, proc };
        poll("gobgpd API", Duration::from_secs(10), || g.try_cli(&["global"]).map(|_| ()));
        g
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let port = self.port.to_string();
        let mut a = vec!["ip", "netns", "exec", &self.ns, "gobgp", "-u", "127.0.0.1", "-p", &port];
        a.extend_from_slice(args);
        let (ok, out, _) = run(&a);
        ok.then_some(out)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args).unwrap_or_else(|| panic!("gobgp {args:?} failed"))
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

    /// `gobgp neighbor ADDR -j`: the session state as GoBGP names it.
    pub fn neighbor_state(&self, addr: &str) -> String {
        let Some(out) = self.try_cli(&["neighbor", addr, "-j"]) else { return "absent".into() };
        let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
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

/// A BIRD 2 daemon in a namespace with its own control socket.
pub struct Bird {
    pub ns: String,
    pub sock: String,
    pub proc: Proc,
}

impl Bird {
    pub fn start(lab: &Lab, ns: &str, conf: &str) -> Bird {
        let path = lab.path("bird.conf");
        std::fs::write(&path, conf).unwrap();
        let sock = lab.path("bird.ctl").to_str().unwrap().to_string();
        let pid = lab.path("bird.pid");
        let proc = lab.spawn(
            ns,
            "bird",
            &["bird", "-f", "-c", path.to_str().unwrap(), "-s", &sock, "-P", pid.to_str().unwrap()],
        );
        let b = Bird { ns: ns.to_string(), sock, proc };
        poll("bird control socket", Duration::from_secs(10), || {
            let (ok, out, _) = run(&["birdc", "-s", &b.sock, "show", "status"]);
            (ok && out.contains("Daemon is up")).then_some(())
        });
        b
    }

    /// `birdc -s SOCK <words>`.
    pub fn birdc(&self, cmd: &str) -> String {
        let mut a = vec!["birdc", "-s", &self.sock];
        a.extend(cmd.split_whitespace());
        run_ok(&a)
    }

    /// `show route <prefix> all` — empty when BIRD has no route for it.
    pub fn route_all(&self, prefix: &str) -> String {
        // birdc exits non-zero for "Network not found".
        let (_, out, _) = run(&["birdc", "-s", &self.sock, "show", "route", prefix, "all"]);
        if out.contains(&format!("{prefix} ")) {
            out
        } else {
            String::new()
        }
    }

    /// The BGP state of protocol `name` from `show protocols all NAME`.
    pub fn bgp_state(&self, name: &str) -> String {
        let out = self.birdc(&format!("show protocols all {name}"));
        out.lines()
            .find_map(|l| l.trim().strip_prefix("BGP state:").map(|s| s.trim().to_string()))
            .unwrap_or_else(|| "unknown".into())
    }

    pub fn wait_established(&self, name: &str, timeout: Duration) {
        poll(&format!("BIRD protocol {name} Established"), timeout, || {
            (self.bgp_state(name) == "Established").then_some(())
        });
    }
}

/// An FRR edge like the reference lab's: AS 64512, peer-group NODES
/// (remote-as external, timers 1 3, connect 1), `maximum-paths 16`,
/// `bgp bestpath as-path multipath-relax`. With `neighbors` empty the
/// nodes come in through `bgp listen range 198.18.X.0/24`; otherwise those
/// addresses are configured as static members of NODES (needed for
/// graceful restart, which FRR does not keep for dynamic neighbors).
/// `extra` is added to the `router bgp` block (e.g. `bgp graceful-restart`).
pub fn edge_frr(lab: &Lab, neighbors: &[&str], extra: &str) -> Frr {
    let id = lab.id;
    let members = if neighbors.is_empty() {
        format!(" bgp listen range 198.18.{id}.0/24 peer-group NODES\n")
    } else {
        neighbors.iter().map(|n| format!(" neighbor {n} peer-group NODES\n")).collect()
    };
    let conf = format!(
        "frr defaults datacenter
hostname mit{id}
router bgp 64512
 bgp router-id {r4}
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
{extra}
 neighbor NODES peer-group
 neighbor NODES remote-as external
 neighbor NODES timers 1 3
 neighbor NODES timers connect 1
{members} address-family ipv4 unicast
  maximum-paths 16
 exit-address-family
",
        r4 = lab.router_v4
    );
    Frr::start(lab, &lab.router, &conf)
}
