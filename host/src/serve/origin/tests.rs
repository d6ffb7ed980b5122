//! Unit tests of the Origin check: patterns, parsing and the refusals' wording.

use super::*;

fn policy(patterns: &[&str], require: bool) -> OriginPolicy {
    OriginPolicy::new(patterns, require).unwrap()
}

#[test]
fn patterns_parse_into_their_parts() {
    use OriginHost as H;
    use OriginPort as P;
    use OriginScheme as S;
    let site = |scheme, host, port| OriginPattern::Site { scheme, host, port };
    let name = |n: &str| H::Name(n.split('.').map(str::to_string).collect());
    for (text, want) in [
        (
            "https://example.com",
            site(S::Https, name("example.com"), P::Default),
        ),
        (
            "HTTPS://Example.COM/",
            site(S::Https, name("example.com"), P::Default),
        ),
        (
            "http://*.example.com:8080",
            site(S::Http, name("*.example.com"), P::Number(8080)),
        ),
        ("*://*:*", site(S::Any, name("*"), P::Any)),
        (
            "http://localhost:3000",
            site(S::Http, H::Localhost, P::Number(3000)),
        ),
        (
            "http://127.0.0.1",
            site(S::Http, H::Ip("127.0.0.1".parse().unwrap()), P::Default),
        ),
        (
            "https://[::1]:8443",
            site(S::Https, H::Ip("::1".parse().unwrap()), P::Number(8443)),
        ),
        ("null", OriginPattern::Null),
        ("NULL", OriginPattern::Null),
    ] {
        assert_eq!(text.parse::<OriginPattern>(), Ok(want), "{text}");
    }
}

#[test]
fn patterns_display_as_written() {
    for text in [
        "https://example.com",
        "http://*.example.com:8080",
        "*://*:*",
        "https://[::1]:8443",
        "null",
    ] {
        assert_eq!(text.parse::<OriginPattern>().unwrap().to_string(), text);
    }
}

#[test]
fn bad_patterns_say_the_fix() {
    for (text, problem) in [
        ("example.com", "no `://`"),
        ("ftp://example.com", "http, https or *"),
        ("wss://example.com", "not ws or wss"),
        ("https://example.com/app", "drop the path"),
        ("https://user@example.com", "drop the path"),
        ("https://", "the host is empty"),
        ("https://ex_ample.com", "is not a host label"),
        ("https://ex*.com", "is not a host label"),
        ("https://*.*", "a single `*`"),
        ("https://example.com:0", "1 to 65535"),
        ("https://example.com:99999", "1 to 65535"),
        ("https://example.com:+80", "1 to 65535"),
        ("https://::1", "in brackets"),
        ("https://[::1", "closing `]`"),
        ("https://[::1]x", "only `:port`"),
    ] {
        let err = text.parse::<OriginPattern>().unwrap_err();
        assert!(err.problem.contains(problem), "{text}: {}", err.problem);
        let line = err.to_string();
        assert!(
            line.contains(&format!("`{text}`")) && line.contains("scheme://host[:port]"),
            "{line}"
        );
    }
    let err = OriginPolicy::new(&["https://a.com", "nope"], false).unwrap_err();
    assert_eq!(err.pattern, "nope");
}

/// Asserts which `origins` `patterns` accept (`true`) or refuse, with
/// `require` as --require-origin.
fn assert_origins(patterns: &[&str], require: bool, origins: &[(Option<&str>, bool)]) {
    let policy = policy(patterns, require);
    for (origin, accepted) in origins {
        let got = policy.check(*origin);
        assert_eq!(
            got.is_ok(),
            *accepted,
            "patterns {patterns:?}, require {require}, origin {origin:?}: {got:?}"
        );
    }
}

/// No patterns: every origin, with or without one (unless one is required).
#[test]
fn without_patterns_every_origin_passes() {
    assert_origins(
        &[],
        false,
        &[
            (Some("https://evil.example"), true),
            (Some("garbage"), true),
            (None, true),
        ],
    );
    assert_origins(
        &[],
        true,
        &[(None, false), (Some("https://any.example"), true)],
    );
}

/// An exact site, with the scheme's default port.
#[test]
fn a_site_matches_its_scheme_host_and_default_port() {
    assert_origins(
        &["https://example.com"],
        false,
        &[
            (Some("https://example.com"), true),
            (Some("https://example.com:443"), true),
            (Some("https://example.com:8443"), false),
            (Some("http://example.com"), false),
        ],
    );
    assert_origins(
        &["http://example.com"],
        false,
        &[
            (Some("http://example.com:80"), true),
            (Some("http://example.com:443"), false),
        ],
    );
    assert_origins(
        &["https://example.com"],
        false,
        &[
            (Some("https://example.com.evil.net"), false),
            (Some("https://evil-example.com"), false),
            (Some("https://sub.example.com"), false),
        ],
    );
}

