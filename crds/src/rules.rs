//! The rules the CRDs carry: schema patterns and bounds, and the CEL rules
//! (`x-kubernetes-validations`) with the message each one reports, built as strings.
//!
//! The numbers come from one place: the BGP ranges from [`mooring_bgp::limits`], the
//! community text form from [`mooring_bgp::wire`], the rest from the constants here. The
//! Rust parse layer ([`crate::settings`]) checks the same constants and reports the same
//! messages at the same field paths; `crds/tests/cel.rs` proves it rule by rule.
//!
//! The CEL rules use only what a Kubernetes >= 1.31 apiserver offers to *new* CRD validation
//! rules (it compiles them against the previous release's CEL environment, and the IP/CIDR
//! libraries arrived in 1.30, so a 1.30 apiserver refuses them):
//! standard CEL, the `ext.Strings` library (`split`, `contains`) and the Kubernetes IP and
//! CIDR libraries (`isIP`, `ip`, `isCIDR`, `cidr`, `containsIP`, `containsCIDR`, `family`,
//! `masked`, `prefixLength`). Kube's client-side evaluator (`kube-cel`) knows a few more
//! functions (`isIPv4`, ...) that a real apiserver does not; they are not used here.
//!
//! The long address rules are generated rather than written by hand: CEL has no functions or
//! let-bindings usable on every supported Kubernetes version, so "IPv4 address as a number"
//! is spelled out wherever it is needed.

use std::ops::RangeInclusive;

use mooring_bgp::limits;
use mooring_bgp::wire::{Community, COMMUNITY_DIGITS, LARGE_COMMUNITY_DIGITS};

// ---- Schema patterns ----

/// The Go-style duration strings Mooring accepts: hours, minutes, seconds, in that order,
/// each at most once (`90s`, `3m`, `1h30m`, `0s`). Used as the schema `pattern`.
pub const DURATION_PATTERN: &str = "^([0-9]{1,5}h)?([0-9]{1,5}m)?([0-9]{1,5}s)?$";

/// Schema pattern of a BFD interval: milliseconds or seconds (`300ms`, `1s`).
pub const BFD_INTERVAL_PATTERN: &str = "^[0-9]{1,5}(ms|s)$";

/// Schema pattern of a Linux interface name (BgpPeer `spec.vrf`, a VRF device): ASCII
/// letters, digits, `_`, `-` and `.`, not starting with `.`. A conservative part of what the
/// kernel takes (`dev_valid_name`: no `/`, `:` or white space, not `.` or `..`) that every tool
/// prints as given, and in which [`INTERFACE_NAME_LEN`] characters are as many octets.
pub const INTERFACE_NAME_PATTERN: &str = "^[A-Za-z0-9_-][A-Za-z0-9_.-]*$";

/// Schema pattern for a standard community: `ASN:VALUE` or a well-known name, exactly the
/// text `mooring_bgp::wire::Community` parses (its value bound is [`communities_rule`]).
pub fn community_pattern() -> String {
    let names: Vec<&str> = Community::WELL_KNOWN.iter().map(|(_, n)| *n).collect();
    format!("^([0-9]{{1,{d}}}:[0-9]{{1,{d}}}|{})$", names.join("|"), d = COMMUNITY_DIGITS)
}

/// Schema pattern for a large community `A:B:C` (its value bound is [`large_communities_rule`]).
pub fn large_community_pattern() -> String {
    format!("^[0-9]{{1,{d}}}:[0-9]{{1,{d}}}:[0-9]{{1,{d}}}$", d = LARGE_COMMUNITY_DIGITS)
}

// ---- Schema bounds (the BGP ones are in `mooring_bgp::limits`) ----

