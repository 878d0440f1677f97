//! Process figures from /proc: CPU time and memory of a process by pid.
//! A figure that cannot be read (the process is gone) panics: a missing
//! reading is not a zero.

use std::collections::HashMap;

/// A CPU-time sample of one process.
#[derive(Debug, Clone, Default)]
pub struct Cpu {
    /// utime+stime+cutime+cstime in clock ticks: every thread, exited ones too.
    ticks: u64,
    /// On-CPU ns of each live thread (schedstat).
    threads: HashMap<i32, u64>,
}

/// `/proc/PID/<file>`, which must be readable.
fn read(pid: i32, file: &str) -> String {
    let p = format!("/proc/{pid}/{file}");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e} (the process is gone?)"))
}

pub fn cpu(pid: i32) -> Cpu {
    let stat = read(pid, "stat");
    // Fields after the command's closing parenthesis start at field 3
    // (state); utime is field 14.
    let ticks = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().skip(11).take(4).filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    let mut threads = HashMap::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<i32>().ok()) else { continue };
            let ns = std::fs::read_to_string(e.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
            if let Some(ns) = ns {
                threads.insert(tid, ns);
            }
        }
    }
    Cpu { ticks, threads }
}

/// CPU seconds between two samples: the threads' ns when they account for
/// the tick count (within a tick), else the ticks (a thread exited meanwhile).
pub fn cpu_between(a: &Cpu, b: &Cpu) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let by_ticks = b.ticks.saturating_sub(a.ticks) as f64 / hz;
    let ns: u64 = b.threads.iter().map(|(tid, v)| v.saturating_sub(*a.threads.get(tid).unwrap_or(&0))).sum();
    let by_threads = ns as f64 / 1e9;
    if by_threads + 1.0 / hz >= by_ticks {
        by_threads
    } else {
        by_ticks
    }
}

pub fn cpu_all(pids: &[i32]) -> Vec<Cpu> {
    pids.iter().map(|&p| cpu(p)).collect()
}

pub fn cpu_sum(a: &[Cpu], b: &[Cpu]) -> f64 {
    a.iter().zip(b).map(|(a, b)| cpu_between(a, b)).sum()
}

/// CPU seconds (user + system, every thread) a process has used so far.
pub fn cpu_secs(pid: i32) -> f64 {
    cpu_between(&Cpu::default(), &cpu(pid))
}

/// Memory of a process, KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    pub rss: u64,
    pub hwm: u64,
    pub pss: u64,
    /// Private memory (RssAnon): what the process holds beyond the pages
    /// of its program file, which processes of one program share.
    pub anon: u64,
}

fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn mem(pid: i32) -> Mem {
    let (s, r) = (read(pid, "status"), read(pid, "smaps_rollup"));
    Mem { rss: field(&s, "VmRSS:"), hwm: field(&s, "VmHWM:"), pss: field(&r, "Pss:"), anon: field(&s, "RssAnon:") }
}

/// Reset VmHWM to the current RSS.
pub fn reset_hwm(pid: i32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// KiB as MiB.
pub fn mib(kib: f64) -> f64 {
    kib / 1024.0
}
