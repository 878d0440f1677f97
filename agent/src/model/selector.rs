//! Kubernetes label selectors (matchLabels and matchExpressions),
//! evaluated against a label map.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` satisfy `selector`. An empty selector matches
/// everything (as for a BgpPeer nodeSelector that is not set). An
/// unknown operator matches nothing, so a typo never widens a selection.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let by_expr = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or(&[]);
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    by_label && by_expr
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn selectors() {
        let l = labels(&[("rack", "r1"), ("role", "edge")]);
        assert!(matches(&LabelSelector::default(), &l));
        let s = LabelSelector { match_labels: Some(labels(&[("rack", "r1")])), ..Default::default() };
        assert!(matches(&s, &l));
        assert!(!matches(&s, &labels(&[("rack", "r2")])));
        let e = |r| LabelSelector { match_expressions: Some(vec![r]), ..Default::default() };
        assert!(matches(&e(req("rack", "In", &["r1", "r2"])), &l));
        assert!(!matches(&e(req("rack", "NotIn", &["r1"])), &l));
        assert!(matches(&e(req("zone", "NotIn", &["a"])), &l));
        assert!(matches(&e(req("role", "Exists", &[])), &l));
        assert!(!matches(&e(req("role", "DoesNotExist", &[])), &l));
        assert!(!matches(&e(req("role", "Bogus", &[])), &l));
    }
}
