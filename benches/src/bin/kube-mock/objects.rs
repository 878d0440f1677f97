//! The synthetic cluster: realistically sized Services, EndpointSlices and
//! Nodes (managed fields, annotations, labels, target refs, the kubelet's
//! image list and node info) and Mooring's own objects, as JSON.
//!
//! Layout (deterministic; `i` is the Service index):
//! - Services `svc-i` in namespace `ns-(i % 100)`; odd `i` are
//!   `externalTrafficPolicy: Local`, every 10th is dual-stack. With
//!   `status`, `i` holds 100.64.0.0 + (i + 1) (and 2001:db8:ffff::(i + 1)).
//! - EndpointSlices `svc-i-k` for k < slices per Service, each with the
//!   given number of endpoints. Node `node-0` (the speaker under test)
//!   holds exactly one endpoint, the first of slice 0, of the Local
//!   Services with `i % 40 == 1` ([`designated`]); every other endpoint is
//!   on one of the other nodes.
//! - Nodes `node-0`..: node-0's InternalIP is 127.0.0.1 (the speaker runs
//!   on loopback), the others 198.18.x.y.

use serde_json::{json, Value};

/// The pools (Eips): every status address is in one of them.
pub const POOL_V4: &str = "100.64.0.0/17";
pub const POOL_V6: &str = "2001:db8:ffff::/112";
/// The speaker under test.
pub const NODE0: &str = "node-0";
/// The namespaces Services are spread over.
pub const NAMESPACES: u32 = 100;

#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub services: u32,
    pub slices_per_service: u32,
    pub endpoints_per_slice: u32,
    pub nodes: u32,
    /// Services carry status.loadBalancer.ingress (a running cluster).
    pub status: bool,
    /// The BgpPeer's port (the sink's).
    pub peer_port: u16,
}

/// Whether Service `i` is Local.
pub fn local(i: u32) -> bool {
    i % 2 == 1
}

/// Whether Service `i` has its one node-0 endpoint (first of slice 0).
pub fn designated(i: u32) -> bool {
    i % 40 == 1
}

pub fn dual_stack(i: u32) -> bool {
    i.is_multiple_of(10)
}

pub fn namespace(i: u32) -> String {
    format!("ns-{}", i % NAMESPACES)
}

/// The i-th IPv4 status address (offset 1: the network address is reserved).
pub fn v4(n: u32) -> String {
    std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(100, 64, 0, 0)) + n + 1).to_string()
}

fn v6(n: u32) -> String {
    format!("2001:db8:ffff::{:x}", n + 1)
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % n as u64) as u32
    }
}

fn uid(kind: u32, i: u64) -> String {
    format!("{kind:08x}-0000-4000-8000-{i:012x}")
}

const T0: &str = "2026-01-01T00:00:00Z";

