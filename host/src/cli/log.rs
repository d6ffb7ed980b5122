//! What the command line says on stderr: logging through `tracing`, the server's notices and warnings, and errors on one line.

use super::args::LogFormat;

/// Says something about the server itself on stderr: a plain line, or a
/// JSON object with `--log-format json`.
pub(crate) fn notice(format: LogFormat, text: &str) {
    match format {
        LogFormat::Text => eprintln!("wsbox serve: {text}"),
        LogFormat::Json => tracing::info!(target: "wsbox::cli", "{text}"),
    }
}

/// Like [`notice`], for what went wrong.
pub(crate) fn warning(format: LogFormat, text: &str) {
    match format {
        LogFormat::Text => eprintln!("wsbox serve: {text}"),
        LogFormat::Json => tracing::warn!(target: "wsbox::cli", "{text}"),
    }
}

/// Logs on stderr through `tracing`: `RUST_LOG` (default `warn`) chooses
/// what; with `json`, one object per line, and the guest's output and the
/// server's notices always in.
pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_env_filter(filter).init(),
        LogFormat::Json => {
            let filter = ["wsbox::guest=info", "wsbox::cli=info"]
                .iter()
                .filter_map(|d| d.parse().ok())
                .fold(filter, |filter, directive| filter.add_directive(directive));
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_env_filter(filter)
                .init()
        }
    }
}

/// An error's chain as one line, as the CLI prints every error: a cause from
/// wasmtime may span lines (a wasm backtrace).
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
