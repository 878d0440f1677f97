//! Kubernetes-free parsing of the values the CRDs hold: address entries, durations, communities.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

use crate::eip::EipSpec;

/// An inclusive range of addresses of one family, from one Eip entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IpRange {
    /// First address.
    pub start: IpAddr,
    /// Last address (same family as `start`, `>= start`).
    pub end: IpAddr,
    /// The entry it came from, as written.
    pub entry: String,
}

impl IpRange {
    /// Whether both ends are IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.start.is_ipv4()
    }

    /// Number of addresses, saturating at `u128::MAX` (only `::/0` saturates).
    pub fn size(&self) -> u128 {
        (ip_to_u128(self.end) - ip_to_u128(self.start)).saturating_add(1)
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

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Total size of `ranges`, saturating, as the `int64` that `EipStatus` counts use.
pub fn total_size_i64(ranges: &[IpRange]) -> i64 {
    let total = ranges.iter().fold(0u128, |acc, r| acc.saturating_add(r.size()));
    i64::try_from(total).unwrap_or(i64::MAX)
}

/// Why an Eip's addresses are unusable. Every variant names the entry (as written).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EipError {
    /// Neither `spec.address` nor `spec.addresses` is set.
    #[error("no address: set spec.address or spec.addresses")]
    Empty,
    /// The entry is not a CIDR, a range or an address.
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
    /// Two entries share addresses.
    #[error("{first:?} overlaps {second:?}")]
    Overlap {
        /// The earlier entry.
        first: String,
        /// The later entry.
        second: String,
    },
}

fn invalid(entry: &str, reason: impl Into<String>) -> EipError {
    EipError::Invalid { entry: entry.to_string(), reason: reason.into() }
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

/// Parse one Eip entry: `a.b.c.d/len`, `first-last` or a single address.
pub fn parse_eip_entry(entry: &str) -> Result<IpRange, EipError> {
    if entry.is_empty() {
        return Err(invalid(entry, "empty entry"));
    }
    if entry.trim() != entry {
        return Err(invalid(entry, "leading or trailing whitespace"));
    }
    if let Some((addr, len)) = entry.split_once('/') {
        let ip = parse_ip(addr).map_err(|r| invalid(entry, r))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u32 = match len.parse() {
            Ok(l) if l <= max && (len == "0" || !len.starts_with('0')) => l,
            _ => return Err(invalid(entry, format!("prefix length {len:?} is not a number in 0..={max}"))),
        };
        let host_bits = max - len;
        let mask: u128 = if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
        let start = ip_to_u128(ip);
        if start & mask != 0 {
            let net = from_u128(ip.is_ipv4(), start & !mask);
            return Err(invalid(entry, format!("host bits are set; the network is {net}/{len}")));
        }
        let end = from_u128(ip.is_ipv4(), start | mask);
        return Ok(IpRange { start: ip, end, entry: entry.to_string() });
    }
    if let Some((a, b)) = entry.split_once('-') {
        let start = parse_ip(a).map_err(|r| invalid(entry, r))?;
        let end = parse_ip(b).map_err(|r| invalid(entry, r))?;
        if start.is_ipv4() != end.is_ipv4() {
            return Err(invalid(entry, "the range mixes IPv4 and IPv6"));
        }
        if start > end {
            return Err(EipError::Reversed { entry: entry.to_string(), start, end });
        }
        return Ok(IpRange { start, end, entry: entry.to_string() });
    }
    let ip = parse_ip(entry).map_err(|r| {
        if r.ends_with("is not an IP address") {
            invalid(entry, "not a CIDR, a range first-last, or an IP address")
        } else {
            invalid(entry, r)
        }
    })?;
    Ok(IpRange { start: ip, end: ip, entry: entry.to_string() })
}

fn from_u128(v4: bool, n: u128) -> IpAddr {
    if v4 {
        IpAddr::V4((n as u32).into())
    } else {
        IpAddr::V6(n.into())
    }
}

/// Parse all entries of an Eip (`spec.address` first, then `spec.addresses` in order) into
/// ranges, rejecting invalid, reversed and overlapping entries. Stops at the first error;
/// [`eip_range_errors`] collects them all.
pub fn parse_eip_ranges(spec: &EipSpec) -> Result<Vec<IpRange>, EipError> {
    let (ranges, mut errors) = parse_all(spec);
    if errors.is_empty() {
        Ok(ranges)
    } else {
        Err(errors.remove(0))
    }
}

/// Every problem with an Eip's entries (empty: none), each with the index of the entry it
/// is about in [`EipSpec::entries`] order (for an overlap: the later entry).
pub fn eip_range_errors(spec: &EipSpec) -> Vec<(usize, EipError)> {
    parse_indexed(spec).1
}

fn parse_all(spec: &EipSpec) -> (Vec<IpRange>, Vec<EipError>) {
    let (ranges, errors) = parse_indexed(spec);
    (ranges, errors.into_iter().map(|(_, e)| e).collect())
}

fn parse_indexed(spec: &EipSpec) -> (Vec<IpRange>, Vec<(usize, EipError)>) {
    let entries: Vec<&String> = spec.entries().collect();
    if entries.is_empty() {
        return (Vec::new(), vec![(0, EipError::Empty)]);
    }
    let mut ranges: Vec<IpRange> = Vec::new();
    let mut errors = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        match parse_eip_entry(entry) {
            Ok(r) => {
                if let Some(prev) = ranges.iter().find(|p| p.overlaps(&r)) {
                    errors.push((i, EipError::Overlap { first: prev.entry.clone(), second: r.entry.clone() }));
                }
                ranges.push(r);
            }
            Err(e) => errors.push((i, e)),
        }
    }
    (ranges, errors)
}

