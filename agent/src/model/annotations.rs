//! The Service annotations that choose a pool, an address and a sharing key: Mooring's own
//! and those of the load balancers people move from — MetalLB's current `metallb.io/*`, its
//! deprecated `metallb.universe.tf/*`, and OpenELB's — each list in its order of precedence.
//! When two of one list disagree, the first wins and the other is reported at its field.
//! Pure; `desired.rs` builds the allocation request from what these return.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

use super::desired::SpecError;
use super::ipam::IpFamily;

/// A pool by name.
pub const POOL: [&str; 4] = [
    "mooring.io/eip",
    "metallb.io/address-pool",
    "metallb.universe.tf/address-pool",
    "eip.openelb.kubesphere.io/v1alpha2",
];
/// Specific addresses, comma-separated (one per family); `spec.loadBalancerIP` comes after them.
pub const IPS: [&str; 4] = [
    "mooring.io/loadBalancerIPs",
    "metallb.io/loadBalancerIPs",
    "metallb.universe.tf/loadBalancerIPs",
    "eip.openelb.kubesphere.io/v1alpha1",
];
/// The sharing key: Services with the same key may share an address.
pub const SHARING: [&str; 3] =
    ["mooring.io/allow-shared-ip", "metallb.io/allow-shared-ip", "metallb.universe.tf/allow-shared-ip"];

/// Whether the model reads a Service annotation: Mooring's own (`mooring.io/…`), the
/// pool, address and sharing keys above and OpenELB's opt-in. The sources drop the others
/// as objects arrive (`kube::stores::prune`, `sources::manifests::prune`).
pub fn read_by_model(key: &str) -> bool {
    key.starts_with("mooring.io/")
        || POOL.contains(&key)
        || IPS.contains(&key)
        || SHARING.contains(&key)
        || key == super::classes::OPENELB_OPT_IN
}

/// The field path of an annotation.
pub fn field(key: &str) -> String {
    format!("metadata.annotations[{key}]")
}

fn value<'a>(svc: &'a Service, key: &str) -> Option<&'a str> {
    svc.metadata.annotations.as_ref()?.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The value of the first of `keys` the Service has (blank values do not count); a later
/// one with another value is reported.
pub fn first_of(svc: &Service, keys: &[&str], errors: &mut Vec<SpecError>) -> Option<String> {
    let mut found: Option<(&str, &str)> = None;
    for key in keys {
        let Some(v) = value(svc, key) else { continue };
        match found {
            None => found = Some((key, v)),
            Some((k, first)) if first != v => errors.push(SpecError {
                field: field(key),
                message: format!("{v:?} disagrees with {k} ({first:?}), which is used"),
            }),
            Some(_) => {}
        }
    }
    found.map(|(_, v)| v.to_string())
}

