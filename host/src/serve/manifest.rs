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
use crate::units::{parse_duration, parse_size};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

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
    /// CA file, and its limits over `base`.
    pub fn websocket(&self, base: &Limits) -> crate::Result<Config> {
        Ok(Config {
            policy: self.policy.clone(),
            limits: self.limits.apply(base),
            tls: self
                .ca_file
                .as_deref()
                .map(crate::client_config_with_ca)
                .transpose()?,
            ..Config::default()
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

fn prefix_matches(prefix: &str, path: &str) -> bool {
    if !path.starts_with('/') {
        return false;
    }
    if prefix == "/" {
        return true;
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A size: `"16MiB"` or a number of bytes.
#[derive(Debug, Clone, Copy)]
struct Size(usize);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"16MiB\" or 65536")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Size, E> {
                parse_size(s).map(Size).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Size, E> {
                usize::try_from(n)
                    .ok()
                    .filter(|&n| n > 0)
                    .map(Size)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{n} is not a size: write a number of bytes above 0, or e.g. \"16MiB\""
                        ))
                    })
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A count: a whole number, 0 or more.
#[derive(Debug, Clone, Copy)]
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl Visitor<'_> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number such as 128, without quotes")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Count, E> {
                usize::try_from(n).map(Count).map_err(|_| {
                    E::custom(format!(
                        "{n} is not a count: write a whole number, 0 or more"
                    ))
                })
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

/// A duration: `"10s"`, `"500ms"`, `"2m"`.
#[derive(Debug, Clone, Copy)]
struct Span(Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpanVisitor;
        impl Visitor<'_> for SpanVisitor {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"10s\", \"500ms\" or \"2m\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Span, E> {
                parse_duration(s).map(Span).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(SpanVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawManifest {
    listen: Option<Spanned<String>>,
    metrics: Option<Spanned<String>>,
    tls: Option<RawTls>,
    max_connections: Option<Count>,
    max_handshakes: Option<Count>,
    handshake_timeout: Option<Span>,
    shutdown_timeout: Option<Span>,
    keepalive: Option<Span>,
    keepalive_timeout: Option<Spanned<Span>>,
    pooling: Option<bool>,
    guest_log_bytes: Option<Size>,
    guest_log_lines: Option<Count>,
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Spanned<String>,
    key: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRoute {
    path: Spanned<String>,
    component: Spanned<String>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    allow_origin: Vec<Spanned<String>>,
    #[serde(default)]
    require_origin: bool,
    ca_file: Option<Spanned<String>>,
    max_message_size: Option<Size>,
    max_frame_size: Option<Size>,
    inbound_buffer: Option<Size>,
    send_timeout: Option<Span>,
    connect_timeout: Option<Span>,
    close_timeout: Option<Span>,
    instance_inbound_buffer: Option<Size>,
    max_websockets: Option<Count>,
    max_handles: Option<Count>,
    max_memory: Option<Size>,
    cpu_deadline: Option<Span>,
}

/// Where errors point: the file's name and text.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The table the offset is in: `[[route]] #N`, `[tls]`, or `None` at
    /// the top level.
    fn table_at(&self, offset: usize) -> Option<String> {
        let mut table = None;
        let mut routes = 0;
        let mut at = 0;
        for line in self.text.split_inclusive('\n') {
            if at > offset {
                break;
            }
            let trimmed = line.trim();
            if trimmed.starts_with("[[route]]") {
                routes += 1;
                table = Some(format!("[[route]] #{routes}"));
            } else if trimmed.starts_with('[') {
                table = Some(
                    trimmed
                        .split('#')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                );
            }
            at += line.len();
        }
        table
    }

    /// The key written before `=` on the line of `offset`, if the offset is
    /// after it.
    fn key_at(&self, offset: usize) -> Option<String> {
        let offset = offset.min(self.text.len());
        let start = self.text[..offset].rfind('\n').map_or(0, |n| n + 1);
        let before = &self.text[start..offset];
        let (key, _) = before.split_once('=')?;
        let key = key.trim().trim_matches('"');
        (!key.is_empty() && !key.contains(['[', ']', '{'])).then(|| key.to_string())
    }

    /// The text of `span` if it is a bare key.
    fn key_itself(&self, span: Range<usize>) -> Option<String> {
        let text = self.text.get(span)?.trim();
        let bare = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        bare.then(|| text.to_string())
    }

    /// `FILE line N, [[route]] #2, key `K`: PROBLEM`.
    fn error(&self, span: Option<Range<usize>>, key: Option<&str>, problem: &str) -> ManifestError {
        let mut at = self.file.display().to_string();
        if let Some(span) = &span {
            at.push_str(&format!(" line {}", self.line_of(span.start)));
            if let Some(table) = self.table_at(span.start) {
                at.push_str(&format!(", {table}"));
            }
        }
        if let Some(key) = key {
            at.push_str(&format!(", key `{key}`"));
        }
        ManifestError(format!("{at}: {problem}"))
    }

    /// One line for a parse or type error from `toml`.
    fn toml_error(&self, err: &toml::de::Error) -> ManifestError {
        let message = err.message().trim().replace('\n', "; ");
        let named = |prefix: &str| {
            message
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('`'))
                .and_then(|rest| rest.split_once('`'))
                .map(|(key, rest)| (key.to_string(), rest.to_string()))
        };
        let span = err.span();
        if let Some((key, rest)) = named("unknown field ") {
            let expected = rest.trim_start_matches(',').trim();
            return self.error(
                span,
                Some(&key),
                &format!("unknown key ({expected}): fix its spelling or remove it"),
            );
        }
        if let Some((key, _)) = named("missing field ") {
            return self.error(span, Some(&key), "this key is required: add it");
        }
        let key = span
            .as_ref()
            .and_then(|s| self.key_at(s.start).or_else(|| self.key_itself(s.clone())));
        let message = if message == "duplicate key" {
            "this key is given twice in its table: keep one".to_string()
        } else {
            message
        };
        self.error(span, key.as_deref(), &message)
    }
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
        let resolve = |path: &str| base.join(path);
        let must_exist = |value: &Spanned<String>, key: &str, what: &str| {
            let path = resolve(value.get_ref());
            if path.is_file() {
                Ok(path)
            } else {
                Err(source.error(
                    Some(value.span()),
                    Some(key),
                    &format!(
                        "the {what} {} does not exist (relative paths start at the manifest's folder): fix the path",
                        path.display()
                    ),
                ))
            }
        };
        let address = |value: &Option<Spanned<String>>, key: &str| {
            let Some(value) = value else {
                return Ok(None);
            };
            let text = value.get_ref();
            let port_ok = text
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if port_ok {
                Ok(Some(text.clone()))
            } else {
                Err(source.error(
                    Some(value.span()),
                    Some(key),
                    &format!(
                        "`{text}` is not HOST:PORT: write e.g. \"127.0.0.1:8080\" or \"[::]:443\""
                    ),
                ))
            }
        };
        let listen = address(&raw.listen, "listen")?;
        let metrics = address(&raw.metrics, "metrics")?;
        let tls = match &raw.tls {
            Some(tls) => Some(TlsFiles {
                cert: must_exist(&tls.cert, "cert", "TLS certificate")?,
                key: must_exist(&tls.key, "key", "TLS key")?,
            }),
            None => None,
        };
        if let Some(timeout) = &raw.keepalive_timeout {
            if timeout.get_ref().0.is_zero() {
                return Err(source.error(
                    Some(timeout.span()),
                    Some("keepalive-timeout"),
                    "it must be more than 0s: write e.g. \"10s\", or turn keepalive off with keepalive = \"0s\"",
                ));
            }
        }
        let server = ServerSettings {
            max_connections: raw.max_connections.map(|c| c.0),
            max_handshakes: raw.max_handshakes.map(|c| c.0),
            handshake_timeout: raw.handshake_timeout.map(|s| s.0),
            shutdown_timeout: raw.shutdown_timeout.map(|s| s.0),
            keepalive: raw.keepalive.map(|s| s.0),
            keepalive_timeout: raw.keepalive_timeout.map(|s| s.into_inner().0),
            pooling: raw.pooling,
            guest_log_bytes: raw.guest_log_bytes.map(|s| s.0),
            guest_log_lines: raw.guest_log_lines.map(|c| c.0),
        };
        if raw.route.is_empty() {
            return Err(source.error(
                None,
                None,
                "it has no route: add one, e.g. [[route]] with path = \"/\" and component = \"echo.wasm\"",
            ));
        }
        let mut routes: Vec<(Route, Range<usize>)> = Vec::new();
        for route in &raw.route {
            let path = route_path(route.path.get_ref())
                .map_err(|problem| source.error(Some(route.path.span()), Some("path"), &problem))?;
            if let Some((_, first)) = routes.iter().find(|(r, _)| *r.path == path) {
                return Err(source.error(
                    Some(route.path.span()),
                    Some("path"),
                    &format!(
                        "the route `{path}` is listed twice (first on line {}): give each [[route]] its own path, or merge them",
                        source.line_of(first.start)
                    ),
                ));
            }
            let component = must_exist(&route.component, "component", "component")?;
            let ca_file = match &route.ca_file {
                Some(ca) => Some(must_exist(ca, "ca-file", "CA file")?),
                None => None,
            };
            let mut policy = Policy::deny_all();
            for pattern in &route.allow {
                let parsed = pattern.get_ref().parse::<AllowPattern>().map_err(|e| {
                    source.error(Some(pattern.span()), Some("allow"), &e.to_string())
                })?;
                policy.allow(parsed);
            }
            let origin_patterns = route
                .allow_origin
                .iter()
                .map(|pattern| {
                    pattern.get_ref().parse::<OriginPattern>().map_err(|e| {
                        source.error(Some(pattern.span()), Some("allow-origin"), &e.to_string())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let origins = OriginPolicy::from_patterns(origin_patterns, route.require_origin);
            let size = |s: Option<Size>| s.map(|s| s.0);
            let span = |s: Option<Span>| s.map(|s| s.0);
            let limits = LimitOverrides {
                max_message_size: size(route.max_message_size),
                max_frame_size: size(route.max_frame_size),
                inbound_buffer: size(route.inbound_buffer),
                send_timeout: span(route.send_timeout),
                connect_timeout: span(route.connect_timeout),
                close_timeout: span(route.close_timeout),
                instance_inbound_buffer: size(route.instance_inbound_buffer),
                max_websockets: route.max_websockets.map(|c| c.0),
                max_handles: route.max_handles.map(|c| c.0),
                max_memory: size(route.max_memory),
                cpu_deadline: span(route.cpu_deadline),
            };
            routes.push((
                Route {
                    path: path.into(),
                    component,
                    policy,
                    ca_file,
                    limits,
                    origins,
                },
                route.path.span(),
            ));
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

/// A route's path prefix, normalized: it starts with `/` and has no
/// trailing `/` (but `/` itself).
fn route_path(path: &str) -> Result<String, String> {
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
