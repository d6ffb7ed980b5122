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
mod tests {
    use super::*;
    use crate::policy::Destination;

    const EXAMPLE: &str = include_str!("../../wsbox.example.toml");

    /// A folder with `wsbox.toml` holding `text`, and the files it names
    /// (empty: only their existence is checked here).
    fn folder(text: &str, files: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        for name in files {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let file = dir.path().join("wsbox.toml");
        std::fs::write(&file, text).unwrap();
        (dir, file)
    }

    fn load(text: &str) -> Result<Manifest, ManifestError> {
        let (_dir, file) = folder(
            text,
            &["echo.wasm", "router.wasm", "ca.pem", "cert.pem", "key.pem"],
        );
        Manifest::load(&file)
    }

    #[test]
    fn the_example_manifest_loads() {
        let (_dir, file) = folder(EXAMPLE, &["echo.wasm", "router.wasm"]);
        let manifest = Manifest::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(manifest.listen.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(manifest.metrics.as_deref(), Some("127.0.0.1:9090"));
        assert_eq!(manifest.tls, None);
        assert_eq!(manifest.server.keepalive, Some(Duration::from_secs(30)));
        assert_eq!(manifest.server.max_connections, Some(1024));
        let paths: Vec<&str> = manifest.routes.iter().map(|r| &*r.path).collect();
        assert_eq!(paths, ["/chat", "/"], "longest first");
        let chat = manifest.routes.find("/chat/lobby?user=1").unwrap();
        assert_eq!(chat.component, file.parent().unwrap().join("router.wasm"));
        assert_eq!(chat.limits.max_message_size, Some(64 << 10));
        assert_eq!(chat.limits.cpu_deadline, Some(Duration::from_secs(2)));
        let config = chat.websocket(&Config::default()).unwrap();
        assert_eq!(config.limits.max_message_size, 64 << 10);
        assert_eq!(
            config.limits.max_frame_size,
            Limits::default().max_frame_size
        );
        assert!(chat.origins.check(Some("https://chat.example.com")).is_ok());
        assert!(chat.origins.check(Some("http://localhost:5173")).is_ok());
        assert!(chat.origins.check(Some("https://evil.example")).is_err());
        assert!(chat.origins.check(None).is_err(), "require-origin");
        let root = manifest.routes.find("/anything").unwrap();
        assert_eq!(&*root.path, "/");
        assert!(root.origins.check(Some("https://evil.example")).is_ok());
        let policy = root.websocket(&Config::default()).unwrap().policy;
        assert!(policy.permits(true, Destination::Name("echo.websocket.org"), 443));
        assert!(!policy.permits(true, Destination::Name("other.example"), 443));
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let manifest = load(
            r#"
            [[route]]
            path = "/"
            component = "echo.wasm"
            [[route]]
            path = "/chat/"
            component = "router.wasm"
            [[route]]
            path = "/chat/admin"
            component = "echo.wasm"
            "#,
        )
        .unwrap();
        for (target, want) in [
            ("/chat", Some("/chat")),
            ("/chat/", Some("/chat")),
            ("/chat/room", Some("/chat")),
            ("/chat?x=/admin", Some("/chat")),
            ("/chat/admin", Some("/chat/admin")),
            ("/chat/admin/x", Some("/chat/admin")),
            ("/chat/administrator", Some("/chat")),
            ("/chatroom", Some("/")),
            ("/", Some("/")),
            ("", None),
            ("*", None),
            ("http://example.com/chat", None),
        ] {
            assert_eq!(
                manifest.routes.find(target).map(|r| &*r.path),
                want,
                "{target:?}"
            );
        }
        let only_chat = load("[[route]]\npath = \"/chat\"\ncomponent = \"echo.wasm\"\n").unwrap();
        assert!(only_chat.routes.find("/").is_none(), "no route: 404");
        assert!(only_chat.routes.find("/chatroom").is_none());
        assert!(only_chat.routes.find("/chat/x").is_some());
    }

    #[test]
    fn everything_a_manifest_may_say() {
        let manifest = load(
            r#"
            listen = "[::1]:8443"
            metrics = "localhost:9090"
            max-connections = 10
            max-handshakes = 5
            handshake-timeout = "2s"
            shutdown-timeout = "500ms"
            keepalive = "0s"
            keepalive-timeout = "1m"
            pooling = true
            guest-log-bytes = 4096
            guest-log-lines = 7

            [tls]
            cert = "cert.pem"
            key = "key.pem"

            [[route]]
            path = "/"
            component = "echo.wasm"
            allow = ["ws://127.0.0.1:9001"]
            ca-file = "ca.pem"
            max-message-size = "1MiB"
            max-frame-size = 1024
            inbound-buffer = "64KiB"
            send-timeout = "1s"
            connect-timeout = "2s"
            close-timeout = "3s"
            instance-inbound-buffer = "2MiB"
            max-websockets = 4
            max-handles = 64
            max-memory = "32MiB"
            cpu-deadline = "100ms"
            "#,
        )
        .unwrap();
        let dir = manifest.file.parent().unwrap();
        assert_eq!(manifest.listen.as_deref(), Some("[::1]:8443"));
        assert_eq!(
            manifest.tls,
            Some(TlsFiles {
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem")
            })
        );
        let s = Duration::from_secs;
        assert_eq!(
            manifest.server,
            ServerSettings {
                max_connections: Some(10),
                max_handshakes: Some(5),
                handshake_timeout: Some(s(2)),
                shutdown_timeout: Some(Duration::from_millis(500)),
                keepalive: Some(Duration::ZERO),
                keepalive_timeout: Some(s(60)),
                pooling: Some(true),
                guest_log_bytes: Some(4096),
                guest_log_lines: Some(7),
            }
        );
        let route = manifest.routes.find("/").unwrap();
        assert_eq!(route.ca_file.as_deref(), Some(&*dir.join("ca.pem")));
        let limits = route.limits.apply(&Limits::default());
        let instance = route.limits.apply_instance(&InstanceLimits::default());
        assert_eq!(
            (
                limits.max_message_size,
                limits.max_frame_size,
                limits.inbound_buffer,
                limits.send_timeout,
                limits.connect_timeout,
                limits.close_timeout,
                limits.instance_inbound_buffer,
                limits.max_websockets,
                instance.max_handles,
                instance.max_memory,
                instance.cpu_deadline
            ),
            (
                1 << 20,
                1024,
                64 << 10,
                s(1),
                s(2),
                s(3),
                2 << 20,
                4,
                64,
                32 << 20,
                Duration::from_millis(100)
            )
        );
        // (`websocket` would read `ca.pem`, gone with the test's folder.)
        let policy = &route.policy;
        assert!(policy.permits(false, Destination::Ip("127.0.0.1".parse().unwrap()), 9001));
        assert!(!policy.permits(false, Destination::Ip("127.0.0.1".parse().unwrap()), 9002));
    }

    /// (what, manifest text, words the one line must hold). Each line also
    /// names the file. `echo.wasm`, `router.wasm`, `ca.pem`, `cert.pem` and
    /// `key.pem` exist; nothing else does.
    #[test]
    fn every_error_is_one_line_naming_file_line_and_key() {
        let route = "[[route]]\npath = \"/\"\ncomponent = \"echo.wasm\"\n";
        let cases: Vec<(&str, String, &[&str])> = vec![
            (
                "unknown top-level key",
                format!("colour = \"red\"\n{route}"),
                &["line 1", "key `colour`", "unknown key", "expected one of", "`listen`"],
            ),
            (
                "unknown route key",
                "[[route]]\npath = \"/\"\ncomponent = \"echo.wasm\"\ncompnent = \"x\"\n".into(),
                &["line 4", "[[route]] #1", "key `compnent`", "unknown key", "fix its spelling"],
            ),
            (
                "unknown key in the second route",
                format!("{route}[[route]]\npath = \"/a\"\ncomponent = \"echo.wasm\"\nmax-msg-size = 3\n"),
                &["line 7", "[[route]] #2", "key `max-msg-size`", "unknown key"],
            ),
            (
                "unknown tls key",
                format!("[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\npassword = \"x\"\n{route}"),
                &["line 4", "[tls]", "key `password`", "unknown key"],
            ),
            (
                "missing component key",
                "[[route]]\npath = \"/\"\n".into(),
                &["key `component`", "required"],
            ),
            (
                "missing component file",
                "[[route]]\npath = \"/\"\ncomponent = \"missing.wasm\"\n".into(),
                &["line 3", "key `component`", "missing.wasm does not exist", "fix the path"],
            ),
            (
                "route listed twice",
                format!("{route}\n[[route]]\npath = \"/\"\ncomponent = \"router.wasm\"\n"),
                &["line 6", "[[route]] #2", "key `path`", "`/` is listed twice (first on line 2)"],
            ),
            (
                "route listed twice, once with a trailing slash",
                "[[route]]\npath = \"/chat\"\ncomponent = \"echo.wasm\"\n[[route]]\npath = \"/chat/\"\ncomponent = \"echo.wasm\"\n".into(),
                &["line 5", "`/chat` is listed twice (first on line 2)"],
            ),
            (
                "path without a slash",
                "[[route]]\npath = \"chat\"\ncomponent = \"echo.wasm\"\n".into(),
                &["line 2", "key `path`", "start it with `/`"],
            ),
            (
                "path with a query",
                "[[route]]\npath = \"/chat?x\"\ncomponent = \"echo.wasm\"\n".into(),
                &["line 2", "key `path`", "no query"],
            ),
            (
                "bad size unit",
                format!("{route}max-message-size = \"16XB\"\n"),
                &["line 4", "[[route]] #1", "key `max-message-size`", "unknown size unit `XB`"],
            ),
            (
                "zero size",
                format!("{route}max-memory = 0\n"),
                &["line 4", "key `max-memory`", "above 0"],
            ),
            (
                "bad duration unit",
                format!("{route}cpu-deadline = \"10h\"\n"),
                &["line 4", "key `cpu-deadline`", "use ms, s or m"],
            ),
            (
                "duration as a number",
                format!("handshake-timeout = 10\n{route}"),
                &["line 1", "key `handshake-timeout`", "\"10s\""],
            ),
            (
                "count as a string",
                format!("{route}max-websockets = \"many\"\n"),
                &["line 4", "key `max-websockets`", "a whole number such as 128"],
            ),
            (
                "negative count",
                format!("max-connections = -1\n{route}"),
                &["line 1", "key `max-connections`", "-1 is not a count"],
            ),
            (
                "bad allow pattern",
                format!("{route}allow = [\"ws://127.0.0.1:9001\",\n  \"ftp://x\"]\n"),
                &["line 5", "key `allow`", "invalid --allow pattern `ftp://x`", "ws, wss or *"],
            ),
            (
                "bad allow-origin pattern",
                format!("{route}allow-origin = [\"example.com\"]\n"),
                &["line 4", "key `allow-origin`", "invalid --allow-origin pattern `example.com`"],
            ),
            (
                "missing CA file",
                format!("{route}ca-file = \"nope.pem\"\n"),
                &["line 4", "key `ca-file`", "nope.pem does not exist"],
            ),
            (
                "missing TLS key file",
                format!("[tls]\ncert = \"cert.pem\"\nkey = \"nope.key\"\n{route}"),
                &["line 3", "[tls]", "key `key`", "nope.key does not exist"],
            ),
            (
                "TLS without its key",
                format!("[tls]\ncert = \"cert.pem\"\n{route}"),
                &["key `key`", "required"],
            ),
            (
                "bad listen address",
                format!("listen = \"8080\"\n{route}"),
                &["line 1", "key `listen`", "not HOST:PORT"],
            ),
            (
                "bad metrics address",
                format!("metrics = \"localhost:http\"\n{route}"),
                &["line 1", "key `metrics`", "not HOST:PORT"],
            ),
            (
                "zero keepalive timeout",
                format!("keepalive-timeout = \"0s\"\n{route}"),
                &["line 1", "key `keepalive-timeout`", "more than 0s"],
            ),
            (
                "no route",
                "listen = \"127.0.0.1:8080\"\n".into(),
                &["no route", "[[route]]"],
            ),
            ("empty file", String::new(), &["no route"]),
            (
                "TOML syntax",
                format!("{route}max-memory = \"16MiB\n"),
                &["line 4"],
            ),
            (
                "a key given twice",
                "[[route]]\npath = \"/\"\npath = \"/a\"\ncomponent = \"echo.wasm\"\n".into(),
                &["line 3", "key `path`", "given twice"],
            ),
            (
                "a route that is not a table",
                "route = \"/\"\n".into(),
                &["line 1", "key `route`", "invalid type"],
            ),
        ];
        for (what, text, words) in cases {
            let err = load(&text)
                .map(|_| ())
                .err()
                .unwrap_or_else(|| panic!("{what}: accepted"))
                .to_string();
            eprintln!("{what}: {err}");
            assert!(!err.contains('\n'), "{what}: not one line: {err}");
            assert!(err.contains("wsbox.toml"), "{what}: no file: {err}");
            for word in words {
                assert!(err.contains(word), "{what}: {err:?} lacks {word:?}");
            }
        }
    }

    #[test]
    fn an_unreadable_manifest_names_the_flag() {
        let err = Manifest::load(Path::new("/nonexistent/wsbox.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/wsbox.toml") && err.contains("--config"),
            "{err}"
        );
    }
}
