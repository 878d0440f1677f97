//! Parse, don't validate: each CRD spec becomes typed, checked settings, or every field
//! error it has, named by path (`spec.holdTime`) with the message the apiserver gives for
//! the same mistake: a CEL rule's `message` (from [`crate::rules`]), or for a schema bound
//! the apiserver's own wording. Everything downstream (the agent's planner in standalone and
//! cluster mode, `mooring announce` through the same [`mooring_bgp::limits`]) takes the
//! typed value. Pure and cheap: a spec in, a value out, no IO, no other objects.
//!
//! Beyond admission, the parse also rejects what the README lists as status-time rules
//! (IPv6 reversed ranges and overlaps CEL cannot see, an aggregation length that covers
//! addresses outside the pool, a source address of the other family).
//!
//! - [`PeerSettings`] from a `BgpPeer` spec ([`peer`]),
//! - [`SpeakerSettings`] from the `BgpConf` ([`speaker`]),
//! - [`PoolSettings`] from an `Eip` spec ([`pool`]),
//! - [`AdvertisementSettings`] from a `BgpAdvertisement` spec ([`advertisement`]).

pub mod advertisement;
pub mod peer;
pub mod pool;
pub mod speaker;

use std::fmt;
use std::ops::RangeInclusive;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use mooring_bgp::wire::{Community, LargeCommunity, ParseCommunityError, ParseLargeCommunityError};
use serde::Serialize;

use crate::rules;

pub use advertisement::AdvertisementSettings;
pub use peer::{Password, PeerSettings};
pub use pool::{pool_addresses, reserved_addresses, PoolAddresses, PoolSettings};
pub use speaker::{NodeCheck, NodeProbeSettings, SpeakerSettings};

/// One problem, named by its field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path from the object root (`spec.addresses[2]`); empty for a rule on the whole object.
    pub path: String,
    /// What the apiserver says: a CEL rule's message, or its wording of a schema bound.
    pub message: String,
    /// What exactly is wrong, where the message is about a whole list or object
    /// (`"10.0.0.1/24": host bits are set; the network is 10.0.0.0/24`).
    pub detail: Option<String>,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        match &self.detail {
            Some(d) => write!(f, " ({d})"),
            None => Ok(()),
        }
    }
}

/// Every problem found in one spec; never empty when returned as an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// The errors, in the order the fields are checked.
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

/// Collects the errors of one spec. The schema-bound checks word their errors as the
/// apiserver does (the detail of its field error, without "<path> in body").
#[derive(Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    /// Adds an error; the same path and message twice (a list rule broken by two entries)
    /// makes one error whose details are joined.
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>, detail: Option<String>) {
        let (path, message) = (path.into(), message.into());
        match self.0.iter_mut().find(|e| e.path == path && e.message == message) {
            Some(e) => match (&mut e.detail, detail) {
                (Some(d), Some(more)) => {
                    d.push_str("; ");
                    d.push_str(&more);
                }
                (d @ None, more) => *d = more,
                (Some(_), None) => {}
            },
            None => self.0.push(FieldError { path, message, detail }),
        }
    }

    /// Schema `minimum` / `maximum`.
    pub(crate) fn range<T: PartialOrd + fmt::Display>(&mut self, path: &str, v: T, r: &RangeInclusive<T>) -> bool {
        if v < *r.start() {
            self.push(path, format!("should be greater than or equal to {}", r.start()), None);
        } else if v > *r.end() {
            self.push(path, format!("should be less than or equal to {}", r.end()), None);
        } else {
            return true;
        }
        false
    }

    /// Schema `minLength` / `maxLength`, in characters as the apiserver counts them.
    pub(crate) fn length(&mut self, path: &str, s: &str, r: &RangeInclusive<usize>) -> bool {
        let n = s.chars().count();
        if n < *r.start() {
            self.push(path, format!("should be at least {} chars long", r.start()), None);
        } else if n > *r.end() {
            self.push(path, format!("may not be longer than {}", r.end()), None);
        } else {
            return true;
        }
        false
    }

    /// Schema `pattern`: `matches` says whether `s` matches `pattern`.
    pub(crate) fn pattern(&mut self, path: &str, matches: bool, pattern: &str) -> bool {
        if !matches {
            self.push(path, format!("should match '{pattern}'"), None);
        }
        matches
    }

    /// Schema `minItems` / `maxItems`.
    pub(crate) fn items(&mut self, path: &str, n: usize, r: &RangeInclusive<usize>) -> bool {
        if n < *r.start() {
            self.push(path, format!("should have at least {} items", r.start()), None);
        } else if n > *r.end() {
            self.push(path, format!("must have at most {} items", r.end()), None);
        } else {
            return true;
        }
        false
    }

    /// `x-kubernetes-list-type: set`: each repeated item is an error at its index.
    pub(crate) fn unique<T: PartialEq + Serialize>(&mut self, path: &str, list: &[T]) {
        for (i, v) in list.iter().enumerate() {
            if list[..i].contains(v) {
                let v = serde_json::to_string(v).unwrap_or_default();
                self.push(format!("{path}[{i}]"), format!("Duplicate value: {v}"), None);
            }
        }
    }

    /// The settings `make` builds, if no error was found. `make` returns `None` only where a
    /// field failed, and every failure pushes an error; should one not, the spec is still
    /// refused, with an error that says so.
    pub(crate) fn finish<T>(self, make: impl FnOnce() -> Option<T>) -> Result<T, FieldErrors> {
        if !self.0.is_empty() {
            return Err(FieldErrors(self.0));
        }
        make().ok_or_else(|| {
            FieldErrors(vec![FieldError {
                path: "spec".into(),
                message: "could not be parsed (a field failed without an error: a bug in mooring-crds)".into(),
                detail: None,
            }])
        })
    }
}

