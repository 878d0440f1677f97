//! Whole-spec validation without Kubernetes: everything the CRD schema and CEL rules check at
//! admission, plus the checks they cannot express (see crds/README.md for which is which).

use std::fmt;
use std::time::Duration;

use crate::bgpconf::BgpConfSpec;
use crate::bgppeer::BgpPeerSpec;
use crate::eip::EipSpec;
use crate::parse::{self, EipError, IpRange};

/// One problem, named by its field path (`spec.holdTime: ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path from the object root, e.g. `spec.addresses[2]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All problems found in one spec (never empty when returned as an error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// The errors.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Whether some error is at `path`.
    pub fn has_path(&self, path: &str) -> bool {
        self.0.iter().any(|e| e.path == path)
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

fn finish(errors: Vec<FieldError>) -> Result<(), FieldErrors> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(FieldErrors(errors))
    }
}

const MAX_ASN: u32 = 4_294_967_294;

fn check_asn(errors: &mut Vec<FieldError>, path: &str, asn: u32) {
    if asn == 0 || asn > MAX_ASN {
        errors.push(FieldError::new(path, format!("{asn} is not an AS number (1..=4294967294)")));
    }
}

fn check_ip(errors: &mut Vec<FieldError>, path: &str, s: &str) -> Option<std::net::IpAddr> {
    match parse::parse_ip(s) {
        Ok(ip) => Some(ip),
        Err(reason) => {
            errors.push(FieldError::new(path, reason));
            None
        }
    }
}

fn check_communities(errors: &mut Vec<FieldError>, path: &str, list: &[String], large: &[String], large_path: &str) {
    for (i, c) in list.iter().enumerate() {
        if let Err(e) = parse::parse_community(c) {
            errors.push(FieldError::new(format!("{path}[{i}]"), e.to_string()));
        }
        if list[..i].contains(c) {
            errors.push(FieldError::new(format!("{path}[{i}]"), format!("duplicate {c:?}")));
        }
    }
    for (i, c) in large.iter().enumerate() {
        if let Err(e) = parse::parse_large_community(c) {
            errors.push(FieldError::new(format!("{large_path}[{i}]"), e.to_string()));
        }
        if large[..i].contains(c) {
            errors.push(FieldError::new(format!("{large_path}[{i}]"), format!("duplicate {c:?}")));
        }
    }
}

impl BgpConfSpec {
    /// Check the spec; errors are named by field path.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errors = Vec::new();
        check_asn(&mut errors, "spec.as", self.as_number);
        if let Some(id) = &self.router_id {
            match check_ip(&mut errors, "spec.routerId", id) {
                Some(ip) if !ip.is_ipv4() => errors.push(FieldError::new("spec.routerId", "must be an IPv4 address")),
                Some(ip) if ip.is_unspecified() => errors.push(FieldError::new("spec.routerId", "must not be 0.0.0.0")),
                _ => {}
            }
        }
        if let Some(p) = self.listen_port {
            if !(0..=65535).contains(&p) {
                errors.push(FieldError::new("spec.listenPort", format!("{p} is not a port (0..=65535)")));
            }
        }
        if let Some(gr) = &self.graceful_restart {
            if !(1..=4095).contains(&gr.restart_time) {
                errors.push(FieldError::new(
                    "spec.gracefulRestart.restartTime",
                    format!("{} is out of range (1..=4095 seconds)", gr.restart_time),
                ));
            }
        }
        if let Some(h) = &self.hostname {
            if h.len() > 253 {
                errors.push(FieldError::new("spec.hostname", "longer than 253 characters"));
            }
        }
        finish(errors)
    }
}

impl BgpPeerSpec {
    /// The hold time, if it parses (default 90 s).
    pub fn hold_time(&self) -> Option<Duration> {
        parse::parse_duration(&self.hold_time).ok()
    }

    /// The keepalive interval: `keepaliveTime`, or a third of the hold time.
    pub fn keepalive_time(&self) -> Option<Duration> {
        match &self.keepalive_time {
            Some(k) => parse::parse_duration(k).ok(),
            None => self.hold_time().map(|h| Duration::from_secs(h.as_secs() / 3)),
        }
    }

    /// Hold time in seconds, if it parses.
    pub fn hold_time_secs(&self) -> Option<u64> {
        self.hold_time().map(|d| d.as_secs())
    }

    /// Keepalive interval in seconds, if it parses.
    pub fn keepalive_secs(&self) -> Option<u64> {
        self.keepalive_time().map(|d| d.as_secs())
    }

