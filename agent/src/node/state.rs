//! The state directory: addresses assigned to Services, kept across
//! restarts so a restart never moves a VIP.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

const FILE: &str = "allocations.json";
/// Written on a graceful stop, read (and removed) on the next start.
const RESTART_MARKER: &str = "graceful-restart";

#[derive(Debug)]
pub struct StateStore {
    path: Option<PathBuf>,
    held: Mutex<BTreeMap<String, Vec<IpAddr>>>,
}

impl StateStore {
    /// Open (and create) the directory; without one, state lives in memory.
    pub fn open(dir: Option<&Path>) -> Result<StateStore> {
        let Some(dir) = dir else { return Ok(StateStore { path: None, held: Mutex::new(BTreeMap::new()) }) };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(FILE);
        let held = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| format!("{}: not a state file", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(StateStore { path: Some(path), held: Mutex::new(held) })
    }

    fn marker(&self) -> Option<PathBuf> {
        self.path.as_ref().map(|p| p.with_file_name(RESTART_MARKER))
    }

    /// Note that we stopped for a graceful restart (routers keep our routes).
    pub fn mark_graceful_stop(&self) -> Result<()> {
        if let Some(m) = self.marker() {
            std::fs::write(&m, b"").with_context(|| format!("writing {}", m.display()))?;
        }
        Ok(())
    }

    /// Whether the previous run stopped for a graceful restart no longer
    /// than `within` ago (then our OPEN carries the Restart State bit).
    /// The marker is consumed.
    pub fn take_graceful_restart(&self, within: std::time::Duration) -> bool {
        let Some(m) = self.marker() else { return false };
        let recent = std::fs::metadata(&m)
            .and_then(|md| md.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age <= within);
        let _ = std::fs::remove_file(&m);
        recent
    }

    pub fn get(&self) -> BTreeMap<String, Vec<IpAddr>> {
        self.held.lock().expect("state lock").clone()
    }

    /// Replace the state; written atomically (temp file + rename) when it changed.
    pub fn set(&self, held: BTreeMap<String, Vec<IpAddr>>) -> Result<()> {
        let mut cur = self.held.lock().expect("state lock");
        if *cur == held {
            return Ok(());
        }
        if let Some(path) = &self.path {
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&held)?)
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
        }
        *cur = held;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("mooring-state-test-{}", std::process::id()));
        let s = StateStore::open(Some(&dir)).unwrap();
        s.set(BTreeMap::from([("shop/web".to_string(), vec!["203.0.113.10".parse().unwrap()])])).unwrap();
        let again = StateStore::open(Some(&dir)).unwrap();
        assert_eq!(again.get()["shop/web"], vec!["203.0.113.10".parse::<IpAddr>().unwrap()]);
        std::fs::write(dir.join(FILE), "garbage").unwrap();
        assert!(StateStore::open(Some(&dir)).unwrap_err().to_string().contains("not a state file"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn graceful_restart_marker_is_consumed_once() {
        let dir = std::env::temp_dir().join(format!("mooring-state-gr-{}", std::process::id()));
        let s = StateStore::open(Some(&dir)).unwrap();
        assert!(!s.take_graceful_restart(std::time::Duration::from_secs(60)));
        s.mark_graceful_stop().unwrap();
        assert!(s.take_graceful_restart(std::time::Duration::from_secs(60)));
        assert!(!s.take_graceful_restart(std::time::Duration::from_secs(60)), "consumed");
        s.mark_graceful_stop().unwrap();
        assert!(!s.take_graceful_restart(std::time::Duration::ZERO), "too old for a zero restart time");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
