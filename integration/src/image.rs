//! The container image as the tests build and run it: its tag (the one the
//! Helm chart and the containerlab topology name), the offline build of
//! the repository's Dockerfile with podman from a debootstrap'ed Debian 12
//! base (cached between runs), and a container run in a lab namespace.
//! What a test asserts about the image is not here.
//!
//! No image registry is reachable here, so the Dockerfile's two base images
//! are replaced through its build arguments: the runtime stage by
//! `debootstrap --variant=minbase bookworm` (for distroless
//! `cc-debian12`, the same Debian 12 glibc and libgcc), the builder stage
//! by that base with gcc, running this machine's Rust toolchain and cargo
//! registry (mounted; the build is offline) for `rust:1-bookworm`.
//!
//! Cache: `MOORING_IMAGE_CACHE` (default `<workspace>/target/image-cache`)
//! keeps the base's root file system as a tarball, so debootstrap runs once;
//! podman keeps the two base images and the Dockerfile's cargo cache mount
//! (`/var/tmp/buildah-cache`), so a rebuild compiles only what changed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mooring_lab::{find_program, run, tail};

/// Programs the image tests need beyond the lab's.
pub const IMAGE_TOOLS: &[&str] = &["podman", "runc", "debootstrap"];
/// The runtime base (for `gcr.io/distroless/cc-debian12:nonroot`).
pub const BASE: &str = "localhost/debian-minbase:bookworm";
/// The builder base (for `rust:1-bookworm`): [`BASE`] with gcc.
pub const BUILDER_BASE: &str = "localhost/mooring-builder-base:bookworm";
/// Where the builder base expects the host's Rust toolchain and cargo home.
const RUST_MOUNT: &str = "/usr/local/rust";
const CARGO_HOME_MOUNT: &str = "/cargo-home";

/// The image's name as users build it (`docker build -t mooring:0.1.0 .`),
/// the chart names it (`image.repository` `mooring`, tag = appVersion) and
/// the containerlab topology runs it.
pub fn image_tag() -> String {
    format!("mooring:{}", env!("CARGO_PKG_VERSION"))
}

/// The same image as podman names it (short names live under `localhost/`).
pub fn local_image() -> String {
    format!("localhost/{}", image_tag())
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// The base tarball's directory: `MOORING_IMAGE_CACHE`, else
/// `<target>/image-cache` (honouring `CARGO_TARGET_DIR`).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MOORING_IMAGE_CACHE") {
        return PathBuf::from(d);
    }
    let ws = workspace();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| ws.join("target"));
    if target.is_relative() { ws.join(target) } else { target }.join("image-cache")
}

/// `podman` with the options this machine needs (crun fails on hybrid
/// cgroups; systemd is not the cgroup manager here).
pub fn podman() -> Command {
    let mut c = Command::new("podman");
    c.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"]);
    c
}

