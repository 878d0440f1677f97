//! `mooring plan`: what Mooring would do with a set of manifests — each Service's addresses
//! and problems, each pool's use, each node's routes (with the peers they go to and their
//! attributes) and the objects that failed their checks — as a table or as one JSON object.
//! It reads files only (the manifests, and the state directory's held addresses and last
//! good objects, without changing them) and touches no network. The planning is the node
//! loop's: [`Manifests`] → [`LastGood`] → [`model::plan::plan`]; [`report`] is pure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::model::classes::Classes;
use crate::model::desired::{self, Desired};
use crate::model::last_good::{LastGood, Saved};
use crate::model::plan::{self, Scope, Vips};
use crate::model::pool_status;
use crate::node::StateStore;
use crate::sources::manifests::Manifests;

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// A manifest file, or a directory of them (read recursively), as for `standalone`.
    #[arg(long)]
    pub config: PathBuf,
    /// A node's state directory: the addresses its Services hold, and its last good objects.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Plan this node only (default: every Node in the manifests).
    #[arg(long)]
    pub node: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Cordoned nodes stop announcing Cluster services (as `--exclude-cordoned` of the node).
    #[arg(long)]
    pub exclude_cordoned: bool,
    #[command(flatten)]
    pub classes: Classes,
}

/// How the plan is printed.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

/// Everything `mooring plan` prints.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub services: Vec<ServiceReport>,
    pub pools: Vec<PoolReport>,
    pub nodes: Vec<NodeReport>,
    pub invalid: Vec<Invalid>,
    /// Files of the state directory that could not be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub state: Vec<String>,
}

/// One Service of ours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceReport {
    pub namespace: String,
    pub name: String,
    pub addresses: Vec<String>,
    /// The pool of the first address.
    pub pool: Option<String>,
    /// Why it has no (or not all) addresses, and what is wrong with its annotations.
    pub problems: Vec<String>,
    /// It has every address it needs.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolReport {
    pub name: String,
    pub size: i64,
    pub used: i64,
    pub free: i64,
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub routes: Vec<RouteReport>,
    /// Why the node would not (fully) work: no BgpConf, no router ID, a missing Secret.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteReport {
    pub prefix: String,
    /// The first Service behind the route (`namespace/name`); all of them in `services`.
    pub service: String,
    pub services: Vec<String>,
    /// The BgpPeers it is announced to.
    pub peers: Vec<String>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub link_bandwidth: Option<LinkBandwidth>,
    pub as_path_prepend: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkBandwidth {
    pub bytes_per_second: f32,
    pub transitive: bool,
}

/// An object that failed its checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invalid {
    pub file: String,
    pub kind: String,
    pub name: String,
    pub field: String,
    pub message: String,
}

impl Report {
    /// Every object is valid, every Service of ours has its addresses, every node can work.
    pub fn ok(&self) -> bool {
        self.invalid.is_empty()
            && self.services.iter().all(|s| s.complete)
            && self.nodes.iter().all(|n| n.problems.is_empty())
            && self.state.is_empty()
    }
}

