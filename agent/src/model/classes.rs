//! Which LoadBalancer Services are Mooring's: those of the load balancer class it serves,
//! the class-less ones unless it is told to leave them to another load balancer, and, even
//! then, class-less ones that opt in with OpenELB's annotation. The same answer in the
//! controller, the speakers, standalone mode and `mooring plan` (each takes these options).

use k8s_openapi::api::core::v1::Service;

/// The load balancer class Mooring serves unless told otherwise.
pub const DEFAULT_CLASS: &str = "mooring.io/bgp";
/// OpenELB's opt-in: a Service annotated so is one OpenELB was to serve.
pub const OPENELB_OPT_IN: &str = "lb.kubesphere.io/v1alpha1";
/// The values of [`OPENELB_OPT_IN`] that opt in (`porter` is OpenELB's former name).
pub const OPENELB_OPT_IN_VALUES: [&str; 2] = ["openelb", "porter"];

/// Which Services are ours.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct Classes {
    /// The `spec.loadBalancerClass` of the Services Mooring serves (give the controller and
    /// the speakers the same one).
    #[arg(long = "load-balancer-class", default_value = DEFAULT_CLASS, value_parser = parse_class)]
    pub class: String,
    /// Leave LoadBalancer Services without a `spec.loadBalancerClass` to another load
    /// balancer; serve only those of our class (and class-less ones annotated
    /// `lb.kubesphere.io/v1alpha1: openelb`).
    #[arg(long)]
    pub ignore_class_less: bool,
}

impl Default for Classes {
    fn default() -> Self {
        Classes { class: DEFAULT_CLASS.into(), ignore_class_less: false }
    }
}

impl Classes {
    /// Whether `svc` is a LoadBalancer Service Mooring serves.
    pub fn serves(&self, svc: &Service) -> bool {
        let Some(spec) = &svc.spec else { return false };
        if spec.type_.as_deref() != Some("LoadBalancer") {
            return false;
        }
        match spec.load_balancer_class.as_deref() {
            Some(c) => c == self.class,
            None => !self.ignore_class_less || opted_in(svc),
        }
    }
}

/// The Service carries OpenELB's opt-in annotation.
fn opted_in(svc: &Service) -> bool {
    let value = svc.metadata.annotations.as_ref().and_then(|a| a.get(OPENELB_OPT_IN));
    value.is_some_and(|v| OPENELB_OPT_IN_VALUES.contains(&v.trim()))
}

/// A load balancer class as Kubernetes accepts it in `spec.loadBalancerClass`: a label-style
/// key with a domain prefix (`example.com/name`).
pub fn parse_class(s: &str) -> Result<String, String> {
    let bad =
        |why: &str| Err(format!("{s:?} is not a load balancer class ({why}); write prefix/name, like mooring.io/bgp"));
    let Some((prefix, name)) = s.split_once('/') else { return bad("no prefix") };
    let dns_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if prefix.len() > 253 || !prefix.split('.').all(dns_label) {
        return bad("the prefix is not a DNS subdomain");
    }
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if !name_ok {
        return bad("the name must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric");
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(class: Option<&str>, openelb: Option<&str>, type_: &str) -> Service {
        let mut v = serde_json::json!({"metadata": {"name": "s", "namespace": "ns"}, "spec": {"type": type_}});
        if let Some(c) = class {
            v["spec"]["loadBalancerClass"] = c.into();
        }
        if let Some(o) = openelb {
            v["metadata"]["annotations"] = serde_json::json!({ OPENELB_OPT_IN: o });
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn class_less_services_are_ours_unless_left_alone() {
        let default = Classes::default();
        let ignoring = Classes { ignore_class_less: true, ..Classes::default() };
        let other = Classes { class: "example.com/lb".into(), ignore_class_less: true };
        let cases = [
            (svc(None, None, "LoadBalancer"), [true, false, false]),
            (svc(Some("mooring.io/bgp"), None, "LoadBalancer"), [true, true, false]),
            (svc(Some("example.com/lb"), None, "LoadBalancer"), [false, false, true]),
            // OpenELB's opt-in annotation: served even when class-less Services are left alone...
            (svc(None, Some("openelb"), "LoadBalancer"), [true, true, true]),
            (svc(None, Some("porter"), "LoadBalancer"), [true, true, true]),
            (svc(None, Some("something-else"), "LoadBalancer"), [true, false, false]),
            // ...but never against a class that is not ours.
            (svc(Some("example.com/other"), Some("openelb"), "LoadBalancer"), [false, false, false]),
            (svc(None, Some("openelb"), "ClusterIP"), [false, false, false]),
        ];
        for (s, want) in cases {
            let got = [default.serves(&s), ignoring.serves(&s), other.serves(&s)];
            assert_eq!(got, want, "{:?}", s.spec.as_ref().map(|x| (&x.type_, &x.load_balancer_class)));
        }
    }

    #[test]
    fn classes_are_checked() {
        for ok in ["mooring.io/bgp", "example.com/lb-1", "a/b", "x.y.z/A_b.c"] {
            assert_eq!(parse_class(ok).as_deref(), Ok(ok));
        }
        for bad in ["", "bgp", "/bgp", "mooring.io/", "Mooring.io/bgp", "mooring.io/-x", "a..b/c", "a/b/c"] {
            assert!(parse_class(bad).unwrap_err().contains("is not a load balancer class"), "{bad}");
        }
    }
}