/// The addresses a Service asks for: at most one per family, from the first source that
/// names one (the IP annotations in [`IPS`] order, then `spec.loadBalancerIP`); what is not
/// an address, a second address of a family in one source, or a source that disagrees with
/// an earlier one is reported and not used.
pub fn requested_addresses(svc: &Service, errors: &mut Vec<SpecError>) -> Vec<IpAddr> {
    let mut sources: Vec<(String, &str)> = IPS.iter().filter_map(|k| value(svc, k).map(|v| (field(k), v))).collect();
    let spec_ip =
        svc.spec.as_ref().and_then(|s| s.load_balancer_ip.as_deref()).map(str::trim).filter(|s| !s.is_empty());
    if let Some(ip) = spec_ip {
        sources.push(("spec.loadBalancerIP".into(), ip));
    }
    let mut out: Vec<(IpAddr, String)> = vec![];
    for (field, list) in sources {
        let mut this: Vec<IpAddr> = vec![];
        for text in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Ok(a) = mooring_crds::parse::parse_ip(text) else {
                errors.push(SpecError { field: field.clone(), message: format!("{text:?} is not an IP address") });
                continue;
            };
            if let Some(other) = this.iter().find(|x| IpFamily::of(x) == IpFamily::of(&a)) {
                if *other != a {
                    let message = format!("{a} is a second address of its family ({other} is used)");
                    errors.push(SpecError { field: field.clone(), message });
                }
                continue;
            }
            this.push(a);
            match out.iter().find(|(x, _)| IpFamily::of(x) == IpFamily::of(&a)) {
                Some((x, _)) if *x == a => {}
                Some((x, from)) => errors.push(SpecError {
                    field: field.clone(),
                    message: format!("asks for {a}, but {from} asks for {x}, which is used"),
                }),
                None => out.push((a, field.clone())),
            }
        }
    }
    out.into_iter().map(|(a, _)| a).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(annotations: serde_json::Value, lb_ip: Option<&str>) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
            "spec": {"type": "LoadBalancer", "loadBalancerIP": lb_ip},
        }))
        .unwrap()
    }

    fn ips(s: &Service) -> (Vec<String>, Vec<String>) {
        let mut e = vec![];
        let a = requested_addresses(s, &mut e).iter().map(|a| a.to_string()).collect();
        (a, e.iter().map(|e| format!("{}: {}", e.field, e.message)).collect())
    }

    #[test]
    fn every_tools_address_annotation_is_read() {
        for key in IPS {
            let s = svc(serde_json::json!({ key: "203.0.113.7" }), None);
            assert_eq!(ips(&s), (vec!["203.0.113.7".to_string()], vec![]), "{key}");
        }
        let s = svc(serde_json::json!({}), Some("203.0.113.8"));
        assert_eq!(ips(&s).0, ["203.0.113.8"]);
        // Dual-stack from one annotation, or from an annotation and spec.loadBalancerIP.
        let s = svc(serde_json::json!({"metallb.io/loadBalancerIPs": "203.0.113.7, 2001:db8::7"}), None);
        assert_eq!(ips(&s).0, ["203.0.113.7", "2001:db8::7"]);
        let s = svc(serde_json::json!({"mooring.io/loadBalancerIPs": "2001:db8::7"}), Some("203.0.113.8"));
        assert_eq!(ips(&s).0, ["2001:db8::7", "203.0.113.8"]);
    }

    #[test]
    fn disagreements_are_reported_and_the_first_wins() {
        let s = svc(serde_json::json!({"metallb.io/loadBalancerIPs": "203.0.113.7"}), Some("203.0.113.8"));
        assert_eq!(
            ips(&s),
            (
                vec!["203.0.113.7".to_string()],
                vec!["spec.loadBalancerIP: asks for 203.0.113.8, but metadata.annotations[metallb.io/loadBalancerIPs] asks for 203.0.113.7, which is used".to_string()]
            )
        );
        // The same address twice is no disagreement.
        let s = svc(serde_json::json!({"metallb.universe.tf/loadBalancerIPs": "203.0.113.7"}), Some("203.0.113.7"));
        assert_eq!(ips(&s), (vec!["203.0.113.7".to_string()], vec![]));
        let s = svc(serde_json::json!({"mooring.io/loadBalancerIPs": "203.0.113.7,203.0.113.9,nope"}), None);
        let (a, e) = ips(&s);
        assert_eq!(a, ["203.0.113.7"]);
        assert!(e[0].ends_with("203.0.113.9 is a second address of its family (203.0.113.7 is used)"), "{e:?}");
        assert!(e[1].ends_with("\"nope\" is not an IP address"), "{e:?}");

        let mut errors = vec![];
        let s = svc(
            serde_json::json!({"metallb.io/address-pool": "b", "mooring.io/eip": "a", "eip.openelb.kubesphere.io/v1alpha2": "a"}),
            None,
        );
        assert_eq!(first_of(&s, &POOL, &mut errors).as_deref(), Some("a"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "metadata.annotations[metallb.io/address-pool]");
        assert_eq!(errors[0].message, "\"b\" disagrees with mooring.io/eip (\"a\"), which is used");
        let s = svc(
            serde_json::json!({"metallb.universe.tf/allow-shared-ip": "k", "metallb.io/allow-shared-ip": " "}),
            None,
        );
        assert_eq!(first_of(&s, &SHARING, &mut errors).as_deref(), Some("k"), "a blank value does not count");
    }
}
