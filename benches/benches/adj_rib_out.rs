//! Adj-RIB-Out diff: a table of T /32s already sent to a peer, then C
//! prefixes change (re-attributed, withdrawn, or added); time to work
//! out what the peer must be sent. `incremental` is what a session does
//! (the table's change log names the changed prefixes); `full table` is
//! the comparison of every route it falls back to when the log does not
//! reach back far enough (and what every change cost before the log).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipnetwork::IpNetwork;
use mooring_bgp::speaker::{AdjRibOut, ExportCtx, Paths, RouteAttrs, RouteTable};
use mooring_bgp::wire::Family;

const CHANGES: u32 = 10_000;

fn prefix(i: u32) -> IpNetwork {
    IpNetwork::new(Ipv4Addr::from(0x0A00_0000 + i).into(), 32).unwrap()
}

#[derive(Clone, Copy)]
enum Change {
    /// 10k prefixes get other attributes (a MED change), then back.
    Reattribute,
    /// 10k prefixes are withdrawn, then added back.
    WithdrawAdd,
}

impl Change {
    fn name(self) -> &'static str {
        match self {
            Change::Reattribute => "reattribute",
            Change::WithdrawAdd => "withdraw/add",
        }
    }
}

fn bench(c: &mut Criterion) {
    let families = [Family::IPV4_UNICAST];
    let x = ExportCtx::new(64513, false, "198.18.0.11:40000".parse().unwrap());
    let sets: [Paths; 2] =
        [Arc::from([RouteAttrs::default()]), Arc::from([RouteAttrs { med: Some(10), ..RouteAttrs::default() }])];
    let mut g = c.benchmark_group("adj_rib_out_diff");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(CHANGES as u64));
    for table_size in [100_000u32, 1_000_000] {
        let mut table = RouteTable::new();
        for i in 0..table_size {
            table.insert(prefix(i), sets[0].clone());
        }
        for change in [Change::Reattribute, Change::WithdrawAdd] {
            for full in [false, true] {
                let mut out = AdjRibOut::new();
                out.diff(&table, &families, &x);
                let mut round = 0u32;
                // Odd rounds change 10k prefixes (a different 10k each
                // time, spread over the table), even rounds undo that.
                let apply = |table: &mut RouteTable, round: u32| {
                    let offset = round.div_ceil(2);
                    let changed = (0..CHANGES).map(|k| (k * (table_size / CHANGES) + offset) % table_size);
                    let undo = round.is_multiple_of(2);
                    match change {
                        Change::Reattribute => {
                            let a = &sets[usize::from(!undo)];
                            changed.for_each(|i| table.insert(prefix(i), a.clone()));
                        }
                        Change::WithdrawAdd if undo => changed.for_each(|i| table.insert(prefix(i), sets[0].clone())),
                        Change::WithdrawAdd => changed.for_each(|i| table.remove(&prefix(i))),
                    }
                };
                let id = format!("{} {}", change.name(), if full { "full table" } else { "incremental" });
                g.bench_function(BenchmarkId::new(id, table_size), |b| {
                    b.iter_custom(|iters| {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            round += 1;
                            apply(&mut table, round);
                            if full {
                                out.compare_all_next();
                            }
                            let t = Instant::now();
                            let d = black_box(out.diff(&table, &families, &x));
                            spent += t.elapsed();
                            let n = d.withdrawn.len() + d.announced.iter().map(|(_, n)| n.len()).sum::<usize>();
                            assert_eq!(n, CHANGES as usize, "every change is in the diff");
                        }
                        // Leave the table as it was for the next benchmark.
                        if round % 2 == 1 {
                            round += 1;
                            apply(&mut table, round);
                            out.diff(&table, &families, &x);
                        }
                        spent
                    })
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
