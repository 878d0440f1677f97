//! BIRD 2 in the lab: the bird.conf writer for a [`Config`], bird's one
//! command line (its own control socket `<name>.ctl`), and reading its
//! routes and protocols through `birdc`.

use std::time::Duration;

use super::Config;
use crate::cmd::{poll, poll_every, run, run_ok};
use crate::lab::Lab;
use crate::proc::Proc;

/// A BIRD daemon in a namespace.
pub struct Bird {
    pub ns: String,
    /// The control socket.
    pub sock: String,
    pub proc: Proc,
    /// The BGP protocols configured disabled (started by [`Bird::enable`]).
    disabled: Vec<String>,
    /// How many prefixes it originates.
    prefixes: usize,
}

/// The BGP protocol name of the k-th neighbor of `cfg`.
fn protocol(cfg: &Config, k: usize) -> String {
    cfg.neighbors[k].name.clone().unwrap_or_else(|| format!("peer{}", k + 1))
}

impl Bird {
    /// bird.conf for `cfg`: the originated prefixes as static blackhole
    /// routes, one `protocol bgp` per neighbor (`direct`; `error wait time
    /// 1, 5`; `add paths rx` for [`Neighbor::add_path_rx`]), BFD when a
    /// neighbor asks for it (one interval for all), the kernel protocols
    /// for [`Config::kernel`].
    pub fn config(cfg: &Config) -> String {
        assert!(cfg.attrs.is_empty(), "BIRD: originated prefixes get no attributes here");
        let mut c = format!("router id {};\ntimeformat protocol iso long ms;\nprotocol device {{}}\n", cfg.router_id);
        let bfd = cfg.bfd_profiles();
        assert!(bfd.len() <= 1, "BIRD: one BFD setting for all neighbors");
        if let Some(b) = bfd.first() {
            c.push_str(&format!(
                "protocol bfd {{ interface \"*\" {{ min rx interval {ms} ms; min tx interval {ms} ms; multiplier {m}; }}; }}\n",
                ms = b.interval_ms,
                m = b.multiplier
            ));
        }
        c.reserve(cfg.prefixes.len() * 32);
        for (v6, name) in [(false, "vips4"), (true, "vips6")] {
            let mut routes = cfg.prefixes.iter().filter(|p| p.contains(':') == v6).peekable();
            if routes.peek().is_none() {
                continue;
            }
            c.push_str(&format!("protocol static {name} {{\n  {};\n", if v6 { "ipv6" } else { "ipv4" }));
            for p in routes {
                c.push_str("  route ");
                c.push_str(p);
                c.push_str(" blackhole;\n");
            }
            c.push_str("}\n");
        }
        for (k, n) in cfg.neighbors.iter().enumerate() {
            let asn = n.peer_as.unwrap_or_else(|| panic!("BIRD needs the AS of peer {}", n.addr));
            let local = n.local.clone().or_else(|| (!n.v6()).then(|| cfg.router_id.clone()));
            let local = local.map(|l| format!("{l} ")).unwrap_or_default();
            c.push_str(&format!(
                "protocol bgp {} {{\n  local {local}as {};\n  neighbor {} as {asn};\n  direct;\n",
                protocol(cfg, k),
                cfg.asn,
                n.addr
            ));
            let mut line = |s: String| {
                c.push_str("  ");
                c.push_str(&s);
                c.push('\n');
            };
            if n.passive {
                line("passive on;".into());
            }
            if let Some(pw) = &n.password {
                line(format!("password \"{pw}\";"));
            }
            if !n.enabled {
                line("disabled;".into());
            }
            if let Some(h) = n.hold {
                line(format!("hold time {h};"));
            }
            if let Some(k) = n.keepalive {
                line(format!("keepalive time {k};"));
            }
            if let Some(r) = n.connect_retry {
                line(format!("connect delay time {r}; connect retry time {r};"));
            }
            line("error wait time 1, 5;".into());
            line(match cfg.graceful_restart {
                Some(t) => format!("graceful restart on; graceful restart time {t};"),
                None => "graceful restart off;".into(),
            });
            if n.bfd.is_some() {
                line("bfd on;".into());
            }
            let import = if n.import { "import all; gateway direct;" } else { "import none;" };
            let export = if n.export { "export all;" } else { "export none;" };
            let add_path = if n.add_path_rx { " add paths rx;" } else { "" };
            line(format!("{} {{ {import} {export}{add_path} }};", if n.v6() { "ipv6" } else { "ipv4" }));
            c.push_str("}\n");
        }
        if cfg.kernel {
            // The BGP routes into the FIB, equal ones (several ADD-PATH
            // paths of one prefix) merged into one multipath route.
            for af in ["ipv4", "ipv6"] {
                c.push_str(&format!(
                    "protocol kernel {{\n  {af} {{ import none; export where source = RTS_BGP; }};\n  merge paths on;\n}}\n"
                ));
            }
        }
        c.push_str(&cfg.extra);
        c
    }

    /// Start bird with `cfg` (`<name>.conf`, `<name>.ctl`; `-R` when
    /// restarting); [`Bird::ready`] waits for it.
    pub fn spawn(lab: &Lab, ns: &str, name: &str, cfg: &Config) -> Bird {
        let conf = lab.write(&format!("{name}.conf"), &Bird::config(cfg));
        let sock = lab.path(&format!("{name}.ctl")).to_str().unwrap().to_string();
        // A socket left by an earlier run of this name would look alive.
        let _ = std::fs::remove_file(&sock);
        let pid = lab.path(&format!("{name}.pid"));
        let mut args = vec!["bird", "-f", "-c", conf.to_str().unwrap(), "-s", &sock, "-P", pid.to_str().unwrap()];
        if cfg.restarting {
            args.push("-R");
        }
        let proc = lab.spawn(ns, name, &args);
        let disabled = (0..cfg.neighbors.len()).filter(|&k| !cfg.neighbors[k].enabled).map(|k| protocol(cfg, k));
        Bird { ns: ns.to_string(), sock, proc, disabled: disabled.collect(), prefixes: cfg.prefixes.len() }
    }

