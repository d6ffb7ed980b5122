//! Opening client connections, in the order `connect` documents: the URL,
//! the outbound policy, the options, then TCP, TLS and the HTTP/1.1 upgrade.

use crate::bindings::types::{ConnectOptions, ErrorCode};
use crate::config::{Config, ConnectDecision, ConnectRequest};
use crate::deflate;
use crate::handshake::{self, client::Request, HeadError};
use crate::policy::{Destination, Policy};
use bytes::BytesMut;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use url::{Host, Url};

/// A destination that passed the URL check.
#[derive(Debug)]
pub(crate) struct Target {
    url: Url,
    secure: bool,
    port: u16,
    /// The path and query, as the request line carries them.
    request_target: String,
    /// `host[:port]`, as the `Host` header carries it.
    authority: String,
}

/// Checks that `url` is an absolute `ws://` or `wss://` URL without a
/// fragment.
pub(crate) fn parse_url(url: &str) -> Result<Target, ErrorCode> {
    let parsed = Url::parse(url).map_err(|e| ErrorCode::InvalidUrl(format!("{url}: {e}")))?;
    let secure = match parsed.scheme() {
        "ws" => false,
        "wss" => true,
        other => {
            return Err(ErrorCode::InvalidUrl(format!(
                "{url}: the scheme must be ws or wss, not {other}"
            )))
        }
    };
    if parsed.fragment().is_some() {
        return Err(ErrorCode::InvalidUrl(format!(
            "{url}: a websocket URL has no fragment"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ErrorCode::InvalidUrl(format!(
            "{url}: user info is not supported"
        )));
    }
    if parsed.host().is_none() {
        return Err(ErrorCode::InvalidUrl(format!("{url}: the URL has no host")));
    }
    let port = parsed
        .port_or_known_default()
        .unwrap_or(if secure { 443 } else { 80 });
    let mut request_target = parsed.path().to_string();
    if let Some(query) = parsed.query() {
        request_target.push('?');
        request_target.push_str(query);
    }
    let host = parsed.host_str().unwrap_or_default();
    let authority = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    Ok(Target {
        url: parsed,
        secure,
        port,
        request_target,
        authority,
    })
}

impl Target {
    /// What a [`ConnectHooks`](crate::ConnectHooks) sees of this connect.
    fn request(&self, options: &ConnectOptions) -> ConnectRequest {
        ConnectRequest {
            url: self.url.to_string(),
            secure: self.secure,
            host: self.url.host_str().unwrap_or_default().to_string(),
            port: self.port,
            protocols: options.protocols.clone(),
        }
    }

    /// Checks the outbound policy; nothing has touched the network yet.
    pub(crate) fn check(&self, policy: &Policy) -> Result<(), ErrorCode> {
        let host = match self.url.host() {
            Some(Host::Domain(name)) => Destination::Name(name.trim_end_matches('.')),
            Some(Host::Ipv4(ip)) => Destination::Ip(ip.into()),
            Some(Host::Ipv6(ip)) => Destination::Ip(ip.into()),
            None => return Err(ErrorCode::InvalidUrl("the URL has no host".into())),
        };
        if policy.permits(self.secure, host, self.port) {
            Ok(())
        } else {
            let scheme = if self.secure { "wss" } else { "ws" };
            let host = self.url.host_str().unwrap_or_default();
            Err(ErrorCode::Denied(format!(
                "{scheme}://{host}:{} is not allowed by the host's outbound policy (add it with --allow)",
                self.port
            )))
        }
    }
}

/// Checks subprotocols and extra headers before anything is sent.
pub(crate) fn check_options(options: &ConnectOptions) -> Result<(), ErrorCode> {
    for (i, protocol) in options.protocols.iter().enumerate() {
        if !handshake::is_token(protocol) {
            return Err(ErrorCode::InvalidParameter(format!(
                "subprotocol {protocol:?} is not an HTTP token"
            )));
        }
        if options.protocols[..i].contains(protocol) {
            return Err(ErrorCode::InvalidParameter(format!(
                "subprotocol {protocol:?} is offered twice"
            )));
        }
    }
    handshake::check_headers(&options.headers)
}

/// A TCP stream, with TLS for `wss://`.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// An upgraded connection, ready for frames.
pub(crate) struct Upgraded {
    pub stream: Stream,
    pub protocol: Option<String>,
    /// permessage-deflate, when the server accepted the offer.
    pub deflate: Option<deflate::Params>,
    /// Bytes the server sent right after its response head.
    pub leftover: BytesMut,
}

/// Connects and upgrades. The caller applies the connect timeout.
pub(crate) async fn open(
    target: &Target,
    options: &ConnectOptions,
    config: &Config,
) -> Result<Upgraded, ErrorCode> {
    let host = target.url.host_str().unwrap_or_default();
    let decision = match &config.hooks {
        Some(hooks) => hooks.connect(&target.request(options)).await,
        None => ConnectDecision::Proceed,
    };
    let tcp = match decision {
        ConnectDecision::Proceed => connect_tcp(target, config).await?,
        ConnectDecision::Reroute(addrs) => first_answering(host, addrs).await?,
        ConnectDecision::Refuse(why) => return Err(ErrorCode::Denied(why)),
    };
    let _ = tcp.set_nodelay(true);
    let mut stream = if target.secure {
        tls(target, config, tcp).await?
    } else {
        Stream::Plain(tcp)
    };
    let key = tungstenite::handshake::client::generate_key();
    let offer = config
        .deflate
        .enabled
        .then(|| deflate::offer(&config.deflate));
    let mut request = request(target, options, &key);
    request.extensions = offer.as_deref();
    let request = request.to_head();
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| ErrorCode::ConnectFailed(format!("sending the upgrade request: {e}")))?;
    let (head, leftover) = handshake::read_head(&mut stream)
        .await
        .map_err(|e| match e {
            HeadError::TooLarge => ErrorCode::ProtocolError(format!(
                "the upgrade response head is over {} KiB",
                handshake::MAX_HEAD / 1024
            )),
            HeadError::Ended => ErrorCode::ConnectFailed(
                "the server closed the connection during the upgrade".into(),
            ),
            HeadError::Io(e) => {
                ErrorCode::ConnectFailed(format!("reading the upgrade response: {e}"))
            }
        })?;
    let answer = handshake::client::check_answer(&head, &key, &options.protocols)?;
    // RFC 7692 section 5: an answer the client cannot accept fails the
    // connection.
    let deflate = deflate::check_answer(
        &config.deflate,
        answer.extensions.iter().map(String::as_str),
    )
    .map_err(|e| ErrorCode::ProtocolError(format!("invalid upgrade response: {e}")))?;
    Ok(Upgraded {
        stream,
        protocol: answer.protocol,
        deflate,
        leftover,
    })
}

/// Runs the TLS handshake of a `wss://` connect, naming the URL's host.
async fn tls(target: &Target, config: &Config, tcp: TcpStream) -> Result<Stream, ErrorCode> {
    let host = target.url.host_str().unwrap_or_default();
    let tls = config
        .tls
        .clone()
        .unwrap_or_else(crate::tls::default_client_config);
    let name = match target.url.host() {
        Some(Host::Ipv4(ip)) => {
            rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from(ip).into())
        }
        Some(Host::Ipv6(ip)) => {
            rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from(ip).into())
        }
        _ => rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| ErrorCode::ConnectFailed(format!("{host}: {e}")))?,
    };
    let tls = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| ErrorCode::ConnectFailed(format!("TLS with {host}: {e}")))?;
    Ok(Stream::Tls(Box::new(tls)))
}

