//! Negotiates permessage-deflate (RFC 7692 section 7): the client's offer, the server's choice and answer, the client's check of the answer.
//!
//! Window bits 8: zlib cannot compress with a 256-byte window (it rejects
//! raw `windowBits` 8; Python `websockets` therefore declines such offers).
//! wsbox accepts 8 and answers 8, as RFC 7692 requires (a server may not
//! answer more than the client asked, and a client fails the connection if it
//! does), and the compressor runs zlib with 9 bits: zlib never emits a match
//! farther back than its window minus 262 bytes, 250 bytes at 9 bits, so the
//! stream fits the 256-byte window the peer inflates with. Node `ws` does
//! the same, through Node's zlib turning 8 into 9. A test in `compress.rs`
//! inflates such streams with a real 256-byte window. The other way round,
//! a server set to limit the client to 8 bits answers 9 unless the client
//! offered 8 itself: zlib-based clients (Python `websockets`, Node `ws`)
//! fail the connection on 8, and our inflater runs with 9 bits anyway.

use super::config::DeflateConfig;
use super::header;

/// The extension's token.
const NAME: &str = "permessage-deflate";

/// What one direction of a connection agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamParams {
    /// The largest LZ77 window that direction's compressor may use, as a
    /// power of two, 8 to 15.
    pub window_bits: u8,
    /// Whether that compressor resets its context after each message.
    pub no_context_takeover: bool,
}

/// The negotiated parameters, seen from one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Our compressor's, for the messages we send.
    pub send: StreamParams,
    /// The peer's compressor's, so our inflater's, for the messages we
    /// receive.
    pub receive: StreamParams,
}

/// A server's acceptance of one of the client's offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The `Sec-WebSocket-Extensions` value to answer with.
    pub response: String,
    /// What the server then uses.
    pub params: Params,
}

/// Why a client fails the connection on the server's answer (RFC 7692
/// section 5 and 7.1: the client MUST _Fail the WebSocket Connection_).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}; the server does not follow RFC 7692: connect to it without permessage-deflate")]
pub struct NegotiationError(String);

/// The four parameters of one offer or answer, as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Parameters {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: ClientBits,
}

/// `client_max_window_bits`, which an offer may give without a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ClientBits {
    #[default]
    Absent,
    /// In an offer only: the client accepts a limit from the server.
    NoValue,
    Bits(u8),
}

impl Parameters {
    /// Reads an offer's (`offer` true) or an answer's parameters. Any
    /// unknown or repeated parameter or bad value is an error.
    fn read(params: &[(String, Option<String>)], offer: bool) -> Result<Self, String> {
        let mut p = Parameters::default();
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in params {
            if seen.contains(&name.as_str()) {
                return Err(format!("`{name}` appears twice"));
            }
            seen.push(name);
            let value = value.as_deref();
            match (name.as_str(), value) {
                ("server_no_context_takeover", None) => p.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => p.client_no_context_takeover = true,
                ("server_max_window_bits", Some(v)) => p.server_max_window_bits = Some(bits(v)?),
                ("client_max_window_bits", Some(v)) => {
                    p.client_max_window_bits = ClientBits::Bits(bits(v)?)
                }
                ("client_max_window_bits", None) if offer => {
                    p.client_max_window_bits = ClientBits::NoValue
                }
                ("server_no_context_takeover" | "client_no_context_takeover", Some(v)) => {
                    return Err(format!("`{name}` takes no value, but has {v:?}"))
                }
                ("server_max_window_bits" | "client_max_window_bits", None) => {
                    return Err(format!("`{name}` needs a value from 8 to 15"))
                }
                _ => return Err(format!("unknown parameter `{name}`")),
            }
        }
        Ok(p)
    }

