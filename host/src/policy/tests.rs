//! Unit tests of the outbound policy: patterns, internal addresses, and property tests (`fuzz`).

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
        "::ffff:198.18.0.1",
        "::ffff:0.0.0.0",
    ] {
        assert!(is_internal(internal.parse().unwrap()), "{internal}");
    }
    for public in [
        "1.1.1.1",
        "93.184.216.34",
        "172.32.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "::fffe:ffff:ffff",
        "0:0:0:0:1::",
    ] {
        assert!(!is_internal(public.parse().unwrap()), "{public}");
    }
}

/// Each IPv4 range: its first and last address are internal, the
/// addresses just outside it are not (unless another range holds them).
#[test]
fn every_ipv4_range_is_internal_up_to_its_boundaries() {
    #[rustfmt::skip]
    let ranges: [(&str, &str, &[&str]); 15] = [
        ("0.0.0.0",      "0.255.255.255",   &["1.0.0.0"]),
        ("10.0.0.0",     "10.255.255.255",  &["9.255.255.255", "11.0.0.0"]),
        ("100.64.0.0",   "100.127.255.255", &["100.63.255.255", "100.128.0.0"]),
        ("127.0.0.0",    "127.255.255.255", &["126.255.255.255", "128.0.0.0"]),
        ("169.254.0.0",  "169.254.255.255", &["169.253.255.255", "169.255.0.0"]),
        ("172.16.0.0",   "172.31.255.255",  &["172.15.255.255", "172.32.0.0"]),
        ("192.0.0.0",    "192.0.0.255",     &["191.255.255.255", "192.0.1.0"]),
        ("192.0.2.0",    "192.0.2.255",     &["192.0.1.255", "192.0.3.0"]),
        ("192.88.99.0",  "192.88.99.255",   &["192.88.98.255", "192.88.100.0"]),
        ("192.168.0.0",  "192.168.255.255", &["192.167.255.255", "192.169.0.0"]),
        ("198.18.0.0",   "198.19.255.255",  &["198.17.255.255", "198.20.0.0"]),
        ("198.51.100.0", "198.51.100.255",  &["198.51.99.255", "198.51.101.0"]),
        ("203.0.113.0",  "203.0.113.255",   &["203.0.112.255", "203.0.114.0"]),
        ("224.0.0.0",    "239.255.255.255", &["223.255.255.255"]),
        ("240.0.0.0",    "255.255.255.255", &[]),
    ];
    assert_eq!(ranges.len(), INTERNAL_IPV4.len());
    check_ranges(&ranges);
}

