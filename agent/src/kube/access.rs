//! Every Kubernetes API call each component can make, as RBAC rules: the
//! single source the chart's RBAC is checked against (`helm/rbac.json` is
//! this table, kept equal by a test; `helm/check.sh` asserts the rendered
//! roles are exactly it) and the mock API server tests check every request
//! against ([`permits`]). Least privilege: a rule here is one the code
//! uses, with exactly the verbs it uses.

use http::Method;
use serde::Serialize;

use super::stores::Component;

/// Where a rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// A ClusterRole.
    Cluster,
    /// A Role in the release namespace, limited to the leader-election Lease by name.
    LeaseByName,
    /// The Lease create (`create` cannot be limited by name).
    Lease,
    /// Roles in the Secrets' namespaces, limited to the Secret names the chart lists.
    SecretsByName,
}

/// One rule: `verbs` on `resource` (with `/subresource`) of `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub api_group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    pub scope: Scope,
    /// Why the code needs it.
    pub why: &'static str,
}

const fn rule(
    api_group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
    why: &'static str,
) -> Rule {
    Rule { api_group, resource, verbs, scope: Scope::Cluster, why }
}

const WATCH: &[&str] = &["list", "watch"];

/// The controller's calls.
pub const CONTROLLER: &[Rule] = &[
    rule("", "services", WATCH, "Services to allocate for"),
    rule("", "namespaces", WATCH, "pool rules by namespace and namespace labels"),
    rule("", "nodes", WATCH, "node names (metadata only): BgpPeer status entries of departed nodes are removed"),
    rule("mooring.io", "eips", WATCH, "the address pools"),
    rule("mooring.io", "bgppeers", WATCH, "BgpPeer status: the Established count, stale entries"),
    rule("", "services/status", &["patch"], "status.loadBalancer.ingress"),
    rule("mooring.io", "eips/status", &["patch"], "pool size, used, free, conditions"),
    rule("mooring.io", "bgppeers/status", &["patch"], "status.established, entries of departed or silent nodes"),
    rule("events.k8s.io", "events", &["create", "patch"], "Events on Services (the recorder patches a repeated one)"),
    Rule {
        api_group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "update"],
        scope: Scope::LeaseByName,
        why: "leader election",
    },
    Rule {
        api_group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["create"],
        scope: Scope::Lease,
        why: "leader election: the first replica creates the Lease",
    },
];

/// The speaker's calls.
pub const SPEAKER: &[Rule] = &[
    rule("", "services", WATCH, "VIPs from Service status"),
    rule("", "nodes", WATCH, "this node's labels, addresses and cordon; other nodes for Local services"),
    rule("discovery.k8s.io", "endpointslices", WATCH, "ready endpoints per node (Local services, weights)"),
    rule("mooring.io", "bgpconfs", WATCH, "the BGP settings"),
    rule("mooring.io", "bgppeers", WATCH, "the peers"),
    rule("mooring.io", "eips", WATCH, "pool advertisement attributes"),
    rule("mooring.io", "bgpadvertisements", WATCH, "which VIPs go to which peers from which nodes"),
    rule("mooring.io", "bgppeers/status", &["patch"], "this node's session entries"),
    Rule {
        api_group: "",
        resource: "secrets",
        verbs: &["get"],
        scope: Scope::SecretsByName,
        why: "BgpPeer passwordSecretRef (get by name only: no list, no watch)",
    },
];

/// The rules of `component`.
pub fn rules(component: Component) -> &'static [Rule] {
    match component {
        Component::Controller => CONTROLLER,
        Component::Speaker => SPEAKER,
    }
}

/// The table as `helm/rbac.json` holds it (keys sorted, whether or not
/// serde_json's `preserve_order` is on in a build).
pub fn table_json() -> String {
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let m: std::collections::BTreeMap<String, serde_json::Value> =
                    m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::Value::Object(m.into_iter().collect())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(sorted).collect()),
            v => v,
        }
    }
    let t = sorted(serde_json::json!({ "controller": CONTROLLER, "speaker": SPEAKER }));
    serde_json::to_string_pretty(&t).expect("serializable") + "\n"
}

/// The RBAC verb and (group, resource[/subresource]) of a request, from its
/// method and path (`/api/v1/...` or `/apis/GROUP/VERSION/...`).
pub fn classify(method: &Method, path: &str, query: &str) -> Option<(&'static str, String, String)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _v, rest @ ..] => (String::new(), rest),
        ["apis", g, _v, rest @ ..] => (g.to_string(), rest),
        _ => return None,
    };
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        r => r,
    };
    let (resource, named) = match rest {
        [r] => (r.to_string(), false),
        [r, _name] => (r.to_string(), true),
        [r, _name, sub] => (format!("{r}/{sub}"), true),
        _ => return None,
    };
    let watch = query.split('&').any(|kv| kv == "watch=true");
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => return None,
    };
    Some((verb, group, resource))
}

/// Whether `component`'s rules allow this request.
pub fn permits(component: Component, method: &Method, path: &str, query: &str) -> bool {
    let Some((verb, group, resource)) = classify(method, path, query) else { return false };
    rules(component).iter().any(|r| r.api_group == group && r.resource == resource && r.verbs.contains(&verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_verbs_and_resources() {
        let c = |m: Method, p: &str, q: &str| classify(&m, p, q).map(|(v, g, r)| format!("{v} {g}/{r}"));
        assert_eq!(c(Method::GET, "/api/v1/services", "").as_deref(), Some("list /services"));
        assert_eq!(
            c(Method::GET, "/api/v1/services", "&watch=true&resourceVersion=1").as_deref(),
            Some("watch /services")
        );
        assert_eq!(
            c(Method::PATCH, "/api/v1/namespaces/shop/services/web/status", "").as_deref(),
            Some("patch /services/status")
        );
        assert_eq!(
            c(Method::PUT, "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", "").as_deref(),
            Some("update coordination.k8s.io/leases")
        );
        assert_eq!(c(Method::GET, "/api/v1/namespaces/mooring/secrets/bgp", "").as_deref(), Some("get /secrets"));
        assert!(permits(Component::Speaker, &Method::GET, "/api/v1/namespaces/m/secrets/bgp", ""));
        assert!(!permits(Component::Speaker, &Method::GET, "/api/v1/namespaces/m/secrets", ""), "no list of Secrets");
        assert!(!permits(Component::Controller, &Method::GET, "/api/v1/namespaces/m/secrets/bgp", ""));
        assert!(!permits(Component::Speaker, &Method::PATCH, "/api/v1/namespaces/shop/services/web/status", ""));
    }

    #[test]
    fn the_chart_holds_this_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/rbac.json");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == table_json(),
            "{} differs from the code's table: regenerate with `cargo run -p mooring-agent -- rbac > helm/rbac.json`",
            path.display()
        );
    }
}
