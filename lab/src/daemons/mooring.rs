//! Mooring in the lab: which binary, its one command line (`mooring
//! announce` from a [`Config`], or `mooring standalone` from manifests),
//! and the handle of a speaker started from a [`Config`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{Config, Neighbor};
use crate::lab::Lab;
use crate::proc::Proc;

static BIN: OnceLock<PathBuf> = OnceLock::new();

/// Use `bin` as the `mooring` binary (the benchmarks: their release
/// build); call before the first [`mooring_bin`]. False when one was set
/// already.
pub fn set_mooring_bin(bin: PathBuf) -> bool {
    BIN.set(bin).is_ok()
}

/// Path of the `mooring` binary: the one [`set_mooring_bin`] chose, else
/// `<workspace>/target/debug/mooring` (honouring `CARGO_TARGET_DIR`),
/// built once per process with `cargo build -p mooring-agent --bin
/// mooring` when it is missing or older than the sources of `agent/`,
/// `crds/` or `bgp/` (`cargo test` of another crate does not build it).
pub fn mooring_bin() -> PathBuf {
    BIN.get_or_init(build_debug).clone()
}

fn build_debug() -> PathBuf {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| ws.join("target"));
    let target = if target.is_relative() { ws.join(target) } else { target };
    let bin = target.join("debug").join("mooring");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let stale = match built {
        None => true,
        Some(t) => ["agent", "bgp", "crds"].iter().any(|d| newer_than(&ws.join(d).join("src"), t)),
    };
    if stale {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        println!("building the mooring binary ({} missing or stale)", bin.display());
        let st = Command::new(cargo)
            .args(["build", "-p", "mooring-agent", "--bin", "mooring"])
            .current_dir(&ws)
            .status()
            .expect("running cargo build");
        assert!(st.success(), "cargo build -p mooring-agent failed");
    }
    assert!(bin.exists(), "{} not found after building", bin.display());
    bin
}

/// True when a file under `dir` was modified after `t`.
fn newer_than(dir: &Path, t: std::time::SystemTime) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else { return false };
    rd.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            newer_than(&p, t)
        } else {
            e.metadata().and_then(|m| m.modified()).map(|m| m > t).unwrap_or(false)
        }
    })
}

/// The environment every Mooring process of the lab runs with.
const ENV: &[(&str, &str)] = &[("MOORING_LOG", "info"), ("RUST_BACKTRACE", "1"), ("NO_COLOR", "1")];

/// More prefixes than this go through `--prefix-file`.
const MAX_PREFIX_ARGS: usize = 64;

impl Lab {
    /// `mooring announce ARGS` in namespace `ns`.
    pub fn mooring(&self, ns: &str, name: &str, args: &[&str]) -> Proc {
        self.mooring_cmd(ns, name, "announce", args)
    }

    /// `mooring standalone --node NODE --config CONFIG ARGS` in namespace `ns`.
    pub fn mooring_standalone(&self, ns: &str, name: &str, node: &str, config: &Path, args: &[&str]) -> Proc {
        let mut a = vec!["--node", node, "--config", config.to_str().unwrap()];
        a.extend_from_slice(args);
        self.mooring_cmd(ns, name, "standalone", &a)
    }

    fn mooring_cmd(&self, ns: &str, name: &str, command: &str, args: &[&str]) -> Proc {
        let bin = mooring_bin();
        let mut a = vec![bin.to_str().unwrap(), command];
        a.extend_from_slice(args);
        let p = self.spawn_env(ns, name, &a, ENV);
        println!("[{name}] started pid {} in {ns}: mooring {command} {}", p.pid, args.join(" "));
        p
    }
}

/// A `mooring announce` speaker started from a [`Config`].
pub struct Mooring {
    ns: String,
    name: String,
    args: Vec<String>,
    proc: Option<Proc>,
}

impl Mooring {
    /// The command line for `cfg` (after `mooring announce`); prefixes
    /// beyond a few dozen are read from `prefix_file`, which the caller writes.
    pub fn args(cfg: &Config, prefix_file: &Path) -> Vec<String> {
        let mut a: Vec<String> = vec!["--as".into(), cfg.asn.to_string(), "--router-id".into(), cfg.router_id.clone()];
        if cfg.listen {
            a.extend(["--listen".into(), "[::]:179".into()]);
        }
        for n in &cfg.neighbors {
            a.extend(["--peer".into(), peer(n)]);
        }
        if cfg.prefixes.len() > MAX_PREFIX_ARGS {
            a.extend(["--prefix-file".into(), prefix_file.to_str().unwrap().into()]);
        } else {
            for p in &cfg.prefixes {
                a.extend(["--prefix".into(), p.clone()]);
            }
        }
        let at = &cfg.attrs;
        if let Some(m) = at.med {
            a.extend(["--med".into(), m.to_string()]);
        }
        if let Some(l) = at.local_pref {
            a.extend(["--local-pref".into(), l.to_string()]);
        }
        for c in &at.communities {
            a.extend(["--community".into(), c.clone()]);
        }
        for c in &at.large_communities {
            a.extend(["--large-community".into(), c.clone()]);
        }
        if at.prepend > 0 {
            a.extend(["--prepend".into(), at.prepend.to_string()]);
        }
        for nh in &at.next_hops {
            a.extend(["--next-hop".into(), nh.clone()]);
        }
        if let Some(t) = cfg.graceful_restart {
            a.extend(["--graceful-restart".into(), t.to_string(), "--graceful-stop".into()]);
        }
        if cfg.restarting {
            a.push("--restarting".into());
        }
        a.extend(cfg.extra.split_whitespace().map(String::from));
        a
    }