/// Length of a string holding an IP address (the longest IPv6 text is 45 characters).
pub const IP_LEN: RangeInclusive<usize> = 0..=45;
/// Length of BgpConf `spec.routerId` (dotted quad).
pub const ROUTER_ID_LEN: RangeInclusive<usize> = 0..=15;
/// Length of BgpConf `spec.hostname` (a DNS name).
pub const HOSTNAME_LEN: RangeInclusive<usize> = 0..=253;
/// BgpConf `spec.listenPort`: 0 means do not listen.
pub const LISTEN_PORTS: RangeInclusive<i32> = 0..=65535;
/// BgpPeer `spec.port`.
pub const PEER_PORTS: RangeInclusive<i32> = 1..=65535;
/// Length of a duration string (`holdTime`, `keepaliveTime`).
pub const DURATION_LEN: RangeInclusive<usize> = 2..=20;
/// Length of a BFD interval string.
pub const BFD_INTERVAL_LEN: RangeInclusive<usize> = 2..=8;
/// Length of an interface name: IFNAMSIZ (16) less its terminating NUL.
pub const INTERFACE_NAME_LEN: RangeInclusive<usize> = 1..=15;
/// BgpPeer `spec.ebgpMultihop`: a TTL.
pub const MULTIHOP_TTLS: RangeInclusive<u8> = 1..=255;
/// Length of `spec.password`: a TCP MD5 key (RFC 2385) of at most 80 characters.
pub const PASSWORD_LEN: RangeInclusive<usize> = 1..=80;
/// Lengths of a Secret reference's name (a DNS subdomain) and key.
pub const SECRET_NAME_LEN: RangeInclusive<usize> = 1..=253;
/// Length of a namespace name (a DNS label).
pub const NAMESPACE_LEN: RangeInclusive<usize> = 1..=63;
/// BgpPeer `spec.families`: one or both.
pub const FAMILIES_ITEMS: RangeInclusive<usize> = 1..=2;
/// BgpPeer `spec.maxPrefixes.limit`.
pub const MIN_PREFIX_LIMIT: u32 = 1;
/// Most entries of a community list.
pub const MAX_COMMUNITIES: usize = 32;
/// Longest standard community text (the longest well-known name is 19 characters).
pub const COMMUNITY_LEN: RangeInclusive<usize> = 0..=20;
/// Longest large community text (3 x 10 digits and 2 colons).
pub const LARGE_COMMUNITY_LEN: RangeInclusive<usize> = 0..=32;
/// Length of an Eip address entry (an IPv6 range is 2 x 39 + 1 characters).
pub const ENTRY_LEN: RangeInclusive<usize> = 1..=80;
/// Most entries in `spec.addresses`: bounds the pairwise overlap rule's CEL cost.
pub const MAX_ADDRESSES: usize = 16;
/// Most entries in Eip `spec.namespaces`.
pub const MAX_NAMESPACES: usize = 256;
/// Most names a `BgpAdvertisement` lists in `eips` or `peers`.
pub const MAX_SELECTED_NAMES: usize = 64;
/// A name of a cluster-scoped object (a DNS subdomain).
pub const OBJECT_NAME_LEN: RangeInclusive<usize> = 1..=253;
/// Eip `spec.asPathPrepend`.
pub const AS_PATH_PREPENDS: RangeInclusive<u8> = 0..=16;
/// Eip `spec.aggregationLength`.
pub const AGGREGATION_V4: RangeInclusive<u8> = 0..=32;
/// Eip `spec.aggregationLengthV6`.
pub const AGGREGATION_V6: RangeInclusive<u8> = 0..=128;

