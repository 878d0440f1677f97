//! The state directory: addresses assigned to Services, kept across
//! restarts so a restart never moves a VIP, and the graceful-restart
//! marker.
//!
//! Writes are atomic (temp file, fsync, rename, fsync of the directory)
//! and the version they replace is kept as `allocations.json.prev`. A state
//! file that cannot be read (garbage, empty, half-written, wrong shape, a
//! directory) never stops the daemon: it is moved aside as
//! `allocations.json.corrupt-<unix time>` with an ERROR, and the node starts
//! from the previous version — or, with none, allocates afresh and says so.
//!
//! Also kept (same rules): the last good version of every custom resource
//! (`last-good.json`), so an object whose current version is invalid keeps
//! its last good version across a restart too.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

pub use crate::model::last_good::Saved;

const FILE: &str = "allocations.json";
const PREVIOUS: &str = "allocations.json.prev";
const LAST_GOOD: &str = "last-good.json";
/// Written on a graceful stop, read (and removed) on the next start.
const RESTART_MARKER: &str = "graceful-restart";

/// Addresses held, by Service (`namespace/name`).
pub type Held = BTreeMap<String, Vec<IpAddr>>;

/// The graceful-restart marker's content.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    /// When the node stopped, seconds since the Unix epoch.
    stopped_at: u64,
}

#[derive(Debug)]
pub struct StateStore {
    dir: Option<PathBuf>,
    held: Mutex<Held>,
}

/// Read a state file: `Ok(None)` when there is none.
fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).context("not a state file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context("cannot be read"),
    }
}

/// Move a file (or directory) that cannot be used out of the way.
fn move_aside(path: &Path) -> PathBuf {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{secs}"));
    let aside = PathBuf::from(aside);
    if let Err(e) = std::fs::rename(path, &aside) {
        error!("cannot move {} aside: {e}", path.display());
    }
    aside
}

/// Write `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(())
}

impl StateStore {
    /// Open (and create) the directory; without one, state lives in memory.
    /// Only a directory that cannot be created is an error.
    pub fn open(dir: Option<&Path>) -> Result<StateStore> {
        let Some(dir) = dir else { return Ok(StateStore { dir: None, held: Mutex::new(Held::new()) }) };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let held = Self::recover(dir);
        Ok(StateStore { dir: Some(dir.to_path_buf()), held: Mutex::new(held) })
    }

    /// What a state directory holds, read without changing anything (for `mooring plan`):
    /// the held addresses (the state file, else its previous version) and the last good
    /// custom resources, with a note for each file that cannot be read.
    pub fn inspect(dir: &Path) -> (Held, Option<Saved>, Vec<String>) {
        let mut notes = vec![];
        let mut held = None;
        for name in [FILE, PREVIOUS] {
            let path = dir.join(name);
            match read::<Held>(&path) {
                Ok(Some(h)) => {
                    held = Some(h);
                    break;
                }
                Ok(None) => {}
                Err(e) => notes.push(format!("{}: {e:#}", path.display())),
            }
        }
        let saved = match read::<Saved>(&dir.join(LAST_GOOD)) {
            Ok(s) => s,
            Err(e) => {
                notes.push(format!("{}: {e:#}", dir.join(LAST_GOOD).display()));
                None
            }
        };
        (held.unwrap_or_default(), saved, notes)
    }

    /// The held addresses from the state file, else from its previous version.
    fn recover(dir: &Path) -> Held {
        let path = dir.join(FILE);
        let lost = match read(&path) {
            Ok(Some(held)) => return held,
            Ok(None) => false,
            Err(e) => {
                let aside = move_aside(&path);
                error!("state file {}: {e:#}; moved aside to {}", path.display(), aside.display());
                true
            }
        };
        let prev = dir.join(PREVIOUS);
        match read::<Held>(&prev) {
            Ok(Some(held)) => {
                warn!("starting from the previous state file {} ({} Services)", prev.display(), held.len());
                return held;
            }
            Ok(None) if !lost => info!("no state file yet in {}", dir.display()),
            Ok(None) => error!("no previous state file: addresses are allocated afresh"),
            Err(e) => {
                let aside = move_aside(&prev);
                error!(
                    "previous state file {}: {e:#}; moved aside to {}; addresses are allocated afresh",
                    prev.display(),
                    aside.display()
                );
            }
        }
        Held::new()
    }