/// `svc-i`, as `kubectl apply` and the controller leave it.
pub fn service(i: u32, status: bool) -> Value {
    let (name, ns) = (format!("svc-{i}"), namespace(i));
    let local = local(i);
    let cluster_ip = format!("10.96.{}.{}", (i >> 8) & 255, i & 255);
    let mut spec = json!({
        "type": "LoadBalancer",
        "selector": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": "bench"},
        "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30000 + (i * 2) % 2700},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP", "nodePort": 30001 + (i * 2) % 2700}
        ],
        "clusterIP": cluster_ip,
        "clusterIPs": [cluster_ip],
        "externalTrafficPolicy": if local { "Local" } else { "Cluster" },
        "sessionAffinity": "None",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "allocateLoadBalancerNodePorts": true,
        "internalTrafficPolicy": "Cluster"
    });
    if local {
        spec["healthCheckNodePort"] = json!(32000 + i % 700);
    }
    if dual_stack(i) {
        spec["ipFamilies"] = json!(["IPv4", "IPv6"]);
        spec["ipFamilyPolicy"] = json!("PreferDualStack");
        spec["clusterIPs"] = json!([cluster_ip, format!("fd00:96::{i:x}")]);
    }
    let applied = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"annotations": {}, "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop", "team": "payments"}, "name": name, "namespace": ns},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": spec["externalTrafficPolicy"], "selector": spec["selector"], "ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443, "targetPort": 8443}]}
    });
    let mut managed = vec![json!({
        "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                           "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:app.kubernetes.io/part-of": {}, "f:team": {}}},
            "f:spec": {"f:allocateLoadBalancerNodePorts": {}, "f:externalTrafficPolicy": {}, "f:internalTrafficPolicy": {},
                       "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}},
                                   "k:{\"port\":443,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}},
                       "f:selector": {}, "f:sessionAffinity": {}, "f:type": {}}
        }
    })];
    let mut svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": uid(1, i as u64),
            "resourceVersion": "1",
            "creationTimestamp": T0,
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop", "team": "payments"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": applied.to_string() + "\n",
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090"
            },
            "managedFields": managed
        },
        "spec": spec,
        "status": {"loadBalancer": {}}
    });
    if status {
        let mut ingress = vec![json!({"ip": v4(i), "ipMode": "VIP"})];
        if dual_stack(i) {
            ingress.push(json!({"ip": v6(i), "ipMode": "VIP"}));
        }
        svc["status"] = json!({"loadBalancer": {"ingress": ingress}});
        managed.push(json!({
            "manager": "mooring-controller", "operation": "Update", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {"f:loadBalancer": {"f:ingress": {}}}}, "subresource": "status"
        }));
        svc["metadata"]["managedFields"] = json!(managed);
    }
    svc
}

/// EndpointSlice `svc-i-k` as the EndpointSlice controller writes it.
pub fn endpoint_slice(i: u32, k: u32, z: &Sizes, rng_seed: u64) -> Value {
    let (svc, ns) = (format!("svc-{i}"), namespace(i));
    let mut rng = Rng(rng_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let others = z.nodes.saturating_sub(1).max(1);
    let endpoints: Vec<Value> = (0..z.endpoints_per_slice)
        .map(|e| {
            let node = if k == 0 && e == 0 && designated(i) { 0 } else { 1 + rng.below(others) };
            let p = (i * z.slices_per_service + k) * z.endpoints_per_slice + e;
            let pod = format!("{svc}-7d4b9c5f6-{:05x}", p & 0xfffff);
            json!({
                "addresses": [format!("10.{}.{}.{}", 128 + ((p >> 16) & 127), (p >> 8) & 255, p & 255)],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "nodeName": format!("node-{node}"),
                "targetRef": {"kind": "Pod", "namespace": ns, "name": pod, "uid": uid(3, p as u64)},
                "zone": format!("zone-{}", node % 3)
            })
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{svc}-{k}"),
            "generateName": format!("{svc}-"),
            "namespace": ns,
            "uid": uid(2, (i as u64) << 8 | k as u64),
            "resourceVersion": "1",
            "generation": 1,
            "creationTimestamp": T0,
            "labels": {
                "app.kubernetes.io/name": svc,
                "app.kubernetes.io/part-of": "shop",
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "kubernetes.io/service-name": svc
            },
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": T0},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc, "uid": uid(1, i as u64), "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [{
                "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "discovery.k8s.io/v1", "time": T0, "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:addressType": {}, "f:endpoints": {},
                    "f:metadata": {
                        "f:annotations": {".": {}, "f:endpoints.kubernetes.io/last-change-trigger-time": {}},
                        "f:generateName": {},
                        "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:app.kubernetes.io/part-of": {}, "f:endpointslice.kubernetes.io/managed-by": {}, "f:kubernetes.io/service-name": {}},
                        "f:ownerReferences": {".": {}, format!("k:{{\"uid\":\"{}\"}}", uid(1, i as u64)): {}}
                    },
                    "f:ports": {}
                }
            }]
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "https", "port": 8443, "protocol": "TCP"}]
    })
}

