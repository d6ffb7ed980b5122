//! The `--metrics` listener: `/metrics`, `/healthz` and `/readyz` over a minimal HTTP/1.1 server.
//!
//! One request per connection, answered with `Connection: close`. The
//! request head is read with the upgrade's head reader and `httparse`, at most [`MAX_REQUEST`] bytes, and
//! the whole exchange has [`REQUEST_TIMEOUT`]; at most [`MAX_CLIENTS`]
//! connections are served at once, and the ones past it are closed at once.
//!
//! - `GET /metrics`: the Prometheus text of [`Metrics`];
//! - `GET /healthz`: 200 while the process is up;
//! - `GET /readyz`: 200 when the readiness callback says so (accepting, and
//!   the cluster connected if one is configured), else 503;
//! - anything else: 404, or 405 for a method other than GET and HEAD.

use crate::handshake::{self, write_header, HeadError};
use crate::metrics::{Metrics, CONTENT_TYPE};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The longest request head read.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long one connection may take, from accept to the last byte of the
/// answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub const MAX_CLIENTS: usize = 32;

/// Whether the server is ready for traffic, asked on every `/readyz`.
pub type Readiness = Arc<dyn Fn() -> bool + Send + Sync>;

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until
/// `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: Readiness,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, metrics, ready, REQUEST_TIMEOUT, shutdown).await
}

async fn serve_with(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: Readiness,
    timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let clients = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, remote)) => {
                    let Ok(permit) = clients.clone().try_acquire_owned() else {
                        tracing::debug!(%remote, "metrics: {MAX_CLIENTS} clients at once: closed");
                        continue;
                    };
                    let (metrics, ready) = (metrics.clone(), ready.clone());
                    tasks.spawn(crate::task::supervised("metrics client", async move {
                        let _ = tokio::time::timeout(timeout, exchange(tcp, &metrics, &ready)).await;
                        drop(permit);
                    }));
                }
                Err(e) => {
                    tracing::warn!("metrics: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Reads one request and writes its answer.
async fn exchange(mut tcp: TcpStream, metrics: &Metrics, ready: &Readiness) {
    let answer = match read_request(&mut tcp).await {
        Ok(Some(request)) => answer(&request, metrics, ready),
        Ok(None) => return,
        Err(status) => Answer::text(status, status_text(status)),
    };
    let _ = tcp.write_all(&answer.bytes()).await;
    let _ = tcp.shutdown().await;
    // Closing with unread bytes would reset the connection and could
    // destroy the answer before the client reads it: read what is left (a
    // bounded amount, within the caller's timeout) until the client closes.
    let mut rest = [0u8; 1024];
    let mut drained = 0;
    while drained < 64 * 1024 {
        match tcp.read(&mut rest).await {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// The method and path of a request.
struct Request {
    method: String,
    path: String,
}

/// The request, `None` if the client closed first, or the status to
/// refuse it with.
async fn read_request(tcp: &mut TcpStream) -> Result<Option<Request>, u16> {
    let head = match handshake::read_head_within(tcp, MAX_REQUEST).await {
        Ok((head, _)) => head,
        Err(HeadError::TooLarge) => return Err(431),
        Err(HeadError::Ended | HeadError::Io(_)) => return Ok(None),
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&head) {
        Ok(httparse::Status::Complete(_)) => Ok(Some(Request {
            method: request.method.unwrap_or_default().to_string(),
            path: request.path.unwrap_or_default().to_string(),
        })),
        Err(httparse::Error::TooManyHeaders) => Err(431),
        Ok(httparse::Status::Partial) | Err(_) => Err(400),
    }
}

struct Answer {
    status: u16,
    content_type: &'static str,
    /// One header besides the ones every answer has.
    extra: Option<(&'static str, &'static str)>,
    body: String,
    head_only: bool,
}

impl Answer {
    fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            extra: None,
            body: format!("{body}\n"),
            head_only: false,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, status_text(self.status));
        write_header(&mut head, "Content-Type", self.content_type);
        write_header(&mut head, "Content-Length", &self.body.len().to_string());
        write_header(&mut head, "Cache-Control", "no-store");
        write_header(&mut head, "Connection", "close");
        if let Some((name, value)) = self.extra {
            write_header(&mut head, name, value);
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !self.head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn answer(request: &Request, metrics: &Metrics, ready: &Readiness) -> Answer {
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        let mut answer = Answer::text(405, "Method Not Allowed: use GET");
        answer.extra = Some(("Allow", "GET, HEAD"));
        return answer;
    }
    let path = request.path.split(['?', '#']).next().unwrap_or_default();
    let mut answer = match path {
        "/metrics" => Answer {
            status: 200,
            content_type: CONTENT_TYPE,
            extra: None,
            body: metrics.encode(),
            head_only: false,
        },
        "/healthz" => Answer::text(200, "ok"),
        "/readyz" if ready() => Answer::text(200, "ready"),
        "/readyz" => Answer::text(503, "not ready"),
        _ => Answer::text(404, "Not Found: try /metrics, /healthz or /readyz"),
    };
    answer.head_only = head_only;
    answer
}

#[cfg(test)]
mod tests;
