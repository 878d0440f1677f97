//! Background objects for the change-latency benchmark at scale: N
//! LoadBalancer Services with 3 EndpointSlices each and M Nodes, written
//! as `kubectl get -o yaml` would print them (managedFields, labels,
//! annotations, ownerReferences, targetRefs, a Node's status with its
//! conditions, capacity and images), several hundred objects per file.
//!
//! Half the Services are `externalTrafficPolicy: Local`; each slice holds
//! two endpoints on nodes spread over the M nodes (node 0 is the agent's
//! own, `n1`). The Services take their addresses from their own pool
//! (annotation `mooring.io/eip: bg`), so the benchmarked Service keeps the
//! first address of its pool whatever the background does.

use std::fmt::Write as _;
use std::path::Path;

/// The background's own pool and what it covers.
pub const BG_POOL: &str = "bg";
pub const BG_RANGE: &str = "10.96.0.0/14";
/// Objects per file.
const PER_FILE: usize = 500;

/// What was written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Background {
    pub services: usize,
    pub slices: usize,
    pub nodes: usize,
    /// Background routes the agent's node (`n1`) announces: every Cluster
    /// Service, and every Local one with a ready endpoint on n1.
    pub routes_on_n1: usize,
    /// Octets of YAML written.
    pub bytes: usize,
}

/// The node of endpoint `k` (0..6) of Service `i` among `nodes` nodes; 0 is `n1`.
fn endpoint_node(i: usize, k: usize, nodes: usize) -> usize {
    (i * 7 + k * 131) % nodes.max(1)
}

fn node_name(j: usize) -> String {
    if j == 0 {
        "n1".into()
    } else {
        format!("node-{j}")
    }
}

fn uid(kind: u32, i: usize) -> String {
    let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((kind as u64) << 56);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) as u16,
        (h & 0xfff) as u16,
        ((h >> 20) & 0xfff) as u16,
        h & 0xffff_ffff_ffff
    )
}

fn ts(i: usize) -> String {
    format!("2026-11-{:02}T{:02}:{:02}:{:02}Z", 1 + i % 28, (i / 7) % 24, (i / 3) % 60, i % 60)
}

fn ns_of(i: usize) -> String {
    format!("team-{}", i % 50)
}

fn service(o: &mut String, i: usize) {
    let (name, ns, t) = (format!("app-{i}"), ns_of(i), ts(i));
    let local = i.is_multiple_of(2);
    let policy = if local { "Local" } else { "Cluster" };
    let cip = format!("10.43.{}.{}", (i / 250) % 256, 1 + i % 250);
    let health = if local { format!("  healthCheckNodePort: {}\n", 32000 + i % 700) } else { String::new() };
    let _ = write!(
        o,
        r#"apiVersion: v1
kind: Service
metadata:
  annotations:
    meta.helm.sh/release-name: {name}
    meta.helm.sh/release-namespace: {ns}
    mooring.io/eip: {BG_POOL}
  creationTimestamp: "{t}"
  labels:
    app.kubernetes.io/instance: {name}
    app.kubernetes.io/managed-by: Helm
    app.kubernetes.io/name: {name}
    app.kubernetes.io/version: 1.{v}.0
    helm.sh/chart: {name}-0.{v}.0
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:annotations:
          .: {{}}
          f:meta.helm.sh/release-name: {{}}
          f:meta.helm.sh/release-namespace: {{}}
          f:mooring.io/eip: {{}}
        f:labels:
          .: {{}}
          f:app.kubernetes.io/instance: {{}}
          f:app.kubernetes.io/managed-by: {{}}
          f:app.kubernetes.io/name: {{}}
          f:app.kubernetes.io/version: {{}}
          f:helm.sh/chart: {{}}
      f:spec:
        f:allocateLoadBalancerNodePorts: {{}}
        f:externalTrafficPolicy: {{}}
        f:internalTrafficPolicy: {{}}
        f:ports:
          .: {{}}
          k:{{"port":80,"protocol":"TCP"}}:
            .: {{}}
            f:name: {{}}
            f:port: {{}}
            f:protocol: {{}}
            f:targetPort: {{}}
        f:selector: {{}}
        f:sessionAffinity: {{}}
        f:type: {{}}
    manager: helm
    operation: Update
    time: "{t}"
  name: {name}
  namespace: {ns}
  resourceVersion: "{rv}"
  uid: {uid}
spec:
  allocateLoadBalancerNodePorts: true
  clusterIP: {cip}
  clusterIPs:
  - {cip}
  externalTrafficPolicy: {policy}
{health}  internalTrafficPolicy: Cluster
  ipFamilies:
  - IPv4
  ipFamilyPolicy: SingleStack
  ports:
  - name: http
    nodePort: {np}
    port: 80
    protocol: TCP
    targetPort: http
  selector:
    app.kubernetes.io/instance: {name}
    app.kubernetes.io/name: {name}
  sessionAffinity: None
  type: LoadBalancer
status:
  loadBalancer: {{}}
"#,
        v = i % 9,
        rv = 100_000 + i * 3,
        uid = uid(1, i),
        np = 30000 + i % 2700,
    );
}

