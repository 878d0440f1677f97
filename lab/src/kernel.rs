//! What the kernel of a lab namespace says: a prefix's next hops and
//! their weights in the main routing table (`ip route show`).

use crate::cmd::run;

/// The next hops of `prefix` (IPv4 or IPv6) in namespace `ns`'s main table (`ip -n NS
/// -4|-6 route show PREFIX`): one entry per `via` (a multipath route gives one
/// per `nexthop via`), sorted. Empty when there is no route; panics when
/// `ip` fails.
pub fn fib_nexthops(ns: &str, prefix: &str) -> Vec<String> {
    fib_weights(ns, prefix).into_iter().map(|(nh, _)| nh).collect()
}

/// (next hop, weight) of each `via` of `prefix` in `ns`'s main table,
/// sorted by next hop; weight 1 where `ip` prints none. Panics when `ip`
/// fails: an unreadable FIB is not an empty one.
pub fn fib_weights(ns: &str, prefix: &str) -> Vec<(String, u32)> {
    // `ip route show` reads the IPv4 table unless told otherwise.
    let family = if prefix.contains(':') { "-6" } else { "-4" };
    let (ok, out, err) = run(&["ip", "-n", ns, family, "route", "show", prefix]);
    assert!(ok, "ip -n {ns} {family} route show {prefix} failed: {err}");
    parse_vias(&out)
}

fn parse_vias(out: &str) -> Vec<(String, u32)> {
    let toks: Vec<&str> = out.split_whitespace().collect();
    let mut v: Vec<(String, u32)> = toks
        .iter()
        .enumerate()
        .filter(|(i, t)| **t == "via" && *i + 1 < toks.len())
        .map(|(i, _)| {
            // `via inet6 ADDR` for an IPv6 next hop of an IPv4 route.
            let nh = if toks[i + 1] == "inet6" { toks.get(i + 2).copied().unwrap_or("") } else { toks[i + 1] };
            let rest = &toks[i + 1..];
            let next_via = rest.iter().position(|t| *t == "via").unwrap_or(rest.len());
            let w = rest[..next_via].iter().position(|x| *x == "weight").and_then(|p| rest.get(p + 1)?.parse().ok());
            (nh.to_string(), w.unwrap_or(1))
        })
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::parse_vias;

    #[test]
    fn next_hops_and_weights_of_a_multipath_route() {
        let out = "203.0.113.120 proto bgp metric 20 \n\tnexthop via 198.18.11.11 dev v11 weight 25 \n\
                   \tnexthop via 198.18.11.12 dev v12 weight 75 \n";
        assert_eq!(parse_vias(out), vec![("198.18.11.11".into(), 25), ("198.18.11.12".into(), 75)]);
        let one = "203.0.113.40 nhid 20 via 198.18.4.11 dev v11 proto bgp metric 20 \n";
        assert_eq!(parse_vias(one), vec![("198.18.4.11".into(), 1)]);
        assert_eq!(parse_vias(""), vec![]);
    }
}
