//! The admin server of a real `mooring standalone` process with a low
//! file-descriptor limit: connections beyond the limit make `accept()`
//! fail with EMFILE; the server must back off (not spin a core) and answer
//! `/healthz` again once descriptors are free.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process runs");
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn healthz(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn accept_failures_back_off_and_the_server_recovers() {
    let dir = std::env::temp_dir().join(format!("mooring-admin-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let bin = env!("CARGO_BIN_EXE_mooring");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 40 && exec {bin} standalone --node n1 --config {} --metrics-addr {addr}",
            dir.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Kill(child);
    let start = Instant::now();
    while healthz(addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "the admin server never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Hold more connections than the process has descriptors for.
    let held: Vec<TcpStream> = (0..60).filter_map(|_| TcpStream::connect(addr).ok()).collect();
    assert!(held.len() >= 40, "the backlog takes the connections");
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_seconds(child.0.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_seconds(child.0.id()) - before;
    eprintln!("CPU while accept() fails: {used:.3} s in 2 s");
    // Measured: 0.00 s backing off; 1.0 s spinning on accept() (with the
    // other core busy), up to 2 s on an idle machine.
    assert!(used < 0.25, "{used:.2} s of CPU in 2 s while accept() fails");
    drop(held);
    let start = Instant::now();
    loop {
        match healthz(addr) {
            Ok(r) if r.starts_with("HTTP/1.1 200") => break,
            r => assert!(start.elapsed() < Duration::from_secs(10), "no recovery: {r:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(dir);
}
