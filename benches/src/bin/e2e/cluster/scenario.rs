//! The cluster benchmark's processes, all on loopback in this namespace:
//! the mock API server (`kube-mock`), the counting BGP receiver
//! (`bgp-sink --events`), `mooring speaker` / `mooring controller` with a
//! kubeconfig naming the mock; and the mock's control requests (a small
//! HTTP/1.1 client: one request per connection).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mooring_lab::Proc;
use serde_json::Value;

use super::report::Sizes;
use crate::common::Bins;

/// A process we started, its output in `dir/<name>.log`; killed on drop.
pub struct Running {
    child: Child,
    pub proc: Proc,
}

impl Running {
    pub fn start(dir: &Path, name: &str, program: &Path, args: &[String], env: &[(&str, String)]) -> Running {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        let proc = Proc { pid: child.id() as i32, name: name.into(), log };
        Running { child, proc }
    }

    pub fn pid(&self) -> i32 {
        self.proc.pid
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        self.proc.signal(libc::SIGTERM);
        let t = std::time::Instant::now();
        while t.elapsed() < grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// The mock API server's binary, next to the others.
pub fn kube_mock(bins: &Bins) -> PathBuf {
    bins.sink.with_file_name("kube-mock")
}

/// A free TCP port on loopback (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The mock API server with the synthetic cluster.
pub struct Mock {
    _run: Running,
    pub addr: SocketAddr,
    pub json_bytes: u64,
}

impl Mock {
    pub fn start(bins: &Bins, dir: &Path, z: &Sizes, status: bool, peer_port: u16) -> Mock {
        let mut args: Vec<String> = [
            "--services",
            &z.services.to_string(),
            "--slices-per-service",
            &z.slices_per_service.to_string(),
            "--endpoints-per-slice",
            &z.endpoints_per_slice.to_string(),
            "--nodes",
            &z.nodes.to_string(),
            "--peer-port",
            &peer_port.to_string(),
        ]
        .map(String::from)
        .to_vec();
        if status {
            args.push("--status".into());
        }
        let name = if status { "kube-mock" } else { "kube-mock-controller" };
        let run = Running::start(dir, name, &kube_mock(bins), &args, &[]);
        let line = run.proc.wait_line("LISTENING", Duration::from_secs(120));
        let mut words = line.split_whitespace().skip(1);
        let addr = words.next().and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("kube-mock said {line:?}"));
        let json_bytes = words.find_map(|w| w.strip_prefix("json_bytes=")?.parse().ok()).unwrap_or(0);
        Mock { _run: run, addr, json_bytes }
    }

    /// A kubeconfig naming this server (plain HTTP, no credentials).
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let p = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster: {{server: \"http://{}\"}}\n\
             users:\n- name: mock\n  user: {{}}\ncontexts:\n- name: mock\n  context: {{cluster: mock, user: mock}}\n\
             current-context: mock\n",
            self.addr
        );
        std::fs::write(&p, text).expect("kubeconfig");
        p
    }

    /// One control request; panics unless it answers 200.
    pub fn request(&self, method: &str, path_query: &str, body: &str) -> Value {
        let mut s = TcpStream::connect(self.addr).unwrap_or_else(|e| panic!("kube-mock {}: {e}", self.addr));
        let _ = s.set_nodelay(true);
        s.set_read_timeout(Some(Duration::from_secs(600))).expect("timeout");
        let req = format!(
            "{method} {path_query} HTTP/1.1\r\nHost: mock\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("request");
        let mut out = vec![];
        s.read_to_end(&mut out).expect("response");
        let text = String::from_utf8_lossy(&out);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split_whitespace().nth(1).unwrap_or("");
        assert_eq!(status, "200", "kube-mock {method} {path_query}: {head}\n{body}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("kube-mock {path_query}: {e}: {body}"))
    }

    pub fn get(&self, path_query: &str) -> Value {
        self.request("GET", path_query, "")
    }

    /// Set `value` at `pointer` of the object at `path` (a MODIFIED event).
    pub fn set(&self, path: &str, pointer: &str, value: &Value) -> Value {
        self.request("POST", &format!("/mock/set?path={}&pointer={}", enc(path), enc(pointer)), &value.to_string())
    }

    pub fn create(&self, collection: &str, obj: &Value) -> Value {
        self.request("POST", &format!("/mock/create?path={}", enc(collection)), &obj.to_string())
    }

    /// The writes the clients made from the `from`-th on, and how many there are.
    pub fn writes(&self, from: usize) -> (Vec<String>, usize) {
        let v = self.get(&format!("/mock/writes?from={from}"));
        let w = v["writes"].as_array().into_iter().flatten().filter_map(|w| w.as_str().map(String::from)).collect();
        (w, v["next"].as_u64().unwrap_or(0) as usize)
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
