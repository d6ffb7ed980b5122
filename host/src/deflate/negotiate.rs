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
//! fail the connection on 8, and our inflater runs with 9 bits anyway. As a
//! client, we accept a server's `server_max_window_bits=9` where we asked
//! for 8, the answer zlib-based servers give.

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

// Long: RFC 7692 section 7's rules for a client checking the answer, one
// after the other in the RFC's order.
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
        // 9 where 8 was asked: zlib cannot compress with 8 bits, so
        // zlib-based servers answer 9 (RFC 7692 section 7.1.2.1 says no
        // larger than asked, but refusing it would refuse them); we inflate
        // with the 9 bits they use.
        (Some(8), Some(9)) => {}
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
mod tests;
