//! Server-side handlers: the `server` world.

use wsbox_guest_common::{
    AcceptOptions, UpgradeRequest as RawUpgradeRequest, UpgradeResponse as RawUpgradeResponse,
};

use crate::WebSocket;

/// A server-side handler: `wsbox serve` gives every incoming connection a
/// fresh instance, calls [`upgrade`](Self::upgrade), then, if it accepted,
/// [`handle`](Self::handle). Export it with [`export_handler!`](crate::export_handler).
///
/// An echo handler:
///
/// ```no_run
/// use wsbox_guest::{Handler, WebSocket};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     fn handle(ws: WebSocket) {
///         ws.messages().map_while(Result::ok).for_each(|m| drop(ws.send(&m)));
///         if let Ok(status) = ws.close_status() {
///             let _ = ws.answer_close(&status);
///         }
///     }
/// }
///
/// wsbox_guest::export_handler!(Echo);
/// ```
///
/// Every connection has an instance of its own, so a `static` holds one
/// connection's state, e.g. from `upgrade` to `handle`.
pub trait Handler {
    /// Decides on the upgrade before any 101 is sent. The default accepts
    /// everything, without a subprotocol. A panic here gets the client HTTP
    /// 500.
    ///
    /// ```
    /// # use wsbox_guest::{UpgradeRequest, UpgradeResponse};
    /// fn upgrade(request: UpgradeRequest) -> UpgradeResponse {
    ///     if request.route() != "/chat" {
    ///         return UpgradeResponse::reject(404);
    ///     }
    ///     UpgradeResponse::accept().protocol("chat.v1")
    /// }
    /// ```
    fn upgrade(request: UpgradeRequest) -> UpgradeResponse {
        let _ = request;
        UpgradeResponse::accept()
    }

    /// Owns the open connection; returns when done with it. If the websocket
    /// is still open then, the host closes it with 1000; a panic gets the
    /// client 1011.
    ///
    /// ```
    /// # use wsbox_guest::{CloseCode, WebSocket};
    /// fn handle(ws: WebSocket) {
    ///     let _ = ws.send_text("hello");
    ///     let _ = ws.close(CloseCode::Normal, "bye");
    /// }
    /// ```
    fn handle(ws: WebSocket);
}

/// An HTTP/1.1 upgrade request, as the server received it, for
/// [`Handler::upgrade`] to decide on.
///
/// ```
/// # use wsbox_guest::{UpgradeRequest, UpgradeResponse};
/// fn upgrade(request: UpgradeRequest) -> UpgradeResponse {
///     println!("{} from {}", request.path, request.remote_address);
///     UpgradeResponse::accept()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    /// The request target, query string included, e.g. `/chat?room=7`.
    pub path: String,
    /// Every request header (name, value), in the order received.
    pub headers: Vec<(String, String)>,
    /// The subprotocols the client offered, in its order of preference.
    pub protocols: Vec<String>,
    /// The client's address, `ip:port` (`[ip]:port` for IPv6).
    pub remote_address: String,
}

impl UpgradeRequest {
    /// The path without its query string: `/chat` for `/chat?room=7`.
    ///
    /// ```
    /// # let request = wsbox_guest::UpgradeRequest {
    /// #     path: "/chat?room=7".into(),
    /// #     headers: vec![("Origin".into(), "https://example.com".into())],
    /// #     protocols: vec!["chat.v1".into()],
    /// #     remote_address: "127.0.0.1:50000".into(),
    /// # };
    /// assert_eq!(request.route(), "/chat");
    /// ```
    pub fn route(&self) -> &str {
        self.path
            .split_once('?')
            .map_or(&self.path, |(path, _)| path)
    }

    /// Whether the client offered `protocol`.
    ///
    /// ```
    /// # let request = wsbox_guest::UpgradeRequest {
    /// #     path: "/chat?room=7".into(),
    /// #     headers: vec![("Origin".into(), "https://example.com".into())],
    /// #     protocols: vec!["chat.v1".into()],
    /// #     remote_address: "127.0.0.1:50000".into(),
    /// # };
    /// assert!(request.offers("chat.v1"));
    /// assert!(!request.offers("chat.v2"));
    /// ```
    pub fn offers(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p == protocol)
    }

    /// The value of the first header called `name` (case-insensitive).
    ///
    /// ```
    /// # let request = wsbox_guest::UpgradeRequest {
    /// #     path: "/chat?room=7".into(),
    /// #     headers: vec![("Origin".into(), "https://example.com".into())],
    /// #     protocols: vec!["chat.v1".into()],
    /// #     remote_address: "127.0.0.1:50000".into(),
    /// # };
    /// assert_eq!(request.header("origin"), Some("https://example.com"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl From<RawUpgradeRequest> for UpgradeRequest {
    fn from(raw: RawUpgradeRequest) -> Self {
        UpgradeRequest {
            path: raw.path,
            headers: raw.headers,
            protocols: raw.protocols,
            remote_address: raw.remote_address,
        }
    }
}

