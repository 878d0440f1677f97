//! The ranges the speaker accepts for what a user configures, and one check
//! for each: AS numbers, the hold time and keepalive interval a session
//! proposes (RFC 4271 sections 4.2 and 10), the graceful restart time
//! (RFC 4724), BFD intervals and detection multiplier (RFC 5880). Every front end goes through these checks (the CRD
//! parse layer of `mooring-crds`, `mooring announce`), and the CRDs' schema
//! bounds and CEL rules are generated from these constants. Defaults are not
//! here: they belong to [`crate::speaker::PeerConfig`] and [`BfdConfig`].

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::bfd::BfdConfig;

/// AS numbers a session may use: 0 is reserved (RFC 7607), and so is
/// 4294967295 (RFC 7300).
pub const ASNS: RangeInclusive<u32> = 1..=4_294_967_294;
/// The shortest hold time other than 0, in seconds (RFC 4271 section 4.2).
pub const MIN_HOLD_TIME: u64 = 3;
/// The longest hold time, in seconds: OPEN carries it in 16 bits.
pub const MAX_HOLD_TIME: u64 = u16::MAX as u64;
/// The longest keepalive interval, in seconds: a third of the longest hold time.
pub const MAX_KEEPALIVE: u64 = MAX_HOLD_TIME / 3;
/// Graceful restart times, in seconds: the capability carries 12 bits, and a
/// restart time of 0 would ask peers to keep nothing.
pub const RESTART_TIMES: RangeInclusive<u16> = 1..=4095;
/// BFD transmit and receive intervals accepted.
pub const BFD_INTERVALS: RangeInclusive<Duration> = Duration::from_millis(10)..=Duration::from_secs(60);
/// BFD detection multipliers: any but 0 (RFC 5880 section 6.8.1).
pub const BFD_MULTIPLIERS: RangeInclusive<u8> = 1..=u8::MAX;

/// A setting outside what the speaker accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("{0} is not a usable AS number (1..=4294967294)")]
    Asn(u32),
    #[error("hold time {0} s: must be 0 or 3..=65535 s")]
    HoldTime(u64),
    #[error("keepalive {0} s: must be at most 21845 s")]
    KeepaliveTooLong(u64),
    #[error(
        "keepalive {keepalive} s: must be above 0 and below the hold time ({hold} s), or 0 when the hold time is 0"
    )]
    KeepaliveVsHold { keepalive: u64, hold: u64 },
    #[error("restart time {0} s: must be 1..=4095 s")]
    RestartTime(u16),
    #[error("BFD interval {0:?}: must be 10ms..=60s")]
    BfdInterval(Duration),
    #[error("BFD multiplier 0: must be 1..=255")]
    BfdMultiplier,
}

/// `asn`, if a session may use it.
pub fn check_asn(asn: u32) -> Result<u32, LimitError> {
    if ASNS.contains(&asn) {
        Ok(asn)
    } else {
        Err(LimitError::Asn(asn))
    }
}

/// `seconds`, if graceful restart may advertise it as the restart time.
pub fn check_restart_time(seconds: u16) -> Result<u16, LimitError> {
    if RESTART_TIMES.contains(&seconds) {
        Ok(seconds)
    } else {
        Err(LimitError::RestartTime(seconds))
    }
}

/// `seconds`, if a session may propose it as its hold time: 0 (no keepalives, no
/// hold timer), or 3..=65535 s.
pub fn check_hold_time(seconds: u64) -> Result<u64, LimitError> {
    if seconds == 0 || (MIN_HOLD_TIME..=MAX_HOLD_TIME).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(LimitError::HoldTime(seconds))
    }
}

/// `seconds`, if it may be a keepalive interval: at most 21845 s.
pub fn check_keepalive(seconds: u64) -> Result<u64, LimitError> {
    if seconds <= MAX_KEEPALIVE {
        Ok(seconds)
    } else {
        Err(LimitError::KeepaliveTooLong(seconds))
    }
}

/// `keepalive`, if it goes with `hold_time`: above 0 and below it, or 0 when it is 0.
pub fn check_keepalive_vs_hold(keepalive: u64, hold_time: u64) -> Result<u64, LimitError> {
    let ok = if hold_time == 0 { keepalive == 0 } else { keepalive > 0 && keepalive < hold_time };
    if ok {
        Ok(keepalive)
    } else {
        Err(LimitError::KeepaliveVsHold { keepalive, hold: hold_time })
    }
}

/// A hold time and keepalive interval that a session may propose, in seconds
/// as OPEN carries them. Made only by [`Timers::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    hold_time: u16,
    keepalive: Option<u16>,
}

