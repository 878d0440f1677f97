//! A process the lab started ([`Proc`]: pid, name, output file) and what
//! can be read of it: its output, new output lines as they come
//! ([`Follow`]), its memory and file descriptors. Starting and stopping
//! processes is the lab's (lab.rs).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cmd::{check_interrupted, tail};

/// A process started by the lab (in a namespace), with its output file.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub name: String,
    /// Its stdout and stderr (several runs of one name append to one file).
    pub log: PathBuf,
}

impl Proc {
    /// Everything the process wrote so far (stdout and stderr). Panics
    /// when the log cannot be read: an unreadable log is not an empty one.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_else(|e| panic!("{}: cannot read its output {}: {e}", self.name, self.log.display()))
    }

    /// Lines of the output containing `pat`.
    pub fn lines_with(&self, pat: &str) -> Vec<String> {
        self.output().lines().filter(|l| l.contains(pat)).map(String::from).collect()
    }

    /// How many lines of the output contain `pat`.
    pub fn count(&self, pat: &str) -> usize {
        self.lines_with(pat).len()
    }

    /// Wait until the output has at least `n` lines containing `pat`.
    pub fn wait_count(&self, pat: &str, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.count(pat) < n {
            check_interrupted();
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

    /// kill(2) the process. Only for a process still running: the lab
    /// forgets the ones it has reaped (see `Lab::stop`).
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on a pid we started and have not reaped.
        unsafe { libc::kill(self.pid, sig) };
    }

    /// Resident set size in KiB (VmRSS); panics when /proc cannot tell.
    pub fn rss_kib(&self) -> u64 {
        crate::procfs::mem(self.pid).rss
    }

    /// Number of open file descriptors; panics when /proc cannot tell.
    pub fn fd_count(&self) -> usize {
        let dir = format!("/proc/{}/fd", self.pid);
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {dir}: {e}", self.name)).count()
    }

    /// Follow the output from its current end on.
    pub fn follow(&self) -> Follow {
        let mut f = Follow::open(self);
        f.skip();
        f
    }
}

/// The complete new lines of a process's output file as it grows.
pub struct Follow {
    f: File,
    /// Text after the last complete line.
    partial: String,
    /// The last read found nothing new.
    idle: bool,
}

impl Follow {
    /// Follow `p`'s output from its start.
    pub fn open(p: &Proc) -> Follow {
        let f = File::open(&p.log).unwrap_or_else(|e| panic!("{}: {e}", p.log.display()));
        Follow { f, partial: String::new(), idle: true }
    }

    /// Forget everything written so far.
    pub fn skip(&mut self) {
        let _ = self.f.seek(SeekFrom::End(0));
        self.partial.clear();
        self.idle = true;
    }

    /// The lines completed since the last call.
    pub fn lines(&mut self) -> Vec<String> {
        let mut s = String::new();
        let _ = self.f.read_to_string(&mut s);
        self.idle = s.is_empty();
        self.partial.push_str(&s);
        let Some(end) = self.partial.rfind('\n') else { return vec![] };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        done.lines().map(String::from).collect()
    }

    /// The last [`Follow::lines`] read nothing new and no line is half written.
    pub fn idle(&self) -> bool {
        self.idle && self.partial.is_empty()
    }
}
