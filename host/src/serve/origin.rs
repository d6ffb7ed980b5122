//! Which browser pages may open a websocket here: `--allow-origin` patterns checked against a request's `Origin`.
//!
//! A browser sends the page's origin with every WebSocket upgrade, and
//! sends the page's cookies too: without a check, any site a user visits
//! can open a websocket to this server as that user (cross-site WebSocket
//! hijacking). A pattern is `scheme://host[:port]`:
//! - `scheme` is `http`, `https` or `*` (either);
//! - `host` is a DNS name whose labels may each be `*`, an IPv4 literal, a
//!   bracketed IPv6 literal or `localhost`; a lone `*` is every DNS name.
//!   As for `--allow`, an IP literal or `localhost` is matched only by a
//!   pattern that names it;
//! - `port` is a number or `*`; without it, the scheme's default (80 for
//!   `http`, 443 for `https`).
//!
//! The pattern `null` admits the `null` origin (sandboxed frames, `file:`
//! pages). Scheme and host compare without regard to case.
//!
//! Without patterns every origin is accepted. A request without `Origin`
//! (a client that is not a browser) is accepted unless `--require-origin`.

use crate::site::{is_dns_label, parse_port, split_host_port, Destination};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A scheme an origin pattern accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginScheme {
    /// `http://` only.
    Http,
    /// `https://` only.
    Https,
    /// Either.
    Any,
}

/// A host an origin pattern accepts (the same as `--allow`'s).
pub use crate::site::HostPattern as OriginHost;
/// A port an origin pattern accepts (the same as `--allow`'s).
pub use crate::site::PortPattern as OriginPort;

/// One `--allow-origin` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `scheme://host[:port]`.
    Site {
        /// The scheme part.
        scheme: OriginScheme,
        /// The host part.
        host: OriginHost,
        /// The port part.
        port: OriginPort,
    },
    /// `null`: the opaque origin of sandboxed frames and `file:` pages.
    Null,
}

/// Why an `--allow-origin` pattern could not be parsed. The message says
/// how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --allow-origin pattern `{pattern}`: {problem}; write it as scheme://host[:port], e.g. https://example.com, https://*.example.com, http://localhost:3000 or null")]
pub struct OriginPatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FromStr for OriginPattern {
    type Err = OriginPatternError;

