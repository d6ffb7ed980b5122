//! The host and port parts of a `scheme://host[:port]` pattern, shared by
//! `--allow` (outbound destinations) and `--allow-origin` (browser pages):
//! how they parse, what they match and how they print.
//!
//! A host is a DNS name whose labels may each be `*` (a lone `*` is every
//! DNS name), an IPv4 literal, a bracketed IPv6 literal or `localhost`. An
//! IP literal or `localhost` is matched only by a pattern that names it. A
//! port is a number from 1 to 65535 or `*`; without it, the scheme's
//! default.

use std::fmt;
use std::net::IpAddr;

/// A host a pattern accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// A DNS name, lowercase; a label of `*` matches any one label, and a
    /// lone `*` any name.
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
    /// The default port of the scheme.
    Default,
    /// Any port.
    Any,
}

/// A host as a pattern sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// A DNS name (lowercase, without a trailing dot).
    Name(&'a str),
    /// An IP literal.
    Ip(IpAddr),
}

impl HostPattern {
    /// Parses the host part of a pattern; the error says what is wrong.
    pub(crate) fn parse(host: &str) -> Result<Self, String> {
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
        if let Some(label) = labels.iter().find(|l| *l != "*" && !is_dns_label(l)) {
            return Err(format!(
                "`{label}` is not a host label: use letters, digits and `-`, or `*` for a whole label"
            ));
        }
        if labels.len() > 1 && labels.iter().all(|l| l == "*") {
            return Err("use a single `*` to match every DNS name".into());
        }
        Ok(HostPattern::Name(labels))
    }

    /// Whether this pattern admits `host`.
    pub(crate) fn admits(&self, host: Destination<'_>) -> bool {
        match (self, host) {
            (HostPattern::Ip(a), Destination::Ip(b)) => *a == b,
            (HostPattern::Localhost, Destination::Name(n)) => n == "localhost",
            (HostPattern::Name(labels), Destination::Name(n)) if n != "localhost" => {
                if labels.len() == 1 && labels[0] == "*" {
                    return true;
                }
                let parts: Vec<&str> = n.split('.').collect();
                parts.len() == labels.len()
                    && labels.iter().zip(&parts).all(|(l, p)| l == "*" || l == p)
            }
            _ => false,
        }
    }
}

impl PortPattern {
    /// Parses the port part of a pattern (`None`: no port was given).
    pub(crate) fn parse(port: Option<&str>) -> Result<Self, String> {
        match port {
            None => Ok(PortPattern::Default),
            Some("*") => Ok(PortPattern::Any),
            Some(p) => parse_port(p)
                .map(PortPattern::Number)
                .ok_or_else(|| "the port must be a number from 1 to 65535, or *".into()),
        }
    }

    /// Whether this pattern admits `port`, where the scheme's default port
    /// is `default`.
    pub(crate) fn admits(&self, port: u16, default: u16) -> bool {
        match self {
            PortPattern::Number(p) => *p == port,
            PortPattern::Default => port == default,
            PortPattern::Any => true,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Name(labels) => f.write_str(&labels.join(".")),
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            HostPattern::Ip(ip) => write!(f, "{ip}"),
            HostPattern::Localhost => f.write_str("localhost"),
        }
    }
}

/// Prints `:port`, `:*`, or nothing for the default.
impl fmt::Display for PortPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortPattern::Number(p) => write!(f, ":{p}"),
            PortPattern::Any => f.write_str(":*"),
            PortPattern::Default => Ok(()),
        }
    }
}

/// A port number from 1 to 65535, in decimal digits only.
pub(crate) fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n != 0)
}

/// Splits `host[:port]` or `[ipv6][:port]`. An unbracketed IPv6 address is
/// refused with a hint that uses `example`, e.g. `ws://[::1]:9001`.
pub(crate) fn split_host_port<'a>(
    s: &'a str,
    example: &str,
) -> Result<(&'a str, Option<&'a str>), String> {
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
        Some(_) if s.matches(':').count() > 1 => {
            Err(format!("put an IPv6 address in brackets, e.g. {example}"))
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((s, None)),
    }
}

/// A DNS label: 1 to 63 letters, digits or `-`.
pub(crate) fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_decimal_digits_from_1_to_65535() {
        assert_eq!(parse_port("9001"), Some(9001));
        for bad in ["", "0", "65536", "+80", "-1", " 80", "8o"] {
            assert_eq!(parse_port(bad), None, "{bad:?}");
        }
        assert_eq!(PortPattern::parse(None), Ok(PortPattern::Default));
        assert_eq!(PortPattern::parse(Some("*")), Ok(PortPattern::Any));
        assert!(PortPattern::parse(Some("+80")).is_err());
    }

    #[test]
    fn an_unbracketed_ipv6_address_gets_the_callers_example() {
        let e = split_host_port("::1:9001", "ws://[::1]:9001").unwrap_err();
        assert!(e.contains("ws://[::1]:9001"), "{e}");
        assert_eq!(split_host_port("[::1]:80", ""), Ok(("::1", Some("80"))));
        assert_eq!(split_host_port("a.b", ""), Ok(("a.b", None)));
    }

    #[test]
    fn hosts_print_as_they_parse() {
        for host in ["*", "*.example.com", "localhost", "127.0.0.1", "[::1]"] {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            assert_eq!(HostPattern::parse(bare).unwrap().to_string(), host);
        }
    }
}
