//! What the e2e benchmarks share: our binaries, the speakers under test,
//! the AS numbers and prefixes, timeouts that grow with the table, and the
//! statistics and number formats of the reports.

use std::path::PathBuf;
use std::time::Duration;

use mooring_lab::Daemon;

/// The AS of the speaker under test.
pub const SPEAKER_AS: u32 = 64513;
/// The AS of the receiver / router.
pub const RECEIVER_AS: u32 = 64512;

/// The speakers a benchmark compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum SpeakerKind {
    Mooring,
    #[value(name = "gobgp")]
    GoBgp,
    Bird,
}

impl SpeakerKind {
    pub fn daemon(self) -> Daemon {
        match self {
            SpeakerKind::Mooring => Daemon::Mooring,
            SpeakerKind::GoBgp => Daemon::GoBgp,
            SpeakerKind::Bird => Daemon::Bird,
        }
    }

    pub fn name(self) -> &'static str {
        self.daemon().name()
    }
}

/// Paths of our own binaries (next to this one, all built by e2e.sh).
#[derive(Debug, Clone)]
pub struct Bins {
    pub mooring: PathBuf,
    /// The counting receiver.
    pub sink: PathBuf,
    /// The receive benchmark's Mooring receiver.
    pub recv: PathBuf,
    /// The receive benchmark's replaying sender.
    pub replay: PathBuf,
}

impl Bins {
    pub fn here() -> Bins {
        let exe = std::env::current_exe().ok();
        let dir = exe.as_ref().and_then(|p| p.parent()).map(PathBuf::from).unwrap_or_default();
        Bins {
            mooring: dir.join("mooring"),
            sink: dir.join("bgp-sink"),
            recv: dir.join("bgp-recv"),
            replay: dir.join("bgp-replay"),
        }
    }

    pub fn all(&self) -> [&PathBuf; 4] {
        [&self.mooring, &self.sink, &self.recv, &self.replay]
    }
}

/// The i-th benchmark prefix: 10.0.0.0 + i, as a /32.
pub fn prefix(i: u32) -> String {
    let a = std::net::Ipv4Addr::from(0x0A00_0000 + i);
    format!("{a}/32")
}

/// The first `n` benchmark prefixes.
pub fn prefixes(n: u32) -> Vec<String> {
    (0..n).map(prefix).collect()
}

/// Something to wait for proportional to the table size.
pub fn scaled(n: u32, base_secs: u64, per_100k_secs: u64) -> Duration {
    Duration::from_secs(base_secs + per_100k_secs * (n as u64).div_ceil(100_000))
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The q-quantile (nearest rank) of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// 10000 → `10k`, 1000000 → `1M`.
pub fn human(n: u32) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1000 && n % 1000 == 0 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

/// Prefixes per second, in k/s or M/s.
pub fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else {
        format!("{:.0} k/s", r / 1e3)
    }
}