/// How [`Handler::upgrade`] answers: accept (with a subprotocol and extra
/// headers) or reject with an HTTP status.
///
/// ```
/// use wsbox_guest::UpgradeResponse;
///
/// let chat = UpgradeResponse::accept().protocol("chat.v1").header("X-Router", "chat");
/// let missing = UpgradeResponse::reject(404);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeResponse {
    /// Answer 101 Switching Protocols, then [`Handler::handle`] runs.
    Accept {
        /// The subprotocol to select; it must be one the client offered,
        /// or the client gets HTTP 500.
        protocol: Option<String>,
        /// Extra response headers; those the handshake sets are refused.
        headers: Vec<(String, String)>,
    },
    /// Answer with this HTTP status (400-599) and close the connection.
    Reject(u16),
}

impl UpgradeResponse {
    /// Accepts, without a subprotocol or extra headers.
    ///
    /// ```
    /// let response = wsbox_guest::UpgradeResponse::accept();
    /// ```
    pub fn accept() -> UpgradeResponse {
        UpgradeResponse::Accept {
            protocol: None,
            headers: Vec::new(),
        }
    }

    /// Rejects with an HTTP status, such as 403 or 404.
    ///
    /// ```
    /// let response = wsbox_guest::UpgradeResponse::reject(403);
    /// ```
    pub fn reject(status: u16) -> UpgradeResponse {
        UpgradeResponse::Reject(status)
    }

    /// Selects a subprotocol (on an accept; a reject is left as is).
    ///
    /// ```
    /// let response = wsbox_guest::UpgradeResponse::accept().protocol("chat.v1");
    /// ```
    pub fn protocol(mut self, selected: &str) -> UpgradeResponse {
        if let UpgradeResponse::Accept { protocol, .. } = &mut self {
            *protocol = Some(selected.to_string());
        }
        self
    }

    /// Adds a response header (on an accept; a reject is left as is).
    ///
    /// ```
    /// let response = wsbox_guest::UpgradeResponse::accept().header("X-Served-By", "wsbox");
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> UpgradeResponse {
        if let UpgradeResponse::Accept { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }
}

impl From<UpgradeResponse> for RawUpgradeResponse {
    fn from(response: UpgradeResponse) -> Self {
        match response {
            UpgradeResponse::Accept { protocol, headers } => {
                RawUpgradeResponse::Accept(AcceptOptions { protocol, headers })
            }
            UpgradeResponse::Reject(status) => RawUpgradeResponse::Reject(status),
        }
    }
}

/// Exports a [`Handler`] as the component's `wsbox:websocket/handler`. Use
/// it once, in a library crate with `crate-type = ["cdylib"]`.
///
/// ```no_run
/// struct MyHandler;
///
/// impl wsbox_guest::Handler for MyHandler {
///     fn handle(ws: wsbox_guest::WebSocket) { /* ... */ }
/// }
///
/// wsbox_guest::export_handler!(MyHandler);
/// ```
#[macro_export]
macro_rules! export_handler {
    ($handler:ty) => {
        const _: () = {
            struct WsboxGuestExport;

            impl $crate::__private::Guest for WsboxGuestExport {
                fn upgrade(
                    request: $crate::__private::RawUpgradeRequest,
                ) -> $crate::__private::RawUpgradeResponse {
                    $crate::__private::upgrade::<$handler>(request)
                }

                fn handle(conn: $crate::__private::Websocket) {
                    $crate::__private::handle::<$handler>(conn)
                }
            }

            $crate::__private::wsbox_guest_server::export!(
                WsboxGuestExport with_types_in $crate::__private::wsbox_guest_server
            );
        };
    };
}

/// What [`export_handler!`] expands to calls.
#[doc(hidden)]
pub mod __private {
    pub use wsbox_guest_common::{
        UpgradeRequest as RawUpgradeRequest, UpgradeResponse as RawUpgradeResponse, Websocket,
    };
    pub use wsbox_guest_server::{self, Guest};

    use super::*;

    pub fn upgrade<H: Handler>(request: RawUpgradeRequest) -> RawUpgradeResponse {
        H::upgrade(request.into()).into()
    }

    pub fn handle<H: Handler>(conn: Websocket) {
        H::handle(WebSocket::from_raw(conn))
    }
}