/// BgpConf `spec.nodeProbe.intervalMilliseconds` and `timeoutMilliseconds`.
pub const PROBE_MILLISECONDS: RangeInclusive<u32> = 10..=60000;
/// BgpConf `spec.nodeProbe.failures` and `successes`.
pub const PROBE_THRESHOLDS: RangeInclusive<u32> = 1..=100;
/// BgpConf `spec.nodeProbe.http.path`.
pub const PROBE_PATH_LEN: RangeInclusive<usize> = 1..=256;
/// BgpConf `spec.nodeProbe.http.path`: an absolute path of printable ASCII, no spaces.
pub const PROBE_PATH_PATTERN: &str = "^/[!-~]*$";
/// The node probe's defaults (BgpConf `spec.nodeProbe`): 200 ms apart, 150 ms to answer, down
/// after 3 failures (at most 3 x 200 + 150 = 750 ms), up after 2 passes.
pub const DEFAULT_PROBE_INTERVAL_MS: u32 = 200;
/// See [`DEFAULT_PROBE_INTERVAL_MS`].
pub const DEFAULT_PROBE_TIMEOUT_MS: u32 = 150;
/// See [`DEFAULT_PROBE_INTERVAL_MS`].
pub const DEFAULT_PROBE_FAILURES: u32 = 3;
/// See [`DEFAULT_PROBE_INTERVAL_MS`].
pub const DEFAULT_PROBE_SUCCESSES: u32 = 2;
/// The node probe without `http` or `tcp`: kube-proxy's health server.
pub const DEFAULT_NODE_PROBE_PORT: u16 = 10256;
/// See [`DEFAULT_NODE_PROBE_PORT`].
pub const DEFAULT_NODE_PROBE_PATH: &str = "/healthz";

/// BgpPeer `spec.holdTime` when absent (also what `PeerConfig::new` proposes).
pub const DEFAULT_HOLD_TIME: &str = "90s";

// ---- CEL rules and their messages ----

/// On the BgpConf object: it is named `default`.
pub const BGPCONF_NAME_RULE: &str = "self.metadata.name == 'default'";
/// Message of [`BGPCONF_NAME_RULE`].
pub const BGPCONF_NAME_MESSAGE: &str = "there is one BgpConf and it must be named 'default'";

/// On BgpConf `spec.routerId`.
pub const ROUTER_ID_RULE: &str = "isIP(self) && ip(self).family() == 4 && !ip(self).isUnspecified()";
/// Message of [`ROUTER_ID_RULE`].
pub const ROUTER_ID_MESSAGE: &str = "routerId must be a non-zero IPv4 address";

/// On a field holding an IP address.
pub const IS_IP_RULE: &str = "isIP(self)";
/// Message of [`IS_IP_RULE`] on BgpPeer `spec.peerAddress`.
pub const PEER_ADDRESS_MESSAGE: &str = "peerAddress must be an IPv4 or IPv6 address";
/// Message of [`IS_IP_RULE`] on BgpPeer `spec.sourceAddress`.
pub const SOURCE_ADDRESS_MESSAGE: &str = "sourceAddress must be an IPv4 or IPv6 address";

/// On BgpPeerSpec, reported at `spec.password`: not both a plain password and a Secret reference.
pub const PASSWORD_EXCLUSIVE_RULE: &str = "!(has(self.password) && has(self.passwordSecretRef))";
/// Message of [`PASSWORD_EXCLUSIVE_RULE`].
pub const PASSWORD_EXCLUSIVE_MESSAGE: &str = "set at most one of password and passwordSecretRef";

/// On BgpPeerSpec, reported at `spec.bfd`: no BFD for a peer in a VRF (the speaker's BFD
/// sockets are not bound to VRFs). (The apiserver applies the default of `bfd.enabled` first.)
pub const VRF_BFD_RULE: &str = "!has(self.vrf) || !has(self.bfd) || (has(self.bfd.enabled) && !self.bfd.enabled)";
/// Message of [`VRF_BFD_RULE`].
pub const VRF_BFD_MESSAGE: &str = "BFD is not supported yet for a peer in a VRF (spec.vrf)";

/// On BgpConf `spec.nodeProbe`, reported at `.tcp`: one check at most.
pub const PROBE_EXCLUSIVE_RULE: &str = "!(has(self.http) && has(self.tcp))";
/// Message of [`PROBE_EXCLUSIVE_RULE`].
pub const PROBE_EXCLUSIVE_MESSAGE: &str = "set at most one of http and tcp";

