//! `wsbox serve --config wsbox.toml`: the TOML manifest of a server with several routes, read and checked.
//!
//! The format (a commented example is `host/wsbox.example.toml`):
//! - top level: `listen`, `metrics`, and the server-wide settings with the
//!   names of their `wsbox serve` flags (`max-connections`,
//!   `max-handshakes`, `handshake-timeout`, `shutdown-timeout`,
//!   `keepalive`, `keepalive-timeout`, `pooling`, `guest-log-bytes`,
//!   `guest-log-lines`); each optional;
//! - `[tls]`: `cert` and `key`, PEM files;
//! - `[[route]]`, one or more: `path` (a path prefix), `component`, and
//!   that component's `allow`, `allow-origin`, `require-origin`, `ca-file`
//!   and limits, with the names of the limit flags (`max-message-size =
//!   "1MiB"`, `cpu-deadline = "2s"`, ...).
//!
//! Relative paths are relative to the manifest's folder. Sizes are written
//! as for the flags ("16MiB", or a number of bytes), durations as strings
//! ("10s"). An unknown key, a missing file, a route listed twice or a bad
//! value is one line that names the file, the line and the key.
//!
//! A request goes to the route with the longest path prefix that matches on
//! a segment boundary (`/chat` matches `/chat`, `/chat/` and `/chat/room`,
//! not `/chatroom`); a path that matches no route gets 404 before any
//! instance is made.

use super::origin::{OriginPattern, OriginPolicy};
use crate::config::{Config, Limits};
use crate::policy::{AllowPattern, Policy};
use crate::sandbox::InstanceLimits;
use raw::{RawManifest, RawRoute, Size, Span};
use source::Source;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod raw;
mod source;

/// Why a manifest cannot be used: one line naming the file, the line and
/// the key where it can, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(String);

/// A checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file, as given.
    pub file: PathBuf,
    /// `listen`: where to listen (`HOST:PORT`).
    pub listen: Option<String>,
    /// `metrics`: where to serve `/metrics`, `/healthz` and `/readyz`.
    pub metrics: Option<String>,
    /// `[tls]`: serve `wss://` with this certificate chain and key.
    pub tls: Option<TlsFiles>,
    /// The server-wide settings given; `None`: the flag's default.
    pub server: ServerSettings,
    /// The routes.
    pub routes: Routes,
}

/// The PEM files of `[tls]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `cert`: the server's certificate, then its intermediates.
    pub cert: PathBuf,
    /// `key`: its private key.
    pub key: PathBuf,
}

/// The server-wide settings of a manifest, each `None` where it does not
/// say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSettings {
    /// `max-connections`.
    pub max_connections: Option<usize>,
    /// `max-handshakes`.
    pub max_handshakes: Option<usize>,
    /// `handshake-timeout`.
    pub handshake_timeout: Option<Duration>,
    /// `shutdown-timeout`.
    pub shutdown_timeout: Option<Duration>,
    /// `keepalive` (`"0s"`: off).
    pub keepalive: Option<Duration>,
    /// `keepalive-timeout` (more than zero).
    pub keepalive_timeout: Option<Duration>,
    /// `pooling`.
    pub pooling: Option<bool>,
    /// `guest-log-bytes`.
    pub guest_log_bytes: Option<usize>,
    /// `guest-log-lines`.
    pub guest_log_lines: Option<usize>,
}

/// The limits one route sets, each `None` where it does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// `max-message-size`.
    pub max_message_size: Option<usize>,
    /// `max-frame-size`.
    pub max_frame_size: Option<usize>,
    /// `inbound-buffer`.
    pub inbound_buffer: Option<usize>,
    /// `send-timeout`.
    pub send_timeout: Option<Duration>,
    /// `connect-timeout`.
    pub connect_timeout: Option<Duration>,
    /// `close-timeout`.
    pub close_timeout: Option<Duration>,
    /// `instance-inbound-buffer`.
    pub instance_inbound_buffer: Option<usize>,
    /// `max-websockets`.
    pub max_websockets: Option<usize>,
    /// `max-handles`.
    pub max_handles: Option<usize>,
    /// `max-memory`.
    pub max_memory: Option<usize>,
    /// `cpu-deadline`.
    pub cpu_deadline: Option<Duration>,
}

/// Sets each `field` that `overrides` holds on `target`.
macro_rules! take {
    ($overrides:expr, $target:expr, $($field:ident),*) => {$(
        if let Some(value) = $overrides.$field {
            $target.$field = value;
        }
    )*};
}

