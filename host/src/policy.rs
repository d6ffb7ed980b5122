//! The outbound policy: which `ws://` and `wss://` destinations a guest may
//! connect to. It denies by default and is checked before any DNS lookup or
//! socket.
//!
//! A pattern is `scheme://host[:port]`:
//! - `scheme` is `ws`, `wss` or `*`;
//! - `host` is a DNS name whose labels may each be `*`, an IPv4 literal, a
//!   bracketed IPv6 literal, or `localhost`;
//! - `port` is a number or `*`; without it, the scheme's default (80 for
//!   `ws`, 443 for `wss`).
//!
//! An IP literal or `localhost` is matched only by a pattern that names it:
//! `ws://*` matches every DNS name but not `ws://127.0.0.1`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A URL scheme a pattern accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemePattern {
    /// `ws://` only.
    Ws,
    /// `wss://` only.
    Wss,
    /// Either.
    Any,
}

/// A host a pattern accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// A DNS name, lowercase; a label of `*` matches any one label.
    Name(Vec<String>),
    /// Exactly this IP address.
    Ip(IpAddr),
    /// `localhost`.
    Localhost,
}

/// A port a pattern accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPattern {
    /// Exactly this port.
    Number(u16),
    /// The default port of the URL's scheme.
    Default,
    /// Any port.
    Any,
}

/// One allow-list entry, parsed from `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowPattern {
    /// The scheme part.
    pub scheme: SchemePattern,
    /// The host part.
    pub host: HostPattern,
    /// The port part.
    pub port: PortPattern,
}

/// Why a pattern could not be parsed. The message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --allow pattern `{pattern}`: {problem}; write it as scheme://host[:port], e.g. ws://127.0.0.1:9001, wss://*.example.com or ws://localhost:*")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FromStr for AllowPattern {
    type Err = PatternError;

    fn from_str(pattern: &str) -> Result<Self, PatternError> {
        let fail = |problem: &str| PatternError {
            pattern: pattern.to_string(),
            problem: problem.to_string(),
        };
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or_else(|| fail("it has no `://` after the scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "ws" => SchemePattern::Ws,
            "wss" => SchemePattern::Wss,
            "*" => SchemePattern::Any,
            _ => return Err(fail("the scheme must be ws, wss or *")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(fail("a pattern names only a scheme, a host and a port: drop the path, query, fragment or user info"));
        }
        let (host, port) = split_host_port(rest).map_err(|p| fail(&p))?;
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Number(
                p.parse::<u16>()
                    .ok()
                    .filter(|&n| n != 0)
                    .ok_or_else(|| fail("the port must be a number from 1 to 65535, or *"))?,
            ),
        };
        let host = parse_host(host).map_err(|p| fail(&p))?;
        Ok(AllowPattern { scheme, host, port })
    }
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = s.strip_prefix('[') {
        let (ip, after) = inner
            .split_once(']')
            .ok_or("an IPv6 address needs its closing `]`")?;
        return match after {
            "" => Ok((ip, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((ip, Some(port))),
                None => Err("only `:port` may follow `]`".into()),
            },
        };
    }
    match s.rsplit_once(':') {
        Some((_, _)) if s.matches(':').count() > 1 => {
            Err("put an IPv6 address in brackets, e.g. ws://[::1]:9001".into())
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((s, None)),
    }
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip));
    }
    let host = host.to_ascii_lowercase();
    if host == "localhost" {
        return Ok(HostPattern::Localhost);
    }
    let labels: Vec<String> = host
        .trim_end_matches('.')
        .split('.')
        .map(str::to_string)
        .collect();
    for label in &labels {
        let ok = label == "*"
            || (!label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !ok {
            return Err(format!(
                "`{label}` is not a host label: use letters, digits and `-`, or `*` for a whole label"
            ));
        }
    }
    if labels.iter().all(|l| l == "*") && labels.len() > 1 {
        return Err("use a single `*` to match every DNS name".into());
    }
    Ok(HostPattern::Name(labels))
}

