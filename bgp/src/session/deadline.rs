//! The one deadline a session sleeps until (its peer machine's
//! [`Peer::poll_timeout`](crate::fsm::peer::Peer::poll_timeout)), on a
//! Linux timerfd of its own.
//!
//! Why not tokio's timer: its wheel files a deadline more than 64 ms away
//! at a coarse level and wakes the runtime once at that level's slot (up
//! to ~64 ms early) to file it finer; and a timer registered while the
//! wheel holds no other writes the runtime's eventfd, so the next
//! `epoll_wait` returns at once. An idle session re-arms its deadline once
//! per KEEPALIVE: with tokio's timer that was three wake-ups where one
//! does. A timerfd is one epoll event at the deadline, and re-arming it
//! is one `timerfd_settime`, only when the deadline moves. Deadlines are
//! rounded up to a 4 ms grid, so that sessions due together wake once.
//!
//! If no timerfd can be had, tokio's timer does the job.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::time::Sleep;

/// A re-armable one-shot deadline.
#[allow(missing_debug_implementations)]
pub struct Deadline {
    clock: Clock,
    /// What the clock is armed for (`None`: disarmed, or fired).
    armed: Option<Instant>,
}

enum Clock {
    Fd(AsyncFd<OwnedFd>),
    Tokio(Pin<Box<Sleep>>),
}

impl Deadline {
    /// A disarmed deadline. Needs a tokio runtime with IO and time.
    pub fn new() -> Deadline {
        let clock = match timerfd() {
            Ok(fd) => Clock::Fd(fd),
            Err(e) => {
                tracing::debug!(error = %e, "no timerfd: session timers use tokio's");
                Clock::Tokio(Box::pin(tokio::time::sleep(Duration::ZERO)))
            }
        };
        Deadline { clock, armed: None }
    }

    /// What it is armed for.
    pub fn armed(&self) -> Option<Instant> {
        self.armed
    }

    /// Arm for `at` (`None`: disarm). Nothing is done when it is armed
    /// for `at` already.
    pub fn set(&mut self, at: Option<Instant>) {
        if at == self.armed {
            return;
        }
        self.armed = at;
        match &mut self.clock {
            Clock::Fd(fd) => {
                if let Err(e) = settime(fd.get_ref(), at) {
                    tracing::warn!(error = %e, "timerfd_settime failed");
                }
            }
            Clock::Tokio(sleep) => {
                if let Some(t) = at {
                    sleep.as_mut().reset(t.into());
                }
            }
        }
    }

    /// Wait until the armed deadline is reached (never, while disarmed);
    /// then it is disarmed. Cancel-safe.
    pub async fn wait(&mut self) {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        match &mut self.clock {
            Clock::Fd(fd) => loop {
                let Ok(mut ready) = fd.readable().await else {
                    return std::future::pending().await;
                };
                // The expiration count: reading it clears the readiness.
                match ready.try_io(|fd| read_expirations(fd.get_ref())) {
                    Ok(_) => {
                        // One-shot: not readable again until re-armed and
                        // expired (saves a read that would find nothing).
                        ready.clear_ready();
                        break;
                    }
                    // Re-armed since it became readable: not expired.
                    Err(_would_block) => continue,
                }
            },
            Clock::Tokio(sleep) => sleep.as_mut().await,
        }
        self.armed = None;
    }
}

impl Default for Deadline {
    fn default() -> Self {
        Deadline::new()
    }
}

fn timerfd() -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: plain syscall; the fd returned is ours alone.
    let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh, valid fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an OwnedFd returns the one fd it owns, open until it is dropped
    // with the AsyncFd.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.map_err(io::Error::from)
}

/// Deadlines are rounded up to this grid of the monotonic clock, so that
/// the timers of a speaker's sessions that fall due within it wake the
/// process once (as tokio's 1 ms wheel did), not once each.
pub const GRID_NS: u64 = 4_000_000;