/// Resolves the destination, keeps the addresses the policy permits, and
/// connects to the first that answers.
async fn connect_tcp(target: &Target, config: &Config) -> Result<TcpStream, ErrorCode> {
    let port = target.port;
    let addrs: Vec<SocketAddr> = match target.url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Domain(name)) => config
            .resolver
            .resolve(name.trim_end_matches('.'), port)
            .await
            .map_err(|e| ErrorCode::ConnectFailed(format!("resolving {name}: {e}")))?,
        None => return Err(ErrorCode::InvalidUrl("the URL has no host".into())),
    };
    let host = target.url.host_str().unwrap_or_default();
    let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
        .into_iter()
        .partition(|a| config.policy.permits_address(target.secure, a.ip(), port));
    if allowed.is_empty() {
        if refused.is_empty() {
            return Err(ErrorCode::ConnectFailed(format!("{host} has no addresses")));
        }
        // The addresses go to the operator's log only: telling the guest
        // would let it map the internal network through DNS.
        let scheme = if target.secure { "wss" } else { "ws" };
        let addresses: Vec<String> = refused.iter().map(ToString::to_string).collect();
        tracing::info!(
            "denied {scheme}://{host}:{port}: it resolves only to internal addresses ({}); \
             to allow one, add e.g. --allow {scheme}://{}",
            addresses.join(", "),
            refused[0],
        );
        return Err(ErrorCode::Denied(format!(
            "{host} resolves only to internal addresses, which the host's outbound policy refuses; \
             the operator can allow one by naming its IP in an --allow pattern, e.g. --allow {scheme}://IP:{port}"
        )));
    }
    first_answering(host, allowed).await
}

