//! One lab: its namespaces and links (a router with a bridge and nodes on
//! it, or a router and one node on a veth pair), the processes started in
//! them, and their cleanup when the lab is dropped. nftables rules are in
//! nft.rs, the routing daemons in daemons/.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cmd::{check_interrupted, poll, poll_every, run, run_ok, tail};
use crate::proc::Proc;

/// A namespace attached to the router.
#[derive(Debug, Clone)]
pub struct Node {
    pub ns: String,
    pub v4: String,
    /// Empty for the client (IPv4 only).
    pub v6: String,
}

/// One test's or benchmark's lab. See the crate docs for the naming scheme.
pub struct Lab {
    pub id: u8,
    dir: tempfile::TempDir,
    /// The router namespace `mitX-r` (`.1` / `::1` of the lab's link).
    pub router: String,
    pub router_v4: String,
    pub router_v6: String,
    namespaces: Mutex<Vec<String>>,
    children: Mutex<Vec<(Proc, Child)>>,
    frr_instances: Mutex<Vec<String>>,
    nodes: Mutex<u8>,
    /// flock(2)ed while the lab lives: one lab per id on the machine.
    _lock: File,
}

impl Lab {
    /// A lab with a router namespace `mitX-r` holding bridge `br0`
    /// (198.18.X.1/24, 2001:db8:ffff:ffXX::1/64), forwarding on and
    /// `fib_multipath_hash_policy=1`; nodes join with [`Lab::node`].
    pub fn new(id: u8) -> Lab {
        let lab = Lab::empty(id);
        let r = lab.router.clone();
        lab.add_ns(&r);
        run_ok(&["ip", "-n", &r, "link", "add", "br0", "type", "bridge"]);
        run_ok(&["ip", "-n", &r, "link", "set", "br0", "up"]);
        lab.addresses(&r, "br0", &lab.router_v4, &lab.router_v6);
        lab.sysctl(
            &r,
            &["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.fib_multipath_hash_policy=1"],
        );
        lab
    }

    /// A lab of two namespaces joined by one veth pair (`eth0` on both
    /// sides, no bridge): the router `mitX-r` (198.18.X.1,
    /// 2001:db8:ffff:ffXX::1) and the node `mitX-<name>` (.2 / ::2), for
    /// measurements where nothing but the two ends should run.
    pub fn pair(id: u8, name: &str) -> (Lab, Node) {
        let lab = Lab::empty(id);
        let r = lab.router.clone();
        lab.add_ns(&r);
        let node = lab.host(name, 2);
        lab.add_ns(&node.ns);
        run_ok(&["ip", "-n", &r, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &node.ns]);
        lab.addresses(&r, "eth0", &lab.router_v4, &lab.router_v6);
        lab.addresses(&node.ns, "eth0", &node.v4, &node.v6);
        (lab, node)
    }

    /// The lock, the leftovers of an earlier run with this id removed, the
    /// temp dir; no namespace yet.
    fn empty(id: u8) -> Lab {
        let lock = lock(id);
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
        Lab {
            id,
            dir,
            router: format!("mit{id}-r"),
            router_v4: format!("198.18.{id}.1"),
            router_v6: format!("2001:db8:ffff:ff{id:02x}::1"),
            namespaces: Mutex::new(vec![]),
            children: Mutex::new(vec![]),
            frr_instances: Mutex::new(vec![]),
            nodes: Mutex::new(0),
            _lock: lock,
        }
    }

