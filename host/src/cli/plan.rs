//! What `wsbox serve` serves: routes and server settings from the flags and the manifest, a flag given winning over the manifest's key.

use super::args::{LogFormat, ServeArgs};
use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::ArgMatches;
use std::sync::Arc;
use std::time::Duration;
use wsbox::{Config, GuestLine, KeepaliveConfig, Manifest, OriginPolicy, Route, ServeConfig};

/// Which flags were given on the command line (not left at their
/// default): those win over the manifest.
pub(crate) struct Given<'a>(pub(crate) Option<&'a ArgMatches>);

impl Given<'_> {
    pub(crate) fn has(&self, id: &str) -> bool {
        self.0
            .and_then(|m| m.value_source(id))
            .is_some_and(|source| source == ValueSource::CommandLine)
    }
}

/// What `serve` serves, read from the flags and the manifest.
pub(crate) struct Plan {
    pub(crate) manifest: Option<Manifest>,
    pub(crate) routes: Vec<Route>,
}

impl ServeArgs {
    /// The flags that only a one-component server takes.
    pub(crate) fn check_flags_for_config(&self, given: &Given) -> Result<()> {
        let Some(file) = &self.config else {
            return Ok(());
        };
        for (id, flag) in [
            ("allow", "--allow"),
            ("allow_origin", "--allow-origin"),
            ("require_origin", "--require-origin"),
            ("ca_file", "--ca-file"),
        ] {
            if given.has(id) {
                bail!(
                    "{flag} applies to one component, but --config {} gives routes: set `{}` in \
                     each [[route]] of the manifest instead",
                    file.display(),
                    flag.trim_start_matches("--")
                );
            }
        }
        Ok(())
    }

    /// The routes: the manifest's, or the one component's; limit flags
    /// given on the command line win over each route's keys.
    pub(crate) fn plan(&self, base: &Config, given: &Given) -> Result<Plan> {
        let instance = self.limits.instance();
        let Some(file) = &self.config else {
            let component = self
                .component
                .clone()
                .context("give a component file, or --config wsbox.toml")?;
            let origins = OriginPolicy::new(&self.allow_origin, self.require_origin)?;
            let mut websocket = base.clone();
            websocket.limits.keepalive = self.keepalive_config(None, given)?;
            let route = Route {
                path: "/".into(),
                component,
                websocket,
                instance,
                origins,
            };
            return Ok(Plan {
                manifest: None,
                routes: vec![route],
            });
        };
        let manifest = Manifest::load(file)?;
        let keepalive = self.keepalive_config(Some(&manifest), given)?;
        let mut routes = Vec::new();
        for entry in manifest.routes.iter() {
            let mut route = entry.to_route(base, &instance)?;
            self.limits
                .override_given(&mut route.websocket.limits, &mut route.instance, given);
            route.websocket.limits.keepalive = keepalive;
            routes.push(route);
        }
        Ok(Plan {
            manifest: Some(manifest),
            routes,
        })
    }

    /// The server's settings: a flag given wins, then the manifest's key,
    /// then the flag's default.
    pub(crate) fn serve_config(
        &self,
        websocket: Config,
        manifest: Option<&Manifest>,
        given: &Given,
        log_format: LogFormat,
    ) -> Result<ServeConfig> {
        let settings = manifest.map(|m| m.server.clone()).unwrap_or_default();
        fn pick<T>(given: bool, flag: T, key: Option<T>) -> T {
            if given {
                flag
            } else {
                key.unwrap_or(flag)
            }
        }
        let tls_files = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            _ => manifest
                .and_then(|m| m.tls.clone())
                .map(|tls| (tls.cert, tls.key)),
        };
        let tls = tls_files
            .map(|(cert, key)| wsbox::tls_server_config(&cert, &key))
            .transpose()?;
        let mut config = ServeConfig {
            websocket,
            instance: self.limits.instance(),
            tls,
            max_connections: pick(
                given.has("max_connections"),
                self.max_connections,
                settings.max_connections,
            ),
            handshake_timeout: pick(
                given.has("handshake_timeout"),
                self.handshake_timeout.0,
                settings.handshake_timeout,
            ),
            max_handshakes: pick(
                given.has("max_handshakes"),
                self.max_handshakes,
                settings.max_handshakes,
            ),
            shutdown_timeout: pick(
                given.has("shutdown_timeout"),
                self.shutdown_timeout.0,
                settings.shutdown_timeout,
            ),
            guest_log_bytes: pick(
                given.has("guest_log_bytes"),
                self.guest_log_bytes.0,
                settings.guest_log_bytes,
            ),
            guest_log_lines: pick(
                given.has("guest_log_lines"),
                self.guest_log_lines,
                settings.guest_log_lines,
            ),
            pooling: self.pooling || settings.pooling.unwrap_or(false),
            ..ServeConfig::default()
        };
        if log_format == LogFormat::Json {
            config.guest_output = Arc::new(|line: &GuestLine<'_>| {
                tracing::info!(target: "wsbox::guest", client = line.client, route = line.route, "{}", line.text);
            });
        }
        Ok(config)
    }

    /// The keepalive of every connection: a flag given wins, then the
    /// manifest's key, then the flag's default.
    pub(crate) fn keepalive_config(
        &self,
        manifest: Option<&Manifest>,
        given: &Given,
    ) -> Result<Option<KeepaliveConfig>> {
        let settings = manifest.map(|m| &m.server);
        let pick = |id: &str, flag: Duration, key: Option<Duration>| {
            if given.has(id) {
                flag
            } else {
                key.unwrap_or(flag)
            }
        };
        let interval = pick(
            "keepalive",
            self.keepalive.0,
            settings.and_then(|s| s.keepalive),
        );
        let timeout = pick(
            "keepalive_timeout",
            self.keepalive_timeout.0,
            settings.and_then(|s| s.keepalive_timeout),
        );
        KeepaliveConfig::new(interval, timeout).map_err(anyhow::Error::msg)
    }

    pub(crate) fn listen(&self, manifest: Option<&Manifest>) -> String {
        self.listen
            .clone()
            .or_else(|| manifest.and_then(|m| m.listen.clone()))
            .unwrap_or_else(|| "127.0.0.1:8080".into())
    }

    pub(crate) fn metrics(&self, manifest: Option<&Manifest>) -> Option<String> {
        self.metrics
            .clone()
            .or_else(|| manifest.and_then(|m| m.metrics.clone()))
    }
}