fn slice(o: &mut String, i: usize, s: usize, nodes: usize) {
    let (svc, ns, t) = (format!("app-{i}"), ns_of(i), ts(i));
    let suffix: String = uid(2, i * 3 + s).chars().filter(|c| c.is_ascii_lowercase()).take(5).collect();
    let name = format!("{svc}-{suffix}{s}");
    let _ = write!(o, "addressType: IPv4\napiVersion: discovery.k8s.io/v1\nendpoints:\n");
    for e in 0..2 {
        let k = s * 2 + e;
        let node = node_name(endpoint_node(i, k, nodes));
        let _ = write!(
            o,
            r#"- addresses:
  - 10.42.{a}.{b}
  conditions:
    ready: true
    serving: true
    terminating: false
  nodeName: {node}
  targetRef:
    kind: Pod
    name: {svc}-6d9f8b7c5-{pod}
    namespace: {ns}
    uid: {puid}
  zone: zone-{z}
"#,
            a = (i * 6 + k) / 250 % 256,
            b = 1 + (i * 6 + k) % 250,
            pod = &uid(3, i * 6 + k)[..5],
            puid = uid(3, i * 6 + k),
            z = ["a", "b", "c"][k % 3],
        );
    }
    let _ = write!(
        o,
        r#"kind: EndpointSlice
metadata:
  annotations:
    endpoints.kubernetes.io/last-change-trigger-time: "{t}"
  creationTimestamp: "{t}"
  generateName: {svc}-
  generation: {g}
  labels:
    app.kubernetes.io/instance: {svc}
    app.kubernetes.io/managed-by: Helm
    app.kubernetes.io/name: {svc}
    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
    kubernetes.io/service-name: {svc}
  managedFields:
  - apiVersion: discovery.k8s.io/v1
    fieldsType: FieldsV1
    fieldsV1:
      f:addressType: {{}}
      f:endpoints: {{}}
      f:metadata:
        f:annotations:
          .: {{}}
          f:endpoints.kubernetes.io/last-change-trigger-time: {{}}
        f:generateName: {{}}
        f:labels:
          .: {{}}
          f:app.kubernetes.io/instance: {{}}
          f:app.kubernetes.io/managed-by: {{}}
          f:app.kubernetes.io/name: {{}}
          f:endpointslice.kubernetes.io/managed-by: {{}}
          f:kubernetes.io/service-name: {{}}
        f:ownerReferences:
          .: {{}}
          k:{{"uid":"{owner}"}}: {{}}
      f:ports: {{}}
    manager: kube-controller-manager
    operation: Update
    time: "{t}"
  name: {name}
  namespace: {ns}
  ownerReferences:
  - apiVersion: v1
    blockOwnerDeletion: true
    controller: true
    kind: Service
    name: {svc}
    uid: {owner}
  resourceVersion: "{rv}"
  uid: {uid}
ports:
- name: http
  port: 8080
  protocol: TCP
"#,
        g = 1 + i % 17,
        owner = uid(1, i),
        rv = 200_000 + i * 3 + s,
        uid = uid(2, i * 3 + s),
    );
}