    /// Check the spec; errors are named by field path.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errors = Vec::new();
        check_ip(&mut errors, "spec.peerAddress", &self.peer_address);
        check_asn(&mut errors, "spec.peerAs", self.peer_as);
        if let Some(a) = self.local_as {
            check_asn(&mut errors, "spec.localAs", a);
        }
        if !(1..=65535).contains(&self.port) {
            errors.push(FieldError::new("spec.port", format!("{} is not a port (1..=65535)", self.port)));
        }
        let hold = match parse::parse_duration(&self.hold_time) {
            Ok(h) => {
                let s = h.as_secs();
                if s == 1 || s == 2 {
                    errors.push(FieldError::new(
                        "spec.holdTime",
                        format!("{} is not allowed (0 or at least 3 s)", self.hold_time),
                    ));
                } else if s > 65535 {
                    errors.push(FieldError::new("spec.holdTime", format!("{} is above 65535 s", self.hold_time)));
                }
                Some(s)
            }
            Err(e) => {
                errors.push(FieldError::new("spec.holdTime", e.to_string()));
                None
            }
        };
        if let Some(k) = &self.keepalive_time {
            match parse::parse_duration(k) {
                Ok(ka) => {
                    let ka = ka.as_secs();
                    if ka > 21845 {
                        errors.push(FieldError::new("spec.keepaliveTime", format!("{k} is above 21845 s")));
                    }
                    match hold {
                        Some(0) if ka != 0 => errors.push(FieldError::new(
                            "spec.keepaliveTime",
                            format!("{k}: must be 0s (or absent) when holdTime is 0s"),
                        )),
                        Some(h) if h != 0 && ka == 0 => errors.push(FieldError::new(
                            "spec.keepaliveTime",
                            "0s is only allowed when holdTime is 0s".to_string(),
                        )),
                        Some(h) if h != 0 && ka >= h => errors.push(FieldError::new(
                            "spec.keepaliveTime",
                            format!("{k} must be below holdTime ({})", self.hold_time),
                        )),
                        _ => {}
                    }
                }
                Err(e) => errors.push(FieldError::new("spec.keepaliveTime", e.to_string())),
            }
        }
        if let Some(src) = &self.source_address {
            if let (Some(s), Ok(p)) =
                (check_ip(&mut errors, "spec.sourceAddress", src), parse::parse_ip(&self.peer_address))
            {
                if s.is_ipv4() != p.is_ipv4() {
                    errors.push(FieldError::new(
                        "spec.sourceAddress",
                        "must be of the same address family as peerAddress",
                    ));
                }
            }
        }
        if self.ebgp_multihop == Some(0) {
            errors.push(FieldError::new("spec.ebgpMultihop", "0 is out of range (1..=255)"));
        }
        if self.password.is_some() && self.password_secret_ref.is_some() {
            errors.push(FieldError::new("spec.password", "set at most one of password and passwordSecretRef"));
        }
        if let Some(p) = &self.password {
            if p.is_empty() || p.len() > 80 {
                errors.push(FieldError::new("spec.password", "must be 1..=80 characters (TCP MD5 key)"));
            }
        }
        if let Some(r) = &self.password_secret_ref {
            for (f, v) in [("name", &r.name), ("namespace", &r.namespace), ("key", &r.key)] {
                if v.is_empty() {
                    errors.push(FieldError::new(format!("spec.passwordSecretRef.{f}"), "must not be empty"));
                }
            }
        }
        if self.families.is_empty() {
            errors.push(FieldError::new("spec.families", "must list at least one family"));
        }
        for (i, f) in self.families.iter().enumerate() {
            if self.families[..i].contains(f) {
                errors.push(FieldError::new(format!("spec.families[{i}]"), "duplicate family"));
            }
        }
        if let Some(m) = &self.max_prefixes {
            if m.limit == 0 {
                errors.push(FieldError::new("spec.maxPrefixes.limit", "must be at least 1"));
            }
        }
        check_communities(
            &mut errors,
            "spec.communities",
            &self.communities,
            &self.large_communities,
            "spec.largeCommunities",
        );
        finish(errors)
    }
}

impl EipSpec {
    /// The pool's entries: `spec.address` first, then `spec.addresses`.
    pub fn entries(&self) -> impl Iterator<Item = &String> {
        self.address.iter().chain(self.addresses.iter())
    }

    /// Field path of the `i`th entry of [`EipSpec::entries`].
    fn entry_path(&self, i: usize) -> String {
        match (&self.address, i) {
            (Some(_), 0) => "spec.address".to_string(),
            (Some(_), i) => format!("spec.addresses[{}]", i - 1),
            (None, i) => format!("spec.addresses[{i}]"),
        }
    }

    fn path_of(&self, entry: &str) -> String {
        let i = self.entries().position(|e| e == entry).unwrap_or(0);
        self.entry_path(i)
    }

    /// Number of addresses in the pool (saturating `int64`, as in `status.size`), if valid.
    pub fn size(&self) -> Option<i64> {
        parse::parse_eip_ranges(self).ok().map(|r| parse::total_size_i64(&r))
    }

