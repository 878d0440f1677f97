//! A limit on how often one kind of log line is written, for lines a peer
//! (or anyone who can open a TCP connection) can make us write at will:
//! refused connections, collisions, ignored UPDATEs. Sans IO: the caller
//! gives the time.

use std::time::{Duration, Instant};

/// At most `burst` lines per `window`; the first line let through after
/// some were held back says how many (see [`LogLimit::allow`]).
#[derive(Debug, Clone)]
pub struct LogLimit {
    burst: u32,
    window: Duration,
    window_start: Option<Instant>,
    in_window: u32,
    suppressed: u64,
}

impl LogLimit {
    pub const fn new(burst: u32, window: Duration) -> LogLimit {
        LogLimit { burst, window, window_start: None, in_window: 0, suppressed: 0 }
    }

    /// Whether to write a line now: `Some(n)`, `n` being how many were
    /// held back since the last line written, or `None` to hold this one
    /// back.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let start = *self.window_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= self.window {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window < self.burst {
            self.in_window += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// The suffix for a line let through by [`LogLimit::allow`]: empty, or
/// how many similar lines were held back before it.
pub fn suppressed_note(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} similar lines suppressed)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_a_burst_through_per_window_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut l = LogLimit::new(3, Duration::from_secs(10));
        let first: Vec<Option<u64>> = (0..5).map(|i| l.allow(t0 + Duration::from_millis(i))).collect();
        assert_eq!(first, vec![Some(0), Some(0), Some(0), None, None]);
        // Next window: the first line says two were held back.
        assert_eq!(l.allow(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(l.allow(t0 + Duration::from_secs(11)), Some(0));
        assert_eq!(suppressed_note(2), " (2 similar lines suppressed)");
        assert_eq!(suppressed_note(0), "");
    }

    #[test]
    fn three_thousand_events_in_a_second_write_a_few_lines() {
        let t0 = Instant::now();
        let mut l = LogLimit::new(10, Duration::from_secs(60));
        let written = (0..3000).filter(|i| l.allow(t0 + Duration::from_micros(*i * 300)).is_some()).count();
        assert_eq!(written, 10);
    }
}
