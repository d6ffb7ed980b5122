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

/// (patterns, require-origin, Origin header, accepted?)
#[test]
fn origins_against_patterns() {
    let cases: &[(&[&str], bool, Option<&str>, bool)] = &[
        // No patterns: everything, with or without an origin.
        (&[], false, Some("https://evil.example"), true),
        (&[], false, Some("garbage"), true),
        (&[], false, None, true),
        (&[], true, None, false),
        (&[], true, Some("https://any.example"), true),
        // Exact site, default ports.
        (
            &["https://example.com"],
            false,
            Some("https://example.com"),
            true,
        ),
        (
            &["https://example.com"],
            false,
            Some("https://example.com:443"),
            true,
        ),
        (
            &["https://example.com"],
            false,
            Some("https://example.com:8443"),
            false,
        ),
        (
            &["https://example.com"],
            false,
            Some("http://example.com"),
            false,
        ),
        (
            &["http://example.com"],
            false,
            Some("http://example.com:80"),
            true,
        ),
        (
            &["http://example.com"],
            false,
            Some("http://example.com:443"),
            false,
        ),
        (
            &["https://example.com"],
            false,
            Some("https://example.com.evil.net"),
            false,
        ),
        (
            &["https://example.com"],
            false,
            Some("https://evil-example.com"),
            false,
        ),
        (
            &["https://example.com"],
            false,
            Some("https://sub.example.com"),
            false,
        ),
        // Case of scheme and host.
        (
            &["https://example.com"],
            false,
            Some("HTTPS://EXAMPLE.COM"),
            true,
        ),
        (
            &["https://EXAMPLE.com"],
            false,
            Some("https://example.COM"),
            true,
        ),
        // `*` as a whole label.
        (
            &["https://*.example.com"],
            false,
            Some("https://app.example.com"),
            true,
        ),
        (
            &["https://*.example.com"],
            false,
            Some("https://example.com"),
            false,
        ),
        (
            &["https://*.example.com"],
            false,
            Some("https://a.b.example.com"),
            false,
        ),
        (
            &["https://*.example.com"],
            false,
            Some("https://app.example.org"),
            false,
        ),
        (
            &["https://*"],
            false,
            Some("https://anything.example"),
            true,
        ),
        (&["https://*"], false, Some("https://127.0.0.1"), false),
        (&["https://*"], false, Some("https://localhost"), false),
        // Ports.
        (
            &["http://localhost:3000"],
            false,
            Some("http://localhost:3000"),
            true,
        ),
        (
            &["http://localhost:3000"],
            false,
            Some("http://localhost:3001"),
            false,
        ),
        (
            &["http://localhost:3000"],
            false,
            Some("http://localhost"),
            false,
        ),
        (
            &["http://localhost:*"],
            false,
            Some("http://localhost:5173"),
            true,
        ),
        (
            &["http://localhost:*"],
            false,
            Some("http://localhost"),
            true,
        ),
        (
            &["*://example.com"],
            false,
            Some("http://example.com"),
            true,
        ),
        (
            &["*://example.com"],
            false,
            Some("https://example.com"),
            true,
        ),
        (
            &["*://example.com"],
            false,
            Some("https://example.com:80"),
            false,
        ),
        // IP literals.
        (
            &["http://127.0.0.1:8080"],
            false,
            Some("http://127.0.0.1:8080"),
            true,
        ),
        (
            &["http://[::1]:8080"],
            false,
            Some("http://[::1]:8080"),
            true,
        ),
        (
            &["http://[::1]:8080"],
            false,
            Some("http://[0:0::1]:8080"),
            true,
        ),
        (
            &["http://127.0.0.1:8080"],
            false,
            Some("http://localhost:8080"),
            false,
        ),
        // `null`.
        (&["https://example.com"], false, Some("null"), false),
        (&["https://example.com", "null"], false, Some("null"), true),
        (&["null"], false, Some("https://example.com"), false),
        // Not origins at all.
        (&["https://example.com"], false, Some(""), false),
        (
            &["https://example.com"],
            false,
            Some("https://example.com/path"),
            false,
        ),
        (
            &["https://example.com"],
            false,
            Some("https://example.com https://example.com"),
            false,
        ),
        (
            &["https://example.com"],
            false,
            Some("chrome-extension://abcdef"),
            false,
        ),
        (
            &["https://example.com"],
            false,
            Some("https://exa mple.com"),
            false,
        ),
        (
            &["https://example.com"],
            false,
            Some("https://example.com:"),
            false,
        ),
        // Without an origin: only --require-origin refuses.
        (&["https://example.com"], false, None, true),
        (&["https://example.com"], true, None, false),
        (
            &["https://example.com"],
            true,
            Some("https://example.com"),
            true,
        ),
        // Several patterns: any one.
        (
            &["https://a.example", "https://b.example"],
            false,
            Some("https://b.example"),
            true,
        ),
    ];
    for (patterns, require, origin, accepted) in cases {
        let got = policy(patterns, *require).check(*origin);
        assert_eq!(
            got.is_ok(),
            *accepted,
            "patterns {patterns:?}, require {require}, origin {origin:?}: {got:?}"
        );
    }
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
