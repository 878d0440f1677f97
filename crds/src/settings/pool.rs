//! An `Eip` spec into [`PoolSettings`]: the pool's address ranges (each entry valid, not
//! reversed, no two overlapping) and the attributes its announcements carry. Overlaps with
//! other pools need the other objects, so the planner checks those.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use mooring_bgp::wire::{Community, LargeCommunity};

use super::{large_communities, selector, standard_communities, Errors, FieldErrors};
use crate::eip::{EipSpec, LinkBandwidthForm};
use crate::parse::{self, Entry, EntryError, IpRange};
use crate::rules;

/// A checked `Eip` spec.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSettings {
    /// The addresses: `spec.address` first, then `spec.addresses`, none overlapping.
    pub ranges: Vec<IpRange>,
    /// Nothing new is allocated from the pool.
    pub disabled: bool,
    /// Among pools a Service may use, the highest is the default.
    pub priority: i32,
    /// Allocate to Services that name no pool.
    pub auto_assign: bool,
    /// Addresses of `ranges` never given to Services: see [`reserved_addresses`].
    pub reserved: Vec<std::net::IpAddr>,
    /// Services of different namespaces may share an address.
    pub share_across_namespaces: bool,
    /// Namespaces allowed by name (with `namespace_selector` both empty: all).
    pub namespaces: Vec<String>,
    /// Namespaces allowed by label.
    pub namespace_selector: Option<LabelSelector>,
    /// On the pool's announcements.
    pub communities: Vec<Community>,
    /// On the pool's announcements.
    pub large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF towards iBGP peers.
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// Extra copies of the local AS on the AS_PATH.
    pub as_path_prepend: u8,
    /// IPv4 VIPs are announced as prefixes of this length (default 32); no entry is a longer CIDR.
    pub aggregation_length_v4: Option<u8>,
    /// IPv6 VIPs are announced as prefixes of this length (default 128); no entry is a longer CIDR.
    pub aggregation_length_v6: Option<u8>,
    /// Weighted ECMP by ready endpoints, with the link-bandwidth community in this form.
    pub weighting: Option<LinkBandwidthForm>,
}

/// One entry at `path`: its length, then the CEL rules "valid" and "not reversed" (whose
/// messages differ between `spec.address` and `spec.addresses`, and whose path for an
/// entry of `spec.addresses` is the list).
fn entry(e: &mut Errors, path: &str, rule_path: &str, text: &str, messages: (&str, &str)) -> Option<Entry> {
    e.length(path, text, &rules::ENTRY_LEN);
    match parse::parse_entry(text) {
        Ok(entry) => Some(entry),
        Err(err @ EntryError::Invalid { .. }) => {
            e.push(rule_path, messages.0, Some(err.to_string()));
            None
        }
        Err(err @ EntryError::Reversed { .. }) => {
            e.push(rule_path, messages.1, Some(err.to_string()));
            None
        }
    }
}

/// The pool's entries, with every rule about them checked, and the path of each.
fn entries(e: &mut Errors, s: &EipSpec) -> Vec<(Entry, String)> {
    if s.address.is_none() && s.addresses.is_empty() {
        e.push("spec", rules::EIP_HAS_ADDRESS_MESSAGE, None);
    }
    let address = s.address.as_deref().and_then(|a| {
        let messages = (rules::ADDRESS_MESSAGE, rules::ADDRESS_REVERSED_MESSAGE);
        entry(e, "spec.address", "spec.address", a, messages).map(|en| (a, en))
    });
    e.items("spec.addresses", s.addresses.len(), &(0..=rules::MAX_ADDRESSES));
    e.unique("spec.addresses", &s.addresses);
    let mut list: Vec<(&str, Entry, String)> = vec![];
    for (i, a) in s.addresses.iter().enumerate() {
        let path = format!("spec.addresses[{i}]");
        let messages = (rules::ADDRESSES_MESSAGE, rules::ADDRESSES_REVERSED_MESSAGE);
        if let Some(en) = entry(e, &path, "spec.addresses", a, messages) {
            // Identical entries are the list type's business (a duplicate), not an overlap.
            for (other, prev, _) in list.iter().filter(|(t, _, _)| *t != a.as_str()) {
                if prev.range.overlaps(&en.range) {
                    e.push(
                        "spec.addresses",
                        rules::ADDRESSES_OVERLAP_MESSAGE,
                        Some(format!("{other:?} overlaps {a:?}")),
                    );
                }
            }
            list.push((a, en, path));
        }
    }
    let mut out = vec![];
    if let Some((a, en)) = address {
        for (other, _, _) in list.iter().filter(|(_, x, _)| x.range.overlaps(&en.range)) {
            e.push("spec.address", rules::ADDRESS_VS_ADDRESSES_MESSAGE, Some(format!("{a:?} overlaps {other:?}")));
        }
        out.push((en, "spec.address".to_string()));
    }
    out.extend(list.into_iter().map(|(_, en, path)| (en, path)));
    out
}

/// An aggregation length shorter than the prefix of a CIDR entry of its family would
/// announce addresses outside the pool (a status-time rule: CEL cannot see it).
fn aggregation(
    e: &mut Errors,
    path: &str,
    len: Option<u8>,
    bounds: &std::ops::RangeInclusive<u8>,
    v4: bool,
    entries: &[(Entry, String)],
) {
    let Some(len) = len else { return };
    e.range(path, len, bounds);
    for (en, entry_path) in entries.iter().filter(|(en, _)| en.range.is_ipv4() == v4) {
        if en.prefix_len.is_some_and(|p| p > len) {
            e.push(
                path,
                "shorter than the prefix of an entry: announcements would cover addresses outside the pool",
                Some(format!("{entry_path} is {}/{}", en.range.start, en.prefix_len.unwrap_or_default())),
            );
        }
    }
}