fn node(o: &mut String, j: usize) {
    let (name, t) = (node_name(j), ts(j));
    let _ = write!(
        o,
        r#"apiVersion: v1
kind: Node
metadata:
  annotations:
    flannel.alpha.coreos.com/backend-data: '{{"VNI":1,"VtepMAC":"0a:58:0a:f4:{a:02x}:{b:02x}"}}'
    flannel.alpha.coreos.com/backend-type: vxlan
    flannel.alpha.coreos.com/kube-subnet-manager: "true"
    flannel.alpha.coreos.com/public-ip: 172.20.{a}.{b}
    kubeadm.alpha.kubernetes.io/cri-socket: unix:///run/containerd/containerd.sock
    node.alpha.kubernetes.io/ttl: "0"
    volumes.kubernetes.io/controller-managed-attach-detach: "true"
  creationTimestamp: "{t}"
  labels:
    beta.kubernetes.io/arch: amd64
    beta.kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: {name}
    kubernetes.io/os: linux
    node.kubernetes.io/instance-type: m6i.2xlarge
    topology.kubernetes.io/region: eu-1
    topology.kubernetes.io/zone: zone-{z}
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:annotations:
          .: {{}}
          f:kubeadm.alpha.kubernetes.io/cri-socket: {{}}
          f:volumes.kubernetes.io/controller-managed-attach-detach: {{}}
        f:labels:
          .: {{}}
          f:beta.kubernetes.io/arch: {{}}
          f:beta.kubernetes.io/os: {{}}
          f:kubernetes.io/arch: {{}}
          f:kubernetes.io/hostname: {{}}
          f:kubernetes.io/os: {{}}
    manager: kubelet
    operation: Update
    time: "{t}"
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:annotations:
          f:flannel.alpha.coreos.com/backend-data: {{}}
          f:flannel.alpha.coreos.com/backend-type: {{}}
          f:flannel.alpha.coreos.com/kube-subnet-manager: {{}}
          f:flannel.alpha.coreos.com/public-ip: {{}}
    manager: flanneld
    operation: Update
    subresource: status
    time: "{t}"
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:status:
        f:conditions:
          k:{{"type":"DiskPressure"}}:
            f:lastHeartbeatTime: {{}}
          k:{{"type":"MemoryPressure"}}:
            f:lastHeartbeatTime: {{}}
          k:{{"type":"PIDPressure"}}:
            f:lastHeartbeatTime: {{}}
          k:{{"type":"Ready"}}:
            f:lastHeartbeatTime: {{}}
            f:lastTransitionTime: {{}}
            f:message: {{}}
            f:reason: {{}}
            f:status: {{}}
        f:images: {{}}
        f:nodeInfo:
          f:bootID: {{}}
    manager: kubelet
    operation: Update
    subresource: status
    time: "{t}"
  name: {name}
  resourceVersion: "{rv}"
  uid: {uid}
spec:
  podCIDR: 10.244.{j8}.0/24
  podCIDRs:
  - 10.244.{j8}.0/24
  providerID: aws:///eu-1{z}/i-0{uidh}
status:
  addresses:
  - address: 172.20.{a}.{b}
    type: InternalIP
  - address: {name}
    type: Hostname
  allocatable:
    cpu: "8"
    ephemeral-storage: "95491281146"
    hugepages-1Gi: "0"
    hugepages-2Mi: "0"
    memory: 31960512Ki
    pods: "110"
  capacity:
    cpu: "8"
    ephemeral-storage: 103615892Ki
    hugepages-1Gi: "0"
    hugepages-2Mi: "0"
    memory: 32062912Ki
    pods: "110"
  conditions:
  - lastHeartbeatTime: "{t}"
    lastTransitionTime: "{t}"
    message: kubelet has sufficient memory available
    reason: KubeletHasSufficientMemory
    status: "False"
    type: MemoryPressure
  - lastHeartbeatTime: "{t}"
    lastTransitionTime: "{t}"
    message: kubelet has no disk pressure
    reason: KubeletHasNoDiskPressure
    status: "False"
    type: DiskPressure
  - lastHeartbeatTime: "{t}"
    lastTransitionTime: "{t}"
    message: kubelet has sufficient PID available
    reason: KubeletHasSufficientPID
    status: "False"
    type: PIDPressure
  - lastHeartbeatTime: "{t}"
    lastTransitionTime: "{t}"
    message: kubelet is posting ready status
    reason: KubeletReady
    status: "True"
    type: Ready
  daemonEndpoints:
    kubeletEndpoint:
      Port: 10250
  images:
"#,
        a = j / 250 % 256,
        b = 1 + j % 250,
        z = ["a", "b", "c"][j % 3],
        j8 = j % 256,
        rv = 300_000 + j,
        uid = uid(4, j),
        uidh = &uid(4, j)[..8],
    );
    for k in 0..24 {
        let _ = write!(
            o,
            "  - names:\n    - registry.example.com/team-{k}/app@sha256:{h}{h}\n    - registry.example.com/team-{k}/app:v1.{k}.{j3}\n    sizeBytes: {size}\n",
            h = uid(5, j * 24 + k).replace('-', ""),
            j3 = j % 3,
            size = 10_000_000 + k * 1_234_567,
        );
    }
    let _ = write!(
        o,
        r#"  nodeInfo:
    architecture: amd64
    bootID: {boot}
    containerRuntimeVersion: containerd://1.7.22
    kernelVersion: 6.1.0-27-cloud-amd64
    kubeProxyVersion: v1.31.2
    kubeletVersion: v1.31.2
    machineID: {mid}
    operatingSystem: linux
    osImage: Debian GNU/Linux 12 (bookworm)
    systemUUID: {uid}
"#,
        boot = uid(6, j),
        mid = uid(7, j).replace('-', ""),
        uid = uid(4, j),
    );
}