/// A malformed duration.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{input:?} is not a duration like 90s, 3m or 1h30m (hours, minutes, seconds, in that order)")]
pub struct DurationError {
    /// The input.
    pub input: String,
}

/// Parse a duration of the form the CRDs accept (`crate::rules::DURATION_PATTERN`):
/// `[Nh][Nm][Ns]`, at least one part, each part at most 5 digits (`90s`, `3m`, `1h30m`, `0s`).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError { input: s.to_string() };
    if s.is_empty() {
        return Err(err());
    }
    let mut rest = s;
    let mut total = 0u64;
    let mut last_unit = 0; // 1 = h, 2 = m, 3 = s: units must increase
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 || digits == rest.len() {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        let (unit, mult) = match rest.as_bytes()[digits] {
            b'h' => (1, 3600),
            b'm' => (2, 60),
            b's' => (3, 1),
            _ => return Err(err()),
        };
        if unit <= last_unit {
            return Err(err());
        }
        last_unit = unit;
        total += n * mult;
        rest = &rest[digits + 1..];
    }
    Ok(Duration::from_secs(total))
}

/// A BFD interval: `N` milliseconds or seconds (`300ms`, `1s`, at most 5 digits), the
/// form of `BgpPeer` `spec.bfd.minTxInterval` (see [`crate::bgppeer::BFD_INTERVAL_PATTERN`]).
pub fn parse_ms_duration(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError { input: s.to_string() };
    let (digits, ms) = match s.strip_suffix("ms") {
        Some(d) => (d, true),
        None => (s.strip_suffix('s').ok_or_else(err)?, false),
    };
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let n: u64 = digits.parse().map_err(|_| err())?;
    Ok(if ms { Duration::from_millis(n) } else { Duration::from_secs(n) })
}

/// Well-known communities (RFC 1997, 3765, 7999, 8326) by the names the CRDs accept.
pub const WELL_KNOWN_COMMUNITIES: [(&str, u32); 5] = [
    ("no-export", 0xFFFF_FF01),
    ("no-advertise", 0xFFFF_FF02),
    ("no-peer", 0xFFFF_FF04),
    ("graceful-shutdown", 0xFFFF_0000),
    ("blackhole", 0xFFFF_029A),
];

/// A standard community (RFC 1997).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// `(ASN, VALUE)`: the high and low 16 bits.
    pub fn parts(self) -> (u16, u16) {
        ((self.0 >> 16) as u16, self.0 as u16)
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, v) = self.parts();
        write!(f, "{a}:{v}")
    }
}

/// A large community (RFC 8092).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    /// Global administrator (an ASN).
    pub global: u32,
    /// First local data part.
    pub local1: u32,
    /// Second local data part.
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

/// A malformed community or large community.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{input:?}: {reason}")]
pub struct CommunityError {
    /// The input.
    pub input: String,
    /// Why.
    pub reason: &'static str,
}

fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parse `ASN:VALUE` (each 0..=65535) or a well-known name (`no-export`, ...).
pub fn parse_community(s: &str) -> Result<Community, CommunityError> {
    if let Some((_, v)) = WELL_KNOWN_COMMUNITIES.iter().find(|(n, _)| *n == s) {
        return Ok(Community(*v));
    }
    let err = |reason| CommunityError { input: s.to_string(), reason };
    let (a, v) = s.split_once(':').ok_or_else(|| err("not ASN:VALUE or a well-known community name"))?;
    let a: u16 = decimal(a).ok_or_else(|| err("ASN is not a number in 0..=65535"))?;
    let v: u16 = decimal(v).ok_or_else(|| err("VALUE is not a number in 0..=65535"))?;
    Ok(Community(((a as u32) << 16) | v as u32))
}

