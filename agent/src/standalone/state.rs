//! The state directory: addresses assigned to Services, kept across
//! restarts so a restart never moves a VIP.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

const FILE: &str = "allocations.json";

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
}