impl LimitOverrides {
    /// `base` with these websocket limits in place of its own.
    pub fn apply(&self, base: &Limits) -> Limits {
        let mut limits = base.clone();
        take!(
            self,
            limits,
            max_message_size,
            max_frame_size,
            inbound_buffer,
            send_timeout,
            connect_timeout,
            close_timeout,
            instance_inbound_buffer,
            max_websockets
        );
        limits
    }

    /// `base` with these sandbox limits in place of its own.
    pub fn apply_instance(&self, base: &InstanceLimits) -> InstanceLimits {
        let mut limits = base.clone();
        take!(self, limits, max_handles, max_memory, cpu_deadline);
        limits
    }
}

/// One route: a path prefix and the component that serves it.
#[derive(Debug, Clone)]
pub struct Route {
    /// The path prefix, without a trailing `/` (but `/` itself). It is
    /// also the route's metrics label.
    pub path: Arc<str>,
    /// The component file, resolved.
    pub component: PathBuf,
    /// `allow`: the outbound policy of the route's instances (none: deny
    /// every connect).
    pub policy: Policy,
    /// `ca-file`, resolved.
    pub ca_file: Option<PathBuf>,
    /// The route's limits.
    pub limits: LimitOverrides,
    /// `allow-origin` and `require-origin`.
    pub origins: OriginPolicy,
}

impl Route {
    /// The websocket configuration of the route's instances: its policy,
    /// CA file, and its limits over `base`'s; the rest (the broker, the
    /// hooks) is `base`'s.
    pub fn websocket(&self, base: &Config) -> crate::Result<Config> {
        let tls = match self.ca_file.as_deref() {
            Some(ca) => Some(crate::client_config_with_ca(ca)?),
            None => base.tls.clone(),
        };
        Ok(Config {
            policy: self.policy.clone(),
            limits: self.limits.apply(&base.limits),
            tls,
            ..base.clone()
        })
    }

    /// The route as the server takes it: its websockets over `base`, its
    /// sandbox over `instance`.
    pub fn to_route(
        &self,
        base: &Config,
        instance: &InstanceLimits,
    ) -> crate::Result<super::route::Route> {
        Ok(super::route::Route {
            path: self.path.to_string(),
            component: self.component.clone(),
            websocket: self.websocket(base)?,
            instance: self.limits.apply_instance(instance),
            origins: self.origins.clone(),
        })
    }
}

/// The routes, longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct Routes(Vec<Route>);

impl Routes {
    /// The routes, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.0.iter()
    }

    /// The route for a request target (its query and fragment are
    /// ignored): the longest prefix that matches on a segment boundary.
    pub fn find(&self, target: &str) -> Option<&Route> {
        let path = target.split(['?', '#']).next().unwrap_or_default();
        self.0
            .iter()
            .find(|route| prefix_matches(&route.path, path))
    }
}

pub(crate) fn prefix_matches(prefix: &str, path: &str) -> bool {
    if !path.starts_with('/') {
        return false;
    }
    if prefix == "/" {
        return true;
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Manifest {
    /// Reads and checks the manifest `file`.
    pub fn load(file: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            ManifestError(format!(
                "cannot read the manifest {}: {e}; check the --config path",
                file.display()
            ))
        })?;
        Manifest::parse(&text, file)
    }

    /// Checks the manifest text of `file`; relative paths are resolved
    /// against `file`'s folder.
    pub fn parse(text: &str, file: &Path) -> Result<Manifest, ManifestError> {
        let source = Source { file, text };
        let raw: RawManifest = toml::from_str(text).map_err(|e| source.toml_error(&e))?;
        let base = file.parent().unwrap_or(Path::new("."));
        let listen = source.address(&raw.listen, "listen")?;
        let metrics = source.address(&raw.metrics, "metrics")?;
        let tls = match &raw.tls {
            Some(tls) => Some(TlsFiles {
                cert: source.must_exist(base, &tls.cert, "cert", "TLS certificate")?,
                key: source.must_exist(base, &tls.key, "key", "TLS key")?,
            }),
            None => None,
        };
        let server = server_settings(&source, &raw)?;
        if raw.route.is_empty() {
            return Err(source.error(
                None,
                None,
                "it has no route: add one, e.g. [[route]] with path = \"/\" and component = \"echo.wasm\"",
            ));
        }
        let mut routes: Vec<(Route, Range<usize>)> = Vec::new();
        for raw_route in &raw.route {
            let path = route_path(raw_route.path.get_ref()).map_err(|problem| {
                source.error(Some(raw_route.path.span()), Some("path"), &problem)
            })?;
            if let Some((_, first)) = routes.iter().find(|(r, _)| *r.path == path) {
                return Err(source.error(
                    Some(raw_route.path.span()),
                    Some("path"),
                    &format!(
                        "the route `{path}` is listed twice (first on line {}): give each [[route]] its own path, or merge them",
                        source.line_of(first.start)
                    ),
                ));
            }
            let route = route(&source, base, path, raw_route)?;
            routes.push((route, raw_route.path.span()));
        }
        let mut routes: Vec<Route> = routes.into_iter().map(|(route, _)| route).collect();
        routes.sort_by_key(|route| std::cmp::Reverse(route.path.len()));
        Ok(Manifest {
            file: file.to_path_buf(),
            listen,
            metrics,
            tls,
            server,
            routes: Routes(routes),
        })
    }
}