    /// The header value, parameters in RFC 7692's order.
    fn render(&self) -> String {
        let mut s = String::from(NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            s.push_str(&format!("; server_max_window_bits={bits}"));
        }
        match self.client_max_window_bits {
            ClientBits::Absent => {}
            ClientBits::NoValue => s.push_str("; client_max_window_bits"),
            ClientBits::Bits(bits) => s.push_str(&format!("; client_max_window_bits={bits}")),
        }
        s
    }
}

/// A window size: a decimal integer from 8 to 15 without leading zeros
/// (RFC 7692 section 7.1.2).
fn bits(value: &str) -> Result<u8, String> {
    match value {
        "8" | "9" | "10" | "11" | "12" | "13" | "14" | "15" => Ok(value.parse().unwrap_or(15)),
        _ => Err(format!(
            "window bits {value:?} is not an integer from 8 to 15"
        )),
    }
}

fn clamp(bits: u8) -> u8 {
    bits.clamp(8, 15)
}

/// A limit below 15 is worth stating; 15 is the default.
fn limit(bits: u8) -> Option<u8> {
    (bits < 15).then_some(bits)
}

fn client_offer(config: &DeflateConfig) -> Parameters {
    let client_bits = clamp(config.client_max_window_bits);
    Parameters {
        server_no_context_takeover: config.server_no_context_takeover,
        client_no_context_takeover: config.client_no_context_takeover,
        server_max_window_bits: limit(clamp(config.server_max_window_bits)),
        // Always offered, so that a server may lower our window to spare its
        // inflater, as browsers and Node `ws` offer it.
        client_max_window_bits: match limit(client_bits) {
            Some(bits) => ClientBits::Bits(bits),
            None => ClientBits::NoValue,
        },
    }
}

/// The client's `Sec-WebSocket-Extensions` value for its upgrade request,
/// e.g. `permessage-deflate; client_max_window_bits` with the defaults.
/// Send it only when `config.enabled`.
pub fn offer(config: &DeflateConfig) -> String {
    client_offer(config).render()
}

/// The server's choice among a client's offers: the first well-formed
/// `permessage-deflate` offer, answered within `config`. `offers` are the
/// request's `Sec-WebSocket-Extensions` values, one per header line. An
/// offer with an unknown or repeated parameter, a bad value or bad syntax
/// is declined, and so are other extensions; `None` (no extension, the
/// handshake goes on without compression) when nothing is accepted or
/// `config.enabled` is off.
pub fn accept<'a>(
    config: &DeflateConfig,
    offers: impl IntoIterator<Item = &'a str>,
) -> Option<Accepted> {
    if !config.enabled {
        return None;
    }
    header::parse(offers)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|ext| ext.name == NAME)
        .find_map(|ext| Parameters::read(&ext.params, true).ok())
        .map(|offer| answer(config, &offer))
}

fn answer(config: &DeflateConfig, offer: &Parameters) -> Accepted {
    let server_bits = clamp(config.server_max_window_bits);
    let client_bits = clamp(config.client_max_window_bits);
    let response = Parameters {
        server_no_context_takeover: offer.server_no_context_takeover
            || config.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover
            || config.client_no_context_takeover,
        // The server may state its window even when not asked.
        server_max_window_bits: match offer.server_max_window_bits {
            Some(asked) => Some(asked.min(server_bits)),
            None => limit(server_bits),
        },
        // Without the parameter in the offer the client cannot be limited:
        // accept its 15 bits rather than decline compression.
        // A client that did not offer 8 itself gets at least 9: zlib-based
        // clients (Python `websockets`, Node `ws`) cannot compress with 8
        // and fail the connection on it, and our inflater takes 9 anyway.
        client_max_window_bits: match offer.client_max_window_bits {
            ClientBits::Absent => ClientBits::Absent,
            ClientBits::NoValue => match limit(client_bits) {
                Some(bits) => ClientBits::Bits(bits.max(9)),
                None => ClientBits::Absent,
            },
            ClientBits::Bits(8) => ClientBits::Bits(8),
            ClientBits::Bits(hint) => ClientBits::Bits(hint.min(client_bits).max(9)),
        },
    };
    let client_window = match response.client_max_window_bits {
        ClientBits::Bits(bits) => bits,
        ClientBits::Absent | ClientBits::NoValue => 15,
    };
    Accepted {
        response: response.render(),
        params: Params {
            send: StreamParams {
                window_bits: response.server_max_window_bits.unwrap_or(15),
                no_context_takeover: response.server_no_context_takeover,
            },
            receive: StreamParams {
                window_bits: client_window,
                no_context_takeover: response.client_no_context_takeover,
            },
        },
    }
}