/// The plan for `manifests`, as the nodes would make it: `held` are the addresses the state
/// directory keeps, `saved` its last good objects; `only` picks one node.
pub fn report(
    manifests: &Manifests,
    held: &BTreeMap<String, Vec<IpAddr>>,
    saved: Option<Saved>,
    only: Option<&str>,
    scope: &Scope,
) -> Report {
    let mut objects = manifests.objects();
    let mut last_good = saved.map(LastGood::from_saved).unwrap_or_default();
    let rejected = last_good.filter(&mut objects);
    let file_of = |kind: &str, ns: &str, name: &str| {
        let key = (kind.to_string(), ns.to_string(), name.to_string());
        manifests.objects.get(&key).map(|(f, _)| f.display().to_string()).unwrap_or_default()
    };
    let mut invalid: Vec<Invalid> = manifests
        .errors
        .iter()
        .map(|e| Invalid {
            file: e.file.display().to_string(),
            kind: e.kind.clone().unwrap_or_default(),
            name: e.name.clone().unwrap_or_default(),
            field: e.field.clone(),
            message: format!("document {}: {}", e.document, e.message),
        })
        .collect();
    for r in &rejected {
        for p in r.problems() {
            invalid.push(Invalid {
                file: file_of(&r.kind, "", &r.name),
                kind: r.kind.clone(),
                name: r.name.clone(),
                field: p.field,
                message: p.message,
            });
        }
    }

    // The allocation every node computes, and the pools' use of it.
    let mut ignored = vec![];
    let snap = plan::snapshot(&objects, held, scope, &mut ignored);
    let d: Desired = desired::allocate(&snap);
    let rejected_eips: BTreeMap<String, String> =
        rejected.iter().filter(|r| r.kind == "Eip").map(|r| (r.name.clone(), r.message())).collect();
    let pools = pool_status::pool_statuses(&objects.eips, &rejected_eips, &d)
        .into_iter()
        .map(|(name, st)| PoolReport { name, size: st.size, used: st.used, free: st.free, ready: st.ready })
        .collect();
    let mut services = vec![];
    for svc in snap.services.iter().filter(|s| desired::is_ours(s, &snap.classes)) {
        let key = desired::key_of(svc);
        let (namespace, name) = key.split_once('/').map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or_default();
        let a = d.allocations.get(&key).cloned().unwrap_or_default();
        let spec_errors = d.spec_errors.get(&key).cloned().unwrap_or_default();
        for e in &spec_errors {
            invalid.push(Invalid {
                file: file_of("Service", &namespace, &name),
                kind: "Service".into(),
                name: key.clone(),
                field: e.field.clone(),
                message: e.message.clone(),
            });
        }
        let mut problems: Vec<String> = a.errors.iter().map(|e| format!("{}: {e}", e.reason())).collect();
        problems.extend(spec_errors.iter().map(|e| format!("{}: {}", e.field, e.message)));
        services.push(ServiceReport {
            namespace,
            name,
            addresses: a.addresses.iter().map(|(ip, _)| ip.to_string()).collect(),
            pool: a.addresses.first().map(|(_, p)| p.clone()),
            complete: a.complete(),
            problems,
        });
    }

    // Each node's routes, from the node loop's plan.
    let peer_names: BTreeMap<mooring_bgp::speaker::PeerKey, String> = objects
        .peers
        .iter()
        .filter_map(|p| {
            let address = mooring_crds::parse::parse_ip(&p.spec.peer_address).ok()?;
            Some((mooring_bgp::speaker::PeerKey { vrf: p.spec.vrf.clone(), address }, p.metadata.name.clone()?))
        })
        .collect();
    let node_names: Vec<String> = match only {
        Some(n) => vec![n.to_string()],
        None => objects.nodes.iter().filter_map(|n| n.metadata.name.clone()).collect(),
    };
    let known: BTreeSet<(String, String, String)> =
        invalid.iter().map(|i| (i.kind.clone(), i.field.clone(), i.message.clone())).collect();
    let mut nodes = vec![];
    for node in node_names {
        let p = plan::plan(&objects, &node, Vips::Allocate(held), scope);
        let routes = p
            .routes
            .iter()
            .map(|(prefix, attrs)| {
                let behind: Vec<String> = p.route_services.get(prefix).into_iter().flatten().cloned().collect();
                let family = mooring_bgp::wire::Family::of(prefix);
                let peers = p
                    .peers
                    .iter()
                    .filter(|c| c.families.contains(&family) && attrs.is_for(c.address))
                    .map(|c| peer_names.get(&c.key()).cloned().unwrap_or_else(|| c.key().to_string()))
                    .collect();
                RouteReport {
                    prefix: prefix.to_string(),
                    service: behind.first().cloned().unwrap_or_default(),
                    services: behind,
                    peers,
                    communities: attrs.communities.iter().map(|c| c.to_string()).collect(),
                    large_communities: attrs.large_communities.iter().map(|c| c.to_string()).collect(),
                    med: attrs.med,
                    local_pref: attrs.local_pref,
                    link_bandwidth: attrs.ext_communities.iter().find_map(|c| match c {
                        mooring_bgp::wire::ExtCommunity::LinkBandwidth { bytes_per_sec, transitive, .. } => {
                            Some(LinkBandwidth { bytes_per_second: *bytes_per_sec, transitive: *transitive })
                        }
                        _ => None,
                    }),
                    as_path_prepend: attrs.as_path_prepend,
                }
            })
            .collect();
        // The plan's problems about this node; those of Services and of rejected objects are reported above.
        let problems = p
            .problems
            .iter()
            .filter(|x| !x.object.starts_with("Service/"))
            .filter(|x| {
                let kind = x.object.split('/').next().unwrap_or_default().to_string();
                !known.contains(&(kind, x.field.clone(), x.message.clone()))
            })
            .map(|x| x.to_string())
            .collect();
        nodes.push(NodeReport { name: node, routes, problems });
    }
    Report { services, pools, nodes, invalid, state: vec![] }
}

