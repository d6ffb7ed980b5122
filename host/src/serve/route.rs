//! Routes: which handler serves a request (the longest path prefix that
//! matches on a segment boundary), and the table of loaded routes that a
//! reload replaces whole.

use super::handler::Handler;
use super::manifest::{prefix_matches, route_path};
use super::origin::OriginPolicy;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::sandbox::InstanceLimits;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::Engine;

/// One route of a [`Server`](crate::Server): the requests whose path is
/// `path` or starts with `path` and `/` go to instances of `component`.
#[derive(Debug, Clone)]
pub struct Route {
    /// The path prefix: it starts with `/`, and a trailing `/` is ignored
    /// (`/chat` and `/chat/` are one route, which takes `/chat`, `/chat/`
    /// and `/chat/room`, not `/chatroom`); `/` takes every path. It is
    /// also the route's label in the metrics.
    pub path: String,
    /// The handler component file (`wsbox:websocket/server` world).
    pub component: PathBuf,
    /// The websockets of the route's instances: their limits and the
    /// outbound policy for the connections a handler opens itself.
    pub websocket: Config,
    /// The sandbox of each of the route's instances.
    pub instance: InstanceLimits,
    /// The browser origins that may open a WebSocket on the route
    /// (`--allow-origin`, `--require-origin`); others get 403 before any
    /// instance is made.
    pub origins: OriginPolicy,
}

impl Route {
    /// A route for `path` served by `component`, with the default
    /// websocket configuration, sandbox and origins (every origin).
    pub fn new(path: impl Into<String>, component: impl Into<PathBuf>) -> Route {
        Route {
            path: path.into(),
            component: component.into(),
            websocket: Config::default(),
            instance: InstanceLimits::default(),
            origins: OriginPolicy::default(),
        }
    }
}

/// A route whose component is compiled, ready to serve.
pub(crate) struct LoadedRoute {
    /// The normalized prefix, also the metrics label.
    pub(crate) path: Arc<str>,
    pub(crate) component: PathBuf,
    pub(crate) handler: Handler,
    pub(crate) origins: OriginPolicy,
}

/// The loaded routes, longest prefix first. Connections take the table
/// in service when their request arrives and keep their route (and so
/// their handler's version) to their end.
#[derive(Default)]
pub(crate) struct Table(Vec<Arc<LoadedRoute>>);

impl Table {
    /// Compiles every route's component with `engine`. The first route
    /// that cannot be used is the error: a bad or repeated path, or a
    /// component that does not load.
    pub(crate) fn load(engine: &Engine, routes: &[Route], metrics: &Arc<Metrics>) -> Result<Table> {
        if routes.is_empty() {
            return Err(Error::Serve(
                "there is no route to serve: give a component, or a [[route]] in the manifest"
                    .into(),
            ));
        }
        let mut loaded: Vec<Arc<LoadedRoute>> = Vec::with_capacity(routes.len());
        for route in routes {
            let path = route_path(&route.path)
                .map_err(|problem| Error::Serve(format!("route {:?}: {problem}", route.path)))?;
            if loaded.iter().any(|r| *r.path == path) {
                return Err(Error::Serve(format!(
                    "the route `{path}` is given twice: give each route its own path"
                )));
            }
            let handler = Handler::load_with(
                engine,
                &route.component,
                Arc::new(Config {
                    metrics: Some(metrics.clone()),
                    ..route.websocket.clone()
                }),
                route.instance.clone(),
            )?;
            loaded.push(Arc::new(LoadedRoute {
                path: path.into(),
                component: route.component.clone(),
                handler,
                origins: route.origins.clone(),
            }));
        }
        loaded.sort_by_key(|route| std::cmp::Reverse(route.path.len()));
        Ok(Table(loaded))
    }

    /// The route for a request target (its query and fragment ignored).
    pub(crate) fn find(&self, target: &str) -> Option<Arc<LoadedRoute>> {
        let path = target.split(['?', '#']).next().unwrap_or_default();
        self.0
            .iter()
            .find(|route| prefix_matches(&route.path, path))
            .cloned()
    }

    /// The routes, longest prefix first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<LoadedRoute>> {
        self.0.iter()
    }
}
