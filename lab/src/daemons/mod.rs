//! One way to start each routing daemon of the lab. A [`Config`] describes
//! one BGP speaker (AS, router id, neighbors, the prefixes it originates,
//! graceful restart); each daemon has one writer that turns it into its
//! own configuration (mooring.rs: the `mooring announce` command line,
//! gobgp.rs: gobgpd's TOML, bird.rs: bird.conf, frr.rs: frr.conf) and one
//! command line that starts it; [`Daemon::start`] starts any of them.
//! Reading a daemon's RIB and sessions is on its typed handle.

mod bird;
mod frr;
mod gobgp;
mod mooring;

pub use bird::Bird;
pub use frr::{edge_frr, Frr};
pub use gobgp::{write_mrt, GoBgp};
pub use mooring::{mooring_bin, set_mooring_bin, Mooring};

use crate::lab::Lab;
use crate::proc::Proc;

/// One BGP speaker's configuration, as every daemon's writer takes it.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub asn: u32,
    /// Also the local address of IPv4 sessions.
    pub router_id: String,
    /// Accept connections on port 179 (GoBGP: `port = -1` otherwise;
    /// Mooring: `--listen [::]:179`; BIRD and FRR always listen).
    pub listen: bool,
    pub neighbors: Vec<Neighbor>,
    /// The prefixes this speaker originates (FRR: none), all with `attrs`.
    pub prefixes: Vec<String>,
    /// Attributes of the originated prefixes (Mooring only).
    pub attrs: Attrs,
    /// Graceful restart (RFC 4724) with this restart time, seconds.
    pub graceful_restart: Option<u32>,
    /// Started again after a graceful stop: the Restart State bit
    /// (Mooring `--restarting`, gobgpd `-r`, bird `-R`).
    pub restarting: bool,
    /// Install the best routes in the kernel FIB, equal paths (ADD-PATH
    /// ones too) merged into one ECMP route: BIRD's `protocol kernel` with
    /// `merge paths on`. FRR always installs (zebra), GoBGP and Mooring
    /// never do here.
    pub kernel: bool,
    /// Daemon-specific text the writer adds as it is: BIRD and GoBGP at
    /// the end of the file, FRR at the end (top level: re-enter `router
    /// bgp ASN` for more of it), Mooring: more arguments (split at spaces).
    pub extra: String,
}

impl Config {
    pub fn new(asn: u32, router_id: &str) -> Config {
        Config { asn, router_id: router_id.to_string(), ..Config::default() }
    }

    pub fn neighbor(mut self, n: Neighbor) -> Config {
        self.neighbors.push(n);
        self
    }

    pub fn prefixes<S: Into<String>>(mut self, p: impl IntoIterator<Item = S>) -> Config {
        self.prefixes.extend(p.into_iter().map(Into::into));
        self
    }

    pub fn listen(mut self) -> Config {
        self.listen = true;
        self
    }

    pub fn attrs(mut self, a: Attrs) -> Config {
        self.attrs = a;
        self
    }

    pub fn graceful_restart(mut self, restart_time: u32) -> Config {
        self.graceful_restart = Some(restart_time);
        self
    }

    pub fn restarting(mut self, yes: bool) -> Config {
        self.restarting = yes;
        self
    }

    /// See [`Config::kernel`].
    pub fn kernel(mut self) -> Config {
        self.kernel = true;
        self
    }

    pub fn extra(mut self, text: &str) -> Config {
        self.extra.push_str(text);
        self
    }

    /// The neighbors' BFD settings, each once.
    pub fn bfd_profiles(&self) -> Vec<Bfd> {
        let mut v: Vec<Bfd> = self.neighbors.iter().filter_map(|n| n.bfd).collect();
        v.sort_by_key(|b| (b.interval_ms, b.multiplier));
        v.dedup();
        v
    }
}

