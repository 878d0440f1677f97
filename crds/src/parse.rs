//! Kubernetes-free parsing of the text forms the CRDs hold: address ranges (the one
//! [`IpRange`] of the workspace, which the allocator uses too), IP addresses as the
//! Kubernetes CEL library reads them, and durations. Which field may hold what, and the
//! error each field reports, is the business of [`crate::settings`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use ipnetwork::IpNetwork;
use regex::Regex;
use thiserror::Error;

use crate::rules;

/// An inclusive range of addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpRange {
    /// First address.
    pub start: IpAddr,
    /// Last address: same family as `start`, not below it.
    pub end: IpAddr,
}

/// An address as a number (IPv4 in the low 32 bits).
pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address numbered `n` of the family of `like` (IPv4: the low 32 bits of `n`).
pub fn from_u128(n: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4((n as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(n.into()),
    }
}

impl IpRange {
    /// Whether both ends are IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.start.is_ipv4()
    }

    /// Whether both ends are IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.start.is_ipv6()
    }

    /// Number of addresses, saturating at `u128::MAX` (only `::/0` saturates).
    pub fn size(&self) -> u128 {
        (to_u128(self.end) - to_u128(self.start)).saturating_add(1)
    }

    /// Whether `ip` is within the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_ipv4() && self.start <= ip && ip <= self.end
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &IpRange) -> bool {
        self.is_ipv4() == other.is_ipv4() && self.start <= other.end && other.start <= self.end
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// Why an Eip entry is not an address range. Both variants name the entry as written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EntryError {
    /// Not a CIDR with no host bits set, a range `first-last` of one family, or an address.
    #[error("{entry:?}: {reason}")]
    Invalid {
        /// The entry.
        entry: String,
        /// Why.
        reason: String,
    },
    /// A range whose first address is above its last.
    #[error("{entry:?}: range is reversed ({start} > {end})")]
    Reversed {
        /// The entry.
        entry: String,
        /// First address as written.
        start: IpAddr,
        /// Last address as written.
        end: IpAddr,
    },
}

/// One Eip entry, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The addresses.
    pub range: IpRange,
    /// The prefix length, when the entry is a CIDR.
    pub prefix_len: Option<u8>,
}

fn invalid(entry: &str, reason: impl Into<String>) -> EntryError {
    EntryError::Invalid { entry: entry.to_string(), reason: reason.into() }
}

/// Parse an address the way the Kubernetes CEL `isIP` does: no zone, no IPv4-mapped IPv6.
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    if s.contains('%') {
        return Err(format!("{s:?} has a zone, which is not allowed"));
    }
    let ip: IpAddr = s.parse().map_err(|_| format!("{s:?} is not an IP address"))?;
    if let IpAddr::V6(v6) = ip {
        if v6.to_ipv4_mapped().is_some() {
            return Err(format!("{s:?} is an IPv4-mapped IPv6 address; write the IPv4 address"));
        }
    }
    Ok(ip)
}

/// Parse one Eip entry: `a.b.c.d/len` (no host bits set), `first-last` or a single address.
pub fn parse_entry(entry: &str) -> Result<Entry, EntryError> {
    if entry.is_empty() {
        return Err(invalid(entry, "empty entry"));
    }
    if entry.trim() != entry {
        return Err(invalid(entry, "leading or trailing whitespace"));
    }
    if let Some((addr, len)) = entry.split_once('/') {
        let ip = parse_ip(addr).map_err(|r| invalid(entry, r))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u8 = match len.parse() {
            Ok(l) if l <= max && (len == "0" || !len.starts_with('0')) => l,
            _ => return Err(invalid(entry, format!("prefix length {len:?} is not a number in 0..={max}"))),
        };
        let net = IpNetwork::new(ip, len).map_err(|e| invalid(entry, e.to_string()))?;
        if net.network() != ip {
            return Err(invalid(entry, format!("host bits are set; the network is {}/{len}", net.network())));
        }
        let range = IpRange { start: ip, end: net.broadcast() };
        return Ok(Entry { range, prefix_len: Some(len) });
    }
    if let Some((a, b)) = entry.split_once('-') {
        let start = parse_ip(a).map_err(|r| invalid(entry, r))?;
        let end = parse_ip(b).map_err(|r| invalid(entry, r))?;
        if start.is_ipv4() != end.is_ipv4() {
            return Err(invalid(entry, "the range mixes IPv4 and IPv6"));
        }
        if start > end {
            return Err(EntryError::Reversed { entry: entry.to_string(), start, end });
        }
        return Ok(Entry { range: IpRange { start, end }, prefix_len: None });
    }
    let ip = parse_ip(entry).map_err(|r| {
        if r.ends_with("is not an IP address") {
            invalid(entry, "not a CIDR, a range first-last, or an IP address")
        } else {
            invalid(entry, r)
        }
    })?;
    Ok(Entry { range: IpRange { start: ip, end: ip }, prefix_len: None })
}