    /// The lab's directory (configs, logs; removed on drop unless
    /// `MBENCH_KEEP_LOGS` is set).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write `text` to `name` in the lab's directory; its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        p
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
        // No SLAAC addresses: FRR sends router advertisements on links with an
        // extended-nexthop neighbor, and an autoconfigured address picked as a
        // session's source is one the router does not know (it refuses the
        // connection: "not configured").
        self.sysctl(
            ns,
            &[
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.accept_ra=0",
                "net.ipv6.conf.default.accept_ra=0",
            ],
        );
    }

    /// The addresses of host number `host` on the lab's link.
    fn host(&self, name: &str, host: u8) -> Node {
        Node {
            ns: format!("mit{}-{name}", self.id),
            v4: format!("198.18.{}.{host}", self.id),
            v6: format!("2001:db8:ffff:ff{:02x}::{host}", self.id),
        }
    }

    /// `v4`/24 and `v6`/64 on `dev` in `ns`, and the link up.
    fn addresses(&self, ns: &str, dev: &str, v4: &str, v6: &str) {
        run_ok(&["ip", "-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
        run_ok(&["ip", "-n", ns, "addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"]);
        run_ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
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
        let node = self.host(name, host);
        let ns = &node.ns;
        self.add_ns(ns);
        let port = format!("v{host}");
        run_ok(&["ip", "-n", &self.router, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", ns]);
        run_ok(&["ip", "-n", &self.router, "link", "set", &port, "master", "br0", "up"]);
        self.addresses(ns, "eth0", &node.v4, &node.v6);
        run_ok(&["ip", "-n", ns, "route", "add", "default", "via", &self.router_v4]);
        run_ok(&["ip", "-n", ns, "-6", "route", "add", "default", "via", &self.router_v6]);
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

    /// Start `args` inside namespace `ns`, output to `<dir>/<name>.log`.
    pub fn spawn(&self, ns: &str, name: &str, args: &[&str]) -> Proc {
        self.spawn_env(ns, name, args, &[])
    }

    /// [`Lab::spawn`] with environment variables added.
    pub fn spawn_env(&self, ns: &str, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        check_interrupted();
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

    /// Wait (polling every 5 ms) for a line of `p`'s output containing
    /// `pat`; returns the last such line. Panics with the output's tail
    /// when `p` exits first or after `timeout`.
    pub fn wait_output(&self, p: &Proc, pat: &str, timeout: Duration) -> String {
        poll_every(&format!("{}: a line with {pat:?}", p.name), timeout, Duration::from_millis(5), || {
            if let Some(l) = p.lines_with(pat).pop() {
                return Some(l);
            }
            self.check_running(p);
            None
        })
    }

    /// True when `p` has exited (or was never started by this lab).
    pub fn exited(&self, p: &Proc) -> bool {
        let mut ch = self.children.lock().unwrap();
        match ch.iter_mut().find(|(q, _)| q.pid == p.pid) {
            Some((_, c)) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Panic with the tail of its output when `p` has exited.
    pub fn check_running(&self, p: &Proc) {
        if self.exited(p) {
            panic!("{} exited:\n{}", p.name, tail(&p.output(), 30));
        }
    }

    /// Wait for a process to exit (it was signalled); true if it did.
    pub fn wait_exit(&self, p: &Proc, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.exited(p) {
                return true;
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

    /// Stop processes this lab started: SIGTERM to all, SIGKILL to those
    /// still running after `timeout`; each is reaped and forgotten (so
    /// that the cleanup never signals its pid again, which the kernel may
    /// have reused by then).
    pub fn stop(&self, procs: &[Proc], timeout: Duration) {
        let mut ch = self.children.lock().unwrap();
        let (mut stopping, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut *ch).into_iter().partition(|(q, _)| procs.iter().any(|p| p.pid == q.pid));
        *ch = keep;
        drop(ch);
        terminate(&mut stopping, timeout);
    }

    /// A TCP responder on `addr:port` (IPv4 or IPv6) in `ns` answering every connection with `text`.
    pub fn responder(&self, ns: &str, addr: &str, port: u16, text: &str) -> Proc {
        let family = if addr.contains(':') { "AF_INET6" } else { "AF_INET" };
        let script = format!(
            "import socket, socketserver\n\
             class H(socketserver.BaseRequestHandler):\n    def handle(self): self.request.sendall(b'{text}\\n')\n\
             socketserver.ThreadingTCPServer.allow_reuse_address = True\n\
             socketserver.ThreadingTCPServer.address_family = socket.{family}\n\
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

    /// An HTTP/1.0 server on 0.0.0.0:`port` in `ns` answering every GET with 200 and
    /// `text` (a node's kube-proxy health port and its Service at once, for central-mode
    /// probes and traffic); returns once it listens.
    pub fn http_server(&self, ns: &str, port: u16, text: &str) -> Proc {
        let script = format!(
            "import http.server\n\
             class H(http.server.BaseHTTPRequestHandler):\n\
             \x20   def do_GET(self):\n\
             \x20       b = b'{text}\\n'\n\
             \x20       self.send_response(200); self.send_header('Content-Length', str(len(b))); \
             self.end_headers(); self.wfile.write(b)\n\
             \x20   def log_message(self, *a): pass\n\
             http.server.ThreadingHTTPServer.allow_reuse_address = True\n\
             http.server.ThreadingHTTPServer(('0.0.0.0', {port}), H).serve_forever()\n"
        );
        let p = self.spawn(ns, &format!("http-{text}"), &["python3", "-c", &script]);
        poll(&format!("{text}'s HTTP server listening on :{port}"), Duration::from_secs(10), || {
            let (_, out, _) = run(&["ip", "netns", "exec", ns, "ss", "-Htln", &format!("sport = :{port}")]);
            (!out.trim().is_empty()).then_some(())
        });
        p
    }

    fn cleanup(&mut self) {
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
        if std::env::var_os("MBENCH_KEEP_LOGS").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("lab {}: logs and configs kept in {}", self.id, self.dir.path().display());
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The machine-wide lock of lab id `id` (`/run/lock/mooring-lab-X.lock`):
/// a second lab with the same id, in this process or another, waits until
/// the first is dropped instead of deleting its namespaces.
fn lock(id: u8) -> File {
    let dir = if Path::new("/run/lock").is_dir() { PathBuf::from("/run/lock") } else { std::env::temp_dir() };
    let path = dir.join(format!("mooring-lab-{id}.lock"));
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a descriptor we own; no memory is passed.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        eprintln!("lab {id}: waiting for another lab with the same id ({} is locked)", path.display());
        // SAFETY: as above.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(r, 0, "flock {}: {}", path.display(), std::io::Error::last_os_error());
    }
    f
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
