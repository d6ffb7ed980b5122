//! Parses `Sec-WebSocket-Extensions` values (RFC 6455 section 9.1) into extensions and parameters.

/// One extension of a list, with its parameters in the order written.
/// Names are lower-cased (they compare without regard to case); quoted
/// values are unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Extension {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Each parameter's name and its value, if it has one.
    pub params: Vec<(String, Option<String>)>,
}

/// Splits header values (one per header line) into their comma-separated
/// extensions. Each element is parsed on its own, so that a malformed one
/// does not hide the others; `Err` says what is wrong with that element.
/// Empty elements (`a, , b`) are skipped, as RFC 9110 section 5.6.1 asks.
pub(super) fn parse<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Vec<Result<Extension, String>> {
    let mut out = Vec::new();
    for value in values {
        for element in split_outside_quotes(value, ',') {
            if !element.trim().is_empty() {
                out.push(parse_extension(element));
            }
        }
    }
    out
}

fn parse_extension(element: &str) -> Result<Extension, String> {
    let mut parts = split_outside_quotes(element, ';').into_iter();
    let name = parts.next().unwrap_or_default().trim();
    if !is_token(name) {
        return Err(format!("{:?} is not an extension name", element.trim()));
    }
    let mut params = Vec::new();
    for part in parts {
        let part = part.trim();
        let (name, value) = match part.split_once('=') {
            None => (part, None),
            Some((name, value)) => (name.trim_end(), Some(parse_value(value.trim_start())?)),
        };
        if !is_token(name) {
            return Err(format!("{part:?} is not a parameter"));
        }
        params.push((name.to_ascii_lowercase(), value));
    }
    Ok(Extension {
        name: name.to_ascii_lowercase(),
        params,
    })
}

/// A parameter value: a token, or a quoted string whose content is a token.
fn parse_value(raw: &str) -> Result<String, String> {
    let value = match raw.strip_prefix('"') {
        None => raw.to_string(),
        Some(rest) => {
            let mut value = String::new();
            let mut chars = rest.chars();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quoted value {raw:?}")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(format!("unterminated quoted value {raw:?}")),
                    },
                    Some(c) => value.push(c),
                }
            }
            if !chars.as_str().is_empty() {
                return Err(format!("text after the quoted value {raw:?}"));
            }
            value
        }
    };
    if is_token(&value) {
        Ok(value)
    } else {
        Err(format!("{raw:?} is not a valid parameter value"))
    }
}

/// Splits at `sep` where it is not inside a quoted string. An unterminated
/// quote runs to the end, where the element's parser rejects it.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// RFC 9110 `token`: one or more `tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> Result<Extension, String> {
        Ok(Extension {
            name: name.into(),
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                .collect(),
        })
    }

    #[test]
    fn parses_lists_over_several_lines() {
        let got = parse([
            "permessage-deflate; client_max_window_bits, permessage-deflate",
            "x-webkit-deflate-frame ;no_context_takeover ,, Permessage-Deflate;Server_Max_Window_Bits = 10",
        ]);
        assert_eq!(
            got,
            vec![
                ext("permessage-deflate", &[("client_max_window_bits", None)]),
                ext("permessage-deflate", &[]),
                ext("x-webkit-deflate-frame", &[("no_context_takeover", None)]),
                ext(
                    "permessage-deflate",
                    &[("server_max_window_bits", Some("10"))]
                ),
            ]
        );
    }

    #[test]
    fn quoted_values_are_unquoted_and_may_hide_separators() {
        assert_eq!(
            parse([
                r#"permessage-deflate; server_max_window_bits="10"; client_max_window_bits="1\2""#
            ]),
            vec![ext(
                "permessage-deflate",
                &[
                    ("server_max_window_bits", Some("10")),
                    ("client_max_window_bits", Some("12"))
                ]
            )]
        );
        // The comma inside the quotes does not split the list, and the
        // value, once unquoted, is not a token.
        let got = parse([r#"permessage-deflate; a="1,2", permessage-deflate"#]);
        assert_eq!(got.len(), 2);
        assert!(got[0].is_err());
        assert_eq!(got[1], ext("permessage-deflate", &[]));
    }

    #[test]
    fn malformed_elements_fail_alone() {
        for bad in [
            "permessage-deflate;",
            "permessage-deflate; ;a",
            "permessage-deflate; a=",
            "permessage-deflate; =1",
            "permessage-deflate; a=1 2",
            "permessage-deflate; a=\"1",
            "permessage-deflate; a=\"1\"x",
            "permessage-deflate; a b",
            "permessage deflate",
            "; a",
            "permessage-deflate; a=\u{e9}",
        ] {
            let got = parse([bad, "permessage-deflate"]);
            assert_eq!(got.len(), 2, "{bad:?}: {got:?}");
            assert!(got[0].is_err(), "{bad:?} parsed as {:?}", got[0]);
            assert_eq!(got[1], ext("permessage-deflate", &[]), "{bad:?}");
        }
        assert!(parse(["", " , ,"]).is_empty());
    }
}
