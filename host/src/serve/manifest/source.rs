//! Where a manifest error points: the file, the line, the table and the
//! key, found from the spans `toml` gives, in one line with the fix.

use super::ManifestError;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Where errors point: the file's name and text.
pub(super) struct Source<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
}

impl Source<'_> {
    /// The line `offset` is on, from 1.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The table the offset is in: `[[route]] #N`, `[tls]`, or `None` at
    /// the top level.
    fn table_at(&self, offset: usize) -> Option<String> {
        let mut table = None;
        let mut routes = 0;
        let mut at = 0;
        for line in self.text.split_inclusive('\n') {
            if at > offset {
                break;
            }
            let trimmed = line.trim();
            if trimmed.starts_with("[[route]]") {
                routes += 1;
                table = Some(format!("[[route]] #{routes}"));
            } else if trimmed.starts_with('[') {
                table = Some(
                    trimmed
                        .split('#')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                );
            }
            at += line.len();
        }
        table
    }

    /// The key written before `=` on the line of `offset`, if the offset is
    /// after it.
    fn key_at(&self, offset: usize) -> Option<String> {
        let offset = offset.min(self.text.len());
        let start = self.text[..offset].rfind('\n').map_or(0, |n| n + 1);
        let before = &self.text[start..offset];
        let (key, _) = before.split_once('=')?;
        let key = key.trim().trim_matches('"');
        (!key.is_empty() && !key.contains(['[', ']', '{'])).then(|| key.to_string())
    }

    /// The text of `span` if it is a bare key.
    fn key_itself(&self, span: Range<usize>) -> Option<String> {
        let text = self.text.get(span)?.trim();
        let bare = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        bare.then(|| text.to_string())
    }

    /// `FILE line N, [[route]] #2, key `K`: PROBLEM`.
    pub(super) fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<&str>,
        problem: &str,
    ) -> ManifestError {
        let mut at = self.file.display().to_string();
        if let Some(span) = &span {
            at.push_str(&format!(" line {}", self.line_of(span.start)));
            if let Some(table) = self.table_at(span.start) {
                at.push_str(&format!(", {table}"));
            }
        }
        if let Some(key) = key {
            at.push_str(&format!(", key `{key}`"));
        }
        ManifestError(format!("{at}: {problem}"))
    }

    /// One line for a parse or type error from `toml`.
    pub(super) fn toml_error(&self, err: &toml::de::Error) -> ManifestError {
        let message = err.message().trim().replace('\n', "; ");
        let named = |prefix: &str| {
            message
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('`'))
                .and_then(|rest| rest.split_once('`'))
                .map(|(key, rest)| (key.to_string(), rest.to_string()))
        };
        let span = err.span();
        if let Some((key, rest)) = named("unknown field ") {
            let expected = rest.trim_start_matches(',').trim();
            return self.error(
                span,
                Some(&key),
                &format!("unknown key ({expected}): fix its spelling or remove it"),
            );
        }
        if let Some((key, _)) = named("missing field ") {
            return self.error(span, Some(&key), "this key is required: add it");
        }
        let key = span
            .as_ref()
            .and_then(|s| self.key_at(s.start).or_else(|| self.key_itself(s.clone())));
        let message = if message == "duplicate key" {
            "this key is given twice in its table: keep one".to_string()
        } else {
            message
        };
        self.error(span, key.as_deref(), &message)
    }

    /// The file `value` names, relative to `base`, if it exists.
    pub(super) fn must_exist(
        &self,
        base: &Path,
        value: &Spanned<String>,
        key: &str,
        what: &str,
    ) -> Result<PathBuf, ManifestError> {
        let path = base.join(value.get_ref());
        if path.is_file() {
            return Ok(path);
        }
        Err(self.error(
            Some(value.span()),
            Some(key),
            &format!(
                "the {what} {} does not exist (relative paths start at the manifest's folder): fix the path",
                path.display()
            ),
        ))
    }

    /// `value`, if it is `HOST:PORT`.
    pub(super) fn address(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
    ) -> Result<Option<String>, ManifestError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let text = value.get_ref();
        let port_ok = text
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if port_ok {
            return Ok(Some(text.clone()));
        }
        Err(self.error(
            Some(value.span()),
            Some(key),
            &format!("`{text}` is not HOST:PORT: write e.g. \"127.0.0.1:8080\" or \"[::]:443\""),
        ))
    }
}