impl fmt::Display for AllowPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            SchemePattern::Ws => "ws",
            SchemePattern::Wss => "wss",
            SchemePattern::Any => "*",
        };
        write!(f, "{scheme}://")?;
        match &self.host {
            HostPattern::Name(labels) => write!(f, "{}", labels.join("."))?,
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            HostPattern::Ip(ip) => write!(f, "{ip}")?,
            HostPattern::Localhost => write!(f, "localhost")?,
        }
        match self.port {
            PortPattern::Number(p) => write!(f, ":{p}"),
            PortPattern::Any => write!(f, ":*"),
            PortPattern::Default => Ok(()),
        }
    }
}

/// The host part of a destination URL, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// A DNS name (lowercase, without a trailing dot).
    Name(&'a str),
    /// An IP literal.
    Ip(IpAddr),
}

impl AllowPattern {
    /// Whether this pattern admits the destination.
    pub fn matches(&self, secure: bool, host: Destination<'_>, port: u16) -> bool {
        let scheme_ok = match self.scheme {
            SchemePattern::Ws => !secure,
            SchemePattern::Wss => secure,
            SchemePattern::Any => true,
        };
        let port_ok = match self.port {
            PortPattern::Number(p) => p == port,
            PortPattern::Default => port == if secure { 443 } else { 80 },
            PortPattern::Any => true,
        };
        let host_ok = match (&self.host, host) {
            (HostPattern::Ip(a), Destination::Ip(b)) => *a == b,
            (HostPattern::Localhost, Destination::Name(n)) => n == "localhost",
            (HostPattern::Name(labels), Destination::Name(n)) if n != "localhost" => {
                if labels.len() == 1 && labels[0] == "*" {
                    true
                } else {
                    let parts: Vec<&str> = n.split('.').collect();
                    parts.len() == labels.len()
                        && labels.iter().zip(&parts).all(|(l, p)| l == "*" || l == p)
                }
            }
            _ => false,
        };
        scheme_ok && port_ok && host_ok
    }
}

/// The allow-list. Empty means every destination is denied.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allow: Vec<AllowPattern>,
}

impl Policy {
    /// A policy that denies everything.
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// Parses each pattern; the first bad one is the error.
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let allow = patterns
            .iter()
            .map(|p| p.as_ref().parse())
            .collect::<Result<_, _>>()?;
        Ok(Policy { allow })
    }

    /// Adds one pattern.
    pub fn allow(&mut self, pattern: AllowPattern) -> &mut Self {
        self.allow.push(pattern);
        self
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[AllowPattern] {
        &self.allow
    }

    /// Whether any pattern admits the destination.
    pub fn permits(&self, secure: bool, host: Destination<'_>, port: u16) -> bool {
        self.allow.iter().any(|p| p.matches(secure, host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AllowPattern {
        s.parse().unwrap()
    }

    #[test]
    fn patterns_match_scheme_host_and_port() {
        let ip = |s: &str| Destination::Ip(s.parse().unwrap());
        assert!(p("ws://127.0.0.1:9001").matches(false, ip("127.0.0.1"), 9001));
        assert!(!p("ws://127.0.0.1:9001").matches(true, ip("127.0.0.1"), 9001));
        assert!(!p("ws://127.0.0.1:9001").matches(false, ip("127.0.0.1"), 9002));
        assert!(p("wss://*.example.com").matches(true, Destination::Name("a.example.com"), 443));
        assert!(!p("wss://*.example.com").matches(true, Destination::Name("example.com"), 443));
        assert!(!p("wss://*.example.com").matches(true, Destination::Name("a.example.com"), 8443));
        assert!(p("ws://localhost:*").matches(false, Destination::Name("localhost"), 1234));
        assert!(p("*://*:*").matches(true, Destination::Name("x.y"), 1));
        assert!(!p("*://*:*").matches(true, ip("10.0.0.1"), 1));
        assert!(!p("*://*:*").matches(true, Destination::Name("localhost"), 1));
        assert!(p("ws://[::1]:80").matches(false, ip("::1"), 80));
        assert_eq!(p("WS://Example.COM:*").to_string(), "ws://example.com:*");
    }

    #[test]
    fn bad_patterns_say_how_to_fix_them() {
        for bad in [
            "127.0.0.1:80",
            "http://x",
            "ws://",
            "ws://a:0",
            "ws://a:x",
            "ws://::1",
            "ws://a/b",
            "ws://a_b",
        ] {
            let err = bad.parse::<AllowPattern>().unwrap_err().to_string();
            assert!(err.contains("scheme://host[:port]"), "{err}");
        }
    }
}