/// Parse `A:B:C` (each 0..=4294967295).
pub fn parse_large_community(s: &str) -> Result<LargeCommunity, CommunityError> {
    let err = |reason| CommunityError { input: s.to_string(), reason };
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 3 {
        return Err(err("not A:B:C"));
    }
    let n = |p: &str| decimal::<u32>(p).ok_or_else(|| err("a part is not a number in 0..=4294967295"));
    Ok(LargeCommunity { global: n(parts[0])?, local1: n(parts[1])?, local2: n(parts[2])? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(address: Option<&str>, addresses: &[&str]) -> EipSpec {
        serde_json::from_value(serde_json::json!({
            "address": address,
            "addresses": addresses,
        }))
        .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn entries_parse() {
        let r = parse_eip_entry("203.0.113.0/24").unwrap();
        assert_eq!((r.start, r.end, r.size()), (ip("203.0.113.0"), ip("203.0.113.255"), 256));
        let r = parse_eip_entry("10.0.0.5-10.0.0.9").unwrap();
        assert_eq!((r.start, r.end, r.size()), (ip("10.0.0.5"), ip("10.0.0.9"), 5));
        let r = parse_eip_entry("10.0.0.5").unwrap();
        assert_eq!((r.start, r.end, r.size()), (ip("10.0.0.5"), ip("10.0.0.5"), 1));
        let r = parse_eip_entry("0.0.0.0/0").unwrap();
        assert_eq!(r.size(), 1 << 32);
        let r = parse_eip_entry("2001:db8::/64").unwrap();
        assert_eq!((r.end, r.size()), (ip("2001:db8::ffff:ffff:ffff:ffff"), 1 << 64));
        assert_eq!(parse_eip_entry("::/0").unwrap().size(), u128::MAX);
        let r = parse_eip_entry("2001:db8::10-2001:db8::1f").unwrap();
        assert_eq!(r.size(), 16);
        assert!(r.contains(ip("2001:db8::15")) && !r.contains(ip("2001:db8::20")) && !r.contains(ip("10.0.0.1")));
        assert_eq!(r.to_string(), "2001:db8::10-2001:db8::1f");
    }

    #[test]
    fn entries_rejected_with_reason() {
        let reason = |s: &str| match parse_eip_entry(s) {
            Err(EipError::Invalid { entry, reason }) => {
                assert_eq!(entry, s);
                reason
            }
            other => panic!("{s}: {other:?}"),
        };
        assert!(reason("10.0.0.1/24").contains("host bits are set; the network is 10.0.0.0/24"));
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
            parse_eip_entry("10.0.0.9-10.0.0.5"),
            Err(EipError::Reversed { entry: "10.0.0.9-10.0.0.5".into(), start: ip("10.0.0.9"), end: ip("10.0.0.5") })
        );
        let e = parse_eip_entry("2001:db8::20-2001:db8::10").unwrap_err();
        assert_eq!(e.to_string(), "\"2001:db8::20-2001:db8::10\": range is reversed (2001:db8::20 > 2001:db8::10)");
    }

    #[test]
    fn eip_ranges_and_overlaps() {
        let s = spec(Some("10.0.0.0/24"), &["10.0.1.0-10.0.1.9", "2001:db8::/126", "2001:db8::4"]);
        let r = parse_eip_ranges(&s).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(total_size_i64(&r), 256 + 10 + 4 + 1);

        let s = spec(Some("10.0.0.0/24"), &["10.0.0.250-10.0.1.9"]);
        assert_eq!(
            parse_eip_ranges(&s),
            Err(EipError::Overlap { first: "10.0.0.0/24".into(), second: "10.0.0.250-10.0.1.9".into() })
        );
        let s = spec(None, &["2001:db8::1-2001:db8::10", "2001:db8::8-2001:db8::20"]);
        assert!(matches!(parse_eip_ranges(&s), Err(EipError::Overlap { .. })));
        let s = spec(None, &["10.0.0.1", "10.0.0.1/32"]);
        assert!(matches!(parse_eip_ranges(&s), Err(EipError::Overlap { .. })));
        // IPv4 and IPv6 never overlap, even for numerically equal values.
        let s = spec(None, &["0.0.0.1", "::1"]);
        assert!(parse_eip_ranges(&s).is_ok());
        assert_eq!(parse_eip_ranges(&spec(None, &[])), Err(EipError::Empty));

        let s = spec(Some("bad"), &["10.0.0.9-10.0.0.1", "10.0.0.0/8", "10.1.0.0/16"]);
        let errs = eip_range_errors(&s);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[0].0, 0);
        assert_eq!(errs[1].0, 1);
        assert_eq!(errs[2], (3, EipError::Overlap { first: "10.0.0.0/8".into(), second: "10.1.0.0/16".into() }));
    }

    #[test]
    fn sizes_saturate() {
        let s = spec(None, &["2001:db8::/64", "2001:db9::/1"]);
        assert!(parse_eip_ranges(&s).is_err(), "2001:db9::/1 has host bits");
        let s = spec(None, &["::/1", "8000::/1"]);
        assert_eq!(total_size_i64(&parse_eip_ranges(&s).unwrap()), i64::MAX);
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
        assert_eq!(secs("99999s"), Ok(99999));
        for bad in ["", "90", "s", "1.5m", "30s1m", "1m1m", "-1s", "1d", "100000s", " 1s", "1s ", "1ms", "1µs"] {
            let e = parse_duration(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(e.to_string().contains("is not a duration"), "{bad}");
        }
    }

    #[test]
    fn ms_durations() {
        let ms = |s: &str| parse_ms_duration(s).map(|d| d.as_millis());
        assert_eq!(ms("300ms"), Ok(300));
        assert_eq!(ms("1s"), Ok(1000));
        assert_eq!(ms("99999ms"), Ok(99999));
        let re = regex::Regex::new(crate::bgppeer::BFD_INTERVAL_PATTERN).unwrap();
        for bad in ["", "ms", "s", "300", "1.5s", "1m", "100000ms", "-1ms", " 1s", "1s ", "1h", "1sms"] {
            assert!(parse_ms_duration(bad).is_err(), "{bad}");
            assert!(!re.is_match(bad), "{bad}");
        }
        for good in ["300ms", "1s", "0ms", "60s"] {
            assert!(re.is_match(good));
        }
    }

    #[test]
    fn duration_parser_matches_schema_pattern() {
        let re = regex::Regex::new(crate::rules::DURATION_PATTERN).unwrap();
        for s in ["90s", "3m", "1h30m", "0s", "1h1m1s", "", "90", "1.5m", "30s1m", "1ms", "123456s", "1h1h"] {
            // The schema also demands minLength 2, which excludes "".
            let schema_ok = re.is_match(s) && s.len() >= 2;
            assert_eq!(schema_ok, parse_duration(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn communities() {
        assert_eq!(parse_community("65001:100").unwrap().parts(), (65001, 100));
        assert_eq!(parse_community("0:0"), Ok(Community(0)));
        assert_eq!(parse_community("65535:65535"), Ok(Community(u32::MAX)));
        assert_eq!(parse_community("no-export"), Ok(Community(0xFFFF_FF01)));
        assert_eq!(parse_community("no-advertise"), Ok(Community(0xFFFF_FF02)));
        assert_eq!(parse_community("no-peer"), Ok(Community(0xFFFF_FF04)));
        assert_eq!(parse_community("graceful-shutdown"), Ok(Community(0xFFFF_0000)));
        assert_eq!(parse_community("blackhole").unwrap().parts(), (65535, 666));
        assert_eq!(Community(0xFFFF_029A).to_string(), "65535:666");
        for bad in ["65536:1", "1:65536", "1", "1:", ":1", "a:b", "1:2:3", "+1:2", "NO-EXPORT", " 1:2", ""] {
            let e = parse_community(bad).unwrap_err();
            assert_eq!(e.input, bad);
        }
    }

    #[test]
    fn community_parser_matches_schema_and_cel() {
        // Schema pattern plus the CEL bound (halves <= 65535) == parse_community.
        let re = regex::Regex::new(crate::rules::COMMUNITY_PATTERN).unwrap();
        for s in ["1:2", "65535:0", "65536:0", "99999:1", "no-export", "blackhole", "foo", "1:2:3", "123456:1"] {
            let cel_ok = !s.contains(':') || s.split(':').all(|p| p.parse::<u64>().is_ok_and(|n| n <= 65535));
            assert_eq!(re.is_match(s) && cel_ok, parse_community(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn large_communities() {
        assert_eq!(
            parse_large_community("4200000000:1:4294967295"),
            Ok(LargeCommunity { global: 4_200_000_000, local1: 1, local2: u32::MAX })
        );
        assert_eq!(parse_large_community("1:2:3").unwrap().to_string(), "1:2:3");
        for bad in ["1:2", "1:2:3:4", "4294967296:1:1", "a:1:1", "1::1", "no-export", ""] {
            assert!(parse_large_community(bad).is_err(), "{bad}");
        }
    }
}
