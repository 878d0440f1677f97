//! `mooring announce`: peer with routers and announce prefixes — the
//! tool a network engineer reaches for to test an edge router. Its
//! settings go through the same checks as the CRDs' (`mooring_bgp::limits`,
//! the one community parser).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ipnetwork::IpNetwork;
use mooring_bgp::bfd::BfdConfig;
use mooring_bgp::fsm::GracefulRestartConfig;
use mooring_bgp::limits::{self, LimitError, Timers};
use mooring_bgp::speaker::{MaxPrefixes, PeerConfig, RouteAttrs, Speaker, SpeakerConfig};
use mooring_bgp::wire::{Community, ExtCommunity, Family, LargeCommunity};

#[derive(clap::Args, Debug)]
pub struct AnnounceArgs {
    /// Local AS number.
    #[arg(long = "as", value_parser = asn)]
    pub local_as: u32,
    /// BGP identifier (an IPv4 address, unique among the routers; required).
    #[arg(long)]
    pub router_id: Ipv4Addr,
    /// Accept connections on this address (e.g. 0.0.0.0:179); default: only dial out.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// A peer: ADDR,as=N[,port=N][,passive][,md5=PASSWORD][,hold=SECS][,keepalive=SECS]
    /// [,multihop=TTL][,gtsm][,source=IP][,import][,max-prefixes=N[:warn]][,families=ipv4|ipv6|both]
    /// [,nh6=IPV6][,nh4=IPV4][,connect-retry=SECS][,bfd[=INTERVAL_MS[:MULT]]]
    /// (`bfd`: BFD with 300 ms x 3; `bfd=100:5`: 100 ms TX/RX intervals, multiplier 5)
    #[arg(long = "peer", required = true)]
    pub peers: Vec<String>,
    /// A prefix to announce (repeatable).
    #[arg(long = "prefix")]
    pub prefixes: Vec<IpNetwork>,
    /// A file with one route per line: a prefix, then optionally its next
    /// hops (`203.0.113.1/32 198.18.1.21 198.18.1.22`: one path per next
    /// hop, sent as separate ADD-PATH paths to peers that receive them).
    /// # comments allowed. Read again on SIGHUP (the routes are replaced).
    #[arg(long)]
    pub prefix_file: Option<PathBuf>,
    #[arg(long)]
    pub med: Option<u32>,
    #[arg(long)]
    pub local_pref: Option<u32>,
    /// Community ASN:VALUE or a well-known name (repeatable).
    #[arg(long = "community")]
    pub communities: Vec<Community>,
    /// Large community GLOBAL:LOCAL1:LOCAL2 (repeatable).
    #[arg(long = "large-community")]
    pub large_communities: Vec<LargeCommunity>,
    /// Link bandwidth extended community in Mbit/s (transitive form).
    #[arg(long)]
    pub link_bandwidth_mbps: Option<f32>,
    /// Prepend the local AS this many extra times (eBGP).
    #[arg(long, default_value_t = 0)]
    pub prepend: u8,
    /// Next hop instead of next-hop self; repeated: one path per next hop
    /// for each `--prefix` (peers that receive ADD-PATH get them all,
    /// others the first).
    #[arg(long = "next-hop")]
    pub next_hops: Vec<IpAddr>,
    /// Advertise graceful restart with this restart time (seconds, 1..=4095).
    #[arg(long, value_parser = restart_time)]
    pub graceful_restart: Option<u16>,
    /// Set the Restart State bit (we are restarting).
    #[arg(long)]
    pub restarting: bool,
    /// Hostname for the FQDN capability.
    #[arg(long)]
    pub hostname: Option<String>,
    /// On SIGTERM/SIGINT close the sessions that negotiated graceful restart
    /// without a NOTIFICATION (their routers keep our routes); others get a Cease.
    #[arg(long)]
    pub graceful_stop: bool,
    /// Print peer status every N seconds (0: only state changes).
    #[arg(long, default_value_t = 0)]
    pub status_interval: u64,
}

fn asn(s: &str) -> Result<u32> {
    Ok(limits::check_asn(s.parse()?)?)
}