    /// Check the spec; errors are named by field path. Includes the checks done only at
    /// status time (IPv6 reversed ranges and overlaps involving IPv6 ranges).
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errors = Vec::new();
        if self.addresses.len() > crate::rules::MAX_ADDRESSES as usize {
            errors.push(FieldError::new(
                "spec.addresses",
                format!("at most {} entries ({} given)", crate::rules::MAX_ADDRESSES, self.addresses.len()),
            ));
        }
        let mut ranges = Vec::new();
        let range_errors = parse::eip_range_errors(self);
        if range_errors.is_empty() {
            ranges = parse::parse_eip_ranges(self).unwrap_or_default();
        }
        for (i, e) in range_errors {
            let path = match e {
                EipError::Empty => "spec.address".to_string(),
                _ => self.entry_path(i),
            };
            errors.push(FieldError::new(path, e.to_string()));
        }
        if let Some(agg) = self.aggregation_length {
            if agg > 32 {
                errors.push(FieldError::new("spec.aggregationLength", format!("{agg} is above 32")));
            }
            check_aggregation(&mut errors, self, &ranges, true, agg, "spec.aggregationLength");
        }
        if let Some(agg) = self.aggregation_length_v6 {
            if agg > 128 {
                errors.push(FieldError::new("spec.aggregationLengthV6", format!("{agg} is above 128")));
            }
            check_aggregation(&mut errors, self, &ranges, false, agg, "spec.aggregationLengthV6");
        }
        if let Some(n) = self.as_path_prepend {
            if n > 16 {
                errors.push(FieldError::new("spec.asPathPrepend", format!("{n} is above 16")));
            }
        }
        for (i, ns) in self.namespaces.iter().enumerate() {
            if ns.is_empty() {
                errors.push(FieldError::new(format!("spec.namespaces[{i}]"), "must not be empty"));
            }
        }
        check_communities(
            &mut errors,
            "spec.communities",
            &self.communities,
            &self.large_communities,
            "spec.largeCommunities",
        );
        finish(errors)
    }
}

