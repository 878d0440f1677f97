//! The `mooring` command.

use std::io::Read;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use mooring_bgp::wire::{frame_len, Message, Negotiated};

#[derive(Parser)]
#[command(name = "mooring", version, about = "BGP/ECMP load balancer for bare-metal Kubernetes")]
struct Cli {
    /// Log as JSON lines (for log collectors).
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Peer with one or more routers and announce prefixes, printing
    /// session state changes.
    Announce(Box<mooring_agent::announce::AnnounceArgs>),
    /// Run the load balancer for one node from manifest files, without Kubernetes.
    Standalone(Box<mooring_agent::standalone::StandaloneArgs>),
    /// Run the controller in a cluster (leader-elected; allocates VIPs, writes status and Events).
    Controller(Box<mooring_agent::kube::controller::ControllerArgs>),
    /// Run a node's speaker in a cluster (announces the node's routes, writes BgpPeer status).
    Speaker(Box<mooring_agent::kube::speaker::SpeakerArgs>),
    /// Show what Mooring would do with a set of manifests (addresses, pools, each node's
    /// routes, invalid objects), touching no network; exit status 1 when an object is
    /// invalid or a Service lacks an address.
    Plan(Box<mooring_agent::cli::plan::PlanArgs>),
    /// Show a running node's BGP sessions and VIPs (asks its admin address, `/status`).
    Status(Box<mooring_agent::cli::status::StatusArgs>),
    /// Convert MetalLB or OpenELB resources into Mooring manifests (stdout), with a comment
    /// for every field that cannot be mapped; exit status 1 when an object written does not
    /// pass Mooring's checks.
    Import(Box<mooring_agent::import::ImportArgs>),
    /// Print the CustomResourceDefinitions (YAML) for BgpConf, BgpPeer and Eip.
    Crds,
    /// Print the Kubernetes API calls each component makes, as RBAC rules
    /// (JSON; `helm/rbac.json`, which the chart's RBAC is checked against).
    #[command(hide = true)]
    Rbac,
    /// Decode BGP messages given as hex (one message or a stream per line;
    /// lines may carry leading labels, as in the golden fixtures) and print them.
    Decode {
        /// File to read, or `-` for standard input.
        input: String,
        /// Decode AS numbers as 2 octets (the session did not negotiate 4-octet AS).
        #[arg(long)]
        two_octet_as: bool,
        /// NLRI carry ADD-PATH path identifiers (IPv4 and IPv6 unicast).
        #[arg(long)]
        add_path: bool,
    },
}

/// The runtime of the controller and the CLI commands: two worker threads.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
}

/// The runtime of a node's speaker (`announce`, `standalone`, `speaker`):
/// one thread. A speaker runs on every node and waits on sockets and
/// timers nearly all the time; with its update groups a change is encoded
/// once for all the peers that share an export, so a second worker would
/// buy little and cost every node its stack, its malloc arena and the
/// wake-ups of an idle worker (benches/RESULTS.md, issue 20).
fn node_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

fn main() -> Result<()> {
    // Installed as `kubectl-mooring`: the kubectl plugin (`kubectl mooring status`).
    let argv0 = std::env::args().next().unwrap_or_default();
    if mooring_agent::cli::kubectl::invoked_as_plugin(&argv0) {
        let cli = <mooring_agent::cli::kubectl::KubectlCli as Parser>::parse();
        return runtime()?.block_on(mooring_agent::cli::kubectl::run(cli));
    }
    let cli = Cli::parse();
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MOORING_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,mooring_agent=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && !cli.log_json);
    if cli.log_json {
        fmt.json().init();
    } else {
        fmt.init();
    }
    match cli.command {
        Command::Announce(args) => node_runtime()?.block_on(mooring_agent::announce::run(*args)),
        Command::Standalone(args) => node_runtime()?.block_on(mooring_agent::standalone::run(*args)),
        Command::Controller(args) => runtime()?.block_on(mooring_agent::kube::controller::run(*args)),
        Command::Speaker(args) => node_runtime()?.block_on(mooring_agent::kube::speaker::run(*args)),
        Command::Plan(args) => {
            if !mooring_agent::cli::plan::run(*args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Status(args) => runtime()?.block_on(mooring_agent::cli::status::run(*args)),
        Command::Import(args) => {
            if !mooring_agent::import::run(*args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Crds => {
            print!("{}", mooring_crds::crds_yaml());
            Ok(())
        }
        Command::Rbac => {
            print!("{}", mooring_agent::kube::access::table_json());
            Ok(())
        }
        Command::Decode { input, two_octet_as, add_path } => {
            let ctx = Negotiated {
                four_octet_as: !two_octet_as,
                extended_message: true,
                add_path_ipv4: add_path,
                add_path_ipv6: add_path,
                extended_next_hop_ipv4: false,
            };
            let mut text = String::new();
            if input == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(&input).with_context(|| format!("reading {input}"))?;
            }
            decode_lines(&text, &ctx)
        }
    }
}

fn decode_lines(text: &str, ctx: &Negotiated) -> Result<()> {
    let mut failed = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The hex is the last word; earlier words are labels.
        let (label, hex) = match line.rsplit_once(char::is_whitespace) {
            Some((l, h)) => (format!("{} ", l.trim()), h),
            None => (String::new(), line),
        };
        let bytes = hex::decode(hex).with_context(|| format!("line {}: not hex", n + 1))?;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let len = match frame_len(rest, ctx.max_message_len()) {
                Ok(Some(len)) if len <= rest.len() => len,
                Ok(_) => {
                    println!("line {}: {label}truncated message ({} octets left)", n + 1, rest.len());
                    failed += 1;
                    break;
                }
                Err(e) => {
                    println!("line {}: {label}bad header: {e}", n + 1);
                    failed += 1;
                    break;
                }
            };
            match Message::decode(&rest[..len], ctx) {
                Ok(m) => println!("{label}{m}"),
                Err(e) => {
                    failed += 1;
                    let notif = e.notification().map(|n| n.describe()).unwrap_or_else(|| "close".into());
                    println!("line {}: {label}error: {e} -> NOTIFICATION {notif}", n + 1);
                }
            }
            rest = &rest[len..];
        }
    }
    if failed > 0 {
        bail!("{failed} message(s) did not decode");
    }
    Ok(())
}