/// Connects to the first of `addrs` that answers.
async fn first_answering(host: &str, addrs: Vec<SocketAddr>) -> Result<TcpStream, ErrorCode> {
    let mut last = format!("{host} has no addresses");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = format!("{host} ({addr}): {e}"),
        }
    }
    Err(ErrorCode::ConnectFailed(last))
}

/// The upgrade request for `target`.
fn request<'a>(target: &'a Target, options: &'a ConnectOptions, key: &'a str) -> Request<'a> {
    Request {
        target: &target.request_target,
        authority: &target.authority,
        key,
        protocols: &options.protocols,
        extensions: None,
        headers: &options.headers,
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// URL validation never panics; what it accepts is ws or wss with a
        /// host and no fragment.
        #[test]
        fn url_validation_accepts_only_websocket_urls(text in "(ws|wss|http|)(://|:/|)\\PC{0,30}(#\\PC{0,3})?") {
            if let Ok(target) = parse_url(&text) {
                prop_assert!(matches!(target.url.scheme(), "ws" | "wss"));
                prop_assert!(target.url.host().is_some());
                prop_assert!(target.url.fragment().is_none());
                prop_assert!(target.port > 0 || target.url.port() == Some(0));
            }
        }

        /// Header and subprotocol checks never let a control character
        /// other than HTAB through, and never a line break.
        #[test]
        fn options_never_let_control_characters_through(
            name in "(\\PC{0,10}|[A-Za-z-]{1,10})",
            value in "\\PC{0,10}[\\x00-\\x1f\\x7f]?\\PC{0,5}",
        ) {
            let header = ConnectOptions { protocols: vec![], headers: vec![(name, value.clone())] };
            let protocol = ConnectOptions { protocols: vec![value.clone()], headers: vec![] };
            for options in [header, protocol] {
                if check_options(&options).is_ok() {
                    prop_assert!(!value.contains(['\r', '\n']));
                    prop_assert!(!value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f), "{:?}", value);
                }
            }
        }

        /// A header that is none of the reserved ones, with printable text
        /// and HTABs, within the size limit, is accepted.
        #[test]
        fn plain_headers_are_accepted(name in "x-[a-z0-9-]{1,12}", value in "[\\PC\t]{0,40}") {
            let options = ConnectOptions { protocols: vec![], headers: vec![(name, value)] };
            let checked = check_options(&options);
            prop_assert!(checked.is_ok(), "{:?}", checked);
        }
    }
}
