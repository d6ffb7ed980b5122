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
//!
//! After DNS, every address is checked again: an internal address (see
//! [`is_internal`]) is refused unless a pattern names that IP literally, or,
//! for a loopback address, a pattern names `localhost`. So a name that
//! resolves to 127.0.0.1 or 169.254.169.254 is denied.

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
    // A fully qualified name's trailing dot changes nothing.
    let host = host.strip_suffix('.').unwrap_or(host);
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
    let labels: Vec<String> = host.split('.').map(str::to_string).collect();
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

/// Whether `ip` is internal: loopback, private (RFC 1918, shared address
/// space, IPv6 unique local), link-local, unspecified, "this network",
/// broadcast or multicast, or the IPv4-mapped IPv6 form of one of these.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (b & 0xc0) == 64)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

impl Policy {
    /// Whether `connect` may use an address that a destination resolved to
    /// (the destination itself was already permitted). Public addresses
    /// may; an internal one only if a pattern names it literally, or, for
    /// loopback, names `localhost`.
    pub fn permits_address(&self, secure: bool, ip: IpAddr, port: u16) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        !is_internal(ip)
            || self.permits(secure, Destination::Ip(ip), port)
            || (ip.is_loopback() && self.permits(secure, Destination::Name("localhost"), port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised_in_every_form() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn internal_addresses_need_a_pattern_that_names_them() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let names_only = Policy::from_patterns(&["ws://*:*"]).unwrap();
        assert!(names_only.permits_address(false, ip("93.184.216.34"), 80));
        assert!(!names_only.permits_address(false, ip("127.0.0.1"), 80));
        assert!(!names_only.permits_address(false, ip("::ffff:169.254.169.254"), 80));
        let literal = Policy::from_patterns(&["ws://*:*", "ws://10.0.0.5:9000"]).unwrap();
        assert!(literal.permits_address(false, ip("10.0.0.5"), 9000));
        assert!(literal.permits_address(false, ip("::ffff:10.0.0.5"), 9000));
        assert!(!literal.permits_address(false, ip("10.0.0.5"), 9001));
        let local = Policy::from_patterns(&["ws://localhost:*"]).unwrap();
        assert!(local.permits_address(false, ip("127.0.0.1"), 1234));
        assert!(local.permits_address(false, ip("::1"), 1234));
        assert!(!local.permits_address(false, ip("192.168.0.1"), 1234));
    }

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

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any text: parsing never panics, and what parses prints back to
        /// the same pattern.
        #[test]
        fn any_text_parses_or_is_refused_with_advice(text in "\\PC{0,40}") {
            match text.parse::<AllowPattern>() {
                Ok(pattern) => prop_assert_eq!(pattern.to_string().parse::<AllowPattern>(), Ok(pattern)),
                Err(e) => prop_assert!(e.to_string().contains("scheme://host[:port]")),
            }
        }

        /// Pattern-shaped text, the likelier kind to reach deep branches.
        #[test]
        fn pattern_shaped_text_round_trips(
            scheme in "(ws|wss|\\*|WS|http|)",
            labels in proptest::collection::vec("(\\*|[a-z0-9-]{0,8}|[0-9]{1,3}|localhost|\\[::1\\])", 0..4),
            port in "(|:\\*|:[0-9]{0,6}|:x)",
        ) {
            let text = format!("{scheme}://{}{port}", labels.join("."));
            if let Ok(pattern) = text.parse::<AllowPattern>() {
                let again: AllowPattern = pattern.to_string().parse().unwrap();
                prop_assert_eq!(again, pattern);
            }
        }

        /// Matching never panics and an IP is never matched by a name pattern.
        #[test]
        fn ips_only_match_patterns_that_name_them(a in any::<u8>(), b in any::<u8>(), port in any::<u16>()) {
            let policy = Policy::from_patterns(&["*://*:*", "ws://*.example.com:*"]).unwrap();
            let ip = IpAddr::from([10, a, b, 1]);
            prop_assert!(!policy.permits(false, Destination::Ip(ip), port));
            prop_assert!(!policy.permits_address(true, ip, port));
        }
    }
}