impl Timers {
    /// Checks `hold_time` ([`check_hold_time`]) and `keepalive` ([`check_keepalive`],
    /// [`check_keepalive_vs_hold`]). No keepalive: a third of the negotiated hold time.
    /// Each rule is checked on its own, so every broken one is reported.
    pub fn new(hold_time: u64, keepalive: Option<u64>) -> Result<Timers, Vec<LimitError>> {
        let mut errors: Vec<LimitError> = check_hold_time(hold_time).err().into_iter().collect();
        if let Some(ka) = keepalive {
            errors.extend(check_keepalive(ka).err());
            errors.extend(check_keepalive_vs_hold(ka, hold_time).err());
        }
        match (u16::try_from(hold_time), keepalive.map(u16::try_from).transpose()) {
            (Ok(hold_time), Ok(keepalive)) if errors.is_empty() => Ok(Timers { hold_time, keepalive }),
            _ => Err(errors),
        }
    }

    /// The hold time, in seconds.
    pub fn hold_time(self) -> u16 {
        self.hold_time
    }

    /// The keepalive interval in seconds; `None`: a third of the negotiated hold time.
    pub fn keepalive(self) -> Option<u16> {
        self.keepalive
    }
}

/// `interval`, if BFD may use it as a transmit or receive interval.
pub fn check_bfd_interval(interval: Duration) -> Result<Duration, LimitError> {
    if BFD_INTERVALS.contains(&interval) {
        Ok(interval)
    } else {
        Err(LimitError::BfdInterval(interval))
    }
}

/// `multiplier`, if BFD may use it.
pub fn check_bfd_multiplier(multiplier: u8) -> Result<u8, LimitError> {
    if BFD_MULTIPLIERS.contains(&multiplier) {
        Ok(multiplier)
    } else {
        Err(LimitError::BfdMultiplier)
    }
}

/// A BFD configuration from its three settings, every one checked.
pub fn bfd_config(min_tx: Duration, min_rx: Duration, multiplier: u8) -> Result<BfdConfig, Vec<LimitError>> {
    match (check_bfd_interval(min_tx), check_bfd_interval(min_rx), check_bfd_multiplier(multiplier)) {
        (Ok(min_tx), Ok(min_rx), Ok(multiplier)) => Ok(BfdConfig { min_tx, min_rx, multiplier }),
        (tx, rx, m) => Err([tx.err(), rx.err(), m.err()].into_iter().flatten().collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asns() {
        assert_eq!(check_asn(1), Ok(1));
        assert_eq!(check_asn(4_294_967_294), Ok(4_294_967_294));
        assert_eq!(check_asn(0), Err(LimitError::Asn(0)));
        assert_eq!(check_asn(u32::MAX), Err(LimitError::Asn(u32::MAX)));
    }

    #[test]
    fn hold_time_is_zero_or_at_least_three_seconds() {
        for ok in [0, 3, 90, 65535] {
            assert_eq!(Timers::new(ok, None).map(Timers::hold_time), Ok(ok as u16), "{ok}");
        }
        for bad in [1, 2, 65536, u64::MAX] {
            assert_eq!(Timers::new(bad, None), Err(vec![LimitError::HoldTime(bad)]), "{bad}");
        }
    }

    #[test]
    fn keepalive_below_hold_time() {
        let t = Timers::new(90, Some(30)).unwrap();
        assert_eq!((t.hold_time(), t.keepalive()), (90, Some(30)));
        assert_eq!(Timers::new(0, Some(0)).unwrap().keepalive(), Some(0));
        assert_eq!(Timers::new(3, Some(2)).unwrap().keepalive(), Some(2));
        let vs = |keepalive, hold| LimitError::KeepaliveVsHold { keepalive, hold };
        assert_eq!(Timers::new(90, Some(90)), Err(vec![vs(90, 90)]));
        assert_eq!(Timers::new(90, Some(0)), Err(vec![vs(0, 90)]));
        assert_eq!(Timers::new(0, Some(10)), Err(vec![vs(10, 0)]));
        assert_eq!(Timers::new(65535, Some(21846)), Err(vec![LimitError::KeepaliveTooLong(21846)]));
        // Independent rules: a keepalive too long and not below the hold time.
        assert_eq!(Timers::new(90, Some(30000)), Err(vec![LimitError::KeepaliveTooLong(30000), vs(30000, 90)]));
        // The keepalive rule holds against a hold time that is itself wrong.
        assert_eq!(Timers::new(2, Some(1)), Err(vec![LimitError::HoldTime(2)]));
    }

    #[test]
    fn restart_times() {
        assert_eq!(check_restart_time(1), Ok(1));
        assert_eq!(check_restart_time(4095), Ok(4095));
        assert_eq!(check_restart_time(0), Err(LimitError::RestartTime(0)));
        assert_eq!(check_restart_time(4096), Err(LimitError::RestartTime(4096)));
    }

    #[test]
    fn bfd() {
        let ms = Duration::from_millis;
        assert_eq!(
            bfd_config(ms(10), ms(60_000), 1),
            Ok(BfdConfig { min_tx: ms(10), min_rx: ms(60_000), multiplier: 1 })
        );
        assert_eq!(
            bfd_config(ms(9), ms(60_001), 0),
            Err(vec![LimitError::BfdInterval(ms(9)), LimitError::BfdInterval(ms(60_001)), LimitError::BfdMultiplier])
        );
    }
}
