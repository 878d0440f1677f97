//! The model at scale: VIP allocation for 10k LoadBalancer Services over
//! a pool, and one node's announcements in a 1k-node cluster (Local
//! Services with endpoints spread over the nodes).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use k8s_openapi::api::core::v1::{Node, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use mooring_agent::model::desired::{allocate, announcements, shared, Advertisement, PoolConfig, Snapshot};
use mooring_agent::model::ipam::{IpRange, Pool};

const SERVICES: usize = 10_000;
const NODES: usize = 1_000;

fn snapshot() -> Snapshot {
    let pool = PoolConfig {
        // 10.0.0.0/16 stands in for a large VIP pool.
        pool: Pool::new(
            "pool",
            vec![IpRange { start: "10.0.0.1".parse().unwrap(), end: "10.0.255.254".parse().unwrap() }],
        ),
        namespaces: vec![],
        namespace_selector: None,
        labels: Default::default(),
        advertisement: Advertisement::default(),
    };
    let services = (0..SERVICES)
        .map(|i| Service {
            metadata: ObjectMeta {
                name: Some(format!("svc-{i}")),
                namespace: Some(format!("ns-{}", i % 50)),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                external_traffic_policy: Some(if i % 2 == 0 { "Local" } else { "Cluster" }.into()),
                ports: Some(vec![ServicePort { port: 80, ..Default::default() }]),
                ..Default::default()
            }),
            status: None,
        })
        .map(Arc::new)
        .collect();
    // Each Local Service has 3 endpoints on 3 nodes.
    let endpoint_slices = (0..SERVICES)
        .step_by(2)
        .map(|i| EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("svc-{i}-1")),
                namespace: Some(format!("ns-{}", i % 50)),
                labels: Some(BTreeMap::from([("kubernetes.io/service-name".to_string(), format!("svc-{i}"))])),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: (0..3)
                .map(|k| Endpoint {
                    addresses: vec![format!("10.200.{}.{}", k, i % 250)],
                    node_name: Some(format!("node-{}", (i * 7 + k * 13) % NODES)),
                    conditions: Some(EndpointConditions { ready: Some(true), ..Default::default() }),
                    ..Default::default()
                })
                .collect(),
            ports: None,
        })
        .map(Arc::new)
        .collect();
    let nodes = (0..NODES)
        .map(|n| Node {
            metadata: ObjectMeta { name: Some(format!("node-{n}")), ..Default::default() },
            ..Default::default()
        })
        .map(Arc::new)
        .collect();
    Snapshot { pools: vec![pool], services, endpoint_slices, nodes, namespaces: shared([]), ..Snapshot::default() }
}

fn bench(c: &mut Criterion) {
    let snap = snapshot();
    let mut g = c.benchmark_group("model");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SERVICES as u64));
    g.bench_function("allocate 10k services", |b| b.iter(|| black_box(allocate(black_box(&snap)))));
    let desired = allocate(&snap);
    let vips: BTreeMap<_, _> = desired.allocations.iter().map(|(k, a)| (k.clone(), a.addresses.clone())).collect();
    eprintln!(
        "allocated {} VIPs; node-0 announces {}",
        vips.values().map(|v| v.len()).sum::<usize>(),
        announcements(&snap, &vips, "node-0").len()
    );
    g.bench_function("announcements of one node (10k services, 1k nodes)", |b| {
        b.iter(|| black_box(announcements(black_box(&snap), black_box(&vips), "node-0")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