/// The addresses of a pool that are never handed out: the network and broadcast addresses
/// of its IPv4 CIDR entries shorter than /31, unless `allow_first_last` (Eip
/// `spec.allowFirstLastIPs`). A /31 or /32 has no such addresses (RFC 3021), IPv6 none at
/// all, and a range `first-last` or a single address is taken as written.
pub fn reserved_addresses(entries: &[Entry], allow_first_last: bool) -> Vec<std::net::IpAddr> {
    if allow_first_last {
        return vec![];
    }
    entries
        .iter()
        .filter(|en| en.range.is_ipv4() && en.prefix_len.is_some_and(|len| len < 31))
        .flat_map(|en| [en.range.start, en.range.end])
        .collect()
}

/// A pool's addresses: its ranges and the reserved addresses among them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolAddresses {
    /// `spec.address` first, then `spec.addresses`.
    pub ranges: Vec<IpRange>,
    /// See [`reserved_addresses`].
    pub reserved: Vec<std::net::IpAddr>,
}

impl PoolAddresses {
    /// Addresses that can be handed out (saturating).
    pub fn size(&self) -> u128 {
        let total = self.ranges.iter().fold(0u128, |a, x| a.saturating_add(x.size()));
        total.saturating_sub(self.reserved.len() as u128)
    }
}

/// The pool's addresses alone, with the errors of the address fields only (the pool status
/// reports the size of a pool whose other fields are wrong).
pub fn pool_addresses(spec: &EipSpec) -> Result<PoolAddresses, FieldErrors> {
    let mut e = Errors::default();
    let entries = entries(&mut e, spec);
    e.finish(|| {
        let list: Vec<Entry> = entries.iter().map(|(en, _)| *en).collect();
        Some(PoolAddresses {
            ranges: list.iter().map(|en| en.range).collect(),
            reserved: reserved_addresses(&list, spec.allow_first_last_ips),
        })
    })
}

impl TryFrom<&EipSpec> for PoolSettings {
    type Error = FieldErrors;

    fn try_from(s: &EipSpec) -> Result<Self, FieldErrors> {
        let mut e = Errors::default();
        let entries = entries(&mut e, s);
        aggregation(&mut e, "spec.aggregationLength", s.aggregation_length, &rules::AGGREGATION_V4, true, &entries);
        aggregation(
            &mut e,
            "spec.aggregationLengthV6",
            s.aggregation_length_v6,
            &rules::AGGREGATION_V6,
            false,
            &entries,
        );
        if let Some(n) = s.as_path_prepend {
            e.range("spec.asPathPrepend", n, &rules::AS_PATH_PREPENDS);
        }
        e.items("spec.namespaces", s.namespaces.len(), &(0..=rules::MAX_NAMESPACES));
        e.unique("spec.namespaces", &s.namespaces);
        for (i, ns) in s.namespaces.iter().enumerate() {
            e.length(&format!("spec.namespaces[{i}]"), ns, &rules::NAMESPACE_LEN);
        }
        selector(&mut e, "spec.namespaceSelector", s.namespace_selector.as_ref());
        let communities = standard_communities(&mut e, "spec.communities", &s.communities);
        let large_communities = large_communities(&mut e, "spec.largeCommunities", &s.large_communities);
        e.finish(|| {
            Some(PoolSettings {
                ranges: entries.iter().map(|(en, _)| en.range).collect(),
                disabled: s.disable,
                priority: s.priority,
                auto_assign: s.auto_assign,
                reserved: reserved_addresses(
                    &entries.iter().map(|(en, _)| *en).collect::<Vec<_>>(),
                    s.allow_first_last_ips,
                ),
                share_across_namespaces: s.allow_sharing_across_namespaces,
                namespaces: s.namespaces.clone(),
                namespace_selector: s.namespace_selector.clone(),
                communities,
                large_communities,
                local_pref: s.local_pref,
                med: s.med,
                as_path_prepend: s.as_path_prepend.unwrap_or(0),
                aggregation_length_v4: s.aggregation_length,
                aggregation_length_v6: s.aggregation_length_v6,
                weighting: s.weighting.map(|_| s.link_bandwidth.unwrap_or(LinkBandwidthForm::Transitive)),
            })
        })
    }
}

impl TryFrom<&crate::eip::Eip> for PoolSettings {
    type Error = FieldErrors;

    fn try_from(e: &crate::eip::Eip) -> Result<Self, FieldErrors> {
        PoolSettings::try_from(&e.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> EipSpec {
        serde_json::from_value(v).unwrap()
    }

    fn reserved(v: serde_json::Value) -> Vec<String> {
        PoolSettings::try_from(&spec(v)).unwrap().reserved.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn a_cidrs_network_and_broadcast_addresses_are_reserved_unless_allowed() {
        let v = serde_json::json!({"address": "203.0.113.0/28", "addresses": ["198.51.100.8/30", "198.51.100.20/31",
            "198.51.100.30/32", "198.51.100.40-198.51.100.47", "2001:db8::/126"]});
        assert_eq!(reserved(v.clone()), ["203.0.113.0", "203.0.113.15", "198.51.100.8", "198.51.100.11"]);
        let mut allowed = v;
        allowed["allowFirstLastIPs"] = true.into();
        assert!(reserved(allowed.clone()).is_empty());
        let a = pool_addresses(&spec(allowed)).unwrap();
        assert_eq!(a.size(), 16 + 4 + 2 + 1 + 8 + 4);
        let a = pool_addresses(&spec(serde_json::json!({"address": "203.0.113.0/28"}))).unwrap();
        assert_eq!((a.size(), a.reserved.len()), (14, 2));
    }
}
