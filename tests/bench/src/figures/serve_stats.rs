//! What `wsbox serve --stats` printed at shutdown: one line on stderr,
//! `wsbox serve: stats ` and a JSON object (the README's `wsbox serve`
//! table).

use anyhow::{Context, Result};
use serde::Deserialize;

/// What starts the line.
const PREFIX: &str = "wsbox serve: stats ";

/// The JSON object of the line.
#[derive(Debug, Deserialize)]
pub(super) struct Stats {
    /// The latencies: the library's own type.
    #[serde(flatten)]
    pub(super) serve: wsbox::ServeStats,
    /// Host tasks that panicked.
    pub(super) panics: u64,
}

/// Finds the line in `log`, the server's stderr, and reads it.
pub(super) fn from_log(log: &str) -> Result<Stats> {
    let json = log
        .lines()
        .find_map(|l| l.strip_prefix(PREFIX))
        .with_context(|| format!("no `{PREFIX}` line"))?;
    serde_json::from_str(json).with_context(|| format!("cannot read `{PREFIX}{json}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reads_the_line_among_others() {
        let log = concat!(
            "[127.0.0.1:5000] echo: wsbox serve: stats {\"panics\":9}\n",
            "wsbox serve: stats {\"accept_to_handle\":{\"count\":3,\"p50_us\":40,\"p99_us\":80,\"max_us\":90},",
            "\"request_to_handle\":{\"count\":3,\"p50_us\":20,\"p99_us\":50,\"max_us\":60},",
            "\"instantiate\":null,\"panics\":2}\n",
            "wsbox serve: shut down\n",
        );
        let stats = from_log(log).unwrap();
        assert_eq!(stats.panics, 2);
        let accept = stats.serve.accept_to_handle.unwrap();
        assert_eq!(accept.count, 3);
        assert_eq!(
            (accept.p50, accept.p99, accept.max),
            (
                Duration::from_micros(40),
                Duration::from_micros(80),
                Duration::from_micros(90)
            )
        );
        assert_eq!(
            stats.serve.request_to_handle.unwrap().p99,
            Duration::from_micros(50)
        );
        assert_eq!(stats.serve.instantiate, None);
    }

    #[test]
    fn says_when_there_is_no_line() {
        let e = from_log("wsbox serve: shut down\n").unwrap_err();
        assert!(
            e.to_string().contains("no `wsbox serve: stats ` line"),
            "{e:#}"
        );
        let e = from_log("wsbox serve: stats {\"panics\":\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read `wsbox serve: stats {"),
            "{e:#}"
        );
    }
}
