//! `--watch`: asks for a reload when a served file changed and then stayed the same.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How often `--watch` looks at the files.
pub(crate) const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Asks for a reload when a watched file changed and then stayed the same
/// for one more look (so that a file being written is not read half-way).
pub(crate) async fn watch(
    files: Arc<Mutex<Vec<PathBuf>>>,
    reload: tokio::sync::mpsc::Sender<&'static str>,
) {
    type Seen = HashMap<PathBuf, Option<(SystemTime, u64)>>;
    fn look(files: &[PathBuf]) -> Seen {
        let stamp = |path: &Path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        };
        files.iter().map(|f| (f.clone(), stamp(f))).collect()
    }
    let current = || files.lock().map(|f| f.clone()).unwrap_or_default();
    let mut served = look(&current());
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