    fn from_str(pattern: &str) -> Result<Self, OriginPatternError> {
        let fail = |problem: &str| OriginPatternError {
            pattern: pattern.to_string(),
            problem: problem.to_string(),
        };
        if pattern.eq_ignore_ascii_case("null") {
            return Ok(OriginPattern::Null);
        }
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or_else(|| fail("it has no `://` after the scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => OriginScheme::Http,
            "https" => OriginScheme::Https,
            "*" => OriginScheme::Any,
            "ws" | "wss" => {
                return Err(fail(
                    "an origin is the page's, so its scheme is http or https, not ws or wss",
                ))
            }
            _ => return Err(fail("the scheme must be http, https or *")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(fail(
                "an origin has only a scheme, a host and a port: drop the path, query, fragment or user info",
            ));
        }
        let (host, port) = split_host_port(rest, "http://[::1]:3000").map_err(|p| fail(&p))?;
        let port = OriginPort::parse(port).map_err(|p| fail(&p))?;
        let host = OriginHost::parse(host).map_err(|p| fail(&p))?;
        Ok(OriginPattern::Site { scheme, host, port })
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let OriginPattern::Site { scheme, host, port } = self else {
            return f.write_str("null");
        };
        let scheme = match scheme {
            OriginScheme::Http => "http",
            OriginScheme::Https => "https",
            OriginScheme::Any => "*",
        };
        write!(f, "{scheme}://{host}{port}")
    }
}

/// An `Origin` header value, parsed (RFC 6454: `scheme://host[:port]`, or
/// `null`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Null,
    Site { secure: bool, host: Host, port: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Origin {
    /// `None` for a value that is no origin of an `http` or `https` page.
    fn parse(value: &str) -> Option<Origin> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("null") {
            return Some(Origin::Null);
        }
        let (scheme, rest) = value.split_once("://")?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let (host, port) = split_host_port(rest, "").ok()?;
        let port = match port {
            None => {
                if secure {
                    443
                } else {
                    80
                }
            }
            Some(p) => parse_port(p)?,
        };
        let host = if let Ok(ip) = host.parse::<IpAddr>() {
            Host::Ip(ip)
        } else {
            let name = host.to_ascii_lowercase();
            if !name.split('.').all(is_dns_label) {
                return None;
            }
            Host::Name(name)
        };
        Some(Origin::Site { secure, host, port })
    }
}

impl OriginPattern {
    fn admits(&self, origin: &Origin) -> bool {
        let (
            OriginPattern::Site {
                scheme,
                host: host_pattern,
                port: port_pattern,
            },
            Origin::Site { secure, host, port },
        ) = (self, origin)
        else {
            return matches!((self, origin), (OriginPattern::Null, Origin::Null));
        };
        let scheme_ok = match scheme {
            OriginScheme::Http => !secure,
            OriginScheme::Https => *secure,
            OriginScheme::Any => true,
        };
        let port_ok = port_pattern.admits(*port, if *secure { 443 } else { 80 });
        let host_ok = host_pattern.admits(match host {
            Host::Name(name) => Destination::Name(name),
            Host::Ip(ip) => Destination::Ip(*ip),
        });
        scheme_ok && port_ok && host_ok
    }
}

/// Why an upgrade request's origin is refused (answered 403 before any
/// instance is made). The message is for the server's log; it holds the
/// peer's text only through `Debug` escaping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginRefused {
    /// No `Origin` header, and `--require-origin` is set.
    #[error("the request has no Origin header, and --require-origin is set")]
    Missing,
    /// More than one `Origin` header.
    #[error("the request has {0} Origin headers")]
    Several(usize),
    /// The origin matches no `--allow-origin` pattern (or is no origin).
    #[error("origin {0:?} matches no --allow-origin pattern")]
    NotAllowed(String),
}

/// The origin check of one route: `--allow-origin` patterns and
/// `--require-origin`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    patterns: Vec<OriginPattern>,
    require: bool,
}

impl OriginPolicy {
    /// Parses each pattern; the first bad one is the error. No patterns:
    /// every origin is accepted.
    pub fn new<S: AsRef<str>>(
        patterns: &[S],
        require_origin: bool,
    ) -> Result<Self, OriginPatternError> {
        let patterns = patterns
            .iter()
            .map(|p| p.as_ref().parse())
            .collect::<Result<_, _>>()?;
        Ok(OriginPolicy {
            patterns,
            require: require_origin,
        })
    }

    /// The policy of patterns already parsed.
    pub fn from_patterns(patterns: Vec<OriginPattern>, require_origin: bool) -> Self {
        OriginPolicy {
            patterns,
            require: require_origin,
        }
    }

    /// The patterns, as parsed.
    pub fn patterns(&self) -> &[OriginPattern] {
        &self.patterns
    }

    /// Checks the value of a request's `Origin` header (`None`: there is
    /// none).
    pub fn check(&self, origin: Option<&str>) -> Result<(), OriginRefused> {
        let Some(value) = origin else {
            return if self.require {
                Err(OriginRefused::Missing)
            } else {
                Ok(())
            };
        };
        if self.patterns.is_empty() {
            return Ok(());
        }
        let admitted = Origin::parse(value)
            .is_some_and(|origin| self.patterns.iter().any(|p| p.admits(&origin)));
        if admitted {
            Ok(())
        } else {
            Err(OriginRefused::NotAllowed(value.to_string()))
        }
    }

    /// Checks a request's headers (name, value): at most one `Origin`
    /// (any case), then [`OriginPolicy::check`].
    pub fn check_headers(&self, headers: &[(String, String)]) -> Result<(), OriginRefused> {
        let mut origins = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("origin"))
            .map(|(_, value)| value.as_str());
        let first = origins.next();
        let more = origins.count();
        if more > 0 {
            return Err(OriginRefused::Several(more + 1));
        }
        self.check(first)
    }
}

#[cfg(test)]
mod tests;