fn restart_time(s: &str) -> Result<u16> {
    Ok(limits::check_restart_time(s.parse()?)?)
}

fn joined(errors: Vec<LimitError>) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// A duration as people read it: `45s`, `3m12s`, `2h5m`, `3d4h`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

/// One peer's status line: `status 198.18.0.1 Established up 5s sent=3
/// received=0 flaps=0`, then `last error: ...` when there is one.
pub fn status_line(s: &mooring_bgp::speaker::PeerStatus) -> String {
    let up = s.uptime().map_or_else(|| "down".to_string(), |d| format!("up {}", human_duration(d)));
    let mut line = format!(
        "status {} {} {up} sent={} received={} flaps={}",
        s.address,
        s.state,
        s.prefixes_sent,
        s.prefixes_received.values().sum::<u64>(),
        s.flaps
    );
    if s.paths_not_sent > 0 {
        line.push_str(&format!(" paths_not_sent={} (no ADD-PATH)", s.paths_not_sent));
    }
    if let Some(e) = &s.last_error {
        line.push_str(&format!(", last error: {e}"));
    }
    line
}

pub fn parse_peer(spec: &str) -> Result<PeerConfig> {
    let mut parts = spec.split(',');
    let addr: IpAddr = parts.next().unwrap_or("").parse().with_context(|| format!("peer {spec:?}: bad address"))?;
    let mut cfg = PeerConfig::new(addr, 0);
    let mut have_as = false;
    let (mut hold, mut keepalive) = (u64::from(cfg.hold_time), None);
    for p in parts {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let ctx = || format!("peer {spec:?}: bad {k}={v}");
        match k {
            "as" => {
                cfg.remote_as = asn(v).with_context(ctx)?;
                have_as = true;
            }
            "port" => cfg.port = v.parse().with_context(ctx)?,
            "passive" => cfg.passive = true,
            "md5" => cfg.md5_password = Some(v.to_string()),
            "hold" => hold = v.parse().with_context(ctx)?,
            "keepalive" => keepalive = Some(v.parse().with_context(ctx)?),
            "multihop" => cfg.ebgp_multihop = Some(v.parse().with_context(ctx)?),
            "gtsm" => cfg.gtsm_hops = Some(if v.is_empty() { 1 } else { v.parse().with_context(ctx)? }),
            "source" => cfg.source = Some(v.parse().with_context(ctx)?),
            "import" => cfg.import = true,
            "connect-retry" => cfg.connect_retry = Duration::from_secs_f64(v.parse().with_context(ctx)?),
            "nh4" => cfg.next_hop_v4 = Some(v.parse::<Ipv4Addr>().with_context(ctx)?),
            "nh6" => cfg.next_hop_v6 = Some(v.parse::<Ipv6Addr>().with_context(ctx)?),
            "max-prefixes" => {
                let (n, mode) = v.split_once(':').unwrap_or((v, "teardown"));
                let teardown = match mode {
                    "teardown" => true,
                    "warn" => false,
                    _ => bail!("{}", ctx()),
                };
                cfg.max_prefixes = Some(MaxPrefixes::new(n.parse().with_context(ctx)?, teardown));
            }
            "bfd" => {
                let mut b = BfdConfig::default();
                if !v.is_empty() {
                    let (ms, mult) = v.split_once(':').map_or((v, None), |(a, m)| (a, Some(m)));
                    let interval = Duration::from_millis(ms.parse().with_context(ctx)?);
                    let multiplier = mult.map_or(Ok(b.multiplier), str::parse).with_context(ctx)?;
                    b = limits::bfd_config(interval, interval, multiplier)
                        .map_err(|e| anyhow::anyhow!("peer {spec:?}: {}", joined(e)))?;
                }
                cfg.bfd = Some(b);
            }
            "families" => {
                cfg.families = match v {
                    "ipv4" => vec![Family::IPV4_UNICAST],
                    "ipv6" => vec![Family::IPV6_UNICAST],
                    "both" => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
                    _ => bail!("{}", ctx()),
                }
            }
            _ => bail!("peer {spec:?}: unknown option {k:?}"),
        }
    }
    if !have_as {
        bail!("peer {spec:?}: as=N is required");
    }
    let timers = Timers::new(hold, keepalive).map_err(|e| anyhow::anyhow!("peer {spec:?}: {}", joined(e)))?;
    cfg.hold_time = timers.hold_time();
    cfg.keepalive = timers.keepalive();
    Ok(cfg)
}