/// One BGP session of a [`Config`]; unset timers are the daemon's defaults.
#[derive(Debug, Clone)]
pub struct Neighbor {
    /// BIRD's protocol name (default `peer<k>`); FRR's peer-group name of
    /// a range (default `NODES`).
    pub name: Option<String>,
    /// The peer's address, or (FRR only) a prefix: dynamic neighbors from
    /// that range (`bgp listen range`).
    pub addr: String,
    /// `None`: any external AS (FRR's `remote-as external`; FRR only).
    pub peer_as: Option<u32>,
    /// The local address (BIRD `local`, Mooring `source=`); IPv4 sessions
    /// default to the router id in BIRD.
    pub local: Option<String>,
    pub passive: bool,
    /// TCP MD5 (RFC 2385).
    pub password: Option<String>,
    pub hold: Option<u16>,
    pub keepalive: Option<u16>,
    /// Seconds between connection attempts (BIRD: also the connect delay).
    pub connect_retry: Option<u16>,
    /// False: held down until [`Running::enable`] (Mooring: not started
    /// until then, so that the clock can start at the session).
    pub enabled: bool,
    pub bfd: Option<Bfd>,
    /// Accept the peer's routes (BIRD `import all`, Mooring `import`).
    pub import: bool,
    /// Send ours (BIRD `export all`; the others always do).
    pub export: bool,
    /// Receive several paths per prefix from this peer (ADD-PATH, RFC
    /// 7911): GoBGP `add-paths` `receive = true`, BIRD `add paths rx`.
    /// FRR receives them by default (its `disable-addpath-rx` turns that
    /// off) and Mooring always offers send and receive: both ignore it.
    pub add_path_rx: bool,
}

impl Neighbor {
    pub fn new(addr: &str, peer_as: u32) -> Neighbor {
        Neighbor { peer_as: Some(peer_as), ..Neighbor::external(addr) }
    }

    /// A neighbor in any external AS (FRR only).
    pub fn external(addr: &str) -> Neighbor {
        Neighbor {
            name: None,
            addr: addr.to_string(),
            peer_as: None,
            local: None,
            passive: false,
            password: None,
            hold: None,
            keepalive: None,
            connect_retry: None,
            enabled: true,
            bfd: None,
            import: false,
            export: true,
            add_path_rx: false,
        }
    }

    pub fn name(mut self, name: &str) -> Neighbor {
        self.name = Some(name.to_string());
        self
    }

    pub fn local(mut self, addr: &str) -> Neighbor {
        self.local = Some(addr.to_string());
        self
    }

    pub fn passive(mut self) -> Neighbor {
        self.passive = true;
        self
    }

    pub fn password(mut self, pw: &str) -> Neighbor {
        self.password = Some(pw.to_string());
        self
    }

    pub fn hold(mut self, secs: u16) -> Neighbor {
        self.hold = Some(secs);
        self
    }

    pub fn timers(mut self, keepalive: u16, hold: u16) -> Neighbor {
        self.keepalive = Some(keepalive);
        self.hold = Some(hold);
        self
    }

    pub fn connect_retry(mut self, secs: u16) -> Neighbor {
        self.connect_retry = Some(secs);
        self
    }

    pub fn disabled(mut self) -> Neighbor {
        self.enabled = false;
        self
    }

    pub fn bfd(mut self, interval_ms: u32, multiplier: u32) -> Neighbor {
        self.bfd = Some(Bfd { interval_ms, multiplier });
        self
    }

    /// Receive routes and send none (a router collecting announcements).
    pub fn receiving(mut self) -> Neighbor {
        self.import = true;
        self.export = false;
        self
    }

    /// See [`Neighbor::add_path_rx`].
    pub fn add_path_rx(mut self) -> Neighbor {
        self.add_path_rx = true;
        self
    }

    pub fn v6(&self) -> bool {
        self.addr.contains(':')
    }

    /// The address is a prefix (FRR dynamic neighbors).
    pub fn is_range(&self) -> bool {
        self.addr.contains('/')
    }
}

/// BFD (RFC 5880) on a session: transmit and receive interval, multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bfd {
    pub interval_ms: u32,
    pub multiplier: u32,
}

impl Bfd {
    /// The name FRR's bfdd and BIRD know these settings by.
    pub fn profile(&self) -> String {
        format!("p{}x{}", self.interval_ms, self.multiplier)
    }
}