/// The client's check of the server's answer: the response's
/// `Sec-WebSocket-Extensions` values, one per header line, against the
/// offer that `config` made (none when `config.enabled` is off). `Ok(None)`:
/// no extension. `Err`: the connection fails; the message says why.
pub fn check_answer<'a>(
    config: &DeflateConfig,
    answers: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Params>, NegotiationError> {
    let offer = config.enabled.then(|| client_offer(config));
    check(offer.as_ref(), answers)
}

fn check<'a>(
    offer: Option<&Parameters>,
    answers: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Params>, NegotiationError> {
    let fail = |msg: String| Err(NegotiationError(msg));
    let extensions = header::parse(answers);
    let ext = match extensions.as_slice() {
        [] => return Ok(None),
        [ext] => ext,
        _ => {
            return fail(format!(
                "the server answered with {} extensions, but at most one (permessage-deflate) was offered",
                extensions.len()
            ))
        }
    };
    let ext = match ext {
        Ok(ext) => ext,
        Err(problem) => {
            return fail(format!(
                "the server's Sec-WebSocket-Extensions is malformed: {problem}"
            ))
        }
    };
    let Some(offer) = offer.filter(|_| ext.name == NAME) else {
        return fail(format!(
            "the server answered with extension `{}`, which was not offered",
            ext.name
        ));
    };
    let answer = match Parameters::read(&ext.params, false) {
        Ok(answer) => answer,
        Err(problem) => {
            return fail(format!(
                "the server's permessage-deflate answer is invalid: {problem}"
            ))
        }
    };
    if offer.server_no_context_takeover && !answer.server_no_context_takeover {
        return fail(
            "server_no_context_takeover was asked for, and the server's answer lacks it".into(),
        );
    }
    match (offer.server_max_window_bits, answer.server_max_window_bits) {
        (Some(asked), None) => {
            return fail(format!(
                "server_max_window_bits={asked} was asked for, and the server's answer lacks it"
            ))
        }
        (Some(asked), Some(got)) if got > asked => {
            return fail(format!(
                "the server answered server_max_window_bits={got}, more than the {asked} asked for"
            ))
        }
        _ => {}
    }
    let send_bits = match (offer.client_max_window_bits, answer.client_max_window_bits) {
        (ClientBits::Absent, ClientBits::Bits(got)) => {
            return fail(format!(
                "the server answered client_max_window_bits={got}, which was not offered"
            ))
        }
        (ClientBits::Bits(offered), ClientBits::Bits(got)) if got > offered => {
            return fail(format!(
                "the server answered client_max_window_bits={got}, more than the {offered} offered"
            ))
        }
        (_, ClientBits::Bits(got)) => got,
        (ClientBits::Bits(offered), _) => offered,
        _ => 15,
    };
    Ok(Some(Params {
        send: StreamParams {
            window_bits: send_bits,
            no_context_takeover: answer.client_no_context_takeover
                || offer.client_no_context_takeover,
        },
        receive: StreamParams {
            window_bits: answer.server_max_window_bits.unwrap_or(15),
            no_context_takeover: answer.server_no_context_takeover,
        },
    }))
}

#[cfg(test)]
mod tests {
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
                vec![
                    "permessage-deflate; server_max_window_bits=\"8\"; client_no_context_takeover",
                ],
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
}
