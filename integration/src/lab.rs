//! Namespaces, links, processes and their cleanup.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::util::{poll, run, run_ok, tail};

/// Path of the `mooring` binary (`<workspace>/target/debug/mooring`,
/// honouring `CARGO_TARGET_DIR`). Built once per test process with
/// `cargo build -p mooring-agent --bin mooring` when it is missing or older
/// than the sources of `agent/` or `bgp/` (`cargo test` of this crate does
/// not build another package's binary).
pub fn mooring_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| ws.join("target"));
        let target = if target.is_relative() { ws.join(target) } else { target };
        let bin = target.join("debug").join("mooring");
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let stale = match built {
            None => true,
            Some(t) => ["agent", "bgp"].iter().any(|d| newer_than(&ws.join(d).join("src"), t)),
        };
        if stale {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            println!("building the mooring binary ({} missing or stale)", bin.display());
            let st = Command::new(cargo)
                .args(["build", "-p", "mooring-agent", "--bin", "mooring"])
                .current_dir(&ws)
                .status()
                .expect("running cargo build");
            assert!(st.success(), "cargo build -p mooring-agent failed");
        }
        assert!(bin.exists(), "{} not found after building", bin.display());
        bin
    })
    .clone()
}

/// True when a file under `dir` was modified after `t`.
fn newer_than(dir: &Path, t: std::time::SystemTime) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else { return false };
    rd.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            newer_than(&p, t)
        } else {
            e.metadata().and_then(|m| m.modified()).map(|m| m > t).unwrap_or(false)
        }
    })
}