/// A CIDR entry more specific than the aggregation length would be announced as a prefix
/// covering addresses outside the pool: reject it (as MetalLB does).
fn check_aggregation(errors: &mut Vec<FieldError>, spec: &EipSpec, ranges: &[IpRange], v4: bool, agg: u8, path: &str) {
    for r in ranges.iter().filter(|r| r.is_ipv4() == v4) {
        if let Some((_, len)) = r.entry.split_once('/') {
            if let Ok(len) = len.parse::<u8>() {
                if len > agg {
                    errors.push(FieldError::new(
                        path,
                        format!(
                            "{agg} is shorter than the prefix of {} ({}); announcements would cover addresses outside the pool",
                            r.entry,
                            spec.path_of(&r.entry)
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn peer(extra: serde_json::Value) -> BgpPeerSpec {
        let mut spec = json!({"peerAddress": "192.0.2.1", "peerAs": 65001});
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(spec).unwrap()
    }

    fn eip(spec: serde_json::Value) -> EipSpec {
        serde_json::from_value(spec).unwrap()
    }

    fn messages(r: Result<(), FieldErrors>) -> Vec<String> {
        r.unwrap_err().0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn peer_defaults_and_timers() {
        let p = peer(json!({}));
        p.validate().unwrap();
        assert_eq!((p.port, p.hold_time_secs(), p.keepalive_secs()), (179, Some(90), Some(30)));
        let p = peer(json!({"holdTime": "0s"}));
        p.validate().unwrap();
        assert_eq!(p.keepalive_secs(), Some(0));
    }

    #[test]
    fn peer_errors_are_named() {
        assert_eq!(
            messages(peer(json!({"holdTime": "2s"})).validate()),
            ["spec.holdTime: 2s is not allowed (0 or at least 3 s)"]
        );
        assert_eq!(
            messages(peer(json!({"holdTime": "1s"})).validate()),
            ["spec.holdTime: 1s is not allowed (0 or at least 3 s)"]
        );
        assert!(messages(peer(json!({"holdTime": "90"})).validate())[0]
            .starts_with("spec.holdTime: \"90\" is not a duration"));
        assert_eq!(
            messages(peer(json!({"keepaliveTime": "90s"})).validate()),
            ["spec.keepaliveTime: 90s must be below holdTime (90s)"]
        );
        assert_eq!(
            messages(peer(json!({"peerAs": 0, "localAs": 4294967295u32})).validate()),
            [
                "spec.peerAs: 0 is not an AS number (1..=4294967294)",
                "spec.localAs: 4294967295 is not an AS number (1..=4294967294)"
            ]
        );
        let e = peer(json!({"password": "x", "passwordSecretRef": {"name": "s", "namespace": "n"}}))
            .validate()
            .unwrap_err();
        assert!(e.has_path("spec.password"));
        let e = peer(json!({"peerAddress": "2001:db8::1", "sourceAddress": "10.0.0.1"})).validate().unwrap_err();
        assert_eq!(e.to_string(), "spec.sourceAddress: must be of the same address family as peerAddress");
        let e = peer(json!({"communities": ["1:2", "65536:1", "1:2"], "largeCommunities": ["1:2"]}))
            .validate()
            .unwrap_err();
        assert!(
            e.has_path("spec.communities[1]")
                && e.has_path("spec.communities[2]")
                && e.has_path("spec.largeCommunities[0]")
        );
        let e = peer(json!({"families": [], "ebgpMultihop": 0, "port": 0, "maxPrefixes": {"limit": 0}}))
            .validate()
            .unwrap_err();
        for p in ["spec.families", "spec.ebgpMultihop", "spec.port", "spec.maxPrefixes.limit"] {
            assert!(e.has_path(p), "{p}: {e}");
        }
        let e = peer(json!({"peerAddress": "peer.example"})).validate().unwrap_err();
        assert!(e.has_path("spec.peerAddress"));
    }

    #[test]
    fn conf_errors_are_named() {
        let c: BgpConfSpec = serde_json::from_value(json!({"as": 64512})).unwrap();
        c.validate().unwrap();
        let c: BgpConfSpec = serde_json::from_value(json!({
            "as": 0, "routerId": "::1", "listenPort": 70000, "gracefulRestart": {"restartTime": 5000}
        }))
        .unwrap();
        let e = c.validate().unwrap_err();
        for p in ["spec.as", "spec.routerId", "spec.listenPort", "spec.gracefulRestart.restartTime"] {
            assert!(e.has_path(p), "{p}: {e}");
        }
        let c: BgpConfSpec = serde_json::from_value(json!({"as": 1, "routerId": "0.0.0.0"})).unwrap();
        assert_eq!(c.validate().unwrap_err().to_string(), "spec.routerId: must not be 0.0.0.0");
        let c: BgpConfSpec = serde_json::from_value(json!({"as": 1, "gracefulRestart": {"enabled": true}})).unwrap();
        assert_eq!(c.graceful_restart.unwrap().restart_time, 120);
    }

    #[test]
    fn eip_errors_are_named() {
        eip(json!({"address": "10.0.0.0/24", "addresses": ["10.0.1.0/24"]})).validate().unwrap();
        assert_eq!(
            messages(eip(json!({})).validate()),
            ["spec.address: no address: set spec.address or spec.addresses"]
        );
        assert_eq!(
            messages(eip(json!({"address": "10.0.0.1/24"})).validate()),
            ["spec.address: \"10.0.0.1/24\": host bits are set; the network is 10.0.0.0/24"]
        );
        assert_eq!(
            messages(
                eip(json!({"address": "10.0.0.0/24", "addresses": ["10.0.1.0/24", "10.0.0.9-10.0.0.1"]})).validate()
            ),
            ["spec.addresses[1]: \"10.0.0.9-10.0.0.1\": range is reversed (10.0.0.9 > 10.0.0.1)"]
        );
        assert_eq!(
            messages(eip(json!({"addresses": ["10.0.0.0/24", "10.0.0.128/25"]})).validate()),
            ["spec.addresses[1]: \"10.0.0.0/24\" overlaps \"10.0.0.128/25\""]
        );
        assert_eq!(
            messages(eip(json!({"address": "10.0.0.0/24", "aggregationLength": 16})).validate()),
            ["spec.aggregationLength: 16 is shorter than the prefix of 10.0.0.0/24 (spec.address); announcements would cover addresses outside the pool"]
        );
        let e = eip(
            json!({"address": "10.0.0.1", "asPathPrepend": 17, "aggregationLength": 33, "aggregationLengthV6": 129,
                            "namespaces": [""], "communities": ["x"]}),
        )
        .validate()
        .unwrap_err();
        for p in [
            "spec.asPathPrepend",
            "spec.aggregationLength",
            "spec.aggregationLengthV6",
            "spec.namespaces[0]",
            "spec.communities[0]",
        ] {
            assert!(e.has_path(p), "{p}: {e}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("10.0.{i}.0/24")).collect();
        assert!(eip(json!({"addresses": many})).validate().unwrap_err().has_path("spec.addresses"));
    }

    #[test]
    fn eip_size() {
        assert_eq!(eip(json!({"address": "10.0.0.0/30", "addresses": ["10.0.1.1"]})).size(), Some(5));
        assert_eq!(eip(json!({"address": "2001:db8::/1"})).size(), None);
        assert_eq!(eip(json!({"address": "8000::/1"})).size(), Some(i64::MAX));
    }
}
