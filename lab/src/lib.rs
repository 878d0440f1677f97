//! The network-namespace lab shared by the lab tests (`integration/`)
//! and the end-to-end benchmarks (`benches/`): namespaces and links
//! ([`Lab`]), processes started in them ([`Proc`]), nftables, the kernel
//! FIB and its changes, /proc figures, and one way to start each routing daemon —
//! Mooring, GoBGP, BIRD, FRR — from one [`Config`] ([`Daemon::start`]).
//! What a test asserts or a benchmark measures is not here.
//!
//! Every lab has an id X, unique among the tests and benchmarks (and
//! locked machine-wide while the lab lives): namespaces `mitX-*`, link
//! subnets 198.18.X.0/24 (router `.1`) and 2001:db8:ffff:ffXX::/64,
//! client 198.19.X.0/24, FRR instance `mitX`, GoBGP API port 50100+X.
//! Dropping the lab (also while panicking, and on Ctrl-C once
//! [`install_interrupt_handlers`] ran) kills every process it started by
//! PID (never one it has already reaped), deletes its namespaces and
//! removes its temp dir (kept with `MBENCH_KEEP_LOGS`); when panicking it
//! prints every process's output first.

mod cmd;
mod daemons;
mod kernel;
mod lab;
mod nft;
mod proc;
pub mod procfs;
mod require;
mod route_monitor;

pub use cmd::{
    check_interrupted, epoch, install_interrupt_handlers, interrupted, poll, poll_every, run, run_ok, sh, sleep, tail,
};
pub use daemons::{
    edge_frr, mooring_bin, set_mooring_bin, write_mrt, Attrs, Bfd, Bird, Config, Daemon, Frr, GoBgp, Mooring, Neighbor,
    Running,
};
pub use kernel::{fib_nexthops, fib_weights};
pub use lab::{Lab, Node};
pub use proc::{Follow, Proc};
pub use require::{ci, find_program, lab_unavailable, require_lab, skip_or_fail, REQUIRED};
pub use route_monitor::{parse_record, parse_ts, FibEvent, RouteMonitor};