/// The server-wide settings of `raw`, checked.
fn server_settings(source: &Source, raw: &RawManifest) -> Result<ServerSettings, ManifestError> {
    if let Some(timeout) = &raw.keepalive_timeout {
        if timeout.get_ref().0.is_zero() {
            return Err(source.error(
                Some(timeout.span()),
                Some("keepalive-timeout"),
                "it must be more than 0s: write e.g. \"10s\", or turn keepalive off with keepalive = \"0s\"",
            ));
        }
    }
    Ok(ServerSettings {
        max_connections: raw.max_connections.map(|c| c.0),
        max_handshakes: raw.max_handshakes.map(|c| c.0),
        handshake_timeout: raw.handshake_timeout.map(|s| s.0),
        shutdown_timeout: raw.shutdown_timeout.map(|s| s.0),
        keepalive: raw.keepalive.map(|s| s.0),
        keepalive_timeout: raw.keepalive_timeout.as_ref().map(|s| s.get_ref().0),
        pooling: raw.pooling,
        guest_log_bytes: raw.guest_log_bytes.map(|s| s.0),
        guest_log_lines: raw.guest_log_lines.map(|c| c.0),
    })
}

/// The route at `path` (normalized) that `raw` describes, checked; its
/// files are relative to `base`.
fn route(
    source: &Source,
    base: &Path,
    path: String,
    raw: &RawRoute,
) -> Result<Route, ManifestError> {
    let component = source.must_exist(base, &raw.component, "component", "component")?;
    let ca_file = match &raw.ca_file {
        Some(ca) => Some(source.must_exist(base, ca, "ca-file", "CA file")?),
        None => None,
    };
    let mut policy = Policy::deny_all();
    for pattern in &raw.allow {
        let parsed = pattern
            .get_ref()
            .parse::<AllowPattern>()
            .map_err(|e| source.error(Some(pattern.span()), Some("allow"), &e.to_string()))?;
        policy.allow(parsed);
    }
    let origin_patterns = raw
        .allow_origin
        .iter()
        .map(|pattern| {
            pattern.get_ref().parse::<OriginPattern>().map_err(|e| {
                source.error(Some(pattern.span()), Some("allow-origin"), &e.to_string())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Route {
        path: path.into(),
        component,
        policy,
        ca_file,
        limits: limit_overrides(raw),
        origins: OriginPolicy::from_patterns(origin_patterns, raw.require_origin),
    })
}

/// The limits `raw` sets.
fn limit_overrides(raw: &RawRoute) -> LimitOverrides {
    let size = |s: Option<Size>| s.map(|s| s.0);
    let span = |s: Option<Span>| s.map(|s| s.0);
    LimitOverrides {
        max_message_size: size(raw.max_message_size),
        max_frame_size: size(raw.max_frame_size),
        inbound_buffer: size(raw.inbound_buffer),
        send_timeout: span(raw.send_timeout),
        connect_timeout: span(raw.connect_timeout),
        close_timeout: span(raw.close_timeout),
        instance_inbound_buffer: size(raw.instance_inbound_buffer),
        max_websockets: raw.max_websockets.map(|c| c.0),
        max_handles: raw.max_handles.map(|c| c.0),
        max_memory: size(raw.max_memory),
        cpu_deadline: span(raw.cpu_deadline),
    }
}

/// A route's path prefix, normalized: it starts with `/` and has no
/// trailing `/` (but `/` itself).
pub(crate) fn route_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!(
            "`{path}` is not a path prefix: start it with `/`, e.g. \"/chat\" (\"/\" takes every path)"
        ));
    }
    if path.contains(['?', '#']) || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{}` is not a path prefix: a prefix has no query, fragment, spaces or control characters",
            path.escape_debug()
        ));
    }
    let trimmed = path.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_string())
}

#[cfg(test)]
mod tests;
