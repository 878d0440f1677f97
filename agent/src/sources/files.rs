//! The node loop's source in standalone mode: the manifests under a path,
//! reloaded when a file changes (watched with `notify`) or on SIGHUP. A
//! reload keeps the last good version of broken documents (see
//! [`Manifests::load`]); it parses again only the files the watcher named
//! or whose size, inode or times changed (SIGHUP: every file).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::manifests::{Changed, Manifests};
use crate::metrics::Metrics;
use crate::model::plan::Objects;
use crate::node::{Changes, Source};

pub struct FileSource {
    path: PathBuf,
    manifests: Manifests,
    metrics: Arc<Metrics>,
    changes: Changes,
    /// What the watcher named since the last load.
    dirty: Arc<Mutex<Changed>>,
    _watcher: notify::RecommendedWatcher,
}

impl FileSource {
    /// Watch `path` and load it once.
    pub fn open(path: &Path, metrics: Arc<Metrics>) -> Result<FileSource> {
        anyhow::ensure!(path.exists(), "--config {}: no such file or directory", path.display());
        let (tx, changes) = mpsc::unbounded_channel();
        let dirty = Arc::new(Mutex::new(Changed::Paths(Default::default())));
        let watcher = watch(path, tx, dirty.clone())?;
        let mut s = FileSource {
            path: path.to_path_buf(),
            manifests: Manifests::default(),
            metrics,
            changes: Changes::new(changes),
            dirty,
            _watcher: watcher,
        };
        s.load(Changed::All);
        Ok(s)
    }

    /// Load again; `all`: parse every file again.
    fn load(&mut self, also: Changed) {
        let mut changed = std::mem::replace(&mut *self.dirty.lock().expect("lock"), Changed::Paths(Default::default()));
        if also == Changed::All {
            changed = Changed::All;
        }
        let m = Manifests::reload(&self.path, Some(&self.manifests), &changed, std::time::Instant::now());
        for e in &m.errors {
            warn!("manifest error: {e}");
        }
        self.metrics.manifest_errors.set(m.errors.len() as i64);
        self.manifests = m;
    }
}

impl Source for FileSource {
    async fn changed(&mut self) -> bool {
        let deadline = self.manifests.next_deadline();
        tokio::select! {
            more = self.changes.settled() => {
                if !more {
                    return false;
                }
                info!("configuration changed: reloading");
            }
            // A file has stayed empty for the grace time: its objects go now.
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(std::time::Instant::now).into()), if deadline.is_some() => {}
        }
        self.load(Changed::Paths(Default::default()));
        self.metrics.reloads.inc();
        true
    }

    fn reload(&mut self) {
        self.load(Changed::All);
        self.metrics.reloads.inc();
    }

    async fn objects(&mut self) -> Objects {
        self.manifests.objects()
    }
}

/// Watch the config path; each change adds the paths it names to `dirty`
/// (every path, when the watcher lost events) and sends `()`.
fn watch(path: &Path, tx: mpsc::UnboundedSender<()>, dirty: Arc<Mutex<Changed>>) -> Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let tx = Mutex::new(tx);
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let mut d = dirty.lock().expect("lock");
        match res {
            Ok(ev) if ev.kind.is_access() => return,
            Ok(ev) if !ev.need_rescan() && !ev.paths.is_empty() => {
                if let Changed::Paths(p) = &mut *d {
                    for path in ev.paths {
                        // Canonical when it still exists (the load compares both forms).
                        if let Ok(c) = std::fs::canonicalize(&path) {
                            p.insert(c);
                        }
                        p.insert(path);
                    }
                }
            }
            // Lost events, or an error: read everything again.
            _ => *d = Changed::All,
        }
        drop(d);
        let _ = tx.lock().expect("lock").send(());
    })
    .context("starting the file watcher")?;
    // Watch the directory (editors replace files by renaming).
    let dir =
        if path.is_dir() { path.to_path_buf() } else { path.parent().map(|p| p.to_path_buf()).unwrap_or_default() };
    w.watch(&dir, RecursiveMode::Recursive).with_context(|| format!("watching {}", dir.display()))?;
    Ok(w)
}