/// A process started by the lab (in a namespace), with its output file.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    /// Everything the process wrote so far (stdout and stderr).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines of the output containing `pat`.
    pub fn lines_with(&self, pat: &str) -> Vec<String> {
        self.output().lines().filter(|l| l.contains(pat)).map(String::from).collect()
    }

    pub fn count(&self, pat: &str) -> usize {
        self.lines_with(pat).len()
    }

    /// Wait until the output has at least `n` lines containing `pat`.
    pub fn wait_count(&self, pat: &str, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.count(pat) < n {
            if start.elapsed() > timeout {
                panic!(
                    "{}: fewer than {n} lines with {pat:?} after {timeout:?}\n--- output:\n{}",
                    self.name,
                    tail(&self.output(), 60)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for a line containing `pat`; returns the last such line.
    pub fn wait_line(&self, pat: &str, timeout: Duration) -> String {
        self.wait_count(pat, 1, timeout);
        self.lines_with(pat).pop().unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on a pid we started.
        unsafe { libc::kill(self.pid, sig) };
    }

    /// Resident set size in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Number of open file descriptors.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map(|d| d.count()).unwrap_or(0)
    }
}

/// A namespace attached to the router's bridge.
#[derive(Debug, Clone)]
pub struct Node {
    pub ns: String,
    pub v4: String,
    pub v6: String,
}

/// One test's lab. See the crate docs for the naming scheme.
pub struct Lab {
    pub id: u8,
    pub dir: tempfile::TempDir,
    /// The router namespace (bridge `br0` with `.1` / `::1`).
    pub router: String,
    pub router_v4: String,
    pub router_v6: String,
    namespaces: Mutex<Vec<String>>,
    children: Mutex<Vec<(Proc, Child)>>,
    frr_instances: Mutex<Vec<String>>,
    nodes: Mutex<u8>,
}

impl Lab {
    /// A lab with a router namespace `mitX-r` holding bridge `br0`
    /// (198.18.X.1/24, 2001:db8:ffff:ffXX::1/64), forwarding on and
    /// `fib_multipath_hash_policy=1`.
    pub fn new(id: u8) -> Lab {
        // Leftovers of an earlier run that crashed hard (our prefix only).
        let (_, list, _) = run(&["ip", "netns", "list"]);
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if ns.starts_with(&format!("mit{id}-")) {
                kill_ns_procs(ns);
                let _ = run(&["ip", "netns", "del", ns]);
            }
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/frr/mit{id}"));
        let dir = tempfile::Builder::new().prefix(&format!("mit{id}-")).tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let lab = Lab {
            id,
            dir,
            router: format!("mit{id}-r"),
            router_v4: format!("198.18.{id}.1"),
            router_v6: format!("2001:db8:ffff:ff{id:02x}::1"),
            namespaces: Mutex::new(vec![]),
            children: Mutex::new(vec![]),
            frr_instances: Mutex::new(vec![]),
            nodes: Mutex::new(0),
        };
        let r = lab.router.clone();
        lab.add_ns(&r);
        run_ok(&["ip", "-n", &r, "link", "add", "br0", "type", "bridge"]);
        run_ok(&["ip", "-n", &r, "link", "set", "br0", "up"]);
        run_ok(&["ip", "-n", &r, "addr", "add", &format!("{}/24", lab.router_v4), "dev", "br0"]);
        run_ok(&["ip", "-n", &r, "addr", "add", &format!("{}/64", lab.router_v6), "dev", "br0", "nodad"]);
        lab.sysctl(
            &r,
            &["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.fib_multipath_hash_policy=1"],
        );
        lab
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn sysctl(&self, ns: &str, kv: &[&str]) {
        let mut a = vec!["ip", "netns", "exec", ns, "sysctl", "-qw"];
        a.extend_from_slice(kv);
        run_ok(&a);
    }

    /// Create a namespace (full name) with `lo` up.
    pub fn add_ns(&self, ns: &str) {
        run_ok(&["ip", "netns", "add", ns]);
        self.namespaces.lock().unwrap().push(ns.to_string());
        run_ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        self.sysctl(ns, &["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
    }

    /// A new namespace `mitX-<name>` on the router's bridge. The k-th node
    /// gets 198.18.X.(10+k) and 2001:db8:ffff:ffXX::(10+k) (hex), default
    /// routes via the router.
    pub fn node(&self, name: &str) -> Node {
        let k = {
            let mut n = self.nodes.lock().unwrap();
            *n += 1;
            *n
        };
        self.node_at(name, 10 + k)
    }

    /// Like [`Lab::node`] with an explicit host number.
    pub fn node_at(&self, name: &str, host: u8) -> Node {
        let ns = format!("mit{}-{name}", self.id);
        self.add_ns(&ns);
        let port = format!("v{host}");
        run_ok(&["ip", "-n", &self.router, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        run_ok(&["ip", "-n", &self.router, "link", "set", &port, "master", "br0", "up"]);
        let node = Node {
            ns: ns.clone(),
            v4: format!("198.18.{}.{host}", self.id),
            v6: format!("2001:db8:ffff:ff{:02x}::{host}", self.id),
        };
        run_ok(&["ip", "-n", &ns, "addr", "add", &format!("{}/24", node.v4), "dev", "eth0"]);
        run_ok(&["ip", "-n", &ns, "addr", "add", &format!("{}/64", node.v6), "dev", "eth0", "nodad"]);
        run_ok(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        run_ok(&["ip", "-n", &ns, "route", "add", "default", "via", &self.router_v4]);
        run_ok(&["ip", "-n", &ns, "-6", "route", "add", "default", "via", &self.router_v6]);
        node
    }

    /// A client namespace `mitX-client` behind the router on
    /// 198.19.X.0/24 (router .1, client .2).
    pub fn client(&self) -> Node {
        let ns = format!("mit{}-client", self.id);
        self.add_ns(&ns);
        let r = &self.router;
        run_ok(&["ip", "-n", r, "link", "add", "vclient", "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        run_ok(&["ip", "-n", r, "addr", "add", &format!("198.19.{}.1/24", self.id), "dev", "vclient"]);
        run_ok(&["ip", "-n", r, "link", "set", "vclient", "up"]);
        let v4 = format!("198.19.{}.2", self.id);
        run_ok(&["ip", "-n", &ns, "addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
        run_ok(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        run_ok(&["ip", "-n", &ns, "route", "add", "default", "via", &format!("198.19.{}.1", self.id)]);
        Node { ns, v4, v6: String::new() }
    }

    /// Start `args` inside namespace `ns`, output to `<tempdir>/<name>.log`.
    pub fn spawn(&self, ns: &str, name: &str, args: &[&str]) -> Proc {
        self.spawn_env(ns, name, args, &[])
    }

    pub fn spawn_env(&self, ns: &str, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let log = self.path(&format!("{name}.log"));
        // Several runs of one name (a restarted speaker) append to one file.
        let f = File::options().create(true).append(true).open(&log).expect("log file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(args).envs(env.iter().copied());
        cmd.stdin(Stdio::null()).stdout(f.try_clone().unwrap()).stderr(f);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {args:?} in {ns}: {e}"));
        // `ip netns exec` execs the command: the child's pid is the program's.
        let p = Proc { pid: child.id() as i32, name: name.to_string(), log };
        self.children.lock().unwrap().push((p.clone(), child));
        p
    }

    /// `mooring announce ARGS` in namespace `ns` (MOORING_LOG=info).
    pub fn mooring(&self, ns: &str, name: &str, args: &[&str]) -> Proc {
        let bin = mooring_bin();
        let mut a = vec![bin.to_str().unwrap(), "announce"];
        a.extend_from_slice(args);
        let p = self.spawn_env(ns, name, &a, &[("MOORING_LOG", "info"), ("RUST_BACKTRACE", "1"), ("NO_COLOR", "1")]);
        println!("[{name}] started pid {} in {ns}: mooring announce {}", p.pid, args.join(" "));
        p
    }

    /// Wait (polling every 5 ms) for a line of `p`'s output containing
    /// `pat`; returns the last such line. Panics with the output's tail
    /// when `p` exits first or after `timeout`.
    pub fn wait_output(&self, p: &Proc, pat: &str, timeout: Duration) -> String {
        crate::util::poll_every(
            &format!("{}: a line with {pat:?}", p.name),
            timeout,
            Duration::from_millis(5),
            &mut || {
                if let Some(l) = p.lines_with(pat).pop() {
                    return Some(l);
                }
                if self.wait_exit(p, Duration::ZERO) {
                    panic!("{} exited before printing {pat:?}:\n{}", p.name, tail(&p.output(), 30));
                }
                None
            },
        )
    }

    /// Wait for a process to exit (it was signalled); true if it did.
    pub fn wait_exit(&self, p: &Proc, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            {
                let mut ch = self.children.lock().unwrap();
                if let Some((_, c)) = ch.iter_mut().find(|(q, _)| q.pid == p.pid) {
                    if let Ok(Some(_)) = c.try_wait() {
                        return true;
                    }
                } else {
                    return true;
                }
            }
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn register_frr(&self, inst: &str) {
        self.frr_instances.lock().unwrap().push(inst.to_string());
    }

    /// Drop packets in namespace `ns` with nftables: `rules` are rule bodies
    /// for the chains `in` (input hook) and `out` (output hook) of table
    /// `inet mit`, e.g. `in ip saddr 198.18.1.1 drop`. Undo with [`Lab::nft_clear`].
    pub fn nft_drop(&self, ns: &str, rules: &[&str]) {
        let mut text = "add table inet mit\n\
                        add chain inet mit in { type filter hook input priority 0; }\n\
                        add chain inet mit out { type filter hook output priority 0; }\n"
            .to_string();
        for r in rules {
            text.push_str(&format!("add rule inet mit {r}\n"));
        }
        let file = self.path(&format!("{ns}.nft"));
        std::fs::write(&file, text).unwrap();
        run_ok(&["ip", "netns", "exec", ns, "nft", "-f", file.to_str().unwrap()]);
    }

    /// Remove what [`Lab::nft_drop`] installed in `ns`.
    pub fn nft_clear(&self, ns: &str) {
        run_ok(&["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "mit"]);
    }

    /// Silence everything between `node` and `peer` (an IPv4 address), both ways.
    pub fn silence(&self, node: &Node, peer: &str) {
        self.nft_drop(&node.ns, &[&format!("in ip saddr {peer} drop"), &format!("out ip daddr {peer} drop")]);
    }

    /// Stop processes this lab started: SIGTERM to all, SIGKILL to those
    /// still running after `timeout`; each is reaped and forgotten (so
    /// that the cleanup never signals its pid again, which the kernel may
    /// have reused by then).
    pub fn stop(&self, procs: &[Proc], timeout: Duration) {
        let mut ch = self.children.lock().unwrap();
        let (mut stopping, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut *ch).into_iter().partition(|(q, _)| procs.iter().any(|p| p.pid == q.pid));
        *ch = keep;
        terminate(&mut stopping, timeout);
    }

    /// A TCP responder on `addr:port` in `ns` answering every connection with `text`.
    pub fn responder(&self, ns: &str, addr: &str, port: u16, text: &str) -> Proc {
        let script = format!(
            "import socketserver\n\
             class H(socketserver.BaseRequestHandler):\n    def handle(self): self.request.sendall(b'{text}\\n')\n\
             socketserver.ThreadingTCPServer.allow_reuse_address = True\n\
             socketserver.ThreadingTCPServer(('{addr}', {port}), H).serve_forever()\n"
        );
        let p = self.spawn(ns, &format!("responder-{text}"), &["python3", "-c", &script]);
        // Ready when the port is bound.
        poll(&format!("responder {text} listening on {addr}:{port}"), Duration::from_secs(10), || {
            let (_, out, _) = run(&["ip", "netns", "exec", ns, "ss", "-Htln", &format!("sport = :{port}")]);
            (!out.trim().is_empty()).then_some(())
        });
        p
    }

    fn cleanup(&self) {
        let panicking = std::thread::panicking();
        let mut children = std::mem::take(&mut *self.children.lock().unwrap());
        terminate(&mut children, Duration::from_secs(3));
        if panicking {
            for (p, _) in &children {
                eprintln!("===== {} (pid {}) output, last 80 lines =====\n{}", p.name, p.pid, tail(&p.output(), 80));
            }
        }
        let namespaces = std::mem::take(&mut *self.namespaces.lock().unwrap());
        for ns in namespaces.iter().rev() {
            kill_ns_procs(ns);
            let _ = run(&["ip", "netns", "del", ns]);
        }
        for inst in self.frr_instances.lock().unwrap().iter() {
            let _ = std::fs::remove_dir_all(format!("/var/run/frr/{inst}"));
        }
    }
}

/// Kill (by pid) whatever still runs in one of our namespaces.
fn kill_ns_procs(ns: &str) {
    let (_, pids, _) = run(&["ip", "netns", "pids", ns]);
    for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        // SAFETY: kill(2) on a process inside a namespace this lab owns.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    if !pids.trim().is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// SIGTERM to every process still running, SIGKILL to those still running
/// after `timeout`; every one is reaped. A process that has exited is not
/// signalled (its pid may belong to another process by now).
fn terminate(children: &mut [(Proc, Child)], timeout: Duration) {
    for (p, c) in children.iter_mut() {
        if matches!(c.try_wait(), Ok(None)) {
            p.signal(libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + timeout;
    for (p, c) in children.iter_mut() {
        loop {
            match c.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    p.signal(libc::SIGKILL);
                    let _ = c.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}
