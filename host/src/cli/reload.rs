//! Reloading a running server: the files `--watch` looks at, and the reloader that re-reads the manifest and the components on request.

use super::args::{LogFormat, ServeArgs};
use super::log::{notice, warning};
use super::plan::Given;
use clap::ArgMatches;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use wsbox::{Config, Route, Server};

/// The files whose change `--watch` reloads on: the manifest and every
/// route's component.
pub(crate) fn watched_files(manifest: &Option<PathBuf>, routes: &[Route]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = manifest.iter().cloned().collect();
    for route in routes {
        if !files.contains(&route.component) {
            files.push(route.component.clone());
        }
    }
    files
}

/// Reloads the manifest and the components on request, one at a time.
pub(crate) struct Reloader {
    pub(crate) args: Arc<ServeArgs>,
    pub(crate) matches: Option<ArgMatches>,
    pub(crate) websocket: Config,
    pub(crate) server: Server,
    pub(crate) watched: Arc<Mutex<Vec<PathBuf>>>,
    pub(crate) format: LogFormat,
}

impl Reloader {
    pub(crate) async fn run(self, mut reloads: tokio::sync::mpsc::Receiver<&'static str>) {
        while let Some(why) = reloads.recv().await {
            let given = Given(self.matches.as_ref());
            let plan = match self.args.plan(&self.websocket, &given) {
                Ok(plan) => plan,
                Err(e) => {
                    warning(
                        self.format,
                        &format!(
                            "reload ({why}) refused, the previous version stays in service: {e:#}"
                        ),
                    );
                    continue;
                }
            };
            if let Ok(mut watched) = self.watched.lock() {
                *watched = watched_files(&self.args.config, &plan.routes);
            }
            let paths: Vec<String> = plan.routes.iter().map(|r| r.path.clone()).collect();
            let server = self.server.clone();
            // Compiling takes a while, so it runs on a blocking thread; a
            // panic there is counted like a task's.
            let runtime = tokio::runtime::Handle::current();
            let reloaded = tokio::task::spawn_blocking(move || {
                runtime.block_on(wsbox::supervised("reload", async move {
                    server.reload(plan.routes)
                }))
            })
            .await;
            match reloaded {
                Ok(Some(Ok(()))) => notice(
                    self.format,
                    &format!(
                        "reloaded ({why}): new connections get the new version of {}",
                        paths.join(", ")
                    ),
                ),
                Ok(Some(Err(e))) => warning(
                    self.format,
                    &format!(
                        "reload ({why}) refused, the previous version stays in service: {e:#}"
                    ),
                ),
                Ok(None) | Err(_) => warning(
                    self.format,
                    &format!("reload ({why}) failed (a wsbox bug, logged above), the previous version stays in service"),
                ),
            }
        }
    }
}
