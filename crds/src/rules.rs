//! The CEL rules (`x-kubernetes-validations`) the CRDs carry, built as strings.
//!
//! They use only what a Kubernetes >= 1.30 apiserver offers to CRD validation rules:
//! standard CEL, the `ext.Strings` library (`split`, `contains`) and the Kubernetes IP and
//! CIDR libraries (`isIP`, `ip`, `isCIDR`, `cidr`, `containsIP`, `containsCIDR`, `family`,
//! `masked`, `prefixLength`). Kube's client-side evaluator (`kube-cel`) knows a few more
//! functions (`isIPv4`, ...) that a real apiserver does not; they are not used here.
//!
//! The long address rules are generated rather than written by hand: CEL has no functions or
//! let-bindings usable on every supported Kubernetes version, so "IPv4 address as a number"
//! is spelled out wherever it is needed.

/// The Go-style duration strings Mooring accepts: hours, minutes, seconds, in that order,
/// each at most once (`90s`, `3m`, `1h30m`, `0s`). Used as the schema `pattern`.
pub const DURATION_PATTERN: &str = "^([0-9]{1,5}h)?([0-9]{1,5}m)?([0-9]{1,5}s)?$";

/// Schema pattern for a standard community: `ASN:VALUE` or a well-known name.
pub const COMMUNITY_PATTERN: &str =
    "^([0-9]{1,5}:[0-9]{1,5}|no-export|no-advertise|no-peer|graceful-shutdown|blackhole)$";

/// Schema pattern for a large community `A:B:C`.
pub const LARGE_COMMUNITY_PATTERN: &str = "^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$";

/// Longest accepted Eip address entry (an IPv6 range is 2 x 39 + 1 characters).
pub const MAX_ENTRY_LEN: u32 = 80;
/// Most entries in `spec.addresses`: bounds the pairwise overlap rule's CEL cost.
pub const MAX_ADDRESSES: u32 = 16;

/// Every community in the list has both halves at most 65535.
pub fn communities_rule() -> String {
    "self.all(c, !c.contains(':') || c.split(':').all(p, int(p) <= 65535))".into()
}

/// Every large community has all three parts at most 4294967295.
pub fn large_communities_rule() -> String {
    "self.all(c, c.split(':').all(p, int(p) <= 4294967295))".into()
}

/// `duration(<expr>)` where `expr` is a CEL string expression.
fn dur(expr: &str) -> String {
    format!("duration({expr})")
}

/// spec.holdTime: 0s or 3s..=65535s.
pub fn hold_time_rule() -> String {
    format!("{d} == duration('0s') || ({d} >= duration('3s') && {d} <= duration('65535s'))", d = dur("self"))
}

/// spec.keepaliveTime: at most 21845s (65535 / 3).
pub fn keepalive_time_rule() -> String {
    format!("{d} <= duration('21845s')", d = dur("self"))
}

/// On BgpPeerSpec: keepaliveTime below holdTime (holdTime defaults to 90s); keepalive 0 only with hold 0.
pub fn keepalive_below_hold_rule() -> String {
    let hold = dur("has(self.holdTime) ? self.holdTime : '90s'");
    let ka = dur("self.keepaliveTime");
    format!(
        "!has(self.keepaliveTime) || ({hold} == duration('0s') ? {ka} == duration('0s') : ({ka} > duration('0s') && {ka} < {hold}))"
    )
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

/// On BgpPeerSpec: not both a plain password and a Secret reference.
pub const PASSWORD_EXCLUSIVE_RULE: &str = "!(has(self.password) && has(self.passwordSecretRef))";

/// On a field holding an IP address.
pub const IS_IP_RULE: &str = "isIP(self)";

/// On BgpConf `spec.routerId`.
pub const ROUTER_ID_RULE: &str = "isIP(self) && ip(self).family() == 4 && !ip(self).isUnspecified()";

/// On the BgpConf object: it is named `default`.
pub const BGPCONF_NAME_RULE: &str = "self.metadata.name == 'default'";
