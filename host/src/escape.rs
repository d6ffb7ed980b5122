//! Escapes guest text so that it prints as one log line that cannot forge, erase or recolour others.

use std::fmt::Write as _;

/// Shows `text` with every control character escaped, so that it prints as
/// one line that cannot move the cursor, erase or recolour what is on the
/// screen, or pass itself off as another line:
///
/// - `\` becomes `\\`, so the escaping is unambiguous;
/// - tab, carriage return and line feed become `\t`, `\r` and `\n`;
/// - the other C0 codes (ESC included) and DEL become `\xNN` (ESC: `\x1b`);
/// - bytes that are not valid UTF-8 become `\xNN` too (`\xff`); a `\x`
///   above `\x7f` is therefore always an invalid byte, never a character;
/// - the C1 controls (U+0080 to U+009F), the bidirectional overrides and
///   isolates (U+202A to U+202E, U+2066 to U+2069) and the line and
///   paragraph separators (U+2028, U+2029) become `\u{NNNN}`.
///
/// Everything else, other non-ASCII text included, is shown as it is.
pub(crate) fn escape(text: impl AsRef<[u8]>) -> String {
    let bytes = text.as_ref();
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\0'..='\x1f' | '\x7f' => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                '\u{80}'..='\u{9f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_text_is_not() {
        assert_eq!(
            escape("plain text, été, 日本 🦀"),
            "plain text, été, 日本 🦀"
        );
        assert_eq!(escape(""), "");
        assert_eq!(escape("a\\b"), "a\\\\b");
        assert_eq!(escape("\t\r\n"), "\\t\\r\\n");
        assert_eq!(escape("\x1b[2K"), "\\x1b[2K");
        assert_eq!(
            escape("\0\x01\x07\x08\x0b\x0c\x1f\x7f"),
            "\\x00\\x01\\x07\\x08\\x0b\\x0c\\x1f\\x7f"
        );
        assert_eq!(escape("\u{85}\u{9b}"), "\\u{85}\\u{9b}");
        assert_eq!(
            escape("\u{202a}\u{202e}\u{2066}\u{2069}\u{2028}\u{2029}"),
            "\\u{202a}\\u{202e}\\u{2066}\\u{2069}\\u{2028}\\u{2029}"
        );
        // U+202F and U+206A are neither overrides nor isolates.
        assert_eq!(escape("\u{202f}\u{206a}"), "\u{202f}\u{206a}");
    }

    #[test]
    fn every_ascii_control_and_no_printable_is_escaped() {
        for byte in 0u8..=0x7f {
            let shown = escape([byte]);
            let control = byte < 0x20 || byte == 0x7f;
            assert_eq!(
                shown.len() > 1,
                control || byte == b'\\',
                "{byte:#x}: {shown}"
            );
            assert!(!shown.chars().any(|c| c.is_control()), "{byte:#x}: {shown}");
        }
    }

    #[test]
    fn invalid_utf8_is_escaped_byte_by_byte() {
        assert_eq!(escape(b"ok\xffok"), "ok\\xffok");
        // A truncated sequence, then an overlong one.
        assert_eq!(escape(b"\xe6\x97"), "\\xe6\\x97");
        assert_eq!(escape(b"\xc0\xaf"), "\\xc0\\xaf");
        // The same text written out by hand is told apart by its backslash.
        assert_eq!(escape("\\xff"), "\\\\xff");
    }
}
