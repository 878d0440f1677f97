//! The container image, built from the repository's Dockerfile and run:
//! `mooring --version` from it, then `mooring standalone` from it in a lab
//! node's network namespace (non-root, no capability, read-only root file
//! system, as the Helm chart runs it) peering with an FRR edge, which must
//! install the VIP in its kernel FIB via the node, and drop it when the
//! container is stopped. Prints the image's size and the build's time.
//!
//! Cost (2 cores): the first run debootstraps the base (50 s), adds gcc to
//! it (20 s) and compiles the release binary in the container (4 min 40 s);
//! later runs reuse the cached base and podman's cargo cache and compile
//! only what changed (20 s for the agent crate).

use std::time::{Duration, Instant};

use mooring_integration::image::{self, Container};
use mooring_lab::{edge_frr, fib_nexthops, lab_unavailable, poll, skip_or_fail, Lab};

const ID: u8 = 60;
const VIP: &str = "203.0.113.60";

fn manifests(router: &str, node_ip: &str) -> String {
    format!(
        "apiVersion: mooring.io/v1alpha1
kind: BgpConf
metadata: {{name: default}}
spec: {{as: 64513}}
---
apiVersion: mooring.io/v1alpha1
kind: BgpPeer
metadata: {{name: edge}}
spec: {{peerAddress: {router}, peerAs: 64512, holdTime: 3s, families: [ipv4-unicast]}}
---
apiVersion: mooring.io/v1alpha1
kind: Eip
metadata: {{name: pool}}
spec: {{address: {VIP}/32}}
---
apiVersion: v1
kind: Node
metadata: {{name: n1}}
status: {{addresses: [{{type: InternalIP, address: {node_ip}}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec: {{type: LoadBalancer, ports: [{{port: 80, protocol: TCP}}]}}
"
    )
}

#[test]
fn image_builds_and_its_binary_peers_with_frr() {
    if let Some(why) = lab_unavailable(image::IMAGE_TOOLS).or_else(image::image_unavailable) {
        skip_or_fail("the image test", &why);
        return;
    }
    println!("{}", image::ensure_base());
    println!("{}", image::ensure_builder_base());
    let built = image::build();
    println!(
        "built {} in {:.1?}: {:.1} MB (its Debian 12 minbase base: {:.1} MB)",
        built.image,
        built.took,
        built.size as f64 / 1e6,
        image::image_size(image::BASE) as f64 / 1e6
    );
    let version = image::run_once(&built.image, &["--version"]);
    assert_eq!(version.trim(), format!("mooring {}", env!("CARGO_PKG_VERSION")));
    // What the chart sets: uid 65532, no capability.
    let user = image::podman_ok(&["image", "inspect", "--format", "{{.Config.User}}", &built.image]);
    assert_eq!(user.trim(), "65532:65532", "the image runs as the nonroot user");

    let lab = Lab::new(ID);
    let n1 = lab.node("n1");
    let _frr = edge_frr(&lab, &[], None);
    let config = lab.path("manifests");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("lab.yaml"), manifests(&lab.router_v4, &n1.v4)).unwrap();
    let mount = format!("{}:/etc/mooring:ro", config.display());
    let netns = format!("ns:/run/netns/{}", n1.ns);
    let t = Instant::now();
    let mut c = Container::start(
        &format!("mooring-image-test-{}", std::process::id()),
        &lab.path("container.log"),
        &[
            "--network",
            &netns,
            "--cap-drop",
            "ALL",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-e",
            "MOORING_LOG=info",
            "-v",
            &mount,
        ],
        &built.image,
        &["standalone", "--node", "n1", "--config", "/etc/mooring"],
    );
    poll("the VIP in FRR's FIB via n1", Duration::from_secs(30), || {
        c.check_running();
        (fib_nexthops(&lab.router, VIP) == vec![n1.v4.clone()]).then_some(())
    });
    println!("VIP in FRR's FIB {:.1?} after podman run", t.elapsed());
    assert!(c.output().contains(&format!("assigned {VIP} (pool pool)")), "{}", c.output());

    // SIGTERM (podman stop): the container withdraws and exits cleanly.
    let st = c.stop(Duration::from_secs(10));
    assert!(st.success(), "the container exits 0 on SIGTERM: {st}\n{}", c.output());
    poll("the VIP gone from FRR's FIB", Duration::from_secs(3), || {
        fib_nexthops(&lab.router, VIP).is_empty().then_some(())
    });
}