/// Path attributes of originated prefixes.
#[derive(Debug, Clone, Default)]
pub struct Attrs {
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// `ASN:VALUE` or a well-known name (`no-export`).
    pub communities: Vec<String>,
    /// `ASN:DATA1:DATA2`.
    pub large_communities: Vec<String>,
    /// Extra copies of the own AS in the AS path (eBGP).
    pub prepend: u8,
    /// Mooring only: one path per next hop (`--next-hop`, repeated; empty:
    /// next-hop self), all sent to peers that receive ADD-PATH.
    pub next_hops: Vec<String>,
}

impl Attrs {
    pub fn is_empty(&self) -> bool {
        self.med.is_none()
            && self.local_pref.is_none()
            && self.communities.is_empty()
            && self.large_communities.is_empty()
            && self.prepend == 0
            && self.next_hops.is_empty()
    }
}

/// The routing daemons of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Daemon {
    Mooring,
    GoBgp,
    Bird,
    Frr,
}

impl Daemon {
    /// The name tables and messages print.
    pub fn name(self) -> &'static str {
        match self {
            Daemon::Mooring => "Mooring",
            Daemon::GoBgp => "GoBGP",
            Daemon::Bird => "BIRD",
            Daemon::Frr => "FRR",
        }
    }

    /// Start the daemon in `ns` with `cfg` (files and logs named after
    /// `name`) without waiting for it: [`Running::ready`] does, so that
    /// many can start at once.
    pub fn spawn(self, lab: &Lab, ns: &str, name: &str, cfg: &Config) -> Running {
        match self {
            Daemon::Mooring => Running::Mooring(Mooring::spawn(lab, ns, name, cfg)),
            Daemon::GoBgp => Running::GoBgp(GoBgp::spawn(lab, ns, name, cfg)),
            Daemon::Bird => Running::Bird(Bird::spawn(lab, ns, name, cfg)),
            // zebra must be up before bgpd: FRR's start waits anyway.
            Daemon::Frr => Running::Frr(Frr::start(lab, ns, name, cfg)),
        }
    }

    /// [`Daemon::spawn`], then [`Running::ready`].
    pub fn start(self, lab: &Lab, ns: &str, name: &str, cfg: &Config) -> Running {
        let mut r = self.spawn(lab, ns, name, cfg);
        r.ready(lab);
        r
    }
}

/// A started daemon.
pub enum Running {
    Mooring(Mooring),
    GoBgp(GoBgp),
    Bird(Bird),
    Frr(Frr),
}

impl Running {
    pub fn daemon(&self) -> Daemon {
        match self {
            Running::Mooring(_) => Daemon::Mooring,
            Running::GoBgp(_) => Daemon::GoBgp,
            Running::Bird(_) => Daemon::Bird,
            Running::Frr(_) => Daemon::Frr,
        }
    }

    /// Wait until the daemon answers and holds the prefixes it originates,
    /// its enabled sessions enabled; panics when it exits first.
    pub fn ready(&mut self, lab: &Lab) {
        match self {
            Running::Mooring(_) | Running::Frr(_) => {}
            Running::GoBgp(g) => g.ready(lab),
            Running::Bird(b) => b.ready(lab),
        }
    }

    /// Bring up the sessions configured disabled.
    pub fn enable(&mut self, lab: &Lab) {
        match self {
            Running::Mooring(m) => m.enable(lab),
            Running::GoBgp(g) => g.enable(),
            Running::Bird(b) => b.enable(),
            Running::Frr(f) => f.enable(),
        }
    }

    /// The process speaking BGP (FRR: bgpd).
    pub fn proc(&self) -> &Proc {
        match self {
            Running::Mooring(m) => m.proc(),
            Running::GoBgp(g) => &g.proc,
            Running::Bird(b) => &b.proc,
            Running::Frr(f) => &f.bgpd,
        }
    }

    /// Every process of the daemon (FRR: bgpd, zebra and bfdd).
    pub fn procs(&self) -> Vec<Proc> {
        match self {
            Running::Frr(f) => f.procs(),
            _ => vec![self.proc().clone()],
        }
    }
}