/// Write documents in files of [`PER_FILE`] under `dir`: `prefix-NNN.yaml`.
fn files(dir: &Path, prefix: &str, n: usize, mut doc: impl FnMut(&mut String, usize)) -> usize {
    let mut bytes = 0;
    for (f, start) in (0..n).step_by(PER_FILE).enumerate() {
        let mut text = String::new();
        for i in start..(start + PER_FILE).min(n) {
            if !text.is_empty() {
                text.push_str("---\n");
            }
            doc(&mut text, i);
        }
        bytes += text.len();
        std::fs::write(dir.join(format!("{prefix}-{f:03}.yaml")), text).unwrap();
    }
    bytes
}

/// Write `services` background Services (3 EndpointSlices each) and
/// `nodes` Nodes (node 0, `n1`, is the agent's own and not written: the
/// benchmark's own manifests hold it) under `dir`.
pub fn write_background(dir: &Path, services: usize, nodes: usize) -> Background {
    std::fs::create_dir_all(dir).unwrap();
    let nodes = nodes.max(1);
    let mut bytes = files(dir, "services", services, service);
    bytes += files(dir, "slices", services * 3, |o, x| slice(o, x / 3, x % 3, nodes));
    bytes += files(dir, "nodes", nodes - 1, |o, j| node(o, j + 1));
    // The background's pool, and the routes n1 announces.
    let eip = format!(
        "apiVersion: mooring.io/v1alpha1\nkind: Eip\nmetadata: {{name: {BG_POOL}}}\nspec: {{address: {BG_RANGE}, autoAssign: false}}\n"
    );
    bytes += eip.len();
    std::fs::write(dir.join("eip.yaml"), eip).unwrap();
    let routes_on_n1 =
        (0..services).filter(|&i| !i.is_multiple_of(2) || (0..6).any(|k| endpoint_node(i, k, nodes) == 0)).count();
    Background { services, slices: services * 3, nodes, routes_on_n1, bytes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_background_loads_without_errors() {
        use mooring_agent::sources::manifests::{Manifests, Object};
        let d = std::env::temp_dir().join(format!("mooring-bg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let b = write_background(&d, 20, 5);
        assert_eq!((b.services, b.slices, b.nodes), (20, 60, 5));
        let m = Manifests::load(&d, None);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        let count = |f: fn(&Object) -> bool| m.objects.values().filter(|(_, o)| f(o)).count();
        assert_eq!(count(|o| matches!(o, Object::Service(_))), 20);
        assert_eq!(count(|o| matches!(o, Object::EndpointSlice(_))), 60);
        assert_eq!(count(|o| matches!(o, Object::Node(_))), 4, "n1 is the benchmark's own");
        assert_eq!(count(|o| matches!(o, Object::Eip(_))), 1);
        // Every Cluster Service, and the Local ones with an endpoint on n1.
        assert!(b.routes_on_n1 >= 10 && b.routes_on_n1 <= 20, "{b:?}");
        std::fs::remove_dir_all(d).unwrap();
    }
}