/// Arm `fd` for `at` (`None`: disarm), as an absolute time of
/// CLOCK_MONOTONIC (the clock of [`Instant`]) rounded up to [`GRID_NS`].
fn settime(fd: &OwnedFd, at: Option<Instant>) -> io::Result<()> {
    let abs_ns = match at {
        None => 0,
        Some(at) => {
            // `now` is read first: the clock read after it is no earlier,
            // so the expiry is no earlier than `at`.
            let d = at.saturating_duration_since(Instant::now());
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: a valid clock id and a pointer to a timespec.
            if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let now_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            let d_ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 2).min(u64::MAX / 2);
            // Never zero: that would disarm.
            round_up(now_ns.saturating_add(d_ns), GRID_NS).max(1)
        }
    };
    let spec = libc::itimerspec {
        it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
        it_value: libc::timespec {
            tv_sec: (abs_ns / 1_000_000_000).min(i64::MAX as u64) as libc::time_t,
            tv_nsec: (abs_ns % 1_000_000_000) as libc::c_long,
        },
    };
    let flags = if at.is_some() { libc::TFD_TIMER_ABSTIME } else { 0 };
    // SAFETY: a valid timerfd and a properly initialised itimerspec.
    let r = unsafe { libc::timerfd_settime(fd.as_raw_fd(), flags, &spec, std::ptr::null_mut()) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `ns` rounded up to a multiple of `grid`.
fn round_up(ns: u64, grid: u64) -> u64 {
    ns.div_ceil(grid).saturating_mul(grid)
}

fn read_expirations(fd: &OwnedFd) -> io::Result<u64> {
    let mut n = [0u8; 8];
    // SAFETY: a valid fd and an 8-octet buffer, as timerfd reads need.
    let r = unsafe { libc::read(fd.as_raw_fd(), n.as_mut_ptr() as *mut libc::c_void, n.len()) };
    if r == 8 {
        Ok(u64::from_ne_bytes(n))
    } else if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short timerfd read"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Deadlines in the past or a few milliseconds ahead: the tests check
    // what fires and what does not, not how long it takes.

    #[tokio::test]
    async fn a_deadline_reached_fires_once_and_disarms() {
        let mut d = Deadline::new();
        assert!(matches!(d.clock, Clock::Fd(_)), "Linux has timerfd");
        d.set(Some(Instant::now()));
        d.wait().await;
        assert_eq!(d.armed(), None);
        let again = tokio::time::timeout(Duration::from_millis(20), d.wait()).await;
        assert!(again.is_err(), "disarmed: it does not fire again");
    }

    #[tokio::test]
    async fn re_arming_later_replaces_the_earlier_deadline() {
        let mut d = Deadline::new();
        let now = Instant::now();
        d.set(Some(now));
        // Expired in the kernel already, but moved an hour on before it was read.
        std::thread::sleep(Duration::from_millis(2));
        d.set(Some(now + Duration::from_secs(3600)));
        let early = tokio::time::timeout(Duration::from_millis(20), d.wait()).await;
        assert!(early.is_err(), "the moved deadline is not reached");
        assert_eq!(d.armed(), Some(now + Duration::from_secs(3600)));
        d.set(Some(Instant::now()));
        d.wait().await;
    }

    #[tokio::test]
    async fn disarmed_never_fires() {
        let mut d = Deadline::new();
        d.set(Some(Instant::now() + Duration::from_millis(1)));
        d.set(None);
        let r = tokio::time::timeout(Duration::from_millis(20), d.wait()).await;
        assert!(r.is_err());
    }

    #[test]
    fn deadlines_round_up_to_the_grid() {
        assert_eq!(round_up(0, GRID_NS), 0);
        assert_eq!(round_up(1, GRID_NS), GRID_NS);
        assert_eq!(round_up(GRID_NS, GRID_NS), GRID_NS);
        assert_eq!(round_up(GRID_NS + 1, GRID_NS), 2 * GRID_NS);
        // Two sessions' deadlines 1 ms apart in one grid step: one wake-up.
        let a = 7 * GRID_NS + 500_000;
        assert_eq!(round_up(a, GRID_NS), round_up(a + 1_000_000, GRID_NS));
    }

    #[tokio::test]
    async fn the_same_deadline_is_not_re_armed() {
        let mut d = Deadline::new();
        let at = Instant::now();
        d.set(Some(at));
        d.wait().await;
        // Fired: setting the same instant again arms it again (it is due).
        d.set(Some(at));
        assert_eq!(d.armed(), Some(at));
        d.wait().await;
    }
}
