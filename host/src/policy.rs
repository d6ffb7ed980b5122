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
//! resolves to 127.0.0.1, 169.254.169.254 or `64:ff9b::7f00:1` is denied.

use crate::site::split_host_port;
pub use crate::site::{Destination, HostPattern, PortPattern};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
        let (host, port) = split_host_port(rest, "ws://[::1]:9001").map_err(|p| fail(&p))?;
        let port = PortPattern::parse(port).map_err(|p| fail(&p))?;
        // A fully qualified name's trailing dot changes nothing.
        let host = host.strip_suffix('.').unwrap_or(host);
        let host = HostPattern::parse(host).map_err(|p| fail(&p))?;
        Ok(AllowPattern { scheme, host, port })
    }
}

impl fmt::Display for AllowPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            SchemePattern::Ws => "ws",
            SchemePattern::Wss => "wss",
            SchemePattern::Any => "*",
        };
        write!(f, "{scheme}://{}{}", self.host, self.port)
    }
}

impl AllowPattern {
    /// Whether this pattern admits the destination.
    pub fn matches(&self, secure: bool, host: Destination<'_>, port: u16) -> bool {
        let scheme_ok = match self.scheme {
            SchemePattern::Ws => !secure,
            SchemePattern::Wss => secure,
            SchemePattern::Any => true,
        };
        let port_ok = self.port.admits(port, if secure { 443 } else { 80 });
        let host_ok = self.host.admits(host);
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

/// What a special-purpose IPv6 range means for [`is_internal`].
#[derive(Debug, Clone, Copy)]
enum V6Range {
    /// Every address in it is internal.
    Internal,
    /// It embeds an IPv4 address in the 32 bits that end this many bits
    /// from the right; the address is internal iff that IPv4 one is.
    EmbedsIpv4 { shift: u32 },
}
use V6Range::{EmbedsIpv4, Internal};

/// IPv4 ranges that are not globally reachable, after the IANA IPv4
/// Special-Purpose Address Registry (the entries whose "Globally Reachable"
/// is False, and the deprecated 6to4 relay anycast block), plus multicast
/// from the IANA IPv4 Multicast Address Space Registry. `192.0.0.0/24` is
/// refused whole, including its few globally reachable anycast addresses.
/// Each row: network, prefix length, what it is.
#[rustfmt::skip]
const INTERNAL_IPV4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0),      8,  "\"this network\""),
    (Ipv4Addr::new(10, 0, 0, 0),     8,  "private (RFC 1918)"),
    (Ipv4Addr::new(100, 64, 0, 0),   10, "shared address space (RFC 6598)"),
    (Ipv4Addr::new(127, 0, 0, 0),    8,  "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0),  16, "link-local"),
    (Ipv4Addr::new(172, 16, 0, 0),   12, "private (RFC 1918)"),
    (Ipv4Addr::new(192, 0, 0, 0),    24, "IETF protocol assignments"),
    (Ipv4Addr::new(192, 0, 2, 0),    24, "documentation (TEST-NET-1)"),
    (Ipv4Addr::new(192, 88, 99, 0),  24, "6to4 relay anycast (deprecated)"),
    (Ipv4Addr::new(192, 168, 0, 0),  16, "private (RFC 1918)"),
    (Ipv4Addr::new(198, 18, 0, 0),   15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation (TEST-NET-2)"),
    (Ipv4Addr::new(203, 0, 113, 0),  24, "documentation (TEST-NET-3)"),
    (Ipv4Addr::new(224, 0, 0, 0),    4,  "multicast"),
    (Ipv4Addr::new(240, 0, 0, 0),    4,  "reserved, and 255.255.255.255 (limited broadcast)"),
];

/// IPv6 ranges that are not globally reachable or that carry an IPv4
/// address, after the IANA IPv6 Special-Purpose Address Registry (the
/// entries whose "Globally Reachable" is False; `2001::/23` is refused
/// whole, including its few globally reachable assignments), plus the
/// deprecated IPv4-compatible and site-local ranges and multicast. The
/// ranges do not overlap. Each row: network, prefix length, meaning, what
/// it is.
#[rustfmt::skip]
const SPECIAL_IPV6: &[(Ipv6Addr, u8, V6Range, &str)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),     96, EmbedsIpv4 { shift: 0 },  "IPv4-mapped"),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),          96, EmbedsIpv4 { shift: 0 },  "IPv4-compatible (deprecated); `::` and `::1` embed 0.0.0.0 and 0.0.0.1"),
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),  96, EmbedsIpv4 { shift: 0 },  "NAT64 well-known prefix"),
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),  48, Internal,                 "NAT64 local-use prefix"),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),      64, Internal,                 "discard-only"),
    (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0),      64, Internal,                 "dummy prefix"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),     23, Internal,                 "IETF protocol assignments, with Teredo (2001::/32) and benchmarking"),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, Internal,                 "documentation"),
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0),     16, EmbedsIpv4 { shift: 80 }, "6to4 (the IPv4 address is bits 16..48)"),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),     20, Internal,                 "documentation"),
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),     16, Internal,                 "segment routing (SRv6) SIDs"),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),     7,  Internal,                 "unique local"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),     10, Internal,                 "link-local"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),     10, Internal,                 "site-local (deprecated)"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),     8,  Internal,                 "multicast"),
];

/// Whether `ip` is internal: in one of the ranges of the tables
/// `INTERNAL_IPV4` and `SPECIAL_IPV6` in this module (loopback, private,
/// shared, link-local, unspecified, documentation, benchmarking, reserved,
/// broadcast, multicast and the other special-purpose ranges), or an IPv6
/// address that embeds an internal IPv4 address (IPv4-mapped,
/// IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => INTERNAL_IPV4.iter().any(|&(network, prefix, _)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(v4) & mask == u32::from(network)
        }),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let range = SPECIAL_IPV6.iter().find(|&&(network, prefix, ..)| {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                bits & mask == u128::from(network)
            });
            match range {
                None => false,
                Some((.., Internal, _)) => true,
                Some(&(.., EmbedsIpv4 { shift }, _)) => {
                    is_internal(IpAddr::V4(Ipv4Addr::from((bits >> shift) as u32)))
                }
            }
        }
    }
}

impl Policy {
    /// Whether `connect` may use an address that a destination resolved to
    /// (the destination itself was already permitted). Public addresses
    /// may; an internal one only if a pattern names it literally, or, for
    /// loopback, names `localhost`. An IPv4-mapped address is matched in
    /// either form.
    pub fn permits_address(&self, secure: bool, resolved: IpAddr, port: u16) -> bool {
        let ip = match resolved {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(resolved),
            v4 => v4,
        };
        !is_internal(ip)
            || self.permits(secure, Destination::Ip(ip), port)
            || self.permits(secure, Destination::Ip(resolved), port)
            || (ip.is_loopback() && self.permits(secure, Destination::Name("localhost"), port))
    }
}

#[cfg(test)]
mod tests;
