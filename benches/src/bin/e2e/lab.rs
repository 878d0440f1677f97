//! A two-namespace lab: `mbench-rcv` (198.18.200.1, the receiver) and
//! `mbench-spk` (198.18.200.2, the speaker) joined by one veth pair.
//! Every process is started through [`Lab::spawn`] and killed by PID when
//! the lab is dropped (also while unwinding from a panic, and on Ctrl-C:
//! SIGINT/SIGTERM set a flag that every wait loop turns into a panic).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const RCV_NS: &str = "mbench-rcv";
pub const SPK_NS: &str = "mbench-spk";
pub const RCV_ADDR: &str = "198.18.200.1";
pub const SPK_ADDR: &str = "198.18.200.2";
/// The FRR instance name (`-N`): its sockets live in /var/run/frr/mbench.
pub const FRR_INST: &str = "mbench";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT / SIGTERM only set a flag; [`check_interrupted`] panics on it so
/// that the labs' `Drop` cleans up.
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
}

pub fn check_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        panic!("interrupted");
    }
}

/// Sleep in short steps, watching for Ctrl-C.
pub fn sleep(d: Duration) {
    let end = Instant::now() + d;
    loop {
        check_interrupted();
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

pub use mooring_integration::{run, run_ok};

/// Poll `f` every `every` until it returns `Some`, or panic after `timeout`.
pub fn poll<T>(what: &str, timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        check_interrupted();
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(every);
    }
}

pub use mooring_integration::{tail, Proc};

pub struct Lab {
    pub dir: PathBuf,
    children: std::cell::RefCell<Vec<(Proc, Child)>>,
    namespaces: Vec<String>,
    frr: std::cell::Cell<bool>,
    /// The FRR instance this lab's daemons use (cleaned up on drop).
    pub frr_inst: String,
}

/// Kill whatever runs in a namespace (by PID) and delete it.
fn remove_ns(ns: &str) {
    let (_, pids, _) = run(&["ip", "netns", "pids", ns]);
    for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        // SAFETY: kill(2) of a process inside one of our (mbench-) namespaces.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    if !pids.trim().is_empty() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = run(&["ip", "netns", "del", ns]);
}

impl Lab {
    /// The receiver's namespace.
    pub fn rcv_ns(&self) -> &str {
        &self.namespaces[0]
    }

    /// The speaker's namespace.
    pub fn spk_ns(&self) -> &str {
        &self.namespaces[1]
    }

    /// Build the two namespaces (removing leftovers of a crashed run first).
    pub fn new(tag: &str) -> Lab {
        Lab::named(tag, "mbench-", RCV_NS, SPK_NS, FRR_INST)
    }

    /// A lab with its own namespace names (all starting with `prefix`,
    /// whose leftovers are removed first) and FRR instance, so that it can
    /// run next to another e2e mode's lab.
    pub fn named(tag: &str, prefix: &str, rcv_ns: &str, spk_ns: &str, frr_inst: &str) -> Lab {
        let (_, list, _) = run(&["ip", "netns", "list"]);
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if ns.starts_with(prefix) {
                remove_ns(ns);
            }
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/frr/{frr_inst}"));
        let dir = std::env::temp_dir().join(format!("mbench-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let lab = Lab {
            dir,
            children: Default::default(),
            namespaces: vec![rcv_ns.into(), spk_ns.into()],
            frr: Default::default(),
            frr_inst: frr_inst.into(),
        };
        for ns in &lab.namespaces {
            run_ok(&["ip", "netns", "add", ns]);
            run_ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        run_ok(&["ip", "-n", rcv_ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", spk_ns]);
        for (ns, addr) in [(rcv_ns, RCV_ADDR), (spk_ns, SPK_ADDR)] {
            run_ok(&["ip", "-n", ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            run_ok(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        p
    }

    /// Start `args` in namespace `ns`; output to `<dir>/<name>.log`.
    pub fn spawn(&self, ns: &str, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        check_interrupted();
        let log = self.path(&format!("{name}.log"));
        let f = File::options().create(true).append(true).open(&log).expect("log file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(args).envs(env.iter().copied());
        cmd.stdin(Stdio::null()).stdout(f.try_clone().unwrap()).stderr(f);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {args:?} in {ns}: {e}"));
        // `ip netns exec` execs the program: the child's pid is the program's.
        let p = Proc { pid: child.id() as i32, name: name.to_string(), log };
        self.children.borrow_mut().push((p.clone(), child));
        p
    }

    /// Wait for a line of `p`'s output containing `pat`; returns the
    /// last such line. Panics when `p` exits first or after `timeout`.
    pub fn wait_output(&self, p: &Proc, pat: &str, timeout: Duration) -> String {
        poll(&format!("{}: a line with {pat:?}", p.name), timeout, Duration::from_millis(5), || {
            if let Some(l) = p.lines_with(pat).pop() {
                return Some(l);
            }
            if self.exited(p) {
                panic!("{} exited before printing {pat:?}:\n{}", p.name, tail(&p.output(), 30));
            }
            None
        })
    }

    /// True when `p` has exited.
    pub fn exited(&self, p: &Proc) -> bool {
        let mut ch = self.children.borrow_mut();
        match ch.iter_mut().find(|(q, _)| q.pid == p.pid) {
            Some((_, c)) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    pub fn uses_frr(&self) {
        self.frr.set(true);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut children = std::mem::take(&mut *self.children.borrow_mut());
        for (p, _) in &children {
            // SAFETY: kill(2) on a pid we started.
            unsafe { libc::kill(p.pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for (p, c) in children.iter_mut() {
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        // SAFETY: as above.
                        unsafe { libc::kill(p.pid, libc::SIGKILL) };
                        let _ = c.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        if std::thread::panicking() {
            for (p, _) in &children {
                eprintln!("===== {} (pid {}), last 40 lines =====\n{}", p.name, p.pid, tail(&p.output(), 40));
            }
        }
        for ns in self.namespaces.iter().rev() {
            remove_ns(ns);
        }
        if self.frr.get() {
            let _ = std::fs::remove_dir_all(format!("/var/run/frr/{}", self.frr_inst));
        }
        if std::env::var_os("MBENCH_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("logs kept in {}", self.dir.display());
        }
    }
}

/// Where a program is: `bin` when it has a slash, else searched in PATH
/// and the sbin directories sudo may strip.
pub fn find_program(bin: &str) -> Option<PathBuf> {
    if bin.contains('/') {
        return Path::new(bin).exists().then(|| PathBuf::from(bin));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let mut dirs: Vec<String> = path.split(':').map(String::from).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/bin", "/usr/local/sbin"].map(String::from));
    dirs.iter().map(|d| Path::new(d).join(bin)).find(|p| p.exists())
}