/// The report as tables, for people.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
    let mut rows = vec![vec!["SERVICE".into(), "ADDRESSES".into(), "POOL".into(), "PROBLEMS".into()]];
    for s in &r.services {
        rows.push(vec![
            format!("{}/{}", s.namespace, s.name),
            dash(&s.addresses.join(",")),
            dash(s.pool.as_deref().unwrap_or("")),
            dash(&s.problems.join("; ")),
        ]);
    }
    out.push_str(&columns(&rows));
    let mut rows = vec![vec!["POOL".into(), "SIZE".into(), "USED".into(), "FREE".into(), "READY".into()]];
    for p in &r.pools {
        rows.push(vec![
            p.name.clone(),
            p.size.to_string(),
            p.used.to_string(),
            p.free.to_string(),
            p.ready.to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&columns(&rows));
    let mut rows = vec![vec!["NODE".into(), "PREFIX".into(), "SERVICES".into(), "PEERS".into(), "ATTRIBUTES".into()]];
    for n in &r.nodes {
        if n.routes.is_empty() {
            rows.push(vec![n.name.clone(), "-".into(), "-".into(), "-".into(), "-".into()]);
        }
        for rt in &n.routes {
            let mut attrs = vec![];
            attrs.extend(rt.communities.iter().cloned());
            attrs.extend(rt.large_communities.iter().cloned());
            attrs.extend(rt.med.map(|m| format!("med {m}")));
            attrs.extend(rt.local_pref.map(|l| format!("local-pref {l}")));
            if rt.as_path_prepend > 0 {
                attrs.push(format!("prepend {}", rt.as_path_prepend));
            }
            attrs.extend(rt.link_bandwidth.as_ref().map(|b| format!("link-bandwidth {} B/s", b.bytes_per_second)));
            rows.push(vec![
                n.name.clone(),
                rt.prefix.clone(),
                rt.services.join(","),
                dash(&rt.peers.join(",")),
                dash(&attrs.join(" ")),
            ]);
        }
    }
    out.push('\n');
    out.push_str(&columns(&rows));
    for n in r.nodes.iter().filter(|n| !n.problems.is_empty()) {
        out.push_str(&format!("\nnode {}:\n", n.name));
        for p in &n.problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    if !r.invalid.is_empty() {
        out.push_str("\nINVALID\n");
        for i in &r.invalid {
            let what = [i.kind.as_str(), i.name.as_str(), i.field.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            out.push_str(&format!("  {}: {what}: {}\n", dash(&i.file), i.message));
        }
    }
    for s in &r.state {
        out.push_str(&format!("\nstate directory: {s}\n"));
    }
    out
}

/// Rows as left-aligned columns.
pub(crate) fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..n).map(|i| rows.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Print the plan; `Ok(true)` when [`Report::ok`].
pub fn run(args: PlanArgs) -> Result<bool> {
    anyhow::ensure!(args.config.exists(), "--config {}: no such file or directory", args.config.display());
    let manifests = Manifests::load(&args.config, None);
    let (held, saved, notes) = match &args.state_dir {
        Some(dir) => {
            anyhow::ensure!(dir.is_dir(), "--state-dir {}: not a directory", dir.display());
            StateStore::inspect(dir)
        }
        None => (BTreeMap::new(), None, vec![]),
    };
    let scope = Scope { exclude_cordoned: args.exclude_cordoned, classes: args.classes.clone() };
    let mut r = report(&manifests, &held, saved, args.node.as_deref(), &scope);
    r.state = notes;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        Output::Table => print!("{}", table(&r)),
    }
    Ok(r.ok())
}