/// What the one parser makes of a community's text.
enum Judged<T> {
    Community(T),
    /// The schema pattern's form, with a value too large: the CEL rule's business.
    OutOfRange,
    /// Not the schema pattern's form.
    Malformed,
}

/// A list of communities at `path`: its bounds, and each entry judged by `judge`. A value out
/// of range is reported as `rule_message` at the list (where the CEL rule is), a malformed
/// entry as a pattern error at its index.
fn communities<T>(
    e: &mut Errors,
    path: &str,
    list: &[String],
    (len, pattern, rule_message): (&RangeInclusive<usize>, &str, &str),
    judge: impl Fn(&str) -> Judged<T>,
) -> Vec<T> {
    e.items(path, list.len(), &(0..=rules::MAX_COMMUNITIES));
    e.unique(path, list);
    let mut out = vec![];
    for (i, c) in list.iter().enumerate() {
        let item = format!("{path}[{i}]");
        e.length(&item, c, len);
        match judge(c) {
            Judged::Community(v) => out.push(v),
            Judged::OutOfRange => e.push(path, rule_message, Some(format!("{c:?}"))),
            Judged::Malformed => {
                e.pattern(&item, false, pattern);
            }
        }
    }
    out
}

/// Standard communities, through the one parser (`mooring_bgp::wire::Community`).
pub(crate) fn standard_communities(e: &mut Errors, path: &str, list: &[String]) -> Vec<Community> {
    let pattern = rules::community_pattern();
    communities(e, path, list, (&rules::COMMUNITY_LEN, &pattern, rules::COMMUNITIES_MESSAGE), |c| match c.parse() {
        Ok(c) => Judged::Community(c),
        Err(ParseCommunityError::OutOfRange(_)) => Judged::OutOfRange,
        Err(ParseCommunityError::Malformed(_)) => Judged::Malformed,
    })
}

/// Large communities, through the one parser (`mooring_bgp::wire::LargeCommunity`).
pub(crate) fn large_communities(e: &mut Errors, path: &str, list: &[String]) -> Vec<LargeCommunity> {
    let pattern = rules::large_community_pattern();
    let bounds = (&rules::LARGE_COMMUNITY_LEN, pattern.as_str(), rules::LARGE_COMMUNITIES_MESSAGE);
    communities(e, path, list, bounds, |c| match c.parse() {
        Ok(c) => Judged::Community(c),
        Err(ParseLargeCommunityError::OutOfRange(_)) => Judged::OutOfRange,
        Err(ParseLargeCommunityError::Malformed(_)) => Judged::Malformed,
    })
}

/// An IP address field checked as the CRD does (its length, then the CEL `isIP` rule with
/// `message`).
pub(crate) fn ip(e: &mut Errors, path: &str, s: &str, message: &str) -> Option<std::net::IpAddr> {
    e.length(path, s, &rules::IP_LEN);
    match crate::parse::parse_ip(s) {
        Ok(ip) => Some(ip),
        Err(reason) => {
            e.push(path, message, Some(reason));
            None
        }
    }
}

/// A label selector at `path`: the fields its (Kubernetes) schema requires. The typed
/// selector reads a missing `key` or `operator` as empty, so an empty one is taken as missing.
pub(crate) fn selector(e: &mut Errors, path: &str, selector: Option<&LabelSelector>) {
    for (i, x) in selector.and_then(|s| s.match_expressions.as_ref()).into_iter().flatten().enumerate() {
        if x.key.is_empty() {
            e.push(format!("{path}.matchExpressions[{i}].key"), "Required value", None);
        }
        if x.operator.is_empty() {
            e.push(format!("{path}.matchExpressions[{i}].operator"), "Required value", None);
        }
    }
}
