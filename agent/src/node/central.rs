//! The central speaker's part of the node loop (`--central`): the central plan
//! ([`crate::model::central`]) instead of a node's, and the node probes that gate its
//! paths — the planner names each path's probes, the [`Prober`] runs them, and a path
//! whose probes are all down is left out before the flap damper. Not here: planning
//! (the model) and probing (`probe`).

use std::net::Ipv4Addr;

use ipnetwork::IpNetwork;
use mooring_bgp::speaker::RouteAttrs;
use mooring_crds::{NodeCheck, NodeProbeSettings};
use tracing::{info, warn};

use super::probe::{Check, ProbeSettings, Prober, Target};
use crate::model::central::{self, CentralOptions, CentralPlan, Gates, ProbeTarget};
use crate::model::plan::{Objects, Plan, Scope, Vips};

/// The central speaker's state in the node loop.
pub struct Central {
    options: CentralOptions,
    prober: Prober,
    gates: Gates,
    settings: Option<NodeProbeSettings>,
    /// Paths left out, for the log when it changes.
    withdrawn: Vec<(IpNetwork, std::net::IpAddr)>,
}

/// The prober's form of a planned probe.
fn target(t: &ProbeTarget) -> Target {
    let check = match &t.check {
        NodeCheck::Http { port, path } => Check::Http { port: *port, path: path.clone() },
        NodeCheck::Tcp { port } => Check::Tcp { port: *port },
    };
    Target { address: t.address, check }
}

/// BgpConf `spec.nodeProbe` as the prober takes it.
fn probe_settings(s: &NodeProbeSettings) -> ProbeSettings {
    ProbeSettings {
        interval: s.interval,
        timeout: s.timeout,
        fall: s.failures,
        rise: s.successes,
        ..ProbeSettings::default()
    }
}

impl Central {
    pub fn new(router_id: Option<Ipv4Addr>, hostname: String, graceful_shutdown_on_cordon: bool) -> Central {
        Central {
            options: CentralOptions { router_id, hostname: Some(hostname), graceful_shutdown_on_cordon },
            prober: Prober::new(probe_settings(&NodeProbeSettings::default())),
            gates: Gates::new(),
            settings: None,
            withdrawn: vec![],
        }
    }

    /// The central plan; the prober is set to probe what it names, as it says.
    pub fn plan(&mut self, objects: &Objects, vips: Vips<'_>, scope: &Scope) -> Plan {
        let CentralPlan { plan, gates, probe } = central::plan(objects, vips, scope, &self.options);
        if self.settings.as_ref() != Some(&probe) {
            info!(
                "node probes every {} ms, timeout {} ms, down after {} failures, up after {} passes",
                probe.interval.as_millis(),
                probe.timeout.as_millis(),
                probe.failures,
                probe.successes
            );
            self.prober.set_settings(probe_settings(&probe));
            self.settings = Some(probe);
        }
        let targets = gates.values().flatten().map(target).collect();
        self.prober.set_targets(targets);
        self.gates = gates;
        plan
    }

    /// The routes whose next hops pass their probes; the number left out.
    pub fn gate(&mut self, routes: Vec<(IpNetwork, RouteAttrs)>) -> (Vec<(IpNetwork, RouteAttrs)>, usize) {
        let before: Vec<_> = routes.iter().filter_map(|(p, a)| Some((*p, a.next_hop?))).collect();
        let kept = central::gate(routes, &self.gates, |t| self.prober.is_up(&target(t)));
        // A set: with thousands of VIPs and hundreds of nodes a scan per path would be quadratic.
        let kept_paths: std::collections::HashSet<(IpNetwork, std::net::IpAddr)> =
            kept.iter().filter_map(|(p, a)| Some((*p, a.next_hop?))).collect();
        let withdrawn: Vec<_> = before.into_iter().filter(|path| !kept_paths.contains(path)).collect();
        if withdrawn != self.withdrawn {
            for (prefix, nh) in withdrawn.iter().filter(|w| !self.withdrawn.contains(w)) {
                warn!(prefix = %prefix, "node probe: {prefix} via {nh} withdrawn (its probes are down)");
            }
            for (prefix, nh) in self.withdrawn.iter().filter(|w| !withdrawn.contains(w)) {
                info!(prefix = %prefix, "node probe: {prefix} via {nh} no longer withheld");
            }
            self.withdrawn = withdrawn;
        }
        (kept, self.withdrawn.len())
    }

    /// Resolves when some probe went up or down. Cancel-safe.
    pub async fn changed(&mut self) {
        self.prober.changed().await
    }
}
