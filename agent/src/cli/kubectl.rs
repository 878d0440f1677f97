//! `kubectl mooring status` (the binary installed as `kubectl-mooring`): what the cluster's
//! Mooring objects say — each BgpPeer's sessions per node (from its status), each Eip's use,
//! each LoadBalancer Service's addresses — read with the user's kubeconfig. Only lists;
//! [`table`] is pure. A node's own view (`mooring status`) has more: this is the cluster's.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use kube::{Api, Client};
use mooring_crds::{BgpPeer, Eip};
use serde::Serialize;

use crate::cli::plan::{columns, Output};

/// `kubectl mooring ...`
#[derive(clap::Parser, Debug)]
#[command(
    name = "kubectl mooring",
    bin_name = "kubectl mooring",
    version,
    about = "Mooring's BGP sessions, pools and Service addresses in the cluster"
)]
pub struct KubectlCli {
    #[command(subcommand)]
    pub command: KubectlCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum KubectlCommand {
    /// Show every BgpPeer's sessions per node, every Eip's use and every LoadBalancer
    /// Service's addresses, from their statuses.
    Status {
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    pub sessions: Vec<SessionRow>,
    pub pools: Vec<PoolRow>,
    pub services: Vec<ServiceRow>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRow {
    pub peer: String,
    pub address: String,
    pub node: String,
    pub state: String,
    pub established_since: Option<String>,
    pub prefixes_sent: Option<i64>,
    pub prefixes_received: Option<i64>,
    /// Paths held back because the peer does not receive ADD-PATH.
    pub paths_not_sent: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PoolRow {
    pub name: String,
    pub size: Option<i64>,
    pub used: Option<i64>,
    pub free: Option<i64>,
    pub ready: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRow {
    pub namespace: String,
    pub name: String,
    pub class: Option<String>,
    pub addresses: Vec<String>,
}

/// List the objects and build the report.
pub async fn fetch(client: Client) -> Result<ClusterStatus> {
    let lp = ListParams::default();
    let peers = Api::<BgpPeer>::all(client.clone()).list(&lp).await.context("listing BgpPeers")?;
    let eips = Api::<Eip>::all(client.clone()).list(&lp).await.context("listing Eips")?;
    let services = Api::<Service>::all(client).list(&lp).await.context("listing Services")?;
    Ok(report(&peers.items, &eips.items, &services.items))
}

/// Pure: the report of these objects.
pub fn report(peers: &[BgpPeer], eips: &[Eip], services: &[Service]) -> ClusterStatus {
    let name = |m: &kube::api::ObjectMeta| m.name.clone().unwrap_or_default();
    let mut sessions = vec![];
    for p in peers {
        let nodes = p.status.as_ref().map(|s| s.nodes.clone()).unwrap_or_default();
        if nodes.is_empty() {
            sessions.push(SessionRow {
                peer: name(&p.metadata),
                address: p.spec.peer_address.to_string(),
                node: "-".into(),
                state: "(no node reports it)".into(),
                ..SessionRow::default()
            });
        }
        for n in nodes {
            sessions.push(SessionRow {
                peer: name(&p.metadata),
                address: p.spec.peer_address.to_string(),
                node: n.node,
                state: n.state.to_string(),
                established_since: n.established_since.map(|t| t.0.to_string()),
                prefixes_sent: n.prefixes_sent,
                prefixes_received: n.prefixes_received,
                paths_not_sent: n.paths_not_sent,
                last_error: n.last_error,
            });
        }
    }
    let pools = eips
        .iter()
        .map(|e| {
            let st = e.status.clone().unwrap_or_default();
            PoolRow { name: name(&e.metadata), size: st.size, used: st.used, free: st.free, ready: st.ready }
        })
        .collect();
    let services = services
        .iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"))
        .map(|s| ServiceRow {
            namespace: s.metadata.namespace.clone().unwrap_or_default(),
            name: name(&s.metadata),
            class: s.spec.as_ref().and_then(|s| s.load_balancer_class.clone()),
            addresses: s
                .status
                .as_ref()
                .and_then(|st| st.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .map(|i| i.iter().filter_map(|i| i.ip.clone()).collect())
                .unwrap_or_default(),
        })
        .collect();
    ClusterStatus { sessions, pools, services }
}

fn or_dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// Three tables: sessions, pools, Services.
pub fn table(s: &ClusterStatus) -> String {
    let mut rows =
        vec![["BGPPEER", "ADDRESS", "NODE", "STATE", "SINCE", "SENT", "RCVD", "LAST ERROR"].map(String::from).to_vec()];
    rows.extend(s.sessions.iter().map(|r| {
        vec![
            r.peer.clone(),
            r.address.clone(),
            r.node.clone(),
            r.state.clone(),
            or_dash(&r.established_since),
            or_dash(&r.prefixes_sent),
            or_dash(&r.prefixes_received),
            or_dash(&r.last_error),
        ]
    }));
    let mut out = columns(&rows);
    for r in s.sessions.iter().filter(|r| r.paths_not_sent.is_some()) {
        out.push_str(&format!(
            "  {} on {}: {} paths not sent (the peer does not receive ADD-PATH)\n",
            r.peer,
            r.node,
            or_dash(&r.paths_not_sent)
        ));
    }
    let mut rows = vec![["EIP", "SIZE", "USED", "FREE", "READY"].map(String::from).to_vec()];
    rows.extend(
        s.pools
            .iter()
            .map(|p| vec![p.name.clone(), or_dash(&p.size), or_dash(&p.used), or_dash(&p.free), p.ready.to_string()]),
    );
    out.push('\n');
    out.push_str(&columns(&rows));
    let mut rows = vec![["SERVICE", "CLASS", "ADDRESSES"].map(String::from).to_vec()];
    rows.extend(s.services.iter().map(|v| {
        vec![
            format!("{}/{}", v.namespace, v.name),
            or_dash(&v.class),
            if v.addresses.is_empty() { "(pending)".into() } else { v.addresses.join(", ") },
        ]
    }));
    out.push('\n');
    out.push_str(&columns(&rows));
    out
}

/// Run `kubectl mooring ...` with the user's kubeconfig.
pub async fn run(cli: KubectlCli) -> Result<()> {
    let KubectlCommand::Status { output } = cli.command;
    let client = Client::try_default().await.context("reading the kubeconfig")?;
    let s = fetch(client).await?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&s)?),
        Output::Table => print!("{}", table(&s)),
    }
    Ok(())
}

/// Whether the program was started as the kubectl plugin (`kubectl-mooring`, also through
/// `kubectl mooring`, which runs it by that name).
pub fn invoked_as_plugin(argv0: &str) -> bool {
    std::path::Path::new(argv0).file_stem().and_then(|s| s.to_str()) == Some("kubectl-mooring")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_is_known_by_its_name() {
        assert!(invoked_as_plugin("/usr/local/bin/kubectl-mooring"));
        assert!(invoked_as_plugin("kubectl-mooring"));
        assert!(invoked_as_plugin("kubectl-mooring.exe"));
        assert!(!invoked_as_plugin("/usr/local/bin/mooring"));
    }
}