/// Each IPv6 range likewise; ranges that embed an IPv4 address are
/// internal exactly when that address is.
#[test]
fn every_ipv6_range_is_internal_up_to_its_boundaries() {
    #[rustfmt::skip]
    let always: [(&str, &str, &[&str]); 11] = [
        ("64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",      &["64:ff9b:0:ffff:ffff:ffff:ffff:ffff", "64:ff9b:2::"]),
        ("100::",       "100::ffff:ffff:ffff:ffff",                &["ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]),
        ("100:0:0:1::", "100:0:0:1:ffff:ffff:ffff:ffff",           &["100:0:0:2::"]),
        ("2001::",      "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",  &["2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::"]),
        ("2001:db8::",  "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",  &["2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"]),
        ("3fff::",      "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",  &["3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"]),
        ("5f00::",      "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &["5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "5f01::"]),
        ("fc00::",      "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &["fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe00::"]),
        ("fe80::",      "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &["fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]),
        // Its neighbours are link-local and multicast.
        ("fec0::",      "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &[]),
        ("ff00::",      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &[]),
    ];
    check_ranges(&always);
    for internal in [
        // Teredo, inside 2001::/23.
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        // Benchmarking, inside 2001::/23.
        "2001:2::1",
        // Local-use NAT64 is internal whatever it embeds.
        "64:ff9b:1::808:808",
    ] {
        assert!(is_internal(internal.parse().unwrap()), "{internal}");
    }

    // (internal, public, just outside) for the ranges that embed IPv4.
    #[rustfmt::skip]
    let embedding: [(&[&str], &[&str], &[&str]); 4] = [
        // IPv4-mapped
        (
            &["::ffff:127.0.0.1", "::ffff:0.0.0.0", "::ffff:255.255.255.255"],
            &["::ffff:8.8.8.8", "::ffff:1.0.0.0"],
            &["::fffe:ffff:ffff", "0:0:0:0:1::"],
        ),
        // IPv4-compatible
        (
            &["::", "::1", "::127.0.0.1", "::10.0.0.1", "::198.18.0.1", "::ffff:ffff"],
            &["::8.8.8.8", "::1.0.0.0"],
            &["::1:0:0"],
        ),
        // NAT64, well-known prefix
        (
            &["64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::198.18.0.1", "64:ff9b::", "64:ff9b::ffff:ffff"],
            &["64:ff9b::808:808", "64:ff9b::1.0.0.0"],
            &["64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", "64:ff9b::1:7f00:1"],
        ),
        // 6to4: the IPv4 address is in bits 16..48.
        (
            &["2002:7f00:1::1", "2002:a00:1::", "2002:c0a8:101::1", "2002:c612:1::", "2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
            &["2002:808:808::1", "2002:808:808:7f00:1::7f00:1"],
            &["2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::"],
        ),
    ];
    for (internal, public, outside) in embedding {
        for ip in internal {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in public.iter().chain(outside) {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }
    assert_eq!(always.len() + embedding.len(), SPECIAL_IPV6.len());
}

/// Asserts `(first, last, just outside)` for each range.
fn check_ranges(ranges: &[(&str, &str, &[&str])]) {
    for &(first, last, outside) in ranges {
        assert!(is_internal(first.parse().unwrap()), "{first}");
        assert!(is_internal(last.parse().unwrap()), "{last}");
        for ip in outside {
            assert!(
                !is_internal(ip.parse().unwrap()),
                "{ip}, next to {first}..{last}"
            );
        }
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
    let mapped = Policy::from_patterns(&["ws://[::ffff:10.0.0.5]:9000"]).unwrap();
    assert!(mapped.permits_address(false, ip("::ffff:10.0.0.5"), 9000));
    assert!(!mapped.permits_address(false, ip("::ffff:10.0.0.6"), 9000));
    let nat64 = Policy::from_patterns(&["ws://*:*", "ws://[64:ff9b::a00:5]:9000"]).unwrap();
    assert!(nat64.permits_address(false, ip("64:ff9b::a00:5"), 9000));
    assert!(!nat64.permits_address(false, ip("64:ff9b::7f00:1"), 9000));
    assert!(!nat64.permits_address(false, ip("2002:a00:5::1"), 9000));
    assert!(!nat64.permits_address(false, ip("198.18.0.1"), 9000));
    assert!(nat64.permits_address(false, ip("64:ff9b::808:808"), 9000));
    let local = Policy::from_patterns(&["ws://localhost:*"]).unwrap();
    assert!(local.permits_address(false, ip("127.0.0.1"), 1234));
    assert!(local.permits_address(false, ip("::1"), 1234));
    assert!(!local.permits_address(false, ip("192.168.0.1"), 1234));
    // Only a real loopback address goes through `localhost`: not one
    // embedded in NAT64, 6to4 or the IPv4-compatible form.
    for embedded in ["64:ff9b::7f00:1", "2002:7f00:1::1", "::127.0.0.1"] {
        assert!(
            !local.permits_address(false, ip(embedded), 1234),
            "{embedded}"
        );
    }
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

        /// An IPv4 address is internal exactly when its IPv4-mapped,
        /// IPv4-compatible, NAT64 and 6to4 forms are.
        #[test]
        fn embedded_ipv4_is_judged_like_ipv4(v4 in any::<u32>(), interface in any::<u64>()) {
            let internal = is_internal(IpAddr::from(Ipv4Addr::from(v4)));
            let v4 = u128::from(v4);
            for embedding in [
                0xffff << 32 | v4,
                v4,
                0x64_ff9b << 96 | v4,
                0x2002 << 112 | v4 << 80 | u128::from(interface),
            ] {
                let v6 = Ipv6Addr::from(embedding);
                prop_assert_eq!(is_internal(IpAddr::from(v6)), internal, "{}", v6);
            }
        }
    }
}