/// The routes to announce: each `--prefix` (with every `--next-hop`, or
/// next-hop self), then the lines of `--prefix-file` (a line's own next
/// hops, else the same).
fn read_routes(args: &AnnounceArgs) -> Result<Vec<(IpNetwork, Option<IpAddr>)>> {
    let default: Vec<Option<IpAddr>> =
        if args.next_hops.is_empty() { vec![None] } else { args.next_hops.iter().copied().map(Some).collect() };
    let mut v: Vec<(IpNetwork, Option<IpAddr>)> =
        args.prefixes.iter().flat_map(|p| default.iter().map(move |nh| (*p, *nh))).collect();
    if let Some(f) = &args.prefix_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut words = line.split_whitespace();
            let Some(prefix) = words.next() else { continue };
            let at = || format!("{}:{}", f.display(), i + 1);
            let prefix: IpNetwork = prefix.parse().with_context(|| format!("{}: bad prefix {prefix:?}", at()))?;
            let hops: Vec<Option<IpAddr>> = words
                .map(|w| w.parse().map(Some).with_context(|| format!("{}: bad next hop {w:?}", at())))
                .collect::<Result<_>>()?;
            let hops = if hops.is_empty() { default.clone() } else { hops };
            v.extend(hops.into_iter().map(|nh| (prefix, nh)));
        }
    }
    Ok(v)
}