/// Node `node-n` as the kubelet and kubeadm leave it (about 14 KB of JSON).
pub fn node(n: u32) -> Value {
    let name = format!("node-{n}");
    let ip = if n == 0 { "127.0.0.1".to_string() } else { format!("198.18.{}.{}", 1 + (n >> 8) % 250, n & 255) };
    let images: Vec<Value> = (0..40)
        .map(|j| {
            let repo = format!("registry.example.com/team-{}/service-{j}", j % 7);
            json!({
                "names": [format!("{repo}@sha256:{:064x}", (j as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834)),
                          format!("{repo}:v1.{j}.{}", n % 5)],
                "sizeBytes": 12_000_000 + j * 1_234_567
            })
        })
        .collect();
    let condition = |t: &str, s: &str, reason: &str, msg: &str| json!({"type": t, "status": s, "lastHeartbeatTime": T0, "lastTransitionTime": T0, "reason": reason, "message": msg});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": uid(4, n as u64),
            "resourceVersion": "1",
            "creationTimestamp": T0,
            "labels": {
                "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "node-role.kubernetes.io/worker": "", "node.kubernetes.io/instance-type": "metal-64c-256g",
                "topology.kubernetes.io/region": "eu-1", "topology.kubernetes.io/zone": format!("zone-{}", n % 3),
                "rack": format!("r{}", n / 40)
            },
            "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "csi.volume.kubernetes.io/nodeid": format!("{{\"csi.example.com\":\"{name}\"}}"),
                "projectcalico.org/IPv4Address": format!("{ip}/24"),
                "projectcalico.org/IPv4VXLANTunnelAddr": format!("10.244.{}.0", n % 250)
            },
            "managedFields": [
                {"manager": "kubeadm", "operation": "Update", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:annotations": {"f:kubeadm.alpha.kubernetes.io/cri-socket": {}}, "f:labels": {"f:node-role.kubernetes.io/worker": {}}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:annotations": {"f:node.alpha.kubernetes.io/ttl": {}}}, "f:spec": {"f:podCIDR": {}, "f:podCIDRs": {".": {}, "v:\"10.244.0.0/24\"": {}}}}},
                {"manager": "calico-node", "operation": "Update", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:annotations": {"f:projectcalico.org/IPv4Address": {}, "f:projectcalico.org/IPv4VXLANTunnelAddr": {}}},
                              "f:status": {"f:conditions": {"k:{\"type\":\"NetworkUnavailable\"}": {".": {}, "f:lastHeartbeatTime": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}}}}},
                 "subresource": "status"},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:csi.volume.kubernetes.io/nodeid": {}, "f:volumes.kubernetes.io/controller-managed-attach-detach": {}},
                                             "f:labels": {".": {}, "f:beta.kubernetes.io/arch": {}, "f:beta.kubernetes.io/os": {}, "f:kubernetes.io/arch": {}, "f:kubernetes.io/hostname": {}, "f:kubernetes.io/os": {}}},
                              "f:spec": {"f:providerID": {}}}},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:status": {
                     "f:allocatable": {"f:cpu": {}, "f:ephemeral-storage": {}, "f:memory": {}, "f:pods": {}},
                     "f:capacity": {"f:cpu": {}, "f:ephemeral-storage": {}, "f:memory": {}, "f:pods": {}},
                     "f:conditions": {
                         "k:{\"type\":\"DiskPressure\"}": {"f:lastHeartbeatTime": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}},
                         "k:{\"type\":\"MemoryPressure\"}": {"f:lastHeartbeatTime": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}},
                         "k:{\"type\":\"PIDPressure\"}": {"f:lastHeartbeatTime": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}},
                         "k:{\"type\":\"Ready\"}": {"f:lastHeartbeatTime": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}}
                     },
                     "f:daemonEndpoints": {"f:kubeletEndpoint": {"f:Port": {}}},
                     "f:images": {}, "f:nodeInfo": {"f:architecture": {}, "f:bootID": {}, "f:containerRuntimeVersion": {}, "f:kernelVersion": {}, "f:kubeProxyVersion": {}, "f:kubeletVersion": {}, "f:machineID": {}, "f:operatingSystem": {}, "f:osImage": {}, "f:systemUUID": {}}
                 }},
                 "subresource": "status"}
            ]
        },
        "spec": {"podCIDR": format!("10.244.{}.0/24", n % 250), "podCIDRs": [format!("10.244.{}.0/24", n % 250)], "providerID": format!("metal://{name}")},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "allocatable": {"cpu": "63500m", "ephemeral-storage": "846624789112", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "262041604Ki", "pods": "250"},
            "capacity": {"cpu": "64", "ephemeral-storage": "918628732Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "263942148Ki", "pods": "250"},
            "conditions": [
                condition("NetworkUnavailable", "False", "CalicoIsUp", "Calico is running on this node"),
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status. AppArmor enabled")
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": images,
            "nodeInfo": {
                "architecture": "amd64", "bootID": uid(5, n as u64), "containerRuntimeVersion": "containerd://1.7.22",
                "kernelVersion": "6.8.0-45-generic", "kubeProxyVersion": "v1.33.1", "kubeletVersion": "v1.33.1",
                "machineID": format!("{:032x}", n as u128 * 7919), "operatingSystem": "linux", "osImage": "Ubuntu 24.04.1 LTS",
                "systemUUID": uid(6, n as u64)
            }
        }
    })
}