/// Scheme and host match in any case.
#[test]
fn scheme_and_host_match_in_any_case() {
    assert_origins(
        &["https://example.com"],
        false,
        &[(Some("HTTPS://EXAMPLE.COM"), true)],
    );
    assert_origins(
        &["https://EXAMPLE.com"],
        false,
        &[(Some("https://example.COM"), true)],
    );
}

/// `*` stands for one whole label, never an IP or localhost.
#[test]
fn a_star_is_one_whole_label() {
    assert_origins(
        &["https://*.example.com"],
        false,
        &[
            (Some("https://app.example.com"), true),
            (Some("https://example.com"), false),
            (Some("https://a.b.example.com"), false),
            (Some("https://app.example.org"), false),
        ],
    );
    assert_origins(
        &["https://*"],
        false,
        &[
            (Some("https://anything.example"), true),
            (Some("https://127.0.0.1"), false),
            (Some("https://localhost"), false),
        ],
    );
}

/// Ports match exactly, by the default, or by `*`.
#[test]
fn ports_match_exactly_or_by_star() {
    assert_origins(
        &["http://localhost:3000"],
        false,
        &[
            (Some("http://localhost:3000"), true),
            (Some("http://localhost:3001"), false),
            (Some("http://localhost"), false),
        ],
    );
    assert_origins(
        &["http://localhost:*"],
        false,
        &[
            (Some("http://localhost:5173"), true),
            (Some("http://localhost"), true),
        ],
    );
    assert_origins(
        &["*://example.com"],
        false,
        &[
            (Some("http://example.com"), true),
            (Some("https://example.com"), true),
            (Some("https://example.com:80"), false),
        ],
    );
}

/// IP literals match as addresses, not as names.
#[test]
fn ip_literals_match_as_addresses() {
    assert_origins(
        &["http://127.0.0.1:8080"],
        false,
        &[(Some("http://127.0.0.1:8080"), true)],
    );
    assert_origins(
        &["http://[::1]:8080"],
        false,
        &[
            (Some("http://[::1]:8080"), true),
            (Some("http://[0:0::1]:8080"), true),
        ],
    );
    assert_origins(
        &["http://127.0.0.1:8080"],
        false,
        &[(Some("http://localhost:8080"), false)],
    );
}

/// `null` matches only the `null` pattern.
#[test]
fn null_matches_only_the_null_pattern() {
    assert_origins(&["https://example.com"], false, &[(Some("null"), false)]);
    assert_origins(
        &["https://example.com", "null"],
        false,
        &[(Some("null"), true)],
    );
    assert_origins(&["null"], false, &[(Some("https://example.com"), false)]);
}

/// What is not an origin at all is refused.
#[test]
fn what_is_not_an_origin_is_refused() {
    assert_origins(
        &["https://example.com"],
        false,
        &[
            (Some(""), false),
            (Some("https://example.com/path"), false),
            (Some("https://example.com https://example.com"), false),
            (Some("chrome-extension://abcdef"), false),
            (Some("https://exa mple.com"), false),
            (Some("https://example.com:"), false),
        ],
    );
}

/// Without an origin, only --require-origin refuses.
#[test]
fn without_an_origin_only_require_origin_refuses() {
    assert_origins(&["https://example.com"], false, &[(None, true)]);
    assert_origins(
        &["https://example.com"],
        true,
        &[(None, false), (Some("https://example.com"), true)],
    );
}

/// Any one of several patterns accepts.
#[test]
fn any_one_of_several_patterns_accepts() {
    assert_origins(
        &["https://a.example", "https://b.example"],
        false,
        &[(Some("https://b.example"), true)],
    );
}

#[test]
fn headers_hold_at_most_one_origin() {
    let policy = policy(&["https://example.com"], false);
    let headers = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        policy.check_headers(&headers(&[
            ("Host", "x"),
            ("oRiGiN", "https://example.com")
        ])),
        Ok(())
    );
    assert_eq!(policy.check_headers(&headers(&[("Host", "x")])), Ok(()));
    assert_eq!(
        policy.check_headers(&headers(&[
            ("Origin", "https://example.com"),
            ("Origin", "https://example.com")
        ])),
        Err(OriginRefused::Several(2))
    );
    let refused = policy
        .check_headers(&headers(&[("Origin", "https://evil\u{1b}[2J")]))
        .unwrap_err();
    assert!(
        refused.to_string().contains(r"\u{1b}"),
        "the log line escapes the peer's text: {refused}"
    );
}
