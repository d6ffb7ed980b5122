//! Unit tests of permessage-deflate negotiation: the server's choice, the client's check, and property tests.

// Long: tables of offers and answers, and the property tests, of one module in one file.

use super::*;
use proptest::prelude::*;

fn p(send: (u8, bool), receive: (u8, bool)) -> Params {
    Params {
        send: StreamParams {
            window_bits: send.0,
            no_context_takeover: send.1,
        },
        receive: StreamParams {
            window_bits: receive.0,
            no_context_takeover: receive.1,
        },
    }
}

fn cfg(f: impl FnOnce(&mut DeflateConfig)) -> DeflateConfig {
    let mut c = DeflateConfig::enabled();
    f(&mut c);
    c
}

const PLAIN: Params = Params {
    send: StreamParams {
        window_bits: 15,
        no_context_takeover: false,
    },
    receive: StreamParams {
        window_bits: 15,
        no_context_takeover: false,
    },
};

#[test]
fn client_offers() {
    let rows: &[(DeflateConfig, &str)] = &[
        (DeflateConfig::enabled(), "permessage-deflate; client_max_window_bits"),
        (
            cfg(|c| c.server_no_context_takeover = true),
            "permessage-deflate; server_no_context_takeover; client_max_window_bits",
        ),
        (
            cfg(|c| c.client_no_context_takeover = true),
            "permessage-deflate; client_no_context_takeover; client_max_window_bits",
        ),
        (
            cfg(|c| c.server_max_window_bits = 8),
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits",
        ),
        (
            cfg(|c| c.client_max_window_bits = 9),
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            cfg(|c| {
                c.server_no_context_takeover = true;
                c.client_no_context_takeover = true;
                c.server_max_window_bits = 10;
                c.client_max_window_bits = 12;
            }),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12",
        ),
        // Out-of-range settings are clamped rather than sent.
        (
            cfg(|c| {
                c.server_max_window_bits = 3;
                c.client_max_window_bits = 99;
            }),
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits",
        ),
    ];
    for (config, want) in rows {
        assert_eq!(offer(config), *want, "{config:?}");
        // A server with the defaults accepts every offer we make.
        assert!(accept(&DeflateConfig::enabled(), [offer(config).as_str()]).is_some());
    }
}