// Every rule below is total: one that reads a value (`int()`, `duration()`) first checks it
// has the form the schema pattern demands, so a malformed value gets the pattern's error
// alone instead of an evaluation error besides.

/// Every community of the `ASN:VALUE` form has both halves at most 65535.
pub fn communities_rule() -> String {
    let d = COMMUNITY_DIGITS;
    format!("self.all(c, !c.matches('^[0-9]{{1,{d}}}:[0-9]{{1,{d}}}$') || c.split(':').all(p, int(p) <= {}))", u16::MAX)
}
/// Message of [`communities_rule`].
pub const COMMUNITIES_MESSAGE: &str = "community halves must be at most 65535";

/// Every large community of the right form has all three parts at most 4294967295.
pub fn large_communities_rule() -> String {
    format!("self.all(c, !c.matches('{}') || c.split(':').all(p, int(p) <= {}))", large_community_pattern(), u32::MAX)
}
/// Message of [`large_communities_rule`].
pub const LARGE_COMMUNITIES_MESSAGE: &str = "large community parts must be at most 4294967295";

/// `duration(<expr>)` where `expr` is a CEL string expression.
fn dur(expr: &str) -> String {
    format!("duration({expr})")
}

/// The CEL string expression `expr` is a non-empty duration of the schema's form.
fn is_duration(expr: &str) -> String {
    format!("(size({expr}) > 0 && {expr}.matches('{DURATION_PATTERN}'))")
}

/// `duration('<n>s')`.
fn secs(n: u64) -> String {
    format!("duration('{n}s')")
}

/// spec.holdTime: 0s or 3s..=65535s.
pub fn hold_time_rule() -> String {
    format!(
        "!{ok} || {d} == duration('0s') || ({d} >= {min} && {d} <= {max})",
        ok = is_duration("self"),
        d = dur("self"),
        min = secs(limits::MIN_HOLD_TIME),
        max = secs(limits::MAX_HOLD_TIME)
    )
}
/// Message of [`hold_time_rule`].
pub fn hold_time_message() -> String {
    format!("holdTime must be 0s or between {}s and {}s", limits::MIN_HOLD_TIME, limits::MAX_HOLD_TIME)
}

/// spec.keepaliveTime: at most 21845s (65535 / 3).
pub fn keepalive_time_rule() -> String {
    format!("!{} || {} <= {}", is_duration("self"), dur("self"), secs(limits::MAX_KEEPALIVE))
}
/// Message of [`keepalive_time_rule`].
pub fn keepalive_time_message() -> String {
    format!("keepaliveTime must be at most {}s", limits::MAX_KEEPALIVE)
}

/// On BgpPeerSpec, reported at `spec.keepaliveTime`: keepaliveTime below holdTime; keepalive
/// 0 only with hold 0. (The apiserver applies the schema default of `holdTime` before
/// evaluating rules, so it is always there.)
pub fn keepalive_below_hold_rule() -> String {
    let (hold, ka) = (dur("self.holdTime"), dur("self.keepaliveTime"));
    format!(
        "!has(self.keepaliveTime) || !{ka_ok} || !{hold_ok} || ({hold} == duration('0s') ? {ka} == duration('0s') : ({ka} > duration('0s') && {ka} < {hold}))",
        ka_ok = is_duration("self.keepaliveTime"),
        hold_ok = is_duration("self.holdTime"),
    )
}
/// Message of [`keepalive_below_hold_rule`].
pub fn keepalive_below_hold_message() -> String {
    format!(
        "keepaliveTime must be above 0s and below holdTime (default {DEFAULT_HOLD_TIME}), or 0s when holdTime is 0s"
    )
}

/// CEL spelling of a duration: `10ms`, `60s`.
fn cel_duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("duration('{}s')", d.as_secs())
    } else {
        format!("duration('{}ms')", d.as_millis())
    }
}

