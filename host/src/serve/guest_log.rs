//! Hands each handler instance's output to the host's log: escaped, so it cannot forge lines, and
//! within a budget, so it cannot flood the log.
//!
//! Each instance's output is split into lines, every line is escaped (see
//! [`escape`](crate::escape::escape)) and handed to [`ServeConfig::guest_output`] with the client's
//! address. Stdout and stderr share one budget per instance
//! ([`ServeConfig::guest_log_bytes`], [`ServeConfig::guest_log_lines`]); past
//! it, one notice says that output is dropped from now on and which flag
//! raises the budget, and the rest is dropped.

use super::{GuestLine, GuestOutput, ServeConfig};
use crate::escape::escape;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::WasiCtxBuilder;

/// A line longer than this is passed on in pieces.
const MAX_LINE: usize = 16 * 1024;

/// Sends the stdout and stderr of the instance serving `remote` on `route`
/// to `config.guest_output`, within one budget for both.
pub(crate) fn attach(
    wasi: &mut WasiCtxBuilder,
    remote: SocketAddr,
    route: &str,
    config: &ServeConfig,
) {
    let log = Arc::new(Log::new(
        remote.to_string(),
        route.to_string(),
        config.guest_output.clone(),
        config.guest_log_bytes,
        config.guest_log_lines,
    ));
    wasi.stdout(GuestLog::new(&log)).stderr(GuestLog::new(&log));
}

/// One instance's output: where it goes and what is left of its budget.
struct Log {
    remote: String,
    route: String,
    sink: GuestOutput,
    /// The budget as configured, for the notice.
    max_bytes: usize,
    max_lines: usize,
    budget: Mutex<Budget>,
    /// Set once the budget is spent and the notice is out; from then on
    /// output is dropped as it is written, without being buffered.
    over: AtomicBool,
}

/// What an instance may still log.
struct Budget {
    bytes: usize,
    lines: usize,
}

impl Log {
    fn new(
        remote: String,
        route: String,
        sink: GuestOutput,
        max_bytes: usize,
        max_lines: usize,
    ) -> Log {
        Log {
            remote,
            route,
            sink,
            max_bytes,
            max_lines,
            budget: Mutex::new(Budget {
                bytes: max_bytes,
                lines: max_lines,
            }),
            over: AtomicBool::new(false),
        }
    }

    fn over(&self) -> bool {
        self.over.load(Ordering::Relaxed)
    }

    /// Passes one line on, escaped, if the budget has room for it;
    /// otherwise sends the notice, the first time.
    fn emit(&self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = escape(line);
        let spent = {
            let Ok(mut budget) = self.budget.lock() else {
                return;
            };
            if self.over() {
                return;
            }
            let spent = if budget.lines == 0 {
                Some((self.max_lines, "lines", "--guest-log-lines"))
            } else if text.len() > budget.bytes {
                Some((self.max_bytes, "bytes", "--guest-log-bytes"))
            } else {
                budget.lines -= 1;
                budget.bytes -= text.len();
                None
            };
            if spent.is_some() {
                self.over.store(true, Ordering::Relaxed);
            }
            spent
        };
        let text = match spent {
            None => text,
            Some((max, unit, flag)) => format!(
                "wsbox: this instance's output is past its budget of {max} {unit} \
                 and is dropped from now on; raise it with {flag}"
            ),
        };
        (self.sink)(&GuestLine {
            client: &self.remote,
            route: &self.route,
            text: &text,
        });
    }
}

/// A guest's stdout or stderr: its own partial line, the instance's [`Log`].
struct GuestLog {
    stream: Arc<Stream>,
}

struct Stream {
    log: Arc<Log>,
    pending: Mutex<Vec<u8>>,
}

impl GuestLog {
    fn new(log: &Arc<Log>) -> Self {
        GuestLog {
            stream: Arc::new(Stream {
                log: log.clone(),
                pending: Mutex::new(Vec::new()),
            }),
        }
    }
}