/// Run podman with `args`; its stdout, or a panic with what it said.
pub fn podman_ok(args: &[&str]) -> String {
    let out = podman().args(args).output().unwrap_or_else(|e| panic!("cannot run podman: {e}"));
    assert!(
        out.status.success(),
        "podman {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn image_exists(name: &str) -> bool {
    podman().args(["image", "exists", name]).status().is_ok_and(|s| s.success())
}

/// The image's id, if it exists.
pub fn image_id(name: &str) -> Option<String> {
    let out = podman().args(["image", "inspect", "--format", "{{.Id}}", name]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The image's size in bytes.
pub fn image_size(name: &str) -> u64 {
    let s = podman_ok(&["image", "inspect", "--format", "{{.Size}}", name]);
    s.trim().parse().unwrap_or_else(|e| panic!("size of {name}: {s:?}: {e}"))
}

/// Why the image tests cannot run here, if they cannot (beyond the lab's
/// reasons): a tool of [`IMAGE_TOOLS`] or rustc missing.
pub fn image_unavailable() -> Option<String> {
    let missing: Vec<&str> =
        IMAGE_TOOLS.iter().chain(&["rustc"]).copied().filter(|b| find_program(b).is_none()).collect();
    (!missing.is_empty())
        .then(|| format!("missing binaries: {} (Debian: podman runc debootstrap buildah)", missing.join(", ")))
}

/// Make sure [`BASE`] exists: imported from the cached tarball, which is
/// made by debootstrap when missing. Returns what was done.
pub fn ensure_base() -> String {
    if image_exists(BASE) {
        return format!("{BASE} present");
    }
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let tarball = dir.join("debian-minbase-bookworm.tar");
    let mut did = String::new();
    if !tarball.exists() {
        let t = Instant::now();
        let root = dir.join("rootfs");
        let _ = std::fs::remove_dir_all(&root);
        let root_s = root.to_str().expect("UTF-8 path");
        let (ok, out, err) =
            run(&["debootstrap", "--variant=minbase", "bookworm", root_s, "http://deb.debian.org/debian"]);
        assert!(ok, "debootstrap failed:\n{}\n{}", tail(&out, 20), tail(&err, 20));
        // What an image does not need: downloaded packages and apt lists.
        for d in ["var/cache/apt/archives", "var/lib/apt/lists"] {
            let p = root.join(d);
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                if e.path().is_file() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let partial = dir.join("debian-minbase-bookworm.tar.partial");
        let (ok, _, err) = run(&["tar", "-C", root_s, "-cf", partial.to_str().unwrap(), "."]);
        assert!(ok, "tar of the base: {err}");
        std::fs::rename(&partial, &tarball).unwrap();
        std::fs::remove_dir_all(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        did = format!("debootstrap: {:.0?}; ", t.elapsed());
    }
    podman_ok(&["import", tarball.to_str().unwrap(), BASE]);
    format!("{did}imported {BASE} from {}", tarball.display())
}

/// Make sure [`BUILDER_BASE`] exists ([`BASE`] with gcc from Debian's mirror).
pub fn ensure_builder_base() -> String {
    if image_exists(BUILDER_BASE) {
        return format!("{BUILDER_BASE} present");
    }
    let t = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let containerfile = format!(
        "FROM {BASE}\n\
         RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
         gcc libc6-dev >/dev/null && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb\n\
         ENV PATH={RUST_MOUNT}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
         CARGO_HOME={CARGO_HOME_MOUNT} CARGO_NET_OFFLINE=true\n"
    );
    std::fs::write(dir.path().join("Containerfile"), containerfile).unwrap();
    podman_ok(&["build", "--layers=false", "-q", "-t", BUILDER_BASE, dir.path().to_str().unwrap()]);
    format!("built {BUILDER_BASE} in {:.0?}", t.elapsed())
}

/// The host's Rust toolchain (`rustc --print sysroot`).
fn rust_sysroot() -> String {
    let (ok, out, err) = run(&["rustc", "--print", "sysroot"]);
    assert!(ok, "rustc --print sysroot: {err}");
    out.trim().to_string()
}

/// The host's cargo registry (`$CARGO_HOME/registry`, default `~/.cargo`).
fn cargo_registry() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME or CARGO_HOME")).join(".cargo"));
    home.join("registry")
}

/// What [`build`] did.
#[derive(Debug)]
pub struct Built {
    pub image: String,
    pub size: u64,
    pub took: Duration,
    pub log: String,
}

/// Build the repository's Dockerfile as [`local_image`] with the local
/// bases; the image it replaces is removed (no dangling images are left).
pub fn build() -> Built {
    // The build is offline: every crate the lock file names must be in the
    // host's registry first.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo).args(["fetch", "--locked"]).current_dir(workspace()).status().expect("cargo fetch");
    assert!(st.success(), "cargo fetch --locked failed");
    let image = local_image();
    let before = image_id(&image);
    let t = Instant::now();
    let rust = format!("{}:{RUST_MOUNT}:ro", rust_sysroot());
    let registry = format!("{}:{CARGO_HOME_MOUNT}/registry", cargo_registry().display());
    let ws = workspace();
    let out = podman()
        .args(["build", "--layers=false", "-t", &image])
        .args(["--build-arg", &format!("RUST_IMAGE={BUILDER_BASE}"), "--build-arg", &format!("RUNTIME_IMAGE={BASE}")])
        .args(["-v", &rust, "-v", &registry, "-f"])
        .arg(ws.join("Dockerfile"))
        .arg(&ws)
        .output()
        .expect("podman build");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "podman build failed:\n{}", tail(&log, 40));
    let took = t.elapsed();
    if let Some(old) = before.filter(|old| Some(old) != image_id(&image).as_ref()) {
        let _ = podman().args(["rmi", &old]).output();
    }
    Built { size: image_size(&image), image, took, log }
}

/// The limits `podman run` must set here (the defaults cannot be set, nor
/// raised).
pub const RUN_LIMITS: [&str; 4] = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"];

/// `podman run --rm` of `image` with `args`, which must succeed; its output.
pub fn run_once(image: &str, args: &[&str]) -> String {
    let mut a = vec!["run", "--rm"];
    a.extend(RUN_LIMITS);
    a.push(image);
    a.extend_from_slice(args);
    podman_ok(&a)
}

/// A container started by a test; stopped and removed when dropped.
pub struct Container {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Container {
    /// `podman run --rm --name NAME` of `image` with `run_args` (podman's)
    /// and `args` (the image's), its output to `log`, with [`RUN_LIMITS`].
    pub fn start(name: &str, log: &Path, run_args: &[&str], image: &str, args: &[&str]) -> Container {
        let _ = podman().args(["rm", "-f", name]).output();
        let f = std::fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = podman()
            .args(["run", "--rm", "--name", name])
            .args(RUN_LIMITS)
            .args(run_args)
            .arg(image)
            .args(args)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("podman run");
        Container { name: name.into(), child, log: log.to_path_buf() }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| panic!("{}: {e}", self.log.display()))
    }

    /// Panic with its output when it has exited.
    pub fn check_running(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("container {} exited ({st}):\n{}", self.name, tail(&self.output(), 40));
        }
    }

    /// `podman stop` (SIGTERM, then SIGKILL after `grace`); the exit status.
    pub fn stop(&mut self, grace: Duration) -> std::process::ExitStatus {
        let t = grace.as_secs().max(1).to_string();
        let _ = podman().args(["stop", "-t", &t, &self.name]).output();
        self.child.wait().expect("wait for podman run")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = podman().args(["rm", "-f", "-t", "1", &self.name]).output();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("===== container {} output =====\n{}", self.name, tail(&self.output(), 60));
        }
    }
}