/// A BFD interval: 10ms..=60s.
pub fn bfd_interval_rule() -> String {
    let (min, max) = (limits::BFD_INTERVALS.start(), limits::BFD_INTERVALS.end());
    format!(
        "!self.matches('{BFD_INTERVAL_PATTERN}') || (duration(self) >= {} && duration(self) <= {})",
        cel_duration(*min),
        cel_duration(*max)
    )
}
/// Message of [`bfd_interval_rule`] on the field `field` (`minTxInterval`).
pub fn bfd_interval_message(field: &str) -> String {
    let (min, max) = (limits::BFD_INTERVALS.start(), limits::BFD_INTERVALS.end());
    format!("{field} must be between {}ms and {}s", min.as_millis(), max.as_secs())
}

/// The CEL spelling of "the dotted-quad IPv4 string `s` as an integer".
fn v4int(s: &str) -> String {
    format!(
        "(int({s}.split('.')[0]) * 16777216 + int({s}.split('.')[1]) * 65536 + int({s}.split('.')[2]) * 256 + int({s}.split('.')[3]))"
    )
}

/// `[2^32, 2^31, ..., 1]`: block sizes indexed by IPv4 prefix length.
fn v4_block_sizes() -> String {
    let sizes: Vec<String> = (0..=32u32).map(|len| (1u64 << (32 - len)).to_string()).collect();
    format!("[{}]", sizes.join(", "))
}

/// A single entry `x` (CEL string expression) is a valid address: CIDR with no host bits set,
/// single IP, or a range `a-b` of two IPs of the same family.
pub fn entry_valid(x: &str) -> String {
    let a = format!("{x}.split('-')[0]");
    let b = format!("{x}.split('-')[1]");
    format!(
        "((isCIDR({x}) && cidr({x}).ip() == cidr({x}).masked().ip()) || isIP({x}) || ({x}.split('-').size() == 2 && isIP({a}) && isIP({b}) && ip({a}).family() == ip({b}).family()))"
    )
}

/// A range entry `x` that is IPv4 is not reversed (start <= end). IPv6 ranges: not checkable in CEL.
pub fn entry_not_reversed(x: &str) -> String {
    let a = format!("{x}.split('-')[0]");
    let b = format!("{x}.split('-')[1]");
    format!(
        "(!{x}.contains('-') || {x}.contains(':') || !{valid} || {lo} <= {hi})",
        valid = entry_valid(x),
        lo = v4int(&a),
        hi = v4int(&b)
    )
}

/// First address of IPv4 entry `x` as an integer.
fn lo4(x: &str) -> String {
    format!(
        "({x}.contains('/') ? {cidr} : ({x}.contains('-') ? {range} : {single}))",
        cidr = v4int(&format!("{x}.split('/')[0]")),
        range = v4int(&format!("{x}.split('-')[0]")),
        single = v4int(x)
    )
}

/// Last address of IPv4 entry `x` as an integer.
fn hi4(x: &str) -> String {
    format!(
        "({x}.contains('/') ? {cidr} + {sizes}[cidr({x}).prefixLength()] - 1 : ({x}.contains('-') ? {range} : {single}))",
        cidr = v4int(&format!("{x}.split('/')[0]")),
        sizes = v4_block_sizes(),
        range = v4int(&format!("{x}.split('-')[1]")),
        single = v4int(x)
    )
}