    /// Start it now, or (its neighbors disabled) at [`Mooring::enable`].
    pub fn spawn(lab: &Lab, ns: &str, name: &str, cfg: &Config) -> Mooring {
        let enabled = cfg.neighbors.iter().all(|n| n.enabled);
        assert!(
            enabled || cfg.neighbors.iter().all(|n| !n.enabled),
            "{name}: Mooring starts all its sessions at once (some neighbors are disabled, some not)"
        );
        let file = lab.path(&format!("{name}-prefixes.txt"));
        if cfg.prefixes.len() > MAX_PREFIX_ARGS {
            let mut text = String::with_capacity(cfg.prefixes.len() * 16);
            for p in &cfg.prefixes {
                text.push_str(p);
                text.push('\n');
            }
            std::fs::write(&file, text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
        let mut m = Mooring { ns: ns.into(), name: name.into(), args: Mooring::args(cfg, &file), proc: None };
        if enabled {
            m.enable(lab);
        }
        m
    }

    /// Start it (its neighbors must be enabled).
    pub fn start(lab: &Lab, ns: &str, name: &str, cfg: &Config) -> Mooring {
        let m = Mooring::spawn(lab, ns, name, cfg);
        m.proc();
        m
    }

    /// Start the process (it loads its prefixes before its sessions come up).
    pub fn enable(&mut self, lab: &Lab) {
        if self.proc.is_none() {
            let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
            self.proc = Some(lab.mooring(&self.ns, &self.name, &args));
        }
    }

    /// The process; panics before [`Mooring::enable`] started it.
    pub fn proc(&self) -> &Proc {
        self.proc.as_ref().unwrap_or_else(|| panic!("{}: not started (its sessions are disabled)", self.name))
    }
}

/// `--peer` of one neighbor.
fn peer(n: &Neighbor) -> String {
    let asn = n.peer_as.unwrap_or_else(|| panic!("Mooring needs the AS of peer {}", n.addr));
    let mut s = format!("{},as={asn}", n.addr);
    let mut opt = |o: String| {
        s.push(',');
        s.push_str(&o);
    };
    if n.passive {
        opt("passive".into());
    }
    if let Some(pw) = &n.password {
        opt(format!("md5={pw}"));
    }
    if let Some(h) = n.hold {
        opt(format!("hold={h}"));
    }
    if let Some(k) = n.keepalive {
        opt(format!("keepalive={k}"));
    }
    if let Some(c) = n.connect_retry {
        opt(format!("connect-retry={c}"));
    }
    if let Some(l) = &n.local {
        opt(format!("source={l}"));
    }
    if let Some(b) = n.bfd {
        opt(format!("bfd={}:{}", b.interval_ms, b.multiplier));
    }
    if n.import {
        opt("import".into());
    }
    opt(format!("families={}", if n.v6() { "ipv6" } else { "ipv4" }));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemons::Attrs;

    #[test]
    fn announce_command_line() {
        let cfg = Config::new(64513, "198.18.1.11")
            .listen()
            .neighbor(Neighbor::new("198.18.1.1", 64512).hold(9).connect_retry(1))
            .neighbor(Neighbor::new("2001:db8:ffff:ff01::1", 64512).passive().password("pw").bfd(300, 3))
            .prefixes(["203.0.113.1/32"])
            .attrs(Attrs {
                med: Some(50),
                communities: vec!["no-export".into()],
                prepend: 2,
                next_hops: vec!["198.18.1.21".into(), "198.18.1.22".into()],
                ..Attrs::default()
            })
            .graceful_restart(60);
        let a = Mooring::args(&cfg, Path::new("/unused"));
        assert_eq!(
            a.join(" "),
            "--as 64513 --router-id 198.18.1.11 --listen [::]:179 \
             --peer 198.18.1.1,as=64512,hold=9,connect-retry=1,families=ipv4 \
             --peer 2001:db8:ffff:ff01::1,as=64512,passive,md5=pw,bfd=300:3,families=ipv6 \
             --prefix 203.0.113.1/32 --med 50 --community no-export --prepend 2 \
             --next-hop 198.18.1.21 --next-hop 198.18.1.22 --graceful-restart 60 --graceful-stop"
        );
        let many = Config::new(1, "1.1.1.1").prefixes((0..100).map(|i| format!("10.0.0.{i}/32")));
        assert_eq!(Mooring::args(&many, Path::new("/p"))[4..], ["--prefix-file", "/p"]);
    }
}
