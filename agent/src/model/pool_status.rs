//! The status of every address pool (Eip): size, used, free, ready, and
//! the conditions that explain a problem. Pure; the controller writes it
//! to the Eip, standalone mode logs it and exports it as metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use mooring_crds::Eip;

use crate::model::desired::Desired;

/// One condition, as in `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolCondition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStatus {
    pub size: i64,
    pub used: i64,
    pub free: i64,
    pub ready: bool,
    pub conditions: Vec<PoolCondition>,
}

fn sat(v: u128) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Status of each Eip, by name. `eips` are the versions in force (the last
/// good ones, see [`super::last_good`]); `rejected` the Eips whose current
/// spec failed its checks, by name, with why: they get `Valid=False`, and
/// `Ready=False` too when no good version of them is in force.
pub fn pool_statuses(
    eips: &[Eip],
    rejected: &BTreeMap<String, String>,
    desired: &Desired,
) -> BTreeMap<String, PoolStatus> {
    let mut parsed = BTreeMap::new();
    for e in eips {
        parsed.insert(e.metadata.name.clone().unwrap_or_default(), mooring_crds::settings::pool_addresses(&e.spec));
    }
    let mut out = BTreeMap::new();
    for e in eips {
        let name = e.metadata.name.clone().unwrap_or_default();
        let mut conditions = vec![valid_condition(rejected.get(&name))];
        let (size, ranges) = match &parsed[&name] {
            Ok(a) => (a.size(), a.ranges.clone()),
            // Not reached for a checked Eip; reported all the same.
            Err(err) => {
                conditions.push(PoolCondition {
                    type_: "Ready",
                    status: false,
                    reason: "InvalidSpec",
                    message: err.to_string(),
                });
                (0, vec![])
            }
        };
        // Overlaps with other pools: the same address in two pools.
        let others: Vec<String> = parsed
            .iter()
            .filter(|(n, r)| {
                **n != name && r.as_ref().is_ok_and(|a| a.ranges.iter().any(|x| ranges.iter().any(|y| x.overlaps(y))))
            })
            .map(|(n, _)| n.clone())
            .collect();
        if !others.is_empty() {
            conditions.push(PoolCondition {
                type_: "Overlapping",
                status: true,
                reason: "AddressesOverlap",
                message: format!("addresses overlap with Eip {}", others.join(", ")),
            });
        }
        let used: BTreeSet<IpAddr> = desired
            .allocations
            .values()
            .flat_map(|a| a.addresses.iter())
            .filter(|(_, p)| *p == name)
            .map(|(ip, _)| *ip)
            .collect();
        // A reserved address still held (handed out before the pool reserved it) is used,
        // but takes nothing from the addresses that can be handed out.
        let reserved: BTreeSet<IpAddr> =
            parsed[&name].as_ref().map(|a| a.reserved.iter().copied().collect()).unwrap_or_default();
        let free = size.saturating_sub(used.difference(&reserved).count() as u128);
        let used = used.len() as u128;
        if !conditions.iter().any(|c| c.type_ == "Ready") {
            let (status, reason, message) = if e.spec.disable {
                (false, "Disabled", "spec.disable is true: no new addresses are given out".to_string())
            } else if free == 0 {
                (false, "Exhausted", format!("all {size} addresses are in use"))
            } else {
                (true, "Available", format!("{free} of {size} addresses free"))
            };
            conditions.insert(0, PoolCondition { type_: "Ready", status, reason, message });
        }
        let ready = conditions.iter().any(|c| c.type_ == "Ready" && c.status);
        out.insert(name, PoolStatus { size: sat(size), used: sat(used), free: sat(free), ready, conditions });
    }
    // Rejected with no good version in force: not in service at all.
    for (name, why) in rejected {
        if out.contains_key(name) {
            continue;
        }
        let conditions = vec![
            PoolCondition { type_: "Ready", status: false, reason: "InvalidSpec", message: why.clone() },
            valid_condition(Some(why)),
        ];
        out.insert(name.clone(), PoolStatus { size: 0, used: 0, free: 0, ready: false, conditions });
    }
    out
}

/// `Valid`: whether the Eip's current spec passed its checks.
fn valid_condition(rejected: Option<&String>) -> PoolCondition {
    match rejected {
        None => PoolCondition {
            type_: "Valid",
            status: true,
            reason: "Valid",
            message: "the spec passed its checks".into(),
        },
        Some(why) => PoolCondition {
            type_: "Valid",
            status: false,
            reason: "InvalidSpec",
            message: format!("{why} (the last good version stays in force)"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ipam::Allocation;

    fn eip(name: &str, addr: &str) -> Eip {
        serde_yaml::from_str(&format!(
            "apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: {name}}}\nspec: {{address: {addr}}}\n"
        ))
        .unwrap()
    }

    #[test]
    fn size_used_free_and_conditions() {
        let eips = [eip("a", "203.0.113.0/30"), eip("b", "203.0.113.2-203.0.113.9")];
        let rejected = BTreeMap::from([
            ("b".to_string(), "spec.address: a later edit".to_string()),
            ("c".to_string(), "spec.address: reversed".to_string()),
        ]);
        let mut d = Desired::default();
        d.allocations.insert(
            "shop/web".into(),
            Allocation { addresses: vec![("203.0.113.1".parse().unwrap(), "a".into())], ..Default::default() },
        );
        let s = pool_statuses(&eips, &rejected, &d);
        // A /30: .0 and .3 are its network and broadcast addresses, not handed out.
        assert_eq!((s["a"].size, s["a"].used, s["a"].free, s["a"].ready), (2, 1, 1, true));
        assert!(s["a"].conditions.iter().any(|c| c.type_ == "Overlapping" && c.message.contains("Eip b")));
        let cond = |p: &str, t: &str| s[p].conditions.iter().find(|c| c.type_ == t).map(|c| (c.status, c.reason));
        assert_eq!(cond("a", "Valid"), Some((true, "Valid")));
        // b's latest edit was rejected: its last good version serves, and says so.
        assert_eq!((cond("b", "Ready"), cond("b", "Valid")), (Some((true, "Available")), Some((false, "InvalidSpec"))));
        // c never had a good version: not in service.
        assert!(!s["c"].ready);
        assert_eq!(
            (cond("c", "Ready"), cond("c", "Valid")),
            (Some((false, "InvalidSpec")), Some((false, "InvalidSpec")))
        );
        let full = [eip("one", "203.0.113.50/32")];
        d.allocations.insert(
            "shop/x".into(),
            Allocation { addresses: vec![("203.0.113.50".parse().unwrap(), "one".into())], ..Default::default() },
        );
        assert_eq!(pool_statuses(&full, &BTreeMap::new(), &d)["one"].conditions[0].reason, "Exhausted");
        // A network address held from before counts as used, and leaves the free count alone.
        d.allocations.insert(
            "shop/old".into(),
            Allocation { addresses: vec![("203.0.113.0".parse().unwrap(), "a".into())], ..Default::default() },
        );
        let s = pool_statuses(&eips, &rejected, &d);
        assert_eq!((s["a"].size, s["a"].used, s["a"].free), (2, 2, 1));
        // allowFirstLastIPs: all four.
        let all: Eip = serde_yaml::from_str(
            "apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {name: a}\nspec: {address: 203.0.113.0/30, allowFirstLastIPs: true}\n",
        )
        .unwrap();
        let s = pool_statuses(&[all], &BTreeMap::new(), &d);
        assert_eq!((s["a"].size, s["a"].used, s["a"].free), (4, 2, 2));
    }
}