/// Mooring's objects: one BgpConf, one BgpPeer (the sink on loopback),
/// the two pools.
pub fn mooring(z: &Sizes) -> Vec<(&'static str, Value)> {
    vec![
        (
            "bgpconfs",
            json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpConf", "metadata": {"name": "default", "uid": uid(7, 1), "generation": 1},
                   "spec": {"as": 64513, "routerId": "198.18.0.10"}}),
        ),
        (
            "bgppeers",
            json!({"apiVersion": "mooring.io/v1alpha1", "kind": "BgpPeer", "metadata": {"name": "edge", "uid": uid(7, 2), "generation": 1},
                   "spec": {"peerAddress": "127.0.0.1", "peerAs": 64512, "port": z.peer_port, "holdTime": "90s", "families": ["ipv4-unicast"]}}),
        ),
        (
            "eips",
            json!({"apiVersion": "mooring.io/v1alpha1", "kind": "Eip", "metadata": {"name": "pool-v4", "uid": uid(7, 3), "generation": 1},
                   "spec": {"address": POOL_V4}}),
        ),
        (
            "eips",
            json!({"apiVersion": "mooring.io/v1alpha1", "kind": "Eip", "metadata": {"name": "pool-v6", "uid": uid(7, 4), "generation": 1},
                   "spec": {"address": POOL_V6}}),
        ),
    ]
}

pub fn namespace_object(name: &str, n: u64) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "uid": uid(8, n), "labels": {"kubernetes.io/metadata.name": name}},
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

/// The seed of slice (i, k)'s endpoint placement.
pub fn seed(i: u32, k: u32) -> u64 {
    ((i as u64) << 20) ^ (k as u64) ^ 0x5DEE_CE66
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node0_holds_exactly_the_designated_endpoints() {
        let z = Sizes {
            services: 200,
            slices_per_service: 3,
            endpoints_per_slice: 5,
            nodes: 50,
            status: true,
            peer_port: 1,
        };
        for i in 0..z.services {
            let on0: usize = (0..3)
                .map(|k| {
                    let s = endpoint_slice(i, k, &z, seed(i, k));
                    s["endpoints"].as_array().unwrap().iter().filter(|e| e["nodeName"] == NODE0).count()
                })
                .sum();
            assert_eq!(on0, usize::from(designated(i)), "svc-{i}");
        }
        assert!(designated(1) && local(1));
        let n = node(3).to_string();
        assert!(n.len() > 10_000, "a real-sized Node: {} bytes", n.len());
    }
}