    /// The saved document `name` (`None` without a state directory, or
    /// when there is none yet); one that cannot be read is moved aside.
    fn load_doc<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        let path = self.dir.as_ref()?.join(name);
        match read(&path) {
            Ok(doc) => doc,
            Err(e) => {
                let aside = move_aside(&path);
                error!("state file {}: {e:#}; moved aside to {}", path.display(), aside.display());
                None
            }
        }
    }

    /// The last good custom resources saved by the previous run.
    pub fn last_good(&self) -> Option<Saved> {
        self.load_doc(LAST_GOOD)
    }

    /// Save the last good custom resources (atomically).
    pub fn set_last_good(&self, saved: &Saved) -> Result<()> {
        match &self.dir {
            Some(dir) => write_atomic(&dir.join(LAST_GOOD), &serde_json::to_vec(saved)?),
            None => Ok(()),
        }
    }

    fn marker(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(RESTART_MARKER))
    }

    /// Note that we stopped for a graceful restart (routers keep our routes).
    pub fn mark_graceful_stop(&self) -> Result<()> {
        if let Some(m) = self.marker() {
            let stopped_at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            write_atomic(&m, &serde_json::to_vec(&Marker { stopped_at })?)?;
        }
        Ok(())
    }

    /// Whether the previous run stopped for a graceful restart no longer
    /// than `within` ago (then our OPEN carries the Restart State bit).
    /// The marker is consumed; one that cannot be read is moved aside (and
    /// the restart is not graceful).
    pub fn take_graceful_restart(&self, within: Duration) -> bool {
        let Some(m) = self.marker() else { return false };
        let marker = match std::fs::read(&m) {
            Ok(bytes) => serde_json::from_slice::<Marker>(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(e) => {
                let aside = move_aside(&m);
                error!("graceful-restart marker {}: {e}; moved aside to {}", m.display(), aside.display());
                return false;
            }
        };
        match marker {
            Ok(Marker { stopped_at }) => {
                let _ = std::fs::remove_file(&m);
                let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                now.checked_sub(stopped_at).is_some_and(|age| age <= within.as_secs())
            }
            Err(e) => {
                let aside = move_aside(&m);
                error!(
                    "graceful-restart marker {}: not a marker ({e}); moved aside to {}",
                    m.display(),
                    aside.display()
                );
                false
            }
        }
    }

    pub fn get(&self) -> Held {
        self.held.lock().expect("state lock").clone()
    }

    /// Replace the state when it changed; the file is written atomically and
    /// the version it replaces is kept as the previous one.
    pub fn set(&self, held: Held) -> Result<()> {
        let mut cur = self.held.lock().expect("state lock");
        if *cur == held {
            return Ok(());
        }
        if let Some(dir) = &self.dir {
            let path = dir.join(FILE);
            if path.is_file() {
                std::fs::rename(&path, dir.join(PREVIOUS)).with_context(|| format!("keeping {}", path.display()))?;
            }
            write_atomic(&path, &serde_json::to_vec_pretty(&held)?)?;
        }
        *cur = held;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mooring-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn held(ip: &str) -> Held {
        Held::from([("shop/web".to_string(), vec![ip.parse().unwrap()])])
    }

    fn corrupt_files(d: &Path) -> usize {
        std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .count()
    }

    #[test]
    fn inspect_reads_without_changing_anything() {
        let d = dir("inspect");
        let s = StateStore::open(Some(&d)).unwrap();
        s.set(held("203.0.113.10")).unwrap();
        s.set(held("203.0.113.11")).unwrap();
        assert_eq!(StateStore::inspect(&d).0, held("203.0.113.11"));
        std::fs::write(d.join(FILE), "garbage").unwrap();
        let (h, saved, notes) = StateStore::inspect(&d);
        assert_eq!((h, saved.is_none(), notes.len()), (held("203.0.113.10"), true, 1), "the previous version");
        assert_eq!(std::fs::read(d.join(FILE)).unwrap(), b"garbage", "left where it was");
        assert_eq!(corrupt_files(&d), 0);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn survives_a_restart() {
        let d = dir("restart");
        let s = StateStore::open(Some(&d)).unwrap();
        s.set(held("203.0.113.10")).unwrap();
        assert_eq!(StateStore::open(Some(&d)).unwrap().get(), held("203.0.113.10"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_corrupt_state_file_is_moved_aside_and_the_previous_version_used() {
        for (name, bad) in [
            ("garbage", b"garbage".as_slice()),
            ("empty", b"".as_slice()),
            ("half", b"{\"shop/web\": [\"203.0.1".as_slice()),
            ("shape", b"[1, 2, 3]".as_slice()),
        ] {
            let d = dir(name);
            let s = StateStore::open(Some(&d)).unwrap();
            s.set(held("203.0.113.10")).unwrap();
            s.set(held("203.0.113.11")).unwrap();
            std::fs::write(d.join(FILE), bad).unwrap();
            let again = StateStore::open(Some(&d)).unwrap();
            assert_eq!(again.get(), held("203.0.113.10"), "{name}: the previous version");
            assert_eq!(corrupt_files(&d), 1, "{name}: moved aside, not deleted");
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn with_no_previous_version_the_node_starts_empty() {
        let d = dir("nothing");
        std::fs::create_dir_all(d.join(FILE)).unwrap(); // a directory where the file should be
        let s = StateStore::open(Some(&d)).unwrap();
        assert!(s.get().is_empty());
        s.set(held("203.0.113.12")).unwrap();
        assert_eq!(StateStore::open(Some(&d)).unwrap().get(), held("203.0.113.12"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn last_good_objects_survive_a_restart_and_a_corrupt_file_is_moved_aside() {
        let d = dir("last-good");
        let s = StateStore::open(Some(&d)).unwrap();
        assert!(s.last_good().is_none());
        let peer: mooring_crds::BgpPeer = serde_yaml::from_str(
            "apiVersion: mooring.io/v1alpha1\nkind: BgpPeer\nmetadata: {name: edge}\nspec: {peerAddress: 198.18.0.1, peerAs: 64512}\n",
        )
        .unwrap();
        s.set_last_good(&Saved { peers: vec![peer.clone()], ..Saved::default() }).unwrap();
        let again = StateStore::open(Some(&d)).unwrap();
        assert_eq!(again.last_good().unwrap().peers, vec![peer]);
        std::fs::write(d.join(LAST_GOOD), "{\"peers\": [").unwrap();
        assert!(again.last_good().is_none());
        assert_eq!(corrupt_files(&d), 1);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn graceful_restart_marker_is_consumed_once() {
        let d = dir("gr");
        let s = StateStore::open(Some(&d)).unwrap();
        assert!(!s.take_graceful_restart(Duration::from_secs(60)));
        s.mark_graceful_stop().unwrap();
        assert!(s.take_graceful_restart(Duration::from_secs(60)));
        assert!(!s.take_graceful_restart(Duration::from_secs(60)), "consumed");
        // Too old: written an hour ago.
        let hour_ago = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() - 3600;
        std::fs::write(d.join(RESTART_MARKER), format!("{{\"stopped_at\": {hour_ago}}}")).unwrap();
        assert!(!s.take_graceful_restart(Duration::from_secs(120)), "too old for the restart time");
        // A marker that cannot be read: moved aside, not a graceful restart.
        std::fs::write(d.join(RESTART_MARKER), "garbage").unwrap();
        assert!(!s.take_graceful_restart(Duration::from_secs(60)));
        assert!(!d.join(RESTART_MARKER).exists());
        std::fs::remove_dir_all(d).unwrap();
    }
}