/// An Eip entry as text.
impl FromStr for IpRange {
    type Err = EntryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_entry(s).map(|e| e.range)
    }
}

/// A malformed duration.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{input:?} is not a duration like 90s, 3m or 1h30m (hours, minutes, seconds, in that order)")]
pub struct DurationError {
    /// The input.
    pub input: String,
}

static DURATION: LazyLock<Regex> = LazyLock::new(|| Regex::new(rules::DURATION_PATTERN).expect("a valid pattern"));
static BFD_INTERVAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(rules::BFD_INTERVAL_PATTERN).expect("a valid pattern"));

/// Whether `s` matches the schema pattern of a duration ([`rules::DURATION_PATTERN`], which the
/// empty string matches: the schema's `minLength` excludes it).
pub fn matches_duration_pattern(s: &str) -> bool {
    DURATION.is_match(s)
}

static INTERFACE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(rules::INTERFACE_NAME_PATTERN).expect("a valid pattern"));

/// Whether `s` matches the schema pattern of an interface name ([`rules::INTERFACE_NAME_PATTERN`]).
pub fn matches_interface_name_pattern(s: &str) -> bool {
    INTERFACE_NAME.is_match(s)
}

static PROBE_PATH: LazyLock<Regex> = LazyLock::new(|| Regex::new(rules::PROBE_PATH_PATTERN).expect("a valid pattern"));

/// Whether `s` matches the schema pattern of a probe path ([`rules::PROBE_PATH_PATTERN`]).
pub fn matches_probe_path_pattern(s: &str) -> bool {
    PROBE_PATH.is_match(s)
}

/// Whether `s` matches the schema pattern of a BFD interval ([`rules::BFD_INTERVAL_PATTERN`]).
pub fn matches_interval_pattern(s: &str) -> bool {
    BFD_INTERVAL.is_match(s)
}

/// Parse a duration of the form the CRDs accept ([`rules::DURATION_PATTERN`]):
/// `[Nh][Nm][Ns]`, at least one part, each part at most 5 digits (`90s`, `3m`, `1h30m`, `0s`).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let caps = DURATION.captures(s).filter(|_| !s.is_empty()).ok_or_else(|| DurationError { input: s.to_string() })?;
    let part = |i: usize| caps.get(i).map_or(0, |m| m.as_str()[..m.len() - 1].parse::<u64>().unwrap_or(0));
    Ok(Duration::from_secs(part(1) * 3600 + part(2) * 60 + part(3)))
}

