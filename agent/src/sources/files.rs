//! The node loop's source in standalone mode: the manifests under a path,
//! reloaded when a file changes (watched with `notify`) or on SIGHUP. A
//! reload keeps the last good version of broken documents (see
//! [`Manifests::load`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::manifests::Manifests;
use crate::metrics::Metrics;
use crate::model::plan::Objects;
use crate::node::{settle, Source};

pub struct FileSource {
    path: PathBuf,
    manifests: Manifests,
    metrics: Arc<Metrics>,
    changes: mpsc::UnboundedReceiver<()>,
    _watcher: notify::RecommendedWatcher,
}

impl FileSource {
    /// Watch `path` and load it once.
    pub fn open(path: &Path, metrics: Arc<Metrics>) -> Result<FileSource> {
        anyhow::ensure!(path.exists(), "--config {}: no such file or directory", path.display());
        let (tx, changes) = mpsc::unbounded_channel();
        let watcher = watch(path, tx)?;
        let mut s = FileSource {
            path: path.to_path_buf(),
            manifests: Manifests::default(),
            metrics,
            changes,
            _watcher: watcher,
        };
        s.load();
        Ok(s)
    }

    fn load(&mut self) {
        let m = Manifests::load(&self.path, Some(&self.manifests));
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
            more = settle(&mut self.changes) => {
                if !more {
                    return false;
                }
                info!("configuration changed: reloading");
            }
            // A file has stayed empty for the grace time: its objects go now.
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(std::time::Instant::now).into()), if deadline.is_some() => {}
        }
        self.reload();
        true
    }

    fn reload(&mut self) {
        self.load();
        self.metrics.reloads.inc();
    }

    async fn objects(&mut self) -> Objects {
        self.manifests.objects()
    }
}

/// Watch the config path; each change sends `()`.
fn watch(path: &Path, tx: mpsc::UnboundedSender<()>) -> Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let tx = Mutex::new(tx);
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if !ev.kind.is_access() {
                let _ = tx.lock().expect("lock").send(());
            }
        }
    })
    .context("starting the file watcher")?;
    // Watch the directory (editors replace files by renaming).
    let dir =
        if path.is_dir() { path.to_path_buf() } else { path.parent().map(|p| p.to_path_buf()).unwrap_or_default() };
    w.watch(&dir, RecursiveMode::Recursive).with_context(|| format!("watching {}", dir.display()))?;
    Ok(w)
}