/// The server's settings, the request's header lines, and the answer and
/// parameters, or `None` for no extension.
type ServerRow = (
    DeflateConfig,
    Vec<&'static str>,
    Option<(&'static str, Params)>,
);

/// The client's settings, the server's answer lines, and the parameters,
/// `None` (no extension) or an error containing the text.
type ClientRow = (
    DeflateConfig,
    Vec<&'static str>,
    Result<Option<Params>, &'static str>,
);

/// One row per RFC 7692 rule.
#[test]
fn server_chooses() {
    let d = DeflateConfig::enabled;
    let rows: Vec<ServerRow> = vec![
        // RFC 7692 7.1: the plain offer.
        (d(), vec!["permessage-deflate"], Some(("permessage-deflate", PLAIN))),
        // 7.1.2.2: client_max_window_bits without a value; 15 need not be stated.
        (d(), vec!["permessage-deflate; client_max_window_bits"], Some(("permessage-deflate", PLAIN))),
        (
            cfg(|c| c.client_max_window_bits = 10),
            vec!["permessage-deflate; client_max_window_bits"],
            Some(("permessage-deflate; client_max_window_bits=10", p((15, false), (10, false)))),
        ),
        // A value is the client's own limit; the server may lower it.
        (
            d(),
            vec!["permessage-deflate; client_max_window_bits=12"],
            Some(("permessage-deflate; client_max_window_bits=12", p((15, false), (12, false)))),
        ),
        (
            cfg(|c| c.client_max_window_bits = 10),
            vec!["permessage-deflate; client_max_window_bits=12"],
            Some(("permessage-deflate; client_max_window_bits=10", p((15, false), (10, false)))),
        ),
        (
            d(),
            vec!["permessage-deflate; client_max_window_bits=8"],
            Some(("permessage-deflate; client_max_window_bits=8", p((15, false), (8, false)))),
        ),
        // A client window of 8 goes only to a client that offered 8
        // itself; others get 9, which zlib-based clients can use.
        (
            cfg(|c| c.client_max_window_bits = 8),
            vec!["permessage-deflate; client_max_window_bits"],
            Some(("permessage-deflate; client_max_window_bits=9", p((15, false), (9, false)))),
        ),
        (
            cfg(|c| c.client_max_window_bits = 8),
            vec!["permessage-deflate; client_max_window_bits=12"],
            Some(("permessage-deflate; client_max_window_bits=9", p((15, false), (9, false)))),
        ),
        (
            cfg(|c| c.client_max_window_bits = 8),
            vec!["permessage-deflate; client_max_window_bits=8"],
            Some(("permessage-deflate; client_max_window_bits=8", p((15, false), (8, false)))),
        ),
        // Without the parameter the client cannot be limited: accepted at 15.
        (
            cfg(|c| c.client_max_window_bits = 10),
            vec!["permessage-deflate"],
            Some(("permessage-deflate", PLAIN)),
        ),
        // 7.1.1.1 / 7.1.1.2: the client's takeover requests are honoured.
        (
            d(),
            vec!["permessage-deflate; server_no_context_takeover"],
            Some(("permessage-deflate; server_no_context_takeover", p((15, true), (15, false)))),
        ),
        (
            d(),
            vec!["permessage-deflate; client_no_context_takeover"],
            Some(("permessage-deflate; client_no_context_takeover", p((15, false), (15, true)))),
        ),
        // The server's own settings are added unasked.
        (
            cfg(|c| c.server_no_context_takeover = true),
            vec!["permessage-deflate"],
            Some(("permessage-deflate; server_no_context_takeover", p((15, true), (15, false)))),
        ),
        (
            cfg(|c| c.client_no_context_takeover = true),
            vec!["permessage-deflate"],
            Some(("permessage-deflate; client_no_context_takeover", p((15, false), (15, true)))),
        ),
        (
            cfg(|c| c.server_max_window_bits = 11),
            vec!["permessage-deflate"],
            Some(("permessage-deflate; server_max_window_bits=11", p((11, false), (15, false)))),
        ),
        // 7.1.2.1: server_max_window_bits is honoured, or lowered.
        (
            d(),
            vec!["permessage-deflate; server_max_window_bits=10"],
            Some(("permessage-deflate; server_max_window_bits=10", p((10, false), (15, false)))),
        ),
        (
            cfg(|c| c.server_max_window_bits = 10),
            vec!["permessage-deflate; server_max_window_bits=12"],
            Some(("permessage-deflate; server_max_window_bits=10", p((10, false), (15, false)))),
        ),
        // 8 is answered 8 (zlib then compresses with 9, see the module docs).
        (
            d(),
            vec!["permessage-deflate; server_max_window_bits=8"],
            Some(("permessage-deflate; server_max_window_bits=8", p((8, false), (15, false)))),
        ),
        (
            d(),
            vec![r#"permessage-deflate; server_max_window_bits="9""#],
            Some(("permessage-deflate; server_max_window_bits=9", p((9, false), (15, false)))),
        ),
        // Everything at once, in any order and case.
        (
            d(),
            vec!["PerMessage-Deflate; Client_Max_Window_Bits=9; server_max_window_bits = 12; CLIENT_NO_CONTEXT_TAKEOVER; server_no_context_takeover"],
            Some((
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=9",
                p((12, true), (9, true)),
            )),
        ),
        // Several offers: the first acceptable one.
        (
            d(),
            vec!["permessage-deflate; server_max_window_bits=10, permessage-deflate"],
            Some(("permessage-deflate; server_max_window_bits=10", p((10, false), (15, false)))),
        ),
        (
            d(),
            vec!["permessage-deflate; foo, permessage-deflate; client_no_context_takeover"],
            Some(("permessage-deflate; client_no_context_takeover", p((15, false), (15, true)))),
        ),
        (
            d(),
            vec!["x-webkit-deflate-frame", "permessage-deflate; server_max_window_bits=16", "permessage-deflate"],
            Some(("permessage-deflate", PLAIN)),
        ),
        // Off: nothing is accepted.
        (DeflateConfig::default(), vec!["permessage-deflate"], None),
        (d(), vec![], None),
        (d(), vec![""], None),
        (d(), vec!["x-webkit-deflate-frame; no_context_takeover"], None),
    ];
    for (config, offers, want) in rows {
        let got = accept(&config, offers.iter().copied());
        let want = want.map(|(response, params)| Accepted {
            response: response.into(),
            params,
        });
        assert_eq!(got, want, "{offers:?} with {config:?}");
        // The server's answer passes the check of a client that offered it.
        if let Some(got) = &got {
            let offered = header::parse(offers.iter().copied())
                .into_iter()
                .filter_map(Result::ok)
                .filter(|ext| ext.name == NAME)
                .find_map(|ext| Parameters::read(&ext.params, true).ok())
                .unwrap();
            let client = check(Some(&offered), [got.response.as_str()])
                .unwrap()
                .unwrap();
            assert_eq!(client.send, got.params.receive, "{offers:?}");
            assert_eq!(client.receive, got.params.send, "{offers:?}");
        }
    }
}

/// Each offer is declined: the handshake goes on without the extension.
#[test]
fn server_declines_malformed_offers() {
    let declined = [
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"x\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits=9.0",
        "permessage-deflate; server_max_window_bits=\"\"",
        "permessage-deflate; server_max_window_bits=\"1 0\"",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=a",
        "permessage-deflate; client_max_window_bits=255",
        "permessage-deflate;",
        "permessage-deflate; ;",
        "permessage-deflate; a=\"1",
        "permessage-deflate server_no_context_takeover",
    ];
    for bad in declined {
        assert_eq!(accept(&DeflateConfig::enabled(), [bad]), None, "{bad}");
        // ... and does not hide a good offer after it.
        let both = accept(&DeflateConfig::enabled(), [bad, "permessage-deflate"]);
        assert_eq!(both.map(|a| a.params), Some(PLAIN), "{bad}");
    }
}

/// One row per RFC 7692 rule and per bad answer.
#[test]
fn client_checks_the_answer() {
    let d = DeflateConfig::enabled;
    let ok = |params: Params| Ok(Some(params));
    let rows: Vec<ClientRow> = vec![
        (d(), vec![], Ok(None)),
        (d(), vec![""], Ok(None)),
        (DeflateConfig::default(), vec![], Ok(None)),
        (d(), vec!["permessage-deflate"], ok(PLAIN)),
        (
            d(),
            vec!["permessage-deflate; server_no_context_takeover"],
            ok(p((15, false), (15, true))),
        ),
        (
            d(),
            vec!["permessage-deflate; client_no_context_takeover"],
            ok(p((15, true), (15, false))),
        ),
        (
            d(),
            vec!["permessage-deflate; server_max_window_bits=9"],
            ok(p((15, false), (9, false))),
        ),
        (
            d(),
            vec!["permessage-deflate; client_max_window_bits=9"],
            ok(p((9, false), (15, false))),
        ),
        (
            d(),
            vec!["permessage-deflate; client_max_window_bits=8"],
            ok(p((8, false), (15, false))),
        ),
        (
            d(),
            vec!["permessage-deflate; server_max_window_bits=\"8\"; client_no_context_takeover"],
            ok(p((15, true), (8, false))),
        ),
        // What we asked for must be granted.
        (
            cfg(|c| c.server_no_context_takeover = true),
            vec!["permessage-deflate"],
            Err("lacks it"),
        ),
        (
            cfg(|c| c.server_no_context_takeover = true),
            vec!["permessage-deflate; server_no_context_takeover"],
            ok(p((15, false), (15, true))),
        ),
        (
            cfg(|c| c.server_max_window_bits = 10),
            vec!["permessage-deflate"],
            Err("server_max_window_bits=10 was asked for"),
        ),
        (
            cfg(|c| c.server_max_window_bits = 10),
            vec!["permessage-deflate; server_max_window_bits=11"],
            Err("server_max_window_bits=11, more than the 10"),
        ),
        (
            cfg(|c| c.server_max_window_bits = 10),
            vec!["permessage-deflate; server_max_window_bits=8"],
            ok(p((15, false), (8, false))),
        ),
        // 9 for an offered 8 is how zlib-based servers answer (zlib cannot
        // compress with 8): accepted, and inflated with 9 bits.
        (
            cfg(|c| c.server_max_window_bits = 8),
            vec!["permessage-deflate; server_max_window_bits=9"],
            ok(p((15, false), (9, false))),
        ),
        (
            cfg(|c| c.server_max_window_bits = 8),
            vec!["permessage-deflate; server_max_window_bits=8"],
            ok(p((15, false), (8, false))),
        ),
        (
            cfg(|c| c.server_max_window_bits = 8),
            vec!["permessage-deflate; server_max_window_bits=10"],
            Err("server_max_window_bits=10, more than the 8"),
        ),
        (
            cfg(|c| c.client_max_window_bits = 12),
            vec!["permessage-deflate; client_max_window_bits=13"],
            Err("client_max_window_bits=13, more than the 12"),
        ),
        (
            cfg(|c| c.client_max_window_bits = 12),
            vec!["permessage-deflate"],
            ok(p((12, false), (15, false))),
        ),
        // Our own client_no_context_takeover holds whatever the answer.
        (
            cfg(|c| c.client_no_context_takeover = true),
            vec!["permessage-deflate"],
            ok(p((15, true), (15, false))),
        ),
        // Answers that fail the connection.
        (
            DeflateConfig::default(),
            vec!["permessage-deflate"],
            Err("which was not offered"),
        ),
        (
            d(),
            vec!["x-webkit-deflate-frame"],
            Err("`x-webkit-deflate-frame`, which was not offered"),
        ),
        (
            d(),
            vec!["permessage-deflate, permessage-deflate"],
            Err("2 extensions"),
        ),
        (
            d(),
            vec!["permessage-deflate", "permessage-deflate"],
            Err("2 extensions"),
        ),
        (d(), vec!["permessage-deflate, x-foo"], Err("2 extensions")),
        (
            d(),
            vec!["permessage-deflate; foo"],
            Err("unknown parameter `foo`"),
        ),
        (
            d(),
            vec!["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            Err("appears twice"),
        ),
        (
            d(),
            vec!["permessage-deflate; client_no_context_takeover=1"],
            Err("takes no value"),
        ),
        (
            d(),
            vec!["permessage-deflate; server_max_window_bits=16"],
            Err("not an integer from 8 to 15"),
        ),
        (
            d(),
            vec!["permessage-deflate; server_max_window_bits=7"],
            Err("not an integer from 8 to 15"),
        ),
        (
            d(),
            vec!["permessage-deflate; server_max_window_bits"],
            Err("needs a value"),
        ),
        // A bare client_max_window_bits is for offers only.
        (
            d(),
            vec!["permessage-deflate; client_max_window_bits"],
            Err("needs a value"),
        ),
        (d(), vec!["permessage-deflate;"], Err("malformed")),
    ];
    for (config, answers, want) in rows {
        let got = check_answer(&config, answers.iter().copied());
        match (&got, &want) {
            (Err(err), Err(text)) => {
                let msg = err.to_string();
                assert!(msg.contains(text), "{answers:?}: {msg:?} lacks {text:?}");
                assert!(
                    msg.contains("connect to it without permessage-deflate"),
                    "{msg}"
                );
            }
            _ => assert_eq!(
                got.as_ref().map_err(|_| ()),
                want.as_ref().map_err(|_| ()),
                "{answers:?} with {config:?}: {got:?}"
            ),
        }
    }
}

#[test]
fn client_max_window_bits_not_offered_may_not_be_answered() {
    let offered = Parameters {
        client_max_window_bits: ClientBits::Absent,
        ..Parameters::default()
    };
    let err = check(
        Some(&offered),
        ["permessage-deflate; client_max_window_bits=10"],
    )
    .unwrap_err();
    assert!(err.to_string().contains("which was not offered"), "{err}");
    assert_eq!(
        check(Some(&offered), ["permessage-deflate"]),
        Ok(Some(PLAIN))
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary header text never panics, and whatever the server
    /// accepts, a client that sent the same offer accepts back.
    #[test]
    fn arbitrary_headers_are_handled(value in "[ -~]{0,80}", tail in prop::sample::select(vec![
        "", "; server_no_context_takeover", "; client_max_window_bits", "; server_max_window_bits=8",
        "; client_max_window_bits=\"10\"", ", permessage-deflate", "; x=\"", ",",
    ])) {
        let header = format!("permessage-deflate{value}{tail}");
        let config = DeflateConfig { client_max_window_bits: 11, ..DeflateConfig::enabled() };
        if let Some(accepted) = accept(&config, [header.as_str()]) {
            prop_assert!(accepted.response.starts_with(NAME));
            for bits in [accepted.params.send.window_bits, accepted.params.receive.window_bits] {
                prop_assert!((8..=15).contains(&bits));
            }
        }
        let _ = check_answer(&config, [header.as_str(), value.as_str()]);
        let _ = check_answer(&config, [value.as_str()]);
    }
}