pub async fn run(args: AnnounceArgs) -> Result<()> {
    let peers: Vec<PeerConfig> = args.peers.iter().map(|s| parse_peer(s)).collect::<Result<_>>()?;
    let routes = read_routes(&args)?;
    let speaker = Speaker::start(SpeakerConfig {
        local_as: args.local_as,
        router_id: args.router_id,
        listen: args.listen,
        hostname: args.hostname.clone(),
        graceful_restart: args.graceful_restart.map(|t| GracefulRestartConfig {
            restart_time: t,
            restarting: args.restarting,
            forwarding_preserved: true,
        }),
    })
    .await
    .context("starting the speaker")?;
    let mut ext = vec![];
    if let Some(mbps) = args.link_bandwidth_mbps {
        let asn = u16::try_from(args.local_as).unwrap_or(mooring_bgp::wire::AS_TRANS);
        ext.push(ExtCommunity::LinkBandwidth { asn, bytes_per_sec: mbps * 125_000.0, transitive: true });
    }
    let attrs = RouteAttrs {
        med: args.med,
        local_pref: args.local_pref,
        communities: args.communities.clone(),
        large_communities: args.large_communities.clone(),
        ext_communities: ext,
        as_path_prepend: args.prepend,
        ..RouteAttrs::default()
    };
    let with_next_hop = |routes: Vec<(IpNetwork, Option<IpAddr>)>| {
        routes.into_iter().map(|(p, next_hop)| (p, RouteAttrs { next_hop, ..attrs.clone() })).collect::<Vec<_>>()
    };
    let paths = routes.len();
    speaker.set_routes(with_next_hop(routes));
    println!("announcing {} prefixes ({paths} paths) to {} peers", speaker.route_count(), peers.len());
    let mut events = speaker.subscribe();
    for p in peers {
        speaker.add_peer(p)?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut tick = tokio::time::interval(Duration::from_secs(args.status_interval.max(1)));
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(e) => {
                    let reason = e.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
                    println!("peer {} {} -> {}{reason}", e.key(), e.from, e.to);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => println!("({n} events skipped)"),
                Err(_) => break,
            },
            _ = tick.tick(), if args.status_interval > 0 => {
                let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
                println!("runtime tasks={tasks}");
                for s in speaker.peers() {
                    println!("{}", status_line(&s));
                }
            }
            _ = hup.recv() => match read_routes(&args) {
                Ok(r) => {
                    let n = r.len();
                    speaker.set_routes(with_next_hop(r));
                    println!("routes read again: {n} paths");
                }
                Err(e) => println!("routes not read again, the previous ones stay: {e:#}"),
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    println!("stopping");
    crate::node::stop_speaker(&speaker, Duration::ZERO, args.graceful_stop).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: AnnounceArgs,
    }

    #[test]
    fn status_lines_read_as_text() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5s");
        assert_eq!(human_duration(Duration::from_secs(192)), "3m12s");
        assert_eq!(human_duration(Duration::from_secs(7500)), "2h5m");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400 + 4 * 3600 + 5)), "3d4h");
        let mut st = mooring_bgp::speaker::PeerStatus {
            state: mooring_bgp::fsm::State::Established,
            established_since: Some(std::time::SystemTime::now() - Duration::from_secs(5)),
            prefixes_sent: 3,
            ..mooring_bgp::speaker::PeerStatus::new("198.18.0.1".parse().unwrap(), 64512)
        };
        assert_eq!(status_line(&st), "status 198.18.0.1 Established up 5s sent=3 received=0 flaps=0");
        st.paths_not_sent = 2;
        assert_eq!(
            status_line(&st),
            "status 198.18.0.1 Established up 5s sent=3 received=0 flaps=0 paths_not_sent=2 (no ADD-PATH)"
        );
        st.paths_not_sent = 0;
        st.established_since = None;
        st.state = mooring_bgp::fsm::State::Active;
        st.last_error = Some("connection refused".into());
        assert_eq!(
            status_line(&st),
            "status 198.18.0.1 Active down sent=3 received=0 flaps=0, last error: connection refused"
        );
    }

    #[test]
    fn a_bare_address_is_a_host_prefix() {
        let a = cli(&["--as", "64513", "--prefix", "203.0.113.10", "--prefix", "2001:db8:ffff::1"]).unwrap();
        let p: Vec<String> = a.prefixes.iter().map(|p| p.to_string()).collect();
        assert_eq!(p, ["203.0.113.10/32", "2001:db8:ffff::1/128"]);
    }

    #[test]
    fn routes_take_one_path_per_next_hop() {
        let dir = std::env::temp_dir().join(format!("mooring-announce-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("routes.txt");
        std::fs::write(&file, "# a comment\n203.0.113.2/32 198.18.1.21 198.18.1.22\n\n203.0.113.3/32 # default hops\n")
            .unwrap();
        let f = file.to_str().unwrap();
        let a = cli(&["--as", "1", "--prefix", "203.0.113.1", "--next-hop", "198.18.1.9", "--next-hop", "198.18.1.8"])
            .unwrap();
        let a = AnnounceArgs { prefix_file: Some(file.clone()), ..a };
        let r: Vec<String> = read_routes(&a).unwrap().iter().map(|(p, nh)| format!("{p} {}", nh.unwrap())).collect();
        assert_eq!(
            r,
            [
                "203.0.113.1/32 198.18.1.9",
                "203.0.113.1/32 198.18.1.8",
                "203.0.113.2/32 198.18.1.21",
                "203.0.113.2/32 198.18.1.22",
                "203.0.113.3/32 198.18.1.9",
                "203.0.113.3/32 198.18.1.8"
            ]
        );
        std::fs::write(&file, "203.0.113.2/32 not-an-address\n").unwrap();
        let e = read_routes(&a).unwrap_err().to_string();
        assert!(e.contains(&format!("{f}:1: bad next hop")), "{e}");
        let plain = cli(&["--as", "1", "--prefix", "203.0.113.1"]).unwrap();
        assert_eq!(read_routes(&plain).unwrap(), [("203.0.113.1/32".parse().unwrap(), None)], "next-hop self");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn cli(extra: &[&str]) -> Result<AnnounceArgs, clap::Error> {
        use clap::Parser;
        let base = ["announce", "--router-id", "192.0.2.1", "--peer", "198.18.0.1,as=1"];
        Cli::try_parse_from(base.iter().chain(extra)).map(|c| c.args)
    }

    #[test]
    fn speaker_options_are_checked() {
        assert_eq!(cli(&["--as", "4294967294"]).unwrap().local_as, 4294967294);
        for bad in [["--as", "0"], ["--as", "4294967295"]] {
            assert!(cli(&bad).unwrap_err().to_string().contains("not a usable AS number"), "{bad:?}");
        }
        let a = cli(&["--as", "1", "--graceful-restart", "4095", "--community", "no-export", "--community", "1:2"])
            .unwrap();
        assert_eq!((a.graceful_restart, a.communities), (Some(4095), vec![Community::NO_EXPORT, Community::new(1, 2)]));
        assert!(cli(&["--as", "1", "--graceful-restart", "0"]).is_err());
        assert!(cli(&["--as", "1", "--graceful-restart", "4096"]).is_err());
        // The one community parser: names exactly as written, halves within 16 bits.
        for bad in ["NO_EXPORT", "65536:1", " 1:2"] {
            assert!(cli(&["--as", "1", "--community", bad]).is_err(), "{bad}");
        }
        assert!(cli(&["--as", "1", "--large-community", "1:2:4294967296"]).is_err());
    }

    #[test]
    fn peer_specs() {
        let p =
            parse_peer("198.18.0.1,as=64512,passive,md5=s3cret,hold=9,max-prefixes=100:warn,families=ipv4").unwrap();
        assert_eq!(p.address, "198.18.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.remote_as, 64512);
        assert!(p.passive);
        assert_eq!(p.md5_password.as_deref(), Some("s3cret"));
        assert_eq!(p.hold_time, 9);
        assert_eq!(p.max_prefixes, Some(MaxPrefixes::new(100, false)));
        assert_eq!(p.families, vec![Family::IPV4_UNICAST]);
        assert!(parse_peer("198.18.0.1").unwrap_err().to_string().contains("as=N"));
        for (bad, why) in [
            ("hold=2", "hold time 2 s: must be 0 or 3..=65535 s"),
            ("hold=65536", "hold time 65536 s"),
            ("hold=9,keepalive=9", "below the hold time"),
            ("hold=0,keepalive=3", "or 0 when the hold time is 0"),
            ("keepalive=0", "must be above 0"),
            ("as=0", "bad as=0"),
            ("as=4294967295", "bad as=4294967295"),
            ("bfd=5", "BFD interval 5ms: must be 10ms..=60s"),
            ("bfd=100:0", "BFD multiplier 0"),
        ] {
            let e = format!("{:#}", parse_peer(&format!("198.18.0.1,as=1,{bad}")).unwrap_err());
            assert!(e.contains(why), "{bad}: {e}");
        }
        let p = parse_peer("198.18.0.1,as=1,hold=9,keepalive=3").unwrap();
        assert_eq!((p.hold_time, p.keepalive), (9, Some(3)));
        assert_eq!(parse_peer("198.18.0.1,as=1,hold=0,keepalive=0").unwrap().keepalive, Some(0));
        assert!(parse_peer("198.18.0.1,as=1,bogus").is_err());
        assert!(parse_peer("nope,as=1").is_err());
        assert_eq!(parse_peer("198.18.0.1,as=1").unwrap().bfd, None);
        assert_eq!(parse_peer("198.18.0.1,as=1,bfd").unwrap().bfd, Some(BfdConfig::default()));
        let b = parse_peer("198.18.0.1,as=1,bfd=100:5").unwrap().bfd.unwrap();
        assert_eq!((b.min_tx, b.min_rx, b.multiplier), (Duration::from_millis(100), Duration::from_millis(100), 5));
        assert_eq!(parse_peer("198.18.0.1,as=1,bfd=50").unwrap().bfd.unwrap().multiplier, 3);
        assert_eq!(parse_peer("198.18.0.1,as=1,bfd=60000:255").unwrap().bfd.unwrap().min_rx, Duration::from_secs(60));
        for bad in ["bfd=5", "bfd=100:0", "bfd=100:256", "bfd=x", "bfd=100:", "bfd=60001"] {
            assert!(parse_peer(&format!("198.18.0.1,as=1,{bad}")).is_err(), "{bad}");
        }
    }
}
