//! `--watch`: asks for a reload when a served file changed and then stayed the same.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How often `--watch` looks at the files.
pub(crate) const WATCH_EVERY: Duration = Duration::from_secs(1);

/// When each watched file was last modified, and its size (`None`: it
/// could not be read).
pub(crate) type Seen = HashMap<PathBuf, Option<(SystemTime, u64)>>;

/// Looks at `files` now.
pub(crate) fn look(files: &[PathBuf]) -> Seen {
    let stamp = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    files.iter().map(|f| (f.clone(), stamp(f))).collect()
}

/// Asks for a reload when a watched file changed from `served` (what was
/// looked at before the server read the files) and then stayed the same
/// for one more look (so that a file being written is not read half-way).
pub(crate) async fn watch(
    files: Arc<Mutex<Vec<PathBuf>>>,
    reload: tokio::sync::mpsc::Sender<&'static str>,
    mut served: Seen,
) {
    let current = || files.lock().map(|f| f.clone()).unwrap_or_default();
    let mut last = served.clone();
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let now = look(&current());
        let settled = now == last;
        last = now.clone();
        let same_files = now.len() == served.len() && now.keys().all(|k| served.contains_key(k));
        if !same_files {
            // A reload changed which files are served: they were just read.
            served = now;
            continue;
        }
        if settled && now != served {
            served = now;
            let _ = reload.send("a watched file changed").await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that changes after the server read it, but before the
    /// watcher's first look, is still reloaded.
    #[tokio::test]
    async fn a_change_right_after_the_files_were_read_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("handler.wasm");
        std::fs::write(&file, b"one").unwrap();
        let seen = look(std::slice::from_ref(&file));
        std::fs::write(&file, b"two, longer").unwrap();
        let (reload, mut asked) = tokio::sync::mpsc::channel(1);
        let files = Arc::new(Mutex::new(vec![file]));
        let watcher = tokio::spawn(watch(files, reload, seen));
        let why = tokio::time::timeout(WATCH_EVERY * 5, asked.recv()).await;
        watcher.abort();
        assert_eq!(
            why.expect("no reload was asked for"),
            Some("a watched file changed")
        );
    }
}
