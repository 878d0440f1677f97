//! Wire codec throughput: packing and parsing many prefixes.
//!
//! `cargo bench -p mooring-benches --bench codec`
//!
//! Criterion reports prefixes/s (`Throughput::Elements`); each benchmark
//! also prints its message count and the messages/s of the same runs.

use std::cell::Cell;
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use mooring_bgp::wire::*;

const PREFIXES: u32 = 100_000;
const MIX_UPDATES: usize = 10_000;

fn ctx() -> Negotiated {
    Negotiated::four_octet()
}

fn shared_attrs(next_hop: bool) -> Vec<PathAttr> {
    let mut v = vec![
        PathAttr::new(AttrValue::Origin(Origin::Igp)),
        PathAttr::new(AttrValue::AsPath(AsPath::sequence([4_200_000_001]))),
    ];
    if next_hop {
        v.push(PathAttr::new(AttrValue::NextHop(Ipv4Addr::new(198, 18, 0, 11))));
    }
    v.push(PathAttr::new(AttrValue::Communities(vec![Community::new(64512, 100), Community::NO_EXPORT])));
    v
}

fn v4_hosts(n: u32) -> Vec<Nlri> {
    (0..n).map(|i| Nlri::new(IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(0x0A00_0000 + i), 32).unwrap()))).collect()
}

fn v6_hosts(n: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| {
            let a = Ipv6Addr::from(0x2001_0db8_ffff_0000_0000_0000_0000_0000u128 + i as u128);
            Nlri::new(IpNetwork::V6(Ipv6Network::new(a, 128).unwrap()))
        })
        .collect()
}

/// A small deterministic generator (xorshift64*), so every run sees the
/// same "realistic" table.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// 10k UPDATEs as a route server might send them: each with its own AS
/// path of 3-8 ASNs, one to four communities, a MED, and 1-5 IPv4
/// prefixes of /16 to /24.
fn realistic_mix() -> Vec<Message> {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    (0..MIX_UPDATES)
        .map(|i| {
            let hops = r.range(3, 8) as usize;
            let mut asns: Vec<u32> = (0..hops)
                .map(|_| if r.range(0, 3) == 0 { r.range(4_200_000_000, 4_294_967_294) } else { r.range(1, 64_495) } as u32)
                .collect();
            asns[0] = 64_512 + (i % 1000) as u32; // the neighbour
            let communities = (0..r.range(1, 4)).map(|_| Community::new(r.range(1, 65_534) as u16, r.next() as u16));
            let mut communities: Vec<Community> = communities.collect();
            if i % 7 == 0 {
                communities.push(Community::NO_EXPORT);
            }
            let nlri = (0..r.range(1, 5))
                .map(|_| {
                    let len = r.range(16, 24) as u8;
                    let addr = Ipv4Addr::from(r.next() as u32);
                    Nlri::new(mooring_bgp::wire::masked(IpNetwork::V4(Ipv4Network::new(addr, len).unwrap())))
                })
                .collect();
            Message::Update(Update {
                attrs: vec![
                    PathAttr::new(AttrValue::Origin(Origin::Igp)),
                    PathAttr::new(AttrValue::AsPath(AsPath::sequence(asns))),
                    PathAttr::new(AttrValue::NextHop(Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250) as u8 + 1))),
                    PathAttr::new(AttrValue::Med(r.range(0, 1000) as u32)),
                    PathAttr::new(AttrValue::Communities(communities)),
                ]
                .into(),
                nlri,
                ..Update::default()
            })
        })
        .collect()
}

/// Frame and decode every message of `buf`; returns (messages, prefixes).
fn decode_stream(buf: &[u8], ctx: &Negotiated) -> (usize, usize) {
    decode_stream_with(buf, ctx, None)
}

/// [`decode_stream`], with an attribute memo (as a session decodes).
fn decode_stream_with(buf: &[u8], ctx: &Negotiated, mut memo: Option<&mut AttrMemo>) -> (usize, usize) {
    let (mut msgs, mut prefixes) = (0, 0);
    let mut rest = buf;
    while let Some(len) = frame_len(rest, ctx.max_message_len()).unwrap() {
        let m = Message::decode_with(&rest[..len], ctx, memo.as_deref_mut()).unwrap();
        if let Message::Update(u) = &m {
            prefixes += u.announced().count() + u.withdrawals().count();
        }
        black_box(m);
        msgs += 1;
        rest = &rest[len..];
    }
    assert!(rest.is_empty());
    (msgs, prefixes)
}

/// Run one benchmark with `f` as the routine, and print the messages/s of
/// the runs criterion timed (warm-up included).
fn bench(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    group: &str,
    name: &str,
    messages: usize,
    mut f: impl FnMut(),
) {
    let (runs, spent) = (Cell::new(0u64), Cell::new(Duration::ZERO));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            let d = start.elapsed();
            runs.set(runs.get() + iters);
            spent.set(spent.get() + d);
            d
        })
    });
    if runs.get() == 0 {
        return; // filtered out
    }
    let per_run = spent.get().as_secs_f64() / runs.get() as f64;
    eprintln!(
        "{group}/{name}: {messages} messages per run, {:.3} ms per run, {:.0} messages/s",
        per_run * 1e3,
        messages as f64 / per_run
    );
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    prefixes: usize,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(prefixes as u64));
    g
}