/// Entries `x` and `y` (both valid) overlap. Exact for IPv4; for IPv6 it covers CIDR/CIDR,
/// CIDR/IP, IP/IP and a range with an end inside a CIDR (not a CIDR strictly inside a range,
/// nor range/range or range/IP: those are left to the controller, which reports them in status).
fn overlap(x: &str, y: &str) -> String {
    let v4 = format!("({lx} <= {hy} && {ly} <= {hx})", lx = lo4(x), hy = hi4(y), ly = lo4(y), hx = hi4(x));
    let range_in_cidr = |r: &str, c: &str| {
        format!(
            "(isCIDR({c}) && {r}.contains('-') && (cidr({c}).containsIP({r}.split('-')[0]) || cidr({c}).containsIP({r}.split('-')[1])))"
        )
    };
    let v6 = format!(
        "((isCIDR({x}) && isCIDR({y}) && (cidr({x}).containsCIDR({y}) || cidr({y}).containsCIDR({x}))) || (isCIDR({x}) && isIP({y}) && cidr({x}).containsIP({y})) || (isIP({x}) && isCIDR({y}) && cidr({y}).containsIP({x})) || (isIP({x}) && isIP({y}) && ip({x}) == ip({y})) || {rc} || {cr})",
        rc = range_in_cidr(x, y),
        cr = range_in_cidr(y, x)
    );
    format!("((!{x}.contains(':') && !{y}.contains(':')) ? {v4} : ({x}.contains(':') && {y}.contains(':') && {v6}))")
}

/// `x` and `y` do not overlap, or one of them is invalid (reported by the per-entry rule).
fn no_overlap(x: &str, y: &str) -> String {
    format!("(!({vx} && {vy}) || !{ov})", vx = entry_valid(x), vy = entry_valid(y), ov = overlap(x, y))
}

/// On `spec.address`: the entry is valid.
pub fn address_rule() -> String {
    entry_valid("self")
}

/// On `spec.address`: an IPv4 range is not reversed.
pub fn address_not_reversed_rule() -> String {
    entry_not_reversed("self")
}

/// On `spec.addresses`: every entry is valid.
pub fn addresses_rule() -> String {
    format!("self.all(x, {})", entry_valid("x"))
}

/// On `spec.addresses`: no IPv4 range is reversed.
pub fn addresses_not_reversed_rule() -> String {
    format!("self.all(x, {})", entry_not_reversed("x"))
}

/// On `spec.addresses`: no two distinct entries overlap (identical ones: `x-kubernetes-list-type: set`).
pub fn addresses_no_overlap_rule() -> String {
    format!("self.all(x, self.all(y, x == y || {}))", no_overlap("x", "y"))
}

/// On EipSpec: `spec.address` overlaps no entry of `spec.addresses`.
pub fn address_vs_addresses_rule() -> String {
    format!("!has(self.address) || !has(self.addresses) || self.addresses.all(y, {})", no_overlap("self.address", "y"))
}

/// On EipSpec: at least one address is given.
pub const EIP_HAS_ADDRESS_RULE: &str = "has(self.address) || (has(self.addresses) && size(self.addresses) > 0)";
/// Message of [`EIP_HAS_ADDRESS_RULE`].
pub const EIP_HAS_ADDRESS_MESSAGE: &str = "set spec.address or spec.addresses";
/// Message of [`address_vs_addresses_rule`] (reported at `spec.address`).
pub const ADDRESS_VS_ADDRESSES_MESSAGE: &str = "spec.address overlaps an entry of spec.addresses";
/// Message of [`address_rule`].
pub const ADDRESS_MESSAGE: &str =
    "address must be a CIDR with no host bits set, an IP, or a range first-last of one family";
/// Message of [`address_not_reversed_rule`].
pub const ADDRESS_REVERSED_MESSAGE: &str = "address range is reversed (first > last)";
/// Message of [`addresses_rule`].
pub const ADDRESSES_MESSAGE: &str =
    "each entry must be a CIDR with no host bits set, an IP, or a range first-last of one family";
/// Message of [`addresses_not_reversed_rule`].
pub const ADDRESSES_REVERSED_MESSAGE: &str = "an address range is reversed (first > last)";
/// Message of [`addresses_no_overlap_rule`].
pub const ADDRESSES_OVERLAP_MESSAGE: &str = "entries of spec.addresses overlap";