    /// [`Bird::spawn`], then [`Bird::ready`].
    pub fn start(lab: &Lab, ns: &str, name: &str, cfg: &Config) -> Bird {
        let mut b = Bird::spawn(lab, ns, name, cfg);
        b.ready(lab);
        b
    }

    /// Wait until birdc answers and the static routes are all loaded.
    pub fn ready(&mut self, lab: &Lab) {
        poll_every(
            &format!("{}: control socket", self.proc.name),
            Duration::from_secs(10),
            Duration::from_millis(50),
            || {
                lab.check_running(&self.proc);
                let (ok, out, _) = run(&["birdc", "-s", &self.sock, "show", "status"]);
                (ok && out.contains("Daemon is up")).then_some(())
            },
        );
        if self.prefixes > 0 {
            self.wait_routes(lab, self.prefixes);
        }
    }

    /// Wait until BIRD's table holds at least `n` routes (its own static
    /// ones count), polling every 50 ms; panics when BIRD exits first.
    pub fn wait_routes(&self, lab: &Lab, n: usize) {
        let timeout = Duration::from_secs(30 + 30 * (n as u64).div_ceil(100_000));
        poll_every(&format!("{}: {n} routes", self.proc.name), timeout, Duration::from_millis(50), || {
            lab.check_running(&self.proc);
            (self.route_count()? >= n).then_some(())
        });
    }

    /// Routes in the table (`show route count`).
    pub fn route_count(&self) -> Option<usize> {
        let (_, out, _) = run(&["birdc", "-s", &self.sock, "show", "route", "count"]);
        // "100000 of 100000 routes for 100000 networks in table master4"
        out.lines().find(|l| l.contains(" routes for "))?.split_whitespace().next()?.parse().ok()
    }

    /// Enable the BGP protocols configured disabled.
    pub fn enable(&mut self) {
        for p in std::mem::take(&mut self.disabled) {
            self.birdc(&format!("enable {p}"));
        }
    }

    /// `birdc -s SOCK <words>`, which must succeed.
    pub fn birdc(&self, cmd: &str) -> String {
        let mut a = vec!["birdc", "-s", &self.sock];
        a.extend(cmd.split_whitespace());
        run_ok(&a)
    }

    /// `show route <prefix> all` — empty when BIRD says it has no route
    /// for it; panics when birdc fails otherwise (BIRD gone, no socket).
    pub fn route_all(&self, prefix: &str) -> String {
        let (ok, out, err) = run(&["birdc", "-s", &self.sock, "show", "route", prefix, "all"]);
        if ok && out.contains(&format!("{prefix} ")) {
            return out;
        }
        // birdc exits non-zero for "Network not found".
        assert!(out.contains("Network not found"), "birdc show route {prefix} all: {err}{out}");
        String::new()
    }

    /// (updates, withdraws) protocol `name` received (`show protocols all
    /// NAME`, its channel's `Import updates:` and `Import withdraws:`).
    pub fn imports_received(&self, name: &str) -> (u64, u64) {
        let out = self.birdc(&format!("show protocols all {name}"));
        let first = |key: &str| {
            out.lines()
                .find_map(|l| l.trim().strip_prefix(key)?.split_whitespace().next()?.parse().ok())
                .unwrap_or_else(|| panic!("birdc show protocols all {name}: no {key:?}:\n{out}"))
        };
        (first("Import updates:"), first("Import withdraws:"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemons::Neighbor;

    #[test]
    fn bird_conf_of_a_speaker_with_bfd() {
        let cfg = Config::new(64513, "198.18.41.11")
            .neighbor(Neighbor::new("198.18.41.1", 64512).name("edge").timers(1, 3).connect_retry(1).bfd(300, 3))
            .neighbor(Neighbor::new("2001:db8::1", 64512).disabled().receiving())
            .neighbor(Neighbor::new("198.18.41.12", 64513).receiving().add_path_rx())
            .prefixes(["203.0.113.41/32"])
            .kernel()
            .graceful_restart(60);
        let c = Bird::config(&cfg);
        for line in [
            "router id 198.18.41.11;",
            "min rx interval 300 ms; min tx interval 300 ms; multiplier 3;",
            "protocol static vips4 {\n  ipv4;\n  route 203.0.113.41/32 blackhole;\n}",
            "protocol bgp edge {\n  local 198.18.41.11 as 64513;\n  neighbor 198.18.41.1 as 64512;\n  direct;",
            "hold time 3;",
            "keepalive time 1;",
            "connect delay time 1; connect retry time 1;",
            "graceful restart on; graceful restart time 60;",
            "bfd on;",
            "ipv4 { import none; export all; };",
            "protocol bgp peer2 {\n  local as 64513;\n  neighbor 2001:db8::1 as 64512;",
            "disabled;",
            "ipv6 { import all; gateway direct; export none; };",
            "ipv4 { import all; gateway direct; export none; add paths rx; };",
            "protocol kernel {\n  ipv4 { import none; export where source = RTS_BGP; };\n  merge paths on;\n}",
            "protocol kernel {\n  ipv6 {",
        ] {
            assert!(c.contains(line), "{line:?} missing from\n{c}");
        }
        assert_eq!(c.matches("add paths").count(), 1, "ADD-PATH receive for the third neighbor only:\n{c}");
    }
}