/// `PREFIXES` host routes sharing one attribute set: pack, then parse.
fn packed(c: &mut Criterion, name: &str, attrs: &[PathAttr], nlri: &[Nlri], next_hop: Option<NextHop>) {
    let ctx = ctx();
    let mut buf = BytesMut::new();
    let messages = pack_announcements(&ctx, attrs, nlri, next_hop, &mut buf).unwrap();
    let size = buf.len();
    assert_eq!(decode_stream(&buf, &ctx), (messages, nlri.len()));
    eprintln!("{name}: {} prefixes in {messages} UPDATEs of {size} octets", nlri.len());

    let mut g = group(c, name, nlri.len());
    bench(&mut g, name, "encode", messages, || {
        let mut out = BytesMut::with_capacity(size);
        black_box(pack_announcements(&ctx, attrs, nlri, next_hop, &mut out).unwrap());
        black_box(out);
    });
    bench(&mut g, name, "decode", messages, || {
        black_box(decode_stream(black_box(&buf), &ctx));
    });
    g.finish();
}

fn ipv4_host_routes(c: &mut Criterion) {
    packed(c, "ipv4_100k_host_routes", &shared_attrs(true), &v4_hosts(PREFIXES), None);
}

fn ipv6_host_routes(c: &mut Criterion) {
    let nh = NextHop::V6 { global: "2001:db8::1".parse().unwrap(), link_local: None };
    packed(c, "ipv6_100k_host_routes_mp_reach", &shared_attrs(false), &v6_hosts(PREFIXES), Some(nh));
}

fn mix(c: &mut Criterion) {
    let ctx = ctx();
    let msgs = realistic_mix();
    let mut buf = BytesMut::new();
    for m in &msgs {
        m.encode(&ctx, &mut buf).unwrap();
    }
    let size = buf.len();
    let (n, prefixes) = decode_stream(&buf, &ctx);
    assert_eq!(n, msgs.len());
    let name = "realistic_mix_10k_updates";
    eprintln!("{name}: {prefixes} prefixes in {n} UPDATEs of {size} octets");

    let mut g = group(c, name, prefixes);
    bench(&mut g, name, "encode", n, || {
        let mut out = BytesMut::with_capacity(size);
        for m in &msgs {
            m.encode(&ctx, &mut out).unwrap();
        }
        black_box(out);
    });
    bench(&mut g, name, "decode", n, || {
        black_box(decode_stream(black_box(&buf), &ctx));
    });
    g.finish();
}

/// A full table as BIRD sends one: 100k host routes over 1000 attribute
/// sets (AS path of three, two communities), prefix i in set i mod 1000, so
/// most UPDATEs carry one or two prefixes. Decoded plainly and through an
/// attribute memo, as a session decodes.
fn full_table(c: &mut Criterion) {
    const SETS: u32 = 1000;
    let ctx = ctx();
    let mut buf = BytesMut::new();
    // Set g holds prefixes g, g + 1000, ...; each set's prefixes go out in
    // chunks of 2, 1, 1, 1, ... and the sets take turns, chunk by chunk.
    let per_set = PREFIXES / SETS;
    let chunks: Vec<std::ops::Range<u32>> = {
        let (mut v, mut at) = (vec![], 0);
        while at < per_set {
            let take = if v.len() % 4 == 0 { 2 } else { 1 };
            v.push(at..(at + take).min(per_set));
            at += take;
        }
        v
    };
    let mut messages = 0;
    for chunk in &chunks {
        for set in 0..SETS {
            let nlri: Vec<Nlri> = chunk
                .clone()
                .map(|j| set + j * SETS)
                .map(|p| Nlri::new(IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(0x0A00_0000 + p), 32).unwrap())))
                .collect();
            let attrs = vec![
                PathAttr::new(AttrValue::Origin(Origin::Igp)),
                PathAttr::new(AttrValue::AsPath(AsPath::sequence([64513, 65000 + set, 100 + set % 50]))),
                PathAttr::new(AttrValue::NextHop(Ipv4Addr::new(198, 18, 200, 2))),
                PathAttr::new(AttrValue::Communities(vec![
                    Community::new(64513, set as u16),
                    Community::new(64513, 1000 + (set % 10) as u16),
                ])),
            ];
            let u = Update { attrs: attrs.into(), nlri, ..Update::default() };
            Message::Update(u).encode(&ctx, &mut buf).unwrap();
            messages += 1;
        }
    }
    let size = buf.len();
    let (n, prefixes) = decode_stream(&buf, &ctx);
    assert_eq!((n, prefixes), (messages, PREFIXES as usize));
    let mut memo = AttrMemo::new();
    assert_eq!(decode_stream_with(&buf, &ctx, Some(&mut memo)), (n, prefixes));
    assert_eq!(memo.len(), SETS as usize, "one memo entry per attribute set");
    let name = "full_table_100k_routes_1000_sets";
    eprintln!("{name}: {prefixes} prefixes in {n} UPDATEs of {size} octets");

    let mut g = group(c, name, prefixes);
    bench(&mut g, name, "decode", n, || {
        black_box(decode_stream(black_box(&buf), &ctx));
    });
    bench(&mut g, name, "decode_with_memo", n, || {
        let mut memo = AttrMemo::new();
        black_box(decode_stream_with(black_box(&buf), &ctx, Some(&mut memo)));
    });
    g.finish();
}

criterion_group!(benches, ipv4_host_routes, ipv6_host_routes, mix, full_table);
criterion_main!(benches);