/// A BFD interval: `N` milliseconds or seconds (`300ms`, `1s`, at most 5 digits), the
/// form of `BgpPeer` `spec.bfd.minTxInterval` ([`rules::BFD_INTERVAL_PATTERN`]).
pub fn parse_interval(s: &str) -> Result<Duration, DurationError> {
    let caps = BFD_INTERVAL.captures(s).ok_or_else(|| DurationError { input: s.to_string() })?;
    let unit = caps.get(1).map_or("", |m| m.as_str());
    let n: u64 = s[..s.len() - unit.len()].parse().map_err(|_| DurationError { input: s.to_string() })?;
    Ok(if unit == "ms" { Duration::from_millis(n) } else { Duration::from_secs(n) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(s: &str) -> (IpAddr, IpAddr, u128) {
        let r: IpRange = s.parse().unwrap();
        (r.start, r.end, r.size())
    }

    #[test]
    fn entries_parse() {
        assert_eq!(range("203.0.113.0/24"), (ip("203.0.113.0"), ip("203.0.113.255"), 256));
        assert_eq!(range("10.0.0.5-10.0.0.9"), (ip("10.0.0.5"), ip("10.0.0.9"), 5));
        assert_eq!(range("10.0.0.5"), (ip("10.0.0.5"), ip("10.0.0.5"), 1));
        assert_eq!(range("2001:db8::/126"), (ip("2001:db8::"), ip("2001:db8::3"), 4));
        assert_eq!(range("0.0.0.0/0").2, 1 << 32);
        assert_eq!(range("::/0").2, u128::MAX);
        assert_eq!(parse_entry("10.0.0.0/8").unwrap().prefix_len, Some(8));
        assert_eq!(parse_entry("10.0.0.0-10.0.0.1").unwrap().prefix_len, None);
    }

    #[test]
    fn bad_entries_say_why() {
        let reason = |s: &str| match s.parse::<IpRange>() {
            Err(EntryError::Invalid { entry, reason }) => {
                assert_eq!(entry, s);
                reason
            }
            other => panic!("{s}: {other:?}"),
        };
        assert!(reason("10.0.0.1/24").contains("the network is 10.0.0.0/24"));
        assert!(reason("2001:db8::1/64").contains("the network is 2001:db8::/64"));
        assert!(reason("10.0.0.0/33").contains("prefix length"));
        assert!(reason("10.0.0.0/024").contains("prefix length"));
        assert!(reason("10.0.0.0/").contains("prefix length"));
        assert!(reason("2001:db8::/129").contains("0..=128"));
        assert!(reason("10.0.0.256").contains("not a CIDR"));
        assert!(reason("pool-a").contains("not an IP address"));
        assert!(reason("10.0.0.1-2001:db8::1").contains("mixes IPv4 and IPv6"));
        assert!(reason("10.0.0.1-10.0.0.2-10.0.0.3").contains("not an IP address"));
        assert!(reason(" 10.0.0.1").contains("whitespace"));
        assert!(reason("").contains("empty"));
        assert!(reason("fe80::1%eth0").contains("zone"));
        assert!(reason("::ffff:10.0.0.1").contains("IPv4-mapped"));
        assert!(reason("010.0.0.1").contains("not a CIDR"));
    }

    #[test]
    fn reversed_ranges() {
        assert_eq!(
            "10.0.0.9-10.0.0.5".parse::<IpRange>(),
            Err(EntryError::Reversed { entry: "10.0.0.9-10.0.0.5".into(), start: ip("10.0.0.9"), end: ip("10.0.0.5") })
        );
        let e = "2001:db8::20-2001:db8::10".parse::<IpRange>().unwrap_err();
        assert_eq!(e.to_string(), "\"2001:db8::20-2001:db8::10\": range is reversed (2001:db8::20 > 2001:db8::10)");
    }

    #[test]
    fn ranges() {
        let r = |s: &str| s.parse::<IpRange>().unwrap();
        assert!(r("10.0.0.0/24").overlaps(&r("10.0.0.255-10.0.1.0")));
        assert!(!r("10.0.0.0/24").overlaps(&r("10.0.1.0")));
        // IPv4 and IPv6 never overlap, even for numerically equal values.
        assert!(!r("0.0.0.1").overlaps(&r("::1")));
        assert!(r("10.0.0.0/24").contains(ip("10.0.0.7")) && !r("10.0.0.0/24").contains(ip("::a00:7")));
        assert_eq!(r("10.0.0.1-10.0.0.3").to_string(), "10.0.0.1-10.0.0.3");
        for a in ["10.0.0.7", "2001:db8::7", "0.0.0.0", "255.255.255.255", "::", "ffff::"] {
            assert_eq!(from_u128(to_u128(ip(a)), ip(a)), ip(a), "{a}");
        }
        assert_eq!(from_u128(to_u128(ip("10.0.0.255")) + 1, ip("10.0.0.0")), ip("10.0.1.0"));
    }

    #[test]
    fn durations() {
        let secs = |s: &str| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("3m"), Ok(180));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("1m30s"), Ok(90));
        assert_eq!(secs("1h0m1s"), Ok(3601));
        assert_eq!(secs("0s"), Ok(0));
        assert_eq!(secs("99999h99999m99999s"), Ok(99999 * 3661));
        for bad in ["", "90", "s", "1.5m", "30s1m", "1m1m", "-1s", "1d", "100000s", " 1s", "1s ", "1ms", "1µs", "1s\n"]
        {
            let e = parse_duration(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(e.to_string().contains("is not a duration"), "{bad}");
        }
        assert!(matches_duration_pattern("") && !matches_duration_pattern("90"));
    }

    #[test]
    fn intervals() {
        let ms = |s: &str| parse_interval(s).map(|d| d.as_millis());
        assert_eq!(ms("300ms"), Ok(300));
        assert_eq!(ms("1s"), Ok(1000));
        assert_eq!(ms("99999ms"), Ok(99999));
        assert_eq!(ms("0ms"), Ok(0));
        for bad in ["", "ms", "s", "300", "1.5s", "1m", "100000ms", "-1ms", " 1s", "1s ", "1h", "1sms"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
            assert!(!matches_interval_pattern(bad), "{bad}");
        }
    }
}