impl Stream {
    fn write(&self, data: &[u8]) {
        if self.log.over() {
            return;
        }
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        pending.extend_from_slice(data);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            self.log.emit(&line[..end]);
        }
        if pending.len() > MAX_LINE {
            let line = std::mem::take(&mut *pending);
            self.log.emit(&line);
        }
        if self.log.over() {
            *pending = Vec::new();
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let rest = self
            .pending
            .get_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        if !rest.is_empty() {
            self.log.emit(&rest);
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter(self.stream.clone()))
    }
}

struct LineWriter(Arc<Stream>);

impl AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the sink received: (address, line) pairs.
    type Seen = Arc<Mutex<Vec<(String, String)>>>;

    /// A [`Log`] whose lines are collected.
    fn log(max_bytes: usize, max_lines: usize) -> (Arc<Log>, Seen) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let sink: GuestOutput = Arc::new(move |line: &GuestLine<'_>| {
            assert_eq!(line.route, "/chat");
            seen.lock()
                .unwrap()
                .push((line.client.to_string(), line.text.to_string()));
        });
        let log = Arc::new(Log::new(
            "1.2.3.4:5".into(),
            "/chat".into(),
            sink,
            max_bytes,
            max_lines,
        ));
        (log, lines)
    }

    fn texts(lines: &Mutex<Vec<(String, String)>>) -> Vec<String> {
        lines
            .lock()
            .unwrap()
            .iter()
            .map(|(_, line)| line.clone())
            .collect()
    }

    #[test]
    fn lines_are_split_tagged_and_escaped() {
        let (log, lines) = log(1 << 20, 100);
        let out = GuestLog::new(&log);
        out.stream.write(b"one\r\ntw");
        out.stream.write(b"o\x1b[31m\rthree\n\xff");
        drop(out);
        assert_eq!(
            *lines.lock().unwrap(),
            [
                ("1.2.3.4:5".to_string(), "one".to_string()),
                ("1.2.3.4:5".to_string(), "two\\x1b[31m\\rthree".to_string()),
                ("1.2.3.4:5".to_string(), "\\xff".to_string()),
            ]
        );
    }

    #[test]
    fn a_long_line_is_passed_on_in_pieces() {
        let (log, lines) = log(1 << 20, 100);
        let out = GuestLog::new(&log);
        out.stream.write(&vec![b'x'; MAX_LINE]);
        assert!(texts(&lines).is_empty());
        out.stream.write(b"x");
        out.stream.write(b"y\n");
        assert_eq!(texts(&lines), ["x".repeat(MAX_LINE + 1), "y".to_string()]);
    }

    #[test]
    fn past_the_line_budget_one_notice_and_nothing_more() {
        let (log, lines) = log(1 << 20, 3);
        let (out, err) = (GuestLog::new(&log), GuestLog::new(&log));
        for i in 0..10 {
            // Stdout and stderr share the budget.
            let stream = if i % 2 == 0 { &out } else { &err };
            stream.stream.write(format!("line {i}\n").as_bytes());
        }
        err.stream.write(b"unfinished");
        assert!(err.stream.pending.lock().unwrap().is_empty());
        drop((out, err));
        assert_eq!(
            texts(&lines),
            [
                "line 0",
                "line 1",
                "line 2",
                "wsbox: this instance's output is past its budget of 3 lines and is dropped from now on; raise it with --guest-log-lines",
            ]
        );
    }

    #[test]
    fn past_the_byte_budget_one_notice_and_nothing_more() {
        // Escaped, `\x00` counts 4 bytes: two lines of 5 fill 10 exactly.
        let (log, lines) = log(10, 100);
        let out = GuestLog::new(&log);
        out.stream.write(b"a\0\n");
        out.stream.write(b"bbbbb\n");
        out.stream.write(b"c\n");
        out.stream.write(b"d\n");
        drop(out);
        assert_eq!(
            texts(&lines),
            [
                "a\\x00",
                "bbbbb",
                "wsbox: this instance's output is past its budget of 10 bytes and is dropped from now on; raise it with --guest-log-bytes",
            ]
        );
    }
}
